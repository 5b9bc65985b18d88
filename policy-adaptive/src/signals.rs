//! [`PoolSignals`]: the production source of snapshots (pool counters and per-worker busy time
//! from pool-core, the process CPU clock, a bounded `schedstat` sample, memory and host CPU from
//! `sysinfo` with the default `sysinfo` feature).

use std::fmt;
use std::time::Duration;
#[cfg(feature = "sysinfo")]
use std::time::Instant;

use pool_core::{ThreadPool, WorkerStats};
#[cfg(feature = "sysinfo")]
use sysinfo::System;

use crate::proc::{current_thread_cpu, process_cpu, thread_schedstat, ThreadTimes, WorkerThreads};
use crate::snapshot::{Memory, Signals, Snapshot};

/// Busy workers whose `schedstat` a tick reads for the first time; each is read again on the
/// next tick, so a tick reads at most twice this many files, whatever the pool's size. These
/// reads are the only per-worker system calls left: the tick's cost no longer grows with the
/// pool (it cost two `/proc` reads per worker per tick before).
const SCHED_SAMPLE: usize = 2;

/// Without `schedstat`, time a busy worker spent off the CPU cannot be split into blocked and
/// waiting for a CPU. While the host's CPU use is below this, there is a CPU free to run a
/// runnable worker, so the time is taken as blocked; at or above it the split is unknown.
const HOST_FREE_BELOW: f64 = 0.9;

/// Memory and cgroup limits change slowly and cost a few file reads (about as much as the rest
/// of a tick): refresh every this many ticks (2 s at the default interval).
#[cfg(feature = "sysinfo")]
const MEMORY_EVERY: u64 = 20;

/// Host CPU use is a guard only, and reading it (`/proc/stat`, parsed per CPU by sysinfo) cost
/// more than the rest of a tick: refresh it no more often than this.
#[cfg(feature = "sysinfo")]
const HOST_CPU_EVERY: Duration = Duration::from_secs(1);

/// The real signals of a pool: its counters and its workers' busy time (pool-core, no system
/// call), the process's CPU time (one system call), a bounded sample of workers' run-queue
/// waits (Linux), and system memory and CPU from `sysinfo` (the `sysinfo` feature, on by
/// default; without it `memory` and `host_cpu` are always `None`).
///
/// - *Worker CPU*: the process's CPU time over the interval (`CLOCK_PROCESS_CPUTIME_ID`) minus
///   the sampling thread's own, capped at the workers' busy time. Threads of the process outside
///   the pool count as worker CPU: a CPU-heavy one makes the pool look CPU-bound, which only
///   slows growth.
/// - *Blocked workers*: the workers' busy (not parked) time over the interval, from
///   [`ThreadPool::worker_stats`], minus their CPU time is time a busy worker was off the CPU:
///   blocked (I/O, a sleep, a lock, a child task) or runnable in a run queue. A round-robin
///   sample of at most `2 × SCHED_SAMPLE` busy workers' `schedstat` per tick gives the share of
///   that time spent in a run queue; the rest is blocked. `blocked` is that blocked share of the
///   busy time times the busy workers now.
/// - *Worker demand*: CPU time plus the estimated run-queue time: above the core count, the
///   workers compete for the cores (with each other or with other processes).
/// - *Memory*: the smaller of the host's available memory and the cgroup's free memory, against
///   the smaller of the host total and the cgroup limit.
/// - *Host CPU*: `sysinfo`'s global CPU use, refreshed once a second; a guard only.
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
/// let hook = workers.clone();
/// let pool = ThreadPool::builder()
///     .threads(2)
///     .on_thread_start(move |index| hook.record_current(index))
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
    /// Each live worker's `(index, alive, busy)` at the last sample, sorted by index (as
    /// `worker_stats` returns them).
    busy: Vec<(usize, Duration, Duration)>,
    /// The process's and the sampling thread's CPU time at the last sample.
    cpu: Option<(Duration, Duration)>,
    /// Workers whose `schedstat` was read for the first time last tick, to read again now.
    sched: Vec<SchedMark>,
    /// Where the next round-robin `schedstat` sample starts among the busy workers.
    cursor: usize,
    #[cfg(feature = "sysinfo")]
    system: Option<System>,
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
}

/// One worker's `schedstat` reading and its busy time at that moment.
#[derive(Clone, Copy, Debug)]
struct SchedMark {
    index: usize,
    tid: u32,
    times: ThreadTimes,
    busy: Duration,
}

/// What the interval's busy time was made of, in worker-time.
#[derive(Clone, Copy, Debug, Default)]
struct WorkerTime {
    /// Not parked: running tasks or looking for them.
    busy: Duration,
    /// On a CPU (the process's CPU time minus the sampler's, capped at `busy`).
    cpu: Duration,
    /// Of `busy - cpu`, the share spent waiting in a run queue: 0 when the host has CPU to
    /// spare, else from the `schedstat` sample; `None` if that sample has nothing to say.
    wait_share: Option<f64>,
}

