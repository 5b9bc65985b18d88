//! [`PoolSignals`]: the production source of snapshots (pool counters and per-worker busy time
//! from pool-core, the process CPU clock, a bounded `schedstat` sample, memory and host CPU from
//! `sysinfo` with the default `sysinfo` feature).

use std::fmt;
use std::time::{Duration, Instant};

use pool_core::{OldestWait, ThreadPool, WorkerStats};
#[cfg(feature = "sysinfo")]
use sysinfo::System;

use crate::decide::{LIGHT_TASKS, LIGHT_TASK_CPU};
use crate::proc::{CpuClock, SchedStat, ThreadStat, ThreadTimes, WorkerThreads};
#[cfg(feature = "sysinfo")]
use crate::proc::{HostMemory, HostStat};
use crate::snapshot::{Memory, Signals, Snapshot, WorkerStates};

/// Busy workers whose CPU clock a tick reads at most (one system call each, 1-3 µs on a busy
/// host: the kernel finds the thread by its id); beyond that many busy workers, `CPU_ROTATE` a
/// tick in turn. Up to this many busy workers the CPU time is exact; beyond it, the
/// sample's CPU share of its busy time stands for all (a share, so 8 workers a tick, all of
/// them in turn, tell it about as well as 16 did at half the reads).
const CPU_SAMPLE: usize = 8;

/// Beyond `CPU_SAMPLE` busy workers, a measured tick reads this many clocks (round robin) and
/// pools them with the previous measured tick's, so each share still stands on 8 workers'
/// windows at half the reads. A worker's window runs from its last reading, every
/// `busy / CPU_ROTATE` ticks (1.6 s at 64 busy workers, 6.4 s at 256): the pooled half is one
/// tick older, a small part of windows that long. In `compare`'s "tasks finishing" hold
/// (every tick measures: the counters move) the 8 clock reads were 8 of the 12 system calls of
/// a 256-worker tick.
const CPU_ROTATE: usize = 4;

/// Busy workers whose `schedstat` the sample keeps open and re-reads (one `pread` each), so a
/// tick reads at most this many files, whatever the pool's size. These reads are the only
/// per-worker system calls besides the CPU clocks: the tick's cost no longer grows with the
/// pool (it cost two `/proc` reads per worker per tick before).
const SCHED_SAMPLE: usize = 2;

/// Busy workers, besides the `schedstat` sample's, whose state (`stat`, kept open) a reading
/// that takes states reads too: 8 states a reading rather than 2, 16-24 over `SHARE_SPAN`
/// rather than 4-6. With 4-6, W3 at 18-25 workers on 2 cores (blocked about a third of their
/// busy time) read none blocked now and then, and rule 6 trimmed it: 15 trims over 8 runs,
/// 4 with 8 states a reading. Only the states, only while they are taken (busy workers
/// outnumbering the cores, not light on a free host): 6 re-reads of about 3.8 µs each.
const STATE_SAMPLE: usize = 6;

/// Consecutive readings of the sample span at least this long: the file moves only at context
/// switches and scheduler ticks, and a wait in progress is not in it yet, so over an early
/// tick's 10 ms a CPU-bound worker queued for a CPU looked blocked.
const SCHED_PAIR_MIN: Duration = Duration::from_millis(50);

/// `SCHED_PAIR_MIN` for light workers on a host with a CPU free (`Split::MeasureElseBlocked`):
/// every other tick at the default interval. Their run queues are short (their demand is under
/// a quarter of the cores), so their share moves little from one reading to the next; it
/// stands between readings (`SHARE_VALID` is longer), and until the first pair their off-CPU
/// time counts as blocked anyway. In `compare`'s "tasks finishing" hold on a quiet host, this
/// halves the `schedstat` re-reads of a tick.
const SCHED_PAIR_LIGHT: Duration = Duration::from_millis(150);

/// Every this long, the longest-sampled worker makes room for the next busy worker, round
/// robin, so one odd worker (say, one long-blocked task among CPU-bound ones) does not speak
/// for the pool for ever. Opening a file costs 20-70 µs on a busy host, a re-read a few: one
/// swap a second (for the whole sample, not per sampled worker) keeps the average near the
/// re-read.
const SCHED_ROTATE: Duration = Duration::from_secs(1);

/// ... and only once the longest-sampled worker's file has been read this many times (its
/// opening reading included): the sample is read when a tick measures, not every tick, so a
/// wall-time rotation alone paid an opening (of `schedstat`, and of `stat` where states are
/// taken: 100-140 µs together on a loaded 2-core VM) for every 2-3 readings of a still pool,
/// which measures every fourth tick (`strace` of `tick_cost 256 busy`: 6 `schedstat` and 8
/// `stat` opens in 5 s). A pool measured every tick reads 8 times in 0.8 s, so there the
/// rotation stays once a second; a still pool rotates every 3.2 s, light workers read every
/// other tick every 1.6 s: each sampled worker speaks for 8 readings, whatever the tick's
/// rhythm.
const SCHED_ROTATE_READINGS: u32 = 8;

/// Whether the longest-sampled worker, in the sample for `age` and read `reads` times (its
/// opening reading included), makes room for the next busy worker.
fn makes_room(age: Duration, reads: u32) -> bool {
    age >= SCHED_ROTATE && reads >= SCHED_ROTATE_READINGS
}

/// How long a run-queue share stands while the next pair matures.
const SHARE_VALID: Duration = Duration::from_millis(250);

/// The run-queue share is taken over the readings of about this long. A wait in progress is in
/// `schedstat` only once the thread gets its CPU, so on a host at load 40 (waits of tens of ms)
/// one 50 ms delta could call a spinning worker's wait "blocked"; consecutive deltas make up
/// for each other (what one misses the next counts), so a longer span averages that out.
const SHARE_SPAN: Duration = Duration::from_millis(250);

/// Samples in a row that must find the pool still (nothing finished, the same queued, running,
/// live and target counts, the host CPU on the same side of `HOST_FREE_BELOW`) before the next still one reuses the last
/// measured split instead of reading the CPU clocks and the `schedstat` sample.
const STILL_SAMPLES: u32 = 2;

/// Still samples in a row that may reuse the split: every `REUSE_MAX + 1`-th still sample
/// measures again, so a task that turns from blocked to computing without finishing (the one
/// change the counters cannot show) is seen at most `REUSE_MAX` ticks late.
const REUSE_MAX: u32 = 3;

/// Whether a sample may reuse the last split (the steady-state rule for the dearest reads).
///
/// A pool whose counters do not move (every busy worker stuck in the same task, the backlog
/// unchanged, the last decisions all kept the count: the target did not change) has nothing new
/// to say about how its busy time splits, and the reads that measure the split are most of a
/// busy tick: at 256 blocked workers with a backlog, the two `stat` and two `schedstat`
/// re-reads were 42% of the sample's CPU, the CPU clocks 6% and re-opening the sample's files
/// 5% (`perf record` of `tick_cost 256 busy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Stillness {
    /// Samples in a row that found the pool still.
    still: u32,
    /// Of those, the reuses since the last measurement.
    reused: u32,
}

impl Stillness {
    /// `moved`: a counter moved since the last sample; `known`: the last measured sample split
    /// the busy time (there is something to reuse); `idle`: nothing is running or queued now.
    /// Returns whether this sample reuses it.
    ///
    /// An idle still pool reuses its split for as long as it stays still, past `REUSE_MAX`:
    /// the measurement every `REUSE_MAX + 1` samples is there for a running task that turns
    /// from blocked to computing without finishing, and with nothing running there is none.
    /// Its split was measured still and idle (at least one still sample measures first, with
    /// the same counters: nothing running), so a measurement would only read it again: no
    /// blocked worker and next to no CPU, or, on a busy host, unknown (`sample` keeps an idle
    /// pool's split even then). A submission, a finished task, a resize or the host
    /// reading crossing `HOST_FREE_BELOW` moves a counter, and the next sample measures.
    fn reuse(&mut self, moved: bool, known: bool, idle: bool) -> bool {
        if moved {
            *self = Stillness::default();
            return false;
        }
        self.still = self.still.saturating_add(1);
        if self.still > STILL_SAMPLES && known && (idle || self.reused < REUSE_MAX) {
            self.reused = self.reused.saturating_add(1);
            true
        } else {
            self.reused = 0;
            false
        }
    }
}

/// What a still sample compares with the last one.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Counters {
    queued: u64,
    running: u64,
    threads: usize,
    target: usize,
    /// Whether the host reading is below `HOST_FREE_BELOW`: what the split's method depends
    /// on (the reading itself is in every snapshot, fresh, for the host CPU guard).
    host_free: Option<bool>,
}

/// The last measured split: `blocked`, `worker_cpu`, `worker_demand`.
type Split3 = (Option<f64>, Option<f64>, Option<f64>);

/// Without `schedstat`, time a busy worker spent off the CPU cannot be split into blocked and
/// waiting for a CPU. While the host's CPU use is below this, there is a CPU free to run a
/// runnable worker, so the time is taken as blocked; at or above it the split is unknown.
const HOST_FREE_BELOW: f64 = 0.9;

/// Memory and cgroup limits change slowly: refresh every this many ticks (2 s at the default
/// interval). On Linux the files stay open (`HostMemory`: one `pread` each, where sysinfo's
/// refresh opened seven files and cost several ordinary ticks).
#[cfg(feature = "sysinfo")]
const MEMORY_EVERY: u64 = 20;

/// Host CPU use is a guard only, and reading it (`/proc/stat`: about 30 µs re-read in place on
/// Linux, 65-220 µs through sysinfo) costs as much as the rest of a tick: refresh it no more
/// often than this.
#[cfg(feature = "sysinfo")]
const HOST_CPU_EVERY: Duration = Duration::from_secs(1);

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
    /// Samples that reused the split (statistics and tests).
    reused_samples: u64,
}

/// One sampled worker: its open `schedstat` and the last reading of it.
#[derive(Debug)]
struct SchedSample {
    index: usize,
    file: SchedStat,
    /// When the worker joined the sample (the oldest makes room: `makes_room`).
    since: std::time::Instant,
    /// Readings of its file so far, the opening one included (`makes_room`).
    reads: u32,
    /// The last reading and the worker's busy time then; `None` after a pause in sampling,
    /// so that no delta spans the pause.
    mark: Option<(ThreadTimes, Duration)>,
}

/// One worker of the state sample: its open `stat`.
#[derive(Debug)]
struct StateSample {
    index: usize,
    file: ThreadStat,
}

