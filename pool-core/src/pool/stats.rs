//! Statistics without a shared counter contended on every task.
//!
//! Each worker owns a cache-padded block of counters that only it writes (so an increment is a
//! plain load and store, no locked instruction, and no cache line moves between cores). Threads
//! outside the pool write into one of a few striped blocks chosen per thread. A read sums them all,
//! plus the totals of workers that have retired.
//!
//! A read is not one atomic snapshot, yet every snapshot balances: see [`Totals::read`].

use std::fmt;

use crate::sync::{AtomicU64, Ordering};

/// One block of event counters: eight `u64`s, one 64-byte cache line (the blocks are
/// cache-padded, so each starts a line).
///
/// The controller of `policy-adaptive` reads every worker's block on every tick
/// (`stats_with_workers`); at 256 workers that walk was 19-22 µs, two lines a worker while the
/// block had a ninth field (the worker's start time, written once: now in the registry's
/// `WorkerEntry`, read under the registry lock the walk holds anyway). The task path writes the
/// same fields as before, so it pays nothing for the layout.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) submitted: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) started: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) panicked: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    /// Worker blocks only, for [`WorkerStats`]: how long the worker has been parked in all, and
    /// when its current park began (0: not parked; [`LEFT`]: on its way out). Nanoseconds after
    /// the process epoch, written only by the worker, at park and unpark (never per task) and
    /// once as it leaves.
    pub(crate) parked_total: AtomicU64,
    pub(crate) parked_since: AtomicU64,
}

/// `Counters::parked_since` of a worker that has left its loop (retired, exited at shutdown, or
/// lost it to a panic) and is on its way out: no longer one of the pool's workers for
/// [`WorkerStats`], though its block stays registered, and in the totals, until it deregisters.
///
/// Why a mark before the deregistration: a leaving worker may wait long for the registry's lock.
/// Beside 192 CPU-bound threads on 2 cores, trimming them (`policy-adaptive`'s `large_switch`
/// example), 448 deregistrations waited 142 s in all, 316 ms each on average (every hand-over of
/// the lock waits for its next holder to get a CPU). Listed meanwhile as workers not parked,
/// they read as busy workers asleep, and the controller counted them as blocked and held the
/// trim that would have ended the crowd.
pub(crate) const LEFT: u64 = u64::MAX;

// One cache line per block (loom's atomics are larger: the check is for the real build).
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<Counters>() <= 64);

/// Increments a counter that only the calling thread ever writes.
///
/// A plain load and store: no other thread writes this counter, so no update can be lost, and
/// readers only need each value to be eventually visible.
///
/// The store is `Release` so that a reader that sees it also sees everything this thread did
/// before (see [`Totals::read`]); on x86 and ARMv8 that is still a plain store.
#[inline]
pub(crate) fn bump_owned(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Release);
}

/// Adds `n` to a counter that only the calling thread ever writes (see [`bump_owned`]).
#[inline]
pub(crate) fn bump_owned_by(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Release);
}

/// Adds to a counter other threads may write too (`Release`, as [`bump_owned`]).
#[inline]
pub(crate) fn add_shared(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Release);
}

/// Plain totals, for summing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) submitted: u64,
    pub(crate) rejected: u64,
    pub(crate) started: u64,
    pub(crate) completed: u64,
    pub(crate) panicked: u64,
    pub(crate) cancelled: u64,
}

impl std::ops::AddAssign for Totals {
    fn add_assign(&mut self, other: Totals) {
        self.submitted += other.submitted;
        self.rejected += other.rejected;
        self.started += other.started;
        self.completed += other.completed;
        self.panicked += other.panicked;
        self.cancelled += other.cancelled;
    }
}