impl PoolSignals {
    /// Signals for the pool whose workers `workers` records.
    pub fn new(workers: WorkerThreads) -> Self {
        PoolSignals {
            workers,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            finished: None,
            busy: Vec::new(),
            // The baseline: the first sample measures from here.
            cpu: process_cpu().zip(current_thread_cpu()),
            sched: Vec::new(),
            cursor: 0,
            // `System::new` loads nothing. On platforms sysinfo does not support it would only
            // report zeros: there the memory and host CPU signals are simply absent.
            #[cfg(feature = "sysinfo")]
            system: sysinfo::IS_SUPPORTED_SYSTEM.then(System::new),
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
        }
    }

    /// The workers' busy time since the last call, from pool-core's per-worker counters (no
    /// system call). Each worker's delta is capped at `elapsed`; a worker first seen (or whose
    /// index was reused by a new thread: its `alive` went down) counts from its start.
    fn busy_time(&mut self, workers: &[WorkerStats], elapsed: Duration) -> Duration {
        let mut total = Duration::ZERO;
        // Both lists are sorted by index: one merge walk, no map.
        let mut before = self.busy.iter().peekable();
        for w in workers {
            while before.next_if(|b| b.0 < w.index).is_some() {}
            let start = match before.peek() {
                Some(&&(index, alive, busy)) if index == w.index && alive <= w.alive => busy,
                _ => Duration::ZERO,
            };
            total += w.busy.saturating_sub(start).min(elapsed);
        }
        // Retired workers drop out here, so the list never grows past the live workers.
        self.busy.clear();
        self.busy
            .extend(workers.iter().map(|w| (w.index, w.alive, w.busy)));
        total
    }

    /// The process's CPU time since the last call minus the calling thread's: the workers' (and
    /// any other thread's of the process) CPU. `None` without CPU clocks.
    fn others_cpu(&mut self) -> Option<Duration> {
        let now = process_cpu().zip(current_thread_cpu())?;
        let before = self.cpu.replace(now)?;
        Some(
            now.0
                .saturating_sub(before.0)
                .saturating_sub(now.1.saturating_sub(before.1)),
        )
    }

    /// The run-queue share of the sampled workers' off-CPU busy time over the last interval.
    ///
    /// Reads the `schedstat` of last tick's sample again (a delta over exactly one interval),
    /// then of `SCHED_SAMPLE` busy workers round robin for the first time: at most
    /// `2 × SCHED_SAMPLE` small file reads, whatever the pool's size.
    fn wait_share(&mut self, workers: &[WorkerStats]) -> Option<f64> {
        // `workers` is sorted by index.
        let busy_of = |index: usize| {
            workers
                .binary_search_by_key(&index, |w| w.index)
                .ok()
                .map(|at| workers[at].busy)
        };
        let (mut off, mut wait) = (Duration::ZERO, Duration::ZERO);
        for mark in std::mem::take(&mut self.sched) {
            // A retired worker, or its index taken by a new thread: no delta.
            if self.workers.tid_of(mark.index) != Some(mark.tid) {
                continue;
            }
            let (Some(busy), Some(times)) = (busy_of(mark.index), thread_schedstat(mark.tid))
            else {
                continue;
            };
            let d_busy = busy.saturating_sub(mark.busy);
            let d_cpu = times.cpu.saturating_sub(mark.times.cpu);
            let d_off = d_busy.saturating_sub(d_cpu);
            off += d_off;
            wait += times.wait.saturating_sub(mark.times.wait).min(d_off);
        }
        let busy: Vec<&WorkerStats> = workers.iter().filter(|w| !w.parked).collect();
        let take = SCHED_SAMPLE.min(busy.len());
        let start = if busy.is_empty() {
            0
        } else {
            self.cursor % busy.len()
        };
        for k in 0..take {
            let w = busy[(start + k) % busy.len()];
            let Some(tid) = self.workers.tid_of(w.index) else {
                continue;
            };
            if let Some(times) = thread_schedstat(tid) {
                self.sched.push(SchedMark {
                    index: w.index,
                    tid,
                    times,
                    busy: w.busy,
                });
            }
        }
        self.cursor = start + take;
        // Under a millisecond off the CPU in all is too little to split.
        (off >= Duration::from_millis(1)).then(|| wait.as_secs_f64() / off.as_secs_f64())
    }

