//! `ThreadPool`: submission, shutdown, resize. The wake-up and shutdown protocols are described in
//! `README.md` beside this file.

pub(crate) mod budget;
mod builder;
mod oldest_wait;
mod panic_streak;
mod resize;
mod shared;
mod shutdown;
mod size;
mod sleep;
mod stats;
mod threads;
mod worker;

pub use budget::{CountedThread, ProcessThreadShare};
pub use builder::ThreadPoolBuilder;
pub use oldest_wait::OldestWait;
pub use stats::{PoolStats, WorkerStats};
pub use worker::{spawn_here, yield_now, Yield};

use std::fmt;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use self::panic_streak::PanicStreak;
use self::shared::Global;
pub(crate) use self::shared::{Hooks, Shared};
use self::shutdown::SubmitGates;
use self::size::Size;
use self::sleep::Sleep;
pub(crate) use self::threads::{leave, replace_lost_worker};
use self::threads::{start_worker, StartRefused, Threads};
use self::worker::Registry;
use crate::deque::WorkInjector;
use crate::error::{PolicyRefused, PoolBuildError};
use crate::executor::{Executor, Job, Priority, Rejected};
use crate::policy::{QueuePolicy, Work};
use crate::sync::{Arc, AtomicU64, AtomicUsize, Mutex, Ordering};
use crate::task::{
    new_task, raw_task, CancelToken, Plain, PoolId, TaskFn, TaskHandle, TaskRef, WithToken,
};
use crate::unwind::{call_quietly, QuietDrop};

