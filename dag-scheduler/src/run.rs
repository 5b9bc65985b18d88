//! One run of a graph: the join counters, the in-place successor, the token count that fires
//! completion once, and cancellation. The protocol is described in `README.md` beside this file.

use std::cell::{Cell, RefCell};
use std::mem::{ManuallyDrop, MaybeUninit};
use std::task::Waker;
use std::time::{Duration, Instant};

use pool_core::sync::{
    AtomicBool, AtomicUsize, Condvar, ErasedArc, Mutex, Ordering, Share, ShareCount, UnsafeCell,
};
use pool_core::{call_quietly, catch_panic, drop_quietly, wake_quietly, OnExit};
use pool_core::{Executor, Job, Priority, Rejected, Yield};

use crate::context::Context;
use crate::inner::{Critical, GraphInner};
use crate::options::{ClockFn, RunOptions};
use crate::state::{Decision, NodeState, Output, PackedTiming, Slot, Timing, NONE};

/// The executor a run submits to.
pub(crate) enum ExecutorRef {
    /// Borrowed by a blocking `run`, which returns (or unwinds) only after the last token is
    /// released.
    Borrowed(*const (dyn Executor + 'static)),
    Owned(Box<dyn Executor>),
    /// Only while the run is dropped (the owned executor is dropped quietly).
    Released,
}

enum Clock {
    Off,
    Real(Instant),
    Custom(ClockFn),
}

#[derive(Default)]
pub(crate) struct Done {
    pub(crate) finished: bool,
    pub(crate) waker: Option<Waker>,
    pub(crate) elapsed: Option<Duration>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The node's job was started by the executor (or it is run in place).
    Run,
    /// The executor refused or dropped the node's job.
    Dropped,
}

pub(crate) struct Run {
    pub(crate) graph: ErasedArc<GraphInner>,
    pub(crate) nodes: Box<[NodeState]>,
    /// Empty unless timing is on.
    pub(crate) times: Box<[UnsafeCell<PackedTiming>]>,
    /// One share per job alive (submitted and not finished) plus the starter's own: the release
    /// that takes it to zero completes the run. A job's share is added in the submitting thread's
    /// slot, so a thread that runs the jobs it submitted (a tree's descent on one worker) adds
    /// and releases on its own cache line; the shared total changes only when a slot empties or
    /// refills (README, "Completion once: tokens"). Its lines are padded: the fields beside it
    /// (`graph`, `nodes`, `cancelled`, `clock`) are read for every node.
    tokens: ShareCount,
    pub(crate) cancelled: AtomicBool,
    pub(crate) refused: AtomicBool,
    /// Nodes decided as anything but an output (failed, skipped, cancelled): written only on
    /// those paths, so a run where every node succeeds never touches it, and
    /// `Report::is_success` is one load instead of a downcast per node.
    pub(crate) unsuccessful: AtomicUsize,
    /// With critical-path priority on an executor that honours priorities: the nodes submitted
    /// at High priority (and preferred for the in-place successor).
    critical: Option<ErasedArc<Critical>>,
    clock: Clock,
    start_time: u64,
    premarked: Vec<(u32, Box<str>)>,
    exec: ExecutorRef,
    pub(crate) done: Mutex<Done>,
    pub(crate) done_cv: Condvar,
    /// With the `tracing` feature: the run's span, a child of the span current where the run was
    /// started; every node's span is its child, on whichever thread the node runs.
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

// SAFETY: the cells in `nodes` and `times` are written once per run by the thread that took the
// node's join counter to zero (exactly one thread does), and read only by threads that acquired
// that write through the counters or the completion lock (see README.md, "slots"). The borrowed
// executor pointer is `Sync` (`Executor: Sync`) and valid while any token is held.
unsafe impl Sync for Run {}
// SAFETY: as above; every field is either `Send` or one of the cells/pointers argued there.
unsafe impl Send for Run {}

/// What a job (or a deferred job) processes: node `index` and what it makes ready, or with
/// `roots > 0` the roots `graph.roots[index..index + roots]` one after another (a chunk, see
/// `Run::submit_roots`), or the launcher (`index == LAUNCH`).
#[derive(Clone, Copy)]
struct Work {
    index: u32,
    roots: u8,
}

impl Work {
    fn node(index: u32) -> Work {
        Work { index, roots: 0 }
    }
}

/// A job handed to the executor: one token (a [`Share`] of the run's count), for its work.
struct NodeJob {
    run: *const Run,
    work: Work,
    /// Whether `share` is still in the job (not yet moved out by `start` or `drop`).
    armed: bool,
    /// Moved out exactly once (`start`, or `drop` while `armed`); `ManuallyDrop` so that moving
    /// it out of `&mut self` in `drop` stays sound whatever `Share` may grow in pool-core.
    share: ManuallyDrop<Share>,
}

// The share (a `u8`) fits in the padding after `armed`: the job, and the boxed closure that
// holds it, are as large as before it carried one (24 bytes on 64-bit targets), so the box
// stays in the same allocation size class.
const _: () = assert!(
    std::mem::size_of::<NodeJob>() == std::mem::size_of::<(*const Run, Work, bool)>()
        && std::mem::size_of::<NodeJob>() <= 24
);

// SAFETY: `Run` is `Sync`, and the pointer stays valid while this job's token is unreleased:
// the run's own reference is dropped only by the release that takes the tokens to zero.
unsafe impl Send for NodeJob {}

impl NodeJob {
    fn start(self) {
        // Started: its `Drop` (which cancels an unrun job) must not run. `ManuallyDrop` skips
        // it outright (the fields are plain data), where clearing `armed` left a call to it.
        let mut job = ManuallyDrop::new(self);
        // SAFETY: `job` is never dropped nor used again, so its share is moved out once.
        let share = unsafe { ManuallyDrop::take(&mut job.share) };
        dispatch(job.run, job.work, Kind::Run, share);
    }
}

impl Drop for NodeJob {
    fn drop(&mut self) {
        // The executor dropped the job without running it (refused, or discarded its queue):
        // the node is cancelled and the token still released, so the run cannot hang.
        if self.armed {
            self.armed = false;
            // SAFETY: `armed` was set, so the share is still here; clearing it first makes
            // this the only move out.
            let share = unsafe { ManuallyDrop::take(&mut self.share) };
            dispatch(self.run, self.work, Kind::Dropped, share);
        }
    }
}

struct Deferred {
    run: *const Run,
    work: Work,
    kind: Kind,
    share: Share,
}

struct Driver {
    /// The run this thread is driving, if any.
    current: Cell<*const Run>,
    /// Jobs of `current` the executor started inline (or dropped) while we were driving:
    /// run after the current node instead of recursing, so an inline executor runs a 1M-node
    /// graph in constant stack.
    deferred: RefCell<Vec<Deferred>>,
}

impl Drop for Driver {
    /// The thread is tearing down its thread-locals while jobs are still deferred here: a driver
    /// level is still on the stack and will find this state gone when it exits (its drain loop
    /// gets an access error), so nobody else would ever drive them. Std runs thread-local
    /// destructors one after another, so a level entered in one of them has exited before this
    /// one runs; what leaves a level on the stack is a thread that never returns to it:
    /// `std::process::exit` called from a node runs this thread's destructors from inside the
    /// node's closure. The jobs hold tokens (a run waited for elsewhere, or from another
    /// thread-local's destructor, would hang), so they are driven here, at once. No access to
    /// `DRIVER` succeeds any more (std marks it destroyed before dropping it, loom takes it out
    /// first), so what they hand over is driven in place (`dispatch`'s recursion), never
    /// deferred to this dead state.
    fn drop(&mut self) {
        let deferred = std::mem::take(self.deferred.get_mut());
        // Last deferred first, as the level's own drain does.
        for job in deferred.into_iter().rev() {
            // SAFETY: a deferred job holds its token.
            unsafe { drive(job.run, job.work, job.kind, job.share) };
        }
    }
}

pool_core::sync::thread_local! {
    // loom's `thread_local!` has no `const` form, and both back ends share this declaration.
    #[allow(clippy::missing_const_for_thread_local)]
    static DRIVER: Driver = Driver {
        current: Cell::new(std::ptr::null()),
        deferred: RefCell::new(Vec::new()),
    };
    static THREAD_ID: u64 = pool_core::sync::next_unique_id();
}

/// Runs a job of `run` that holds a token (`share`), unless this thread is already driving `run` (an
/// executor that runs jobs inline), in which case the driver picks it up after its node.
// Inlined into `NodeJob::start`: out of line (as the compiler chose once `Work` was added) it
// cost 14 instructions per job.
#[inline(always)]
fn dispatch(run: *const Run, work: Work, kind: Kind, share: Share) {
    // One thread-local access per job decides both: defer it, or make this thread its driver.
    // The share is not moved into the access: if the thread-locals are gone, the closure is
    // dropped uncalled, and a share inside it would be lost (the run would never end). The
    // closure moves it out only when it defers the job, and says so by returning `None`.
    // (An `Option<Share>` taken in the closure did the same, but cost the access its inlining:
    // 36 more instructions per job.)
    let share = ManuallyDrop::new(share);
    let level = DRIVER.try_with(|d| {
        if d.current.get() == run {
            // SAFETY: moved out once: the closure runs at most once, and after it returns
            // `None` nothing reads `share` again.
            let share = unsafe { std::ptr::read(&*share) };
            d.deferred.borrow_mut().push(Deferred {
                run,
                work,
                kind,
                share,
            });
            None
        } else {
            Some(d.enter(run))
        }
    });
    match level {
        // Deferred: the share went with the job.
        Ok(None) => {}
        // SAFETY: the job's token is handed to `drive` (the closure did not move it out).
        Ok(Some(level)) => led(level, || unsafe {
            drive(run, work, kind, ManuallyDrop::into_inner(share))
        }),
        // The thread is shutting down its thread-locals: no deferral, `drive` recurses.
        // SAFETY: as above (the closure never ran).
        Err(_) => unsafe { drive(run, work, kind, ManuallyDrop::into_inner(share)) },
    }
}

impl Driver {
    /// Makes this thread the driver of `run`: the level to go back to afterwards.
    fn enter(&self, run: *const Run) -> Level {
        Level {
            previous: self.current.replace(run),
            base: self.deferred.borrow().len(),
        }
    }
}

/// A driver level: the run this thread drove before, and the deferred jobs that are not ours.
#[derive(Clone, Copy)]
struct Level {
    previous: *const Run,
    base: usize,
}

/// Makes this thread the driver of `run` for `body`, then runs what was deferred meanwhile.
fn lead(run: *const Run, body: impl FnOnce()) {
    match DRIVER.try_with(|d| d.enter(run)) {
        Ok(level) => led(level, body),
        // The thread is shutting down its thread-locals: no deferral, `drive` recurses.
        Err(_) => body(),
    }
}

/// Runs `body` as the driver of the level this thread has just entered, then drives what was
/// deferred to the level and leaves it.
fn led(level: Level, body: impl FnOnce()) {
    let Level { previous, base } = level;
    // On every exit, unwinding included: the jobs deferred to this level hold tokens (dropping
    // them would hang the run), so they are driven; then the thread goes back to the previous
    // driver, so `current` never names a run this thread no longer drives (a freed run's
    // address is reused by the next run, whose jobs would then be deferred and never driven).
    let _restore = OnExit::new(move || {
        // One thread-local access per deferred job, and one to leave: the last look finds
        // nothing left and restores `current` in the same access. An access error ends the
        // loop: the state was destroyed under this level, and its destructor drove what was
        // deferred here (`Driver`'s `Drop`).
        while let Ok(Some(job)) = DRIVER.try_with(|d| {
            let mut deferred = d.deferred.borrow_mut();
            if deferred.len() > base {
                deferred.pop()
            } else {
                d.current.set(previous);
                None
            }
        }) {
            // SAFETY: a deferred job holds its token.
            unsafe { drive(job.run, job.work, job.kind, job.share) };
        }
    });
    body();
}

/// Runs `f` with this thread driving no run: a thread that waits for a run (helping its pool
/// meanwhile) must not defer a job it helps with to a driver level that is blocked in the wait.
fn not_driving<R>(f: impl FnOnce() -> R) -> R {
    let Ok(previous) = DRIVER.try_with(|d| d.current.replace(std::ptr::null())) else {
        return f();
    };
    let _restore = OnExit::new(move || {
        let _ = DRIVER.try_with(|d| d.current.set(previous));
    });
    f()
}

/// Stops the process: the run's own bookkeeping unwound, which no user code can cause (every
/// call into user code is caught), so an invariant is broken. Unwinding on would strand the
/// run's tokens, and with them a caller waiting to release a borrowed executor.
fn abort_broken_run() {
    eprintln!("dag-scheduler: a run's bookkeeping unwound (a bug); aborting");
    std::process::abort();
}

/// Processes the job's work (a node, a chunk of roots, or the launcher's hand-over) and every
/// node it makes ready first, in place; submits the others; then releases the token it was
/// given (`share`).
///
/// # Safety
///
/// `share` is a token of `run` (which keeps `run` alive), handed over by the caller.
unsafe fn drive(run_ptr: *const Run, work: Work, kind: Kind, share: Share) {
    let bookkeeping = OnExit::new(abort_broken_run);
    {
        // SAFETY: we hold a token, so the run side's reference is alive.
        let run = unsafe { &*run_ptr };
        // The end time of the node this thread just ran: the start of the next one run in
        // place (only our bookkeeping lies between), which saves one clock read per node; not
        // for a node with more than one input (`drive_from`).
        let mut last_end = None;
        // The other ready successors of a node, handed to the executor together after its walk
        // (made once per job: `flush` empties it).
        let mut batch = Batch::default();
        if work.index == LAUNCH {
            run.submit_roots(kind);
        } else {
            // Planted bug (loom-tests, `.ci/loom-planted`): a dropped job releases its token
            // before its node is decided.
            #[cfg(loom_broken_dag_drop_release)]
            if matches!(kind, Kind::Dropped) && work.roots == 0 {
                // SAFETY: none: the bug planted.
                unsafe { release_token(run_ptr, share) };
                // SAFETY: none: the bug planted (the run may be gone).
                unsafe { run.drive_from(work.index, kind, &mut last_end, &mut batch) };
                bookkeeping.defuse();
                return;
            }
            // A node, or a chunk's roots one after another, each with what it makes ready in
            // place (a dropped chunk cancels every one of them: the first sets `cancelled`).
            // One call site, and no slice made for a single node: with two call sites (a node,
            // a chunk) the compiler kept `drive_from` out of line, which cost a tree's run 33
            // instructions per node; a one-element slice for a node still cost it 11.
            let first = if work.roots == 0 {
                Some((work.index, &[][..]))
            } else {
                let at = work.index as usize;
                let chunk = run.graph.roots.get(at..at + usize::from(work.roots));
                debug_assert!(chunk.is_some(), "a chunk within the roots");
                chunk
                    .and_then(<[u32]>::split_first)
                    .map(|(&root, rest)| (root, rest))
            };
            if let Some((mut start, mut rest)) = first {
                loop {
                    // Planted bug (loom-tests, `.ci/loom-planted`): a chunk releases its token
                    // before its last root.
                    #[cfg(loom_broken_dag_chunk_release)]
                    if rest.is_empty() && work.roots > 1 {
                        // SAFETY: none: the bug planted.
                        unsafe { release_token(run_ptr, share) };
                        // SAFETY: none: the bug planted (the run may be gone).
                        unsafe { run.drive_from(start, kind, &mut last_end, &mut batch) };
                        bookkeeping.defuse();
                        return;
                    }
                    // SAFETY: `start` is a root, or the node of this job (not the launcher,
                    // handled above: `Work::node` is otherwise made for a root or a successor).
                    unsafe { run.drive_from(start, kind, &mut last_end, &mut batch) };
                    match rest.split_first() {
                        Some((&root, tail)) => (start, rest) = (root, tail),
                        None => break,
                    }
                }
            }
        }
    }
    // SAFETY: we hold the token we release, and touch the run no more.
    unsafe { release_token(run_ptr, share) };
    bookkeeping.defuse();
}

impl Run {
    /// Processes node `index` and every node it makes ready first, in place; hands the others
    /// over. The caller holds a token and is this run's driver on this thread.
    ///
    /// # Safety
    ///
    /// `index` is a node of the run's graph (a root, or the node of a job, which `submit`
    /// made for a root or a successor).
    #[inline]
    unsafe fn drive_from(
        &self,
        mut index: u32,
        mut kind: Kind,
        last_end: &mut Option<u64>,
        batch: &mut Batch,
    ) {
        let run = self;
        let graph: &GraphInner = &run.graph;
        loop {
            // SAFETY: `index` is a node: the caller's contract on the first pass, an entry of
            // `succs` on the next ones (every one is a node: `GraphInner::successors`).
            let poison = unsafe { run.process(index, kind, last_end) };
            kind = Kind::Run;
            let mut next = None;
            // SAFETY: as above.
            for &s in unsafe { graph.successors(index) } {
                // SAFETY: `s` is an entry of `succs`, so a node.
                let (state, in_degree) = unsafe { (run.state(s), graph.in_degree(s)) };
                #[cfg(loom_broken_dag_poison)] // planted bug (loom-tests, `.ci/loom-planted`)
                let ready = in_degree == 1 || state.release();
                if let Some(cause) = poison {
                    // First failure wins; published by the release below (or the submission).
                    state.poison(cause);
                }
                // A node with one dependency is released by that dependency alone: no
                // read-modify-write needed. Otherwise exactly one decrement sees 1 -> 0, and
                // AcqRel makes every dependency's slot visible to the thread that sees it.
                #[cfg(not(loom_broken_dag_poison))]
                let ready = in_degree == 1 || state.release();
                if ready {
                    match next {
                        None => next = Some(s),
                        // The most urgent ready node runs in place: a critical one, if any.
                        Some(n) if !run.is_critical(n) && run.is_critical(s) => {
                            batch.add(run, n);
                            next = Some(s);
                        }
                        Some(_) => batch.add(run, s),
                    }
                }
            }
            batch.flush(run);
            match next {
                Some(s) => {
                    // The last end is this node's start only if its one input is the node this
                    // thread just ran. With more inputs, another may have read its end after
                    // ours and released its count before us: read the start after the release
                    // (which saw theirs), or the report shows a node starting before an input
                    // ended (pool-remote's diamond of remote nodes did, in CI).
                    // SAFETY: `s` is an entry of `succs`, so a node.
                    if last_end.is_some() && unsafe { graph.in_degree(s) } > 1 {
                        *last_end = None;
                    }
                    index = s;
                }
                None => break,
            }
        }
    }
}

/// The index of the launcher job: hands the roots of a run with more than one over from a
/// thread of the executor (`Run::submit_roots`). Never a node's index: a graph has at most
/// `u32::MAX - 1` nodes (indices below `u32::MAX - 1`).
const LAUNCH: u32 = u32::MAX;

/// Ready nodes a driver hands over together (`Executor::execute_batch`: one wake-up check for
/// all of them on a `ThreadPool`), in release order. A fixed array: no allocation per node,
/// and left uninitialised when made (zeroing it cost every job 7 instructions; most jobs add
/// one node or none).
struct Batch {
    /// `nodes[..len]` are initialised.
    nodes: [MaybeUninit<u32>; BATCH],
    len: usize,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            // SAFETY: an array of `MaybeUninit` needs no initialisation. (The repeat expression
            // `[MaybeUninit::uninit(); BATCH]` compiled to zeroing stores.)
            nodes: unsafe { MaybeUninit::<[MaybeUninit<u32>; BATCH]>::uninit().assume_init() },
            len: 0,
        }
    }
}

const BATCH: usize = 16;

/// Roots per job: one each unless a run starts with so many roots that chunks of them still
/// make at least `ROOT_JOBS` jobs; then up to `MAX_ROOT_GRAIN` per job (a quarter of the random
/// DAG's million nodes are roots: a job each cost a box, a hand-over, a steal or pop and a
/// driver's set-up per root, about a third of that shape's run). A chunk runs its roots one
/// after another on one thread, so it is made only where the jobs left outnumber any pool's
/// threads many times over.
fn root_grain(roots: usize) -> usize {
    (roots / ROOT_JOBS).clamp(1, MAX_ROOT_GRAIN)
}

/// See [`root_grain`]. Under loom, 2: a model with four roots runs them as two chunks.
const ROOT_JOBS: usize = if cfg!(loom) { 2 } else { 1024 };
const MAX_ROOT_GRAIN: usize = 16;

impl Batch {
    /// Queues node `s` (ready, not yet submitted); critical nodes go at once, at High priority.
    /// The caller holds a token and is this run's driver on this thread.
    fn add(&mut self, run: &Run, s: u32) {
        if run.is_critical(s) {
            run.submit(s);
            return;
        }
        if self.len == BATCH {
            self.flush(run);
        }
        self.nodes[self.len] = MaybeUninit::new(s);
        self.len += 1;
    }

