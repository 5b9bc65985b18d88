//! What the controller sees on one tick: [`Snapshot`], and the [`Signals`] trait that takes one.

use std::fmt;
use std::time::Duration;

use pool_core::ThreadPool;

/// Memory as the tighter of the host and the cgroup sees it.
///
/// # Examples
///
/// ```
/// use policy_adaptive::Memory;
///
/// let memory = Memory { available: 1 << 30, limit: 4 << 30 };
/// assert_eq!(memory.available_fraction(), 0.25);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    /// Bytes that can still be allocated without swapping.
    pub available: u64,
    /// Bytes in total (the host's memory, or the cgroup limit if lower).
    pub limit: u64,
}

impl Memory {
    /// `available / limit`, 1.0 when the limit is unknown (zero).
    pub fn available_fraction(&self) -> f64 {
        if self.limit == 0 {
            1.0
        } else {
            self.available as f64 / self.limit as f64
        }
    }
}

/// Busy workers' states read at one sample (a `stat` re-read each): how many were runnable
/// (on a CPU, or queued for one) and how many blocked (asleep in the kernel), at that instant.
///
/// # Examples
///
/// ```
/// use policy_adaptive::WorkerStates;
///
/// // Eight busy workers read: seven on a CPU or queued for one, one asleep.
/// let states = WorkerStates { runnable: 7, blocked: 1 };
/// assert_eq!(states.read(), 8);
/// assert!(states.mostly_runnable());
/// // Four read: one on a CPU, three asleep.
/// let states = WorkerStates { runnable: 1, blocked: 3 };
/// assert!(states.mostly_blocked() && !states.mostly_runnable());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerStates {
    /// Busy workers on a CPU or in a run queue.
    pub runnable: u32,
    /// Busy workers asleep in the kernel (I/O, a sleep, a lock).
    pub blocked: u32,
}

impl WorkerStates {
    /// How many states were read.
    pub fn read(&self) -> u32 {
        self.runnable.saturating_add(self.blocked)
    }

    /// Enough states to say (`MOSTLY_RUNNABLE_READ` = 3 or more), under a quarter of them
    /// blocked. Busy workers that block a share `p` of their busy time are found blocked about
    /// `p` of the time, so workers blocked 4/5 of it (W3's tasks: 1 ms of CPU, then 4 ms asleep)
    /// read this way by chance with 3 states about one time in 125, with 8 states about one
    /// in 12,000; CPU-bound workers, never blocked, read this way every time.
    pub fn mostly_runnable(&self) -> bool {
        self.read() >= MOSTLY_RUNNABLE_READ && u64::from(self.blocked) * 4 < u64::from(self.read())
    }

    /// Enough states to say (`MOSTLY_RUNNABLE_READ` = 3 or more), at least three quarters of
    /// them blocked. CPU-bound workers, never asleep in a task, never read this way; workers
    /// blocked 4/5 of their busy time (W3's) do about 8 times in 10 with 4 states, and workers
    /// blocked a third of it about once in 9 with 4 states, once in 50 with 8.
    pub fn mostly_blocked(&self) -> bool {
        self.read() >= MOSTLY_RUNNABLE_READ
            && u64::from(self.blocked) * 4 >= u64::from(self.read()) * 3
    }

    /// Enough states to say (`MOSTLY_RUNNABLE_READ` = 3 or more), at least half of them
    /// blocked: enough for rule 4's second look, which is one sample and judges again.
    pub(crate) fn half_blocked(&self) -> bool {
        self.read() >= MOSTLY_RUNNABLE_READ && u64::from(self.blocked) * 2 >= u64::from(self.read())
    }

    /// Counts one worker's state; one that could not be read counts in neither.
    pub(crate) fn count(&mut self, state: Option<crate::proc::ThreadState>) {
        match state {
            Some(crate::proc::ThreadState::Runnable) => self.runnable += 1,
            Some(crate::proc::ThreadState::Blocked) => self.blocked += 1,
            None => {}
        }
    }

    /// `Some` when any state was read.
    pub(crate) fn if_any(self) -> Option<Self> {
        (self.read() > 0).then_some(self)
    }
}

/// The fewest states [`WorkerStates::mostly_runnable`] and [`WorkerStates::mostly_blocked`]
/// decide on.
pub(crate) const MOSTLY_RUNNABLE_READ: u32 = 3;

/// The most threads, cores or busy workers a snapshot's counts are read as (`Snapshot::bounded`):
/// a million, more than any machine runs, and small enough that a count times the rules'
/// largest factor stays far inside even a 32-bit `usize`.
const SIZE_BOUND: usize = 1 << 20;

/// The most queued or completed tasks a snapshot's counts are read as: about a billion (a
/// backlog that large reads as huge either way).
const TASK_BOUND: u64 = 1 << 30;

