//! Submitting at a level, and building a pool with the priority policy in one call.

use pool_core::{
    CancelToken, PoolBuildError, Priority, Rejected, TaskHandle, TaskOptions, ThreadPool,
};

use crate::queue::PriorityQueue;

/// Submitting at a priority level: `pool.submit_at(Priority::High, || ...)` for a result,
/// `pool.spawn_at(Priority::Idle, || ...)` for fire-and-forget work.
///
/// Implemented for [`ThreadPool`]; the handles are the usual [`TaskHandle`]s. On a pool whose
/// queue policy ignores priorities (the FIFO default) the level is recorded but has no effect.
///
/// # Examples
///
/// ```
/// use policy_priority::{priority_pool, PrioritySubmit};
/// use pool_core::Priority;
///
/// let (pool, _queue) = priority_pool(2)?;
/// let handle = pool.submit_at(Priority::Critical, || 6 * 7).unwrap();
/// assert_eq!(handle.priority(), Priority::Critical);
/// assert_eq!(handle.join().unwrap(), 42);
/// # Ok::<(), pool_core::PoolBuildError>(())
/// ```
pub trait PrioritySubmit {
    /// Runs `f` at `priority` and returns a handle to its result.
    ///
    /// # Errors
    ///
    /// After shutdown, the closure comes back in [`Rejected`].
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::{priority_pool, PrioritySubmit};
    /// use pool_core::Priority;
    ///
    /// let (pool, _queue) = priority_pool(1)?;
    /// assert_eq!(pool.submit_at(Priority::Low, || "saved").unwrap().join().unwrap(), "saved");
    /// pool.shutdown();
    /// assert!(pool.submit_at(Priority::Low, || "late").is_err());
    /// # Ok::<(), pool_core::PoolBuildError>(())
    /// ```
    fn submit_at<F, T>(&self, priority: Priority, f: F) -> Result<TaskHandle<T>, Rejected<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static;

    /// Runs `f` at `priority` without a handle: the cheapest way to queue work at a level (one
    /// allocation for the closure, as with [`ThreadPool::spawn`], which runs at `Normal`).
    ///
    /// A panic in `f` is caught and counted in the pool's stats, as for `spawn`. Nothing reports
    /// the job's end; use [`submit_at`](Self::submit_at) for a result, or a channel.
    ///
    /// # Errors
    ///
    /// After shutdown, the closure comes back in [`Rejected`].
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::{priority_pool, PrioritySubmit};
    /// use pool_core::Priority;
    /// use std::sync::mpsc;
    ///
    /// let (pool, queue) = priority_pool(1)?;
    /// let (tx, rx) = mpsc::channel();
    /// pool.spawn_at(Priority::Idle, move || tx.send("indexed").unwrap()).unwrap();
    /// assert_eq!(rx.recv().unwrap(), "indexed");
    ///
    /// pool.shutdown();
    /// assert_eq!(queue.stats().level(Priority::Idle).completed, 1);
    /// let (late_tx, late) = mpsc::channel();
    /// let refused = pool.spawn_at(Priority::Idle, move || late_tx.send("late").unwrap());
    /// (refused.unwrap_err().into_inner())(); // the closure is ours again
    /// assert_eq!(late.recv().unwrap(), "late");
    /// # Ok::<(), pool_core::PoolBuildError>(())
    /// ```
    fn spawn_at<F>(&self, priority: Priority, f: F) -> Result<(), Rejected<F>>
    where
        F: FnOnce() + Send + 'static;

    /// Runs `f` at `priority` with a [`CancelToken`] it can check to stop early when its handle
    /// is cancelled while it runs.
    ///
    /// # Errors
    ///
    /// After shutdown, the closure comes back in [`Rejected`].
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::{priority_pool, PrioritySubmit};
    /// use pool_core::Priority;
    ///
    /// let (pool, _queue) = priority_pool(1)?;
    /// let handle = pool
    ///     .submit_cancellable_at(Priority::Idle, |token| {
    ///         (0..1000).take_while(|_| !token.is_cancelled()).count()
    ///     })
    ///     .unwrap();
    /// assert!(handle.join().unwrap() <= 1000);
    /// # Ok::<(), pool_core::PoolBuildError>(())
    /// ```
    fn submit_cancellable_at<F, T>(
        &self,
        priority: Priority,
        f: F,
    ) -> Result<TaskHandle<T>, Rejected<F>>
    where
        F: for<'a> FnOnce(&CancelToken<'a>) -> T + Send + 'static,
        T: Send + 'static;
}

impl PrioritySubmit for ThreadPool {
    fn submit_at<F, T>(&self, priority: Priority, f: F) -> Result<TaskHandle<T>, Rejected<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_with(TaskOptions::new().priority(priority), f)
    }

    fn spawn_at<F>(&self, priority: Priority, f: F) -> Result<(), Rejected<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.spawn_with_priority(priority, f)
    }

    fn submit_cancellable_at<F, T>(
        &self,
        priority: Priority,
        f: F,
    ) -> Result<TaskHandle<T>, Rejected<F>>
    where
        F: for<'a> FnOnce(&CancelToken<'a>) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_cancellable_with(TaskOptions::new().priority(priority), f)
    }
}

/// A pool of `threads` workers ordered by a [`PriorityQueue`] with the default starvation guard,
/// and a clone of that queue for its statistics.
///
/// For other settings (thread names, an aging bound, hooks), build the pool yourself:
/// `ThreadPool::builder().queue_policy(queue.clone())`.
///
/// # Errors
///
/// [`PoolBuildError`] for zero threads or a thread the OS refused to start.
///
/// # Examples
///
/// ```
/// use policy_priority::{priority_pool, PrioritySubmit};
/// use pool_core::Priority;
///
/// let (pool, queue) = priority_pool(2)?;
/// pool.submit_at(Priority::High, || ()).unwrap().join().unwrap();
/// assert!(priority_pool(0).unwrap_err().is_zero_threads());
/// # drop(queue);
/// # Ok::<(), pool_core::PoolBuildError>(())
/// ```
pub fn priority_pool(threads: usize) -> Result<(ThreadPool, PriorityQueue), PoolBuildError> {
    let queue = PriorityQueue::new();
    let pool = ThreadPool::builder()
        .threads(threads)
        .queue_policy(queue.clone())
        .build()?;
    Ok((pool, queue))
}
