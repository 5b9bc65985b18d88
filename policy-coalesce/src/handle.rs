//! `CoalescedHandle<T>`: one submitter's view of a shared execution.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc as ValueArc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use pool_core::sync::{AtomicU8, ErasedArc, Ordering};
use pool_core::{drop_quietly, TaskId};

use crate::error::{CoalesceCancelReason, CoalesceError};
use crate::exec::{Exec, Outcome, DONE, RUNNING};

/// What a handle needs from its execution, without the key type.
pub(crate) trait ExecOps<T>: Send + Sync {
    fn id(&self) -> TaskId;
    fn phase(&self) -> u8;
    fn started(&self) -> bool;
    fn installed(&self) -> u64;
    /// Gives up this handle's vote; whether it detached before the start.
    fn detach(&self) -> bool;
    fn wait(&self, deadline: Option<Instant>) -> Option<Outcome<T>>;
    fn poll(&self, waker: &Waker, slot: &mut Option<usize>) -> Option<Outcome<T>>;
}

impl<K, T> ExecOps<T> for Exec<K, T>
where
    K: Hash + Eq + Send + Sync + 'static,
    T: Send + Sync + 'static,
{
    fn id(&self) -> TaskId {
        self.id
    }
    fn phase(&self) -> u8 {
        Exec::phase(self)
    }
    fn started(&self) -> bool {
        Exec::started(self)
    }
    fn installed(&self) -> u64 {
        Exec::installed(self)
    }
    fn detach(&self) -> bool {
        let (detached, key) = self.slots.detach(self);
        drop_quietly(key);
        if let Some(work) = detached.cancelled {
            self.publish(Err(CoalesceError::Cancelled(
                CoalesceCancelReason::Requested,
            )));
            // The closure (maybe another submitter's) is user code: its `Drop` may panic.
            drop_quietly(work);
        }
        detached.before_start
    }
    fn wait(&self, deadline: Option<Instant>) -> Option<Outcome<T>> {
        Exec::wait(self, deadline)
    }
    fn poll(&self, waker: &Waker, slot: &mut Option<usize>) -> Option<Outcome<T>> {
        Exec::poll(self, waker, slot)
    }
}

const VOTED: u8 = 0b01;
const DETACHED: u8 = 0b10;

/// One submitter's handle to a coalesced execution: wait for the shared outcome, `.await` it,
/// cancel this submitter's interest, and see whether this submitter's own closure ran.
///
/// Every submitter that shares an execution holds a handle with the same [`id`](Self::id), and
/// every one of them receives the same outcome: the value (shared as an `Arc<T>`), or the
/// panic, or the reason it did not run. Dropping a handle does not cancel anything.
///
/// # Examples
///
/// ```
/// use policy_coalesce::Coalescer;
/// use pool_core::ThreadPool;
/// use std::sync::mpsc;
///
/// let pool = ThreadPool::new(1).unwrap();
/// let (release, gate) = mpsc::channel::<()>();
/// pool.spawn(move || gate.recv().unwrap()).unwrap(); // keep the only worker busy
/// let previews = Coalescer::builder(pool).build()?;
/// let first = previews.submit("doc", || "text v1").unwrap();
/// let second = previews.submit("doc", || "text v2").unwrap();
/// assert_eq!(first.id(), second.id()); // one execution, shared
/// release.send(()).unwrap();
/// assert_eq!(*second.join().unwrap(), "text v2");
/// assert!(first.superseded());
/// assert_eq!(*first.join().unwrap(), "text v2");
/// # Ok::<(), policy_coalesce::CoalesceBuildError>(())
/// ```
///
/// # Cancel safety
///
/// Dropping the future (the handle) does not cancel the execution; call
/// [`cancel`](Self::cancel).
pub struct CoalescedHandle<T> {
    /// `Some` for the handle's whole life; `Drop` takes it to drop it quietly.
    exec: Option<ErasedArc<dyn ExecOps<T>>>,
    ticket: u64,
    kept: bool,
    flags: AtomicU8,
    waker_slot: Option<usize>,
}

impl<T> Drop for CoalescedHandle<T> {
    fn drop(&mut self) {
        // The handle may hold the last reference to the execution, and with it to a value (or a
        // closure) whose `Drop` is user code: dropping a handle must not panic in its owner.
        if let Some(exec) = self.exec.take() {
            drop_quietly(exec);
        }
    }
}

impl<T> CoalescedHandle<T> {
    fn exec(&self) -> &dyn ExecOps<T> {
        match &self.exec {
            Some(exec) => &**exec,
            None => unreachable!("a handle's execution is taken only by its Drop"),
        }
    }

    pub(crate) fn new(exec: ErasedArc<dyn ExecOps<T>>, ticket: u64, kept: bool) -> Self {
        CoalescedHandle {
            exec: Some(exec),
            ticket,
            kept,
            flags: AtomicU8::new(0),
            waker_slot: None,
        }
    }

