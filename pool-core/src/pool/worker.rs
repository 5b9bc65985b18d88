//! The worker loop, the registry of workers (stealers, counters), and the thread-local context
//! that routes submissions from inside a worker to its own deque.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use super::shared::Ready;
use super::shutdown::SubmitGates;
use super::stats::{bump_owned, bump_owned_by, Counters, Totals, WorkerStats, LEFT};
use super::Shared;
use crate::deque::{steal_retrying, Stealer, Worker};
use crate::policy::Work;
use crate::sync::{pause_then_yield, Arc, AtomicU64, CachePadded, Mutex, Ordering};
use crate::task::RunOutcome;
use crate::unwind::catch_panic;

/// A worker's registration, visible to the other workers (to steal) and to `stats()`.
pub(crate) struct WorkerEntry {
    index: usize,
    /// When the worker started, in nanoseconds after the process epoch: written once, before
    /// the entry is registered, so read under the registry's lock like the rest of the entry
    /// (kept out of `Counters` so that a block is one cache line: see there).
    started_at: u64,
    stealer: Stealer<Work>,
    counters: Arc<CachePadded<Counters>>,
}

#[derive(Default)]
struct RegistryInner {
    workers: Vec<WorkerEntry>,
    /// Counters of workers that have exited, folded in so totals never go backwards.
    retired: Totals,
    /// What stealing workers iterate over; replaced (not mutated) on every change.
    stealers: Arc<Vec<Stealer<Work>>>,
}

/// Who the workers are. Changes only when a worker starts or exits.
pub(crate) struct Registry {
    inner: Mutex<RegistryInner>,
    /// Bumped on every change so workers refresh their cached stealer list with one load.
    generation: AtomicU64,
}

impl Registry {
    pub(crate) fn new() -> Self {
        Registry {
            inner: Mutex::new(RegistryInner::default()),
            generation: AtomicU64::new(0),
        }
    }

    fn register(&self, entry: WorkerEntry) {
        let mut inner = self.inner.lock();
        // Kept in index order (workers start concurrently and indices are reused), so that
        // `read_workers` needs no sort: the shift costs less than the thread start it is part of.
        let at = inner.workers.partition_point(|w| w.index < entry.index);
        inner.workers.insert(at, entry);
        inner.stealers = Arc::new(inner.workers.iter().map(|w| w.stealer.clone()).collect());
        self.generation.fetch_add(1, Ordering::Release);
    }

