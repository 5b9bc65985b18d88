//! One execution: the closure that will run, its cooperative cancel flag, and the outcome every
//! sharer reads.
//!
//! The slot bookkeeping (which closure is installed, how many handles are live, how many executor
//! jobs are out) lives in the key's map entry under the shard lock (see `slot.rs`); this module
//! holds what handles read without that lock: the phase, the installed ticket, the stop flag and
//! the outcome with its wakers.

use std::any::Any;
use std::fmt;
use std::sync::Arc as ValueArc;
use std::task::Waker;
use std::time::Instant;

use pool_core::sync::{Arc, AtomicBool, AtomicU64, AtomicU8, Condvar, Mutex, Ordering};
use pool_core::{drop_quietly, wake_quietly, TaskId};

use crate::error::CoalesceError;
use crate::keymap::Place;
use crate::slot::KeySlots;

/// What every sharer of an execution receives. Values are shared, not cloned: `T` is computed
/// once for all of them.
pub(crate) type Outcome<T> = Result<ValueArc<T>, CoalesceError>;

pub(crate) const PENDING: u8 = 0;
pub(crate) const RUNNING: u8 = 1;
pub(crate) const DONE: u8 = 2;

/// Lets a running closure see that it should stop early: every live handle cancelled, the key was
/// cancelled, or a [`Mode::Replace`](crate::Mode::Replace) submission superseded it.
///
/// Handed to closures submitted with
/// [`Coalescer::submit_cancellable`](crate::Coalescer::submit_cancellable).
///
/// # Examples
///
/// ```
/// use policy_coalesce::{Coalescer, Mode, SubmitOptions};
/// use pool_core::ThreadPool;
/// use std::sync::mpsc;
///
/// let search = Coalescer::builder(ThreadPool::new(1).unwrap()).build()?;
/// let (started_tx, started) = mpsc::channel();
/// let first = search
///     .submit_cancellable("query", move |flag| {
///         started_tx.send(()).unwrap();
///         while !flag.is_cancelled() {
///             std::thread::yield_now();
///         }
///         "stopped early"
///     })
///     .unwrap();
/// started.recv().unwrap();
/// let replace = SubmitOptions::new().mode(Mode::Replace);
/// let second = search.submit_with("query", replace, || "new results").unwrap();
/// assert_eq!(*first.join().unwrap(), "stopped early");
/// assert_eq!(*second.join().unwrap(), "new results");
/// # Ok::<(), policy_coalesce::CoalesceBuildError>(())
/// ```
pub struct CoalesceCancelToken<'a> {
    flag: &'a AtomicBool,
}

impl CoalesceCancelToken<'_> {
    /// Whether someone asked this execution to stop.
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}

impl fmt::Debug for CoalesceCancelToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoalesceCancelToken")
            .field("cancel_requested", &self.is_cancelled())
            .finish()
    }
}

