//! `TaskHandle<T>`: the submitter's end of a task.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::cell::{RawTask, TaskId, TaskOps};
use crate::error::{CancelReason, JoinTimeoutError, TaskError};
use crate::executor::Priority;
use crate::sync::ErasedArc as Arc;

/// The submitter's end of a task: cancel it, ask how it is doing, wait for its value, or `.await` it.
///
/// Dropping the handle detaches the task: it still runs.
///
/// # Examples
///
/// ```
/// use pool_core::ThreadPool;
///
/// let pool = ThreadPool::new(2).unwrap();
/// let handle = pool.submit(|| 6 * 7).unwrap();
/// assert_eq!(handle.join().unwrap(), 42);
/// ```
///
/// Awaiting from any async runtime (here a minimal `block_on` to stay runtime-free):
///
/// ```
/// use pool_core::ThreadPool;
/// # use pollster::block_on;
///
/// let pool = ThreadPool::new(2).unwrap();
/// let handle = pool.submit(|| "rendered").unwrap();
/// let value = block_on(async move { handle.await });
/// assert_eq!(value.unwrap(), "rendered");
/// ```
///
/// # Cancel safety
///
/// Dropping the future returned by `.await` (or the handle itself) does not cancel the task; call
/// [`cancel`](Self::cancel) for that.
pub struct TaskHandle<T> {
    task: Arc<dyn TaskOps<T>>,
    /// The same task seen as a queue entry, so the pool can queue it again at a higher priority.
    raw: Arc<dyn RawTask>,
}

impl<T> TaskHandle<T> {
    pub(crate) fn new(task: Arc<dyn TaskOps<T>>, raw: Arc<dyn RawTask>) -> Self {
        TaskHandle { task, raw }
    }

    /// The task's identity.
    pub fn id(&self) -> TaskId {
        self.task.header().id()
    }

    /// Cancels the task if it has not started; returns whether this call prevented the start.
    ///
    /// Exactly one of the start and a cancel wins. A running task cannot be stopped from outside:
    /// the call then records a cooperative cancel request, which the task sees through its
    /// [`CancelToken`](crate::CancelToken), and returns `false`.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::{TaskError, ThreadPool};
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPool::new(1).unwrap();
    /// let (release, gate) = mpsc::channel::<()>();
    /// let _blocker = pool.submit(move || gate.recv().unwrap()).unwrap();
    /// let queued = pool.submit(|| "never").unwrap();
    /// assert!(queued.cancel());
    /// assert!(queued.is_cancelled());
    /// release.send(()).unwrap();
    /// assert!(matches!(queued.join(), Err(TaskError::Cancelled(_))));
    /// ```
    pub fn cancel(&self) -> bool {
        if self.task.cancel(CancelReason::Requested) {
            return true;
        }
        if self.task.header().is_running() {
            self.task.request_cancel();
        }
        false
    }

    /// Whether the task was cancelled before it started.
    pub fn is_cancelled(&self) -> bool {
        self.task.header().is_cancelled()
    }

    /// Whether the task is running now.
    pub fn is_running(&self) -> bool {
        self.task.header().is_running()
    }

    /// Whether the task has an outcome: it ran to the end (value or panic) or was cancelled.
    pub fn is_finished(&self) -> bool {
        self.task.header().is_finished()
    }

    /// The highest priority the task has been queued at.
    pub fn priority(&self) -> Priority {
        self.task.header().priority()
    }

    /// Waits for the task and returns its value, or why there is none.
    ///
    /// This blocks the calling thread: never call it inside an async task (`.await` the handle
    /// there). Called from a worker of a pool, it runs that pool's queued tasks while it waits
    /// (see [`yield_now`](crate::yield_now)), so joining a task queued behind the caller, even on
    /// a one-thread pool, does not deadlock. It blocks only when that pool has nothing queued
    /// that the caller could run: the awaited task is then running elsewhere (or queued on
    /// another executor, whose workers run it).
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::ThreadPool;
    /// use std::sync::Arc;
    ///
    /// let pool = Arc::new(ThreadPool::new(1).unwrap());
    /// let inner = pool.clone();
    /// let outer = pool
    ///     .submit(move || {
    ///         // Queued behind this task on the pool's only worker: joining it helps it run.
    ///         let queued = inner.submit(|| 20).unwrap();
    ///         queued.join().unwrap() + 1
    ///     })
    ///     .unwrap();
    /// assert_eq!(outer.join().unwrap(), 21);
    /// ```
    pub fn join(self) -> Result<T, TaskError> {
        match self.wait_helping(None) {
            Some(outcome) => outcome,
            None => unreachable_outcome(),
        }
    }

    /// Runs queued tasks while this one has no outcome (from a worker thread), then blocks.
    fn wait_helping(&self, deadline: Option<Instant>) -> Option<Result<T, TaskError>> {
        while !self.task.header().is_finished()
            && deadline.is_none_or(|deadline| Instant::now() < deadline)
            && crate::yield_now() == Some(crate::Yield::Executed)
        {}
        self.task.wait_outcome(deadline)
    }

    /// Like [`join`](Self::join), but gives up after `timeout`, handing the handle back.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::{JoinTimeoutError, ThreadPool};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::new(1).unwrap();
    /// let (release, gate) = mpsc::channel::<()>();
    /// let handle = pool.submit(move || gate.recv().unwrap()).unwrap();
    /// let handle = match handle.join_timeout(Duration::from_millis(10)) {
    ///     Err(JoinTimeoutError::TimedOut(handle)) => handle,
    ///     other => panic!("expected a timeout, got {other:?}"),
    /// };
    /// release.send(()).unwrap();
    /// handle.join().unwrap();
    /// ```
    pub fn join_timeout(self, timeout: Duration) -> Result<T, JoinTimeoutError<T>> {
        let deadline = Instant::now().checked_add(timeout);
        match self.wait_helping(deadline) {
            Some(Ok(value)) => Ok(value),
            Some(Err(error)) => Err(JoinTimeoutError::Failed(error)),
            None => Err(JoinTimeoutError::TimedOut(self)),
        }
    }
}

/// `wait_outcome(None)` only returns once the outcome is there, and the handle (consumed by
/// `join`) is its only reader.
fn unreachable_outcome() -> ! {
    unreachable!("pool-core bug: an untimed wait returned without an outcome")
}

impl<T> Future for TaskHandle<T> {
    type Output = Result<T, TaskError>;

    /// # Panics
    ///
    /// Polling again after the handle returned `Ready` panics, as for other futures.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.task.poll_outcome(Some(cx.waker())) {
            Some(outcome) => Poll::Ready(outcome),
            None if self.task.outcome_taken() => {
                panic!("TaskHandle polled after it returned Ready")
            }
            None => Poll::Pending,
        }
    }
}

impl<T> fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = self.task.header();
        let state = if header.is_cancelled() {
            "cancelled"
        } else if header.is_finished() {
            "finished"
        } else if header.is_running() {
            "running"
        } else {
            "queued"
        };
        f.debug_struct("TaskHandle")
            .field("id", &header.id())
            .field("state", &state)
            .finish()
    }
}

pub(crate) fn raw_task<T>(handle: &TaskHandle<T>) -> &Arc<dyn RawTask> {
    &handle.raw
}
