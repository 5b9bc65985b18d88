//! [`AdaptivePool`]: a pool-core `ThreadPool` with a controller thread that resizes it. The
//! lifecycle (start, tick, stop, resize vs shutdown) is described in `README.md` beside this file.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use pool_core::sync::{thread, Arc, AtomicBool, AtomicU64, Condvar, Mutex, Ordering};
use pool_core::{
    CancelToken, Executor, Job, PoolBuildError, PoolStats, Priority, Rejected, ResizeError,
    TaskHandle, TaskOptions, ThreadPool, ThreadPoolBuilder,
};

use crate::config::{Config, ConfigError};
use crate::decide::{decide, grows_on_demand, ControllerState, Decision, Reason, LOOK_AGAIN_AFTER};
use crate::midway::MidwayLook;
use crate::proc::{current_thread_cpu, CpuClock, WorkerThreads};
use crate::signals::PoolSignals;
use crate::snapshot::{Signals, Snapshot};
use crate::stretch::{self, Stretch};

/// The history keeps the most recent events only, so a long-running pool's memory stays bounded.
const HISTORY_CAPACITY: usize = 4096;

/// Early looks (asked for by a submission that found work queued) come at most this many
/// times per `interval`, and at least every `EARLY_GAP_MAX`: a sample reads up to 8 CPU clocks
/// and two `schedstat` files, so an unbounded rate would turn a submission storm into a
/// controller storm.
const EARLY_PER_INTERVAL: u32 = 10;
/// With a long interval, the early looks still come this soon after each other.
const EARLY_GAP_MAX: Duration = Duration::from_millis(10);

