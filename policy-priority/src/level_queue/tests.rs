//! The queue's unit tests: order, the bitmap's lazy and quiet retires, aging, and the counts,
//! all driven through [`LevelQueue`]'s face.

use super::*;
use std::time::Duration;
use Priority::*;

fn drain(q: &LevelQueue<u32>) -> Vec<u32> {
    std::iter::from_fn(|| q.pop().map(|(x, _)| x)).collect()
}

#[test]
fn highest_level_first_fifo_within() {
    let q = LevelQueue::with_aging(Aging::off());
    for (x, p) in [
        (1, Idle),
        (2, Normal),
        (3, Critical),
        (4, Normal),
        (5, Low),
        (6, High),
    ] {
        q.push(x, p);
    }
    assert_eq!(q.len(), 6);
    assert_eq!(drain(&q), [3, 6, 2, 4, 5, 1]);
    assert!(q.is_empty());
    // Critical was retired at this thread's first find of an empty level with another bit
    // set; the later finds (fewer than RETIRE_EVERY) kept their bits, and so does Idle, the
    // last (lazy retire), until this thread has seen the queue empty QUIET_AFTER times in a
    // row (`drain` ended with the first).
    assert_eq!(q.levels.nonempty.load(Ordering::SeqCst), 0b01111);
    for _ in 1..QUIET_AFTER {
        assert_ne!(
            q.levels.nonempty.load(Ordering::SeqCst) & 1 << Idle.index(),
            0
        );
        assert_eq!(q.pop(), None);
    }
    assert_eq!(
        q.levels.nonempty.load(Ordering::SeqCst),
        0,
        "the quiet retire"
    );
}

/// A pop that takes an entry ends the run of empty pops without writing to it
/// (`PopRun::went_quiet`): the run starts again at the next empty pop.
#[test]
fn a_found_entry_restarts_the_run_of_empty_pops() {
    let q = LevelQueue::with_aging(Aging::off());
    let high = 1 << High.index();
    q.push(1, High);
    assert_eq!(q.pop(), Some((1, High)));
    for _ in 1..QUIET_AFTER {
        assert_eq!(q.pop(), None);
    }
    // One empty pop short of the quiet retire: High keeps its bit.
    assert_eq!(q.levels.nonempty.load(Ordering::SeqCst), high);
    q.push(2, High);
    assert_eq!(q.pop(), Some((2, High)));
    for _ in 1..QUIET_AFTER {
        assert_eq!(q.pop(), None);
        assert_eq!(
            q.levels.nonempty.load(Ordering::SeqCst),
            high,
            "the run restarted"
        );
    }
    assert_eq!(q.pop(), None);
    assert_eq!(
        q.levels.nonempty.load(Ordering::SeqCst),
        0,
        "the quiet retire"
    );
}

#[test]
fn level_priority_inverts_index() {
    for p in Priority::ALL {
        assert_eq!(level_priority(p.index()), p);
    }
}

#[test]
fn a_kept_bit_gives_way_to_lower_work_and_hides_higher_work() {
    let q = LevelQueue::with_aging(Aging::off());
    q.push(1, High);
    assert_eq!(q.pop(), Some((1, High)));
    assert_eq!(q.pop(), None);
    // High's bit is kept: the next High push finds it set (no clock read, no set).
    assert_eq!(q.levels.nonempty.load(Ordering::SeqCst), 1 << High.index());
    q.push(2, Low);
    // The pop tries High first, finds it empty with Low's bit set, and retires High.
    assert_eq!(q.pop(), Some((2, Low)));
    assert_eq!(q.levels.nonempty.load(Ordering::SeqCst), 1 << Low.index());
    q.push(3, Normal);
    q.push(4, High);
    assert_eq!(drain(&q), [4, 3]);
}

