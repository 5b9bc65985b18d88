//! The starvation guard ([`Guard`]): per level, the front and newest stamp estimates that the
//! aging rule compares, the coarse clock they come from, and the choice of an overdue level.

use pool_core::sync::{AtomicBool, AtomicU64, CachePadded, Ordering};

use super::PopRun;
use crate::clock::Clock;
use crate::levels::{overdue_level, LEVELS};

/// The starvation guard's state.
pub(super) struct Guard {
    /// Nanoseconds an entry may wait before it is overdue.
    bound: u64,
    pub(super) clock: Clock,
    /// Per level, an estimate of the front entry's stamp that is never later than it: raised to
    /// the stamp of each entry popped there (the next front was pushed after it), and set by the
    /// push that makes the level non-empty. Only ever raised (`fetch_max`), and written only
    /// when it changes, which with coarse stamps is rarely.
    fronts: [CachePadded<AtomicU64>; LEVELS],
    /// Per level, the newest stamp pushed there: an upper bound of the front's stamp, for rule 3
    /// (README.md). Written by pushers only when it changes (about once per tick).
    pub(super) newest: [CachePadded<AtomicU64>; LEVELS],
    /// The previous pop was served by aging; the next goes by priority (README.md, "Order").
    last_pop_aged: AtomicBool,
    pub(super) aged: AtomicU64,
}

impl Guard {
    /// The guard's state for a bound of `bound` nanoseconds, before any push.
    pub(super) fn new(bound: u64) -> Self {
        Guard {
            bound,
            clock: Clock::new(bound),
            fronts: std::array::from_fn(|_| CachePadded::new(AtomicU64::new(0))),
            newest: std::array::from_fn(|_| CachePadded::new(AtomicU64::new(0))),
            last_pop_aged: AtomicBool::new(false),
            aged: AtomicU64::new(0),
        }
    }

    /// Which level to take from, and whether that is the starvation guard's doing. Reads the
    /// clock only when a level below the top is non-empty, the previous pop was not aged, and
    /// this thread is not within a skip after a check that found nothing overdue.
    #[inline]
    pub(super) fn choose(&self, bits: u8, top: usize, run: PopRun) -> (usize, bool) {
        let below = bits & !(1u8 << top);
        if below == 0 || self.skips_check(run) {
            return (top, false);
        }
        let now = self.clock.refresh();
        let front = |i: usize| self.fronts[i].load(Ordering::Relaxed);
        let top_newest = self.newest[top].load(Ordering::Relaxed);
        match overdue_level(below, top_newest, front, now, self.bound) {
            Some(level) => (level, true),
            None => {
                run.nothing_overdue();
                (top, false)
            }
        }
    }

    /// Whether this pop goes by priority without an aging check even though a lower level has
    /// work: the previous pop was aged (they alternate), or this thread skips checks after one
    /// that found nothing overdue.
    #[inline]
    pub(super) fn skips_check(&self, run: PopRun) -> bool {
        self.last_pop_aged.load(Ordering::Relaxed) || !run.may_check_aging()
    }

    /// Bookkeeping after a pop took an entry stamped `stamp` (the entry's 32-bit stamp) from
    /// `level`.
    #[inline]
    pub(super) fn served(&self, level: usize, stamp: u32, by_aging: bool) {
        let front = &self.fronts[level];
        // Most pops take an entry of the stamp unit the estimate already shows (stamps come from
        // the coarse tick): then widening the stamp and raising the estimate would change
        // nothing, so compare the 32-bit units first (callgrind: about 10 instructions a pop).
        // Equal low 32 bits with a different widened value needs an estimate 2^32 units (19.5
        // hours) behind the entry: then the estimate stays behind, which can make one aged pop
        // early, never late (README.md, "Front estimates").
        if Clock::stamp_of(front.load(Ordering::Relaxed)) != stamp {
            raise(front, self.clock.widen(stamp));
        }
        // Relaxed, and written only on a change: the alternation is a rate limit, and two workers
        // that both read `false` may each serve one aged entry (one per worker, as README.md says).
        if self.last_pop_aged.load(Ordering::Relaxed) != by_aging {
            self.last_pop_aged.store(by_aging, Ordering::Relaxed);
        }
        if by_aging {
            self.aged.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// [`Clock::refresh`], out of line: pushes and pops call it rarely (clock.rs), and inline
    /// its clock read would make their common path save more registers.
    #[cold]
    #[inline(never)]
    pub(super) fn refresh_clock(&self) {
        self.clock.refresh();
    }

    #[inline]
    pub(super) fn raise_front(&self, level: usize, stamp: u64) {
        raise(&self.fronts[level], stamp);
    }
}

/// Raises `stamp_of` to `stamp`, writing (and taking the line) only when that changes it.
#[inline]
pub(super) fn raise(stamp_of: &AtomicU64, stamp: u64) {
    if stamp_of.load(Ordering::Relaxed) < stamp {
        stamp_of.fetch_max(stamp, Ordering::Relaxed);
    }
}