/// One change of the worker count.
///
/// # Examples
///
/// ```
/// use policy_adaptive::AdaptivePool;
///
/// let pool = AdaptivePool::builder().min(1).max(4).build().unwrap();
/// for event in pool.history() {
///     println!("{:?}: {} -> {} ({})", event.at, event.from, event.to, event.reason);
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScalingEvent {
    /// Time since the pool was built.
    pub at: Duration,
    /// The controller's tick number (from 1).
    pub tick: u64,
    /// The worker count before.
    pub from: usize,
    /// The worker count asked for.
    pub to: usize,
    /// Why.
    pub reason: Reason,
}

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
    /// The pool could not be built (a bad name, or a thread the OS refused).
    #[error("could not build the pool: {0}")]
    Pool(#[from] PoolBuildError),
    /// The OS refused to start the controller thread.
    #[error("could not start the controller thread: {0}")]
    Controller(#[source] std::io::Error),
}

impl AdaptiveBuildError {
    /// The configuration error, if that is what this is.
    pub fn config_error(&self) -> Option<&ConfigError> {
        match self {
            AdaptiveBuildError::Config(error) => Some(error),
            _ => None,
        }
    }
}

type ScaleHook = std::sync::Arc<dyn Fn(&ScalingEvent) + Send + Sync>;

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
pub struct AdaptivePoolBuilder {
    config: Config,
    pool: Option<ThreadPoolBuilder>,
    name: Option<String>,
    stack_size: Option<usize>,
    signals: Option<Box<dyn Signals>>,
    on_scale: Option<ScaleHook>,
}

impl AdaptivePoolBuilder {
    fn new() -> Self {
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

    /// Time between decisions. Default 100 ms.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.config.interval = interval;
        self
    }

    /// How long idle workers above `min` stay. Default 2 s.
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.config.keep_alive = keep_alive;
        self
    }

    /// The workers' thread name prefix (overrides the one of [`pool`](Self::pool)'s builder) and
    /// the controller's (`{prefix}-controller`). Default `adaptive`.
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.name = Some(prefix.into());
        self
    }

    /// Each worker's stack size in bytes (overrides the one of [`pool`](Self::pool)'s builder).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Replaces the production signals (for tests and simulations).
    pub fn signals<S: Signals + 'static>(mut self, signals: S) -> Self {
        self.signals = Some(Box::new(signals));
        self
    }

    /// Called on the controller thread after each change of the worker count. A panic in it is
    /// caught and the controller carries on.
    pub fn on_scale<F>(mut self, hook: F) -> Self
    where
        F: Fn(&ScalingEvent) + Send + Sync + 'static,
    {
        self.on_scale = Some(std::sync::Arc::new(hook));
        self
    }

    /// Checks the settings, starts `min` workers and the controller thread.
    ///
    /// # Errors
    ///
    /// [`AdaptiveBuildError`]: a bad setting (naming the field), or a thread the OS refused.
    pub fn build(self) -> Result<AdaptivePool, AdaptiveBuildError> {
        self.config.validate()?;
        let workers = WorkerThreads::new();
        let (on_start, on_stop) = (workers.clone(), workers.clone());
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
        let pool = builder
            .threads(self.config.min)
            .on_thread_start(move |index| on_start.record_current(index))
            .on_thread_stop(move |index| on_stop.forget(index))
            .build()?;
        let signals = self
            .signals
            .unwrap_or_else(|| Box::new(PoolSignals::new(workers)));
        // A new pool may grow on demand: a burst may come before the first tick.
        let armed = self.config.min < self.config.max;
        let shared = Arc::new(Shared {
            pool,
            config: self.config,
            born: Instant::now(),
            control: Mutex::new(Control {
                stop: false,
                early: false,
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
        let name = self.name.as_deref().unwrap_or("adaptive");
        let controller = thread::Builder::new()
            .name(format!("{name}-controller"))
            .spawn(move || controller_loop(&worker_shared, signals));
        let controller = match controller {
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

/// The controller's mutable state, under one lock with the stop flag so a stop cannot slip
/// between the controller's check and its wait.
struct Control {
    stop: bool,
    /// A submission found every worker busy with work queued: decide early (see README.md).
    early: bool,
    history: VecDeque<ScalingEvent>,
    state: ControllerState,
    last_decision: Option<(Snapshot, Decision)>,
    /// The controller thread's CPU clock while it runs: `controller_cpu` reads it from the
    /// caller's thread, so the controller spends no system call per tick on its own statistics.
    /// Cleared under this lock by the controller before it exits, so a clock read under the
    /// lock is always a live thread's (a dead thread's id could be reused).
    clock: Option<CpuClock>,
}

struct Shared {
    pool: ThreadPool,
    config: Config,
    born: Instant,
    control: Mutex<Control>,
    wake: Condvar,
    /// Whether a submission that finds work queued should ask for an early decision: set by the
    /// controller when the last snapshot allows growth ([`grows_on_demand`]), taken (swapped to
    /// false) by the one submission that asks. The submit path's only cost while it is false
    /// is one relaxed load.
    armed: AtomicBool,
    early_ticks: AtomicU64,
    skipped_looks: AtomicU64,
    controller_cpu_ns: AtomicU64,
    ticks: AtomicU64,
    callback_panics: AtomicU64,
    on_scale: Option<ScaleHook>,
}

impl Shared {
    /// Called after every accepted submission. Relaxed is enough: a stale `armed` only delays
    /// the early decision to the next tick (the schedule every decision had before), and the
    /// request itself goes through the `control` lock.
    #[inline]
    fn after_submit(&self) {
        if self.armed.load(Ordering::Relaxed) {
            self.request_early_decision();
        }
    }

    /// Counts a look between ticks that took no sample, and passes on whether it found the
    /// backlog the last sample read gone (nothing queued, or the queue covered by workers not
    /// running a task), for `ControllerState::forget_backlog`.
    fn skip_look(&self, backlog_gone: bool) -> bool {
        self.skipped_looks.fetch_add(1, Ordering::Relaxed);
        backlog_gone
    }

    #[cold]
    fn request_early_decision(&self) {
        // A submission from a worker goes to its own deque; nothing waits in the shared queue,
        // so nothing to hurry (the starvation rule covers a worker waiting on its own child).
        if self.pool.queue_len() == 0 {
            return;
        }
        // One submission per arming asks; the rest of a burst pays the load above only.
        if self.armed.swap(false, Ordering::Relaxed) {
            self.control.lock().early = true;
            self.wake.notify_one();
        }
    }
}

/// A [`ThreadPool`] whose worker count follows the work: a controller thread samples
/// [`Signals`] every `interval`, runs [`decide`](crate::decide) and resizes the pool. A
/// submission that finds every worker busy and work queued asks for an early decision instead
/// of waiting for the tick (bounded by `max` and by the blocked-vs-running signal).
///
/// The pool is attached, not exposed for writing: the submission methods, `stats`, `wait_idle`
/// and `shutdown` are forwarded, [`pool`](Self::pool) gives the pool for reads, and it
/// implements [`Executor`] (priorities forwarded), so a `Coalescer` or a DAG run can use it.
/// Dropping it (or [`shutdown`](Self::shutdown)) stops and joins the controller, then shuts the
/// pool down gracefully: no thread outlives it.
///
/// # Examples
///
/// ```
/// use policy_adaptive::AdaptivePool;
/// use std::time::Duration;
///
/// let pool = AdaptivePool::builder().min(1).max(16).build()?;
/// let handles: Vec<_> = (0..32)
///     .map(|i| pool.submit(move || { std::thread::sleep(Duration::from_millis(2)); i }).unwrap())
///     .collect();
/// let sum: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
/// assert_eq!(sum, (0..32).sum());
/// pool.shutdown();
/// assert!(pool.stats().is_balanced());
/// # Ok::<(), policy_adaptive::AdaptiveBuildError>(())
/// ```
pub struct AdaptivePool {
    shared: Arc<Shared>,
    controller: Mutex<Option<thread::JoinHandle<()>>>,
}

impl AdaptivePool {
    /// A builder with the default [`Config`].
    pub fn builder() -> AdaptivePoolBuilder {
        AdaptivePoolBuilder::new()
    }

    /// A pool between `min` and `max` workers, other settings default.
    ///
    /// # Errors
    ///
    /// As [`AdaptivePoolBuilder::build`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = policy_adaptive::AdaptivePool::new(1, 8).unwrap();
    /// assert_eq!(pool.submit(|| 5).unwrap().join().unwrap(), 5);
    /// ```
    pub fn new(min: usize, max: usize) -> Result<AdaptivePool, AdaptiveBuildError> {
        Self::builder().min(min).max(max).build()
    }

    /// The underlying pool, for reads (stats, `queue_len`, `idle_waiters`, ...).
    ///
    /// Its `set_threads` fights the controller (the next decision moves from the count set),
    /// and its `shutdown` leaves the controller running until this pool is dropped or shut
    /// down; prefer [`AdaptivePool::shutdown`]. Submissions made through it skip the early
    /// decision (they wait for the tick).
    pub fn pool(&self) -> &ThreadPool {
        &self.shared.pool
    }

    /// Runs `job` without a handle (see [`ThreadPool::spawn`]).
    ///
    /// # Errors
    ///
    /// After shutdown, the closure comes back in [`Rejected`].
    pub fn spawn<F>(&self, job: F) -> Result<(), Rejected<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.shared.pool.spawn(job)?;
        self.shared.after_submit();
        Ok(())
    }

    /// Runs `f` and returns a handle to its result (see [`ThreadPool::submit`]).
    ///
    /// # Errors
    ///
    /// After shutdown, the closure comes back in [`Rejected`].
    pub fn submit<F, T>(&self, f: F) -> Result<TaskHandle<T>, Rejected<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_with(TaskOptions::default(), f)
    }

    /// [`submit`](Self::submit) with a priority (seen by a priority queue policy) and/or a
    /// start deadline (see [`ThreadPool::submit_with`]).
    ///
    /// # Errors
    ///
    /// After shutdown, the closure comes back in [`Rejected`].
    pub fn submit_with<F, T>(
        &self,
        options: TaskOptions,
        f: F,
    ) -> Result<TaskHandle<T>, Rejected<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let handle = self.shared.pool.submit_with(options, f)?;
        self.shared.after_submit();
        Ok(handle)
    }

    /// Runs `f` with a [`CancelToken`] it can check to stop early (see
    /// [`ThreadPool::submit_cancellable`]).
    ///
    /// # Errors
    ///
    /// After shutdown, the closure comes back in [`Rejected`].
    pub fn submit_cancellable<F, T>(&self, f: F) -> Result<TaskHandle<T>, Rejected<F>>
    where
        F: for<'a> FnOnce(&CancelToken<'a>) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_cancellable_with(TaskOptions::default(), f)
    }

    /// [`submit_cancellable`](Self::submit_cancellable) with options (see
    /// [`ThreadPool::submit_cancellable_with`]).
    ///
    /// # Errors
    ///
    /// After shutdown, the closure comes back in [`Rejected`].
    pub fn submit_cancellable_with<F, T>(
        &self,
        options: TaskOptions,
        f: F,
    ) -> Result<TaskHandle<T>, Rejected<F>>
    where
        F: for<'a> FnOnce(&CancelToken<'a>) -> T + Send + 'static,
        T: Send + 'static,
    {
        let handle = self.shared.pool.submit_cancellable_with(options, f)?;
        self.shared.after_submit();
        Ok(handle)
    }

    /// Raises a queued task's priority (see [`ThreadPool::raise_priority`]).
    pub fn raise_priority<T>(&self, handle: &TaskHandle<T>, to: Priority) -> bool {
        self.shared.pool.raise_priority(handle, to)
    }

    /// The pool's counters (see [`PoolStats`]).
    pub fn stats(&self) -> PoolStats {
        self.shared.pool.stats()
    }

    /// The worker count the controller last asked for.
    pub fn threads(&self) -> usize {
        self.shared.pool.threads()
    }

    /// Waits until nothing is queued or running, or `timeout` passes; returns whether the pool
    /// went idle (see [`ThreadPool::wait_idle`]).
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        self.shared.pool.wait_idle(timeout)
    }

    /// Cancels every queued task; returns how many (see [`ThreadPool::cancel_all`]).
    pub fn cancel_all(&self) -> usize {
        self.shared.pool.cancel_all()
    }

    /// Whether the pool was shut down.
    pub fn is_shutdown(&self) -> bool {
        self.shared.pool.is_shutdown()
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The scaling events so far, oldest first (the most recent 4096).
    pub fn history(&self) -> Vec<ScalingEvent> {
        self.shared.control.lock().history.iter().copied().collect()
    }

    /// The last tick's snapshot and decision, if a tick has run.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = policy_adaptive::AdaptivePool::new(1, 4).unwrap();
    /// if let Some((snapshot, decision)) = pool.last_decision() {
    ///     println!("{snapshot} -> {} ({})", decision.target, decision.reason);
    /// }
    /// ```
    pub fn last_decision(&self) -> Option<(Snapshot, Decision)> {
        self.shared.control.lock().last_decision
    }

    /// Ticks the controller has run (early ones included).
    pub fn ticks(&self) -> u64 {
        self.shared.ticks.load(Ordering::Relaxed)
    }

    /// Of [`ticks`](Self::ticks), how many were early decisions: asked for by a submission that
    /// found every worker busy and work queued, or the second look a tick asked for after the
    /// workers' CPU dipped mid-tick
    /// ([`ControllerState::looks_again`](crate::ControllerState::looks_again)), or the midway
    /// look after an early one that held, when the process's CPU fell
    /// ([`Signals::process_cpu_since_sample`]).
    pub fn early_ticks(&self) -> u64 {
        self.shared.early_ticks.load(Ordering::Relaxed)
    }

    /// Looks between regular ticks that took no sample: the cheap check found nothing queued,
    /// a worker not running a task, or the pool at `max`; or a midway look found the process's
    /// CPU had not fallen. Each cost a `stats()` or clock read, no sample and no decision. A
    /// look that found nothing queued, or the queue covered by workers not running a task, also
    /// ends the backlog the last sample read: the next one is new, and grows the pool by one at
    /// first ([`Reason::NewBacklog`](crate::Reason::NewBacklog)).
    pub fn skipped_looks(&self) -> u64 {
        self.shared.skipped_looks.load(Ordering::Relaxed)
    }

    /// How many panics from signals, the decision or the `on_scale` hook the controller caught.
    pub fn callback_panics(&self) -> u64 {
        self.shared.callback_panics.load(Ordering::Relaxed)
    }

    /// CPU time the controller thread has used, where the platform reports per-thread CPU time
    /// (Linux); the cost of adapting.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = policy_adaptive::AdaptivePool::new(1, 4).unwrap();
    /// if let Some(cpu) = pool.controller_cpu() {
    ///     assert!(cpu < std::time::Duration::from_secs(1));
    /// }
    /// ```
    pub fn controller_cpu(&self) -> Option<std::time::Duration> {
        // The live controller's clock, read under the lock it clears before exiting; else the
        // figure it left on its way out.
        let live = self.shared.control.lock().clock.and_then(CpuClock::read);
        let ns = live.map_or_else(
            || self.shared.controller_cpu_ns.load(Ordering::Relaxed),
            |cpu| u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX),
        );
        (cfg!(target_os = "linux") && ns > 0).then(|| Duration::from_nanos(ns))
    }

    /// Stops and joins the controller, then shuts the pool down gracefully (queued work runs,
    /// every worker is joined). Idempotent.
    ///
    /// Called from the `on_scale` hook (the controller thread) or a task, it stops intake and
    /// returns without joining what cannot be joined from there; `Drop` finishes the job.
    pub fn shutdown(&self) {
        self.stop_controller();
        self.shared.pool.shutdown();
    }

    /// Like [`shutdown`](Self::shutdown) but cancels queued work (see
    /// [`ThreadPool::shutdown_now`]); returns how many tasks it cancelled.
    pub fn shutdown_now(&self) -> usize {
        self.stop_controller();
        self.shared.pool.shutdown_now()
    }

    fn stop_controller(&self) {
        {
            let mut control = self.shared.control.lock();
            control.stop = true;
        }
        // Planted bug (loom models only, `.ci/loom-planted`): set the flag without waking the
        // controller, which then sleeps through its stop; the shutdown model must deadlock.
        #[cfg(not(loom_broken_adaptive_stop))]
        self.shared.wake.notify_all();
        let mut slot = self.controller.lock();
        let is_controller = slot
            .as_ref()
            .is_some_and(|handle| handle.thread().id() == thread::current().id());
        if is_controller {
            return;
        }
        if let Some(handle) = slot.take() {
            // The controller catches every panic of user code; a panic here would be our bug,
            // and there is nothing left to clean up, so it is not re-raised.
            let _ = handle.join();
        }
    }
}

