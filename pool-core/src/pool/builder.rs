//! `ThreadPoolBuilder`: every setting checked, a typed error for each mistake.

use std::fmt;

use super::{Hooks, ThreadPool};
use crate::error::PoolBuildError;
use crate::policy::QueuePolicy;
use crate::unwind::QuietDrop;

/// Configures and starts a [`ThreadPool`].
///
/// # Examples
///
/// ```
/// use pool_core::ThreadPool;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let started = Arc::new(AtomicUsize::new(0));
/// let s = started.clone();
/// let pool = ThreadPool::builder()
///     .threads(3)
///     .thread_name("render")
///     .stack_size(512 * 1024)
///     .on_thread_start(move |_index| { s.fetch_add(1, Ordering::SeqCst); })
///     .build()
///     .unwrap();
/// let name = pool.submit(|| std::thread::current().name().map(String::from)).unwrap();
/// assert!(name.join().unwrap().unwrap().starts_with("render-"));
/// pool.shutdown();
/// assert_eq!(started.load(Ordering::SeqCst), 3);
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct ThreadPoolBuilder {
    threads: Option<usize>,
    /// The settings the pool keeps, hooks included: `Hooks` drops each hook quietly, with this
    /// builder (dropped, or its `build` failed) as with the pool.
    hooks: Hooks,
    /// User code too: dropped quietly with the builder, handed to the pool's `Global` (which
    /// drops it quietly in turn) at `build`.
    policy: Option<QuietDrop<Box<dyn QueuePolicy>>>,
}

impl Default for ThreadPoolBuilder {
    fn default() -> Self {
        ThreadPoolBuilder {
            threads: None,
            hooks: Hooks {
                name: "pool".to_string(),
                stack_size: None,
                on_start: Vec::new(),
                on_stop: Vec::new(),
                on_park: Vec::new(),
                on_unpark: Vec::new(),
                panic_handler: None,
            },
            policy: None,
        }
    }
}