    fn deregister(&self, index: usize) {
        let mut inner = self.inner.lock();
        if let Some(pos) = inner.workers.iter().position(|w| w.index == index) {
            let entry = inner.workers.remove(pos);
            inner.retired.add(&entry.counters);
        }
        inner.stealers = Arc::new(inner.workers.iter().map(|w| w.stealer.clone()).collect());
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// How each live worker has spent its life (see [`WorkerStats`]).
    pub(crate) fn worker_stats(&self) -> Vec<WorkerStats> {
        let mut stats = Vec::new();
        let inner = self.inner.lock();
        Self::read_workers(&inner, &mut stats);
        stats
    }

    /// Replaces `out` with each live worker's stats, in index order (the registry's).
    fn read_workers(inner: &RegistryInner, out: &mut Vec<WorkerStats>) {
        Self::fetch_blocks(inner);
        let now = crate::clock::nanos_since_epoch(std::time::Instant::now());
        out.clear();
        out.extend(
            inner
                .workers
                .iter()
                .filter_map(|w| WorkerStats::read(w.index, w.started_at, &w.counters, now)),
        );
        debug_assert!(
            out.is_sorted_by_key(|w| w.index),
            "`register` keeps index order"
        );
    }

    /// [`read_totals`](Self::read_totals) and [`worker_stats`](Self::worker_stats) in one
    /// critical section: the workers' counter blocks are fetched into the cache once (the
    /// worker pass first), and `out` is reused.
    pub(crate) fn read_all(&self, external: &SubmitGates, out: &mut Vec<WorkerStats>) -> Totals {
        let inner = self.inner.lock();
        Self::read_workers(&inner, out);
        Self::totals_of(&inner, external)
    }

    /// A balanced snapshot of every counter: retired workers', live workers' and `external`'s.
    pub(crate) fn read_totals(&self, external: &SubmitGates) -> Totals {
        let inner = self.inner.lock();
        Self::fetch_blocks(&inner);
        Self::totals_of(&inner, external)
    }

    /// Brings every live worker's counter block into the cache before a pass reads it.
    ///
    /// Read after a controller's 100 ms wait, the blocks are out of the cache, one miss each. The
    /// passes that read them do enough per block (a worker's stats, the sums) that the core has
    /// only a few of those misses in flight at once; this loop does one load per block and
    /// nothing else, so the misses overlap. Measured on a 2-core VM at 256 workers, medians of
    /// 40 reads each after a 100 ms sleep: `stats_with_workers` 15.7-19.0 µs without it,
    /// 9.9-11.4 µs with it; `stats` 11.2-11.9 and 7.5-8.0 µs; warm, 1.3-2 µs either way. The
    /// loaded values are not used: this is a cache hint, not a read any snapshot depends on,
    /// so loom (where it would only add interleavings to explore) does without it.
    #[inline]
    fn fetch_blocks(inner: &RegistryInner) {
        #[cfg(not(loom))]
        {
            let mut touched = 0;
            for worker in &inner.workers {
                touched ^= worker.counters.parked_since.load(Ordering::Relaxed);
            }
            std::hint::black_box(touched);
        }
        #[cfg(loom)]
        let _ = inner;
    }

    fn totals_of(inner: &RegistryInner, external: &SubmitGates) -> Totals {
        // The caller's lock keeps each worker either in `workers` or folded into `retired` for
        // the whole read, so none is counted twice or missed between passes.
        let blocks = inner
            .workers
            .iter()
            .map(|w| &**w.counters)
            .chain(external.blocks());
        Totals::read(inner.retired, blocks)
    }

    pub(crate) fn stealers(&self) -> Arc<Vec<Stealer<Work>>> {
        self.inner.lock().stealers.clone()
    }
}

/// What a worker thread keeps for itself.
pub(crate) struct WorkerContext {
    pub(crate) pool: *const Shared,
    pub(crate) deque: Worker<Work>,
    pub(crate) counters: Arc<CachePadded<Counters>>,
    stealers: RefCell<(u64, Arc<Vec<Stealer<Work>>>)>,
    index: usize,
    /// Searches left before the periodic look at the shared queue.
    searches_before_poll: Cell<u32>,
    /// Tasks this worker finished per policy level (by `Priority::index`) and not yet reported
    /// to the policy, and their sum (see `note_finished`).
    finished: [Cell<u32>; crate::Priority::ALL.len()],
    unreported: Cell<u32>,
}

/// A worker reports the tasks it finished to the policy (`on_finished_many`) once this many
/// are pending, besides before it parks or exits: one call into the policy per 64 tasks instead
/// of one per task (each call is a virtual call in a containment frame).
const REPORT_FINISHED_EVERY: u32 = 64;

impl WorkerContext {
    /// Counts a task a policy popped at `priority` that this worker ran to its end.
    #[inline(always)]
    fn note_finished(&self, shared: &Shared, priority: crate::Priority) {
        let level = &self.finished[priority.index()];
        level.set(level.get() + 1);
        let unreported = self.unreported.get() + 1;
        self.unreported.set(unreported);
        if unreported >= REPORT_FINISHED_EVERY {
            self.report_finished(shared);
        }
    }

