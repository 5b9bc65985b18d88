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
    /// Idle moments seen while someone waited: a `wait_idle` caller returns true once this moves
    /// past the value it saw when it started waiting (the classic pools' join generation).
    idle_moments: u64,
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
    /// `pool_is_idle` is asked only when someone waits in `wait_idle` (step 6).
    pub(crate) fn park(&self, must_stay_awake: impl Fn() -> bool, pool_is_idle: impl Fn() -> bool) {
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
        self.note_idle_moment(&mut state, pool_is_idle);
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

    /// Threads blocked in `wait_until`.
    pub(crate) fn idle_waiters(&self) -> usize {
        self.state.lock().idle_waiters
    }

    /// A worker retired or exited: if the pool is idle now, `wait_idle` callers return.
    pub(crate) fn idle_may_have_changed(&self, pool_is_idle: impl Fn() -> bool) {
        let mut state = self.state.lock();
        self.note_idle_moment(&mut state, pool_is_idle);
    }

    /// Step 6, the notifier's side: under the lock, if anyone waits and the pool is idle, record
    /// an idle moment and wake every waiter.
    fn note_idle_moment(&self, state: &mut SleepState, pool_is_idle: impl Fn() -> bool) {
        // `--cfg loom_broken_idle_level` only (loom-tests checks that a model catches it): wake the
        // waiters without recording the moment, so each re-checks the level instead.
        if state.idle_waiters > 0 && pool_is_idle() {
            if !cfg!(loom_broken_idle_level) {
                state.idle_moments = state.idle_moments.wrapping_add(1);
            }
            self.idle_changed.notify_all();
        }
    }

    /// Waits until the pool has an idle moment (step 6, the waiter's side). Returns true at once
    /// if `is_idle` holds; otherwise every waiter present at the next idle moment returns true,
    /// even if another thread refills the pool before it gets to run.
    pub(crate) fn wait_until(&self, deadline: Option<Instant>, is_idle: impl Fn() -> bool) -> bool {
        let mut state = self.state.lock();
        if is_idle() {
            return true;
        }
        let seen = state.idle_moments;
        state.idle_waiters += 1;
        let went_idle = loop {
            let (guard, timed_out) = self.idle_changed.wait_deadline(state, deadline);
            state = guard;
            if state.idle_moments != seen || (cfg!(loom_broken_idle_level) && is_idle()) {
                break true;
            }
            if timed_out {
                break is_idle();
            }
        };
        state.idle_waiters -= 1;
        went_idle
    }
}