    fn flush(&mut self, run: &Run) {
        let added = &self.nodes[..self.len];
        // SAFETY: the first `len` entries were written by `add` (`MaybeUninit<u32>` and `u32`
        // have one layout).
        let added = unsafe { &*(added as *const [MaybeUninit<u32>] as *const [u32]) };
        match added {
            [] => {}
            &[s] => run.submit(s),
            nodes => run.submit_batch(nodes),
        }
        self.len = 0;
    }
}

/// Releases one token (`share`); the last one completes the run and drops the run side's
/// reference. Inlined (every job ends with it); the completion is out of line.
///
/// # Safety
///
/// `share` is a token of `run`, and the caller does not use `run` afterwards.
#[inline(always)]
unsafe fn release_token(run: *const Run, share: Share) {
    // SAFETY: the token keeps the run alive until its release below.
    let r = unsafe { &*run };
    // Every release is AcqRel: the last releaser sees every node's slot and timing (each was
    // written before its thread's release), and publishes them through the completion lock.
    // After a release that is not the last, the run may be freed at once: nothing follows.
    if r.tokens.release(share) {
        // SAFETY: this release took the tokens to zero.
        unsafe { complete(run) };
    }
}

/// Fires the run's completion and drops the run side's reference.
///
/// # Safety
///
/// The caller's release took the tokens to zero (`ShareCount::release` returned true), and it
/// does not use `run` afterwards.
#[cold]
#[inline(never)]
unsafe fn complete(run: *const Run) {
    // SAFETY: the run side's reference (below) keeps the run alive until it is dropped.
    unsafe { &*run }.signal_done();
    // SAFETY: `Run::start` leaked one strong reference for the run side; the release that
    // took the tokens to zero owns it, and no job can touch the run any more.
    unsafe { ErasedArc::decrement_strong_count(run) };
}

impl ExecutorRef {
    /// Calls `f` with the executor, quietly: `None` if it panicked, or if the run has let go of
    /// the executor.
    ///
    /// # Safety
    ///
    /// A borrowed executor is still valid: the caller holds a token of the run (a blocking
    /// `run` waits for the last token on every exit path before its borrow ends), or is
    /// `Run::new` (whose caller guarantees it).
    unsafe fn call<R>(&self, f: impl FnOnce(&dyn Executor) -> R) -> Option<R> {
        let exec: &dyn Executor = match self {
            // SAFETY: the caller's contract.
            ExecutorRef::Borrowed(ptr) => unsafe { &**ptr },
            ExecutorRef::Owned(exec) => &**exec,
            ExecutorRef::Released => return None,
        };
        call_quietly(|| f(exec))
    }
}

impl Run {
    /// Creates the run's state, and the starter's token (the count's creator share), which
    /// must go to [`launch`](Self::launch): it starts the run.
    ///
    /// # Safety
    ///
    /// A borrowed executor must stay valid until the run completes: the caller waits for the
    /// completion on every exit path, unwinding included, after launching it.
    pub(crate) unsafe fn new(
        graph: &ErasedArc<GraphInner>,
        exec: ExecutorRef,
        options: &RunOptions,
        premarked: Vec<(u32, Box<str>)>,
    ) -> (ErasedArc<Run>, Share) {
        let inner: &GraphInner = graph;
        let n = inner.hot.len();
        // Reuse the state array a finished run gave back (its slots already emptied): resetting
        // it costs two stores per node, where a fresh one also pays the allocator and, for big
        // graphs, a page fault per 4 KiB.
        let spare = inner.spare.lock().take();
        let nodes: Box<[NodeState]> = match spare {
            Some(nodes) if nodes.len() == n => {
                for (state, hot) in nodes.iter().zip(&inner.hot) {
                    state.reset(hot.in_degree);
                }
                nodes
            }
            _ => inner
                .hot
                .iter()
                .map(|hot| NodeState::new(hot.in_degree))
                .collect(),
        };
        for &(i, _) in &premarked {
            nodes[i as usize].mark_failed(i);
        }
        // Priorities only matter to an executor that orders by them; only then are the longest
        // chains worked out (once per graph).
        // SAFETY: a borrowed executor is valid until the run completes (our contract).
        let honors = unsafe { exec.call(|exec| exec.honors_priority()) }.unwrap_or(false);
        let critical = (options.priority && honors).then(|| inner.critical());
        let clock = match (&options.clock, options.timing) {
            (_, false) => Clock::Off,
            (Some(clock), true) => Clock::Custom(clock.clone()),
            (None, true) => Clock::Real(Instant::now()),
        };
        let times = if matches!(clock, Clock::Off) {
            Box::default()
        } else {
            (0..n)
                .map(|_| UnsafeCell::new(PackedTiming::default()))
                .collect()
        };
        let (tokens, starter) = ShareCount::new();
        let mut run = Run {
            graph: ErasedArc::clone(graph),
            nodes,
            times,
            tokens,
            cancelled: AtomicBool::new(false),
            refused: AtomicBool::new(false),
            unsuccessful: AtomicUsize::new(0),
            critical,
            clock,
            start_time: 0,
            premarked,
            exec,
            done: Mutex::new(Done::default()),
            done_cv: Condvar::new(),
            #[cfg(feature = "tracing")]
            span: tracing::info_span!("dag.run", nodes = n),
        };
        run.start_time = run.now().unwrap_or(0);
        (ErasedArc::new(run), starter)
    }