impl ThreadPoolBuilder {
    /// A builder with the defaults: one thread per available core, FIFO order, threads named
    /// `pool-N`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of worker threads, from 1 to [`ThreadPool::MAX_THREADS`]. Default:
    /// `std::thread::available_parallelism`, at most `MAX_THREADS`.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// The worker threads' name prefix; workers are named `{prefix}-{index}`. Default `pool`.
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.hooks.name = prefix.into();
        self
    }

    /// Each worker's stack size in bytes (at least 1; the OS rounds it up to its minimum).
    ///
    /// A task that overflows its worker's stack aborts the whole process (Rust's behaviour: a
    /// stack overflow is not a panic, so the pool cannot catch it as it catches a task's panic).
    /// Give deeply recursive tasks a bigger stack here.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.hooks.stack_size = Some(bytes);
        self
    }

    /// Called on each worker thread when it starts, with the worker's index. A panic in the hook
    /// is caught and does not stop the worker.
    ///
    /// Hooks add up: every hook given by repeated calls runs, in the order given, so a policy can
    /// add its own without taking the user's.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::ThreadPool;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let (mine, theirs) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    /// let (m, t) = (mine.clone(), theirs.clone());
    /// let pool = ThreadPool::builder()
    ///     .threads(2)
    ///     .on_thread_start(move |_| { m.fetch_add(1, Ordering::SeqCst); })
    ///     .on_thread_start(move |_| { t.fetch_add(1, Ordering::SeqCst); })
    ///     .build()
    ///     .unwrap();
    /// pool.shutdown();
    /// assert_eq!((mine.load(Ordering::SeqCst), theirs.load(Ordering::SeqCst)), (2, 2));
    /// ```
    pub fn on_thread_start<F>(mut self, hook: F) -> Self
    where
        F: Fn(usize) + Send + Sync + 'static,
    {
        self.hooks.on_start.push(std::sync::Arc::new(hook));
        self
    }

    /// Called on each worker thread just before it exits (shutdown or retirement). A panic in the
    /// hook is caught. Hooks add up, as for [`on_thread_start`](Self::on_thread_start).
    pub fn on_thread_stop<F>(mut self, hook: F) -> Self
    where
        F: Fn(usize) + Send + Sync + 'static,
    {
        self.hooks.on_stop.push(std::sync::Arc::new(hook));
        self
    }

    /// Called on a worker thread, with its index, just before it parks because it found no work
    /// (as tokio's `on_thread_park`). Hooks add up; a panic in one is caught. Keep it short: it
    /// runs on the worker, between finding nothing and sleeping.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::ThreadPool;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let parks = Arc::new(AtomicUsize::new(0));
    /// let p = parks.clone();
    /// let pool = ThreadPool::builder()
    ///     .threads(1)
    ///     .on_thread_park(move |_| { p.fetch_add(1, Ordering::Relaxed); })
    ///     .build()
    ///     .unwrap();
    /// pool.submit(|| ()).unwrap().join().unwrap();
    /// assert!(pool.wait_idle(std::time::Duration::from_secs(30))); // idle means parked
    /// assert!(parks.load(Ordering::Relaxed) >= 1);
    /// ```
    pub fn on_thread_park<F>(mut self, hook: F) -> Self
    where
        F: Fn(usize) + Send + Sync + 'static,
    {
        self.hooks.on_park.push(std::sync::Arc::new(hook));
        self
    }

    /// Called on a worker thread, with its index, when it wakes from parking (as tokio's
    /// `on_thread_unpark`). Hooks add up; a panic in one is caught.
    pub fn on_thread_unpark<F>(mut self, hook: F) -> Self
    where
        F: Fn(usize) + Send + Sync + 'static,
    {
        self.hooks.on_unpark.push(std::sync::Arc::new(hook));
        self
    }

    /// Called with the message when a fire-and-forget job (one without a handle to report to)
    /// panics. Tasks with a handle report their panic through the handle instead. A panic in the
    /// handler is caught.
    pub fn panic_handler<F>(mut self, handler: F) -> Self
    where
        F: Fn(&str) + Send + Sync + 'static,
    {
        self.hooks.panic_handler = Some(std::sync::Arc::new(handler));
        self
    }

    /// Replaces the FIFO ready queue with another order, such as `policy-priority`'s.
    pub fn queue_policy<P: QueuePolicy>(mut self, policy: P) -> Self {
        self.policy = Some(QuietDrop::new(Box::new(policy)));
        self
    }

    /// Like [`queue_policy`](Self::queue_policy), for a policy already boxed.
    pub fn boxed_queue_policy(mut self, policy: Box<dyn QueuePolicy>) -> Self {
        self.policy = Some(QuietDrop::new(policy));
        self
    }

    /// Checks the settings and starts the workers.
    ///
    /// # Errors
    ///
    /// [`PoolBuildError`] names the rejected setting: zero threads or more than
    /// [`ThreadPool::MAX_THREADS`], a zero stack size, a name with a
    /// NUL byte, a queue policy that refused to serve the pool (it already serves one: see
    /// [`QueuePolicy::attach`](crate::QueuePolicy::attach)), or a thread the OS refused to start
    /// (the threads already started are stopped).
    /// The hooks and the policy the builder held are then dropped quietly: a `Drop` of theirs
    /// that panics does not replace the error with a panic.
    pub fn build(self) -> Result<ThreadPool, PoolBuildError> {
        let threads = match self.threads {
            Some(0) => return Err(PoolBuildError::zero_threads()),
            Some(n) if n > ThreadPool::MAX_THREADS => {
                return Err(PoolBuildError::too_many_threads(n))
            }
            Some(n) => n,
            // Capped, so that the default holds the bound on a machine of more cores.
            None => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(ThreadPool::MAX_THREADS),
        };
        if self.hooks.stack_size == Some(0) {
            return Err(PoolBuildError::zero_stack_size());
        }
        if self.hooks.name.contains('\0') {
            return Err(PoolBuildError::name_has_nul());
        }
        ThreadPool::start(threads, self.hooks, self.policy)
    }
}

impl fmt::Debug for ThreadPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolBuilder")
            .field("threads", &self.threads)
            .field("name", &self.hooks.name)
            .field("stack_size", &self.hooks.stack_size)
            .field("queue_policy", &self.policy)
            .finish_non_exhaustive()
    }
}