    /// Hands the pending counts to the policy. Called before the worker parks or exits, so that
    /// once the pool is idle (every worker parked) or shut down the policy has seen every task.
    /// (`--cfg loom_broken_finished_report` skips the report before parking: loom-tests.)
    #[inline(never)]
    fn report_finished(&self, shared: &Shared) {
        if self.unreported.replace(0) == 0 {
            return;
        }
        for priority in crate::Priority::ALL {
            // Taken before the call: the policy is user code, and a count must be reported once
            // even if the call panics or comes back here.
            let count = self.finished[priority.index()].replace(0);
            if count != 0 {
                shared.policy_finished_many(priority, u64::from(count));
            }
        }
    }
}

crate::sync::const_thread_local! {
    /// The calling thread's worker context while the thread is inside `run` (which owns the
    /// context for that whole span), null on every other thread. A bare pointer in a constant
    /// thread-local: every submission reads it, so it costs one load, with no lazy set-up check,
    /// no borrow flag and no reference count.
    static CURRENT: Cell<*const WorkerContext> = Cell::new(std::ptr::null());
}

/// Runs `on_worker` with the calling thread's worker context if the thread is a worker of any
/// pool, `elsewhere` otherwise; `state` goes to whichever runs.
#[inline]
fn with_any_worker<S, R>(
    state: S,
    on_worker: impl FnOnce(&WorkerContext, S) -> R,
    elsewhere: impl FnOnce(S) -> R,
) -> R {
    let current = CURRENT.with(Cell::get);
    // SAFETY: `CURRENT` is non-null only between `run`'s set and clear, and `run`'s frame owns
    // the context for that whole span. We are on that same thread, below `run` in its stack, so
    // the context outlives this call (and the closure cannot keep the reference past it).
    match unsafe { current.as_ref() } {
        Some(ctx) => on_worker(ctx, state),
        None => elsewhere(state),
    }
}

/// Runs `on_worker` with the calling thread's worker context if the thread is a worker of
/// `pool`, `elsewhere` otherwise; `state` goes to whichever runs. The one thread-local read that
/// decides how a submission gets in.
#[inline]
pub(crate) fn on_current<S, R>(
    pool: &Shared,
    state: S,
    on_worker: impl FnOnce(&WorkerContext, S) -> R,
    elsewhere: impl FnOnce(S) -> R,
) -> R {
    with_any_worker(
        (state, elsewhere),
        |ctx, (state, elsewhere)| {
            // Identity by address: `Shared` is pinned in its `Arc` for the pool's whole life.
            if std::ptr::eq(ctx.pool, pool) {
                on_worker(ctx, state)
            } else {
                elsewhere(state)
            }
        },
        |(state, elsewhere)| elsewhere(state),
    )
}

/// From a worker of `pool`: if the newest entry of its own deque is the fire-and-forget job whose
/// closure lives at `job_at`, takes it back and runs it here, counted like any task this worker
/// runs (`join` takes back its queued half this way when no thief took it first, so a deep
/// recursion of joins does not leave a queued shell per call behind it); returns whether it did.
/// Anything else on top is put back where it was. A false match (the job was stolen, ran, and a
/// new job's closure got the same address) only runs that other job of this pool here, early.
pub(crate) fn run_newest_if(pool: &Shared, job_at: *const ()) -> bool {
    on_current(
        pool,
        job_at,
        |ctx, job_at| {
            let Some(work) = ctx.deque.pop() else {
                return false;
            };
            let ours = match &work {
                Work::Job(job) => std::ptr::addr_eq(&**job as *const (dyn FnOnce() + Send), job_at),
                Work::Task(_) => false,
            };
            if ours {
                execute(pool, ctx, Ready::unranked(work));
            } else {
                ctx.deque.push(work);
            }
            ours
        },
        |_| false,
    )
}

/// Whether the calling thread is a worker of `pool`.
pub(crate) fn is_worker_of(pool: &Shared) -> bool {
    on_current(pool, (), |_, ()| true, |()| false)
}

/// The body of every worker thread.
pub(crate) fn run(shared: Arc<Shared>, index: usize, counters: Arc<CachePadded<Counters>>) {
    // LIFO for the owner: a task's newest spawn runs next on the same core while its data is
    // hot, and a fan-out runs depth-first instead of growing the deque to the tree's width.
    // Thieves take the oldest entries. Outside submissions never enter this deque (workers take
    // them from the shared queue one at a time), so they start in submission order.
    let deque = Worker::new_lifo();
    let started_at = crate::clock::nanos_since_epoch(std::time::Instant::now());
    shared.registry.register(WorkerEntry {
        index,
        started_at,
        stealer: deque.stealer(),
        counters: counters.clone(),
    });
    let ctx = WorkerContext {
        pool: Arc::as_ptr(&shared),
        deque,
        counters,
        stealers: RefCell::new((u64::MAX, Arc::new(Vec::new()))),
        index,
        searches_before_poll: Cell::new(SHARED_QUEUE_POLL_INTERVAL - 1),
        finished: Default::default(),
        unreported: Cell::new(0),
    };
    // Cleared below before `ctx` is dropped (see `with_any_worker`).
    CURRENT.with(|current| current.set(&ctx));
    shared.hooks.call_start(index);

    // User code never unwinds out of `work_loop` (every call of it is caught), so a panic here is
    // a bug in pool code. Even then the worker is noticed rather than silently gone: it leaves the
    // live count, hands its deque back, deregisters, is counted in `lost_workers`, and a
    // replacement starts.
    let lost = catch_panic(|| work_loop(&shared, &ctx)).is_err();
    // No longer one of the pool's workers for `WorkerStats` (see `LEFT` for why before the
    // deregistration below). Relaxed: a reader that misses it lists the worker once more.
    ctx.counters.parked_since.store(LEFT, Ordering::Relaxed);
    // Already done on every way out of the loop but a panic (a bug in pool code).
    ctx.report_finished(&shared);
    if lost {
        shared.size.remove_live();
    }

    // Leave nothing behind: a retiring worker hands its deque back to the shared queue, counted
    // in `handing_back` meanwhile so that `wait_idle` never sees the pool idle while an entry is
    // in this worker's hands (`--cfg loom_broken_handback_idle` skips the count: loom-tests).
    let counted_in = !cfg!(loom_broken_handback_idle);
    if counted_in {
        shared.handing_back.fetch_add(1, Ordering::SeqCst);
    }
    while let Some(work) = ctx.deque.pop() {
        shared.push_global(work, crate::Priority::Normal);
        shared.sleep.notify_one();
    }
    if counted_in {
        shared.handing_back.fetch_sub(1, Ordering::SeqCst);
    }
    CURRENT.with(|current| current.set(std::ptr::null()));
    shared.registry.deregister(ctx.index);
    shared.hooks.call_stop(index);
    shared.sleep.idle_may_have_changed(|| shared.is_idle());
    if lost {
        super::replace_lost_worker(&shared);
    }
    super::leave(&shared, index);
}

/// How many times a worker that ran out of work looks again before it parks. Parking and waking
/// cost a futex syscall on each side; a submitter that is just slower than the workers would
/// otherwise pay one per task. Bounded, so an idle pool still goes quiet within a few tens of
/// microseconds (12 looks of about 2.5 µs and a yield each, on the 2-core machine of
/// `pool/README.md`'s figures): tasks that come every 20 µs are still caught without a wake-up,
/// and a pool that gets one task every 100 µs spends about 44 µs of a worker's CPU after each on
/// the search, the park and the wake-up (README, "Searching").
const SEARCH_ROUNDS_BEFORE_PARK: u32 = 12;

/// The most workers a pool may have for its workers to search a while before parking
/// ([`SEARCH_ROUNDS_BEFORE_PARK`]); past it they park as soon as they run out of work: each
/// round looks at every deque, so the rounds of all workers cost O(workers²) each time the pool
/// runs dry (measured: README, "Searching a large pool"). A policy-adaptive pool (at most 256 by
/// default) keeps its rounds.
const SPIN_WORKERS_MAX: usize = 256;

/// How long a searching worker waits between two looks, spinning on CPU pauses and then
/// yielding (`sync::pause_then_yield`). A worker that looked again at once stayed one task behind a
/// single outside submitter, and every push and every pop then moved the queue's lines between
/// the cores: `compare`'s external submit ran at 35-48% of the speed of a pool whose worker looks
/// every few microseconds and takes what has queued meanwhile (README, "Searching"). Timed, not a
/// count of pauses, because a pause's length differs fourfold between CPUs.
const WAIT_BETWEEN_LOOKS: Duration = Duration::from_nanos(2_500);

fn work_loop(shared: &Shared, ctx: &WorkerContext) {
    loop {
        #[cfg(all(test, not(loom)))]
        if shared
            .inject_fault
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            panic!("injected fault: a worker panics out of its loop");
        }
        // Each found task goes straight into `execute`, inside `run_next`: merging the two
        // searches' results into one `Option` first copied the 24-byte task through the stack on
        // every task.
        if run_next(shared, ctx) || run_a_while(shared, ctx) {
            // Between two tasks a surplus worker retires even when work is queued, so a shrink
            // takes effect within one task length per surplus worker, not when the queue empties
            // (its own deque goes back to the shared queue on the way out). One load of the size
            // word per task, a line written only by resizes.
            if shared.size.surplus() && !shared.is_shutting_down() {
                // Before leaving the live count: `wait_idle` may return as soon as it has.
                ctx.report_finished(shared);
                if shared.size.try_retire() {
                    return;
                }
            }
            continue;
        }
        // Out of work: report what this worker finished before it parks, retires or exits, so
        // that whoever sees the pool idle (`wait_idle`, which waits for every live worker to
        // park) or shut down reads exact counts from the policy.
        #[cfg(not(loom_broken_finished_report))]
        ctx.report_finished(shared);
        if shared.is_shutting_down() {
            match shared.quiescence(ctx) {
                Some(true) => {
                    // Keep `live` truthful for `wait_idle` and `stats` during shutdown.
                    shared.size.remove_live();
                    return;
                }
                // The policy's `is_empty` panicked: look again rather than park on a guess
                // (each look is a fresh call; many panics in a row read as empty).
                None => continue,
                Some(false) => {}
            }
        } else if shared.size.try_retire() {
            return;
        }
        // During shutdown, a worker that is not quiescent waits here for an outside submitter
        // that is between its check and its push: that submitter wakes everyone once it is out
        // (see README, "shutdown"), so there is no spinning.
        shared.hooks.call_park(ctx.index);
        let parked_at = crate::clock::nanos_since_epoch(std::time::Instant::now()).max(1);
        ctx.counters
            .parked_since
            .store(parked_at, Ordering::Relaxed);
        shared
            .sleep
            .park(|| must_stay_awake(shared, ctx), || shared.is_idle());
        let woke_at = crate::clock::nanos_since_epoch(std::time::Instant::now());
        let parked = woke_at.saturating_sub(parked_at);
        ctx.counters.parked_since.store(0, Ordering::Relaxed);
        bump_owned_by(&ctx.counters.parked_total, parked);
        shared.hooks.call_unpark(ctx.index);
    }
}

