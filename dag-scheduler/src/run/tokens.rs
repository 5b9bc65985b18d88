//! A token's release, and the completion the last release fires (src/README.md, "Completion once:
//! tokens"). Tokens are taken in `submit.rs` (`Run::job`), one per job.

use std::time::Duration;

use pool_core::sync::{ErasedArc, Share};
use pool_core::wake_quietly;

use super::Run;

/// Releases one token (`share`); the last one completes the run and drops the run side's
/// reference. Inlined (every job ends with it); the completion is out of line.
///
/// # Safety
///
/// `share` is a token of `run`, and the caller does not use `run` afterwards.
#[inline(always)]
pub(super) unsafe fn release_token(run: *const Run, share: Share) {
    // SAFETY: the token keeps the run alive until its release below.
    let r = unsafe { &*run };
    // Every release is AcqRel: the last releaser sees every node's slot and timing (each was
    // written before its thread's release), and publishes them through the completion lock.
    // After a release that is not the last, the run may be freed at once: nothing follows.
    if r.tokens.release(share) {
        // SAFETY: this release took the tokens to zero.
        unsafe { Run::complete(run) };
    }
}

impl Run {
    /// Fires the run's completion and drops the run side's reference.
    ///
    /// # Safety
    ///
    /// The caller's release took the tokens to zero (`ShareCount::release` returned true), and it
    /// does not use `run` afterwards.
    #[cold]
    #[inline(never)]
    unsafe fn complete(run: *const Run) {
        // SAFETY: the run side's reference (below) keeps the run alive until it is dropped.
        unsafe { &*run }.signal_done();
        // SAFETY: `Run::launch` (mod.rs) leaked one strong reference for the run side; the
        // release that took the tokens to zero owns it, and no job can touch the run any more.
        unsafe { ErasedArc::decrement_strong_count(run) };
    }

    fn signal_done(&self) {
        let elapsed = self
            .now()
            .map(|end| Duration::from_nanos(end.saturating_sub(self.start_time)));
        let waker = {
            let mut done = self.done.lock();
            done.finished = true;
            done.elapsed = elapsed;
            done.waker.take()
        };
        self.done_cv.notify_all();
        if let Some(waker) = waker {
            // A user's waker must not take a worker down.
            wake_quietly(waker);
        }
    }
}