/// The signals of one tick. The decision is a pure function of this and the controller's state,
/// so tests script sequences of snapshots.
///
/// # Examples
///
/// ```
/// use policy_adaptive::Snapshot;
/// use std::time::Duration;
///
/// // Four workers, all busy but barely using the CPU: they are blocked (I/O), with work queued.
/// let snapshot = Snapshot {
///     threads: 4,
///     target: 4,
///     queued: 20,
///     running: 4,
///     completed: 80,
///     blocked: Some(3.9),
///     worker_cpu: Some(0.1),
///     ..Snapshot::new(Duration::from_millis(100), 2)
/// };
/// assert_eq!(snapshot.throughput(), 800.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Snapshot {
    /// Time since the previous tick.
    pub elapsed: Duration,
    /// Cores this process may use (`available_parallelism`).
    pub cores: usize,
    /// Live worker threads.
    pub threads: usize,
    /// The worker count last asked for (`ThreadPool::threads`); the decision moves from here.
    pub target: usize,
    /// Tasks waiting to start.
    pub queued: u64,
    /// Workers running a task (busy).
    pub running: u64,
    /// Tasks finished (normally or by panicking) since the previous tick.
    pub completed: u64,
    /// Busy workers asleep in the kernel (blocked in I/O, a sleep, a lock, a child task) rather
    /// than running or waiting for a CPU. `None` where the platform does not give per-thread
    /// states.
    pub blocked: Option<f64>,
    /// Cores' worth of CPU the workers used during the interval. `None` where unknown.
    pub worker_cpu: Option<f64>,
    /// Cores' worth of CPU the workers wanted during the interval: time on a CPU plus time
    /// runnable in a run queue. Above the core count, the workers compete for the cores (with
    /// each other or with other processes). `None` where unknown.
    pub worker_demand: Option<f64>,
    /// Memory, if known.
    pub memory: Option<Memory>,
    /// The host's CPU use, 0.0 to 1.0, other processes included. A guard only, never a reason to
    /// shrink.
    pub host_cpu: Option<f64>,
    /// Cores' worth of CPU this whole process used during the interval (the workers and every
    /// other thread). Fresh every tick, where `worker_cpu` and the blocked split may span
    /// longer (up to seconds in a large pool); `None` where unknown.
    pub process_cpu: Option<f64>,
    /// How long the oldest queued task has waited, at least (zero with nothing queued): pool-core's
    /// [`OldestWait`](pool_core::OldestWait), which dates the queue by the counters at each
    /// tick, so it is exact to within a tick on the FIFO path and a lower bound under any other
    /// order. Reported for observers ([`AdaptivePool::last_decision`](crate::AdaptivePool::last_decision),
    /// the scaling history); no rule reads it.
    pub oldest_wait: Duration,
    /// Busy workers' states read at this sample (up to 8), fresh where `blocked` spans the
    /// split's 250 ms. `None` when none were read: the platform has no per-thread states, or
    /// the sample needed no split (no backlog and the cores not full; a still pool; light
    /// workers, or no more busy workers than cores, on a host with a CPU free), or too few
    /// workers were busy for the states to count (under 3, and no more than the cores).
    pub states: Option<WorkerStates>,
}

impl Snapshot {
    /// An empty pool's snapshot: no threads, no work, no optional signals.
    pub fn new(elapsed: Duration, cores: usize) -> Snapshot {
        Snapshot {
            elapsed,
            cores,
            threads: 0,
            target: 0,
            queued: 0,
            running: 0,
            completed: 0,
            blocked: None,
            worker_cpu: None,
            worker_demand: None,
            memory: None,
            host_cpu: None,
            process_cpu: None,
            oldest_wait: Duration::ZERO,
            states: None,
        }
    }

    /// This snapshot with every count read as at most what a machine can hold
    /// (`SIZE_BOUND` threads, cores and busy workers; `TASK_BOUND` queued and completed tasks):
    /// what [`decide`](crate::decide) and [`grows_on_demand`](crate::grows_on_demand) read, so
    /// that a custom source's nonsense (`u64::MAX` tasks running) cannot overflow their
    /// arithmetic (a count times a small factor) and panic. No real pool comes near either
    /// bound, so no real snapshot changes.
    pub(crate) fn bounded(&self) -> Snapshot {
        Snapshot {
            cores: self.cores.min(SIZE_BOUND),
            threads: self.threads.min(SIZE_BOUND),
            target: self.target.min(SIZE_BOUND),
            running: self.running.min(SIZE_BOUND as u64),
            queued: self.queued.min(TASK_BOUND),
            completed: self.completed.min(TASK_BOUND),
            ..*self
        }
    }

    /// Completions per second over the interval (0 for an empty interval).
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.completed as f64 / secs
        } else {
            0.0
        }
    }
}

