//! The single-threaded core of the queue: five FIFO levels, a bitmap of the non-empty ones, and
//! the aging rule. [`crate::LevelQueue`] puts it behind one mutex; see `README.md` beside this file
//! for why that is the whole concurrency story.
//!
//! Time is passed in as nanoseconds since the queue's epoch (a closure, so that a pop that cannot
//! age anything never reads the clock); the unit tests drive it with a synthetic clock.

use std::collections::VecDeque;

use pool_core::Priority;

/// Number of levels; `Priority::index` is 0 (Idle) ..= 4 (Critical).
pub(crate) const LEVELS: usize = 5;

struct Entry<T> {
    /// When it was pushed, in nanoseconds since the epoch. Non-decreasing in push order (see
    /// `Levels::push`), so the front of each level is that level's oldest entry.
    stamp: u64,
    item: T,
}

/// Five FIFO levels. `pop` is O(1): the highest non-empty level comes from the bitmap, and aging
/// only looks at the (at most five) level fronts.
pub(crate) struct Levels<T> {
    queues: [VecDeque<Entry<T>>; LEVELS],
    /// Bit `i` set iff `queues[i]` is non-empty.
    nonempty: u8,
    /// The largest stamp handed out: stamps never go backwards even if two pushers read the clock
    /// in one order and take the lock in the other.
    last_stamp: u64,
    /// `None`: aging off. Otherwise an entry waiting longer than this many nanoseconds is overdue.
    bound: Option<u64>,
    /// The previous pop was served by aging; the next one goes strictly by priority, so that a
    /// backlog of overdue low-priority work takes at most every other pop (see README.md).
    last_pop_aged: bool,
    len: usize,
    pushed: [u64; LEVELS],
    aged: u64,
}

/// What `Levels` counted so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) queued: [usize; LEVELS],
    pub(crate) pushed: [u64; LEVELS],
    pub(crate) aged: u64,
}

impl<T> Levels<T> {
    pub(crate) fn new(bound: Option<u64>) -> Self {
        Levels {
            queues: Default::default(),
            nonempty: 0,
            last_stamp: 0,
            bound,
            last_pop_aged: false,
            len: 0,
            pushed: [0; LEVELS],
            aged: 0,
        }
    }

    pub(crate) fn aging(&self) -> bool {
        self.bound.is_some()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Appends `item` at `level`. `now` is only called when aging is on.
    pub(crate) fn push(&mut self, item: T, level: Priority, now: impl FnOnce() -> u64) {
        let stamp = if self.aging() {
            self.last_stamp = self.last_stamp.max(now());
            self.last_stamp
        } else {
            0
        };
        let i = level.index();
        self.queues[i].push_back(Entry { stamp, item });
        self.nonempty |= 1 << i;
        self.len += 1;
        self.pushed[i] += 1;
    }

    /// Takes the next entry: the oldest overdue entry below the top level if there is one (and
    /// the previous pop was not already served by aging), else the front of the highest
    /// non-empty level. `now` is only called when there is something aging could serve.
    pub(crate) fn pop(&mut self, now: impl FnOnce() -> u64) -> Option<(T, Priority)> {
        if self.nonempty == 0 {
            return None;
        }
        let top = 7 - self.nonempty.leading_zeros() as usize;
        let below = self.nonempty & !(1u8 << top);
        let mut take = top;
        let mut by_aging = false;
        if let (Some(bound), false, true) = (self.bound, self.last_pop_aged, below != 0) {
            if let Some(level) = self.oldest_overdue(below, top, now(), bound) {
                take = level;
                by_aging = true;
            }
        }
        self.last_pop_aged = by_aging;
        if by_aging {
            self.aged += 1;
        }
        Some(self.take_front(take))
    }

    /// Among the fronts of the levels in `below`, the oldest one that waited longer than `bound`,
    /// unless the top level's front is older still (then plain priority order already serves the
    /// oldest overdue entry).
    fn oldest_overdue(&self, below: u8, top: usize, now: u64, bound: u64) -> Option<usize> {
        let mut best: Option<(u64, usize)> = None;
        let mut bits = below;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let stamp = self.queues[i].front().map_or(u64::MAX, |e| e.stamp);
            let older = match best {
                Some((best_stamp, _)) => stamp < best_stamp,
                None => true,
            };
            if now.saturating_sub(stamp) > bound && older {
                best = Some((stamp, i));
            }
        }
        let (stamp, level) = best?;
        let top_stamp = self.queues[top].front().map_or(u64::MAX, |e| e.stamp);
        (stamp < top_stamp).then_some(level)
    }