/// What one reading of the `schedstat` sample saw, summed over the sampled workers.
#[derive(Clone, Copy, Debug)]
struct Reading {
    at: std::time::Instant,
    /// Busy time since the sampled workers' previous readings.
    busy: Duration,
    /// Of it, time off the CPU.
    off: Duration,
    /// Of that, run-queue wait that has ended (what `schedstat` counts).
    wait: Duration,
    /// Sampled busy workers found runnable (on a CPU or queued for one) at the reading.
    runnable: u32,
    /// Sampled busy workers found blocked at the reading.
    blocked: u32,
}

/// The fewest state observations (over `SHARE_SPAN`) that may correct the run-queue share:
/// with fewer, one worker's moment would decide it.
const MIN_STATES: u32 = 4;

/// How many state observations `schedstat`'s own blocked share counts as, when the states
/// correct it (a prior: the states pull it their way as they add up).
const STATE_PRIOR: f64 = 2.0;

/// The run-queue share of the sampled workers' off-CPU time over the readings, or `None` with
/// too little off-CPU time to split.
///
/// `schedstat` counts a run-queue wait only when it ends, so with many workers queued for few
/// cores the waits in progress at a reading are missing from it and their time reads as
/// blocked (W3's 19 workers on 2 cores read 16.5 blocked; a CPU-bound phase's 65 read 12.6).
/// The workers' states at the readings are a sample of that time: a busy worker found blocked
/// a share `p` of the observations was blocked about `p` of its busy time, so at least
/// `off - p × busy` of its off-CPU time was run-queue wait, ended or not (`p` drawn toward
/// `schedstat`'s own blocked share by `STATE_PRIOR` observations' worth). The larger of the two
/// estimates stands: each can only miss wait (the state sample is noisy both ways, but a
/// spinning worker is never found blocked, and a sleeping one rarely runnable).
fn run_queue_share(readings: &std::collections::VecDeque<Reading>) -> Option<f64> {
    let (mut busy, mut off, mut wait, mut runnable, mut blocked) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO, 0u32, 0u32);
    for r in readings {
        busy += r.busy;
        off += r.off;
        wait += r.wait;
        runnable += r.runnable;
        blocked += r.blocked;
    }
    // `schedstat` moves at context switches and scheduler ticks (a few ms): under 5 ms off
    // the CPU in all is too little to split.
    if off < Duration::from_millis(5) {
        return None;
    }
    let off_s = off.as_secs_f64();
    let ended = wait.as_secs_f64() / off_s;
    let states = runnable + blocked;
    if states < MIN_STATES {
        return Some(ended);
    }
    // The blocked share of the busy time `schedstat` implies, as a prior worth `STATE_PRIOR`
    // observations: a handful of states says "never blocked" by chance (W3 at 14 workers,
    // blocked about a third of its busy time, read 0 of 5 and was trimmed to 4).
    let busy_s = busy.as_secs_f64().max(off_s);
    let prior = (off_s - wait.as_secs_f64().min(off_s)) / busy_s;
    let share = (f64::from(blocked) + STATE_PRIOR * prior) / (f64::from(states) + STATE_PRIOR);
    let seen = queued_share(busy_s, off_s, share);
    Some(ended.max(seen))
}

/// The run-queue share of `off` seconds off the CPU, of `busy` seconds busy, when a share
/// `blocked` of the busy time was blocked: `off - blocked × busy` was queued.
fn queued_share(busy: f64, off: f64, blocked: f64) -> f64 {
    (1.0 - busy * blocked / off).clamp(0.0, 1.0)
}

/// Whether a run-queue share measured `age` ago with `then` workers busy still stands with
/// `running` busy now on `cores` cores, using `cores_used` of them: younger than
/// `SHARE_VALID`, and not measured with (a quarter) fewer busy workers than now once they
/// outnumber the cores, unless they are light (under `LIGHT_CPU_PER_CORE` of the cores: then
/// they hardly queue behind each other, and a sleep-bound burst keeps growing at once).
fn share_stands(age: Duration, then: u64, running: u64, cores: usize, cores_used: f64) -> bool {
    let light = cores_used < LIGHT_CPU_PER_CORE * cores as f64;
    age <= SHARE_VALID && (light || running <= cores as u64 || running <= then + then / 4)
}

/// `d` in nanoseconds: cheaper to add and compare than `Duration`. Exact for every duration
/// below 584 years, which covers pool-core's (it counts in `u64` nanoseconds); wrapping, not
/// saturating, because this runs twice per worker per tick.
fn nanos(d: Duration) -> u64 {
    d.as_secs()
        .wrapping_mul(1_000_000_000)
        .wrapping_add(u64::from(d.subsec_nanos()))
}

/// The CPU share of the busy time of this tick's clock readings (`cpu` over `busy`), pooled
/// with the previous tick's (`carry`) when the clocks are read in turn (`CPU_ROTATE`), capped
/// at 1. `None` without busy time.
fn pooled_share(cpu: Duration, busy: Duration, carry: Option<(Duration, Duration)>) -> Option<f64> {
    let (cpu_before, busy_before) = carry.unwrap_or_default();
    let (cpu, busy) = (cpu + cpu_before, busy + busy_before);
    (!busy.is_zero()).then(|| (cpu.as_secs_f64() / busy.as_secs_f64()).min(1.0))
}

/// A worker's CPU clock reading and its busy time at that moment.
#[derive(Clone, Copy, Debug, PartialEq)]
struct CpuMark {
    clock: CpuClock,
    cpu: Duration,
    busy: Duration,
}