/// Looks for work for a bounded number of backoff rounds and runs the first task it finds;
/// false means it is time to park.
fn run_a_while(shared: &Shared, ctx: &WorkerContext) -> bool {
    // Under loom every round is a scheduling point for the model checker to explore, and the
    // protocol does not depend on it: go straight to parking.
    if cfg!(loom) {
        return false;
    }
    // A large pool parks at once (`SPIN_WORKERS_MAX`). Its first search (`run_next`) and its
    // re-check before parking still look at every deque.
    if ctx.stealers.borrow().1.len() > SPIN_WORKERS_MAX {
        return false;
    }
    for _ in 0..SEARCH_ROUNDS_BEFORE_PARK {
        if shared.is_shutting_down() || shared.size.surplus() {
            return false;
        }
        pause_then_yield(WAIT_BETWEEN_LOOKS);
        if run_next(shared, ctx) {
            return true;
        }
    }
    false
}

/// What [`yield_now`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Yield {
    /// It ran one queued task of the calling worker's pool.
    Executed,
    /// It found no queued task to run.
    Idle,
}

/// From a worker thread of any [`ThreadPool`](crate::ThreadPool): runs one queued task of that
/// pool, if there is one. Returns `None` when the calling thread is not a worker.
///
/// This is how a task that waits on other tasks keeps the pool moving instead of deadlocking it
/// (the waits of pool-core and its sibling crates use it: [`TaskHandle::join`](crate::TaskHandle::join),
/// `map_batch`, a DAG run). A waiting loop calls it while its condition is false and blocks only
/// once it returns `Some(Yield::Idle)` or `None`.
///
/// The task it runs may be any queued task, and may itself wait (helping in turn), so the stack
/// grows with the nesting depth, as in rayon.
///
/// # Examples
///
/// ```
/// use pool_core::{yield_now, ThreadPool, Yield};
///
/// assert_eq!(yield_now(), None); // not a worker thread
/// let pool = std::sync::Arc::new(ThreadPool::new(1).unwrap());
/// let inner = pool.clone();
/// let outcome = pool
///     .submit(move || {
///         // The only worker is busy with this task, so the spawned one can only run here.
///         let (tx, rx) = std::sync::mpsc::channel();
///         inner.spawn(move || tx.send(7).unwrap()).unwrap();
///         while rx.try_recv().is_err() {
///             assert_eq!(yield_now(), Some(Yield::Executed));
///         }
///         "helped"
///     })
///     .unwrap();
/// assert_eq!(outcome.join().unwrap(), "helped");
/// ```
pub fn yield_now() -> Option<Yield> {
    with_any_worker(
        (),
        |ctx, ()| {
            // SAFETY: a context exists only while its thread is inside `run`, whose `shared` (an
            // `Arc<Shared>`) keeps the pool's shared state alive for that whole time; `ctx.pool`
            // points into that `Arc`.
            let shared = unsafe { &*ctx.pool };
            Some(if help(shared, ctx) {
                Yield::Executed
            } else {
                Yield::Idle
            })
        },
        |()| None,
    )
}