    fn take_front(&mut self, i: usize) -> (T, Priority) {
        let queue = &mut self.queues[i];
        // `i` comes from the bitmap, which is set exactly for the non-empty levels.
        let entry = queue
            .pop_front()
            .expect("bitmap out of sync with the levels");
        if queue.is_empty() {
            self.nonempty &= !(1 << i);
        }
        self.len -= 1;
        let level = Priority::from_index(i).expect("level index below LEVELS");
        (entry.item, level)
    }

    pub(crate) fn counts(&self) -> Counts {
        Counts {
            queued: std::array::from_fn(|i| self.queues[i].len()),
            pushed: self.pushed,
            aged: self.aged,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Priority::*;

    fn drain(levels: &mut Levels<u32>, now: u64) -> Vec<u32> {
        std::iter::from_fn(|| levels.pop(|| now).map(|(x, _)| x)).collect()
    }

    #[test]
    fn highest_level_first_fifo_within() {
        let mut q = Levels::new(None);
        for (x, p) in [
            (1, Idle),
            (2, Normal),
            (3, Critical),
            (4, Normal),
            (5, Low),
            (6, High),
        ] {
            q.push(x, p, || unreachable!("no clock without aging"));
        }
        assert_eq!(q.len(), 6);
        assert_eq!(drain(&mut q, 0), [3, 6, 2, 4, 5, 1]);
        assert_eq!(q.len(), 0);
        assert!(q.pop(|| 0).is_none());
    }

    #[test]
    fn overdue_entry_beats_newer_higher_work() {
        let mut q = Levels::new(Some(100));
        q.push(1, Idle, || 0);
        q.push(2, High, || 50);
        // Not overdue yet (waited exactly the bound, not longer): priority order.
        assert_eq!(q.pop(|| 100).map(|(x, _)| x), Some(2));
        q.push(3, High, || 150);
        assert_eq!(q.pop(|| 101), Some((1, Idle)));
        assert_eq!(q.counts().aged, 1);
        assert_eq!(q.pop(|| 101), Some((3, High)));
    }

    #[test]
    fn oldest_overdue_first_across_levels() {
        let mut q = Levels::new(Some(10));
        q.push(1, Low, || 5);
        q.push(2, Idle, || 1);
        q.push(3, Critical, || 50);
        q.push(4, Critical, || 50);
        q.push(5, Critical, || 50);
        // Both low entries are overdue; Idle is older. Aged pops alternate with priority pops.
        assert_eq!(drain(&mut q, 100), [2, 3, 1, 4, 5]);
        assert_eq!(q.counts().aged, 2);
    }

    #[test]
    fn overdue_top_level_is_plain_priority() {
        let mut q = Levels::new(Some(10));
        q.push(1, High, || 0);
        q.push(2, Low, || 5);
        assert_eq!(drain(&mut q, 100), [1, 2]);
        assert_eq!(
            q.counts().aged,
            0,
            "the oldest overdue entry was on top anyway"
        );
    }

    #[test]
    fn stamps_never_go_backwards() {
        let mut q = Levels::new(Some(10));
        q.push(1, Low, || 50);
        // A pusher that read the clock earlier but locked later gets the later stamp, so it
        // does not look older than the front of its level.
        q.push(2, Low, || 20);
        q.push(3, High, || 55);
        assert_eq!(drain(&mut q, 61), [1, 3, 2]);
    }

    #[test]
    fn no_clock_read_when_nothing_can_age() {
        let mut q = Levels::new(Some(10));
        q.push(1, Normal, || 0);
        q.push(2, Normal, || 0);
        assert_eq!(
            q.pop(|| unreachable!("a single level cannot age")),
            Some((1, Normal))
        );
    }

    #[test]
    fn counts_per_level() {
        let mut q = Levels::new(None);
        q.push(1, Idle, || 0);
        q.push(2, Idle, || 0);
        q.push(3, High, || 0);
        q.pop(|| 0);
        let c = q.counts();
        assert_eq!(c.queued, [2, 0, 0, 0, 0]);
        assert_eq!(c.pushed, [2, 0, 0, 1, 0]);
    }
}