/// `pop`'s inline path (no aging check) retires an emptied top level as `pop_slow` does.
#[test]
fn a_pop_that_skips_the_aging_check_still_retires_an_emptied_level() {
    let q = LevelQueue::with_aging(Aging::after(Duration::from_secs(60)).unwrap());
    for (x, p) in [(1, High), (2, Low), (3, Low)] {
        q.push(x, p);
    }
    // The first pop checks aging (nothing overdue), so this thread's next pops skip it.
    assert_eq!(q.pop(), Some((1, High)));
    assert_eq!(
        q.levels.nonempty.load(Ordering::SeqCst),
        (1 << High.index()) | (1 << Low.index())
    );
    // Skipping the check, the pop finds High empty with Low's bit set: it retires High and
    // serves Low.
    assert_eq!(q.pop(), Some((2, Low)));
    assert_eq!(q.levels.nonempty.load(Ordering::SeqCst), 1 << Low.index());
    q.push(4, High);
    assert_eq!(drain(&q), [4, 3]);
    assert_eq!(q.counts().aged, 0);
}

#[test]
fn a_level_refilled_after_it_was_retired_is_seen() {
    let q = LevelQueue::with_aging(Aging::off());
    q.push(1, High);
    assert_eq!(q.pop(), Some((1, High)));
    assert_eq!(q.pop(), None);
    q.push(2, Idle);
    q.push(3, High);
    assert_eq!(drain(&q), [3, 2]);
}

#[test]
fn overdue_entry_beats_newer_higher_work_then_alternates() {
    let bound = Duration::from_millis(20);
    let q = LevelQueue::with_aging(Aging::after(bound).unwrap());
    q.push(1, Idle);
    q.push(2, Idle);
    std::thread::sleep(bound * 2);
    for x in [10, 11, 12] {
        q.push(x, Critical);
    }
    // Idle 1 is overdue: served first; then a priority pop; then Idle 2 (its front estimate
    // is Idle 1's stamp, so it is overdue as well); then the rest by priority.
    assert_eq!(drain(&q), [1, 10, 2, 11, 12]);
    assert_eq!(q.counts().aged, 2);
}

#[test]
fn fresh_lower_work_waits_for_higher_work() {
    let q = LevelQueue::with_aging(Aging::after(Duration::from_secs(60)).unwrap());
    q.push(1, Idle);
    q.push(2, High);
    q.push(3, High);
    assert_eq!(drain(&q), [2, 3, 1]);
    assert_eq!(q.counts().aged, 0);
}

#[test]
fn counts_per_level() {
    let q = LevelQueue::with_aging(Aging::off());
    q.push(1, Idle);
    q.push(2, Idle);
    q.push(3, High);
    q.pop();
    let c = q.counts();
    assert_eq!(c.queued, [2, 0, 0, 0, 0]);
    assert_eq!(c.pushed, [2, 0, 0, 1, 0]);
}

/// `pushed` is counted on the pop side (each popping thread in its own stripe) plus what is
/// still queued: with pushers and poppers on several threads, once they have stopped it is
/// exactly the number of pushes per level, whichever threads popped and whatever is left.
#[test]
fn pushed_counts_every_push_across_popping_threads() {
    let q = std::sync::Arc::new(LevelQueue::with_aging(Aging::default()));
    const PER_THREAD: u32 = 5_000;
    let pushers: Vec<_> = [Idle, Normal, Critical]
        .into_iter()
        .map(|level| {
            let q = q.clone();
            std::thread::spawn(move || (0..PER_THREAD).for_each(|x| q.push(x, level)))
        })
        .collect();
    // Four poppers take a part of the entries while the pushes run, each in its own stripe.
    let poppers: Vec<_> = (0..4)
        .map(|_| {
            let q = q.clone();
            std::thread::spawn(move || {
                let mut taken = 0;
                while taken < PER_THREAD / 2 {
                    taken += u32::from(q.pop().is_some());
                }
            })
        })
        .collect();
    pushers
        .into_iter()
        .chain(poppers)
        .for_each(|t| t.join().unwrap());
    let c = q.counts();
    let n = u64::from(PER_THREAD);
    assert_eq!(c.pushed, [n, 0, n, 0, n]);
    assert_eq!(
        c.queued.iter().sum::<usize>(),
        3 * PER_THREAD as usize - 2 * PER_THREAD as usize
    );
    // Draining moves entries from `queued` to the popped count: `pushed` stays.
    drain(&q);
    assert_eq!(q.counts().pushed, [n, 0, n, 0, n]);
    assert_eq!(q.counts().queued, [0; LEVELS]);
}