impl Totals {
    /// Sums `base` and `blocks` in two passes over the blocks, reading the counters of a task's
    /// later stages first, so that the snapshot balances even though the counters keep moving
    /// while it is read.
    ///
    /// A task's events happen in order, each after the one before in happens-before terms:
    /// `submitted` (and `rejected`, by the same thread, after it) before its push; the push
    /// before the pop that precedes `started` or `cancelled` (the queues release and acquire);
    /// `started` before `completed` or `panicked`, by the same worker, so in the same block.
    /// Every increment is a `Release` store and every read here an `Acquire` load, so a read
    /// that counts a later event sees, in the reads after it, every earlier event of the same
    /// task. Hence the two passes:
    ///
    /// 1. per block, `completed` and `panicked`, then `started` (a task's start is in the block
    ///    of its completion: reading the block's completions first is enough, no pass of its
    ///    own), and `cancelled`;
    /// 2. per block, `rejected`, then `submitted` (same thread, same block: same argument).
    ///
    /// A task started or cancelled in pass 1 was submitted before it, in whichever block, and
    /// pass 2 reads every block after pass 1. So a later stage can only be under-counted
    /// relative to an earlier one, never the reverse: `completed + panicked <= started` and
    /// `started + cancelled + rejected <= submitted` in every snapshot, the derived `running`
    /// and `queued` are never negative and the identity holds. (It was six passes, one per
    /// counter: each pass a walk over every worker's cache line, a third of the controller's
    /// tick at 256 workers.) Loom model: `loom-tests/tests/stats.rs`.
    pub(crate) fn read<'a>(
        base: Totals,
        blocks: impl Iterator<Item = &'a Counters> + Clone,
    ) -> Totals {
        let mut totals = base;
        for c in blocks.clone() {
            // `--cfg loom_broken_stats_order` (loom-tests checks that a model catches it): reads a
            // block's `started` before its completions, so a task that starts and completes
            // between the two reads counts as completed but not started.
            #[cfg(loom_broken_stats_order)]
            let started = c.started.load(Ordering::Acquire);
            totals.completed += c.completed.load(Ordering::Acquire);
            totals.panicked += c.panicked.load(Ordering::Acquire);
            #[cfg(not(loom_broken_stats_order))]
            let started = c.started.load(Ordering::Acquire);
            totals.started += started;
            totals.cancelled += c.cancelled.load(Ordering::Acquire);
        }
        for c in blocks {
            totals.rejected += c.rejected.load(Ordering::Acquire);
            totals.submitted += c.submitted.load(Ordering::Acquire);
        }
        totals
    }

    /// Folds a retiring worker's block in (read by that worker itself: no race).
    pub(crate) fn add(&mut self, c: &Counters) {
        *self += Totals {
            submitted: c.submitted.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            started: c.started.load(Ordering::Relaxed),
            completed: c.completed.load(Ordering::Relaxed),
            panicked: c.panicked.load(Ordering::Relaxed),
            cancelled: c.cancelled.load(Ordering::Relaxed),
        };
    }
}

/// How one worker has spent its life: a building block for controllers such as
/// `policy-adaptive`, with no `/proc` read and no per-task cost (the worker stamps the clock only
/// when it parks and wakes).
///
/// # Examples
///
/// ```
/// use pool_core::ThreadPool;
///
/// let pool = ThreadPool::new(2).unwrap();
/// pool.submit(|| (0..1000u64).sum::<u64>()).unwrap().join().unwrap();
/// for worker in pool.worker_stats() {
///     assert!(worker.busy <= worker.alive);
///     println!("worker {}: busy {:?} of {:?}", worker.index, worker.busy, worker.alive);
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// The worker's index (as passed to the start/stop hooks).
    pub index: usize,
    /// Time since the worker started.
    pub alive: std::time::Duration,
    /// Of that, time not parked: running tasks or looking for them.
    pub busy: std::time::Duration,
    /// Whether the worker is parked now.
    pub parked: bool,
}

impl WorkerStats {
    /// Reads a worker's block at `now`, for a worker that started at `started_at` (both
    /// nanoseconds after the epoch); `None` once the worker has left ([`LEFT`]).
    pub(crate) fn read(index: usize, started_at: u64, c: &Counters, now: u64) -> Option<Self> {
        let parked_since = c.parked_since.load(Ordering::Relaxed);
        if parked_since == LEFT {
            return None;
        }
        let parked_total = c.parked_total.load(Ordering::Relaxed);
        let alive = now.saturating_sub(started_at);
        let parked_now = if parked_since == 0 {
            0
        } else {
            now.saturating_sub(parked_since)
        };
        let busy = alive.saturating_sub(parked_total + parked_now);
        Some(WorkerStats {
            index,
            alive: std::time::Duration::from_nanos(alive),
            busy: std::time::Duration::from_nanos(busy),
            parked: parked_since != 0,
        })
    }
}