/// What the interval's busy time was made of, in worker-time.
#[derive(Clone, Copy, Debug, Default)]
struct WorkerTime {
    /// Not parked: running tasks or looking for them.
    busy: Duration,
    /// On a CPU (from the workers' CPU clocks, capped at `busy`).
    cpu: Duration,
    /// Of `busy - cpu`, the share spent waiting in a run queue: 0 when the host has CPU to
    /// spare, else from the `schedstat` sample; `None` if that sample has nothing to say yet.
    wait_share: Option<f64>,
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
        }
    }

    /// The workers' busy time since the last call, from pool-core's per-worker counters (no
    /// system call). Each worker's delta is capped at `elapsed`; a worker first seen (or whose
    /// index was reused by a new thread: its `alive` went down) counts from its start.
    fn busy_time(&mut self, workers: &[WorkerStats], elapsed: Duration) -> Duration {
        // In nanoseconds: this walk runs once per worker per tick, and `Duration` arithmetic
        // (normalising seconds and nanoseconds at each step) was most of a 256-worker tick's
        // user-space instructions.
        let elapsed = nanos(elapsed);
        // The same workers as last time (no start, no retirement: nearly every tick): update
        // the list in place. A tick runs with cold caches, and a second list to write cost
        // more in cache misses (6 KB at 256 workers) than its instructions saved.
        let same = self.busy.len() == workers.len()
            && self.busy.iter().zip(workers).all(|(b, w)| b.0 == w.index);
        if same {
            let mut total = 0u64;
            for (b, w) in self.busy.iter_mut().zip(workers) {
                let (alive, busy) = (nanos(w.alive), nanos(w.busy));
                // A new thread under a reused index (its `alive` went down) counts from its
                // start.
                let start = if b.1 <= alive { b.2 } else { 0 };
                total = total.saturating_add(busy.saturating_sub(start).min(elapsed));
                *b = (w.index, alive, busy);
            }
            return Duration::from_nanos(total);
        }
        self.busy_time_changed(workers, elapsed)
    }

    /// `busy_time` when a worker started or retired since the last sample: a merge walk into
    /// a second list. Out of line, so the every-tick path stays short (a tick runs with cold
    /// caches, instructions included).
    #[cold]
    #[inline(never)]
    fn busy_time_changed(&mut self, workers: &[WorkerStats], elapsed: u64) -> Duration {
        let mut total = 0u64;
        // Both lists are sorted by index: one merge walk, no map.
        let before = &self.busy;
        let mut next = std::mem::take(&mut self.busy_next);
        next.clear();
        let mut marks = std::mem::take(&mut self.marks_next);
        marks.clear();
        let mut at = 0;
        for w in workers {
            let (alive, busy) = (nanos(w.alive), nanos(w.busy));
            while before.get(at).is_some_and(|b| b.0 < w.index) {
                at += 1;
            }
            let (start, mark) = match before.get(at) {
                Some(&(index, alive_before, busy_before)) if index == w.index => {
                    // The mark stays with its index even for a new thread under it: the mark
                    // keeps its clock, and `cpu_share` counts a different clock from zero.
                    let mark = self.marks.get(at).copied().flatten();
                    if alive_before <= alive {
                        (busy_before, mark)
                    } else {
                        (0, mark)
                    }
                }
                _ => (0, None),
            };
            total = total.saturating_add(busy.saturating_sub(start).min(elapsed));
            next.push((w.index, alive, busy));
            marks.push(mark);
        }
        // Retired workers drop out here (their marks with them), so neither list grows past
        // the live workers.
        self.busy_next = std::mem::replace(&mut self.busy, next);
        self.marks_next = std::mem::replace(&mut self.marks, marks);
        Duration::from_nanos(total)
    }

    /// The CPU share of the busy time of the workers busy in the interval, from their CPU
    /// clocks: every such worker's up to `CPU_SAMPLE`, beyond that `CPU_ROTATE` in turn pooled
    /// with the previous tick's (`pooled_share`). Each
    /// worker's CPU and busy time are taken since its clock was last read (or since it started),
    /// a window over which the ratio stays right even if the worker was parked or skipped in
    /// between: parked, neither moves. `None` without clocks or busy time.
    ///
    /// `workers` must be the list `busy_time` was last called with (the marks sit at the
    /// workers' positions in it).
    fn cpu_share(&mut self, workers: &[WorkerStats]) -> Option<f64> {
        debug_assert_eq!(self.marks.len(), workers.len(), "`busy_time` ran first");
        // Busy in the interval: not parked now, or busy time moved since the last sample. The
        // walk starts at the round robin's cursor and stops at the first `CPU_SAMPLE + 1` such
        // workers: with more, the tick reads `CPU_ROTATE` of them in turn, so a pool of busy
        // workers is not walked (or listed) whole for 4 picks.
        let len = workers.len();
        let start = if len == 0 { 0 } else { self.cpu_cursor % len };
        let mut found = [0usize; CPU_SAMPLE + 1];
        let mut count = 0;
        for at in (start..len).chain(0..start) {
            let w = &workers[at];
            let mark = self.marks.get(at).copied().flatten();
            if !w.parked || mark.is_none_or(|mark| w.busy > mark.busy) {
                found[count] = at;
                count += 1;
                if count == found.len() {
                    break;
                }
            }
        }
        // Up to `CPU_SAMPLE` busy workers, all of them (exact); beyond, `CPU_ROTATE` in turn,
        // the next tick starting after the last one read.
        let rotating = count > CPU_SAMPLE;
        let take = if rotating { CPU_ROTATE } else { count };
        if rotating {
            self.cpu_cursor = found[take - 1] + 1;
        }
        let chosen = found[..take].iter().map(|&at| (at, &workers[at]));
        // The chosen workers' clocks, looked up under one lock (not a copy of the registry).
        let mut clocks = [None; CPU_SAMPLE];
        self.workers.with(|threads| {
            for (slot, (at, w)) in clocks.iter_mut().zip(chosen) {
                *slot = Some((at, w, threads.get(&w.index).and_then(|t| t.clock)));
            }
        });
        let (mut cpu, mut busy) = (Duration::ZERO, Duration::ZERO);
        for (at, w, clock) in clocks.into_iter().flatten() {
            let Some(clock) = clock else {
                continue;
            };
            self.clock_reads += 1;
            let Some(now) = clock.read() else {
                continue;
            };
            let Some(slot) = self.marks.get_mut(at) else {
                continue;
            };
            // A first reading, or a new thread under a reused index, counts from its start.
            let (cpu_before, busy_before) = match *slot {
                Some(mark) if mark.clock == clock => (mark.cpu, mark.busy),
                _ => (Duration::ZERO, Duration::ZERO),
            };
            cpu += now.saturating_sub(cpu_before);
            busy += w.busy.saturating_sub(busy_before);
            *slot = Some(CpuMark {
                clock,
                cpu: now,
                busy: w.busy,
            });
        }
        let carry = if rotating {
            self.cpu_carry.replace((cpu, busy))
        } else {
            self.cpu_carry = None;
            None
        };
        pooled_share(cpu, busy, carry)
    }

    /// The run-queue share of the sampled workers' off-CPU busy time since the sample was last
    /// read.
    ///
    /// Re-reads the sampled workers' open `schedstat` files once the last reading is
    /// `SCHED_PAIR_MIN` old (a delta over at least that long): at most `SCHED_SAMPLE` `pread`s
    /// per tick, whatever the pool's size. Between readings, the last share stands for
    /// `SHARE_VALID`.
    ///
    /// A share measured with fewer workers busy than now, once they outnumber the cores, does
    /// not stand: more workers queue longer for the same cores, and a share from before a
    /// growth (a few ms old at an early decision) called W3's workers, grown from 4 to 19 on 2
    /// cores, nearly all blocked, and the burst rule grew them to 64.
    fn wait_share(
        &mut self,
        workers: &[WorkerStats],
        running: u64,
        cores_used: f64,
        split: Split,
        now: std::time::Instant,
    ) -> Option<f64> {
        let due = self
            .sched_at
            .is_none_or(|at| now.duration_since(at) >= split.pair_min());
        let states = split.states() && states_count(running, self.cores);
        if due {
            self.sched_at = Some(now);
            if let Some(share) = self.read_sample(workers, running, now, states) {
                self.last_share = Some((share, now, running));
                return Some(share);
            }
        } else if states {
            // Between readings (an early tick, a second look 25 ms after a full tick), the
            // states alone: they are what tells a fall of our workers' CPU that is blocking
            // from one that is an outside load (rule 4), and the look is where that fall is
            // judged. 8 `stat` re-reads, no `schedstat`.
            self.states_now = self.states_between_readings(workers, running, now);
        }
        let cores = self.cores;
        self.last_share
            .filter(|&(_, at, then)| {
                share_stands(now.duration_since(at), then, running, cores, cores_used)
            })
            .map(|(share, _, _)| share)
    }

    /// Reads the sample: the run-queue share of its off-CPU time since the last reading, if
    /// there is enough of it. Drops workers that retired, were replaced under their index, are
    /// parked now, or (one per `SCHED_ROTATE`) have been sampled longest; then fills the
    /// sample up with busy workers, round robin (their first reading is the baseline of the
    /// next delta).
    fn read_sample(
        &mut self,
        workers: &[WorkerStats],
        running: u64,
        now: std::time::Instant,
        states: bool,
    ) -> Option<f64> {
        // `workers` is sorted by index.
        let stats_of = |index: usize| {
            workers
                .binary_search_by_key(&index, |w| w.index)
                .ok()
                .map(|at| &workers[at])
        };
        let registry = &self.workers;
        let (mut busy_time, mut off, mut wait) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        let mut read = WorkerStates::default();
        // The longest-sampled worker makes room, once per `SCHED_ROTATE`.
        // Only when a busy worker is left out: with no other to take its place, the worker
        // would be dropped and its two files opened again (twice a re-read's cost, each).
        let others = running > self.sched.len() as u64;
        // The states correct the split only while the busy workers outnumber the cores (and
        // the split says they may: `Split::states`); they are read wherever the split says so,
        // for the snapshot (`Snapshot::states`, rule 4's fall), wherever they can count there.
        let oversubscribed = states && running > self.cores as u64;
        let due = self
            .rotated_at
            .is_none_or(|at| now.duration_since(at) >= SCHED_ROTATE);
        let rotate = (due && others)
            .then(|| self.sched.iter().min_by_key(|s| s.since))
            .flatten()
            .filter(|oldest| makes_room(now.duration_since(oldest.since), oldest.reads))
            .map(|oldest| oldest.since);
        let mut rotated = false;
        self.sched.retain_mut(|sample| {
            let Some(w) = stats_of(sample.index) else {
                return false;
            };
            let tid = registry.with(|threads| threads.get(&sample.index).and_then(|t| t.tid));
            if tid != Some(sample.file.tid()) {
                return false;
            }
            let Some(times) = sample.file.read() else {
                return false;
            };
            sample.reads = sample.reads.saturating_add(1);
            if let Some((before, busy_before)) = sample.mark {
                let d_busy = w.busy.saturating_sub(busy_before);
                let d_off = d_busy.saturating_sub(times.cpu.saturating_sub(before.cpu));
                busy_time += d_busy;
                off += d_off;
                wait += times.wait.saturating_sub(before.wait).min(d_off);
                // The state of a worker busy now (a parked one is neither: it has no task). In
                // the split only while the busy workers outnumber the cores: then waits in
                // progress pile up (fewer, and they queue only behind other processes, whose
                // waits end sooner). `stat` costs about 3 times `schedstat` to re-read (3.8
                // against 1.3 µs warm).
                if !w.parked && states {
                    read.count(sample.file.state());
                }
            }
            sample.mark = Some((times, w.busy));
            if w.parked {
                return false;
            }
            if !rotated && rotate == Some(sample.since) {
                rotated = true;
                return false;
            }
            true
        });
        if rotated {
            self.rotated_at = Some(now);
        }
        let mut busy = std::mem::take(&mut self.picks);
        busy.clear();
        // The candidates only when the sample has room: most readings keep the same workers,
        // and this walk over every worker was a tenth of a 256-worker tick's instructions.
        if self.sched.len() < SCHED_SAMPLE {
            busy.extend(
                workers
                    .iter()
                    .enumerate()
                    .filter(|(_, w)| !w.parked && !self.sched.iter().any(|s| s.index == w.index))
                    .map(|(at, _)| at),
            );
        }
        let take = SCHED_SAMPLE
            .saturating_sub(self.sched.len())
            .min(busy.len());
        let start = if busy.is_empty() {
            0
        } else {
            self.cursor % busy.len()
        };
        for k in 0..take {
            let w = &workers[busy[(start + k) % busy.len()]];
            let tid = registry.with(|threads| threads.get(&w.index).and_then(|t| t.tid));
            if let Some((file, times)) = tid.and_then(SchedStat::open) {
                self.sched.push(SchedSample {
                    index: w.index,
                    file,
                    since: now,
                    reads: 1,
                    mark: Some((times, w.busy)),
                });
            }
        }
        if take > 0 {
            // The round robin moves on only when it picked (a full sample keeps its place).
            self.cursor = start + take;
        }
        self.picks = busy;
        if states {
            let more = self.read_states(workers, running, now);
            read.runnable += more.runnable;
            read.blocked += more.blocked;
            self.states_now = read.if_any();
        }
        let WorkerStates { runnable, blocked } = if oversubscribed {
            read
        } else {
            WorkerStates::default()
        };
        // The share over the readings of the last `SHARE_SPAN`.
        self.readings.push_back(Reading {
            at: now,
            busy: busy_time,
            off,
            wait,
            runnable,
            blocked,
        });
        while self
            .readings
            .front()
            .is_some_and(|r| now.duration_since(r.at) > SHARE_SPAN)
        {
            self.readings.pop_front();
        }
        run_queue_share(&self.readings)
    }

    /// Both samples' busy workers' states now, between the sample's readings: the `schedstat`
    /// sample's workers keep their marks (their next reading spans from the last), the state
    /// sample rotates and fills up as at a reading.
    fn states_between_readings(
        &mut self,
        workers: &[WorkerStats],
        running: u64,
        now: Instant,
    ) -> Option<WorkerStates> {
        let mut read = self.read_states(workers, running, now);
        for sample in &mut self.sched {
            if busy_now(workers, sample.index) {
                read.count(sample.file.state());
            }
        }
        read.if_any()
    }

    /// The states of the state sample's busy workers now: (runnable, blocked). Drops workers
    /// that retired, were replaced under their index, or are parked, and (once per
    /// `SCHED_ROTATE`, while a busy worker is left out) the longest-sampled one; then fills
    /// the sample up with busy workers outside both samples, round robin. A state is an
    /// instant's: a worker counts from the reading that opens its file.
    fn read_states(&mut self, workers: &[WorkerStats], running: u64, now: Instant) -> WorkerStates {
        let registry = &self.workers;
        let tid_of =
            |index: usize| registry.with(|threads| threads.get(&index).and_then(|t| t.tid));
        let sampled = (self.sched.len() + self.states.len()) as u64;
        let due = self
            .states_rotated_at
            .is_some_and(|at| now.duration_since(at) >= SCHED_ROTATE);
        if due && running > sampled && !self.states.is_empty() {
            self.states.remove(0);
            self.states_rotated_at = Some(now);
        }
        let states = &mut self.states;
        registry.with(|threads| {
            states.retain(|s| {
                busy_now(workers, s.index)
                    && threads.get(&s.index).and_then(|t| t.tid) == Some(s.file.tid())
            });
        });
        if self.states.len() < STATE_SAMPLE {
            let sched = &self.sched;
            let states = &self.states;
            let candidates: Vec<usize> = workers
                .iter()
                .filter(|w| !w.parked)
                .map(|w| w.index)
                .filter(|&i| !sched.iter().any(|s| s.index == i))
                .filter(|&i| !states.iter().any(|s| s.index == i))
                .collect();
            let take = (STATE_SAMPLE - self.states.len()).min(candidates.len());
            let start = self.states_cursor % candidates.len().max(1);
            for k in 0..take {
                let index = candidates[(start + k) % candidates.len()];
                if let Some(file) = tid_of(index).and_then(ThreadStat::open) {
                    self.states.push(StateSample { index, file });
                    self.states_rotated_at.get_or_insert(now);
                }
            }
            self.states_cursor = start + take;
        }
        let mut read = WorkerStates::default();
        for sample in &self.states {
            read.count(sample.file.state());
        }
        read
    }

    /// The indices of the workers whose CPU clock has a mark (tests).
    #[cfg(test)]
    fn marked(&self) -> Vec<usize> {
        self.busy
            .iter()
            .zip(&self.marks)
            .filter(|(_, mark)| mark.is_some())
            .map(|(b, _)| b.0)
            .collect()
    }

    /// Stops the run-queue sample for now: its files stay open (re-opening costs more than
    /// keeping two descriptors), but the next reading starts a new delta.
    fn pause_sample(&mut self) {
        for sample in &mut self.sched {
            sample.mark = None;
        }
        self.sched_at = None;
        self.readings.clear();
    }

    /// The process's CPU since its last reading, in cores: fresh where the workers' CPU (a few
    /// clocks in turn, each since its own last reading) spans up to seconds in a large pool. A
    /// reading after still ticks (which skip it) covers them too: the figure is then an average,
    /// lower than the last tick's, which at worst leaves a rise unseen (as without the figure).
    fn process_cpu(&mut self, now: Instant) -> Option<f64> {
        let clock = crate::proc::process_cpu();
        let cpu = self.process_cpu_to(clock, now);
        self.process_clock = clock.map(|clock| (clock, now));
        cpu
    }

    /// The process's CPU from its last reading to `clock` read at `now`, in cores.
    fn process_cpu_to(&self, clock: Option<Duration>, now: Instant) -> Option<f64> {
        let ((before, at), clock) = (self.process_clock?, clock?);
        let secs = now.saturating_duration_since(at).as_secs_f64();
        (secs > 0.0).then(|| clock.saturating_sub(before).as_secs_f64() / secs)
    }

    /// The interval's worker time, or `None` without CPU clocks. `process_cpu`: the whole
    /// process's CPU over the interval, in cores (see `sample`).
    fn worker_time(
        &mut self,
        workers: &[WorkerStats],
        (queued, running, completed): (u64, u64, u64),
        process_cpu: Option<f64>,
        elapsed: Duration,
        now: Instant,
    ) -> Option<WorkerTime> {
        let busy = self.busy_time(workers, elapsed);
        if busy.is_zero() {
            // Every worker parked all along: no CPU to split, no clock to read. The split
            // stays what the host says (blocked while it has a CPU free, else unknown). The
            // next busy tick's clocks do not pool with readings from before the pause.
            self.pause_sample();
            self.cpu_carry = None;
            let host_free = self.host_cpu.is_some_and(|h| h < HOST_FREE_BELOW);
            return Some(WorkerTime {
                wait_share: host_free.then_some(0.0),
                ..WorkerTime::default()
            });
        }
        let cpu = busy.mul_f64(self.cpu_share(workers)?);
        // The run-queue share only matters when the CPUs may be full (`off_cpu_split`), and
        // then, on a busy host, only to a rule that sees a backlog or workers that may be
        // saturating the cores themselves (the trim rule): otherwise the split stays unknown
        // and the files (the dearest part of a tick) are not read.
        let cores_used = cpu.as_secs_f64() / elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        // Saturating by the process's CPU too: in a large pool the workers' clocks (read a few
        // in turn) span up to seconds, and W4's CPU-bound phase at 64 threads after its sleep
        // phase read 0.3-0.5 cores from them for a second with nothing queued at the samples:
        // the split stayed unknown and the trim (rule 6) waited for it, 0.68 of the best fixed
        // size. The process's CPU is fresh; when its other threads fill the cores, the only
        // cost is the split's reading.
        let saturating = saturating(cores_used, process_cpu, self.cores);
        // Whether a share from before a growth still stands, on the process's CPU where its
        // tasks are light (see `share_cpu`).
        let stands_cpu = share_cpu(cores_used, process_cpu, completed, elapsed);
        let wait_share = match off_cpu_split(
            self.host_cpu,
            usize::try_from(running).unwrap_or(usize::MAX),
            self.cores,
            cores_used,
            process_cpu,
            queued > 0 || saturating,
        ) {
            split @ Split::Measure => self
                .wait_share(workers, running, stands_cpu, split, now)
                .or_else(|| {
                    // Before the sample's first share only, on cores left free: a share that
                    // no longer stands after a growth is no reason, and on cores our workers
                    // fill, some of them wait runnable between their sleeps while 8 states,
                    // one instant, may still read 6 asleep. W4's CPU-and-sleep phase grown
                    // 4 -> 16 read so on an early tick 12 ms later and burst 16 -> 39, then
                    // was trimmed to 8 (two runs of a first version, phases 3 and 4 at
                    // 0.92/0.87 and 0.88/0.95).
                    let first = self.last_share.is_none() && !saturating;
                    states_wait_share(self.states_now.filter(|_| first)?, busy, cpu)
                }),
            split @ Split::MeasureElseBlocked => self
                .wait_share(workers, running, stands_cpu, split, now)
                .or(Some(0.0)),
            Split::Unknown => {
                self.pause_sample();
                None
            }
            Split::Blocked => {
                self.pause_sample();
                self.last_share = None;
                Some(0.0)
            }
        };
        Some(WorkerTime {
            busy,
            cpu,
            wait_share,
        })
    }

    /// Without the `sysinfo` feature, memory and host CPU stay unknown.
    #[cfg(not(feature = "sysinfo"))]
    fn refresh_system(&mut self, _now: std::time::Instant) {}

    #[cfg(feature = "sysinfo")]
    fn refresh_system(&mut self, now: Instant) {
        self.ticks += 1;
        let Some(system) = self.system.as_mut() else {
            return;
        };
        if self.ticks >= self.next_memory_tick {
            self.next_memory_tick = self.ticks + MEMORY_EVERY;
            if let Some(memory) = self.host_memory.as_ref() {
                if let Some((available, limit)) = memory.read() {
                    self.memory = (limit > 0).then_some(Memory { available, limit });
                }
            } else {
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
        }
        // Host CPU use is the difference between two refreshes at least HOST_CPU_EVERY (and
        // sysinfo's MINIMUM_CPU_UPDATE_INTERVAL) apart; in between, the last value stands.
        // The first value needs two refreshes: the second comes as soon as sysinfo allows.
        let every = if self.cpu_refreshes < 2 {
            sysinfo::MINIMUM_CPU_UPDATE_INTERVAL
        } else {
            HOST_CPU_EVERY.max(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL)
        };
        let due =
            !matches!(self.last_cpu_refresh, Some(at) if now.saturating_duration_since(at) < every);
        if due {
            self.last_cpu_refresh = Some(now);
            self.cpu_refreshes = self.cpu_refreshes.saturating_add(1);
            if let Some(host) = self.host_stat.as_mut() {
                if let Some(share) = host.busy_share() {
                    self.host_cpu = Some(share);
                }
            } else {
                system.refresh_cpu_usage();
                if self.cpu_refreshes >= 2 {
                    self.host_cpu =
                        Some(f64::from(system.global_cpu_usage() / 100.0).clamp(0.0, 1.0));
                }
            }
        }
    }
}

