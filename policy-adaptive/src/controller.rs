//! [`AdaptivePool`]: a pool-core `ThreadPool` with a controller thread that resizes it. The
//! lifecycle (start, tick, stop, resize vs shutdown) is described in `README.md` beside this file.

use std::collections::VecDeque;
use std::fmt;
use std::ops::Deref;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use pool_core::sync::{thread, Arc, AtomicU64, Condvar, Mutex, Ordering};
use pool_core::{BuildError, ResizeError, ThreadPool};

use crate::config::{Config, ConfigError};
use crate::decide::{decide, ControllerState, Decision, Reason};
use crate::proc::{current_thread_cpu, WorkerThreads};
use crate::signals::PoolSignals;
use crate::snapshot::{Signals, Snapshot};

/// The history keeps the most recent events only, so a long-running pool's memory stays bounded.
const HISTORY_CAPACITY: usize = 4096;

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
/// use policy_adaptive::{AdaptivePool, BuildAdaptiveError, ConfigError};
///
/// let error = AdaptivePool::builder().min(4).max(2).build().unwrap_err();
/// assert_eq!(error.config_error(), Some(&ConfigError::MinAboveMax { min: 4, max: 2 }));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildAdaptiveError {
    /// A setting is invalid.
    #[error("invalid adaptive pool setting: {0}")]
    Config(#[from] ConfigError),
    /// The pool could not be built (a bad name, or a thread the OS refused).
    #[error("could not build the pool: {0}")]
    Pool(#[from] BuildError),
    /// The OS refused to start the controller thread.
    #[error("could not start the controller thread: {0}")]
    Controller(#[source] std::io::Error),
}

impl BuildAdaptiveError {
    /// The configuration error, if that is what this is.
    pub fn config_error(&self) -> Option<&ConfigError> {
        match self {
            BuildAdaptiveError::Config(error) => Some(error),
            _ => None,
        }
    }
}

type ScaleHook = std::sync::Arc<dyn Fn(&ScalingEvent) + Send + Sync>;

/// Builds an [`AdaptivePool`].
///
/// # Examples
///
/// ```
/// use policy_adaptive::AdaptivePool;
/// use std::time::Duration;
///
/// let pool = AdaptivePool::builder()
///     .min(2)
///     .max(32)
///     .interval(Duration::from_millis(50))
///     .keep_alive(Duration::from_secs(1))
///     .thread_name("io")
///     .build()?;
/// assert_eq!(pool.threads(), 2);
/// # Ok::<(), policy_adaptive::BuildAdaptiveError>(())
/// ```
pub struct AdaptivePoolBuilder {
    config: Config,
    name: String,
    stack_size: Option<usize>,
    signals: Option<Box<dyn Signals>>,
    on_scale: Option<ScaleHook>,
}

impl AdaptivePoolBuilder {
    fn new() -> Self {
        AdaptivePoolBuilder {
            config: Config::default(),
            name: "adaptive".to_owned(),
            stack_size: None,
            signals: None,
            on_scale: None,
        }
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

    /// The workers' thread name prefix. Default `adaptive`.
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.name = prefix.into();
        self
    }

    /// Each worker's stack size in bytes.
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
    /// [`BuildAdaptiveError`]: a bad setting (naming the field), or a thread the OS refused.
    pub fn build(self) -> Result<AdaptivePool, BuildAdaptiveError> {
        self.config.validate()?;
        let workers = WorkerThreads::new();
        let (on_start, on_stop) = (workers.clone(), workers.clone());
        let mut builder = ThreadPool::builder()
            .threads(self.config.min)
            .thread_name(self.name.clone())
            .on_thread_start(move |index| on_start.record_current(index))
            .on_thread_stop(move |index| on_stop.forget(index));
        if let Some(bytes) = self.stack_size {
            builder = builder.stack_size(bytes);
        }
        let pool = builder.build()?;
        let signals = self
            .signals
            .unwrap_or_else(|| Box::new(PoolSignals::new(workers)));
        let shared = Arc::new(Shared {
            pool,
            config: self.config,
            born: Instant::now(),
            control: Mutex::new(Control {
                stop: false,
                history: VecDeque::new(),
                state: ControllerState::new(),
                last_decision: None,
            }),
            wake: Condvar::new(),
            controller_cpu_ns: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
            callback_panics: AtomicU64::new(0),
            on_scale: self.on_scale,
        });
        let worker_shared = Arc::clone(&shared);
        let controller = thread::Builder::new()
            .name(format!("{}-controller", self.name))
            .spawn(move || controller_loop(&worker_shared, signals));
        let controller = match controller {
            Ok(handle) => handle,
            Err(error) => {
                shared.pool.shutdown();
                return Err(BuildAdaptiveError::Controller(error));
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
            .field("name", &self.name)
            .field("custom_signals", &self.signals.is_some())
            .finish_non_exhaustive()
    }
}

/// The controller's mutable state, under one lock with the stop flag so a stop cannot slip
/// between the controller's check and its wait.
struct Control {
    stop: bool,
    history: VecDeque<ScalingEvent>,
    state: ControllerState,
    last_decision: Option<(Snapshot, Decision)>,
}

struct Shared {
    pool: ThreadPool,
    config: Config,
    born: Instant,
    control: Mutex<Control>,
    wake: Condvar,
    controller_cpu_ns: AtomicU64,
    ticks: AtomicU64,
    callback_panics: AtomicU64,
    on_scale: Option<ScaleHook>,
}

/// A [`ThreadPool`] whose worker count follows the work: a controller thread samples
/// [`Signals`] every `interval`, runs [`decide`](crate::decide) and calls
/// [`ThreadPool::set_threads`].
///
/// Dereferences to the pool for `submit`, `spawn`, `stats`, `wait_idle` and the rest. Dropping
/// it (or [`shutdown`](Self::shutdown)) stops and joins the controller, then shuts the pool
/// down gracefully: no thread outlives it.
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
/// # Ok::<(), policy_adaptive::BuildAdaptiveError>(())
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
    pub fn new(min: usize, max: usize) -> Result<AdaptivePool, BuildAdaptiveError> {
        Self::builder().min(min).max(max).build()
    }

    /// The underlying pool (also reachable through `Deref`).
    pub fn pool(&self) -> &ThreadPool {
        &self.shared.pool
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

    /// Ticks the controller has run.
    pub fn ticks(&self) -> u64 {
        self.shared.ticks.load(Ordering::Relaxed)
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
        let ns = self.shared.controller_cpu_ns.load(Ordering::Relaxed);
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

impl Deref for AdaptivePool {
    type Target = ThreadPool;

    fn deref(&self) -> &ThreadPool {
        &self.shared.pool
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

/// The controller thread: wait one interval (or until stopped), tick, repeat.
fn controller_loop(shared: &Shared, mut signals: Box<dyn Signals>) {
    let mut last = Instant::now();
    loop {
        // The wait is the controller's schedule; `stop` is checked under the same lock the
        // stopper sets it under, so a stop is never missed (see README.md).
        {
            let mut control = shared.control.lock();
            let deadline = last + shared.config.interval;
            loop {
                if control.stop {
                    return;
                }
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                control = shared.wake.wait_timeout(control, deadline - now).0;
            }
        }
        let now = Instant::now();
        let elapsed = now - last;
        last = now;
        if !tick(shared, signals.as_mut(), elapsed) {
            return;
        }
        if let Some(cpu) = current_thread_cpu() {
            let ns = u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX);
            shared.controller_cpu_ns.store(ns, Ordering::Relaxed);
        }
    }
}

/// One tick: sample, decide, resize. Returns false once the pool is shut down.
fn tick(shared: &Shared, signals: &mut dyn Signals, elapsed: Duration) -> bool {
    let tick = shared.ticks.fetch_add(1, Ordering::Relaxed) + 1;
    let pool = &shared.pool;
    if pool.is_shutdown() {
        return false;
    }
    let snapshot = match panic::catch_unwind(AssertUnwindSafe(|| signals.sample(pool, elapsed))) {
        Ok(snapshot) => snapshot,
        Err(_) => {
            shared.callback_panics.fetch_add(1, Ordering::Relaxed);
            return true;
        }
    };
    let decision = {
        let mut control = shared.control.lock();
        let state = &mut control.state;
        let decided = panic::catch_unwind(AssertUnwindSafe(|| {
            decide(&snapshot, state, &shared.config)
        }));
        match decided {
            Ok(decision) => {
                control.last_decision = Some((snapshot, decision));
                decision
            }
            Err(_) => {
                // The state may be half-updated: start afresh rather than trust it.
                control.state = ControllerState::new();
                shared.callback_panics.fetch_add(1, Ordering::Relaxed);
                return true;
            }
        }
    };
    let from = pool.threads();
    let to = decision.target.clamp(shared.config.min, shared.config.max);
    if to == from {
        return true;
    }
    match pool.set_threads(to) {
        Ok(()) => {}
        Err(ResizeError::ShutDown) => return false,
        // The OS refused a thread (or the target was 0, which the clamp rules out): keep what
        // we have and try again next tick.
        Err(_) => return true,
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
    true
}
