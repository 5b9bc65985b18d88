//! [`PoolSignals`]: the production source of snapshots (pool counters and per-worker busy time
//! from pool-core, the process CPU clock, a bounded `schedstat` sample, memory and host CPU from
//! `sysinfo` with the default `sysinfo` feature).
//!
//! One sample (`sample`, here) reads pool-core's counters, then, unless the pool is still
//! (`still`), splits the workers' busy time: `clocks` (busy time and the CPU clocks' share of
//! it), `split` (which measurement the tick needs, and the three figures from it), `run_queue`
//! (the `schedstat` and state sample behind the split); `host` reads the process's CPU clock,
//! the host's CPU and memory.

mod clocks;
mod host;
mod run_queue;
mod split;
mod still;

use std::fmt;
use std::time::{Duration, Instant};

use pool_core::{OldestWait, ThreadPool, WorkerStats};
#[cfg(feature = "sysinfo")]
use sysinfo::System;

use crate::proc::WorkerThreads;
#[cfg(feature = "sysinfo")]
use crate::proc::{HostMemory, HostStat};
use crate::snapshot::{Memory, Signals, Snapshot, WorkerStates};
use clocks::CpuMark;
use run_queue::{Reading, SchedSample, StateSample};
use split::measured_split;
use still::{steady, Counters, SplitRead, Stillness};

/// The last measured split: `blocked`, `worker_cpu`, `worker_demand`.
type Split3 = (Option<f64>, Option<f64>, Option<f64>);

/// Without `schedstat`, time a busy worker spent off the CPU cannot be split into blocked and
/// waiting for a CPU. While the host's CPU use is below this, there is a CPU free to run a
/// runnable worker, so the time is taken as blocked; at or above it the split is unknown.
const HOST_FREE_BELOW: f64 = 0.9;

