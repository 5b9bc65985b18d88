//! `ThreadPool`: submission, shutdown, resize. The wake-up and shutdown protocols are described in
//! `README.md` beside this file.

mod builder;
mod size;
mod sleep;
mod stats;
mod worker;

pub use builder::ThreadPoolBuilder;
pub use stats::PoolStats;
pub use worker::{yield_now, Yield};

use std::fmt;
use std::time::{Duration, Instant};

use self::size::Size;
use self::sleep::Sleep;
use self::stats::{add_shared, bump_owned, ExternalCounters, Totals};
use self::worker::Registry;
use crate::deque::{Injector, Steal, Worker};
use crate::error::{BuildError, CancelReason, ResizeError};
use crate::executor::{Executor, Job, Priority, Rejected};
use crate::queue::{QueuePolicy, QueuedTask};
use crate::sync::{thread, Arc, AtomicUsize, Backoff, Mutex, MutexGuard, Ordering};
use crate::task::{new_task, raw_task, CancelToken, TaskHandle, TaskRef};
use crate::unwind::call_quietly;

/// `lifecycle` bits: graceful shutdown started (intake closed); queued work is being discarded;
/// every outside submitter that got in has pushed (workers may exit once the queues are empty).
/// Written only at shutdown, so the word stays in every core's cache while the pool runs.
const SHUTDOWN: usize = 0b001;
const DISCARD: usize = 0b010;
const DRAINABLE: usize = 0b100;

/// Settings that outlive the builder.
pub(crate) struct Hooks {
    name: String,
    stack_size: Option<usize>,
    on_start: Option<std::sync::Arc<dyn Fn(usize) + Send + Sync>>,
    on_stop: Option<std::sync::Arc<dyn Fn(usize) + Send + Sync>>,
    panic_handler: Option<PanicHandler>,
}

/// The builder's `panic_handler`.
// Immutable configuration, not protocol state: std's `Arc` (loom's cannot hold a `dyn Fn`).
pub(crate) type PanicHandler = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

impl Hooks {
    // User callbacks must never take a worker down: each is called quietly (its panic, and
    // that panic's payload, are caught).
    fn call_start(&self, index: usize) {
        if let Some(hook) = &self.on_start {
            call_quietly(|| hook(index));
        }
    }

    fn call_stop(&self, index: usize) {
        if let Some(hook) = &self.on_stop {
            call_quietly(|| hook(index));
        }
    }

    fn call_panic_handler(&self, message: &str) {
        if let Some(handler) = &self.panic_handler {
            call_quietly(|| handler(message));
        }
    }
}

/// The shared queue: the built-in FIFO injector (with batch stealing into worker deques), or a
/// plugged-in policy.
// One per pool and never moved, so the injector's inline size costs nothing; boxing it would add
// a pointer chase to every push and pop.
#[allow(clippy::large_enum_variant)]
enum Global {
    Fifo(Injector<QueuedTask>),
    Policy(Box<dyn QueuePolicy>),
}

struct Threads {
    handles: Vec<(usize, thread::JoinHandle<()>)>,
    next_index: usize,
}

/// Everything the workers and the pool handle share.
pub(crate) struct Shared {
    global: Global,
    /// Whether submissions from inside a worker go to its own deque.
    local_queues: bool,
    honors_priority: bool,
    lifecycle: AtomicUsize,
    sleep: Sleep,
    registry: Registry,
    size: Size,
    external: ExternalCounters,
    hooks: Hooks,
    threads: Mutex<Threads>,
}

impl Shared {
    pub(crate) fn push_global(&self, task: QueuedTask) {
        match &self.global {
            Global::Fifo(injector) => injector.push(task),
            Global::Policy(policy) => policy.push(task),
        }
    }

    pub(crate) fn pop_global(&self) -> Option<QueuedTask> {
        match &self.global {
            Global::Fifo(injector) => loop {
                match injector.steal() {
                    Steal::Success(task) => return Some(task),
                    Steal::Empty => return None,
                    Steal::Retry => Backoff::new().snooze(),
                }
            },
            Global::Policy(policy) => policy.pop(),
        }
    }

