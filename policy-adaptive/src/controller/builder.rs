//! [`AdaptivePoolBuilder`]: the settings and the user's pool, checked and started by `build` (the
//! workers, the shared state and the controller thread); [`AdaptiveBuildError`] says why it failed.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use pool_core::sync::{thread, Arc, AtomicBool, AtomicU64, Condvar, Mutex};
use pool_core::{
    PoolBuildError, ProcessLimitError, ProcessThreadShare, QuietDrop, ThreadPool, ThreadPoolBuilder,
};

use super::schedule::controller_loop;
use super::{AdaptivePool, Control, EarlyAsk, ScaleHook, ScalingEvent, Shared};
use crate::config::{Config, ConfigError};
use crate::decide::ControllerState;
use crate::proc::WorkerThreads;
use crate::signals::PoolSignals;
use crate::snapshot::Signals;

/// Why [`AdaptivePoolBuilder::build`] failed.
///
/// # Examples
///
/// ```
/// use policy_adaptive::{AdaptivePool, AdaptiveBuildError, ConfigError};
///
/// let error = AdaptivePool::builder().min(4).max(2).build().unwrap_err();
/// assert_eq!(error.config_error(), Some(&ConfigError::MinAboveMax { min: 4, max: 2 }));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdaptiveBuildError {
    /// A setting is invalid.
    #[error("invalid adaptive pool setting: {0}")]
    Config(#[from] ConfigError),
    /// The pool could not be built (a bad name, a queue policy that already serves another
    /// pool, or a thread the OS refused).
    #[error("could not build the pool: {0}")]
    Pool(#[from] PoolBuildError),
    /// The OS refused to start the controller thread.
    #[error("could not start the controller thread: {0}")]
    Controller(#[source] std::io::Error),
    /// The controller thread would have taken the process's pools past the most threads they
    /// may hold together ([`ThreadPool::process_thread_limit`]): nothing was started.
    #[error("could not start the controller thread: {0}")]
    ProcessLimit(#[from] ProcessLimitError),
}

impl AdaptiveBuildError {
    /// The process's pools hold the most threads they may hold together
    /// ([`ThreadPool::process_thread_limit`]): there was no share for the controller thread, or
    /// for one of the `min` workers. Nothing of the pool is left running.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_adaptive::AdaptivePool;
    /// use pool_core::ThreadPool;
    /// use std::num::NonZeroUsize;
    ///
    /// // Two workers and the controller: three threads.
    /// ThreadPool::set_process_thread_limit(NonZeroUsize::new(3).unwrap());
    /// let first = AdaptivePool::new(2, 4).unwrap();
    /// let refused = AdaptivePool::new(1, 4).unwrap_err();
    /// assert!(refused.is_process_limit(), "{refused}");
    /// first.shutdown(); // its workers and its controller are joined: their shares go back
    /// assert!(AdaptivePool::new(1, 4).is_ok());
    /// ```
    pub fn is_process_limit(&self) -> bool {
        match self {
            AdaptiveBuildError::ProcessLimit(_) => true,
            AdaptiveBuildError::Pool(error) => error.is_process_limit(),
            _ => false,
        }
    }

    /// The configuration error, if that is what this is.
    pub fn config_error(&self) -> Option<&ConfigError> {
        match self {
            AdaptiveBuildError::Config(error) => Some(error),
            _ => None,
        }
    }
}

/// Builds an [`AdaptivePool`].
///
/// The pool itself is the user's: [`pool`](Self::pool) takes a [`ThreadPoolBuilder`] with any
/// queue policy, hooks and names, and the controller only adds its own start/stop hooks (they add
/// up with the user's) and owns the worker count. Without it, a FIFO pool named `adaptive-N`.
///
/// # Examples
///
/// ```
/// use policy_adaptive::AdaptivePool;
/// use pool_core::ThreadPool;
/// use std::time::Duration;
///
/// let pool = AdaptivePool::builder()
///     .pool(ThreadPool::builder().thread_name("io").stack_size(256 * 1024))
///     .min(2)
///     .max(32)
///     .interval(Duration::from_millis(50))
///     .keep_alive(Duration::from_secs(1))
///     .build()?;
/// assert_eq!(pool.threads(), 2);
/// # Ok::<(), policy_adaptive::AdaptiveBuildError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct AdaptivePoolBuilder {
    config: Config,
    pool: Option<ThreadPoolBuilder>,
    name: Option<String>,
    stack_size: Option<usize>,
    /// User code, dropped quietly (as the hook and the pool builder's parts are) wherever it
    /// goes: with this builder, with a failed build, or when the controller exits.
    signals: Option<QuietDrop<Box<dyn Signals>>>,
    on_scale: Option<ScaleHook>,
}

impl AdaptivePoolBuilder {
    pub(super) fn new() -> Self {
        AdaptivePoolBuilder {
            config: Config::default(),
            pool: None,
            name: None,
            stack_size: None,
            signals: None,
            on_scale: None,
        }
    }

    /// The pool to attach the controller to, configured by the user: queue policy (such as
    /// `policy-priority`'s), thread names, stack size, start/stop hooks, panic handler.
    ///
    /// Its thread count is replaced by `min` (the controller owns the count from then on). The
    /// controller adds its own start and stop hooks, which run after the user's.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_adaptive::AdaptivePool;
    /// use policy_priority::PriorityQueue;
    /// use pool_core::{Priority, TaskOptions, ThreadPool};
    ///
    /// let queue = PriorityQueue::new();
    /// let pool = AdaptivePool::builder()
    ///     .pool(ThreadPool::builder().queue_policy(queue.clone()).thread_name("editor"))
    ///     .max(8)
    ///     .build()?;
    /// let preview = pool.submit_with(TaskOptions::new().priority(Priority::High), || "rendered");
    /// assert_eq!(preview.unwrap().join().unwrap(), "rendered");
    /// # Ok::<(), policy_adaptive::AdaptiveBuildError>(())
    /// ```
    pub fn pool(mut self, builder: ThreadPoolBuilder) -> Self {
        self.pool = Some(builder);
        self
    }

    /// Every setting at once (replaces earlier `min`, `max`, ... calls).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Fewest workers (the pool starts with this many). Default 1.
    pub fn min(mut self, min: usize) -> Self {
        self.config.min = min;
        self
    }

    /// Most workers. Default 256.
    pub fn max(mut self, max: usize) -> Self {
        self.config.max = max;
        self
    }

    /// Time between decisions. Default 100 ms; 1 ms to 1 h
    /// ([`Config::INTERVAL_RANGE`], checked by [`build`](Self::build)).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.config.interval = interval;
        self
    }

    /// How long idle workers above `min` stay. Default 2 s; `Duration::MAX` keeps them.
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.config.keep_alive = keep_alive;
        self
    }

    /// The workers' thread name prefix (overrides the one of [`pool`](Self::pool)'s builder).
    /// Default `adaptive`, or the prefix of [`pool`](Self::pool)'s builder. The controller
    /// thread is named after the workers' prefix, whoever set it: `{prefix}-controller`.
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.name = Some(prefix.into());
        self
    }

    /// Each worker's stack size in bytes (overrides the one of [`pool`](Self::pool)'s builder).
    ///
    /// A task that overflows its worker's stack aborts the whole process (Rust's behaviour: a
    /// stack overflow is not a panic, so neither the pool nor the controller can catch it).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Replaces the production signals (for tests and simulations). Its panics are caught (a
    /// panicking sample skips the tick; the payload is dropped quietly, and so is the source
    /// when the controller exits).
    pub fn signals<S: Signals + 'static>(mut self, signals: S) -> Self {
        self.signals = Some(QuietDrop::new(Box::new(signals)));
        self
    }

    /// Called on the controller thread after each change of the worker count. A panic in it is
    /// caught (its payload and the hook's own captures are dropped quietly, whatever their
    /// `Drop` does) and the controller carries on. It may call back into the pool (read its
    /// history, submit, even shut it down or drop the last handle).
    /// [`AdaptivePool::shutdown`] waits for a call in progress, as it waits for running tasks:
    /// a hook that waits for the thread that is shutting the pool down (a lock that thread
    /// holds) deadlocks both.
    pub fn on_scale<F>(mut self, hook: F) -> Self
    where
        F: Fn(&ScalingEvent) + Send + Sync + 'static,
    {
        self.on_scale = Some(QuietDrop::new(std::sync::Arc::new(hook)));
        self
    }

    /// Checks the settings, starts `min` workers and the controller thread.
    ///
    /// # Errors
    ///
    /// [`AdaptiveBuildError`]: a bad setting (naming the field), a thread the OS refused, or no
    /// share left of the process's thread budget for a worker or the controller
    /// ([`AdaptiveBuildError::is_process_limit`]).
    /// The source, the hook and the pool builder are then dropped quietly: a `Drop` of theirs
    /// that panics does not replace the error with a panic.
    pub fn build(self) -> Result<AdaptivePool, AdaptiveBuildError> {
        self.config.validate()?;
        // The controller's share of the process's thread budget before any thread starts: a
        // refusal leaves nothing to stop. (The workers take theirs in the pool's build.)
        let share = ProcessThreadShare::reserve()?;
        let workers = WorkerThreads::new();
        let mut builder = match self.pool {
            Some(builder) => builder,
            None => ThreadPool::builder().thread_name("adaptive"),
        };
        if let Some(name) = &self.name {
            builder = builder.thread_name(name.clone());
        }
        if let Some(bytes) = self.stack_size {
            builder = builder.stack_size(bytes);
        }
        // Hooks add up in pool-core: the user's run first, ours record the worker's OS thread id.
        let pool = workers
            .recording(builder.threads(self.config.min))
            .build()?;
        let mut signals = self
            .signals
            .unwrap_or_else(|| QuietDrop::new(Box::new(PoolSignals::new(workers))));
        // A new pool may grow on demand: a burst may come before the first tick.
        let armed = self.config.min < self.config.max;
        let shared = Arc::new(Shared {
            pool,
            config: self.config,
            born: Instant::now(),
            control: Mutex::new(Control {
                stop: false,
                ask: EarlyAsk::new(),
                history: VecDeque::new(),
                state: ControllerState::new(),
                last_decision: None,
                clock: None,
            }),
            wake: Condvar::new(),
            armed: AtomicBool::new(armed),
            early_ticks: AtomicU64::new(0),
            skipped_looks: AtomicU64::new(0),
            controller_cpu_ns: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
            callback_panics: AtomicU64::new(0),
            on_scale: self.on_scale,
        });
        let worker_shared = Arc::clone(&shared);
        // The workers' prefix, whoever set it (this builder, the user's pool builder, or ours).
        let controller =
            thread::Builder::new().name(format!("{}-controller", shared.pool.thread_name()));
        // The source goes quietly with the closure: when the controller exits, or here if the
        // thread never starts (a `spawn` that panics included).
        let controller = match share.spawn(controller, move || {
            controller_loop(&worker_shared, &mut **signals)
        }) {
            Ok(handle) => handle,
            Err(error) => {
                shared.pool.shutdown();
                return Err(AdaptiveBuildError::Controller(error));
            }
        };
        Ok(AdaptivePool {
            shared,
            controller: Mutex::new(Some(controller)),
        })
    }
}

impl fmt::Debug for AdaptivePoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptivePoolBuilder")
            .field("config", &self.config)
            .field("pool", &self.pool)
            .field("name", &self.name)
            .field("custom_signals", &self.signals.is_some())
            .finish_non_exhaustive()
    }
}