/// Jobs go to the attached pool with their priority (a priority queue policy orders them), and
/// count for the early decision like [`AdaptivePool::submit`].
impl Executor for AdaptivePool {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        self.execute_with_priority(job, Priority::Normal)
    }

    fn execute_with_priority(&self, job: Job, priority: Priority) -> Result<(), Rejected<Job>> {
        self.shared.pool.execute_with_priority(job, priority)?;
        self.shared.after_submit();
        Ok(())
    }
}

impl Drop for AdaptivePool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl fmt::Debug for AdaptivePool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptivePool")
            .field("threads", &self.shared.pool.threads())
            .field("min", &self.shared.config.min)
            .field("max", &self.shared.config.max)
            .field("ticks", &self.ticks())
            .finish_non_exhaustive()
    }
}

/// Why the controller woke up for a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Occasion {
    /// The interval passed.
    Tick,
    /// A submission found work queued while the controller was armed, or the last early tick
    /// grew and the controller looks again.
    Early,
    /// The second look a regular tick asked for (`ControllerState::looks_again`).
    Look,
    /// Midway between an early look that held a backlog and the next tick: a sample only if
    /// the process's CPU fell since (`MidwayLook`).
    Midway,
}

/// What a tick leaves for the loop.
enum Flow {
    /// The pool was shut down.
    Stop,
    /// Carry on; `grew` if the count went up, `arm` if growth on demand is allowed next,
    /// `pending` if the signals could not yet tell blocked workers from waiting ones.
    Go {
        grew: bool,
        arm: Option<bool>,
        pending: bool,
        /// The pool is idle at `min` and armed (`stretch::is_quiet`).
        quiet: bool,
        /// The decision asks for a second look (`ControllerState::looks_again`).
        look_again: bool,
        /// The sample's `Snapshot::process_cpu` with its `cores`: a regular tick's is the
        /// midway look's mark.
        process_cpu: Option<(f64, usize)>,
    },
}

