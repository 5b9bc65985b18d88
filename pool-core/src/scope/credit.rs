//! A worker's scope credit: shares of one scope's count that finished jobs left with the worker
//! instead of releasing them, for the next job it spawns into that scope. Protocol and
//! invariants: `README.md` beside this file, "Credit".

use std::cell::Cell;

use super::state::ScopeState;
use crate::policy::Work;
use crate::sync::Arc;

/// Which scope a credit or a queued job belongs to: the address of the scope's `Arc` handle on
/// its frame (unique while the frame is alive, and the frame is alive while a share is held).
pub(crate) type ScopeKey = *const Arc<ScopeState>;

/// Per worker (in its `WorkerContext`, so plain cells: only the worker's own thread touches it).
pub(crate) struct ScopeCredit {
    /// The scope the held shares belong to; meaningless while `shares` is zero.
    scope: Cell<ScopeKey>,
    /// Shares held: each is a share of `scope`'s count released by nobody yet, so the count
    /// cannot reach zero (and the scope's frame stays alive) while it is non-zero.
    shares: Cell<usize>,
    /// The closure address of the newest entry this worker pushed onto its own deque if that
    /// entry is a scoped job of `newest_scope` (null after any other push, and after a pop).
    newest: Cell<*const ()>,
    newest_scope: Cell<ScopeKey>,
}

impl ScopeCredit {
    pub(crate) fn new() -> Self {
        ScopeCredit {
            scope: Cell::new(std::ptr::null()),
            shares: Cell::new(0),
            newest: Cell::new(std::ptr::null()),
            newest_scope: Cell::new(std::ptr::null()),
        }
    }

    /// A spawn into `scope` on this worker: takes one held share for the new job if there is
    /// one (no write to the shared count); false if the spawner must add one.
    #[inline(always)]
    pub(crate) fn take(&self, scope: ScopeKey) -> bool {
        let shares = self.shares.get();
        if shares != 0 && std::ptr::eq(self.scope.get(), scope) {
            self.shares.set(shares - 1);
            return true;
        }
        false
    }

    /// Any push onto this worker's own deque: the newest entry is no longer a known scoped job.
    #[inline(always)]
    pub(crate) fn forget_newest(&self) {
        self.newest.set(std::ptr::null());
    }

    /// The scoped job of `scope` whose closure lives at `at` was just pushed onto the own deque.
    #[inline(always)]
    pub(crate) fn pushed(&self, scope: ScopeKey, at: *const ()) {
        self.newest.set(at);
        self.newest_scope.set(scope);
    }

    /// A job of `scope` finished on this worker's loop: keep its share instead of releasing it.
    #[inline(always)]
    pub(crate) fn deposit(&self, scope: ScopeKey) {
        if !std::ptr::eq(self.scope.get(), scope) {
            self.flush();
            self.scope.set(scope);
        }
        self.shares.set(self.shares.get() + 1);
    }

    /// The worker popped `work` from its own deque and is about to run it: the credit may stay
    /// only if `work` is the scoped job of the credit's scope it pushed last; anything else
    /// (another scope's job, a plain job, a task) might wait for the scope to end, so the credit
    /// is released first.
    #[inline(always)]
    pub(crate) fn before_running(&self, work: &Work) {
        let newest = self.newest.replace(std::ptr::null());
        if self.shares.get() == 0 {
            return;
        }
        let same = match work {
            Work::Job(job) => {
                std::ptr::addr_eq(&**job as *const (dyn FnOnce() + Send), newest)
                    && std::ptr::eq(self.newest_scope.get(), self.scope.get())
            }
            Work::Task(_) => false,
        };
        if !same {
            self.flush();
        }
    }

    /// Releases every held share (before the worker runs anything else, searches elsewhere,
    /// parks, retires or exits). The release that takes the count to zero wakes the waiter.
    #[inline(always)]
    pub(crate) fn flush(&self) {
        if self.shares.get() != 0 {
            self.release_all();
        }
    }

    #[cold]
    #[inline(never)]
    fn release_all(&self) {
        let shares = self.shares.replace(0);
        // SAFETY: the shares were unreleased until the line above, so the count was not zero and
        // the scope's frame (which holds the `Arc` handle `scope` points to) is alive: it returns
        // only after `done`, which only the release that takes the count to zero sets, below.
        let state: &Arc<ScopeState> = unsafe { &*self.scope.get() };
        if state.release_many(shares) {
            // As `Scope::release_job_share`: signal through an `Arc` of our own, since the frame
            // may be gone the moment `done` is set.
            let own = Arc::clone(state);
            own.set_done();
        }
    }
}