/// The run-queue share of the busy workers' off-CPU time (`busy - cpu`, this tick's) from
/// this sample's states alone, before the `schedstat` sample's first share (its first pair
/// comes 50 ms after its first reading) while our workers leave the cores free: only when the
/// states find the workers mostly asleep (`WorkerStates::mostly_blocked`), whose blocked share
/// `p` of the busy time leaves `off - p × busy` to the run queue. W3's ramp (1 ms of CPU,
/// then 4 ms asleep) read 4 of 4 asleep from its second tick (20 ms) and grew 4 -> 19 only at
/// the pair (61 ms); CPU-bound workers never read mostly asleep, so they wait for the pair as
/// before.
fn states_wait_share(states: WorkerStates, busy: Duration, cpu: Duration) -> Option<f64> {
    let off = busy.saturating_sub(cpu).as_secs_f64();
    if !states.mostly_blocked() || off <= 0.0 {
        return None;
    }
    let p = f64::from(states.blocked) / f64::from(states.read());
    Some(queued_share(busy.as_secs_f64(), off, p))
}

/// The workers' CPU (cores) that decides whether a share from before a growth still stands
/// (`share_stands`): their clocks' figure, or the process's when lower and its CPU per
/// completed task is light (under `LIGHT_TASK_CPU` over `LIGHT_TASKS` completions or more).
/// The clocks, read a few a tick in turn, still read the last load's CPU: W4's sleep phase
/// after its CPU-and-sleep one, grown from 20 to 31 workers, read 1.4-1.9 cores by them and
/// 0.1 by the process (60 tasks per 10 ms, 20 µs each); the split stayed unknown for 40 ms
/// of early looks before its burst to 64. Not on the process's figure alone: a process starved
/// by a crowded host reads as little, and W3's 4-worker share (nearly all blocked) standing
/// for 19 workers burst them to 64; its tasks cost 1 ms of CPU each however starved.
fn share_cpu(cores_used: f64, process_cpu: Option<f64>, completed: u64, elapsed: Duration) -> f64 {
    match process_cpu.filter(|p| p.is_finite() && *p >= 0.0) {
        Some(p)
            if p < cores_used
                && completed >= LIGHT_TASKS
                && p * elapsed.as_secs_f64() / (completed as f64) < LIGHT_TASK_CPU =>
        {
            p
        }
        _ => cores_used,
    }
}

/// Whether our workers may be saturating the cores (3/4 of them), so the trim rule needs the
/// split: by their own CPU (`cores_used`) or the whole process's (fresher in a large pool).
fn saturating(cores_used: f64, process_cpu: Option<f64>, cores: usize) -> bool {
    cores_used.max(process_cpu.unwrap_or(0.0)) >= 0.75 * cores as f64
}

/// How a tick splits busy workers' off-CPU time into blocked and run-queue time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Split {
    /// Read the `schedstat` sample; unknown until it has a pair.
    Measure,
    /// Read the `schedstat` sample; until it has a pair, all blocked.
    MeasureElseBlocked,
    /// Leave it unknown (no rule needs it now): the files are not read.
    Unknown,
    /// A runnable worker finds a free CPU: all of it is blocked time.
    Blocked,
}