/// A snapshot of a pool's counters.
///
/// The event counters only grow. The books balance in every snapshot, even one read while tasks
/// are being submitted and run: `submitted = completed + cancelled + panicked + rejected + running
/// + queued` ([`is_balanced`](Self::is_balanced)). `queued` and `running` are derived from the
/// event counters, so that identity alone cannot reveal a lost task; what does is the state after
/// [`shutdown`](crate::ThreadPool::shutdown): every worker joined (`threads == 0`) and
/// `running == queued == 0`. A task accepted and never run would stay in `queued`, a worker that
/// died in the middle of a task would stay in `running`.
///
/// A task cancelled through its handle stays in `queued` until the pool discards its entry
/// (when a worker reaches it, or at `cancel_all` / shutdown); it then counts in `cancelled`.
///
/// How long the oldest queued task has waited is not a field: [`OldestWait`](crate::OldestWait)
/// derives it from successive snapshots, so that no task carries a stamp.
///
/// # Examples
///
/// ```
/// use pool_core::ThreadPool;
///
/// let pool = ThreadPool::new(2).unwrap();
/// for i in 0..10 {
///     pool.submit(move || i).unwrap();
/// }
/// pool.shutdown();
/// let stats = pool.stats();
/// assert_eq!(stats.submitted, 10);
/// assert_eq!(stats.completed, 10);
/// assert_eq!(stats.queued + stats.running, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Submissions, accepted or not.
    pub submitted: u64,
    /// Tasks a worker started.
    pub started: u64,
    /// Tasks that returned normally.
    pub completed: u64,
    /// Tasks discarded before they started (handle cancel, `cancel_all`, shutdown, deadline).
    pub cancelled: u64,
    /// Tasks that panicked.
    pub panicked: u64,
    /// Submissions refused because the pool was shut down.
    pub rejected: u64,
    /// Accepted tasks not yet started or discarded.
    pub queued: u64,
    /// Tasks running now.
    pub running: u64,
    /// Worker threads alive now (the target, asked for with `set_threads`, is
    /// [`ThreadPool::threads`](crate::ThreadPool::threads); while a resize is under way the two
    /// differ).
    pub live_threads: usize,
    /// Of those, how many are parked waiting for work.
    pub idle_threads: usize,
    /// Workers that left their loop by a panic. User code cannot cause this (every call of it is
    /// caught), so anything but 0 is a bug in the pool: such a worker leaves the live count, its
    /// deque goes back to the shared queue, and a replacement starts; a task it was running stays
    /// in `running`.
    pub lost_workers: u64,
}

impl PoolStats {
    pub(crate) fn from_totals(t: Totals, threads: usize, idle_threads: usize) -> Self {
        let running = t.started.saturating_sub(t.completed + t.panicked);
        let queued = t
            .submitted
            .saturating_sub(t.rejected + t.started + t.cancelled);
        PoolStats {
            submitted: t.submitted,
            started: t.started,
            completed: t.completed,
            cancelled: t.cancelled,
            panicked: t.panicked,
            rejected: t.rejected,
            queued,
            running,
            live_threads: threads,
            idle_threads,
            lost_workers: 0,
        }
    }

    /// Whether `submitted = completed + cancelled + panicked + rejected + running + queued`.
    pub fn is_balanced(&self) -> bool {
        self.submitted
            == self.completed
                + self.cancelled
                + self.panicked
                + self.rejected
                + self.running
                + self.queued
    }
}

impl fmt::Display for PoolStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "submitted {} = completed {} + cancelled {} + panicked {} + rejected {} + running {} + queued {}; {} live threads ({} idle)",
            self.submitted,
            self.completed,
            self.cancelled,
            self.panicked,
            self.rejected,
            self.running,
            self.queued,
            self.live_threads,
            self.idle_threads
        )?;
        if self.lost_workers > 0 {
            write!(f, "; {} lost workers (a pool bug)", self.lost_workers)?;
        }
        Ok(())
    }
}