    /// Takes one task from the shared queue, moving a batch more into `deque` when the queue is
    /// the FIFO injector (so workers do not contend on the injector once per task).
    pub(crate) fn pop_global_into(&self, deque: &Worker<QueuedTask>) -> Option<QueuedTask> {
        match &self.global {
            Global::Fifo(injector) => loop {
                match injector.steal_batch_and_pop(deque) {
                    Steal::Success(task) => return Some(task),
                    Steal::Empty => return None,
                    Steal::Retry => Backoff::new().snooze(),
                }
            },
            Global::Policy(policy) => policy.pop(),
        }
    }

    pub(crate) fn global_is_empty(&self) -> bool {
        match &self.global {
            Global::Fifo(injector) => injector.is_empty(),
            Global::Policy(policy) => policy.is_empty(),
        }
    }

    fn global_len(&self) -> usize {
        match &self.global {
            Global::Fifo(injector) => injector.len(),
            Global::Policy(policy) => policy.len(),
        }
    }

    pub(crate) fn policy_finished(&self, priority: Priority) {
        if let Global::Policy(policy) = &self.global {
            policy.on_finished(priority);
        }
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.lifecycle.load(Ordering::Acquire) & SHUTDOWN != 0
    }

    /// During shutdown: whether this worker may exit. No outside submitter can push any more,
    /// and nothing is left that this worker is responsible for (its deque and the shared queue).
    /// Other workers drain their own deques before they exit.
    pub(crate) fn quiescent(&self, ctx: &worker::WorkerContext) -> bool {
        self.lifecycle.load(Ordering::Acquire) & DRAINABLE != 0
            && ctx.deque.is_empty()
            && self.global_is_empty()
    }

    fn is_idle(&self) -> bool {
        self.sleep.idle() == self.size.live()
            && self.global_is_empty()
            && !worker::any_stealable(self)
    }

    fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        self.external.add_to(&mut totals);
        self.registry.add_totals(&mut totals);
        totals
    }
}

/// How a submission reaches the queue.
enum Route<'a> {
    /// From a worker of this pool: its own deque, no shutdown race to close (the worker drains
    /// what it pushes before it exits).
    Internal,
    /// From any other thread: holding its stripe's gate until the push is done (see README,
    /// "shutdown").
    External(MutexGuard<'a, ()>),
}

/// A pool of worker threads with work stealing, cancellation, panic isolation, statistics,
/// resizing and graceful shutdown.
///
/// Dropping the pool shuts it down gracefully: queued work runs, then every thread is joined.
///
/// # Examples
///
/// Build a pool of 4 threads, submit 10 tasks, cancel 3 before they start, await one, join the
/// rest, shut down and read stats that add up:
///
/// ```
/// use pool_core::ThreadPool;
/// use std::sync::mpsc;
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     use std::task::{Context, Poll, Wake, Waker};
/// #     struct T(std::thread::Thread);
/// #     impl Wake for T { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
/// #     let waker = Waker::from(std::sync::Arc::new(T(std::thread::current())));
/// #     let mut cx = Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } std::thread::park(); }
/// # }
///
/// let pool = ThreadPool::new(4).unwrap();
/// // Hold all four workers so the next tasks stay queued while we cancel three of them.
/// let (release, gate) = mpsc::channel::<()>();
/// let gate = std::sync::Arc::new(std::sync::Mutex::new(gate));
/// let blockers: Vec<_> = (0..4)
///     .map(|_| {
///         let gate = gate.clone();
///         pool.submit(move || gate.lock().unwrap().recv().unwrap()).unwrap()
///     })
///     .collect();
/// let mut handles: Vec<_> = (0..6).map(|i| pool.submit(move || i * 10).unwrap()).collect();
/// for handle in &handles[..3] {
///     assert!(handle.cancel());
/// }
/// for _ in 0..4 {
///     release.send(()).unwrap();
/// }
/// let awaited = handles.pop().unwrap();
/// assert_eq!(block_on(async { awaited.await }).unwrap(), 50);
/// let rest: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
/// assert!(rest[..3].iter().all(|r| r.is_err()));
/// assert_eq!(rest[3..].iter().map(|r| *r.as_ref().unwrap()).collect::<Vec<_>>(), [30, 40]);
/// for b in blockers {
///     b.join().unwrap();
/// }
/// pool.shutdown();
/// let stats = pool.stats();
/// assert_eq!((stats.submitted, stats.completed, stats.canceled), (10, 7, 3));
/// assert!(stats.is_balanced());
/// ```
pub struct ThreadPool {
    shared: Arc<Shared>,
}

