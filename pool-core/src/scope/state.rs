//! The part of a scope (or a `join`) that its jobs share: `done`, the panic slot and the wait
//! (a scope's completion count is a `ShareCount` in its frame). Protocol and invariants:
//! `README.md` beside this file.

use std::any::Any;

use crate::sync::{AtomicBool, AtomicUsize, Condvar, Mutex, Ordering};
use crate::unwind::{drop_quietly, OnExit};

/// A panic payload on its way to the scope's caller.
pub(crate) type Payload = Box<dyn Any + Send + 'static>;

/// The part of a scope (or a `join`) that outlives its frame: `done`, the panic slot and the
/// wait, in one `Arc` per scope. The completion count is not in here: a scope's `ShareCount`
/// lives in its frame (`Scope`), reached by jobs only while they hold a share, and a `join` has
/// only one job, whose end *is* the completion (see `README.md`). The one job that completes a
/// scope clones the `Arc` before it signals `done`, so the signal never touches a frame that
/// may be gone.
///
/// Holds nothing with the scope's lifetime: every type in it is `'static`.
pub(crate) struct ScopeState {
    /// Set once, by the job whose release completed the scope (took its count to zero), or by
    /// `join`'s queued job when it ends; what a waiter waits for (the count alone cannot be: the
    /// last job still has to wake the waiter after its release). Written under `lock`.
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
    /// A state whose work is not done yet.
    pub(crate) fn new() -> Self {
        ScopeState {
            done: AtomicBool::new(false),
            discarded: AtomicUsize::new(0),
            panic: Mutex::new(None),
            lock: Mutex::new(false),
            signal: Condvar::new(),
        }
    }

    /// Every job is finished: wakes the waiter. Called once, by the job that completed the
    /// scope (or `join`'s queued job), holding its own `Arc` so this allocation outlives the
    /// call, and only after everything that job wrote for the waiter (Release below).
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
        // Ordered before the waiter's read by the count's AcqRel releases and `done`'s
        // Release/Acquire.
        self.discarded.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn discarded(&self) -> usize {
        self.discarded.load(Ordering::Relaxed)
    }

    /// Whether the last share was released by a job (Acquire: every job's writes are visible).
    fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Blocks until `done` is set. A scope's caller calls it only after releasing its own share,
    /// and only if that release did not take the count to zero (else nobody sets `done`). A
    /// caller that is a worker of the scope's pool (`helps`) runs queued tasks while it waits and
    /// blocks only when there is none to run: the tasks it waits for are then running on other
    /// threads, and the last one to finish wakes it.
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