/// The first half of every look between ticks (the early look and the second look): with
/// nothing queued, or the pool already at `max`, no growth rule can act, so the look skips its
/// sample. `work_queued` comes from whatever count the look already read (a full `stats()` or
/// `queue_len`).
fn nothing_to_grow_for(shared: &Shared, work_queued: bool) -> bool {
    !work_queued || shared.pool.threads() >= shared.config.max
}

/// The controller thread: wait for the interval (or an early request, at most
/// `EARLY_PER_INTERVAL` per interval, or a stop), decide, repeat.
fn controller_loop(shared: &Shared, mut signals: Box<dyn Signals>) {
    shared.control.lock().clock = CpuClock::current();
    // On every way out (a stop, a shut-down pool, a panic): the last CPU figure, then the clock
    // cleared, under the lock `controller_cpu` reads it under.
    let _clock = ClearClock(shared);
    let interval = shared.config.interval;
    let early_gap = (interval / EARLY_PER_INTERVAL).min(EARLY_GAP_MAX);
    let mut last_sample = Instant::now();
    // The last early look, for the early rate bound (none yet: the first may come at once).
    let mut last_look: Option<Instant> = None;
    // Look again after the gap without waiting for a submission (a burst submitted at once
    // asks only once): the last early tick grew, or work was queued while a worker was still
    // on its way to it.
    let mut follow_up = false;
    // The wait for the next regular tick: the interval, longer while the pool is quiet.
    let mut stretch = Stretch::new();
    // The second look a regular tick asked for (a CPU dip mid-tick: `looks_again`), due then.
    let mut look_at: Option<Instant> = None;
    let look_after = interval / LOOK_AGAIN_AFTER;
    // The look halfway to the next tick after an early look that held a backlog.
    let mut midway = MidwayLook::new();
    // The last look took no sample and found nothing queued, or the queue covered by workers
    // not running a task: the backlog the last sample read is gone
    // (`ControllerState::forget_backlog`), told to the state under the next wait's lock.
    let mut backlog_gone = false;
    loop {
        // The wait is the controller's schedule; `stop` and `early` are checked under the same
        // lock they are set under, so neither is missed (see README.md).
        // `now` is the wait's last clock reading: the tick's time, with no second reading.
        let (occasion, now) = {
            let mut control = shared.control.lock();
            if std::mem::take(&mut backlog_gone) {
                control.state.forget_backlog();
            }
            loop {
                if control.stop {
                    return;
                }
                let now = Instant::now();
                let tick_at = last_sample + stretch.wait(interval);
                if now >= tick_at {
                    control.early = false;
                    break (Occasion::Tick, now);
                }
                let mut until = tick_at;
                if let Some(at) = look_at {
                    if now >= at {
                        break (Occasion::Look, now);
                    }
                    until = until.min(at);
                }
                if let Some(at) = midway.due() {
                    if now >= at {
                        break (Occasion::Midway, now);
                    }
                    until = until.min(at);
                }
                if control.early || follow_up {
                    let early_at = early_at(last_look, last_sample, early_gap);
                    if now >= early_at {
                        control.early = false;
                        break (Occasion::Early, now);
                    }
                    until = until.min(early_at);
                }
                control = shared.wake.wait_timeout(control, until - now).0;
            }
        };
        follow_up = false;
        // Due or not, any wake-up ends the wait for the midway look (a sample moves the
        // baseline its read compares with).
        midway.cancel();
        // An early look in between (an armed pool) leaves the second look due.
        if !matches!(occasion, Occasion::Early | Occasion::Midway) {
            look_at = None;
        }
        if occasion == Occasion::Midway {
            // The cheap look, then the process's CPU clock (no baseline moves): a sample only
            // on a fall.
            let queued = shared.pool.queue_len() > 0;
            if nothing_to_grow_for(shared, queued) {
                backlog_gone = shared.skip_look(!queued);
                continue;
            }
            if !midway.samples(process_cpu_since_sample(shared, &mut *signals)) {
                backlog_gone = shared.skip_look(false);
                continue;
            }
            last_look = Some(now);
            shared.early_ticks.fetch_add(1, Ordering::Relaxed);
        }
        if occasion == Occasion::Look {
            // Not armed (CPU-bound work): no submission asked. A cheap look first, as for
            // an early one, but one that finds nothing to grow for leaves the arming as the
            // tick set it (the decision judges the busy count itself).
            last_look = Some(now);
            let queued = shared.pool.queue_len() > 0;
            if nothing_to_grow_for(shared, queued) {
                backlog_gone = shared.skip_look(!queued);
                continue;
            }
            shared.early_ticks.fetch_add(1, Ordering::Relaxed);
        }
        if occasion == Occasion::Early {
            last_look = Some(now);
            // The cheap look first: only a pool with work queued, every worker running a task
            // and room to grow is worth a sample (which reads CPU clocks and `/proc` files).
            let stats = shared.pool.stats();
            if nothing_to_grow_for(shared, stats.queued > 0) {
                shared.armed.store(true, Ordering::Relaxed);
                backlog_gone = shared.skip_look(stats.queued == 0);
                continue;
            }
            if stats.running < stats.live_threads as u64 {
                // A worker is idle or between tasks: it will take the queued work, or not
                // (it is on its way): look again after the gap. The backlog is gone if those
                // workers cover it.
                follow_up = true;
                let free = (stats.live_threads as u64).saturating_sub(stats.running);
                backlog_gone = shared.skip_look(stats.queued <= free);
                continue;
            }
            shared.early_ticks.fetch_add(1, Ordering::Relaxed);
        }
        let elapsed = now - last_sample;
        last_sample = now;
        let stretched = stretch.is_stretched();
        match tick(shared, signals.as_mut(), elapsed, stretched) {
            Flow::Stop => return,
            Flow::Go {
                grew,
                arm,
                pending,
                quiet,
                look_again,
                process_cpu,
            } => {
                match occasion {
                    Occasion::Tick => {
                        stretch.after_tick(quiet);
                        midway.after_tick(process_cpu);
                    }
                    Occasion::Early | Occasion::Look | Occasion::Midway => stretch.reset(),
                }
                if occasion == Occasion::Tick && look_again {
                    look_at = Some(now + look_after);
                }
                let arm = match (occasion, arm) {
                    // A regular tick sets the arming from its snapshot.
                    (Occasion::Tick, Some(arm)) => arm,
                    // An early tick that grew looks again; one that did not disarms until the
                    // next regular tick, so a backlog the rules will not grow for costs one
                    // early sample per interval, not ten. One whose signals were pending (no
                    // blocked count yet) looks again too: the next sample will have it.
                    // A midway sample that held looks again after the gap too: its window
                    // still held the old load's last tasks (W4's read 106 us of CPU a task
                    // over 50 ms, to sleepers' 20-30). An early look that held on a pool the
                    // rules would still grow leaves a midway look, halfway to the next tick
                    // (which comes `interval` after this sample), one per regular tick.
                    (Occasion::Early | Occasion::Look | Occasion::Midway, Some(arm)) => {
                        follow_up = grew || pending || occasion == Occasion::Midway;
                        if occasion == Occasion::Early && arm && !follow_up {
                            midway.after_held_early_look(now, interval);
                        }
                        arm && grew
                    }
                    // The sample or the decision panicked: no opinion, stay disarmed.
                    (_, None) => false,
                };
                shared.armed.store(arm, Ordering::Relaxed);
            }
        }
    }
}