/// The real signals of a pool: its counters and its workers' busy time (pool-core, no system
/// call), its busy workers' CPU clocks (one system call each, at most `CPU_SAMPLE` = 8 per
/// tick), a bounded sample of workers' run-queue waits (Linux, only when the host's CPU may be
/// full), and system memory and CPU from `sysinfo` (the `sysinfo` feature, on by default;
/// without it `memory` and `host_cpu` are always `None`).
///
/// - *Worker CPU*: the CPU share of the busy time of the workers busy in the interval, read
///   from their thread CPU clocks (`pthread_getcpuclockid`, recorded by the start hook), times
///   the workers' busy time. Exact up to 8 busy workers; beyond, a round-robin sample of 4 a
///   tick, pooled with the previous tick's 4, stands for all. Threads outside the pool do not count.
/// - *Blocked workers*: the workers' busy (not parked) time over the interval, from
///   [`ThreadPool::stats_with_workers`], minus their CPU time is time a busy worker was off the CPU:
///   blocked (I/O, a sleep, a lock, a child task) or runnable in a run queue. While the host's
///   CPU is below 90% and no more of our workers are busy than cores, a runnable worker finds a
///   CPU, so that time is blocked time; otherwise a
///   sample of `SCHED_SAMPLE` = 2 busy workers' `schedstat` (kept open, re-read 50 ms or more
///   apart, one worker swapped a second at most, once the oldest was read 8 times) gives the
///   share spent in a run queue over the last
///   250 ms, and the rest is blocked. `schedstat` misses the waits still in progress, which
///   pile up when the busy workers outnumber the cores: then 8 busy workers' states at each
///   reading (the 2 and `STATE_SAMPLE` = 6 more) correct it. `blocked` is the blocked share of
///   the busy time times the busy workers now.
/// - *States now* (`Snapshot::states`): those 8 busy workers' states at each sample that
///   measures the split (between the `schedstat` readings too, with no `schedstat` read),
///   from 3 busy workers, or more than the cores (`states_count`).
/// - *Worker demand*: CPU time plus the estimated run-queue time: above the core count, the
///   workers compete for the cores (with each other or with other processes).
/// - *Memory*: the smaller of the host's available memory and the cgroup's free memory, against
///   the smaller of the host total and the cgroup limit.
/// - *Host CPU*: the host's CPU use (`/proc/stat` on Linux, else `sysinfo`'s global CPU use),
///   refreshed once a second; a guard only.
/// - *A still pool*: when nothing finished and the queued, running, live and target counts
///   stayed put for 2 samples, the next samples (at most 3 in a row; while nothing runs or is queued, as long as it stays still) reuse the last measured
///   split (`blocked`, `worker_cpu`, `worker_demand`) without reading a clock or a file.
///   After 3 such samples, the next one checks the split with the process's CPU clock alone:
///   where the last measurement left that figure (within 0.1 core and a quarter), the split is
///   reused again; moved, the sample measures. Every 16th still sample measures.
///
/// The cost of a sample does not grow with the pool beyond reading pool-core's per-worker
/// counters (see [`Config::interval`](crate::Config::interval) for the measured figure).
///
/// # Examples
///
/// ```
/// use policy_adaptive::{PoolSignals, Signals, WorkerThreads};
/// use pool_core::ThreadPool;
/// use std::time::Duration;
///
/// let workers = WorkerThreads::new();
/// let pool = workers
///     .recording(ThreadPool::builder().threads(2))
///     .build()
///     .unwrap();
/// let mut signals = PoolSignals::new(workers);
/// let snapshot = signals.sample(&pool, Duration::from_millis(100));
/// assert_eq!(snapshot.target, 2);
/// assert_eq!(snapshot.queued, 0);
/// ```
pub struct PoolSignals {
    workers: WorkerThreads,
    cores: usize,
    finished: Option<u64>,
    /// Dates the queue by the counters of each sample (`Snapshot::oldest_wait`).
    oldest: OldestWait,
    /// Each live worker's `(index, alive, busy)` at the last sample, in nanoseconds, sorted by
    /// index (as `stats_with_workers` returns them).
    busy: Vec<(usize, u64, u64)>,
    /// The list `busy_time` builds while it reads `busy` when the workers changed; swapped with
    /// it, so that neither allocates once both have grown to the pool's size.
    busy_next: Vec<(usize, u64, u64)>,
    /// The workers' stats of this sample: kept between samples so that, once it has grown to
    /// the pool's size, a tick allocates nothing for it.
    worker_stats: Vec<WorkerStats>,
    /// Positions in `worker_stats` of the busy workers the `schedstat` sample may add,
    /// kept for the same reason.
    picks: Vec<usize>,
    /// Each live worker's CPU clock reading and busy time when its clock was last read, at the
    /// same position as the worker's entry in `busy` (so in `worker_stats` once `busy_time`
    /// has run): a look-up is an index into one contiguous list, not a walk down a tree map's
    /// nodes, which at 256 workers with a few busy cost one look-up per parked worker per
    /// measured tick. Rebuilt with `busy` when the workers change, so a retired worker's mark
    /// goes with its entry.
    marks: Vec<Option<CpuMark>>,
    /// The list `busy_time_changed` builds beside `busy_next`; swapped with `marks`.
    marks_next: Vec<Option<CpuMark>>,
    /// Where the next round-robin CPU clock sample starts among the busy workers.
    cpu_cursor: usize,
    /// The CPU and busy time of the last measured tick's round-robin clocks (`CPU_ROTATE`),
    /// pooled with the next tick's; `None` after a tick that read every busy worker or found
    /// none busy.
    cpu_carry: Option<(Duration, Duration)>,
    /// Thread CPU clocks read (statistics and tests).
    clock_reads: u64,
    /// The sampled workers' open `schedstat` files and their last readings.
    sched: Vec<SchedSample>,
    /// When the sample was last read.
    sched_at: Option<std::time::Instant>,
    /// When a sampled worker last made room for another (`SCHED_ROTATE`).
    rotated_at: Option<std::time::Instant>,
    /// Each recent reading (`SHARE_SPAN`), oldest first.
    readings: std::collections::VecDeque<Reading>,
    /// Where the next round-robin `schedstat` sample starts among the busy workers.
    cursor: usize,
    /// The state sample: more busy workers' open `stat` files (`STATE_SAMPLE`), oldest first.
    states: Vec<StateSample>,
    /// Where its round robin starts among the busy workers, and when it last rotated.
    states_cursor: usize,
    states_rotated_at: Option<Instant>,
    /// The busy workers' states read at this sample (both samples'), for the snapshot.
    states_now: Option<WorkerStates>,
    /// The last run-queue share, when it was measured, and how many workers were busy then.
    last_share: Option<(f64, std::time::Instant, u64)>,
    #[cfg(feature = "sysinfo")]
    system: Option<System>,
    /// `/proc/stat`, kept open (Linux): host CPU at a seventh of sysinfo's cost.
    #[cfg(feature = "sysinfo")]
    host_stat: Option<HostStat>,
    /// `/proc/meminfo` and the cgroup's memory files, kept open (Linux).
    #[cfg(feature = "sysinfo")]
    host_memory: Option<HostMemory>,
    #[cfg(feature = "sysinfo")]
    ticks: u64,
    #[cfg(feature = "sysinfo")]
    next_memory_tick: u64,
    memory: Option<Memory>,
    #[cfg(feature = "sysinfo")]
    last_cpu_refresh: Option<Instant>,
    #[cfg(feature = "sysinfo")]
    cpu_refreshes: u32,
    host_cpu: Option<f64>,
    /// The pool's counters at the last sample, to tell a still pool.
    counters: Option<Counters>,
    /// How long the pool has been still, and the reuses since the last measurement.
    stillness: Stillness,
    /// The last measured split, while it had `blocked` known.
    last_split: Option<Split3>,
    /// The process's CPU clock at its last reading, and when, for `Snapshot::process_cpu`.
    process_clock: Option<(Duration, Instant)>,
    /// Samples that reused the split (statistics and tests), checked ones included.
    reused_samples: u64,
    /// The process's CPU of the last measured sample, in cores: what a check compares with.
    measured_process: Option<f64>,
    /// Samples whose check found the process's CPU steady and reused the split (tests).
    checked_samples: u64,
}