    /// Submits the roots. Called once, on a run made by [`new`](Self::new), with the starter's
    /// token it returned.
    pub(crate) fn launch(run: &ErasedArc<Run>, starter: Share) {
        // The run side's reference: dropped by the release that takes the tokens to zero.
        std::mem::forget(ErasedArc::clone(run));
        let ptr = ErasedArc::as_ptr(run);
        // The starter holds the first token while it submits, so the run cannot complete
        // under it. It releases it on every exit, unwinding included, so that a blocking
        // `run` that unwinds can still wait for the completion.
        // SAFETY: the starter's token, released once.
        let _starter = OnExit::new(move || unsafe { release_token(ptr, starter) });
        // As the driver, the starter also runs what an inline executor hands back.
        lead(ptr, || match run.graph.roots[..] {
            // Many roots go to a worker in one job that hands them over from there: from a
            // `ThreadPool`'s worker that is a push onto its own deque and one wake-up check per
            // batch, where the starter (not a worker) would take the pool's submission lock and
            // wake a worker for every root. Not with critical-path priority: a critical root
            // goes straight in at High, not behind a launcher queued at Normal.
            [_, _, ..] if run.critical.is_none() => run.submit(LAUNCH),
            ref roots => roots.iter().for_each(|&root| run.submit(root)),
        });
    }