/// From a worker thread of any [`ThreadPool`](crate::ThreadPool): spawns `job` on that pool, into
/// the calling worker's own deque (it runs next on this worker, depth-first, unless an idle worker
/// steals it first). The way for a task to spawn more tasks without holding an
/// `Arc<ThreadPool>` and cloning it per task.
///
/// # Errors
///
/// The job comes back in [`Rejected`](crate::Rejected) when the calling thread is not a worker of
/// any pool, or when its pool is shutting down with `shutdown_now`.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// fn tree(depth: u32, leaves: Arc<AtomicUsize>) {
///     if depth == 0 {
///         leaves.fetch_add(1, Ordering::Relaxed);
///         return;
///     }
///     for _ in 0..2 {
///         let leaves = leaves.clone();
///         pool_core::spawn_here(move || tree(depth - 1, leaves)).unwrap();
///     }
/// }
///
/// let pool = pool_core::ThreadPool::new(2).unwrap();
/// let leaves = Arc::new(AtomicUsize::new(0));
/// let l = leaves.clone();
/// pool.spawn(move || tree(10, l)).unwrap();
/// assert!(pool.wait_idle(std::time::Duration::from_secs(30)));
/// assert_eq!(leaves.load(Ordering::Relaxed), 1024);
/// assert!(pool_core::spawn_here(|| ()).is_err()); // not on a worker
/// ```
pub fn spawn_here<F>(job: F) -> Result<(), crate::Rejected<F>>
where
    F: FnOnce() + Send + 'static,
{
    with_any_worker(
        job,
        |ctx, job| {
            // SAFETY: as in `yield_now`.
            let shared = unsafe { &*ctx.pool };
            shared.push_from_worker(ctx, job, crate::Priority::Normal, boxed_job)?;
            shared.sleep.notify_one();
            Ok(())
        },
        Err,
    )
    .map_err(crate::Rejected)
}

