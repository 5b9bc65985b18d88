//! The part of a scope (or a `join`) that its jobs share: the completion count, the panic slot
//! and the wait. Protocol and invariants: `README.md` beside this file.

use std::any::Any;

use crate::sync::{AtomicUsize, Condvar, Mutex, Ordering};
use crate::unwind::{drop_quietly, OnExit};

/// A panic payload on its way to the scope's caller.
pub(crate) type Payload = Box<dyn Any + Send + 'static>;

/// Shared by a scope and its jobs through an `Arc`, so that the job taking the count to zero can
/// still notify the waiter after the waiter has returned and the scope's frame is gone (the
/// notify touches only this allocation, never the frame).
///
/// Holds nothing with the scope's lifetime: every type in it is `'static`.
pub(crate) struct ScopeState {
    /// Spawned jobs not yet finished, where finished means run to the end or dropped unrun.
    /// Invariant: incremented before the job exists, decremented by the job only after its
    /// closure (and everything the closure captured) is gone.
    pending: AtomicUsize,
    /// Jobs dropped without running (discarded by `shutdown_now` / `cancel_all`, or refused by a
    /// shut-down pool where the caller asked for refused jobs to be dropped).
    discarded: AtomicUsize,
    /// The first panic; later ones are dropped quietly.
    panic: Mutex<Option<Payload>>,
    /// Guards the sleep of a waiter against a lost wake-up (see `complete`).
    lock: Mutex<()>,
    done: Condvar,
}

impl ScopeState {
    pub(crate) fn new(pending: usize) -> Self {
        ScopeState {
            pending: AtomicUsize::new(pending),
            discarded: AtomicUsize::new(0),
            panic: Mutex::new(None),
            lock: Mutex::new(()),
            done: Condvar::new(),
        }
    }

    /// One more job is about to exist. Called by the scope's own thread before it waits, or by a
    /// running job (which is itself pending): so the count never goes from zero back up once a
    /// waiter could have seen zero.
    pub(crate) fn add_pending(&self) {
        // Relaxed, as for an `Arc` clone: the increment is ordered before this job's own
        // decrement by program order, and every decrement is an RMW on the same location.
        self.pending.fetch_add(1, Ordering::Relaxed);
    }

    /// A job is finished (ran or was dropped). Its closure must already be gone: after this call
    /// the scope may return, and borrowed data with it.
    pub(crate) fn complete(&self) {
        // Release: the job's writes (results into borrowed slots, the panic slot, `discarded`)
        // happen before the waiter's Acquire load of zero.
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Taking the lock closes the lost wake-up: a waiter that saw a non-zero count under
            // the lock is already inside `wait` (which released it) when we get it.
            let _guard = self.lock.lock();
            self.done.notify_all();
        }
    }

    /// Keeps the first panic; drops any later payload quietly (its `Drop` may panic too).
    pub(crate) fn record_panic(&self, payload: Payload) {
        let mut slot = self.panic.lock();
        if slot.is_none() {
            *slot = Some(payload);
            return;
        }
        drop(slot);
        drop_quietly(payload);
    }

    pub(crate) fn take_panic(&self) -> Option<Payload> {
        self.panic.lock().take()
    }

    pub(crate) fn record_discard(&self) {
        // Ordered before the waiter's read by `complete`'s Release and the wait's Acquire.
        self.discarded.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn discarded(&self) -> usize {
        self.discarded.load(Ordering::Relaxed)
    }

    /// Whether every job has finished (Acquire: their writes are visible afterwards).
    pub(crate) fn is_done(&self) -> bool {
        self.pending.load(Ordering::Acquire) == 0
    }

    /// Blocks until the count is zero. A caller that is a worker of the scope's pool (`helps`)
    /// runs queued tasks while it waits and blocks only when there is none to run: the tasks it
    /// waits for are then running on other threads, and the last one to finish wakes it.
    ///
    /// If the wait itself unwound (it runs other tasks, which the pool isolates, so this would be
    /// a bug in pool-core), returning would free borrowed data that jobs still use; the process
    /// aborts instead.
    pub(crate) fn wait(&self, helps: bool) {
        let abort = OnExit::new(|| std::process::abort());
        loop {
            if self.is_done() {
                break;
            }
            if helps && crate::yield_now() == Some(crate::Yield::Executed) {
                continue;
            }
            let guard = self.lock.lock();
            if self.is_done() {
                break;
            }
            drop(self.done.wait(guard));
        }
        abort.defuse();
    }
}
