//! Parking idle workers without ever losing a wake-up. The protocol is in `README.md` beside this
//! file; the step numbers below refer to it.

use std::time::Instant;

use crate::sync::{fence, AtomicUsize, Condvar, Mutex, Ordering};

#[derive(Debug, Default)]
struct SleepState {
    /// Wake-ups handed out and not yet taken by a woken worker.
    permits: usize,
    /// Bumped by `wake_all`: every worker parked before the bump returns.
    generation: u64,
    /// Threads blocked in `wait_idle`.
    idle_waiters: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Sleep {
    state: Mutex<SleepState>,
    wake: Condvar,
    idle_changed: Condvar,
    /// Parked workers that no notifier has claimed yet. Written only under `state`'s lock; read
    /// without it on the submit path (step 3).
    idle: AtomicUsize,
}

impl Sleep {
    /// Parked workers no wake-up has been handed to.
    pub(crate) fn idle(&self) -> usize {
        self.idle.load(Ordering::SeqCst)
    }

    /// Parks the calling worker unless `must_stay_awake` says there is a reason not to (work,
    /// shutdown, retirement), checked after announcing the worker as idle (steps 1-2).
    pub(crate) fn park(&self, must_stay_awake: impl Fn() -> bool) {
        let mut state = self.state.lock();
        // Step 1: announce, then order the announcement before the re-check (pairs with step 3).
        self.idle.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        // Step 2: anything pushed before a notifier could have seen us is seen here.
        // `--cfg loom_broken` only (loom-tests checks that loom catches it): skip this re-check, so
        // a task pushed after the worker's last search but before step 1 is never seen.
        #[cfg(loom_broken)]
        let must_stay_awake = {
            drop(must_stay_awake);
            || false
        };
        if must_stay_awake() {
            self.idle.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        if state.idle_waiters > 0 {
            self.idle_changed.notify_all();
        }
        let generation = state.generation;
        loop {
            state = self.wake.wait(state);
            if state.permits > 0 {
                // Step 4: a notifier already took us off `idle`.
                state.permits -= 1;
                return;
            }
            if state.generation != generation {
                // Step 5: `wake_all` reset `idle` for everyone parked before it.
                return;
            }
            // A spurious wake-up: nobody asked for us, keep waiting.
        }
    }

    /// Wakes one parked worker, if any, after the caller made work visible (step 3).
    #[inline]
    pub(crate) fn notify_one(&self) {
        #[cfg(not(loom_broken_notify_fence))] // planted bug (loom-tests, `.ci/loom-planted`)
        fence(Ordering::SeqCst);
        if self.idle.load(Ordering::Relaxed) == 0 {
            return;
        }
        self.notify_one_slow();
    }

    #[cold]
    fn notify_one_slow(&self) {
        let mut state = self.state.lock();
        if self.idle.load(Ordering::Relaxed) > 0 {
            self.idle.fetch_sub(1, Ordering::SeqCst);
            state.permits += 1;
            self.wake.notify_one();
        }
    }

    /// Wakes every parked worker so it re-evaluates shutdown and retirement (step 5).
    pub(crate) fn wake_all(&self) {
        let mut state = self.state.lock();
        state.generation = state.generation.wrapping_add(1);
        state.permits = 0;
        self.idle.store(0, Ordering::SeqCst);
        self.wake.notify_all();
        self.idle_changed.notify_all();
    }

    /// Tells `wait_idle` callers to look again (a worker retired or exited).
    pub(crate) fn idle_may_have_changed(&self) {
        let state = self.state.lock();
        if state.idle_waiters > 0 {
            self.idle_changed.notify_all();
        }
    }

    /// Waits until `is_idle` holds, re-checking whenever a worker parks or exits (step 6).
    pub(crate) fn wait_until(&self, deadline: Option<Instant>, is_idle: impl Fn() -> bool) -> bool {
        let mut state = self.state.lock();
        loop {
            if is_idle() {
                return true;
            }
            state.idle_waiters += 1;
            let (guard, timed_out) = self.idle_changed.wait_deadline(state, deadline);
            state = guard;
            state.idle_waiters -= 1;
            if timed_out {
                return is_idle();
            }
        }
    }
}
