//! The part of a scope (or a `join`) that its jobs share: the completion count, the panic slot
//! and the wait. Protocol and invariants: `README.md` beside this file.

use std::any::Any;

use crate::sync::{AtomicBool, AtomicUsize, Condvar, Mutex, Ordering};
use crate::unwind::{drop_quietly, OnExit};

/// A panic payload on its way to the scope's caller.
pub(crate) type Payload = Box<dyn Any + Send + 'static>;

/// What a scope (or a `join`) and its jobs share, in one `Arc` per scope: the jobs reach it
/// through the scope's frame while they are pending, and the one job that takes the count to zero
/// clones the `Arc` before it signals `done`, so the signal never touches a frame that may be gone.
///
/// Holds nothing with the scope's lifetime: every type in it is `'static`.
pub(crate) struct ScopeState {
    /// Shares not yet released: the scope's body holds one until it ends (a `join` starts with
    /// its queued job's), and each spawned job one until it finishes (run to the end, or dropped
    /// unrun). Invariant: a job's share is taken before the job exists and released only after
    /// its closure (and everything the closure captured) is gone; the count never rises from
    /// zero, since only a share holder adds shares.
    pending: AtomicUsize,
    /// Set once, by whoever released a share other than the waiter's own and took `pending` to
    /// zero; what a waiter waits for (the count alone cannot be: the last job still has to wake
    /// the waiter after its decrement). Written under `lock`.
    done: AtomicBool,
    /// Jobs dropped without running (discarded by `shutdown_now` / `cancel_all`, or refused by a
    /// shut-down pool where the caller asked for refused jobs to be dropped).
    discarded: AtomicUsize,
    /// The first panic; later ones are dropped quietly.
    panic: Mutex<Option<Payload>>,
    /// Guards the sleep of a waiter against a lost wake-up (see `set_done`); holds whether a
    /// waiter is asleep on `signal` (or about to be: it sets this under the lock and releases the
    /// lock only by waiting).
    lock: Mutex<bool>,
    signal: Condvar,
}

impl ScopeState {
    /// A state with `shares` outstanding (1: the scope's body, or `join`'s queued job).
    pub(crate) fn new(shares: usize) -> Self {
        ScopeState {
            pending: AtomicUsize::new(shares),
            done: AtomicBool::new(false),
            discarded: AtomicUsize::new(0),
            panic: Mutex::new(None),
            lock: Mutex::new(false),
            signal: Condvar::new(),
        }
    }

    /// One more job is about to exist. Called only by a share holder (the body, or a running job):
    /// so the count never goes from zero back up once a waiter could have seen zero.
    pub(crate) fn add_pending(&self) {
        // Relaxed, as for an `Arc` clone: the increment is ordered before this job's own
        // decrement by program order, and every decrement is an RMW on the same location.
        self.pending.fetch_add(1, Ordering::Relaxed);
    }

    /// Releases one share (a job finished, or the body ended). Whatever the share covered must
    /// already be gone. Returns whether this took the count to zero: a job must then call
    /// [`set_done`](Self::set_done) through a reference of its own to this state (the waiter may
    /// return, and drop its `Arc`, the moment `done` is set); the waiter releasing its own share
    /// last simply does not wait.
    #[must_use = "the releaser that takes the count to zero must signal or skip the wait"]
    pub(crate) fn release(&self) -> bool {
        // Release: the job's writes (results into borrowed slots, the panic slot, `discarded`)
        // happen before the last releaser's Acquire, and through `done` before the waiter's.
        self.pending.fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// Every share is released: wakes the waiter. Called once, by the releaser that took the
    /// count to zero, holding its own `Arc` (or equivalent) so this allocation outlives the call.
    pub(crate) fn set_done(&self) {
        // Under the lock, so a waiter that saw `done` unset under the lock is already waiting
        // (which released the lock) when we look: no lost wake-up. Notified only when a waiter
        // said it sleeps: std's condvar makes a `futex` system call on every `notify_all`, waiter
        // or not, and most scopes and joins end with their caller still running or helping
        // (a `join` whose caller ran `b` itself never waits at all).
        let sleeping = self.lock.lock();
        self.done.store(true, Ordering::Release);
        let notify = *sleeping;
        // Planted bug (loom models only): never notify, as if no waiter slept. A model whose
        // waiter blocks must deadlock (`.ci/loom-planted`).
        #[cfg(loom_broken_scope_wakeup)]
        let notify = false;
        if notify {
            self.signal.notify_all();
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
        // Ordered before the waiter's read by `release`'s Release and `done`'s Acquire.
        self.discarded.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn discarded(&self) -> usize {
        self.discarded.load(Ordering::Relaxed)
    }

    /// Shares not yet released (for `Debug`; a snapshot).
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Whether the last share was released by a job (Acquire: every job's writes are visible).
    fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Blocks until `done` is set. Call only after releasing the waiter's own share, and only if
    /// that release did not take the count to zero (else nobody sets `done`). A caller that is a
    /// worker of the scope's pool (`helps`) runs queued tasks while it waits and blocks only when
    /// there is none to run: the tasks it waits for are then running on other threads, and the
    /// last one to finish wakes it.
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
            let mut sleeping = self.lock.lock();
            if self.is_done() {
                break;
            }
            *sleeping = true;
            drop(self.signal.wait(sleeping));
        }
        abort.defuse();
    }
}