    /// The execution's identity, the same for every submitter that shares it.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_coalesce::Coalescer;
    /// use pool_core::InlineExecutor;
    ///
    /// let coalescer = Coalescer::<u8, u8, _>::new(InlineExecutor);
    /// let a = coalescer.submit(1, || 1).unwrap();
    /// let b = coalescer.submit(1, || 1).unwrap(); // `a` already ran: a new execution
    /// assert_ne!(a.id(), b.id());
    /// ```
    pub fn id(&self) -> TaskId {
        self.exec().id()
    }

    /// Detaches this submitter. Returns whether it did so before the execution started.
    ///
    /// Before the start, this handle's outcome becomes `Cancelled(Requested)` while the other
    /// sharers keep the execution; when every live handle has cancelled, the execution itself
    /// is cancelled and never runs. Once running, the call only withdraws this handle's
    /// interest (the last one to do so raises the execution's [`CoalesceCancelToken`](crate::CoalesceCancelToken))
    /// and returns `false`; the handle still receives the real outcome. Calling it again
    /// returns `false`. Detaching withdraws this submitter, not its closure: if its closure is
    /// the installed (latest) one, it still runs for the sharers that remain.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_coalesce::Coalescer;
    /// use pool_core::ThreadPool;
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPool::new(1).unwrap();
    /// let (release, gate) = mpsc::channel::<()>();
    /// pool.spawn(move || gate.recv().unwrap()).unwrap();
    /// let coalescer = Coalescer::builder(pool).build()?;
    /// let mine = coalescer.submit("k", || 1).unwrap();
    /// let theirs = coalescer.submit("k", || 2).unwrap();
    /// assert!(mine.cancel());
    /// release.send(()).unwrap();
    /// assert!(mine.join().unwrap_err().is_cancelled());
    /// assert_eq!(*theirs.join().unwrap(), 2); // the other sharer still gets its run
    /// # Ok::<(), policy_coalesce::CoalesceBuildError>(())
    /// ```
    pub fn cancel(&self) -> bool {
        if self.flags.fetch_or(VOTED, Ordering::AcqRel) & VOTED != 0 {
            return false;
        }
        let before_start = self.exec().detach();
        if before_start {
            self.flags.fetch_or(DETACHED, Ordering::Release);
        }
        before_start
    }

    /// Whether this handle detached before the execution started.
    pub fn is_cancelled(&self) -> bool {
        self.flags.load(Ordering::Acquire) & DETACHED != 0
    }

    /// Whether the execution is running now.
    pub fn is_running(&self) -> bool {
        self.exec().phase() == RUNNING
    }

    /// Whether the execution has an outcome (or this handle detached from it).
    pub fn is_finished(&self) -> bool {
        self.is_cancelled() || self.exec().phase() == DONE
    }

    /// Whether a later submission's closure replaced this submitter's before it ran.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_coalesce::Coalescer;
    /// use pool_core::InlineExecutor;
    ///
    /// let coalescer = Coalescer::<u8, u8, _>::new(InlineExecutor);
    /// let handle = coalescer.submit(1, || 1).unwrap();
    /// assert!(!handle.superseded());
    /// assert!(handle.ran_my_closure());
    /// ```
    pub fn superseded(&self) -> bool {
        !self.kept && self.exec().installed() > self.ticket
    }

    /// Whether [`Mode::Keep`](crate::Mode::Keep) dropped this submitter's closure in favour of
    /// the execution already pending or running, which this handle shares. Known at submit.
    pub fn kept_existing(&self) -> bool {
        self.kept
    }

    /// Whether this submitter's own closure is the one that started (it may still be running).
    pub fn ran_my_closure(&self) -> bool {
        !self.kept && self.exec().started() && self.exec().installed() == self.ticket
    }

    /// Waits for the shared outcome.
    ///
    /// This blocks the calling thread: inside an async task, `.await` the handle instead.
    ///
    /// # Errors
    ///
    /// [`CoalesceError`] when the execution panicked, was cancelled (or this handle detached),
    /// or the executor refused it.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_coalesce::Coalescer;
    /// use pool_core::ThreadPool;
    ///
    /// let coalescer = Coalescer::builder(ThreadPool::new(2).unwrap()).build()?;
    /// let handle = coalescer.submit("sum", || (1..=10).sum::<u32>()).unwrap();
    /// assert_eq!(*handle.join().unwrap(), 55);
    /// # Ok::<(), policy_coalesce::CoalesceBuildError>(())
    /// ```
    pub fn join(self) -> Result<ValueArc<T>, CoalesceError> {
        if self.is_cancelled() {
            // Dropping `self` here is quiet (see `Drop`): it may hold the last reference to a
            // value it never received.
            return Err(CoalesceError::Cancelled(CoalesceCancelReason::Requested));
        }
        match self.exec().wait(None) {
            Some(outcome) => outcome,
            None => unreachable!("policy-coalesce bug: an untimed wait returned no outcome"),
        }
    }

