//! The worker count: live workers and the target, in one atomic word.
//!
//! Keeping both in one word closes the resize race: a worker deciding to retire compares against
//! the target it read in the same compare-and-swap that takes it off the live count, so a
//! `set_threads` that raises the target in between makes the retirement fail instead of leaving
//! the pool below its target.

use crate::sync::{AtomicU64, Ordering};

const LIVE_MASK: u64 = u32::MAX as u64;

fn pack(live: u64, target: u64) -> u64 {
    (target << 32) | live
}

fn live_of(word: u64) -> u64 {
    word & LIVE_MASK
}

fn target_of(word: u64) -> u64 {
    word >> 32
}

#[derive(Debug)]
pub(crate) struct Size(AtomicU64);

impl Size {
    pub(crate) fn new(target: usize) -> Self {
        Size(AtomicU64::new(pack(0, clamp(target))))
    }

    pub(crate) fn live(&self) -> usize {
        live_of(self.0.load(Ordering::SeqCst)) as usize
    }

    pub(crate) fn target(&self) -> usize {
        target_of(self.0.load(Ordering::SeqCst)) as usize
    }

    /// Whether the pool has more live workers than it wants.
    pub(crate) fn surplus(&self) -> bool {
        let word = self.0.load(Ordering::SeqCst);
        live_of(word) > target_of(word)
    }

    /// Counts a worker about to be started.
    pub(crate) fn add_live(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    /// Uncounts a worker: its start failed, or it exited at shutdown.
    pub(crate) fn remove_live(&self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }

    /// Sets the target; returns how many workers to start to reach it.
    pub(crate) fn set_target(&self, target: usize) -> usize {
        let target = clamp(target);
        let mut word = self.0.load(Ordering::SeqCst);
        loop {
            let next = pack(live_of(word), target);
            match self
                .0
                .compare_exchange(word, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return target.saturating_sub(live_of(word)) as usize,
                Err(actual) => word = actual,
            }
        }
    }

    /// Takes the calling worker off the live count if the pool has a surplus.
    pub(crate) fn try_retire(&self) -> bool {
        let mut word = self.0.load(Ordering::SeqCst);
        loop {
            if live_of(word) <= target_of(word) {
                return false;
            }
            match self
                .0
                .compare_exchange(word, word - 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(actual) => word = actual,
            }
        }
    }
}

/// Targets beyond `u32::MAX` threads cannot be started anyway; clamping keeps the packing exact.
fn clamp(n: usize) -> u64 {
    (n as u64).min(LIVE_MASK)
}