/// Options for one submission: a priority (for pools with a priority policy) and a start deadline.
///
/// # Examples
///
/// ```
/// use pool_core::{Priority, TaskOptions, ThreadPool};
/// use std::time::Duration;
///
/// let pool = ThreadPool::new(1).unwrap();
/// let options = TaskOptions::new().priority(Priority::High).start_within(Duration::from_secs(5));
/// assert_eq!(pool.submit_with(options, || 1).unwrap().join().unwrap(), 1);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskOptions {
    priority: Priority,
    deadline: Option<Instant>,
}

impl TaskOptions {
    /// Normal priority, no deadline.
    pub fn new() -> Self {
        Self::default()
    }

    /// The scheduling level (ignored by the FIFO pool).
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Cancel the task (with [`CancelReason::DeadlineExpired`]) if no worker has started it by
    /// `deadline`. Checked when a worker reaches the task: no timer thread.
    pub fn start_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// [`start_deadline`](Self::start_deadline) `timeout` from now.
    pub fn start_within(mut self, timeout: Duration) -> Self {
        self.deadline = Instant::now().checked_add(timeout);
        self
    }
}

impl ThreadPool {
    /// A FIFO pool of `threads` workers.
    ///
    /// # Errors
    ///
    /// `threads == 0`, or the OS refused to start a thread.
    pub fn new(threads: usize) -> Result<ThreadPool, BuildError> {
        ThreadPoolBuilder::new().threads(threads).build()
    }

