//! One run of a graph: the join counters, the in-place successor, the token count that fires
//! completion once, and cancellation. The protocol is described in `src/README.md`.
//!
//! This file holds the run's data (`Run`, the executor it submits to, and the types its
//! protocol passes around), its start (`new`, `launch`), its clock, and what the report and the
//! handle ask of it (waiting, cancelling, the slots). The protocol's steps are in the files
//! declared below.

// The protocol, bottom to top: each file imports only from the files declared before it and from
// this one. Its recursion (a driver hands jobs over, which an inline executor starts at once)
// goes through methods of this file's types, not through imports. Blank lines keep rustfmt from
// sorting the declarations.
//
// A token's release, and the completion the last one fires:
mod tokens;

// Ready nodes handed over together; the roots, their launcher and chunks:
mod batch;

// The thread-local driver stack, and what a job's driver does:
mod driver;

// A node processed, and its successors' join counters released (the in-place successor):
mod join;

// Jobs handed to the executor, one token each, and what a refusal leaves to do:
mod submit;

use std::cell::{Cell, RefCell};
use std::mem::{ManuallyDrop, MaybeUninit};
use std::task::Waker;
use std::time::{Duration, Instant};

use pool_core::sync::{
    AtomicBool, AtomicUsize, Condvar, ErasedArc, Mutex, Ordering, Share, ShareCount, UnsafeCell,
};
use pool_core::{call_quietly, drop_quietly, OnExit};
use pool_core::{Executor, Yield};

use self::batch::LAUNCH;
use self::driver::Deferred;
use self::tokens::release_token;
use crate::inner::{Critical, GraphInner};
use crate::options::{ClockFn, RunOptions};
use crate::state::{NodeState, PackedTiming, Slot, Timing};

/// The executor a run submits to.
pub(crate) enum ExecutorRef {
    /// Borrowed by a blocking `run`, which returns (or unwinds) only after the last token is
    /// released.
    Borrowed(*const (dyn Executor + 'static)),
    Owned(Box<dyn Executor>),
    /// Only while the run is dropped (the owned executor is dropped quietly).
    Released,
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

// The types with methods on the hot path are defined here, and the protocol's files give them
// methods or associated functions (`Driver::drive`, `Run::complete`) rather than free functions:
// rustc puts a function in the codegen unit of the module that defines it (a method, in that of
// its type's module), so the whole protocol stays in one codegen unit as when it was one file,
// and the compiler inlines across it as it did when the instruction counts in these comments were
// measured. (Split into modules of their own, `led` left `NodeJob::start` and `Batch::add` left
// `drive`: a call per job and per ready node.) `#[inline(always)]` functions (`dispatch`,
// `release_token`) are copied into each caller's unit, and types without methods (`Deferred`,
// `Level`) have no code to place: they stay in their files.

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

/// Ready nodes a driver hands over together (`Executor::execute_batch`: one wake-up check for
/// all of them on a `ThreadPool`), in release order. A fixed array: no allocation per node,
/// and left uninitialised when made (zeroing it cost every job 7 instructions; most jobs add
/// one node or none).
struct Batch {
    /// `nodes[..len]` are initialised.
    nodes: [MaybeUninit<u32>; BATCH],
    len: usize,
}

const BATCH: usize = 16;

struct Driver {
    /// The run this thread is driving, if any.
    current: Cell<*const Run>,
    /// Jobs of `current` the executor started inline (or dropped) while we were driving:
    /// run after the current node instead of recursing, so an inline executor runs a 1M-node
    /// graph in constant stack.
    deferred: RefCell<Vec<Deferred>>,
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
        Driver::lead(ptr, || match run.graph.roots[..] {
            // Many roots go to a worker in one job that hands them over from there: from a
            // `ThreadPool`'s worker that is a push onto its own deque and one wake-up check per
            // batch, where the starter (not a worker) would take the pool's submission lock and
            // wake a worker for every root. Not with critical-path priority: a critical root
            // goes straight in at High, not behind a launcher queued at Normal.
            [_, _, ..] if run.critical.is_none() => run.submit(LAUNCH),
            ref roots => roots.iter().for_each(|&root| run.submit(root)),
        });
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
        Driver::not_driving(|| {
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
