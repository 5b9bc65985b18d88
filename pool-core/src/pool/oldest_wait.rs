//! How long the oldest queued task has waited, from the event counters alone: no stamp on a
//! task and no clock read on the submit path.
//!
//! The counters say how many tasks were accepted (`submitted - rejected`) and how many left the
//! queue (`started + cancelled`). Kept at a few instants, the accepted count dates the tasks:
//! the one accepted `left + 1`-th came after the last look whose accepted count had not reached
//! it, and no later than the first look that had. So the reader's own looks (a controller's
//! ticks, a metrics scrape) are the clock, at no cost to anyone else: a stamp per task would
//! have grown the FIFO path's 16-byte queue entry and put a clock read on every submit.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::stats::PoolStats;

/// Looks kept while tasks queued at them are still waiting. At one look per 100 ms tick that is
/// 6.4 s of backlog to within a tick; past that, every other look is forgotten (see
/// [`OldestWait::observe`]), so the span doubles and the resolution halves.
const LOOKS: usize = 64;

/// How long the oldest queued task has waited, derived from [`PoolStats`] snapshots taken
/// over time: give it every snapshot of one pool, with the instant it was read.
///
/// The figure is a lower bound, to within the interval between looks:
///
/// - on the default FIFO path tasks start in the order they were accepted, so the task at the
///   head was accepted after one look and by the next: it has waited at least the time since
///   that next look, and at most one interval more;
/// - with another order (a priority policy, a worker's own deque) the oldest queued task may be
///   older than the one the counts point at, never younger: still a lower bound;
/// - a task cancelled through its handle counts until the pool discards its entry, as in
///   [`PoolStats::queued`].
///
/// The first look has nothing to date the queued tasks by and reads zero, as does any look
/// that finds nothing queued. Its memory is 64 looks (about 1.5 KiB); a backlog that outlasts
/// them is dated more coarsely, never later than it was accepted.
///
/// # Examples
///
/// ```
/// use pool_core::{OldestWait, ThreadPool};
/// use std::time::{Duration, Instant};
///
/// let pool = ThreadPool::new(1).unwrap();
/// let (release, held) = std::sync::mpsc::channel::<()>();
/// // The only worker is held, so the second task waits in the queue.
/// pool.spawn(move || drop(held.recv())).unwrap();
/// pool.spawn(|| ()).unwrap();
///
/// let mut oldest = OldestWait::new();
/// let tick = Instant::now();
/// // The first look has nothing to date the queue by.
/// assert_eq!(oldest.observe(&pool.stats(), tick), Duration::ZERO);
/// // A look 100 ms later: the task queued at the first look has waited at least that long.
/// let later = tick + Duration::from_millis(100);
/// assert_eq!(oldest.observe(&pool.stats(), later), Duration::from_millis(100));
///
/// drop(release);
/// pool.shutdown();
/// assert_eq!(oldest.observe(&pool.stats(), Instant::now()), Duration::ZERO);
/// ```
#[derive(Clone, Debug, Default)]
pub struct OldestWait {
    /// `(when, tasks accepted by then)`, oldest first, the counts strictly increasing; only
    /// looks with tasks still queued from them are kept.
    looks: VecDeque<(Instant, u64)>,
}

impl OldestWait {
    /// A tracker that has seen nothing yet.
    pub fn new() -> OldestWait {
        OldestWait::default()
    }

