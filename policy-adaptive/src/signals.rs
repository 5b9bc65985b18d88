//! [`PoolSignals`]: the production source of snapshots (pool counters, per-worker CPU time from
//! `/proc`, memory and host CPU from `sysinfo` with the default `sysinfo` feature).

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;
#[cfg(feature = "sysinfo")]
use std::time::Instant;

use pool_core::ThreadPool;
#[cfg(feature = "sysinfo")]
use sysinfo::System;

use crate::proc::{thread_times, ThreadTimes, WorkerThreads};
use crate::snapshot::{Memory, Signals, Snapshot};

/// Memory and cgroup limits change slowly and cost a few file reads: refresh every this many
/// ticks.
#[cfg(feature = "sysinfo")]
const MEMORY_EVERY: u64 = 10;

/// The real signals of a pool: its counters, its workers' CPU time (Linux), and system memory and
/// CPU from `sysinfo` (the `sysinfo` feature, on by default; without it `memory` and `host_cpu`
/// are always `None`).
///
/// - *Blocked workers*: each worker's state in `/proc/self/task/<tid>/stat`; the workers asleep
///   in the kernel, minus the pool's parked idle workers, are the busy workers blocked (I/O, a
///   sleep, a lock, a child task) rather than computing or waiting for a CPU.
/// - *Worker CPU and demand*: each worker's time on a CPU and waiting in a run queue over the
///   interval (`schedstat`, nanoseconds; `stat`'s 10 ms ticks where schedstats are off). A busy
///   worker that used little CPU and did not wait for one was blocked; demand above the cores
///   means the workers compete for CPU.
/// - *Memory*: the smaller of the host's available memory and the cgroup's free memory, against
///   the smaller of the host total and the cgroup limit.
/// - *Host CPU*: `sysinfo`'s global CPU use, refreshed no more often than
///   `sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`; a guard only.
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
    times: HashMap<u32, ThreadTimes>,
    last_blocked: Option<f64>,
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

impl PoolSignals {
    /// Signals for the pool whose workers `workers` records.
    pub fn new(workers: WorkerThreads) -> Self {
        PoolSignals {
            workers,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            finished: None,
            times: HashMap::new(),
            last_blocked: None,
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

    /// The workers' CPU and runnable (CPU + run-queue wait) time since the last call, and how
    /// many of them are asleep in the kernel now; `None` if no worker's times were readable.
    ///
    /// Each thread's deltas are capped at `elapsed`: a thread cannot run (or run and wait) for
    /// longer than the interval. A thread first seen counts from zero, which is right for one
    /// spawned within the interval but would charge a worker's start-up to a short first
    /// interval (an early decision right after `build` saw 100 cores' worth of demand).
    fn worker_deltas(&mut self, elapsed: Duration) -> Option<(Duration, Duration, usize)> {
        let mut cpu = Duration::ZERO;
        let mut runnable = Duration::ZERO;
        let mut sleeping = 0;
        let mut any = false;
        let mut seen = HashMap::with_capacity(self.times.len());
        for tid in self.workers.tids() {
            let Some(now) = thread_times(tid) else {
                continue;
            };
            any = true;
            // A new worker's counters started at zero when it was spawned, within this interval.
            let before = self.times.get(&tid).copied().unwrap_or_default();
            let d_cpu = now.cpu.saturating_sub(before.cpu).min(elapsed);
            let d_wait = match (now.wait, before.wait) {
                (Some(n), Some(b)) => n.saturating_sub(b),
                (Some(n), None) => n,
                _ => Duration::ZERO,
            }
            .min(elapsed - d_cpu);
            cpu += d_cpu;
            runnable += d_cpu + d_wait;
            sleeping += usize::from(now.sleeping);
            seen.insert(tid, now);
        }
        // Retired workers drop out here, so the map never grows past the live workers.
        self.times = seen;
        any.then_some((cpu, runnable, sleeping))
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
        // Host CPU use is the difference between two refreshes at least
        // MINIMUM_CPU_UPDATE_INTERVAL apart; in between, the last value stands.
        let due = !matches!(self.last_cpu_refresh, Some(at) if at.elapsed() < sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
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
        let (blocked, worker_cpu, worker_demand) = match self.worker_deltas(elapsed) {
            Some((cpu, runnable, sleeping)) if secs > 0.0 => {
                // Parked idle workers sleep too: the busy ones asleep are the rest. Both counts
                // are taken now (not averaged over the interval), so they match; the average
                // with the previous tick smooths the single-instant noise.
                let now = sleeping.saturating_sub(stats.idle_threads) as f64;
                let now = now.min(stats.running as f64);
                let smoothed = self.last_blocked.map_or(now, |last| (last + now) / 2.0);
                self.last_blocked = Some(now);
                (
                    Some(smoothed.min(stats.running as f64)),
                    Some(cpu.as_secs_f64() / secs),
                    Some(runnable.as_secs_f64() / secs),
                )
            }
            _ => (None, None, None),
        };
        self.refresh_system();
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