    /// Like [`join`](Self::join), giving the handle back if `timeout` passes first.
    ///
    /// # Errors
    ///
    /// [`CoalesceJoinTimeoutError::TimedOut`] with the handle, or [`CoalesceJoinTimeoutError::Failed`].
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_coalesce::Coalescer;
    /// use pool_core::InlineExecutor;
    /// use std::time::Duration;
    ///
    /// let coalescer = Coalescer::<u8, u8, _>::new(InlineExecutor);
    /// let handle = coalescer.submit(1, || 7).unwrap();
    /// assert_eq!(*handle.join_timeout(Duration::from_secs(1)).unwrap(), 7);
    /// ```
    pub fn join_timeout(
        self,
        timeout: Duration,
    ) -> Result<ValueArc<T>, CoalesceJoinTimeoutError<T>> {
        if self.is_cancelled() {
            return Err(CoalesceJoinTimeoutError::Failed(CoalesceError::Cancelled(
                CoalesceCancelReason::Requested,
            )));
        }
        let deadline = Instant::now().checked_add(timeout);
        match self.exec().wait(deadline) {
            Some(Ok(value)) => Ok(value),
            Some(Err(error)) => Err(CoalesceJoinTimeoutError::Failed(error)),
            None if deadline.is_none() => unreachable!("an untimed wait returned no outcome"),
            None => Err(CoalesceJoinTimeoutError::TimedOut(self)),
        }
    }
}

impl<T: Clone> CoalescedHandle<T> {
    /// Like [`join`](Self::join), returning an owned value: the shared one is moved out when
    /// this is the last reference, cloned otherwise.
    ///
    /// # Errors
    ///
    /// As for [`join`](Self::join).
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_coalesce::Coalescer;
    /// use pool_core::InlineExecutor;
    ///
    /// let coalescer = Coalescer::<u8, String, _>::new(InlineExecutor);
    /// let handle = coalescer.submit(1, || "owned".to_string()).unwrap();
    /// let value: String = handle.join_cloned().unwrap();
    /// assert_eq!(value, "owned");
    /// ```
    pub fn join_cloned(self) -> Result<T, CoalesceError> {
        self.join()
            .map(|shared| ValueArc::try_unwrap(shared).unwrap_or_else(|arc| (*arc).clone()))
    }
}

impl<T> Future for CoalescedHandle<T> {
    type Output = Result<ValueArc<T>, CoalesceError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.is_cancelled() {
            return Poll::Ready(Err(CoalesceError::Cancelled(
                CoalesceCancelReason::Requested,
            )));
        }
        let Some(exec) = &this.exec else {
            unreachable!("a handle's execution is taken only by its Drop");
        };
        match exec.poll(cx.waker(), &mut this.waker_slot) {
            Some(outcome) => Poll::Ready(outcome),
            None => Poll::Pending,
        }
    }
}

impl<T> fmt::Debug for CoalescedHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.is_cancelled() {
            "cancelled"
        } else {
            match self.exec().phase() {
                RUNNING => "running",
                DONE => "finished",
                _ => "pending",
            }
        };
        f.debug_struct("CoalescedHandle")
            .field("id", &self.id())
            .field("state", &state)
            .field("kept_existing", &self.kept)
            .finish()
    }
}

/// [`CoalescedHandle::join_timeout`] did not get an outcome.
///
/// # Examples
///
/// ```
/// use policy_coalesce::{Coalescer, CoalesceJoinTimeoutError};
/// use pool_core::ThreadPool;
/// use std::{sync::mpsc, time::Duration};
///
/// let pool = ThreadPool::new(1).unwrap();
/// let (release, gate) = mpsc::channel::<()>();
/// let coalescer = Coalescer::builder(pool).build()?;
/// let handle = coalescer.submit("k", move || gate.recv().unwrap()).unwrap();
/// let handle = match handle.join_timeout(Duration::from_millis(5)) {
///     Err(CoalesceJoinTimeoutError::TimedOut(handle)) => handle,
///     other => panic!("expected a timeout, got {other:?}"),
/// };
/// release.send(()).unwrap();
/// handle.join().unwrap();
/// # Ok::<(), policy_coalesce::CoalesceBuildError>(())
/// ```
#[derive(thiserror::Error)]
pub enum CoalesceJoinTimeoutError<T> {
    /// No outcome yet; the handle is given back so the caller can wait again.
    #[error("the coalesced execution did not finish within the timeout")]
    TimedOut(CoalescedHandle<T>),
    /// The execution finished without a value for this handle.
    #[error(transparent)]
    Failed(CoalesceError),
}

impl<T> fmt::Debug for CoalesceJoinTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoalesceJoinTimeoutError::TimedOut(h) => {
                f.debug_tuple("TimedOut").field(&h.id()).finish()
            }
            CoalesceJoinTimeoutError::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
        }
    }
}