/// A closure as a queue entry, for `Shared::submit` and `push_from_worker`.
pub(crate) fn boxed_job<F: FnOnce() + Send + 'static>(job: F, _: &Shared) -> (Work, ()) {
    (Work::Job(Box::new(job)), ())
}

/// Runs one task if any is to be found; returns whether it did. A search whose pop the policy
/// panicked in (dropping one entry) found nothing but proved nothing: it is tried again, until
/// a pop returns (the count of pops that panicked in a row resets) or that count reaches the
/// give-up mark. A waiter that took such a search for "nothing queued" blocked with the rest of
/// the queue behind it: the stress harness's `policy` part deadlocked a pool whose one worker
/// waited in a nested batch.
pub(crate) fn help(shared: &Shared, ctx: &WorkerContext) -> bool {
    loop {
        if run_next(shared, ctx) {
            return true;
        }
        if !shared.pop_panics.worth_retrying() {
            return false;
        }
    }
}

/// Finds a task and runs it; returns whether it did. Own deque first (newest work stays hot in
/// this core's cache), then the shared queue, then the other workers' deques, and every
/// [`SHARED_QUEUE_POLL_INTERVAL`]th search the shared queue before all of them.
///
/// Inlined into the loop, and each found task run where it was found: a found task is 24 bytes,
/// and handing it back through memory from a call, then again into `execute`, stalled on store
/// forwarding (16-byte loads of 8-byte stores) at each hop: the largest single cost per task in
/// a `perf` profile of the scope tree.
///
/// A task from the worker's own deque, the common case of tasks spawning tasks, runs through
/// its own copy of `execute`, in which `Ready::popped_at` is known to be `None`: no policy popped
/// it, so the check for a report to the policy, and the spill of the found task to the stack
/// that came with the merged path, are gone from that path (61 to 56 instructions per task in
/// the worker loop, callgrind, `profile scope ours 1048575`).
#[inline(always)]
fn run_next(shared: &Shared, ctx: &WorkerContext) -> bool {
    let task = match poll_shared_queue_now(shared, ctx) {
        Some(task) => task,
        None => match ctx.deque.pop() {
            Some(work) => {
                execute(shared, ctx, Ready::unranked(work));
                return true;
            }
            // One entry at a time, never a batch into the own deque: an outside submission taken
            // by a worker starts now, so the pool never starts a later outside submission while
            // an earlier one waits behind a blocked task in some worker's deque (jobs that must
            // run together, such as the parties of a barrier, would deadlock a pool that has room
            // for them).
            None => match shared.pop_global() {
                Some(task) => task,
                None => match steal(shared, ctx) {
                    Some(task) => task,
                    None => return false,
                },
            },
        },
    };
    execute(shared, ctx, task);
    true
}

