//! [`PanicStreak`]: how many calls of one queue-policy method panicked in a row, so that the pool
//! looks again after a panic (a policy that panics now and then still gets its queue run) yet
//! gives the method up after many (a policy that always panics cannot keep a worker searching
//! for ever, nor keep a shutdown from finding the pool quiescent).

use crate::sync::{AtomicUsize, Ordering};

/// Calls in a row that panicked after which the pool gives the method up: its queue reads as
/// empty, and what the policy still holds stays counted as queued in the stats.
pub(crate) const PANICS_BEFORE_GIVING_UP: usize = 16;

/// Calls of one policy method that panicked in a row; a call that returns ends the streak.
#[derive(Debug)]
pub(crate) struct PanicStreak(AtomicUsize);

impl PanicStreak {
    pub(crate) fn new() -> Self {
        PanicStreak(AtomicUsize::new(0))
    }

    /// The call returned. Written only on a change: `pop` reports here on the path of every
    /// task, and the line stays shared, unwritten, while no call panics.
    #[inline(always)]
    pub(crate) fn returned(&self) {
        if self.0.load(Ordering::Relaxed) != 0 {
            self.0.store(0, Ordering::Relaxed);
        }
    }

    /// The call panicked; whether the streak has now reached the give-up mark.
    #[cold]
    pub(crate) fn panicked(&self) -> bool {
        self.0.fetch_add(1, Ordering::Relaxed) + 1 >= PANICS_BEFORE_GIVING_UP
    }

    /// The method is given up: it has panicked the give-up mark of times in a row.
    #[inline]
    pub(crate) fn given_up(&self) -> bool {
        self.0.load(Ordering::Relaxed) >= PANICS_BEFORE_GIVING_UP
    }

    /// The last call panicked, and the method is not given up yet: worth calling again.
    #[inline]
    pub(crate) fn worth_retrying(&self) -> bool {
        (1..PANICS_BEFORE_GIVING_UP).contains(&self.0.load(Ordering::Relaxed))
    }
}