    /// Takes one look: `stats` is a snapshot of the pool, read just before `now`. Returns how
    /// long the oldest task queued at that read has waited by `now`, at least (zero when
    /// nothing is queued).
    ///
    /// Instants out of order or snapshots of another pool give a meaningless figure, never a
    /// panic.
    pub fn observe(&mut self, stats: &PoolStats, now: Instant) -> Duration {
        let accepted = stats.submitted.saturating_sub(stats.rejected);
        // Summed after the later stages (`PoolStats` reads them first), so never ahead of
        // `accepted`; and at least what had left when the read began, so the task it points at
        // was still queued then.
        let left = stats.started.saturating_add(stats.cancelled);
        // A look whose tasks have all left dates nothing any more: `left` only grows.
        while self
            .looks
            .front()
            .is_some_and(|&(_, by_then)| by_then <= left)
        {
            self.looks.pop_front();
        }
        if accepted <= left {
            return Duration::ZERO;
        }
        if self
            .looks
            .back()
            .is_none_or(|&(_, by_then)| by_then < accepted)
        {
            if self.looks.len() == LOOKS {
                // Forget every other look, not the oldest: a forgotten look's tasks are dated
                // by the next one kept, which is later, so the figure stays a lower bound.
                let mut index = 0;
                self.looks.retain(|_| {
                    index += 1;
                    index % 2 == 1
                });
            }
            self.looks.push_back((now, accepted));
        }
        self.looks
            .front()
            .map_or(Duration::ZERO, |&(at, _)| now.saturating_duration_since(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(submitted: u64, rejected: u64, started: u64, cancelled: u64) -> PoolStats {
        PoolStats {
            submitted,
            rejected,
            started,
            cancelled,
            ..PoolStats::default()
        }
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn dates_the_head_by_the_first_look_that_counted_it() {
        let t0 = Instant::now();
        let mut oldest = OldestWait::new();
        // Five queued at the first look: nothing to date them by.
        assert_eq!(oldest.observe(&stats(5, 0, 0, 0), t0), Duration::ZERO);
        // Three more by the second look; two of the first five started.
        assert_eq!(oldest.observe(&stats(8, 0, 2, 0), t0 + 100 * MS), 100 * MS);
        // The first five gone (four started, one cancelled): the head is one of the three
        // counted first at the second look.
        assert_eq!(oldest.observe(&stats(8, 0, 4, 1), t0 + 200 * MS), 100 * MS);
        // A rejected submission is no queued task: all eight accepted have left.
        assert_eq!(
            oldest.observe(&stats(9, 1, 7, 1), t0 + 300 * MS),
            Duration::ZERO
        );
        assert!(oldest.looks.is_empty());
    }

    #[test]
    fn hostile_input_gives_a_figure_not_a_panic() {
        let t0 = Instant::now();
        let mut oldest = OldestWait::new();
        oldest.observe(&stats(10, 0, 0, 0), t0 + 100 * MS);
        // An instant before the look, and counters that went backwards (another pool's).
        assert_eq!(oldest.observe(&stats(10, 0, 0, 0), t0), Duration::ZERO);
        assert_eq!(oldest.observe(&stats(3, 9, 1, 0), t0), Duration::ZERO);
        let saturated = stats(u64::MAX, 0, u64::MAX - 1, 0);
        assert_eq!(oldest.observe(&saturated, t0 + 200 * MS), Duration::ZERO);
        assert_eq!(oldest.observe(&saturated, t0 + 300 * MS), 100 * MS);
        let overflowing = stats(u64::MAX, 0, u64::MAX, u64::MAX);
        assert_eq!(oldest.observe(&overflowing, t0), Duration::ZERO);
    }

    /// Random FIFO histories against the truth: each task's acceptance time is known, tasks
    /// leave in acceptance order, and every look must read at most the head's true wait and,
    /// while the looks kept are enough, at least that minus the longest gap between looks.
    #[test]
    fn never_overstates_the_head_and_is_exact_to_a_look_while_the_looks_last() {
        let mut rng = fastrand::Rng::with_seed(13);
        for _ in 0..200 {
            let t0 = Instant::now();
            let mut oldest = OldestWait::new();
            let mut accepted_at: Vec<Duration> = Vec::new();
            let (mut left, mut rejected) = (0usize, 0u64);
            let mut now = Duration::ZERO;
            let mut longest_gap = Duration::ZERO;
            let mut backlogged_looks = 0usize;
            for _ in 0..rng.usize(1..150) {
                // Tasks accepted at random moments before the look.
                let gap = rng.u32(1..50) * MS;
                longest_gap = longest_gap.max(gap);
                for _ in 0..rng.usize(0..4) {
                    accepted_at.push(now + rng.u32(0..gap.as_millis() as u32) * MS);
                }
                accepted_at.sort();
                rejected += rng.u64(0..2);
                now += gap;
                left = rng.usize(left..=accepted_at.len());
                let (started, cancelled) = (left as u64 / 2, left as u64 - left as u64 / 2);
                let submitted = accepted_at.len() as u64 + rejected;
                let read =
                    oldest.observe(&stats(submitted, rejected, started, cancelled), t0 + now);
                let Some(&head) = accepted_at.get(left) else {
                    assert_eq!(read, Duration::ZERO);
                    backlogged_looks = 0;
                    continue;
                };
                let truth = now - head;
                assert!(read <= truth, "read {read:?}, the head waited {truth:?}");
                if backlogged_looks < LOOKS {
                    assert!(
                        read + longest_gap >= truth,
                        "read {read:?}, truth {truth:?}"
                    );
                }
                backlogged_looks += 1;
            }
        }
    }

    #[test]
    fn a_backlog_longer_than_the_looks_is_dated_coarsely_never_late() {
        let t0 = Instant::now();
        let mut oldest = OldestWait::new();
        // One task accepted and none leaving before each of 200 looks, 100 ms apart.
        for look in 1..=200u32 {
            let now = t0 + look * 100 * MS;
            oldest.observe(&stats(u64::from(look), 0, 0, 0), now);
            assert!(oldest.looks.len() <= LOOKS);
        }
        let now = t0 + 20_000 * MS;
        // The first task was counted at the first look, kept through every thinning.
        assert_eq!(oldest.observe(&stats(200, 0, 0, 0), now), 19_900 * MS);
        // Half the backlog gone: the head was counted at look 101; the look kept for it may
        // be later, never earlier.
        let read = oldest.observe(&stats(200, 0, 100, 0), now);
        assert!(
            read <= 9_900 * MS && read >= 9_900 * MS - 6_400 * MS,
            "{read:?}"
        );
    }
}