    /// The launcher's job (`LAUNCH`): hands every root over, in batches. If the executor
    /// dropped the launcher unrun (`Kind::Dropped`), the run is cancelled, and `submit` decides
    /// the roots on this thread instead (each `Cancelled`, and their dependents with them).
    /// The caller holds a token and is this run's driver on this thread.
    fn submit_roots(&self, kind: Kind) {
        if kind == Kind::Dropped {
            self.refused.store(true, Ordering::Relaxed);
            self.cancelled.store(true, Ordering::Relaxed);
        }
        let roots = &self.graph.roots;
        let grain = root_grain(roots.len());
        if grain == 1 {
            let mut batch = Batch::default();
            for &root in roots {
                batch.add(self, root);
            }
            batch.flush(self);
            return;
        }
        // Chunks of `grain` roots, `BATCH` chunks per hand-over: the same number of hand-overs
        // (and wake-up checks) per job as single roots, `grain` times fewer jobs.
        let per_batch = BATCH * grain;
        for start in (0..roots.len()).step_by(per_batch) {
            let end = (start + per_batch).min(roots.len());
            let chunks = (start..end).step_by(grain).map(|first| Work {
                // Fit: `first < roots.len() < u32::MAX`, and `grain <= MAX_ROOT_GRAIN`.
                index: first as u32,
                roots: (end - first).min(grain) as u8,
            });
            self.submit_works(chunks);
        }
    }

