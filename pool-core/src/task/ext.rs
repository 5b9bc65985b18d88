//! `ExecutorExt`: task handles on any [`Executor`], not only on a [`ThreadPool`](crate::ThreadPool).

use crate::executor::{Executor, Job, Priority, Rejected};
use crate::unwind::catch_panic;

use super::cell::{new_reclaimable_task, Plain, PoolId};
use super::handle::TaskHandle;

/// Submits closures with a [`TaskHandle`] to any [`Executor`]: cancel before start, `join`,
/// `.await`, the panic reported as [`TaskError::Panicked`](crate::TaskError::Panicked).
///
/// The handle works whatever the executor does with the job: if it refuses the job, the closure
/// comes back in [`Rejected`]; if it accepts the job and later drops it without running it (a
/// runtime shut down with work queued), the handle resolves as cancelled with
/// [`CancelReason::Dropped`](crate::CancelReason::Dropped); if `execute` itself panics, the job is gone and the handle resolves
/// the same way.
///
/// # Examples
///
/// On an executor that runs each job on a new thread:
///
/// ```
/// use pool_core::{Executor, ExecutorExt, Job, Rejected};
///
/// struct ThreadPerJob;
///
/// impl Executor for ThreadPerJob {
///     fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
///         std::thread::spawn(job);
///         Ok(())
///     }
/// }
///
/// let handle = ThreadPerJob.submit(|| 6 * 7).unwrap();
/// assert_eq!(handle.join().unwrap(), 42);
/// ```
pub trait ExecutorExt: Executor {
    /// Runs `f` on the executor and returns a handle to its result.
    ///
    /// # Errors
    ///
    /// The closure comes back in [`Rejected`] when the executor refuses the job.
    fn submit<F, T>(&self, f: F) -> Result<TaskHandle<T>, Rejected<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_at(Priority::Normal, f)
    }

    /// [`submit`](Self::submit) with a priority hint (see
    /// [`Executor::execute_with_priority`]).
    ///
    /// # Errors
    ///
    /// The closure comes back in [`Rejected`] when the executor refuses the job.
    fn submit_at<F, T>(&self, priority: Priority, f: F) -> Result<TaskHandle<T>, Rejected<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (entry, ops, raw, cell) = new_reclaimable_task(Plain(f), priority, None, PoolId::NONE);
        let handle = TaskHandle::new(ops, raw);
        // The job owns the queue entry: running it runs the task; dropping it unrun cancels the
        // task (`CancelReason::Dropped`), so the handle never waits forever.
        let job: Job = Box::new(move || {
            entry.run(&|| ());
        });
        match catch_panic(|| self.execute_with_priority(job, priority)) {
            Ok(Ok(())) => Ok(handle),
            Ok(Err(Rejected(job))) => {
                // Take the closure back before the job's drop would cancel the task and drop it.
                let closure = cell.reclaim();
                drop(job);
                match closure {
                    Some(Plain(f)) => Err(Rejected(f)),
                    // The executor ran the task before handing the job back: the outcome is in
                    // the handle.
                    None => Ok(handle),
                }
            }
            // `execute` panicked: the job was dropped while unwinding (or is held somewhere); its
            // drop cancels the task, so the handle resolves.
            Err(_message) => Ok(handle),
        }
    }
}

impl<E: Executor + ?Sized> ExecutorExt for E {}