    /// A builder for the other settings.
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder::new()
    }

    fn start(
        threads: usize,
        hooks: Hooks,
        policy: Option<Box<dyn QueuePolicy>>,
    ) -> Result<ThreadPool, BuildError> {
        let (global, local_queues, honors_priority) = match policy {
            None => (Global::Fifo(Injector::new()), true, false),
            Some(policy) => {
                let local = policy.local_queues();
                let priority = policy.honors_priority();
                (Global::Policy(policy), local, priority)
            }
        };
        let pool = ThreadPool {
            shared: Arc::new(Shared {
                global,
                local_queues,
                honors_priority,
                lifecycle: AtomicUsize::new(0),
                sleep: Sleep::default(),
                registry: Registry::new(),
                size: Size::new(threads),
                external: ExternalCounters::default(),
                hooks,
                threads: Mutex::new(Threads {
                    handles: Vec::new(),
                    next_index: 0,
                }),
            }),
        };
        {
            let mut registered = pool.shared.threads.lock();
            for _ in 0..threads {
                if let Err((index, error)) = pool.spawn_worker(&mut registered) {
                    drop(registered);
                    pool.shutdown();
                    return Err(BuildError::spawn(index, error));
                }
            }
        }
        Ok(pool)
    }

    /// Starts one worker; the caller holds the `threads` lock.
    fn spawn_worker(&self, threads: &mut Threads) -> Result<(), (usize, std::io::Error)> {
        let index = threads.next_index;
        threads.next_index += 1;
        self.shared.size.add_live();
        let shared = Arc::clone(&self.shared);
        let mut builder =
            thread::Builder::new().name(format!("{}-{}", self.shared.hooks.name, index));
        if let Some(bytes) = self.shared.hooks.stack_size {
            builder = builder.stack_size(bytes);
        }
        match builder.spawn(move || worker::run(shared, index)) {
            Ok(handle) => {
                threads.handles.push((index, handle));
                Ok(())
            }
            Err(error) => {
                self.shared.size.remove_live();
                Err((index, error))
            }
        }
    }

    /// Decides how a submission from the calling thread gets in, or refuses it. Counts the
    /// submission (and the refusal) either way.
    fn admit(&self) -> Option<Route<'_>> {
        let shared = &*self.shared;
        let internal = worker::with_current(shared, |ctx| {
            bump_owned(&ctx.counters.submitted);
            // Work spawned by running tasks is part of finishing the queue, so graceful shutdown
            // accepts it; only `shutdown_now` refuses it.
            let refused = shared.lifecycle.load(Ordering::Acquire) & DISCARD != 0;
            if refused {
                bump_owned(&ctx.counters.rejected);
            }
            refused
        });
        match internal {
            Some(false) => Some(Route::Internal),
            Some(true) => None,
            None => {
                let stripe = shared.external.mine();
                let gate = stripe.gate.lock();
                // Plain increments: these two counters are only written under the gate.
                bump_owned(&stripe.counters.submitted);
                if shared.lifecycle.load(Ordering::Acquire) & SHUTDOWN != 0 {
                    bump_owned(&stripe.counters.rejected);
                    return None;
                }
                Some(Route::External(gate))
            }
        }
    }

    /// Pushes an admitted task and wakes a worker if one is parked.
    fn dispatch(&self, route: Route<'_>, task: QueuedTask) {
        let shared = &*self.shared;
        match route {
            Route::Internal => {
                let pushed = worker::with_current(shared, |ctx| {
                    if shared.local_queues {
                        ctx.deque.push(task);
                        None
                    } else {
                        Some(task)
                    }
                });
                if let Some(Some(task)) = pushed {
                    shared.push_global(task);
                }
            }
            Route::External(gate) => {
                shared.push_global(task);
                drop(gate);
            }
        }
        shared.sleep.notify_one();
    }

    /// Runs `job` on the pool without a handle: the cheapest way to submit.
    ///
    /// A panic in `job` is caught, counted in [`stats`](Self::stats) and passed to the
    /// [`panic_handler`](ThreadPoolBuilder::panic_handler) if one is set.
    ///
    /// # Errors
    ///
    /// After shutdown, the closure comes back in [`Rejected`].
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::ThreadPool;
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// let (tx, rx) = mpsc::channel();
    /// pool.spawn(move || tx.send("done").unwrap()).unwrap();
    /// assert_eq!(rx.recv().unwrap(), "done");
    /// ```
    pub fn spawn<F>(&self, job: F) -> Result<(), Rejected<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        match self.admit() {
            Some(route) => {
                self.dispatch(route, QueuedTask::job(Box::new(job), Priority::Normal));
                Ok(())
            }
            None => Err(Rejected(job)),
        }
    }

    /// Runs `f` on the pool and returns a handle to its result.
    ///
    /// # Errors
    ///
    /// After shutdown, the closure comes back in [`Rejected`].
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::ThreadPool;
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// let handle = pool.submit(|| (1..=10).sum::<u32>()).unwrap();
    /// assert_eq!(handle.join().unwrap(), 55);
    /// ```
    pub fn submit<F, T>(&self, f: F) -> Result<TaskHandle<T>, Rejected<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_with(TaskOptions::default(), f)
    }

    /// [`submit`](Self::submit) with a priority and/or a start deadline.
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
        let Some(route) = self.admit() else {
            return Err(Rejected(f));
        };
        Ok(self.enqueue(route, options, move |_: &CancelToken<'_>| f()))
    }

    /// Runs `f` with a [`CancelToken`] it can check to stop early when its handle is cancelled
    /// while it runs.
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

    /// [`submit_cancellable`](Self::submit_cancellable) with options.
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
        let Some(route) = self.admit() else {
            return Err(Rejected(f));
        };
        Ok(self.enqueue(route, options, f))
    }

    fn enqueue<F, T>(&self, route: Route, options: TaskOptions, f: F) -> TaskHandle<T>
    where
        F: for<'a> FnOnce(&CancelToken<'a>) -> T + Send + 'static,
        T: Send + 'static,
    {
        let (entry, ops, raw) = new_task(f, options.priority, options.deadline);
        let handle = TaskHandle::new(ops, raw);
        self.dispatch(route, QueuedTask::task(entry, options.priority));
        handle
    }

    /// Raises the priority of a task that is still queued; never lowers it.
    ///
    /// Returns whether the task will now be served at `to`: `false` if it already started or
    /// finished, if it already had `to` or higher, or if the pool's queue policy ignores
    /// priorities (the FIFO default).
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::{Priority, ThreadPool};
    ///
    /// let fifo = ThreadPool::new(1).unwrap();
    /// let handle = fifo.submit(|| ()).unwrap();
    /// assert!(!fifo.raise_priority(&handle, Priority::Critical)); // FIFO has no priorities
    /// ```
    pub fn raise_priority<T>(&self, handle: &TaskHandle<T>, to: Priority) -> bool {
        let shared = &*self.shared;
        if !shared.honors_priority {
            return false;
        }
        let raw = raw_task(handle);
        if !raw.header().is_queued() || !raw.header().raise_priority(to) {
            return false;
        }
        if shared.is_shutting_down() {
            return false;
        }
        // A second entry at the higher level; whichever entry a worker reaches first starts the
        // task, the other is stale (see task/README.md). No submitter gate is needed: the
        // original entry is already queued, so a duplicate stranded by a racing shutdown only
        // leaves a stale entry behind, never a task that does not run.
        shared.push_global(QueuedTask::task(TaskRef::another_entry(raw), to));
        shared.sleep.notify_one();
        true
    }

    /// A snapshot of the counters (see [`PoolStats`] for what each means).
    pub fn stats(&self) -> PoolStats {
        let totals = self.shared.totals();
        PoolStats::from_totals(totals, self.shared.size.live(), self.shared.sleep.idle())
    }

    /// Entries waiting in the shared queue (not counting tasks in workers' own deques).
    pub fn queue_len(&self) -> usize {
        self.shared.global_len()
    }

    /// The number of workers asked for (by `build` or [`set_threads`](Self::set_threads)).
    pub fn threads(&self) -> usize {
        self.shared.size.target()
    }

    /// Grows or shrinks the pool at run time.
    ///
    /// Growing starts workers at once. Shrinking retires workers only between tasks, so running
    /// tasks finish and no queued task is lost; the live count reaches `threads` as soon as
    /// enough workers are between tasks.
    ///
    /// # Errors
    ///
    /// [`ResizeError`] for `threads == 0`, after shutdown, or when the OS refuses a thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::ThreadPool;
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// pool.set_threads(4).unwrap();
    /// assert_eq!(pool.threads(), 4);
    /// assert!(pool.set_threads(0).is_err());
    /// ```
    pub fn set_threads(&self, threads: usize) -> Result<(), ResizeError> {
        if threads == 0 {
            return Err(ResizeError::ZeroThreads);
        }
        let mut registered = self.shared.threads.lock();
        if self.shared.is_shutting_down() {
            return Err(ResizeError::ShutDown);
        }
        reap_finished(&mut registered);
        let to_start = self.shared.size.set_target(threads);
        for _ in 0..to_start {
            if let Err((_, source)) = self.spawn_worker(&mut registered) {
                return Err(ResizeError::Spawn {
                    requested: threads,
                    source,
                });
            }
        }
        #[cfg(not(loom_broken_idle_shrink))] // planted bug (loom-tests, `.ci/loom-planted`)
        if self.shared.size.live() > threads {
            // Parked workers re-check `live > target` and the surplus retires.
            self.shared.sleep.wake_all();
        }
        Ok(())
    }

    /// Waits until no task is queued or running, or `timeout` passes; returns whether the pool
    /// went idle.
    ///
    /// Wakes on the event (a worker parking), not by polling. Called from inside one of the
    /// pool's own tasks it can only time out, since that task keeps the pool busy.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::ThreadPool;
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// for _ in 0..100 {
    ///     pool.spawn(|| ()).unwrap();
    /// }
    /// assert!(pool.wait_idle(Duration::from_secs(10)));
    /// assert_eq!(pool.stats().completed, 100);
    /// ```
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let shared = &*self.shared;
        shared.sleep.wait_until(deadline, || shared.is_idle())
    }

    /// Cancels every task that has not started; returns how many it cancelled.
    ///
    /// Running tasks are not affected. Handles of cancelled tasks report
    /// [`CancelReason::CancelAll`].
    pub fn cancel_all(&self) -> usize {
        self.discard_queued(CancelReason::CancelAll)
    }

    fn discard_queued(&self, reason: CancelReason) -> usize {
        let shared = &*self.shared;
        let mut canceled_now = 0;
        let mut counted = 0;
        let mut discard = |task: QueuedTask| {
            let d = task.discard(reason);
            canceled_now += usize::from(d.canceled_now);
            counted += u64::from(d.count);
        };
        while let Some(task) = shared.pop_global() {
            discard(task);
        }
        for stealer in shared.registry.stealers().iter() {
            loop {
                match stealer.steal() {
                    Steal::Success(task) => discard(task),
                    Steal::Empty => break,
                    Steal::Retry => Backoff::new().snooze(),
                }
            }
        }
        add_shared(&shared.external.mine().counters.canceled, counted);
        canceled_now
    }

    /// Whether [`shutdown`](Self::shutdown) or [`shutdown_now`](Self::shutdown_now) was called.
    pub fn is_shutdown(&self) -> bool {
        self.shared.is_shutting_down()
    }

    /// Stops taking submissions, runs everything already queued, and joins the threads.
    ///
    /// Tasks that running tasks submit during the shutdown are still accepted (they are part of
    /// finishing the queue). Idempotent. Called from inside one of the pool's own tasks, it stops
    /// intake and returns without joining (a thread cannot wait for itself); the workers exit
    /// once the queue is done.
    pub fn shutdown(&self) {
        self.begin_shutdown(SHUTDOWN);
        self.join_workers();
    }

    /// Stops taking submissions, cancels every queued task, lets running tasks finish and joins
    /// the threads. Returns how many queued tasks it cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::ThreadPool;
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPool::new(1).unwrap();
    /// let (started_tx, started) = mpsc::channel();
    /// let (release, gate) = mpsc::channel::<()>();
    /// pool.spawn(move || {
    ///     started_tx.send(()).unwrap();
    ///     gate.recv().unwrap();
    /// })
    /// .unwrap();
    /// started.recv().unwrap(); // the worker is busy, so the next five stay queued
    /// let queued: Vec<_> = (0..5).map(|_| pool.submit(|| ()).unwrap()).collect();
    /// let releaser = std::thread::spawn(move || release.send(()).unwrap());
    /// assert_eq!(pool.shutdown_now(), 5);
    /// releaser.join().unwrap();
    /// assert!(queued.into_iter().all(|h| h.join().unwrap_err().is_canceled()));
    /// let stats = pool.stats();
    /// assert_eq!((stats.canceled, stats.completed), (5, 1));
    /// assert!(stats.is_balanced());
    /// ```
    pub fn shutdown_now(&self) -> usize {
        self.begin_shutdown(SHUTDOWN | DISCARD);
        // `begin_shutdown` passed the barrier: every outside submitter that got in has pushed,
        // so everything accepted is in a queue (or running) now.
        let canceled = self.discard_queued(CancelReason::Shutdown);
        self.mark_drainable();
        self.join_workers();
        canceled
    }

    fn begin_shutdown(&self, bits: usize) {
        let shared = &*self.shared;
        shared.lifecycle.fetch_or(bits, Ordering::AcqRel);
        // The barrier: a submitter that checked the flag before we set it still holds its gate
        // until it has pushed; one that takes its gate after we pass it sees the flag.
        shared.external.barrier();
        if bits & DISCARD != 0 {
            // `shutdown_now` discards the queue before workers may exit on an empty one.
            return;
        }
        self.mark_drainable();
    }

    /// Lets workers exit once the queues are empty, and wakes the parked ones to see it.
    fn mark_drainable(&self) {
        self.shared.lifecycle.fetch_or(DRAINABLE, Ordering::AcqRel);
        self.shared.sleep.wake_all();
    }

    fn join_workers(&self) {
        if worker::with_current(&self.shared, |_| ()).is_some() {
            return;
        }
        let mut registered = self.shared.threads.lock();
        for (_, handle) in registered.handles.drain(..) {
            // A worker never panics out of its loop (tasks and hooks are caught), so a join
            // error cannot carry anything to report.
            let _ = handle.join();
        }
        drop(registered);
        self.shared.sleep.idle_may_have_changed();
    }
}

#[cfg(not(loom))]
fn reap_finished(threads: &mut Threads) {
    let (done, running): (Vec<_>, Vec<_>) = threads
        .handles
        .drain(..)
        .partition(|(_, handle)| handle.is_finished());
    threads.handles = running;
    for (_, handle) in done {
        let _ = handle.join();
    }
}

#[cfg(loom)]
fn reap_finished(_threads: &mut Threads) {}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("threads", &self.threads())
            .field("shutdown", &self.is_shutdown())
            .field("stats", &self.stats())
            .finish()
    }
}

impl Executor for ThreadPool {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        self.execute_with_priority(job, Priority::Normal)
    }

    fn execute_with_priority(&self, job: Job, priority: Priority) -> Result<(), Rejected<Job>> {
        match self.admit() {
            Some(route) => {
                self.dispatch(route, QueuedTask::job(job, priority));
                Ok(())
            }
            None => Err(Rejected(job)),
        }
    }
}