/// The process's CPU since the last sample, from the signals (a custom source may panic: no
/// figure, counted as a callback panic).
fn process_cpu_since_sample(shared: &Shared, signals: &mut dyn Signals) -> Option<f64> {
    panic::catch_unwind(AssertUnwindSafe(|| signals.process_cpu_since_sample())).unwrap_or_else(
        |_| {
            shared.callback_panics.fetch_add(1, Ordering::Relaxed);
            None
        },
    )
}

/// When an early look may come: `gap` after the last early look (the rate bound) and `gap`
/// after the last sample of either kind.
///
/// The second bound is for the look a submission asks for right after a regular tick: it
/// sampled a fraction of a millisecond (W4's switch to sleepers, 31 ms into the phase: the tick
/// read the last phase's CPU, 1.9 cores, held, and armed; the look came 0.6 ms later, read one
/// completion, held, and disarmed until the next tick, 100 ms later, which grew 15 -> 64).
/// Over `gap` (10 ms at the default interval) its figures are the new load's, and an early
/// decision that does not grow disarms, so this adds no look.
fn early_at(last_look: Option<Instant>, last_sample: Instant, gap: Duration) -> Instant {
    let after_sample = last_sample + gap;
    last_look.map_or(after_sample, |at| (at + gap).max(after_sample))
}