impl Split {
    /// Whether the sample's readings take the sampled workers' states (one `stat` re-read each,
    /// about 3 times a `schedstat` re-read) besides their `schedstat`.
    ///
    /// The states catch run-queue waits still in progress at a reading, which pile up when
    /// busy workers queue behind each other for the cores (spinners outnumbering them). Under
    /// `MeasureElseBlocked` the host has a CPU free and our workers use under a quarter of the
    /// cores (`LIGHT_CPU_PER_CORE`): their demand leaves the run queues short, so their waits
    /// end soon and `schedstat` counts them, and until the first pair that split already
    /// calls all their off-CPU time blocked. A worker that starts spinning raises `cores_used`
    /// on the next tick, which turns the split to `Measure` and the states back on.
    fn states(self) -> bool {
        self == Split::Measure
    }

    /// How old the sample's last reading must be before the next: `SCHED_PAIR_LIGHT` for
    /// light workers on a free host, else `SCHED_PAIR_MIN`.
    fn pair_min(self) -> Duration {
        if self == Split::MeasureElseBlocked {
            SCHED_PAIR_LIGHT
        } else {
            SCHED_PAIR_MIN
        }
    }
}

/// Whether the worker at `index` in `workers` (sorted by index) is busy now: listed and not
/// parked.
fn busy_now(workers: &[WorkerStats], index: usize) -> bool {
    workers
        .binary_search_by_key(&index, |w| w.index)
        .is_ok_and(|at| !workers[at].parked)
}

/// Whether the busy workers' states can count at a sample: in the split while the busy
/// workers outnumber the cores, in rule 4's verdict (`WorkerStates::mostly_runnable`) from
/// `MOSTLY_RUNNABLE_READ` (3) states up. With fewer busy workers than both, a `stat` re-read
/// would count nowhere: one busy worker with a backlog on a busy host paid 32-34 µs a tick
/// with them against 23-25 without (`tick_cost 1 busy` beside two busy loops).
fn states_count(running: u64, cores: usize) -> bool {
    running > cores as u64 || running >= u64::from(crate::snapshot::MOSTLY_RUNNABLE_READ)
}

/// Our workers' CPU, in cores, under which a host reading of "free" is trusted until the
/// `schedstat` sample has a pair, however many of them are busy: they leave most of the cores
/// to a runnable worker.
const LIGHT_CPU_PER_CORE: f64 = 0.25;