/// A submitted closure, type-erased so one slot can hold whichever submitter's closure is latest,
/// and recoverable as its concrete type so a refused submission can be handed back.
pub(crate) trait Work<T>: Send {
    fn run(self: Box<Self>, flag: &CoalesceCancelToken<'_>) -> T;
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

/// A closure that takes no cancel flag.
pub(crate) struct Plain<F>(pub(crate) F);

impl<F, T> Work<T> for Plain<F>
where
    F: FnOnce() -> T + Send + 'static,
{
    fn run(self: Box<Self>, _flag: &CoalesceCancelToken<'_>) -> T {
        (self.0)()
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// A closure that watches its [`CoalesceCancelToken`].
pub(crate) struct WithFlag<F>(pub(crate) F);

impl<F, T> Work<T> for WithFlag<F>
where
    F: for<'a> FnOnce(&CoalesceCancelToken<'a>) -> T + Send + 'static,
{
    fn run(self: Box<Self>, flag: &CoalesceCancelToken<'_>) -> T {
        (self.0)(flag)
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

pub(crate) type BoxedWork<T> = Box<dyn Work<T>>;

/// One execution of a key. Shared (std `Arc`, see `pool_core::sync::ErasedArc`) by the key's map
/// entry, the executor job(s) and every handle.
pub(crate) struct Exec<K, T> {
    pub(crate) slots: Arc<KeySlots<K, T>>,
    /// Where the key's entry is: executions never touch the key itself (user code), so a key
    /// that misbehaves after its submit cannot strand them (see `keymap.rs`).
    pub(crate) place: Place,
    pub(crate) shard: usize,
    pub(crate) id: TaskId,
    /// PENDING -> RUNNING -> DONE, or PENDING -> DONE (cancelled / refused). Written under the
    /// shard lock; read without it by handles' status queries.
    phase: AtomicU8,
    /// Ticket of the submitter whose closure is installed (the latest); written under the shard
    /// lock, frozen once the execution starts.
    installed: AtomicU64,
    /// Set when a worker took the closure; never cleared (`ran_my_closure` reads it after the
    /// outcome is published, when the phase alone no longer says whether anything ran).
    started: AtomicBool,
    /// The cooperative cancel request the running closure sees through its [`CoalesceCancelToken`].
    stop: AtomicBool,
    done: Mutex<Done<T>>,
    ready: Condvar,
    /// With the `tracing` feature: the execution's span, a child of the span current at the
    /// submit that created it; entered while the closure runs, on the worker.
    #[cfg(feature = "tracing")]
    pub(crate) span: tracing::Span,
}

struct Done<T> {
    outcome: Option<Outcome<T>>,
    /// One slot per polling handle (a handle remembers its index), so re-polling replaces the
    /// waker instead of growing the list.
    wakers: Vec<Option<Waker>>,
    /// Threads blocked in `wait`; completion skips the condvar syscall when nobody waits.
    blocked: usize,
}

impl<K, T> Exec<K, T> {
    pub(crate) fn new(slots: Arc<KeySlots<K, T>>, place: Place, shard: usize) -> Self {
        let id = TaskId::next();
        Exec {
            slots,
            place,
            shard,
            id,
            phase: AtomicU8::new(PENDING),
            installed: AtomicU64::new(0),
            started: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            done: Mutex::new(Done {
                outcome: None,
                wakers: Vec::new(),
                blocked: 0,
            }),
            ready: Condvar::new(),
            #[cfg(feature = "tracing")]
            span: tracing::info_span!("coalesce.execution", execution = %id),
        }
    }

    pub(crate) fn phase(&self) -> u8 {
        self.phase.load(Ordering::Acquire)
    }

    /// Under the shard lock: the execution left the map's pending slot for a worker.
    pub(crate) fn mark_running(&self) {
        self.started.store(true, Ordering::Release);
        self.phase.store(RUNNING, Ordering::Release);
    }

    pub(crate) fn started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    pub(crate) fn installed(&self) -> u64 {
        self.installed.load(Ordering::Acquire)
    }

    /// Under the shard lock: a later submitter's closure replaced the installed one.
    pub(crate) fn install(&self, ticket: u64) {
        self.installed.store(ticket, Ordering::Release);
    }

    pub(crate) fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    pub(crate) fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    pub(crate) fn flag(&self) -> CoalesceCancelToken<'_> {
        CoalesceCancelToken { flag: &self.stop }
    }

    /// Stores the outcome once and wakes every waiter. Called exactly once per execution, by
    /// whoever removed it from the map (the runner, a canceller, or the refusal path), never
    /// under the shard lock (wakers run foreign code).
    pub(crate) fn publish(&self, outcome: Outcome<T>) {
        let mut done = self.done.lock();
        debug_assert!(
            done.outcome.is_none(),
            "an execution's outcome is published once"
        );
        done.outcome = Some(outcome);
        // The phase flips under the same lock as the outcome, so `is_finished` never reports an
        // execution whose outcome a joiner could not yet read.
        self.phase.store(DONE, Ordering::Release);
        let wakers = std::mem::take(&mut done.wakers);
        let blocked = done.blocked;
        drop(done);
        if blocked > 0 {
            self.ready.notify_all();
        }
        // Wakers are user code: one that panics must not keep the others asleep, nor unwind
        // into the runner, which still has the key's follow-up to dispatch.
        for waker in wakers.into_iter().flatten() {
            wake_quietly(waker);
        }
    }

    /// Waits for the outcome until `deadline` (forever for `None`); `None` on timeout.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> Option<Outcome<T>> {
        let mut done = self.done.lock();
        loop {
            if let Some(outcome) = &done.outcome {
                return Some(outcome.clone());
            }
            done.blocked += 1;
            match deadline {
                None => done = self.ready.wait(done),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        done.blocked -= 1;
                        return None;
                    }
                    done = self.ready.wait_timeout(done, deadline - now).0;
                }
            }
            done.blocked -= 1;
        }
    }

    /// The outcome, or registers `waker` (in the handle's `slot`) under the same lock that
    /// `publish` takes, so a completion between the check and the registration cannot be missed.
    pub(crate) fn poll(&self, waker: &Waker, slot: &mut Option<usize>) -> Option<Outcome<T>> {
        let mut done = self.done.lock();
        if let Some(outcome) = &done.outcome {
            return Some(outcome.clone());
        }
        // The caller's waker is user code: clone it before changing anything (a panicking clone
        // leaves the list as it was), and drop the one it replaces after the lock.
        let replaced = match *slot {
            Some(index) => match &mut done.wakers[index] {
                Some(old) if old.will_wake(waker) => None,
                entry => entry.replace(waker.clone()),
            },
            None => {
                let waker = waker.clone();
                *slot = Some(done.wakers.len());
                done.wakers.push(Some(waker));
                None
            }
        };
        drop(done);
        drop_quietly(replaced);
        None
    }
}