/// Every [`SHARED_QUEUE_POLL_INTERVAL`]th search: the shared queue's oldest entry, looked at
/// before the worker's own deque.
#[inline(always)]
fn poll_shared_queue_now(shared: &Shared, ctx: &WorkerContext) -> Option<Ready> {
    // A countdown, not a modulo: a compare and a decrement on the path of every task.
    let searches_left = ctx.searches_before_poll.get();
    if searches_left == 0 {
        ctx.searches_before_poll.set(SHARED_QUEUE_POLL_INTERVAL - 1);
        shared.pop_global()
    } else {
        ctx.searches_before_poll.set(searches_left - 1);
        None
    }
}

/// A worker whose own deque never empties (a task that keeps spawning) would never look at the
/// shared queue; every this many searches it looks there first, so outside submissions are not
/// starved. (61, like tokio's scheduler: prime, so it does not fall into step with a workload's
/// own period.)
const SHARED_QUEUE_POLL_INTERVAL: u32 = 61;

#[inline(never)]
fn steal(shared: &Shared, ctx: &WorkerContext) -> Option<Ready> {
    let mut cached = ctx.stealers.borrow_mut();
    let generation = shared.registry.generation.load(Ordering::Acquire);
    if cached.0 != generation {
        *cached = (generation, shared.registry.stealers());
    }
    // Iterate the cached list in place: cloning its `Arc` here would bump a reference count on
    // a line every stealing worker shares. Nothing below calls user code, so the borrow is safe.
    let stealers = &cached.1;
    let n = stealers.len();
    if n <= 1 {
        return None;
    }
    // Start at the next worker so that thieves spread over victims.
    for offset in 1..=n {
        let victim = &stealers[(ctx.index + offset) % n];
        // A look first: crossbeam's `steal` pins an epoch, and every 128th pin walks every
        // thread that ever pinned, so searching thousands of empty deques was quadratic and
        // worse (README, "Searching a large pool"). `is_empty` reads the same two indices around
        // the same `SeqCst` fence, without the pin: it says "empty" exactly where `steal` would.
        if victim.is_empty() {
            continue;
        }
        if let Some(work) = steal_retrying(|| victim.steal()) {
            return Some(Ready::unranked(work));
        }
    }
    None
}

/// The parking worker's re-check: work to do, or (during shutdown) nothing left to drain, or
/// (otherwise) a surplus to retire. The shared queue is read once: a policy's `is_empty` that
/// panics (`None`) keeps the worker awake to look again, where read twice, one answer "empty"
/// and the other a panic, it slept with nothing left to wake it.
fn must_stay_awake(shared: &Shared, ctx: &WorkerContext) -> bool {
    if !ctx.deque.is_empty() || shared.global_emptiness() != Some(true) || any_stealable(shared) {
        return true;
    }
    // During shutdown only quiescence ends the wait (workers do not retire then, so a surplus
    // must not keep one awake: it would spin until the queue is drainable).
    if shared.is_shutting_down() {
        shared.drainable(ctx)
    } else {
        shared.size.surplus()
    }
}

