//! [`AdaptivePool`]: a pool-core `ThreadPool` with a controller thread that resizes it. The
//! lifecycle (start, tick, stop, resize vs shutdown) is described in `src/README.md`.
//!
//! This file holds the pool's face (its methods, `Executor`, `Drop`) and the state it shares with
//! the controller thread; the builder, the controller's schedule and one decision are beside it.

mod ask;
mod builder;
mod early_wait;
mod schedule;
mod tick;

pub use self::ask::EarlyAsk;
pub use self::builder::{AdaptiveBuildError, AdaptivePoolBuilder};

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use pool_core::sync::{thread, Arc, AtomicBool, AtomicU64, Condvar, Mutex, Ordering};
use pool_core::{
    CancelToken, CountedThread, Executor, Job, PoolStats, Priority, QuietDrop, Rejected,
    TaskHandle, TaskOptions, ThreadPool,
};

use crate::config::Config;
use crate::decide::{ControllerState, Decision, Reason};
use crate::proc::CpuClock;
use crate::snapshot::Snapshot;

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

/// The `on_scale` hook: user code, and so is its `Drop` (whatever it captured), dropped quietly
/// wherever it goes (with a builder, or with the shared state on whichever thread lets the pool
/// go: the one dropping it, or the controller when the hook dropped it).
type ScaleHook = QuietDrop<std::sync::Arc<dyn Fn(&ScalingEvent) + Send + Sync>>;

/// The controller's mutable state, under one lock with the stop flag so a stop cannot slip
/// between the controller's check and its wait.
struct Control {
    stop: bool,
    /// A submission found every worker busy with work queued: decide early (see `src/README.md`),
    /// and the controller's promise to wake by the look's time (the backoff's `early_at`) on its
    /// own, which spares the asker a notify. A wake-up before that moment would only send the
    /// controller back to wait for it (up to 40-70 µs of CPU on the test VM when it had been
    /// asleep for tens of ms, a few µs when it had just run).
    ask: EarlyAsk,
    history: VecDeque<ScalingEvent>,
    state: ControllerState,
    last_decision: Option<(Snapshot, Decision)>,
    /// The controller thread's CPU clock while it runs: `controller_cpu` reads it from the
    /// caller's thread, so the controller spends no system call per tick on its own statistics.
    /// Cleared under this lock by the controller before it exits, so a clock read under the
    /// lock is always a live thread's (a dead thread's id could be reused).
    clock: Option<CpuClock>,
}

impl AsMut<EarlyAsk> for Control {
    fn as_mut(&mut self) -> &mut EarlyAsk {
        &mut self.ask
    }
}

struct Shared {
    pool: ThreadPool,
    config: Config,
    born: Instant,
    control: Mutex<Control>,
    wake: Condvar,
    /// Whether a submission that finds work queued should ask for an early decision: set by the
    /// controller when the last snapshot allows growth
    /// ([`grows_on_demand`](crate::grows_on_demand)), taken (swapped to false) by the one
    /// submission that asks. The submit path's only cost while it is false is one relaxed load.
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

    #[cold]
    fn request_early_decision(&self) {
        // A submission from a worker goes to its own deque; nothing waits in the shared queue,
        // so nothing to hurry (the starvation rule covers a worker waiting on its own child).
        if self.pool.queue_len() == 0 {
            return;
        }
        // One submission per arming asks; the rest of a burst pays the load above only.
        if self.armed.swap(false, Ordering::Relaxed) {
            EarlyAsk::ask(&self.control, &self.wake);
        }
    }
}

/// A [`ThreadPool`] whose worker count follows the work: a controller thread samples
/// [`Signals`](crate::Signals) every `interval`, runs [`decide`](crate::decide) and resizes the
/// pool. A submission that finds every worker busy and work queued asks for an early decision
/// instead of waiting for the tick (bounded by `max` and by the blocked-vs-running signal).
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
    /// The controller thread, holding its share of the process's thread budget: the share goes
    /// back once the thread is joined, or when the handle is dropped (a pool dropped on its own
    /// controller thread: the thread then ends on its own).
    controller: Mutex<Option<CountedThread<()>>>,
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
    /// Its `set_threads` fights the controller (the next decision moves from the count set; a
    /// tick that sampled before it does not apply its decision over it), and its `shutdown`
    /// leaves the controller running until this pool is dropped or shut down; prefer
    /// [`AdaptivePool::shutdown`]. Submissions made through it skip the early decision (they
    /// wait for the tick).
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
    ///
    /// An event is recorded just after its resize, and the `on_scale` hook called just after
    /// that: [`threads`](Self::threads), and the new workers' tasks, can show a resize a moment
    /// before its event is here. Wait for the event itself, not for the count.
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
    /// ([`Signals::process_cpu_since_sample`](crate::Signals::process_cpu_since_sample)).
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
            .is_some_and(|controller| controller.thread().id() == thread::current().id());
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

    /// The pool's own batch path (one queue operation for the batch, where the pool has one),
    /// then one early-decision check for the batch, as for a burst submitted one by one (only
    /// the first submission that finds work queued asks).
    fn execute_batch(
        &self,
        jobs: &mut dyn Iterator<Item = Job>,
        priority: Priority,
    ) -> Result<(), Rejected<Job>> {
        let submitted = self.shared.pool.execute_batch(jobs, priority);
        self.shared.after_submit();
        submitted
    }

    /// The attached pool's: true over a queue policy that orders by priority (a DAG run then
    /// works out its critical path for it, as on the pool itself).
    fn honors_priority(&self) -> bool {
        self.shared.pool.honors_priority()
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