    /// The interval's worker time, or `None` without CPU clocks.
    fn worker_time(&mut self, pool: &ThreadPool, elapsed: Duration) -> Option<WorkerTime> {
        let workers = pool.worker_stats();
        let busy = self.busy_time(&workers, elapsed);
        if busy.is_zero() && self.cpu.is_some() {
            // Every worker parked all along: no CPU to split, and the process clock (which sums
            // every thread of the process in the kernel) is the dearest part of a tick. The
            // baseline stays; the next delta spans more than one interval, but it is capped at
            // that interval's busy time.
            self.sched.clear();
            return Some(WorkerTime::default());
        }
        let cpu = self.others_cpu()?.min(busy);
        // The run-queue share only matters when the CPUs may be full: with the host's CPU
        // below HOST_FREE_BELOW a runnable worker finds a free CPU, and off-CPU time is blocked
        // time. Only then are `schedstat` files read.
        let contended = self.host_cpu.is_none_or(|h| h >= HOST_FREE_BELOW);
        let wait_share = if contended {
            self.wait_share(&workers)
        } else {
            self.sched.clear();
            Some(0.0)
        };
        Some(WorkerTime {
            busy,
            cpu,
            wait_share,
        })
    }

    /// Without the `sysinfo` feature, memory and host CPU stay unknown.
    #[cfg(not(feature = "sysinfo"))]
    fn refresh_system(&mut self) {}

    #[cfg(feature = "sysinfo")]
    fn refresh_system(&mut self) {
        self.ticks += 1;
        let Some(system) = self.system.as_mut() else {
            return;
        };
        if self.ticks >= self.next_memory_tick {
            self.next_memory_tick = self.ticks + MEMORY_EVERY;
            system.refresh_memory();
            let mut available = system.available_memory();
            let mut limit = system.total_memory();
            if let Some(cgroup) = system.cgroup_limits() {
                if cgroup.total_memory > 0 {
                    limit = limit.min(cgroup.total_memory);
                    available = available.min(cgroup.free_memory);
                }
            }
            self.memory = (limit > 0).then_some(Memory { available, limit });
        }
        // Host CPU use is the difference between two refreshes at least HOST_CPU_EVERY (and
        // sysinfo's MINIMUM_CPU_UPDATE_INTERVAL) apart; in between, the last value stands.
        // The first value needs two refreshes: the second comes as soon as sysinfo allows.
        let every = if self.cpu_refreshes < 2 {
            sysinfo::MINIMUM_CPU_UPDATE_INTERVAL
        } else {
            HOST_CPU_EVERY.max(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL)
        };
        let due = !matches!(self.last_cpu_refresh, Some(at) if at.elapsed() < every);
        if due {
            system.refresh_cpu_usage();
            self.last_cpu_refresh = Some(Instant::now());
            self.cpu_refreshes = self.cpu_refreshes.saturating_add(1);
            if self.cpu_refreshes >= 2 {
                self.host_cpu = Some(f64::from(system.global_cpu_usage() / 100.0).clamp(0.0, 1.0));
            }
        }
    }
}

impl Signals for PoolSignals {
    fn sample(&mut self, pool: &ThreadPool, elapsed: Duration) -> Snapshot {
        let stats = pool.stats();
        let finished = stats.completed + stats.panicked;
        let completed = finished.saturating_sub(self.finished.unwrap_or(finished));
        self.finished = Some(finished);
        let secs = elapsed.as_secs_f64();
        // System first: the host CPU says whether the worker sample needs `schedstat`.
        self.refresh_system();
        let time = self.worker_time(pool, elapsed);
        let (mut blocked, mut worker_cpu, mut worker_demand) = (None, None, None);
        if let Some(time) = time.filter(|_| secs > 0.0) {
            let off = time.busy.saturating_sub(time.cpu).as_secs_f64();
            // Without a sample (no schedstats, or none of the sampled workers was off the CPU
            // yet), the split of off-CPU time is unknown while the CPUs may be full.
            let host_free = self.host_cpu.is_some_and(|h| h < HOST_FREE_BELOW);
            let wait_share = time.wait_share.or(host_free.then_some(0.0));
            worker_cpu = Some(time.cpu.as_secs_f64() / secs);
            if let Some(share) = wait_share {
                let wait = off * share;
                let busy = time.busy.as_secs_f64();
                // The blocked share of the busy time, applied to the busy count now: `blocked`
                // is compared with `running`, an instant, so it is scaled to it.
                let blocked_share = if busy > 0.0 { (off - wait) / busy } else { 0.0 };
                blocked = Some((blocked_share * stats.running as f64).min(stats.running as f64));
                worker_demand = Some((time.cpu.as_secs_f64() + wait) / secs);
            }
        }
        Snapshot {
            elapsed,
            cores: self.cores,
            threads: stats.live_threads,
            target: pool.threads(),
            queued: stats.queued,
            running: stats.running,
            completed,
            blocked,
            worker_cpu,
            worker_demand,
            memory: self.memory,
            host_cpu: self.host_cpu,
        }
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