pub(crate) fn any_stealable(shared: &Shared) -> bool {
    shared.registry.stealers().iter().any(|s| !s.is_empty())
}

#[inline(always)] // see `run_next`
fn execute(shared: &Shared, ctx: &WorkerContext, ready: Ready) {
    let counters = &ctx.counters;
    let ran = match ready.work {
        Work::Job(job) => {
            bump_owned(&counters.started);
            // The closure, its captures and its panic payload are all dropped inside
            // `catch_panic`: none of their destructors can unwind out of the worker.
            match catch_panic(job) {
                Ok(()) => bump_owned(&counters.completed),
                Err(message) => {
                    bump_owned(&counters.panicked);
                    shared.hooks.call_panic_handler(&message);
                }
            }
            true
        }
        Work::Task(task) => match task.run(&|| bump_owned(&counters.started)) {
            RunOutcome::Completed => {
                bump_owned(&counters.completed);
                true
            }
            RunOutcome::Panicked => {
                bump_owned(&counters.panicked);
                true
            }
            RunOutcome::Cancelled { count } => {
                if count {
                    bump_owned(&counters.cancelled);
                }
                false
            }
            RunOutcome::Stale => false,
        },
    };
    // Work no policy popped (the FIFO default, a worker's own deque) reports nothing.
    if let Some(priority) = ready.popped_at {
        if ran {
            ctx.note_finished(shared, priority);
        } else {
            shared.policy_discarded(priority, 1);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{Registry, LEFT};
    use crate::sync::Ordering;
    use crate::ThreadPool;
    use std::time::{Duration, Instant};

    /// A worker that has left its loop is not listed in `WorkerStats` while it waits for the
    /// registry's lock to deregister (held here by the test): it marks itself `LEFT` before it
    /// takes that lock, so the wait cannot make it look like a busy worker.
    #[test]
    fn a_leaving_worker_is_not_listed_while_it_waits_to_deregister() {
        let pool = ThreadPool::new(2).unwrap();
        assert!(pool.wait_idle(Duration::from_secs(30)));
        let registry = pool.shared.registry.inner.lock();
        pool.set_threads(1).unwrap();
        // The surplus worker wakes, retires, and stops at the lock held here. Its mark has no
        // event to wait on: polled, within a deadline.
        let deadline = Instant::now() + Duration::from_secs(30);
        let leaving = |registry: &super::RegistryInner| {
            registry
                .workers
                .iter()
                .filter(|w| w.counters.parked_since.load(Ordering::Relaxed) == LEFT)
                .count()
        };
        while leaving(&registry) == 0 {
            assert!(
                Instant::now() < deadline,
                "no worker marked itself as leaving"
            );
            std::thread::yield_now();
        }
        let mut listed = Vec::new();
        Registry::read_workers(&registry, &mut listed);
        assert_eq!((registry.workers.len(), listed.len()), (2, 1), "{listed:?}");
        drop(registry);
        pool.shutdown();
        assert!(pool.worker_stats().is_empty());
    }

    #[test]
    fn a_worker_that_panics_out_of_its_loop_is_noticed_and_replaced() {
        let pool = ThreadPool::new(1).unwrap();
        // Arm the fault while the only worker runs a first task, so it dies at the top of its
        // loop right after that task, before anything else is queued: the second task can then
        // only run on the replacement (which starts after the loss is counted).
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let first = pool
            .submit(move || {
                started_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            })
            .unwrap();
        started_rx.recv().unwrap();
        pool.shared
            .inject_fault
            .store(true, std::sync::atomic::Ordering::SeqCst);
        release_tx.send(()).unwrap();
        assert!(first.join_timeout(Duration::from_secs(30)).is_ok());
        let handle = pool.submit(|| 7).unwrap();
        assert_eq!(handle.join_timeout(Duration::from_secs(30)).ok(), Some(7));
        let stats = pool.stats();
        assert_eq!((stats.lost_workers, stats.live_threads), (1, 1), "{stats}");
        pool.shutdown();
        let stats = pool.stats();
        assert_eq!(
            (stats.live_threads, stats.running, stats.queued),
            (0, 0, 0),
            "{stats}"
        );
        assert!(stats.is_balanced());
    }
}
