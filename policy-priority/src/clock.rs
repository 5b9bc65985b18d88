//! The aging stamp: a coarse clock that pushes read with one relaxed load.
//!
//! Reading `Instant::now()` on every push cost about a fifth of a push+pop. Instead the queue
//! keeps `tick`, the nanoseconds since its epoch as of the last *refresh*, and a push stamps its
//! entry with `tick` as it is. A refresh reads the clock and raises `tick`; the queue refreshes
//! (see `LevelQueue`):
//!
//! - on every pop that checks aging (a level below the top is non-empty, the previous pop was
//!   not an aged one, and the thread is not skipping checks after one that found nothing
//!   overdue): that pop needs the time anyway;
//! - on every [`REFRESH_EVERY`]th pop of each thread (empty pops included), so that a run with
//!   only one busy level (which never checks aging) still moves the tick;
//! - on a quiet retire (a thread found the queue empty 16 times in a row: the workers are about
//!   to park), and on a push into a level whose non-empty bit is clear (that entry becomes the
//!   level's front; after an idle spell `tick` may be arbitrarily old, and the quiet retire
//!   cleared the bits before the spell). An empty pop does not refresh: when the workers keep up
//!   with a submitter that was one clock read per task.
//!
//! A refresh stores only when it moves `tick` forward by at least 1/64 of the aging bound (the
//! granularity), so the line every push reads is written at most about 64 times per bound.
//!
//! **The bound.** `tick` never runs ahead of the clock, so a stamp is never later than the true
//! push time, and aging decisions compare against a fresh clock read. A stamp is earlier than the
//! push by less than the granularity plus the time since the last refresh: about one task length
//! per worker while several levels are busy, at most [`REFRESH_EVERY`] task lengths of the busiest
//! worker while a single level is busy (or a drained level keeps its bit), nothing more for a push
//! into a level whose bit is clear (it refreshes first). `README.md`, "Lazy retire", has the one
//! exception: a standalone queue whose popping thread stops before a quiet retire. An entry can be
//! served by aging that much early, never late on account of its stamp: with the default one-second
//! bound and tasks under a millisecond, under 16 ms + 32 ms, about 5% of the bound.

use std::time::Instant;

use pool_core::sync::{AtomicU64, CachePadded, Ordering};

/// An entry's stamp counts units of `2^STAMP_SHIFT` nanoseconds (16.4 µs: finer than the
/// granularity of any aging bound over a millisecond) in 32 bits, so it stays exact for 2^46 ns,
/// about 19.5 hours of waiting.
const STAMP_SHIFT: u32 = 14;

/// Each thread refreshes the tick on every this-many pops (a power of two: a mask, not a
/// division, on the pop path).
pub(crate) const REFRESH_EVERY: u32 = 32;

pub(crate) struct Clock {
    epoch: Instant,
    /// A refresh stores only when it moves `tick` by at least this much (1/64 of the aging
    /// bound): every store takes the line from the submitter, which reads it on every push.
    granularity: u64,
    /// Nanoseconds since `epoch` at the last refresh; only ever raised. Its own cache line: the
    /// submitter reads it on every push, and it is written only on refreshes.
    tick: CachePadded<AtomicU64>,
}

impl Clock {
    /// A clock for an aging bound of `bound` nanoseconds.
    pub(crate) fn new(bound: u64) -> Self {
        Clock {
            epoch: Instant::now(),
            granularity: bound / 64,
            tick: CachePadded::new(AtomicU64::new(0)),
        }
    }

    /// The time of the last refresh, in nanoseconds (relaxed: it is a hint about time, not a
    /// synchronisation point; any value some refresh stored is a valid lower bound).
    #[inline]
    pub(crate) fn tick(&self) -> u64 {
        self.tick.load(Ordering::Relaxed)
    }

    /// A tick rounded down to a whole stamp unit ([`STAMP_SHIFT`]): still never later than the
    /// push, and exactly what [`widen`](Self::widen) gives back for its stamp.
    #[inline]
    pub(crate) fn round(tick: u64) -> u64 {
        tick & !((1 << STAMP_SHIFT) - 1)
    }

    /// `tick` as an entry's 32-bit stamp: in stamp units, the high bits dropped.
    #[inline]
    pub(crate) fn stamp_of(tick: u64) -> u32 {
        (tick >> STAMP_SHIFT) as u32
    }

    /// The rounded nanosecond time of a stamp taken from the tick less than 2^32 stamp units
    /// (19.5 hours) ago: the stamp was the tick then, and the tick only rises, so the stamp's
    /// age is the wrapping difference of the low 32 bits. An entry that waited longer looks
    /// younger by a multiple of that (README.md, "The aging stamp").
    #[inline]
    pub(crate) fn widen(&self, stamp: u32) -> u64 {
        let now = self.tick() >> STAMP_SHIFT;
        let age = u64::from((now as u32).wrapping_sub(stamp));
        now.saturating_sub(age) << STAMP_SHIFT
    }

    /// Reads the clock, raises `tick` to it if that moves it by at least the granularity, and
    /// returns the exact time read.
    pub(crate) fn refresh(&self) -> u64 {
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        // Measured: with a store on every refresh, the worker's refreshes and the submitter's
        // loads bounced this line on nearly every task (a quarter of a pop's time).
        if self
            .tick
            .load(Ordering::Relaxed)
            .saturating_add(self.granularity)
            <= now
        {
            self.tick.fetch_max(now, Ordering::Relaxed);
        }
        now
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_widens_back_to_its_rounded_tick_across_the_32_bit_wrap() {
        let clock = Clock::new(1_000_000_000);
        let wrap = 1u64 << (32 + STAMP_SHIFT);
        for (pushed, popped) in [
            (0, 0),
            (123_456_789, 987_654_321),
            // The low 32 bits of the units wrap between the push and the pop.
            (wrap - 1, wrap + 99),
            (5 * wrap + 12_345, 5 * wrap + wrap / 2),
        ] {
            clock.tick.store(pushed, Ordering::Relaxed);
            let stamp = Clock::stamp_of(clock.tick());
            clock.tick.store(popped, Ordering::Relaxed);
            let widened = clock.widen(stamp);
            assert_eq!(widened, Clock::round(pushed), "pushed at {pushed}");
            // Never later than the push, and early by less than one unit.
            assert!(widened <= pushed && pushed - widened < 1 << STAMP_SHIFT);
        }
    }
}
