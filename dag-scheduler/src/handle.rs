//! The handle of a started run: wait, wait with a timeout, cancel, or await it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use pool_core::drop_quietly;
use pool_core::sync::ErasedArc;

use crate::report::Report;
use crate::run::Run;

/// A run in progress, from [`Graph::start`](crate::Graph::start).
///
/// Dropping the handle detaches the run: it goes on to the end. It is a [`Future`] too, so any
/// async runtime can `.await` the [`Report`].
///
/// # Examples
///
/// ```
/// use dag_scheduler::{Graph, Outcome};
/// use pool_core::ThreadPool;
/// use std::sync::{mpsc, Arc, Mutex};
/// use std::time::Duration;
///
/// let (open, gate) = mpsc::channel::<()>();
/// let gate = Mutex::new(gate);
/// let mut builder = Graph::builder();
/// builder.node("slow", move |_| gate.lock().unwrap().recv().unwrap());
/// builder.node("after", |_| ()).after("slow");
/// let graph = builder.build().unwrap();
///
/// let handle = graph.start(Arc::new(ThreadPool::new(1).unwrap()));
/// let handle = handle.wait_timeout(Duration::from_millis(1)).unwrap_err(); // still running
/// assert!(handle.cancel());
/// open.send(()).unwrap();
/// let report = handle.wait();
/// assert_eq!(report.outcome("after"), Some(Outcome::Cancelled));
/// ```
pub struct RunHandle {
    run: ErasedArc<Run>,
}

impl fmt::Debug for RunHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl RunHandle {
    pub(crate) fn new(run: ErasedArc<Run>) -> Self {
        RunHandle { run }
    }

    /// Blocks until every node has an outcome (running nodes return; unstarted ones are
    /// decided without running when the run is cancelled).
    ///
    /// This blocks the calling thread: inside an async task, `.await` the handle instead.
    ///
    /// Called on a worker of a [`ThreadPool`](pool_core::ThreadPool) (a task or a node that
    /// waits for a nested graph), it runs that pool's queued tasks while the run is not done, so
    /// runs nested in tasks of the pool they run on never deadlock it, and blocks only once the
    /// pool has nothing queued. What it cannot help with: a run on *another* executor whose
    /// threads are all blocked (waiting, say, for the very task this thread is running) stays
    /// blocked, and a thread that is not a pool worker only blocks.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::InlineExecutor;
    ///
    /// let graph = dag_scheduler::Graph::builder().build().unwrap();
    /// assert_eq!(graph.start(InlineExecutor).wait().len(), 0);
    /// ```
    pub fn wait(self) -> Report {
        self.run.wait_finished(None);
        Report::new(self.run)
    }

    /// Like [`wait`](Self::wait) (helping its pool the same way), but gives the handle back if
    /// the run has not finished within `timeout`.
    ///
    /// # Errors
    ///
    /// The run is still going: the handle comes back to wait again or cancel.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::InlineExecutor;
    /// use std::time::Duration;
    ///
    /// let graph = dag_scheduler::Graph::builder().build().unwrap();
    /// let report = graph.start(InlineExecutor).wait_timeout(Duration::from_secs(10)).unwrap();
    /// assert!(report.is_success());
    /// ```
    pub fn wait_timeout(self, timeout: Duration) -> Result<Report, RunHandle> {
        // A timeout too large for the clock waits without a deadline.
        let deadline = Instant::now().checked_add(timeout);
        if self.run.wait_finished(deadline) {
            Ok(Report::new(self.run))
        } else {
            Err(self)
        }
    }

    /// Cancels the run: nodes not started yet finish as `Cancelled` without running, running
    /// nodes see [`Context::is_cancelled`](crate::Context::is_cancelled). Returns whether the
    /// run was still going (`false` if it had already finished).
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::InlineExecutor;
    ///
    /// let graph = dag_scheduler::Graph::builder().build().unwrap();
    /// let handle = graph.start(InlineExecutor); // an inline executor finishes inside start
    /// assert!(!handle.cancel());
    /// ```
    pub fn cancel(&self) -> bool {
        self.run.cancel()
    }

    /// Whether every node has an outcome.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::InlineExecutor;
    ///
    /// let graph = dag_scheduler::Graph::builder().build().unwrap();
    /// assert!(graph.start(InlineExecutor).is_finished());
    /// ```
    pub fn is_finished(&self) -> bool {
        self.run.is_finished()
    }
}

impl Future for RunHandle {
    type Output = Report;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Report> {
        let mut done = self.run.done.lock();
        if done.finished {
            drop(done);
            return Poll::Ready(Report::new(ErasedArc::clone(&self.run)));
        }
        let replaced = match &mut done.waker {
            Some(waker) if waker.will_wake(cx.waker()) => None,
            slot => slot.replace(cx.waker().clone()),
        };
        drop(done);
        // A user's waker: its `Drop` may panic; not while we hold the lock, and not into us.
        drop_quietly(replaced);
        Poll::Pending
    }
}