impl PoolSignals {
    /// Signals for the pool whose workers `workers` records.
    pub fn new(workers: WorkerThreads) -> Self {
        PoolSignals {
            workers,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            finished: None,
            oldest: OldestWait::new(),
            busy: Vec::new(),
            busy_next: Vec::new(),
            worker_stats: Vec::new(),
            picks: Vec::new(),
            marks: Vec::new(),
            marks_next: Vec::new(),
            cpu_cursor: 0,
            cpu_carry: None,
            clock_reads: 0,
            sched: Vec::new(),
            sched_at: None,
            rotated_at: None,
            readings: std::collections::VecDeque::new(),
            cursor: 0,
            states: Vec::new(),
            states_cursor: 0,
            states_rotated_at: None,
            states_now: None,
            last_share: None,
            // `System::new` loads nothing. On platforms sysinfo does not support it would only
            // report zeros: there the memory and host CPU signals are simply absent.
            #[cfg(feature = "sysinfo")]
            system: sysinfo::IS_SUPPORTED_SYSTEM.then(System::new),
            #[cfg(feature = "sysinfo")]
            host_stat: HostStat::open(),
            #[cfg(feature = "sysinfo")]
            host_memory: HostMemory::open(),
            #[cfg(feature = "sysinfo")]
            ticks: 0,
            #[cfg(feature = "sysinfo")]
            next_memory_tick: 0,
            memory: None,
            #[cfg(feature = "sysinfo")]
            last_cpu_refresh: None,
            #[cfg(feature = "sysinfo")]
            cpu_refreshes: 0,
            host_cpu: None,
            counters: None,
            stillness: Stillness::default(),
            last_split: None,
            process_clock: None,
            reused_samples: 0,
            measured_process: None,
            checked_samples: 0,
        }
    }
}

