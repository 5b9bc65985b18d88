//! The level data and the aging rule, free of any synchronisation: the entry a level holds, the
//! counters a snapshot reports, and the choice of an overdue level, which the unit tests drive
//! with synthetic stamps. [`crate::LevelQueue`] applies them to five lock-free injectors; see
//! `README.md` beside this file for the protocol.

use pool_core::Priority;

/// Number of levels; `Priority::index` is 0 (Idle) ..= 4 (Critical).
pub(crate) const LEVELS: usize = 5;

/// What a level's injector holds: an item with the coarse time of its push (see `clock.rs`) in
/// 32 bits. The queue is generic over it so that an item with room for the stamp inside it
/// (pool-core's `QueuedTask`, in its `tag`) is stored as it is: a 24-byte entry makes a 32-byte
/// injector slot, where an item beside a stamp of its own would make 40 (README.md, "Measured
/// figures").
pub(crate) trait Slot: Sized {
    /// What the queue's user pushes.
    type Item;
    /// The item, stamped (`stamp` is 0 with aging off).
    fn stamped(item: Self::Item, stamp: u32) -> Self;
    fn stamp(&self) -> u32;
    /// What a pop hands out: the item with its level, or an item that knows its level as it is
    /// (no pair to build and move on the pop path).
    type Popped;
    fn popped(self, level: Priority) -> Self::Popped;
}

/// Stripes of the per-thread statistics (`PriorityQueue`'s `completed`, `Levels`' `popped`): a
/// power of two, at least the usual worker count.
pub(crate) const STRIPES: usize = 8;

/// The calling thread's stripe: threads take stripes round-robin on first use. Under loom every
/// thread uses stripe 0, because a process-wide counter would give each model iteration
/// different stripes, and loom requires every iteration to make the same accesses (pool-core's
/// `ExternalCounters::mine` does the same for the same reason).
#[inline]
pub(crate) fn my_stripe() -> usize {
    #[cfg(loom)]
    {
        0
    }
    #[cfg(not(loom))]
    {
        // `const`-initialised (no lazy-init check on every finished task); `STRIPES` means
        // "not taken yet".
        std::thread_local! {
            static STRIPE: std::cell::Cell<usize> = const { std::cell::Cell::new(STRIPES) };
        }
        // The first use out of line: every pop takes this path, and the id's locked add inline
        // made the pop keep more values across it (callgrind: a spilled copy of the entry).
        #[cold]
        #[inline(never)]
        fn take(stripe: &std::cell::Cell<usize>) -> usize {
            let mine = pool_core::sync::next_unique_id() as usize % STRIPES;
            stripe.set(mine);
            mine
        }
        STRIPE.with(|stripe| match stripe.get() {
            STRIPES => take(stripe),
            mine => mine,
        })
    }
}

/// The slot of a [`crate::LevelQueue`] of any item: the item beside its stamp.
pub(crate) struct Entry<T> {
    stamp: u32,
    item: T,
}

impl<T> Slot for Entry<T> {
    type Item = T;

    #[inline]
    fn stamped(item: T, stamp: u32) -> Self {
        Entry { stamp, item }
    }

    #[inline]
    fn stamp(&self) -> u32 {
        self.stamp
    }

    type Popped = (T, Priority);

    #[inline]
    fn popped(self, level: Priority) -> (T, Priority) {
        (self.item, level)
    }
}

/// What the queue counted so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) queued: [usize; LEVELS],
    pub(crate) pushed: [u64; LEVELS],
    pub(crate) aged: u64,
}

/// The index of the highest set bit of a non-zero bitmap: the most urgent non-empty level.
#[inline]
pub(crate) fn top_level(bits: u8) -> usize {
    debug_assert_ne!(bits, 0, "no level to serve");
    7 - bits.leading_zeros() as usize
}

/// The aging rule. `below` holds the non-empty levels under the top one; `front(i)` is the
/// estimate of level `i`'s front stamp (a lower bound: the front was pushed at or after it);
/// `top_newest` is the newest stamp pushed at the top level (an upper bound of its front).
/// Returns the level whose front estimate is the oldest among those that waited longer than
/// `bound` at `now`, unless even the top level's newest entry is strictly older (then plain
/// priority order already serves older work first, and aging would only reorder). A tie goes to
/// aging: stamps are coarse (clock.rs), so equal stamps say "pushed in the same refresh period",
/// and the lower entry is overdue.
pub(crate) fn overdue_level(
    below: u8,
    top_newest: u64,
    front: impl Fn(usize) -> u64,
    now: u64,
    bound: u64,
) -> Option<usize> {
    let mut best: Option<(u64, usize)> = None;
    let mut bits = below;
    while bits != 0 {
        let i = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        let stamp = front(i);
        let older = best.is_none_or(|(best_stamp, _)| stamp < best_stamp);
        if now.saturating_sub(stamp) > bound && older {
            best = Some((stamp, i));
        }
    }
    let (stamp, level) = best?;
    (stamp <= top_newest).then_some(level)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: u8 = 1 << 0;
    const LOW: u8 = 1 << 1;
    const NORMAL: u8 = 1 << 2;

    fn fronts(stamps: [u64; LEVELS]) -> impl Fn(usize) -> u64 {
        move |i| stamps[i]
    }

    #[test]
    fn top_is_the_highest_bit() {
        assert_eq!(top_level(0b1), 0);
        assert_eq!(top_level(0b10110), 4);
        assert_eq!(top_level(0b01000), 3);
    }

    #[test]
    fn waiting_exactly_the_bound_is_not_overdue() {
        let f = fronts([0; LEVELS]);
        assert_eq!(overdue_level(IDLE, 50, &f, 100, 100), None);
        assert_eq!(overdue_level(IDLE, 50, &f, 101, 100), Some(0));
    }

    #[test]
    fn oldest_overdue_front_across_levels() {
        // Idle's front (1) is older than Low's (5); both are overdue at 100 with bound 10.
        let f = fronts([1, 5, 0, 0, 0]);
        assert_eq!(overdue_level(IDLE | LOW, 50, &f, 100, 10), Some(0));
        // Nothing has waited longer than 10 at 11.
        assert_eq!(overdue_level(IDLE | LOW, 50, &f, 11, 10), None);
        // Only Low is overdue at 14.
        let f = fronts([5, 1, 0, 0, 0]);
        assert_eq!(overdue_level(IDLE | LOW, 50, &f, 14, 10), Some(1));
    }

    #[test]
    fn an_older_top_level_is_plain_priority() {
        // Even the top level's newest entry (4) is older than Low's front (5).
        let f = fronts([0, 5, 0, 0, 0]);
        assert_eq!(overdue_level(LOW, 4, &f, 100, 10), None);
        // Same coarse stamp: the overdue lower entry is served.
        assert_eq!(overdue_level(LOW, 5, &f, 100, 10), Some(1));
    }

    #[test]
    fn nothing_below_nothing_to_age() {
        let f = fronts([0; LEVELS]);
        assert_eq!(overdue_level(0, u64::MAX, &f, u64::MAX, 1), None);
        assert_eq!(overdue_level(NORMAL, 9, fronts([9; LEVELS]), 5, 1), None);
    }
}