/// The split for a tick: `host_cpu` the host's CPU use (refreshed once a second), `busy` our
/// workers running a task now (pool-core's `running`, no walk over the workers), `cores_used`
/// the cores' worth of CPU our workers used over the interval, `needed` whether a rule needs
/// the split (a backlog, or workers that may be saturating the cores).
///
/// Off-CPU time is blocked time without a measurement only when a CPU is surely free: the
/// host below `HOST_FREE_BELOW` *and* no more of our workers busy than cores. The second half
/// is what the host reading alone misses: refreshed once a second (`HOST_CPU_EVERY`), it
/// still shows the host before our workers when they start to oversubscribe the cores (a
/// CPU-bound phase after a sleep-bound one), so their run-queue wait read as blocked time and
/// CPU-bound work grew (W4). Busy workers can queue behind each other only when they
/// outnumber the cores, and that count comes from pool-core's counters every tick. Then the
/// sample is read every tick, needed or not, so its pair is ready when a backlog comes (the
/// sample is only `SCHED_SAMPLE` files, kept open); until the first pair, workers using under
/// `LIGHT_CPU_PER_CORE` of the cores count as blocked, so a sleep-bound burst on a quiet host
/// still grows at once instead of waiting 50 ms for the pair.
///
/// Not light while the process's CPU (`process_cpu`, fresh every tick) fills the cores (9/10,
/// as the host reading's "free"), whatever the workers' clocks (read a few a tick in turn) and
/// the host reading (once a second) say: both can be stale-low after a trim or a phase change
/// (the CPU phase's start read 64 workers at 0.43 cores, the process at 1.96, and grew them to
/// 105 on 53.7 "blocked"). W4's CPU-bound phase, trimmed 28 -> 12 on a tick the controller
/// was starved to 324 ms, read 0.48 cores by the clocks and a free host (the sleep phase's
/// reading) while the process used 1.96; taken as light, its off-CPU time counted as blocked
/// until the pair, 11.5 of 12 workers, and it grew 12 -> 65, trimmed back over the next 400 ms. Not on a lower process figure: it counts
/// the process's other threads too, and a sleep phase's read 0.14-1.04 cores (the submitting
/// thread among them) where the workers' clocks read 0.2-0.6; taken as not light, those
/// ticks read states and pairs they do not need.
fn off_cpu_split(
    host_cpu: Option<f64>,
    busy: usize,
    cores: usize,
    cores_used: f64,
    process_cpu: Option<f64>,
    needed: bool,
) -> Split {
    let host_free = host_cpu.is_some_and(|h| h < HOST_FREE_BELOW);
    let process_full = process_cpu.is_some_and(|p| p >= HOST_FREE_BELOW * cores as f64);
    if host_free && busy <= cores {
        Split::Blocked
    } else if host_free && !process_full && cores_used < LIGHT_CPU_PER_CORE * cores as f64 {
        Split::MeasureElseBlocked
    } else if needed || host_free {
        Split::Measure
    } else {
        Split::Unknown
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
        let still = self.stillness.reuse(moved, self.last_split.is_some(), idle);
        // The process's CPU, read only when the pool moved: a still pool's decision needs no
        // fresh figure, and the read is not cheap in a large process (the kernel walks every
        // thread's task struct, cold by the next tick: 256 parked workers' tick went from a
        // median of 37 to 82 us in `tick_cost` with a read on every tick).
        let process_cpu = if still { None } else { self.process_cpu(now) };
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

/// The blocked count, the workers' CPU share and their demand (CPU plus run-queue wait, in
/// cores) from one measured sample of the busy workers' time over `secs` seconds.
fn measured_split(time: Option<WorkerTime>, secs: f64, running: u64) -> Split3 {
    let (mut blocked, mut worker_cpu, mut worker_demand) = (None, None, None);
    if let Some(time) = time.filter(|_| secs > 0.0) {
        let off = time.busy.saturating_sub(time.cpu).as_secs_f64();
        // Without a sample (no schedstats, or none of the sampled workers was off the CPU
        // yet), the split of off-CPU time is unknown while the CPUs may be full.
        // Then `blocked` and `worker_demand` stay unknown (`worker_cpu` alone known): the
        // decision holds and the controller looks again once the sample has a pair.
        worker_cpu = Some(time.cpu.as_secs_f64() / secs);
        if let Some(wait_share) = time.wait_share {
            let wait = off * wait_share;
            let busy = time.busy.as_secs_f64();
            // The blocked share of the busy time, applied to the busy count now: `blocked`
            // is compared with `running`, an instant, so it is scaled to it.
            let blocked_share = if busy > 0.0 { (off - wait) / busy } else { 0.0 };
            blocked = Some((blocked_share * running as f64).min(running as f64));
            worker_demand = Some((time.cpu.as_secs_f64() + wait) / secs);
        }
    }
    (blocked, worker_cpu, worker_demand)
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
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A pool of `threads` workers whose thread ids `WorkerThreads` records (and forgets when a
    /// worker stops), running `tasks` tasks that block at one gate, once `started` of them have
    /// started. Each `send` on the returned sender lets one task finish (the one holding the
    /// gate's lock); dropping it lets every task finish.
    fn pool_blocked_at_a_gate(
        threads: usize,
        tasks: usize,
        started: usize,
    ) -> (ThreadPool, WorkerThreads, std::sync::mpsc::Sender<()>) {
        let workers = WorkerThreads::new();
        let (on_start, on_stop) = (workers.clone(), workers.clone());
        let pool = ThreadPool::builder()
            .threads(threads)
            .on_thread_start(move |index| on_start.record_current(index))
            .on_thread_stop(move |index| on_stop.forget(index))
            .build()
            .unwrap();
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        for _ in 0..tasks {
            let (gate, started_tx) = (gate.clone(), started_tx.clone());
            pool.spawn(move || {
                let _ = started_tx.send(());
                let _ = gate.lock().map(|rx| rx.recv());
            })
            .unwrap();
        }
        for _ in 0..started {
            started_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        }
        (pool, workers, release)
    }

    /// CPU-bound workers that outnumber the cores, with a host CPU reading that says "free"
    /// (it is refreshed once a second, so right after our own workers start spinning it still
    /// shows the quiet host before them): their run-queue wait must not be called blocked, or
    /// the controller grows CPU-bound work (W4's third phase). Every sample either says nothing
    /// of the split yet or calls at most a quarter of the busy workers blocked (the decision's
    /// CPU-bound line), and the split is eventually measured.
    #[cfg(all(target_os = "linux", feature = "sysinfo"))]
    #[test]
    fn a_stale_free_host_reading_does_not_make_run_queue_wait_blocked() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let spinners = 4 * cores;
        let workers = WorkerThreads::new();
        let hook = workers.clone();
        let pool = ThreadPool::builder()
            .threads(spinners)
            .on_thread_start(move |index| hook.record_current(index))
            .build()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        // Declared after the pool, so dropped before it: a failed assertion stops the spinners
        // before the pool's drop waits for them.
        struct Stop(Arc<AtomicBool>);
        impl Drop for Stop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = Stop(stop.clone());
        // As many again queued behind the spinners: a backlog, as in the controller's case.
        for _ in 0..2 * spinners {
            let stop = stop.clone();
            pool.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
            .unwrap();
        }
        let mut signals = PoolSignals::new(workers);
        // A host reading of 5%, not due for a refresh during the test: stale and "free".
        signals.host_cpu = Some(0.05);
        signals.cpu_refreshes = 2;
        signals.last_cpu_refresh = Some(Instant::now() + Duration::from_secs(3600));
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = Instant::now();
        let (mut measured, mut blocked, mut running) = (0, 0.0, 0.0);
        let mut seen = Vec::new();
        while measured < 5 {
            assert!(
                Instant::now() < deadline,
                "the split was never measured: {seen:?}"
            );
            // The sampling interval (the controller's tick), not a wait for an event.
            std::thread::sleep(Duration::from_millis(100));
            let now = Instant::now();
            let s = signals.sample(&pool, now - last);
            last = now;
            seen.push((s.running, s.blocked, s.worker_cpu));
            if let Some(b) = s.blocked.filter(|_| s.running > 0) {
                measured += 1;
                blocked += b;
                running += s.running as f64;
            }
        }
        // Spinners are never blocked. Read as blocked, their run-queue wait is most of their
        // busy time (7 of 8 spinners at 0.9 cores on 2 cores, on the old rule); the split
        // measured from `schedstat` misses a wait still in progress at a reading, so on a
        // crowded host a part of it still reads blocked: less than half, summed over the
        // samples (the decision's room rule treats workers less than half blocked as wanting
        // the cores).
        assert!(
            blocked * 2.0 < running,
            "spinning workers called blocked: {seen:?}"
        );
        stop.store(true, Ordering::Relaxed);
        pool.shutdown();
    }

    /// The state sample reads busy workers outside the `schedstat` sample (8 states a reading
    /// in all), finds sleeping ones blocked, rotates its oldest worker out once per
    /// `SCHED_ROTATE`, and lets workers go once they park.
    #[test]
    fn the_state_sample_reads_more_busy_workers_and_lets_parked_ones_go() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let busy = 2 * cores + 8;
        let (pool, workers, release) = pool_blocked_at_a_gate(busy, busy, busy);
        let mut signals = PoolSignals::new(workers);
        let mut stats = Vec::new();
        pool.stats_with_workers(&mut stats);
        let running = busy as u64;
        // A reading without states (light workers on a free host) opens no `stat`.
        signals.read_sample(&stats, running, Instant::now(), false);
        assert!(signals.states.is_empty());
        assert_eq!(signals.states_now, None);
        // Every worker is asleep at the gate, or about to be: wait for the states to say so.
        let all_asleep_in_the_state_sample = WorkerStates {
            runnable: 0,
            blocked: STATE_SAMPLE as u32,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let states = loop {
            let now = Instant::now();
            signals.read_sample(&stats, running, now, true);
            let states = signals.read_states(&stats, running, now);
            if states == all_asleep_in_the_state_sample {
                break states;
            }
            assert!(now < deadline, "sleepers still read {states:?}");
            std::thread::yield_now();
        };
        assert_eq!(states, all_asleep_in_the_state_sample);
        // A reading with states hands them to the snapshot: both samples' workers, asleep.
        let all_asleep = WorkerStates {
            runnable: 0,
            blocked: (SCHED_SAMPLE + STATE_SAMPLE) as u32,
        };
        while signals.states_now != Some(all_asleep) {
            assert!(Instant::now() < deadline, "{:?}", signals.states_now);
            std::thread::yield_now();
            signals.read_sample(&stats, running, Instant::now(), true);
        }
        // Between readings, the same states with no `schedstat` read (a second look's).
        let sched_reads: Vec<u32> = signals.sched.iter().map(|s| s.reads).collect();
        assert_eq!(
            signals.states_between_readings(&stats, running, Instant::now()),
            Some(all_asleep)
        );
        assert_eq!(
            signals.sched.iter().map(|s| s.reads).collect::<Vec<_>>(),
            sched_reads
        );
        // And through `wait_share`, 10 ms after a reading (not due for the next), as a sample.
        signals.states_now = None;
        signals.sched_at = Some(Instant::now());
        signals.wait_share(&stats, running, 0.0, Split::Measure, Instant::now());
        assert_eq!(signals.states_now, Some(all_asleep));
        let sampled: Vec<usize> = signals.states.iter().map(|s| s.index).collect();
        assert_eq!(sampled.len(), STATE_SAMPLE);
        assert_eq!(signals.sched.len(), SCHED_SAMPLE);
        for index in &sampled {
            assert!(
                !signals.sched.iter().any(|s| s.index == *index),
                "worker {index} in both samples"
            );
            assert_eq!(sampled.iter().filter(|i| *i == index).count(), 1);
        }
        // Once a `SCHED_ROTATE` has passed, the oldest makes room for a worker left out.
        signals.states_rotated_at = Some(Instant::now() - SCHED_ROTATE);
        signals.read_states(&stats, running, Instant::now());
        let rotated: Vec<usize> = signals.states.iter().map(|s| s.index).collect();
        assert_eq!(rotated.len(), STATE_SAMPLE);
        assert!(!rotated.contains(&sampled[0]), "{sampled:?} -> {rotated:?}");
        assert_eq!(rotated[..STATE_SAMPLE - 1], sampled[1..]);
        // Released, the workers finish and park: the sample lets them all go.
        drop(release);
        assert!(pool.wait_idle(Duration::from_secs(30)));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            pool.stats_with_workers(&mut stats);
            if stats.len() == busy && stats.iter().all(|w| w.parked) {
                break;
            }
            assert!(Instant::now() < deadline, "workers never parked: {stats:?}");
            std::thread::yield_now();
        }
        assert_eq!(
            signals.read_states(&stats, 0, Instant::now()),
            WorkerStates::default()
        );
        assert!(signals.states.is_empty());
        pool.shutdown();
    }

    /// With no more busy workers than the cores and fewer than 3, the states would count
    /// nowhere (not in the split, not in rule 4's verdict): a sample that measures the split
    /// reads none, at a reading or between readings. From 3 busy workers, or more than the
    /// cores, they count.
    #[test]
    fn too_few_busy_workers_for_their_states_to_count_read_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let few = cores.min(2);
        let (pool, workers, release) = pool_blocked_at_a_gate(few, few, few);
        let mut signals = PoolSignals::new(workers);
        let mut stats = Vec::new();
        pool.stats_with_workers(&mut stats);
        let running = few as u64;
        // Two readings (the second has the first's marks, where states would be read), then
        // one between readings.
        for _ in 0..2 {
            signals.sched_at = None;
            signals.wait_share(&stats, running, 0.0, Split::Measure, Instant::now());
            assert_eq!(signals.states_now, None);
        }
        assert_eq!(signals.sched.len(), few, "the schedstat sample still reads");
        signals.sched_at = Some(Instant::now());
        signals.wait_share(&stats, running, 0.0, Split::Measure, Instant::now());
        assert_eq!(signals.states_now, None);
        assert!(signals.states.is_empty());
        assert!(!states_count(1, 1) && !states_count(2, 2) && !states_count(2, 4));
        assert!(states_count(2, 1) && states_count(3, 4) && states_count(3, 2));
        drop(release);
        pool.shutdown();
    }

    /// The steady-state rule for the split: measured until the pool has been still for
    /// `STILL_SAMPLES`, then reused at most `REUSE_MAX` samples in a row, measured at once when a
    /// counter moves, and never reused without a measured split.
    #[test]
    fn a_still_pool_reuses_its_split_at_most_three_samples_in_a_row() {
        let script = [
            (true, true),
            (false, true),
            (false, true),
            (false, true),
            (false, true),
            (false, true),
            (false, true),
            (false, true),
            (false, true),
            (true, true),
            (false, true),
            (false, true),
            (false, false),
            (false, true),
        ];
        let script: Vec<_> = script.map(|(moved, known)| (moved, known, false)).into();
        insta::assert_snapshot!(stillness_table(&script, false));
    }

    /// Feeds `script` (moved, split known, idle) to a fresh `Stillness` and tabulates what each
    /// sample did, checking on the way that a reuse needs a known split and a still pool, and
    /// that only an idle pool reuses more than `REUSE_MAX` samples in a row. The idle column is
    /// printed when `show_idle` is set.
    fn stillness_table(script: &[(bool, bool, bool)], show_idle: bool) -> String {
        let mut stillness = Stillness::default();
        let mut table = String::from(if show_idle {
            "sample | moved | split known | idle  | split\n"
        } else {
            "sample | moved | split known | split\n"
        });
        let mut in_a_row = 0;
        for (at, &(moved, known, idle)) in script.iter().enumerate() {
            let reuse = stillness.reuse(moved, known, idle);
            in_a_row = if reuse { in_a_row + 1 } else { 0 };
            assert!(idle || in_a_row <= REUSE_MAX);
            assert!(!reuse || (known && !moved));
            let idle_cell = if show_idle {
                format!("{idle:<5} | ")
            } else {
                String::new()
            };
            table.push_str(&format!(
                "{at:>6} | {moved:<5} | {known:<11} | {idle_cell}{}\n",
                if reuse { "reused" } else { "measured" }
            ));
        }
        table
    }

    /// The idle case of the steady-state rule: with nothing running or queued, a still pool
    /// reuses its split for as long as it stays still (no task can turn from blocked to
    /// computing unseen), and a moved counter, or no measured split, still measures.
    #[test]
    fn an_idle_still_pool_reuses_its_split_until_a_counter_moves() {
        let mut script = vec![(true, true, true)];
        script.extend([(false, true, true); 9]);
        script.extend([
            (false, true, false),
            (false, true, false),
            (false, true, false),
            (false, true, false),
            (true, true, true),
            (false, true, true),
            (false, true, true),
            (false, false, true),
            (false, true, true),
        ]);
        insta::assert_snapshot!(stillness_table(&script, true));
    }

    /// Invariant: on a real pool whose workers are all parked, once the split is measured
    /// still, every later still sample reuses it (past `REUSE_MAX`) without reading the
    /// process's CPU clock, whether the host has a CPU free (the split says no worker is
    /// blocked) or not (the split is unknown, as a measurement would leave it); a task run in
    /// between makes the next sample measure.
    #[test]
    fn an_idle_pool_reuses_its_split_until_a_task_runs() {
        an_idle_pool_reuses_its_split_on_a_host_at(0.05, Some(0.0));
        an_idle_pool_reuses_its_split_on_a_host_at(0.95, None);
    }

    fn an_idle_pool_reuses_its_split_on_a_host_at(host_cpu: f64, blocked: Option<f64>) {
        let workers = WorkerThreads::new();
        let hook = workers.clone();
        let pool = ThreadPool::builder()
            .threads(4)
            .on_thread_start(move |index| hook.record_current(index))
            .build()
            .unwrap();
        assert!(pool.wait_idle(Duration::from_secs(30)));
        let mut signals = PoolSignals::new(workers);
        // A host reading that stays put, so only the pool's counters can move.
        signals.host_cpu = Some(host_cpu);
        #[cfg(feature = "sysinfo")]
        {
            signals.cpu_refreshes = 2;
            signals.last_cpu_refresh = Some(Instant::now() + Duration::from_secs(3600));
        }
        let tick = Duration::from_millis(100);
        let samples = STILL_SAMPLES + 3 * (REUSE_MAX + 1);
        for _ in 0..samples {
            let snapshot = signals.sample(&pool, tick);
            assert_eq!(snapshot.blocked, blocked, "{snapshot:?}");
        }
        // The first sample measures (it has no counters to compare) and so do the next
        // `STILL_SAMPLES`; every later one reuses.
        assert_eq!(
            signals.reused_samples,
            u64::from(samples - STILL_SAMPLES - 1)
        );
        assert!(signals.reused_samples > u64::from(REUSE_MAX));
        let reused = signals.reused_samples;
        let snapshot = signals.sample(&pool, tick);
        assert_eq!(signals.reused_samples, reused + 1);
        assert_eq!(snapshot.process_cpu, None, "{snapshot:?}");
        // A task runs and finishes: the counters moved, the next sample measures.
        pool.submit(|| ()).unwrap().join().unwrap();
        assert!(pool.wait_idle(Duration::from_secs(30)));
        let snapshot = signals.sample(&pool, tick);
        assert_eq!(signals.reused_samples, reused + 1, "{snapshot:?}");
        assert_eq!(snapshot.completed, 1);
        assert!(signals.last_split.is_some());
        pool.shutdown();
    }

    /// Invariant: on a real pool whose workers are all stuck in a task with a backlog, the
    /// sample reuses its split, and the reused figures are the last measured ones; a finished
    /// task makes the next sample measure. A reused sample does not read the process's CPU
    /// clock (dear in a large process); the measured one after it does, over the whole span.
    #[test]
    fn a_stuck_pool_reuses_its_split_until_a_task_finishes() {
        // Two workers blocked, two tasks queued behind them.
        let (pool, workers, release) = pool_blocked_at_a_gate(2, 4, 2);
        let mut signals = PoolSignals::new(workers);
        // A host reading that stays put, so only the pool's counters can move.
        signals.host_cpu = Some(0.05);
        #[cfg(feature = "sysinfo")]
        {
            signals.cpu_refreshes = 2;
            signals.last_cpu_refresh = Some(Instant::now() + Duration::from_secs(3600));
        }
        let tick = Duration::from_millis(100);
        let mut snapshots = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while signals.reused_samples == 0 {
            assert!(Instant::now() < deadline, "never reused: {snapshots:?}");
            // The controller's tick, not a wait for an event.
            std::thread::sleep(tick);
            let before = signals.last_split;
            let snapshot = signals.sample(&pool, tick);
            if signals.reused_samples > 0 {
                assert_eq!(
                    Some((
                        snapshot.blocked,
                        snapshot.worker_cpu,
                        snapshot.worker_demand
                    )),
                    before,
                    "{snapshots:?}"
                );
                assert_eq!(snapshot.process_cpu, None, "{snapshots:?}");
            }
            snapshots.push(snapshot);
        }
        assert!(snapshots.len() > STILL_SAMPLES as usize, "{snapshots:?}");
        // One task finishes (the lock holder's `recv` returns): the next sample measures.
        release.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while pool.stats().completed == 0 {
            assert!(Instant::now() < deadline, "no task finished");
            std::thread::yield_now();
        }
        let reused = signals.reused_samples;
        let measured = signals.sample(&pool, tick);
        assert_eq!(signals.reused_samples, reused);
        #[cfg(unix)]
        assert!(
            measured
                .process_cpu
                .is_some_and(|cores| cores.is_finite() && cores >= 0.0),
            "{measured:?}"
        );
        #[cfg(not(unix))]
        drop(measured);
        drop(release);
        pool.shutdown();
    }

    fn reading(busy_ms: u64, off_ms: u64, wait_ms: u64, runnable: u32, blocked: u32) -> Reading {
        Reading {
            at: Instant::now(),
            busy: Duration::from_millis(busy_ms),
            off: Duration::from_millis(off_ms),
            wait: Duration::from_millis(wait_ms),
            runnable,
            blocked,
        }
    }

    /// Spinning workers queued for the cores whose waits are still in progress at the
    /// readings: `schedstat` shows little wait (what it shows read as blocked, W4's CPU phase
    /// read 12.6 of 57 spinners blocked), but they are never found blocked, so their off-CPU
    /// time is run-queue wait.
    #[test]
    fn waits_in_progress_count_as_run_queue_time_by_the_workers_states() {
        // `schedstat` alone: 60 of 285 ms off the CPU waiting, the rest "blocked" (three
        // quarters of the busy time). Six states, none blocked, draw that toward none.
        let spinning: std::collections::VecDeque<_> =
            (0..3).map(|_| reading(100, 95, 20, 2, 0)).collect();
        let share = run_queue_share(&spinning).unwrap();
        let prior = (285.0 - 60.0) / 300.0;
        let expected = 1.0 - 300.0 * (2.0 * prior / 8.0) / 285.0;
        assert!((share - expected).abs() < 1e-9, "{share}");
        assert!(share > 0.8, "{share}");
        // The more states, the nearer all of it.
        let longer: std::collections::VecDeque<_> =
            (0..10).map(|_| reading(100, 95, 20, 2, 0)).collect();
        assert!(run_queue_share(&longer).unwrap() > 0.9);
        // Sleepers found blocked: `schedstat`'s own (small) share stands.
        let sleeping: std::collections::VecDeque<_> =
            (0..3).map(|_| reading(100, 99, 3, 0, 2)).collect();
        let share = run_queue_share(&sleeping).unwrap();
        assert!((share - 3.0 / 99.0).abs() < 1e-9, "{share}");
        // W3-like: on a CPU a fifth of the time, found blocked half of it, waits partly seen.
        let mixed: std::collections::VecDeque<_> = [
            reading(100, 80, 10, 1, 1),
            reading(100, 80, 10, 1, 1),
            reading(100, 80, 10, 2, 0),
            reading(100, 80, 10, 0, 2),
        ]
        .into_iter()
        .collect();
        let share = run_queue_share(&mixed).unwrap();
        let expected = 1.0 - 400.0 * ((4.0 + 2.0 * 0.7) / 10.0) / 320.0;
        assert!((share - expected).abs() < 1e-9, "{share}");
        // Too few states to say: `schedstat` alone.
        let few: std::collections::VecDeque<_> = [reading(100, 95, 20, 1, 0)].into_iter().collect();
        assert_eq!(run_queue_share(&few), Some(20.0 / 95.0));
        // Too little off-CPU time to split.
        let none: std::collections::VecDeque<_> = [reading(100, 4, 0, 2, 2)].into_iter().collect();
        assert_eq!(run_queue_share(&none), None);
    }

    /// A share from before a growth does not speak for the grown pool once its busy workers
    /// outnumber the cores (W3, grown from 4 to 19 workers on 2 cores, read nearly all blocked
    /// on the 4-worker share and burst to 64).
    #[test]
    fn a_share_from_fewer_busy_workers_does_not_stand_once_they_outnumber_the_cores() {
        let young = Duration::from_millis(20);
        assert!(!share_stands(young, 4, 19, 2, 0.9));
        assert!(share_stands(young, 4, 5, 2, 0.9));
        assert!(share_stands(young, 4, 2, 2, 0.9));
        assert!(share_stands(young, 64, 64, 2, 0.9));
        assert!(share_stands(young, 64, 60, 2, 0.9));
        assert!(!share_stands(SHARE_VALID + young, 64, 64, 2, 0.9));
        // Sleepers using next to no CPU: they do not queue behind each other.
        assert!(share_stands(young, 8, 14, 2, 0.05));
    }

    /// The CPU `share_stands` judges on: the process's where lower than the clocks' and light
    /// per completed task, else the clocks'. Not-a-number figures are ignored.
    #[test]
    fn a_share_stands_on_the_processs_cpu_where_its_tasks_are_light() {
        let tick = Duration::from_millis(10);
        // W4's sleepers at 31 workers: clocks 1.85 cores, process 0.1 over 61 tasks (16 µs).
        assert_eq!(share_cpu(1.85, Some(0.1), 61, tick), 0.1);
        assert!(share_stands(
            tick,
            20,
            31,
            2,
            share_cpu(1.85, Some(0.1), 61, tick)
        ));
        assert!(!share_stands(tick, 20, 31, 2, 1.85));
        // Starved W3: 0.15 cores over 10 tasks (150 µs), or over 7 (too few): the clocks'.
        assert_eq!(share_cpu(0.9, Some(0.15), 10, tick), 0.9);
        assert_eq!(share_cpu(0.9, Some(0.001), LIGHT_TASKS - 1, tick), 0.9);
        // The process above the clocks (other threads), or not a number: the clocks'.
        assert_eq!(share_cpu(0.05, Some(0.1), 61, tick), 0.05);
        for bad in [f64::NAN, f64::INFINITY, -0.1] {
            assert_eq!(share_cpu(1.85, Some(bad), 61, tick), 1.85);
        }
        assert_eq!(share_cpu(1.85, None, 61, tick), 1.85);
    }

    /// Invariant: the longest-sampled worker makes room only after `SCHED_ROTATE` *and*
    /// `SCHED_ROTATE_READINGS` readings: a pool measured every tick (100 ms) still rotates once
    /// a second, a still pool (measured every fourth tick) after 8 readings, not after 2-3.
    #[test]
    fn a_sampled_worker_makes_room_after_a_second_and_eight_readings() {
        let ms = Duration::from_millis;
        // Every tick at 100 ms: 8 readings by 0.7 s, so the second decides.
        assert!(!makes_room(ms(900), 10));
        assert!(makes_room(ms(1000), 11));
        // Every fourth tick: at 1.2 s only 4 readings; the 8th at 2.8 s, room at 3.2 s.
        assert!(!makes_room(ms(1200), 4));
        assert!(!makes_room(ms(2800), SCHED_ROTATE_READINGS - 1));
        assert!(makes_room(ms(3200), SCHED_ROTATE_READINGS));
    }

    /// Beyond `CPU_SAMPLE` busy workers, a tick's share pools its `CPU_ROTATE` clocks with
    /// the previous tick's: the share of the summed times, not of either tick alone.
    #[test]
    fn a_rotating_tick_pools_its_clocks_with_the_previous_ticks() {
        let ms = Duration::from_millis;
        assert_eq!(pooled_share(ms(10), ms(40), None), Some(0.25));
        // 10 of 40 ms now and 30 of 40 before: half, over the 8 workers' windows.
        assert_eq!(
            pooled_share(ms(10), ms(40), Some((ms(30), ms(40)))),
            Some(0.5)
        );
        // A tick whose clocks saw no busy time still speaks through the previous one's.
        assert_eq!(
            pooled_share(ms(0), ms(0), Some((ms(30), ms(40)))),
            Some(0.75)
        );
        assert_eq!(pooled_share(ms(0), ms(0), None), None);
        // Capped at 1 (a clock read a moment after the busy time).
        assert_eq!(pooled_share(ms(50), ms(40), None), Some(1.0));
    }

    /// Invariant: a measured tick reads every busy worker's CPU clock up to `CPU_SAMPLE` busy
    /// workers, and `CPU_ROTATE` of them beyond (half the system calls), each worker in turn.
    #[test]
    fn beyond_eight_busy_workers_a_tick_reads_four_clocks() {
        for (busy, reads) in [(3, 3), (CPU_SAMPLE, CPU_SAMPLE), (12, CPU_ROTATE)] {
            let (pool, workers, release) = pool_blocked_at_a_gate(busy, busy, busy);
            let mut signals = PoolSignals::new(workers);
            let tick = Duration::from_millis(100);
            // The first samples measure (the pool is not still yet): every busy worker is
            // read once the clocks have gone round.
            let mut read = std::collections::BTreeSet::new();
            for sample in 0..3 {
                let before = signals.clock_reads;
                signals.sample(&pool, tick);
                assert_eq!(signals.clock_reads - before, reads as u64, "{busy} busy");
                read.extend(signals.marked());
                if sample == 0 && busy > CPU_SAMPLE {
                    assert!(signals.cpu_carry.is_some());
                }
            }
            assert_eq!(read.len(), busy.min(3 * reads), "{busy} busy");
            drop(release);
            pool.shutdown();
        }
    }

    /// Invariant: the CPU clock marks sit at their workers' positions in the busy list; when a
    /// worker retires, its mark goes with it and every other worker keeps its own (the next
    /// clock reading of a surviving worker counts from its mark, not from zero).
    #[test]
    fn a_retired_workers_clock_mark_goes_and_the_others_stay_with_their_workers() {
        let (pool, workers, release) = pool_blocked_at_a_gate(3, 3, 3);
        let mut signals = PoolSignals::new(workers);
        let tick = Duration::from_millis(100);
        signals.sample(&pool, tick);
        // Three busy workers (at most `CPU_SAMPLE`): every clock read, every worker marked.
        let before: Vec<(usize, Option<CpuMark>)> = signals
            .busy
            .iter()
            .map(|b| b.0)
            .zip(signals.marks.iter().copied())
            .collect();
        assert_eq!(signals.marked().len(), 3, "{before:?}");
        // One task finishes (the lock holder's `recv` returns) and its worker retires.
        pool.set_threads(2).unwrap();
        release.send(()).unwrap();
        // The live count drops before the retiree leaves pool-core's worker list: wait for
        // the list.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut stats = Vec::new();
        while {
            pool.stats_with_workers(&mut stats);
            stats.len() > 2
        } {
            assert!(Instant::now() < deadline, "no worker retired");
            std::thread::yield_now();
        }
        signals.busy_time(&stats, tick);
        assert_eq!(signals.marks.len(), 2);
        assert_eq!(signals.busy.len(), 2);
        for (b, mark) in signals.busy.iter().zip(&signals.marks) {
            let kept = before.iter().find(|(index, _)| *index == b.0).unwrap().1;
            assert_eq!(*mark, kept, "worker {}", b.0);
            assert!(mark.is_some());
        }
        let live: Vec<usize> = stats.iter().map(|w| w.index).collect();
        assert_eq!(signals.marked(), live);
        drop(release);
        pool.shutdown();
    }

    /// Invariant: the snapshot dates the queue by the samples themselves (pool-core's
    /// `OldestWait`): the first sample has nothing to date the queued tasks by, a later one
    /// reads at least the time since the first (the tasks queued then are still queued), and
    /// the figure shows in the snapshot's line; with nothing queued it is zero again.
    #[test]
    fn the_snapshot_carries_how_long_the_oldest_queued_task_has_waited() {
        // One worker blocked at the gate, two tasks queued behind it.
        let (pool, workers, release) = pool_blocked_at_a_gate(1, 3, 1);
        let mut signals = PoolSignals::new(workers);
        let first = signals.sample(&pool, Duration::from_millis(100));
        assert_eq!((first.queued, first.oldest_wait), (2, Duration::ZERO));
        let after_first = Instant::now();
        // The event asserted is time passing: spin on the clock until 2 ms have.
        while after_first.elapsed() < Duration::from_millis(2) {
            std::hint::spin_loop();
        }
        let second = signals.sample(&pool, Duration::from_millis(100));
        let since_first = after_first.elapsed();
        assert_eq!(second.queued, 2);
        assert!(
            second.oldest_wait >= Duration::from_millis(2),
            "{:?}",
            second.oldest_wait
        );
        assert!(second.oldest_wait <= since_first + Duration::from_secs(1));
        assert!(second.to_string().contains(" wait "), "{second}");
        drop(release);
        assert!(pool.wait_idle(Duration::from_secs(30)));
        let drained = signals.sample(&pool, Duration::from_millis(100));
        assert_eq!(drained.oldest_wait, Duration::ZERO);
        assert!(!drained.to_string().contains(" wait "), "{drained}");
        pool.shutdown();
    }

    /// Invariant: the host CPU refresh is timed by the clock reading the sample hands it (the
    /// sample's one reading), not by a reading of its own: due exactly `HOST_CPU_EVERY` after
    /// the last refresh by that clock.
    #[cfg(feature = "sysinfo")]
    #[test]
    fn the_host_refresh_is_timed_by_the_samples_one_clock_reading() {
        let mut signals = PoolSignals::new(WorkerThreads::new());
        let every = HOST_CPU_EVERY.max(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let t0 = Instant::now();
        signals.cpu_refreshes = 2;
        signals.last_cpu_refresh = Some(t0);
        signals.refresh_system(t0 + every - Duration::from_nanos(1));
        assert_eq!(signals.cpu_refreshes, 2);
        assert_eq!(signals.last_cpu_refresh, Some(t0));
        signals.refresh_system(t0 + every);
        assert_eq!(signals.cpu_refreshes, 3);
        assert_eq!(signals.last_cpu_refresh, Some(t0 + every));
        // A reading from before the last refresh (none is, but the clock is the caller's) is
        // not due: the age saturates at zero.
        signals.refresh_system(t0);
        assert_eq!(signals.cpu_refreshes, 3);
    }

    /// The process's CPU at the cores asks for the split when the workers' old clocks do not
    /// (W4's CPU phase at 64 threads: 0.3 cores from them, 1.9 from the process).
    #[test]
    fn the_processs_cpu_at_the_cores_asks_for_the_split() {
        assert!(!saturating(0.3, None, 2));
        assert!(!saturating(0.3, Some(0.6), 2));
        assert!(saturating(0.3, Some(1.9), 2));
        assert!(saturating(1.6, None, 2));
    }

    /// The sampled workers' states (a `stat` re-read each) are taken only where they may
    /// correct the run-queue share: not for light workers on a host with a CPU free.
    #[test]
    fn light_workers_on_a_free_host_are_sampled_without_their_states_every_other_tick() {
        assert!(Split::Measure.states());
        assert!(!Split::MeasureElseBlocked.states());
        assert!(!Split::Unknown.states());
        assert!(!Split::Blocked.states());
        // Spinners (over a quarter of the cores) on a host whose stale reading says "free":
        // measured with their states (W4's guard).
        assert!(off_cpu_split(Some(0.3), 64, 2, 1.9, None, true).states());
        assert!(!off_cpu_split(Some(0.3), 64, 2, 0.1, None, true).states());
        // Their `schedstat` pair spans at least 150 ms (every other tick at 100 ms), others'
        // 50 ms (every tick); the share stands between readings.
        assert_eq!(
            off_cpu_split(Some(0.3), 64, 2, 0.1, None, true).pair_min(),
            SCHED_PAIR_LIGHT
        );
        assert_eq!(
            off_cpu_split(Some(0.3), 64, 2, 1.9, None, true).pair_min(),
            SCHED_PAIR_MIN
        );
        assert_eq!(
            off_cpu_split(Some(0.95), 64, 2, 0.1, None, true).pair_min(),
            SCHED_PAIR_MIN
        );
        assert!(SCHED_PAIR_LIGHT < SHARE_VALID);
        assert!(SCHED_PAIR_LIGHT + SCHED_PAIR_LIGHT / 2 <= SHARE_SPAN);
    }

    #[test]
    fn mostly_asleep_states_stand_for_the_split_before_the_first_share() {
        let ms = Duration::from_millis;
        let states = |runnable, blocked| WorkerStates { runnable, blocked };
        // W3's ramp at its second tick: 4 workers busy 10 ms each, 8.5 ms of it on a CPU, 4 of
        // 4 asleep: all their off-CPU time is blocked.
        let w3 = states_wait_share(states(0, 4), ms(40), Duration::from_micros(8500));
        assert_eq!(w3, Some(0.0));
        // 6 of 8 asleep, on a CPU a tenth of their busy time: 75 of 90 ms off the CPU blocked,
        // the other 15 ms queued.
        let share = states_wait_share(states(2, 6), ms(100), ms(10)).unwrap();
        assert!((share - 15.0 / 90.0).abs() < 1e-9, "{share}");
        // Not mostly asleep, too few states, or no off-CPU time: no share (wait for the pair).
        assert_eq!(states_wait_share(states(1, 2), ms(40), ms(8)), None);
        assert_eq!(states_wait_share(states(0, 2), ms(40), ms(8)), None);
        assert_eq!(states_wait_share(states(0, 4), ms(40), ms(40)), None);
        assert_eq!(states_wait_share(states(0, 4), ms(40), ms(50)), None);
    }

    /// Off-CPU time is blocked without a measurement only while a CPU is surely free: the
    /// host reading below 90% and no more of our workers busy than cores. A free reading with
    /// our workers outnumbering the cores is measured, needed or not (it may be stale); until
    /// the first pair, light workers count as blocked.
    #[test]
    fn off_cpu_time_is_blocked_only_while_a_cpu_is_surely_free() {
        // (host, busy, cores used by the clocks, the process's CPU, needed) on 2 cores.
        let cases = [
            ((Some(0.3), 2, 1.9, None, true), Split::Blocked),
            ((Some(0.3), 2, 1.9, None, false), Split::Blocked),
            ((Some(0.3), 3, 1.9, None, true), Split::Measure),
            ((Some(0.3), 3, 1.9, None, false), Split::Measure),
            ((Some(0.3), 64, 0.1, None, true), Split::MeasureElseBlocked),
            ((Some(0.95), 64, 0.1, None, true), Split::Measure),
            // Light by the clocks while the process fills the cores (the clocks stale after
            // a trim, the host reading a second old): measured, not presumed blocked.
            ((Some(0.36), 12, 0.48, Some(1.96), true), Split::Measure),
            // A sleep phase's process (its submitting thread among it) below the cores, or
            // a figure that is no number: light.
            (
                (Some(0.36), 12, 0.1, Some(1.04), true),
                Split::MeasureElseBlocked,
            ),
            (
                (Some(0.36), 12, 0.1, Some(f64::NAN), true),
                Split::MeasureElseBlocked,
            ),
            ((Some(0.95), 1, 0.0, None, false), Split::Unknown),
            ((None, 64, 0.1, None, false), Split::Unknown),
            ((None, 64, 0.1, None, true), Split::Measure),
        ];
        for ((host, busy, used, process, needed), split) in cases {
            assert_eq!(
                off_cpu_split(host, busy, 2, used, process, needed),
                split,
                "host {host:?}, {busy} busy, {used} cores used, process {process:?}, needed {needed}"
            );
        }
    }
}