    /// Whether node `index` is submitted at High priority.
    fn is_critical(&self, index: u32) -> bool {
        self.critical
            .as_ref()
            .is_some_and(|critical| critical.contains(index as usize))
    }

    /// Hands `job` to the executor. The caller holds a token of this run.
    fn hand_over(&self, job: Job, priority: Priority) -> Option<Result<(), Rejected<Job>>> {
        // SAFETY: the caller holds a token.
        unsafe {
            self.exec
                .call(|exec| exec.execute_with_priority(job, priority))
        }
    }

    /// Hands node `index` to the executor with a new token. The caller holds a token and is
    /// this run's driver on this thread.
    fn submit(&self, index: u32) {
        let job = self.job(Work::node(index));
        if self.cancelled.load(Ordering::Relaxed) {
            // Nothing is left to run: the node is decided on this thread (deferred to our driver
            // loop) without a round trip through an executor that may be why the run stopped.
            job.start();
            return;
        }
        let priority = if self.is_critical(index) {
            Priority::High
        } else {
            Priority::Normal
        };
        let job: Job = Box::new(move || job.start());
        self.settle_hand_over(self.hand_over(job, priority));
    }

    /// What a hand-over to the executor (`None`: it panicked) leaves this run to do.
    #[inline(always)]
    fn settle_hand_over(&self, handed: Option<Result<(), Rejected<Job>>>) {
        match handed {
            Some(Ok(())) => {}
            Some(Err(Rejected(refused))) => {
                self.refused.store(true, Ordering::Relaxed);
                // Ours, it cancels the node when dropped (NodeJob's Drop, deferred to our driver
                // loop). A hostile executor may hand back another job: dropped quietly too.
                drop_quietly(refused);
            }
            None => {
                // The executor panicked. It dropped the job (its Drop cancelled the node), kept
                // it (it runs or is dropped later, and releases its token then) or ran it: in
                // every case the job's token is accounted for. Trust it with nothing more.
                self.refused.store(true, Ordering::Relaxed);
                self.cancelled.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Hands nodes `indices` (none critical) to the executor together, each with a new token.
    /// The caller holds a token and is this run's driver on this thread.
    fn submit_batch(&self, indices: &[u32]) {
        self.submit_works(indices.iter().map(|&index| Work::node(index)));
    }

    /// A job for `work`, holding a new token. The caller holds a token.
    #[inline(always)]
    fn job(&self, work: Work) -> NodeJob {
        NodeJob {
            run: self as *const Run,
            work,
            armed: true,
            // The caller's token keeps the count above zero. The share is in this thread's
            // slot: a job this thread runs itself releases it on this thread's line. The job
            // that releases it starts after this point, through the executor's own
            // synchronisation (or on this thread).
            share: ManuallyDrop::new(self.tokens.add()),
        }
    }

    /// Hands jobs for `works` (none critical) to the executor together, each with a new token.
    /// The caller holds a token and is this run's driver on this thread.
    fn submit_works(&self, works: impl Iterator<Item = Work>) {
        if self.cancelled.load(Ordering::Relaxed) {
            // As in `submit`: decided here, deferred to our driver loop.
            works.for_each(|work| self.job(work).start());
            return;
        }
        // Each job takes its token as the executor pulls it from the iterator: one add in this
        // thread's slot (an uncontended read-modify-write on its own line) per job, where one
        // `fetch_add(count)` on the shared line did for the whole batch.
        let mut jobs = works.map(|work| {
            let job = self.job(work);
            Box::new(move || job.start()) as Job
        });
        // SAFETY: the caller holds a token.
        let handed = unsafe {
            self.exec
                .call(|exec| exec.execute_batch(&mut jobs, Priority::Normal))
        };
        // Panicked (`None`): the jobs it took are handed out, kept or dropped, as in `submit`.
        self.settle_hand_over(handed);
        // Every job not taken (after a refusal or a panic, or left by an executor that stopped
        // early) holds a token too: dropped, it cancels its node, and the run with it.
        jobs.for_each(drop_quietly);
    }

    /// Decides and records node `index`'s outcome, running it if it should run. Returns the
    /// failed node that poisons its dependents, if any.
    ///
    /// # Safety
    ///
    /// `index` is a node of the run's graph.
    #[inline(always)]
    unsafe fn process(&self, index: u32, kind: Kind, last_end: &mut Option<u64>) -> Option<u32> {
        // SAFETY: the caller's contract.
        let state = unsafe { self.state(index) };
        let cause = state.blocked_by();
        // The common case first, in one test: a job the executor started (or a node run in
        // place), no poison, no cancel. It runs, and its output goes straight to the slot.
        if kind == Kind::Run && cause == NONE && !self.cancelled.load(Ordering::Relaxed) {
            match self.execute(index, last_end) {
                // SAFETY: only this thread writes this slot, once (it took the counter to
                // zero, or the node is a root it was handed), and nobody reads it before the
                // releases that follow.
                Ok(output) => unsafe { state.put_output(output) },
                Err(message) => return self.settle(index, Decision::Failed(message)),
            }
            return None;
        }
        self.process_unusual(index, kind, cause, last_end)
    }

    /// [`process`](Self::process) for a dropped job, a cancelled run, a poisoned or
    /// premarked node: out of line, so the common path stays short.
    #[inline(never)]
    fn process_unusual(
        &self,
        index: u32,
        kind: Kind,
        cause: u32,
        last_end: &mut Option<u64>,
    ) -> Option<u32> {
        let hot = &self.graph.hot[index as usize];
        let decision = if kind == Kind::Dropped {
            // The executor will not run our jobs: cancel the rest of the run.
            self.refused.store(true, Ordering::Relaxed);
            self.cancelled.store(true, Ordering::Relaxed);
            Decision::Cancelled
        } else if self.cancelled.load(Ordering::Relaxed) {
            Decision::Cancelled
        } else if cause == index {
            Decision::Failed(self.premark_message(index))
        } else if cause != NONE && !hot.run_even_if_failed {
            Decision::Skipped
        } else {
            match self.execute(index, last_end) {
                Ok(output) => Decision::Output(output),
                Err(message) => Decision::Failed(message),
            }
        };
        let poison = match &decision {
            Decision::Output(_) => None,
            Decision::Failed(_) => Some(index),
            Decision::Skipped => Some(cause),
            Decision::Cancelled => None,
        };
        if matches!(decision, Decision::Output(_)) {
            // SAFETY: as in `process`: this thread alone writes this slot, once, before its
            // releases.
            unsafe { self.nodes[index as usize].decide(decision) };
            return poison;
        }
        self.settle(index, decision);
        poison
    }

    /// Records an outcome that is not an output (failed, skipped, cancelled); returns the
    /// poison of a failure (the node itself).
    #[cold]
    fn settle(&self, index: u32, decision: Decision) -> Option<u32> {
        let poison = matches!(decision, Decision::Failed(_)).then_some(index);
        // Relaxed: read only by a report, after the completion (the tokens' `AcqRel` and the
        // `done` lock order this before it).
        self.unsuccessful.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as in `process`: this thread alone writes this slot, once, before its
        // releases.
        unsafe { self.nodes[index as usize].decide(decision) };
        poison
    }

    /// Node `index`'s state in this run, unchecked (the hot loop).
    ///
    /// # Safety
    ///
    /// `index` is a node of the run's graph (`nodes` has one state per node: `Run::new`).
    #[inline(always)]
    unsafe fn state(&self, index: u32) -> &NodeState {
        debug_assert!((index as usize) < self.nodes.len());
        // SAFETY: the caller's contract.
        unsafe { self.nodes.get_unchecked(index as usize) }
    }

    /// Runs node `index`'s closure (timed if the run is): its output, or the failure message.
    #[inline(always)]
    fn execute(&self, index: u32, last_end: &mut Option<u64>) -> Result<Output, Box<str>> {
        let graph: &GraphInner = &self.graph;
        let hot = &graph.hot[index as usize];
        let cx = Context::new(&graph.topology, &self.nodes, &self.cancelled, index);
        #[cfg(feature = "tracing")]
        let _node =
            tracing::info_span!(parent: &self.span, "dag.node", node = %graph.name(index as usize))
                .entered();
        let start = last_end.take().or_else(|| self.now());
        // The payload of a panic is dropped quietly: its own `Drop` may panic too.
        let result = catch_panic(|| (hot.run)(&cx));
        if let Some(start) = start {
            self.record_time(index, start, last_end);
        }
        match result {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(message)) => Err(message.into()),
            Err(message) => Err(format!("panicked: {message}").into()),
        }
    }

    /// Notes node `index`'s start and end (now) on this thread; the end is the next in-place
    /// node's start.
    #[inline(never)]
    fn record_time(&self, index: u32, start: u64, last_end: &mut Option<u64>) {
        let end = self.now().unwrap_or(start);
        *last_end = Some(end);
        let thread = THREAD_ID.try_with(|id| *id).unwrap_or(0);
        // SAFETY: as for the slot: this thread alone writes this node's timing, once.
        self.times[index as usize].with_mut(|p| unsafe {
            *p = PackedTiming::new(start, end, thread);
        });
    }

    fn premark_message(&self, index: u32) -> Box<str> {
        self.premarked
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    /// Nanoseconds on the run's clock, if timing is on. Inlined: an untimed run (the default of
    /// a benchmark, and the common case for repeated runs) pays one compare per node for it.
    #[inline]
    fn now(&self) -> Option<u64> {
        match &self.clock {
            Clock::Off => None,
            _ => self.read_clock(),
        }
    }

    fn read_clock(&self) -> Option<u64> {
        match &self.clock {
            Clock::Off => None,
            Clock::Real(origin) => Some(origin.elapsed().as_nanos() as u64),
            // A panicking user clock must not take the worker down: it reads as zero.
            Clock::Custom(clock) => Some(call_quietly(|| clock().as_nanos() as u64).unwrap_or(0)),
        }
    }

    pub(crate) fn start_time(&self) -> u64 {
        self.start_time
    }

    pub(crate) fn is_timed(&self) -> bool {
        !matches!(self.clock, Clock::Off)
    }

    fn signal_done(&self) {
        let elapsed = self
            .now()
            .map(|end| Duration::from_nanos(end.saturating_sub(self.start_time)));
        let waker = {
            let mut done = self.done.lock();
            done.finished = true;
            done.elapsed = elapsed;
            done.waker.take()
        };
        self.done_cv.notify_all();
        if let Some(waker) = waker {
            // A user's waker must not take a worker down.
            wake_quietly(waker);
        }
    }

    /// The outcome slot of node `i`.
    ///
    /// # Safety
    ///
    /// The caller has acquired the slot's write (it depends on `i` and its counter reached
    /// zero, or the run has completed).
    pub(crate) unsafe fn slot(&self, i: usize) -> Slot<'_> {
        // SAFETY: the caller's contract.
        unsafe { self.nodes[i].slot() }
    }

    /// # Safety
    ///
    /// The run has completed.
    pub(crate) unsafe fn timing(&self, i: usize) -> Option<Timing> {
        let cell = self.times.get(i)?;
        // SAFETY: the caller's contract: all writes happened before completion.
        cell.with(|p| unsafe { *p }).unpack()
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.done.lock().finished
    }

    /// Cancels the run unless it has finished; returns whether it was still going.
    pub(crate) fn cancel(&self) -> bool {
        let done = self.done.lock();
        if done.finished {
            return false;
        }
        self.cancelled.store(true, Ordering::Relaxed);
        true
    }

    /// Blocks until the run has finished or `deadline` passed; returns whether it finished.
    ///
    /// On a worker of a [`pool_core::ThreadPool`], runs the pool's queued tasks while the run
    /// is not finished (they may be this run's nodes, or what they wait for), and blocks only
    /// once the pool has nothing queued.
    pub(crate) fn wait_finished(&self, deadline: Option<Instant>) -> bool {
        not_driving(|| {
            while !self.is_finished()
                && deadline.is_none_or(|deadline| Instant::now() < deadline)
                && pool_core::yield_now() == Some(Yield::Executed)
            {}
        });
        let mut done = self.done.lock();
        while !done.finished {
            let (guard, timed_out) = self.done_cv.wait_deadline(done, deadline);
            if timed_out && !guard.finished {
                return false;
            }
            done = guard;
        }
        true
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        // The last reference may be dropped on a worker (a detached run) or by the caller (a
        // report): every user value in the run (outputs, a waker, a clock, an owned executor)
        // is dropped quietly, one at a time, so a panicking `Drop` reaches neither.
        // Drop this run's outputs now, and give the emptied state array to the graph's next
        // run (see `Run::new`). Only one spare is kept, so concurrent runs allocate their own.
        for state in self.nodes.iter_mut() {
            // Outputs, and the failure messages beside them (ours, but dropped the same way).
            if let Some(output) = state.take() {
                drop_quietly(output);
            }
        }
        drop_quietly(self.done.lock().waker.take());
        drop_quietly(std::mem::replace(&mut self.clock, Clock::Off));
        drop_quietly(std::mem::replace(&mut self.exec, ExecutorRef::Released));
        let nodes = std::mem::take(&mut self.nodes);
        let mut spare = self.graph.spare.lock();
        if spare.is_none() && !nodes.is_empty() {
            *spare = Some(nodes);
        }
    }
}