impl fmt::Display for Snapshot {
    /// One compact line, as in the decision-trace tables.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "thr {:>3} q {:>4} busy {:>3} done {:>4}",
            self.threads, self.queued, self.running, self.completed
        )?;
        match self.blocked {
            Some(b) => write!(f, " blk {b:>5.1}")?,
            None => write!(f, " blk     -")?,
        }
        match self.worker_cpu {
            Some(c) => write!(f, " cpu {c:>4.1}/{}", self.cores)?,
            None => write!(f, " cpu    -/{}", self.cores)?,
        }
        match self.worker_demand {
            Some(d) => write!(f, " want {d:>4.1}")?,
            None => write!(f, " want    -")?,
        }
        match self.memory {
            Some(m) => write!(f, " mem {:>3.0}%", m.available_fraction() * 100.0)?,
            None => write!(f, " mem    -")?,
        }
        match self.host_cpu {
            Some(h) => write!(f, " host {:>3.0}%", h * 100.0)?,
            None => write!(f, " host    -")?,
        }
        // Only when known, so that the traces written before the field kept their lines.
        if let Some(p) = self.process_cpu {
            write!(f, " proc {p:>3.1}")?;
        }
        // Likewise only when some task has waited.
        if !self.oldest_wait.is_zero() {
            write!(f, " wait {:.0?}", self.oldest_wait)?;
        }
        // Likewise only when read.
        if let Some(states) = self.states {
            write!(f, " now {}r/{}b", states.runnable, states.blocked)?;
        }
        Ok(())
    }
}

/// Where snapshots come from: [`PoolSignals`](crate::PoolSignals) in production, a script in
/// tests.
///
/// Called on the controller thread once per tick. A panic in `sample` is caught: the controller
/// skips that tick and keeps running (the panic's payload, and the source itself when the
/// controller exits, are dropped quietly: a `Drop` that panics changes nothing). A sample that
/// blocks holds the controller: [`AdaptivePool::shutdown`](crate::AdaptivePool::shutdown) waits
/// for it, as for a running task. Nonsense figures (counts at `u64::MAX`, CPU figures that
/// are NaN, infinite or negative, an `elapsed` of `Duration::MAX`) decide nothing useful, but they
/// never panic the controller nor take the worker count outside `min..=max`: counts past 2^20
/// threads or 2^30 tasks read as those bounds (`tests/hostile.rs` feeds a pool such snapshots).
///
/// # Examples
///
/// A source that reports only the pool's own counters:
///
/// ```
/// use policy_adaptive::{Signals, Snapshot};
/// use pool_core::ThreadPool;
/// use std::time::Duration;
///
/// struct CountersOnly {
///     finished: u64,
/// }
///
/// impl Signals for CountersOnly {
///     fn sample(&mut self, pool: &ThreadPool, elapsed: Duration) -> Snapshot {
///         let stats = pool.stats();
///         let finished = stats.completed + stats.panicked;
///         let completed = finished - std::mem::replace(&mut self.finished, finished);
///         Snapshot {
///             threads: stats.live_threads,
///             target: pool.threads(),
///             queued: stats.queued,
///             running: stats.running,
///             completed,
///             ..Snapshot::new(elapsed, 2)
///         }
///     }
/// }
///
/// let pool = ThreadPool::new(1).unwrap();
/// pool.submit(|| ()).unwrap().join().unwrap();
/// // The worker counts the completion just after handing the result over: wait for it to park.
/// assert!(pool.wait_idle(Duration::from_secs(10)));
/// let snapshot = CountersOnly { finished: 0 }.sample(&pool, Duration::from_millis(100));
/// assert_eq!(snapshot.completed, 1);
/// ```
pub trait Signals: Send {
    /// The signals now; `elapsed` is the time since the previous call.
    fn sample(&mut self, pool: &ThreadPool, elapsed: Duration) -> Snapshot;

    /// The process's CPU since the last [`sample`](Self::sample), in cores, without moving
    /// the next sample's baseline; `None` (the default) when the source has no such figure.
    ///
    /// The controller reads it midway between an early look that held a backlog and the next
    /// regular tick, when that tick's `Snapshot::process_cpu` filled 3/4 of the cores, and
    /// samples there only if the process's CPU fell by a quarter from it: a load that turned
    /// to blocking is then grown for up to half an interval sooner. Without the figure there
    /// is no midway look.
    fn process_cpu_since_sample(&mut self) -> Option<f64> {
        None
    }
}

impl<S: Signals + ?Sized> Signals for Box<S> {
    fn sample(&mut self, pool: &ThreadPool, elapsed: Duration) -> Snapshot {
        (**self).sample(pool, elapsed)
    }

    fn process_cpu_since_sample(&mut self) -> Option<f64> {
        (**self).process_cpu_since_sample()
    }
}