/// Leaves the controller's last CPU figure and clears its clock (see `Control::clock`).
struct ClearClock<'a>(&'a Shared);

impl Drop for ClearClock<'_> {
    fn drop(&mut self) {
        let mut control = self.0.control.lock();
        if let Some(cpu) = current_thread_cpu() {
            let ns = u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX);
            self.0.controller_cpu_ns.store(ns, Ordering::Relaxed);
        }
        control.clock = None;
    }
}

/// One decision: sample, decide, resize.
///
/// `stretched`: the wait before it was longer than the interval (`stretch`); the decision
/// then sees at most one interval of `elapsed`.
fn tick(shared: &Shared, signals: &mut dyn Signals, elapsed: Duration, stretched: bool) -> Flow {
    let tick = shared.ticks.fetch_add(1, Ordering::Relaxed) + 1;
    let pool = &shared.pool;
    if pool.is_shutdown() {
        return Flow::Stop;
    }
    let no_opinion = Flow::Go {
        grew: false,
        arm: None,
        pending: false,
        quiet: false,
        look_again: false,
        process_cpu: None,
    };
    let interval = shared.config.interval;
    let snapshot = match panic::catch_unwind(AssertUnwindSafe(|| signals.sample(pool, elapsed))) {
        Ok(snapshot) => Snapshot {
            elapsed: stretch::decision_elapsed(snapshot.elapsed, interval, stretched),
            ..snapshot
        },
        Err(_) => {
            shared.callback_panics.fetch_add(1, Ordering::Relaxed);
            return no_opinion;
        }
    };
    let (decision, look_again) = {
        let mut control = shared.control.lock();
        let state = &mut control.state;
        let decided = panic::catch_unwind(AssertUnwindSafe(|| {
            decide(&snapshot, state, &shared.config)
        }));
        match decided {
            Ok(decision) => {
                control.last_decision = Some((snapshot, decision));
                (decision, control.state.looks_again())
            }
            Err(_) => {
                // The state may be half-updated: start afresh rather than trust it.
                control.state = ControllerState::new();
                shared.callback_panics.fetch_add(1, Ordering::Relaxed);
                return no_opinion;
            }
        }
    };
    let from = pool.threads();
    let to = decision.target.clamp(shared.config.min, shared.config.max);
    let arm = Some(grows_on_demand(
        &Snapshot {
            target: to,
            ..snapshot
        },
        &shared.config,
    ));
    let pending = snapshot.blocked.is_none() && snapshot.worker_cpu.is_some();
    let process_cpu = snapshot.process_cpu.map(|cpu| (cpu, snapshot.cores));
    let quiet = stretch::is_quiet(&snapshot, to, &shared.config, arm == Some(true));
    if to == from {
        return Flow::Go {
            grew: false,
            arm,
            pending,
            quiet,
            look_again,
            process_cpu,
        };
    }
    match pool.set_threads(to) {
        Ok(()) => {}
        Err(ResizeError::ShutDown) => return Flow::Stop,
        // The OS refused a thread (or the target was 0, which the clamp rules out): keep what
        // we have and try again next tick.
        Err(_) => {
            return Flow::Go {
                grew: false,
                arm,
                pending,
                quiet: false,
                look_again,
                process_cpu,
            }
        }
    }
    let event = ScalingEvent {
        at: shared.born.elapsed(),
        tick,
        from,
        to,
        reason: decision.reason,
    };
    {
        let mut control = shared.control.lock();
        if control.history.len() == HISTORY_CAPACITY {
            control.history.pop_front();
        }
        control.history.push_back(event);
    }
    if let Some(hook) = &shared.on_scale {
        if panic::catch_unwind(AssertUnwindSafe(|| hook(&event))).is_err() {
            shared.callback_panics.fetch_add(1, Ordering::Relaxed);
        }
    }
    Flow::Go {
        grew: to > from,
        arm,
        pending,
        quiet: false,
        look_again,
        process_cpu,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Invariant: an early look comes no sooner than the gap after the last early look and
    /// after the last sample (a regular tick's included), and as soon as both have passed.
    #[test]
    fn an_early_look_waits_the_gap_after_any_sample() {
        let gap = Duration::from_millis(10);
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // Right after a regular tick: the gap after it, whatever the last look.
        assert_eq!(early_at(None, t0, gap), t0 + gap);
        assert_eq!(early_at(Some(t0 - ms(500)), t0, gap), t0 + gap);
        // A recent look bounds it further.
        assert_eq!(early_at(Some(t0 + ms(5)), t0, gap), t0 + ms(15));
        // Long after both: at once (the bound is in the past).
        assert!(early_at(Some(t0), t0, gap) <= t0 + gap);
    }
}