impl Signals for PoolSignals {
    fn sample(&mut self, pool: &ThreadPool, elapsed: Duration) -> Snapshot {
        // The counters and every worker's busy time in one walk over the workers, into a
        // buffer kept between ticks.
        let mut workers = std::mem::take(&mut self.worker_stats);
        let stats = pool.stats_with_workers(&mut workers);
        // Set by this sample's reading, if it takes states.
        self.states_now = None;
        let finished = stats.completed + stats.panicked;
        let completed = finished.saturating_sub(self.finished.unwrap_or(finished));
        self.finished = Some(finished);
        let secs = elapsed.as_secs_f64();
        // The sample's one clock reading: the host CPU's refresh and the `schedstat` sample's
        // ages are all taken from it (three readings a tick before, the controller's aside).
        let now = Instant::now();
        let oldest_wait = self.oldest.observe(&stats, now);
        // System first: the host CPU says whether the worker sample needs `schedstat`.
        self.refresh_system(now);
        let target = pool.threads();
        let counters = Counters {
            queued: stats.queued,
            running: stats.running,
            threads: stats.live_threads,
            target,
            host_free: self.host_cpu.map(|h| h < HOST_FREE_BELOW),
        };
        let moved = completed > 0 || self.counters != Some(counters);
        self.counters = Some(counters);
        let idle = stats.running == 0 && stats.queued == 0;
        let read = self.stillness.next(moved, self.last_split.is_some(), idle);
        // The process's CPU, read only when the split is measured or checked: a still pool's
        // decision needs no fresh figure, and the read is not cheap in a large process (the
        // kernel walks every thread's task struct, cold by the next tick: 256 parked workers'
        // tick went from a median of 37 to 82 us in `tick_cost` with a read on every tick).
        let process_cpu = match read {
            SplitRead::Reuse => None,
            SplitRead::Check | SplitRead::Measure => self.process_cpu(now),
        };
        let still = match read {
            SplitRead::Reuse => true,
            SplitRead::Measure => false,
            // Where the last measurement left it: the split stands. Moved: no longer still.
            SplitRead::Check => match steady(process_cpu, self.measured_process) {
                Some(true) => {
                    self.checked_samples += 1;
                    true
                }
                Some(false) => {
                    self.stillness.moved();
                    false
                }
                None => false,
            },
        };
        let (blocked, worker_cpu, worker_demand) = if still {
            // A still pool: the busy-time baseline moves on (no system call), the CPU
            // clocks and the `schedstat` sample keep their marks, so the next measurement
            // covers the reused ticks too.
            self.busy_time(&workers, elapsed);
            self.worker_stats = workers;
            self.reused_samples += 1;
            self.last_split.unwrap_or_default()
        } else {
            let time = self.worker_time(
                &workers,
                (stats.queued, stats.running, completed),
                process_cpu,
                elapsed,
                now,
            );
            self.worker_stats = workers;
            let split = measured_split(time, secs, stats.running);
            // An idle pool's split is kept even when unknown (a busy host leaves the off-CPU
            // time of its few busy moments unsplit): reused only while the pool stays still and
            // idle, it is what a measurement would say again, with no task to split.
            self.last_split = (split.0.is_some() || idle).then_some(split);
            self.measured_process = process_cpu;
            split
        };
        Snapshot {
            elapsed,
            cores: self.cores,
            threads: stats.live_threads,
            target,
            queued: stats.queued,
            running: stats.running,
            completed,
            blocked,
            worker_cpu,
            worker_demand,
            memory: self.memory,
            host_cpu: self.host_cpu,
            process_cpu,
            oldest_wait,
            states: self.states_now,
        }
    }

    /// One read of the process's CPU clock against the last sample's (the kernel sums the
    /// process's threads: 40-50 µs cold at 256 workers). After a still sample,
    /// which skips the clock, the figure averages over the still ticks too: lower, so at
    /// worst it costs the controller a sample.
    fn process_cpu_since_sample(&mut self) -> Option<f64> {
        self.process_cpu_to(crate::proc::process_cpu(), Instant::now())
    }
}

impl fmt::Debug for PoolSignals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolSignals")
            .field("workers", &self.workers)
            .field("cores", &self.cores)
            .field("memory", &self.memory)
            .field("host_cpu", &self.host_cpu)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
