//! [`RemoteHandle`]: a submitter's view of one remote task, and the one-shot [`Slot`] its outcome
//! arrives in.
//!
//! The executor's result watcher fills the slot once (value or typed error); the handle blocks
//! on it (`join`), waits with a deadline (`join_timeout`) or is awaited (`Future`). The slot is a
//! mutex, a condition variable and at most one waker: `join` and `poll` both check the outcome
//! under the lock before they sleep, and `fill` stores it under the same lock before it
//! notifies, so no wake-up is lost.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use pool_core::sync::{Arc, Condvar, Mutex};
use serde::de::DeserializeOwned;

use crate::codec;
use crate::executor::Shared;
use crate::RemoteError;

/// The JSON-level outcome of a task.
pub(crate) type RawOutcome = Result<serde_json::Value, RemoteError>;

struct SlotState<T> {
    outcome: Option<T>,
    waker: Option<Waker>,
}

/// A one-shot cell: filled once, taken once.
pub(crate) struct Slot<T> {
    state: Mutex<SlotState<T>>,
    filled: Condvar,
}

impl<T> Slot<T> {
    pub(crate) fn new() -> Self {
        Slot {
            state: Mutex::new(SlotState {
                outcome: None,
                waker: None,
            }),
            filled: Condvar::new(),
        }
    }

    /// Stores the outcome (the first one wins) and wakes whoever waits.
    pub(crate) fn fill(&self, outcome: T) {
        let waker = {
            let mut state = self.state.lock();
            if state.outcome.is_some() {
                return;
            }
            state.outcome = Some(outcome);
            state.waker.take()
        };
        self.filled.notify_all();
        if let Some(waker) = waker {
            // A waker is user code: its panic must not take the result watcher down.
            pool_core::wake_quietly(waker);
        }
    }

    /// Blocks until the outcome is there or `deadline` passes (`None`: no deadline).
    pub(crate) fn take_until(&self, deadline: Option<Instant>) -> Option<T> {
        let mut state = self.state.lock();
        loop {
            if let Some(outcome) = state.outcome.take() {
                return Some(outcome);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
            state = self.filled.wait_deadline(state, deadline).0;
        }
    }

    fn poll_take(&self, cx: &mut Context<'_>) -> Poll<T> {
        let mut state = self.state.lock();
        match state.outcome.take() {
            Some(outcome) => Poll::Ready(outcome),
            None => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// A remote task that was enqueued: join it, await it, or cancel it before a worker claims it.
///
/// Dropping the handle does not cancel the task (it is in the backend and will run); the
/// outcome is then discarded.
///
/// # Examples
///
/// ```no_run
/// # use pool_remote::{BoxError, RemoteExecutor, RemoteTask};
/// # struct Square;
/// # impl RemoteTask for Square {
/// #     const NAME: &'static str = "square";
/// #     type Args = u64;
/// #     type Output = u64;
/// #     fn run(&self, x: u64) -> Result<u64, BoxError> { Ok(x * x) }
/// # }
/// let remote = RemoteExecutor::builder("sqlite://jobs.db").build()?;
/// let handle = remote.submit::<Square>(7)?;
/// assert_eq!(handle.join()?, 49);
/// # Ok::<(), pool_remote::RemoteError>(())
/// ```
pub struct RemoteHandle<T> {
    id: ulid::Ulid,
    task: String,
    slot: Arc<Slot<RawOutcome>>,
    shared: Arc<Shared>,
    _output: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for RemoteHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteHandle")
            .field("id", &self.id.to_string())
            .field("task", &self.task)
            .finish_non_exhaustive()
    }
}

impl<T> RemoteHandle<T>
where
    T: DeserializeOwned,
{
    pub(crate) fn new(
        id: ulid::Ulid,
        task: String,
        slot: Arc<Slot<RawOutcome>>,
        shared: Arc<Shared>,
    ) -> Self {
        RemoteHandle {
            id,
            task,
            slot,
            shared,
            _output: PhantomData,
        }
    }

    /// The engine's id of the job (a ULID), as stored in the backend.
    pub fn id(&self) -> String {
        self.id.to_string()
    }

    /// The registered task name.
    pub fn task_name(&self) -> &str {
        &self.task
    }

    /// Blocks the calling thread until the outcome arrives. In async code, `.await` the handle.
    ///
    /// # Errors
    ///
    /// The task's failure ([`RemoteError::is_task_failure`]), [`RemoteError::Cancelled`], or
    /// [`RemoteError::Detached`] if the executor shut down first.
    pub fn join(self) -> Result<T, RemoteError> {
        let raw = self.slot.take_until(None).unwrap_or_else(|| {
            Err(RemoteError::Detached {
                task: self.task.clone(),
            })
        });
        decode(&self.task, raw)
    }

    /// Like [`join`](Self::join), giving up after `timeout` (the handle is handed back in
    /// `Err` so the caller can join again).
    ///
    /// # Errors
    ///
    /// `Err(Ok(handle))` on timeout; `Err(Err(e))` for the outcomes `join` reports.
    pub fn join_timeout(self, timeout: Duration) -> Result<T, Result<Self, RemoteError>> {
        // A timeout past the clock's range (`Duration::MAX`) waits for the outcome.
        match self.slot.take_until(Instant::now().checked_add(timeout)) {
            Some(raw) => decode(&self.task, raw).map_err(Err),
            None => Err(Ok(self)),
        }
    }

    /// Cancels the task if no worker has claimed it yet; returns whether this call prevented
    /// the start. A worker claims jobs in small batches, so a job can be claimed a little before
    /// it starts; then this returns `false` and the task runs.
    ///
    /// # Errors
    ///
    /// [`RemoteError::Backend`] when the backend could not be asked.
    pub fn cancel(&self) -> Result<bool, RemoteError> {
        // The executor settles the handle's slot itself when the cancel wins (and counts it).
        self.shared.cancel(self.id)
    }
}

fn decode<T: DeserializeOwned>(task: &str, raw: RawOutcome) -> Result<T, RemoteError> {
    codec::decode(raw?).map_err(|message| RemoteError::BadOutput {
        task: task.to_owned(),
        message,
    })
}

impl<T> Future for RemoteHandle<T>
where
    T: DeserializeOwned,
{
    type Output = Result<T, RemoteError>;

    /// # Cancel safety
    ///
    /// Dropping the future before it completes leaves the task running; the outcome is lost.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.slot.poll_take(cx).map(|raw| decode(&self.task, raw))
    }
}

// The handle holds no `T`, only the JSON outcome.
impl<T> Unpin for RemoteHandle<T> {}