/// A pool of worker threads with work stealing, cancellation, panic isolation, statistics,
/// resizing and graceful shutdown.
///
/// Dropping the pool shuts it down gracefully: queued work runs, then every thread is joined.
///
/// # Order
///
/// Submissions from outside the pool start in submission order: with one worker strictly FIFO;
/// with N workers no outside submission waits while a worker is idle and none starts more than N
/// places out of order. The pool never starts a later outside submission while an earlier one
/// sits unstarted, so jobs that must run at the same time (the parties of a barrier) never
/// deadlock a pool with room for all of them. Tasks spawned by running tasks go to that worker's
/// own deque and run depth-first, possibly before outside work.
///
/// # Examples
///
/// Build a pool of 4 threads, submit 10 tasks, cancel 3 before they start, await one, join the
/// rest, shut down and read stats that add up:
///
/// ```
/// use pool_core::ThreadPool;
/// use std::sync::mpsc;
/// # use pollster::block_on;
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
/// assert_eq!((stats.submitted, stats.completed, stats.cancelled), (10, 7, 3));
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

    /// Cancel the task (with [`CancelReason::DeadlineExpired`](crate::CancelReason::DeadlineExpired)) if no worker has started it by
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
    /// The most workers a pool holds: a larger count, asked of
    /// [`threads`](ThreadPoolBuilder::threads) or [`set_threads`](Self::set_threads), is refused
    /// with a typed error before any thread starts.
    ///
    /// Why a bound: near the operating system's limit a thread start does not always fail
    /// cleanly. On Linux each thread takes four memory mappings (its stack and guard page, and
    /// the signal stack and guard page std gives every thread), and a process has 65 530 by
    /// default (`vm.max_map_count`): at about 16 000 threads the next start fails, and a thread
    /// started just before can fail to map its signal stack, which std answers by aborting the
    /// whole process (measured: `ThreadPool::new(100_000)` aborted the test binary). 8 192
    /// workers take half of that budget, leaving the rest to the process's own mappings and its
    /// other threads. Pools together are bounded by
    /// [`process_thread_limit`](Self::process_thread_limit).
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::ThreadPool;
    ///
    /// let err = ThreadPool::new(ThreadPool::MAX_THREADS + 1).unwrap_err();
    /// assert!(err.is_too_many_threads());
    /// ```
    pub const MAX_THREADS: usize = 8192;

    /// The most threads all of this process's pools hold together: a worker that would
    /// pass it is refused with a typed error ([`PoolBuildError::is_process_limit`],
    /// [`ResizeError::ProcessLimit`](crate::ResizeError::ProcessLimit)) and the pool keeps the
    /// workers it has.
    ///
    /// [`MAX_THREADS`](Self::MAX_THREADS) bounds one pool; without this limit two pools of
    /// 8 192 workers reached the process's mapping cap, and std aborted the process. On Linux it
    /// is three quarters of the threads `vm.max_map_count` allows at four mappings each (12 285
    /// at the default cap; a raised cap raises it), the last quarter left to the process's other
    /// mappings and threads; elsewhere the same figure for the default cap.
    /// [`set_process_thread_limit`](Self::set_process_thread_limit) changes it. A worker counts
    /// from before its thread starts until that thread is joined (its stack is mapped until
    /// then): a pool's shutdown joins its workers, and a retired worker is joined by the next
    /// one to leave. A thread a pool's policy runs beside the workers counts too, while it
    /// holds a [`ProcessThreadShare`](crate::ProcessThreadShare) (policy-adaptive's controller:
    /// one per adaptive pool).
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::ThreadPool;
    ///
    /// let pool = ThreadPool::new(4).unwrap();
    /// let held = ThreadPool::process_threads();
    /// assert!(held >= 4 && held <= ThreadPool::process_thread_limit());
    /// pool.shutdown(); // joins its workers: their shares go back
    /// assert!(ThreadPool::process_threads() <= held - 4);
    /// ```
    pub fn process_thread_limit() -> usize {
        budget::process().limit()
    }

    /// The threads all of this process's pools hold now, started and not joined yet: their
    /// workers, and the threads beside them that hold a
    /// [`ProcessThreadShare`](crate::ProcessThreadShare). See
    /// [`process_thread_limit`](Self::process_thread_limit).
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::ThreadPool;
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// assert!(ThreadPool::process_threads() >= 2);
    /// # drop(pool);
    /// ```
    pub fn process_threads() -> usize {
        budget::process().held()
    }

    /// Sets [`process_thread_limit`](Self::process_thread_limit), for every pool of this
    /// process: lower it to cap the threads of a process that runs several pools (a service in
    /// a container with a task limit, say); raise it only where the mapping cap was raised too
    /// (past the cap, std aborts the process when a thread cannot map its signal stack).
    ///
    /// Workers held past a lowered limit keep running; no pool starts another until the count
    /// is under it, and a pool's growth is refused meanwhile with
    /// [`ResizeError::ProcessLimit`](crate::ResizeError::ProcessLimit).
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::{ResizeError, ThreadPool};
    /// use std::num::NonZeroUsize;
    ///
    /// ThreadPool::set_process_thread_limit(NonZeroUsize::new(6).unwrap());
    /// let first = ThreadPool::new(4).unwrap();
    /// let second = ThreadPool::new(2).unwrap();
    /// let refused = second.set_threads(3).unwrap_err();
    /// assert!(matches!(refused, ResizeError::ProcessLimit { requested: 3, limit: 6 }));
    /// assert_eq!(second.threads(), 2, "the pool keeps the workers it has");
    /// first.shutdown(); // its four shares go back
    /// second.set_threads(6).unwrap();
    /// ```
    pub fn set_process_thread_limit(limit: NonZeroUsize) {
        budget::process().set_limit(limit);
    }

    /// A FIFO pool of `threads` workers.
    ///
    /// # Errors
    ///
    /// `threads` is 0 or above [`MAX_THREADS`](Self::MAX_THREADS), or the OS refused to start a
    /// thread.
    pub fn new(threads: usize) -> Result<ThreadPool, PoolBuildError> {
        ThreadPoolBuilder::new().threads(threads).build()
    }

    /// A builder for the other settings.
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder::new()
    }

    fn start(
        threads: usize,
        hooks: Hooks,
        policy: Option<QuietDrop<Box<dyn QueuePolicy>>>,
    ) -> Result<ThreadPool, PoolBuildError> {
        let (global, local_queues, honors_priority) = match policy {
            None => (Global::Fifo(WorkInjector::new()), true, false),
            Some(policy) => {
                // Before anything else: a policy that already serves a pool refuses this one
                // (user code: a panic is a refusal). Returning drops it quietly.
                match crate::unwind::catch_panic(|| policy.attach()) {
                    Ok(Ok(())) => {}
                    Ok(Err(refused)) => return Err(PoolBuildError::policy_refused(refused)),
                    Err(message) => {
                        let refused =
                            PolicyRefused::new(format!("its `attach` panicked: {message}"));
                        return Err(PoolBuildError::policy_refused(refused));
                    }
                }
                // User code: a policy that panics here has stated nothing, so it gets the
                // trait's defaults (every task in its queue; no raised duplicates).
                let local = call_quietly(|| policy.local_queues()).unwrap_or(false);
                let priority = call_quietly(|| policy.honors_priority()).unwrap_or(false);
                (
                    Global::Policy(QuietDrop::into_inner(policy)),
                    local,
                    priority,
                )
            }
        };
        let pool = ThreadPool {
            shared: Arc::new(Shared {
                id: PoolId::next(),
                global,
                local_queues,
                honors_priority,
                lifecycle: AtomicUsize::new(0),
                sleep: Sleep::default(),
                registry: Registry::new(),
                size: Size::new(threads),
                external: SubmitGates::default(),
                hooks,
                threads: Mutex::new(Threads::new()),
                joining: Mutex::new(()),
                lost_workers: AtomicU64::new(0),
                pop_panics: PanicStreak::new(),
                empty_panics: PanicStreak::new(),
                handing_back: crate::sync::AtomicUsize::new(0),
                #[cfg(all(test, not(loom)))]
                inject_fault: std::sync::atomic::AtomicBool::new(false),
            }),
        };
        {
            let mut registered = pool.shared.threads.lock();
            for _ in 0..threads {
                if let Err((index, refused)) = pool.spawn_worker(&mut registered) {
                    drop(registered);
                    pool.shutdown();
                    return Err(match refused {
                        StartRefused::ProcessLimit(limit) => {
                            PoolBuildError::process_limit(index, limit)
                        }
                        StartRefused::Os(error) => PoolBuildError::spawn(index, error),
                    });
                }
            }
        }
        Ok(pool)
    }

    /// Starts one worker; the caller holds the `threads` lock.
    fn spawn_worker(&self, threads: &mut Threads) -> Result<(), (usize, StartRefused)> {
        start_worker(&self.shared, threads)
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
        self.spawn_with_priority(Priority::Normal, job)
    }

    /// [`spawn`](Self::spawn) at a priority (for pools with a priority queue policy; the FIFO
    /// default ignores it).
    ///
    /// # Errors
    ///
    /// After shutdown, the closure comes back in [`Rejected`].
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::{Priority, ThreadPool};
    ///
    /// let pool = ThreadPool::new(1).unwrap();
    /// pool.spawn_with_priority(Priority::Low, || println!("later")).unwrap();
    /// pool.shutdown();
    /// assert!(pool.spawn_with_priority(Priority::High, || ()).is_err());
    /// ```
    pub fn spawn_with_priority<F>(&self, priority: Priority, job: F) -> Result<(), Rejected<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.shared
            .submit(job, priority, worker::boxed_job)
            .map_err(Rejected)
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
        self.enqueue(options, f, Plain)
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
        self.enqueue(options, f, WithToken)
    }

    /// Submits `f` as a task with a handle; the task is made only once the pool accepts it.
    fn enqueue<F, W, T>(
        &self,
        options: TaskOptions,
        f: F,
        wrap: impl FnOnce(F) -> W,
    ) -> Result<TaskHandle<T>, Rejected<F>>
    where
        W: TaskFn<T> + 'static,
        T: Send + 'static,
    {
        self.shared
            .submit(f, options.priority, |f, shared| {
                let (entry, ops, raw) =
                    new_task(wrap(f), options.priority, options.deadline, shared.id);
                (Work::Task(entry), TaskHandle::new(ops, raw))
            })
            .map_err(Rejected)
    }

    /// Raises the priority of a task that is still queued; never lowers it.
    ///
    /// Returns whether the task will now be served at `to`: `false` if it already started or
    /// finished, if it already had `to` or higher, if the pool's queue policy ignores
    /// priorities (the FIFO default), or if the task is not this pool's: submitted to another
    /// pool, or made through [`ExecutorExt`](crate::ExecutorExt) (which hands any executor,
    /// this pool too, a plain job). A refused raise changes nothing.
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
        // Only this pool's own tasks: a second entry for another pool's task (or one made for
        // another executor) would run it here, on threads its submitter did not choose, and
        // out of both pools' books. Checked first, so such a raise changes nothing.
        if raw.header().home() != shared.id
            || !raw.header().is_queued()
            || !raw.header().raise_priority(to)
        {
            return false;
        }
        if shared.is_shutting_down() {
            return false;
        }
        // A second entry at the higher level; whichever entry a worker reaches first starts the
        // task, the other is stale (see task/README.md). No submitter gate is needed: the
        // original entry is already queued, so a duplicate stranded by a racing shutdown only
        // leaves a stale entry behind, never a task that does not run.
        shared.push_global(Work::Task(TaskRef::another_entry(raw)), to);
        shared.sleep.notify_one();
        true
    }

    /// A snapshot of the counters (see [`PoolStats`] for what each means).
    pub fn stats(&self) -> PoolStats {
        self.stats_of(self.shared.totals())
    }

    /// The counters `totals` and the live figures read now.
    fn stats_of(&self, totals: stats::Totals) -> PoolStats {
        let shared = &*self.shared;
        let mut stats = PoolStats::from_totals(totals, shared.size.live(), shared.sleep.idle());
        stats.lost_workers = shared.lost_workers.load(Ordering::Relaxed);
        stats
    }

    /// How each live worker has spent its life so far: time alive, time busy (not parked), and
    /// whether it is parked now. A worker that has left its loop (retiring, or exiting at
    /// shutdown) is not listed, even while it waits to deregister. Cheap: one lock of the
    /// worker registry and a clock read.
    pub fn worker_stats(&self) -> Vec<WorkerStats> {
        self.shared.registry.worker_stats()
    }

    /// [`stats`](Self::stats) and [`worker_stats`](Self::worker_stats) in one read, for a
    /// controller that samples both on every tick: `workers` is cleared and filled with each
    /// live worker's stats in index order (reusing its allocation), and the pool's counters are
    /// returned.
    ///
    /// Cheaper than the two calls: one lock of the worker registry instead of two, each
    /// worker's counter block fetched into the cache once instead of twice, no allocation once
    /// `workers` has grown to the pool's size, and no sort unless workers retired. The two
    /// parts are read under the same lock, so every worker listed in `workers` is in the
    /// totals (a worker that retired before, or has left its loop and not yet deregistered,
    /// is in the totals only); `live_threads` is the live count as [`stats`](Self::stats)
    /// gives it, which may differ from `workers.len()` while a worker starts or exits.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::ThreadPool;
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// pool.submit(|| ()).unwrap().join().unwrap();
    /// let mut workers = Vec::new();
    /// // A controller keeps `workers` between ticks: after the first, no allocation.
    /// for _tick in 0..3 {
    ///     let stats = pool.stats_with_workers(&mut workers);
    ///     assert!(stats.is_balanced());
    ///     assert!(workers.windows(2).all(|pair| pair[0].index < pair[1].index));
    ///     assert!(workers.iter().all(|w| w.busy <= w.alive));
    /// }
    /// ```
    pub fn stats_with_workers(&self, workers: &mut Vec<WorkerStats>) -> PoolStats {
        let shared = &*self.shared;
        self.stats_of(shared.registry.read_all(&shared.external, workers))
    }

    /// Entries waiting in the shared queue (not counting tasks in workers' own deques).
    pub fn queue_len(&self) -> usize {
        self.shared.global_len()
    }

    /// The worker threads' name prefix ([`ThreadPoolBuilder::thread_name`]): worker `i` is
    /// named `{prefix}-{i}`. For threads that serve the pool from beside it (a controller, a
    /// monitor), so that they carry the same prefix.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::ThreadPool;
    ///
    /// let pool = ThreadPool::builder().threads(1).thread_name("render").build().unwrap();
    /// assert_eq!(pool.thread_name(), "render");
    /// assert_eq!(ThreadPool::new(1).unwrap().thread_name(), "pool");
    /// ```
    pub fn thread_name(&self) -> &str {
        &self.shared.hooks.name
    }

    /// Waits until no task is queued or running, or `timeout` passes; returns whether the pool
    /// went idle.
    ///
    /// Every thread waiting when the pool goes idle returns `true`, even if another thread (say,
    /// the first waiter to wake) submits more work before it gets to run: like the classic pools'
    /// `join`, an idle moment releases the whole generation of waiters. A thread that starts
    /// waiting after that moment waits for the next one.
    ///
    /// Wakes on the event (a worker parking or exiting), not by polling. Called from inside one of
    /// the pool's own tasks it can only time out, since that task keeps the pool busy.
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

    /// Threads blocked in [`wait_idle`](Self::wait_idle) right now. For tests that must know a
    /// waiter is in place before they make the pool idle; not part of the stable API.
    #[doc(hidden)]
    pub fn idle_waiters(&self) -> usize {
        self.shared.sleep.idle_waiters()
    }
}

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

impl ThreadPool {
    /// Submits a job that becomes a queue entry only once the pool has accepted it: a scope's
    /// spawn, which boxes (and erases) its closure in `into_work` after the shutdown check, so a
    /// refusal hands back the unboxed job and allocates nothing. The same single route as every
    /// submission (`Shared::submit`), inlined into the caller instead of the out-of-line
    /// `Executor::execute` call with its `Rejected` wrapping.
    #[inline]
    pub(crate) fn submit_work<J>(
        &self,
        job: J,
        into_work: impl FnOnce(J) -> Work,
    ) -> Result<(), J> {
        self.shared
            .submit(job, Priority::Normal, |job, _| (into_work(job), ()))
    }
}

impl Executor for ThreadPool {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        self.execute_with_priority(job, Priority::Normal)
    }

    fn honors_priority(&self) -> bool {
        self.shared.honors_priority
    }

    fn execute_with_priority(&self, job: Job, priority: Priority) -> Result<(), Rejected<Job>> {
        self.shared
            .submit(job, priority, |job, _| (Work::Job(job), ()))
            .map_err(Rejected)
    }

    /// From a worker of this pool (a task releasing several others, a DAG node several
    /// dependents), the jobs go onto the worker's own deque with one wake-up check for the
    /// batch, which wakes at most one parked worker per job and stops once none is parked;
    /// from any other thread each job is submitted as by [`execute_with_priority`](Self::execute_with_priority).
    fn execute_batch(
        &self,
        jobs: &mut dyn Iterator<Item = Job>,
        priority: Priority,
    ) -> Result<(), Rejected<Job>> {
        let shared = &*self.shared;
        worker::on_current(
            shared,
            jobs,
            |ctx, jobs| {
                let pushed = std::cell::Cell::new(0usize);
                // On every exit, a panicking iterator's unwinding included: a job pushed without
                // a wake-up could sit in this deque while every other worker sleeps.
                // `notify_one` orders the pushes before its look at the sleepers (README, wake-up
                // step 3); after it, a sleeper count of zero means nobody is left to wake.
                let _wake = crate::OnExit::new(|| {
                    for _ in 0..pushed.get() {
                        shared.sleep.notify_one();
                        if shared.sleep.idle() == 0 {
                            break;
                        }
                    }
                });
                for job in jobs {
                    shared
                        .push_from_worker(ctx, job, priority, |job, _| (Work::Job(job), ()))
                        .map_err(Rejected)?;
                    pushed.set(pushed.get() + 1);
                }
                Ok(())
            },
            |jobs| {
                for job in jobs {
                    shared
                        .submit_from_outside(job, priority, |job, _| (Work::Job(job), ()))
                        .map_err(Rejected)?;
                }
                Ok(())
            },
        )
    }
}
