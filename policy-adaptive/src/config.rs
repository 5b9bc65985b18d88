//! The controller's settings, their defaults (each with its reason) and their validation.

use std::time::Duration;

/// A setting the controller cannot work with, naming the field and the value.
///
/// # Examples
///
/// ```
/// use policy_adaptive::{Config, ConfigError};
///
/// let mut config = Config::default();
/// config.min = 8;
/// config.max = 4;
/// assert_eq!(config.validate(), Err(ConfigError::MinAboveMax { min: 8, max: 4 }));
/// ```
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `min` is larger than `max`.
    #[error("`min` ({min}) is larger than `max` ({max})")]
    MinAboveMax {
        /// The `min` given.
        min: usize,
        /// The `max` given.
        max: usize,
    },
    /// A pool needs at least one worker: `min` (or `max`) is 0.
    #[error("`{field}` is 0: a pool needs at least 1 thread")]
    ZeroThreads {
        /// `"min"` or `"max"`.
        field: &'static str,
    },
    /// A duration (or a count of ticks) that must be positive is zero.
    #[error("`{field}` is zero: it must be positive")]
    Zero {
        /// The field's name, e.g. `"interval"`.
        field: &'static str,
    },
    /// A threshold is NaN or outside its range.
    #[error("`{field}` is {value}: it must be within {low}..={high}")]
    OutOfRange {
        /// The field's name, e.g. `"spare_cpu"`.
        field: &'static str,
        /// The value given (may be NaN).
        value: f64,
        /// The smallest value allowed.
        low: f64,
        /// The largest value allowed.
        high: f64,
    },
}

/// The controller's settings. Every default is chosen for a reason, given beside it.
///
/// Build one with `Config::default()` and change fields; [`Config::validate`] (called by
/// [`AdaptivePoolBuilder::build`](crate::AdaptivePoolBuilder::build)) names any bad field.
///
/// # Examples
///
/// ```
/// use policy_adaptive::Config;
/// use std::time::Duration;
///
/// let mut config = Config::default();
/// config.min = 2;
/// config.max = 64;
/// config.keep_alive = Duration::from_secs(1);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// Fewest workers. Default 1: an idle pool should cost one parked thread, nothing more.
    pub min: usize,
    /// Most workers. Default 256: enough for blocking I/O on a large machine, and a cap far below
    /// the ~500 threads tokio's blocking pool reaches, so a runaway backlog cannot exhaust memory.
    pub max: usize,
    /// Time between two decisions. Default 100 ms: adapts within a second. A tick reads
    /// pool-core's counters and per-worker busy time (`stats_with_workers`: one walk, no
    /// allocation), the process's CPU clock when the pool moved, every busy worker's CPU clock
    /// up to 8 busy workers and beyond that 4 in turn (pooled with the previous tick's 4), and, with a backlog on a busy host, 2
    /// `schedstat` files kept open (a `pread` each, every other tick for light workers on a
    /// free host; where the split is measured and 3 or more workers, or more than the cores,
    /// are busy, their `stat` too and 6 more busy workers' `stat`, kept open: the states,
    /// `Snapshot::states`, read between the `schedstat` readings too), memory from
    /// `/proc/meminfo` kept open every 20 ticks and `/proc/stat` once a
    /// second, so its cost hardly grows with the pool. A still pool (nothing finished, the
    /// counts unchanged for 2 ticks) reuses its last measured split for up to 3 ticks in a row
    /// without a clock or a file; an idle pool at `min` (armed) waits up to 4 intervals between
    /// ticks (the quiet stretch, `src/README.md`).
    ///
    /// What a tick costs, item by item (2-core VM, 2026-12-01; thread CPU, cold, as after the
    /// controller's 100 ms wait; from `tick_cost`, `strace` and callgrind):
    /// - the wait and wake-up: one timed `futex` wait per tick (`Condvar::wait_timeout`), no
    ///   other system call of its own, two clock readings (vDSO, no system call). 27-49 µs of
    ///   thread CPU per timed wake-up on this VM (arming the timer alone, a timeout of 0: 19 µs;
    ///   a wait woken by a notification instead of a timer: 14 µs). Only the quiet stretch
    ///   lowers their number. The largest item at 1 worker.
    /// - pool-core's walk over the workers' counters (`stats_with_workers`, 17.6 k
    ///   instructions at 256 workers): under 1 µs at 1 worker, 25-41 µs at 256 (cache and TLB
    ///   misses) while each worker allocated its own counter block in its own malloc arena. The
    ///   largest item at 256. Since pool-core allocates the blocks on the thread that starts
    ///   the workers, close together, `tick_cost 256 parked` reads a median of 26-32 µs per
    ///   tick against 36-50 µs, and `tick_cost 256 busy` 29-36 µs against 39-51 (three rounds
    ///   alternating, load average about 3). Since a worker's block is one cache line (its
    ///   start time moved to the registry), the walk touches one line per worker, not two.
    /// - the sample's own work without a system call (busy list, CPU clock marks by position,
    ///   one clock reading): 2-5 µs; `decide`: about 400 instructions.
    /// - the process's CPU clock (`CLOCK_PROCESS_CPUTIME_ID`; the kernel sums the process's
    ///   threads): 0.7 / 1.3 / 2.7 µs per read at 1 / 64 / 256 threads in a loop of reads, warm,
    ///   but about 40 µs at 256 threads once per tick, cold (`tick_cost 256 parked` with a read
    ///   on every tick: median 82 µs against 37 µs without). So only a tick whose pool moved
    ///   reads it; a still pool (parked, or every busy worker still in its task) does not, and
    ///   `tick_cost 256 churning` pays it: a median of 84 µs against 58 µs without.
    /// - a measured tick's reads: 4 CPU clocks about 4 µs; the first `schedstat` `pread` 14 µs
    ///   and the first `stat` 27 µs (under 3 µs each once the kernel's path is warm); the
    ///   sample's rotation, once a second at most (8 readings of the oldest worker first),
    ///   50-66 µs to open a worker's `schedstat`;
    ///   `/proc/stat` (once a second) 29-33 µs; `/proc/meminfo` (every 20 ticks) 24 µs.
    ///
    /// `tick_cost` (`PoolSignals::sample` + `decide`, no wait; mean of 50 ticks, 3 rounds
    /// alternating with the previous version, load average 1.3-5 by `uptime`): 1 parked worker
    /// 14-18 µs (17-17.5 before: no difference); 256 parked 41-46 µs (43-45; one outlier round
    /// each, 115 and 157); 256 blocked with a backlog 50-60 µs (56-73); 256 churning 53-90 µs
    /// (74-91); 4 of 256 blocked, the rest parked, 46-53 µs (63-72; medians 41-43 both: the
    /// measured ticks got cheaper, the CPU clock sample's walk over parked workers no longer
    /// looking each one up in a tree map). User space (callgrind, `--toggle-collect=
    /// '*PoolSignals*sample*'`, per sample): 26.8 k instructions blocked (27.1 k), 31.6 k
    /// churning (33.4 k), 26.9 k 4-busy (27.6 k). `compare --only "adaptive controller" --rounds
    /// 1` (wake-up included; 3-4 runs of each, load 1.2-5.3 at their start, other builds
    /// running): 1 worker 37-81 µs per tick, 64 workers 43-139, 256 workers 63-132, over the
    /// holds and from one run to the next of the same binary: at that spread the runs do not
    /// tell this version from the last. By the items above, a tick
    /// at 256 workers is a wake-up (27-49) plus pool-core's walk (25-41) plus 5-15 µs before
    /// any file is read, and a measured tick's reads on top: near the 0.1% target (100 µs),
    /// and a margin below 85 µs in every hold needs a cheaper walk in pool-core or a cheaper
    /// wake-up; nothing on this crate's side of the tick is that large.
    ///
    /// Measured again (2026-12-01, later; `tick_cost 256 churn` with temporary per-phase thread
    /// CPU probes, load 3-5): per tick, pool-core's walk 19-22 µs, the process's CPU clock
    /// 40-46 µs (every tick whose pool moved: the largest item of a churning tick), the
    /// `schedstat` sample 18-25 µs, 4 CPU clocks 9-11 µs, `/proc/stat` and memory 6-9 µs on
    /// average. An idle pool (nothing running or queued) now reuses its split for as long as it
    /// stays still, so a parked pool reads that clock only when a counter moves (`strace` of
    /// `tick_cost 256 parked`, 51 samples: 16 reads before, 5 after). `compare --only "adaptive
    /// controller CPU per tick" --rounds 1`, 256 workers, 6 runs alternating with the previous
    /// version (load 1.3-4.2, one pair at 14): parked 69-97 µs (72-125 before), idle at min
    /// 65-96 (85-142), busy 94-120 (92-114), busy with tasks finishing 130-187 (114-188): the
    /// last two unchanged (the idle rule does not apply) within the noise; at 1 worker 46-78 µs
    /// in every hold, most of it the timed wake-up (30-37 µs alone on this VM, whatever the
    /// timer slack). At 256 workers, parked and idle are under 100 µs in these runs (one of
    /// six without a margin); busy and churning are not: there the process clock's walk over
    /// 256 threads, pool-core's walk and the wake-up alone are about 100 µs on a measured tick.
    ///
    /// Measured again (2026-12-02, the counter block one cache line and the `schedstat`
    /// sample rotating after 8 readings; load 6-29 by `uptime`, other builds running, so not
    /// quiet). `tick_cost 256` (sample + decide, no wait), 2 rounds each, alternating with the
    /// version before both changes (4 rounds): parked 39-41 µs mean, median 27-28 (46-62,
    /// median 32-35); blocked with a backlog 64-72, median 27 (72-80, median 30-36); churning
    /// 122-135, median 92-115 (119-145, median 111-128). `compare --only "adaptive
    /// controller" --rounds 1`, 256 workers, µs per tick, 3 runs against 6 of the version
    /// before: parked 60-82 (69-95), idle at min 57-90 (69-111), busy 102-118 (111-177), busy
    /// with tasks finishing 151-171 (147-188). So a tick is a few µs cheaper (the walk touches
    /// one line per worker; a still pool opens a sampled worker's files every 8 readings, not
    /// every 2-3); the busy holds stay above the 100 µs target (0.1% of a core) on this VM:
    /// the wake-up (about 35 µs) and, on a measured tick, the process's CPU clock (about
    /// 45 µs cold at 256 threads) are most of them, and the decision's rules read that clock
    /// on every full tick (`decide`: the stale-split history, the light-process and room
    /// checks of growth, the trim's CPU), so it is read on every tick whose pool moved.
    ///
    /// The floor under all of it (2026-12-02, a fresh VM of the same kind, quiet): `compare`
    /// now measures, beside the holds, one thread's CPU per bare timed wait of the interval (a
    /// condvar wait that times out, nothing done between waits). On this host it read
    /// 81-148 µs per wait (15 readings, five runs at 1, 64 and 256 workers; 10 above 100 µs);
    /// a stand-alone loop of the same waits read 68-85 µs (medians), 31 µs at a 1 ms wait: the
    /// longer the sleep, the colder the wake-up. So on such a host no controller that wakes
    /// every 100 ms can stay under 0.1% of a core, and what this crate adds to a tick is the
    /// hold's figure minus that floor: at 256 workers, parked 17-47 µs, busy 49-88, busy with
    /// tasks finishing 108-153 (the process clock, the walk and the `schedstat` sample, above;
    /// four of the five runs, the fifth reading every hold 2-3 times higher).
    ///
    /// Measured again (2026-12-04, quiet, `compare --only "adaptive
    /// controller"`, nine runs): floor 54-74 µs; 256 workers parked 90-112, busy 100-131,
    /// busy with tasks finishing 134-175, idle at min 91-118; 64 workers 71-143; 1 worker
    /// 67-97. The process's CPU clock alone, one read after a 100 ms sleep (a C loop):
    /// 49-56 µs with 256 threads, 17 with 64, 4 with 1. Every wait primitive pays the floor
    /// here (`nanosleep`, a futex with a timeout, `epoll_wait`, `timerfd`, `poll`: 50-63 µs).
    pub interval: Duration,
    /// How long workers above `min` may stay idle before they retire. Default 2 s: rides out
    /// short gaps between bursts (20 ticks) yet gives threads back quickly.
    pub keep_alive: Duration,
    /// How long the pool may have queued work, every worker busy and no completion, before a
    /// worker is added (starvation). Default 250 ms: nested blocking (a task waiting on a child
    /// queued behind it) never completes by itself, and 250 ms of silence on a busy pool is rare.
    pub starvation_after: Duration,
    /// Grow on backlog only while the workers use less than this share of the cores. Default
    /// 0.75: above it the cores are nearly busy, and more threads add contention, not throughput.
    pub spare_cpu: f64,
    /// The workers use at least this share of the cores with almost nobody blocked: the pool is
    /// CPU-bound and threads above `cpu_threads_per_core × cores` only add switching. Default 0.9.
    pub saturated_cpu: f64,
    /// How many threads per core a CPU-bound pool keeps. Default 2.0: the design keeps at most 2 × the
    /// cores on CPU-bound work; the hill climber may go lower when that loses nothing.
    ///
    /// Beside other CPU load (another process busy on the same cores) the scheduler shares the
    /// cores by thread, so more threads take a larger share from the neighbour: on 2 cores
    /// beside one busy process, 4 threads get about 4/5 of the cores and 8 about 8/9. The
    /// default does not compete that way; a pool that should take more of a shared host raises
    /// this (`compare`'s W8 beside one busy process on 2 cores: 0.81-0.84 of the best fixed
    /// size at 2.0, 0.88-0.89 at 3.0, 0.92-0.93 at 4.0, its opt-in row), at the cost of more
    /// threads on a quiet host too.
    pub cpu_threads_per_core: f64,
    /// Below this share of memory available (host or cgroup, whichever is tighter), growth stops.
    /// Default 0.10: each thread's stack and working set add up, and swapping is worse than
    /// queueing.
    pub memory_low: f64,
    /// At or above this host CPU use, backlog growth is at most doubling per tick instead of
    /// ×4. A guard only: host CPU includes other processes, so it never stops
    /// growth of blocked workers and never shrinks the pool. Default 0.95.
    pub host_cpu_guard: f64,
    /// Whether the throughput-seeking hill climber runs. Default true.
    pub climb: bool,
    /// Ticks per hill-climbing measurement window. Default 5 (500 ms at the default interval):
    /// long enough that a 2-core machine's noise does not look like a trend.
    pub climb_window: u32,
    /// Relative throughput change that counts as better or worse. Default 0.05: smaller changes
    /// are noise, and a flat result prefers fewer threads. A walk down stops once it has lost
    /// this much from the best rate it measured, not from its last step's (the losses of several
    /// steps would add up).
    pub climb_tolerance: f64,
    /// Windows to wait after a probe was reverted before probing again, doubled after each
    /// further reversal up to 8×. Default 2: damps oscillation around the optimum.
    pub climb_hold: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            min: 1,
            max: 256,
            interval: Duration::from_millis(100),
            keep_alive: Duration::from_secs(2),
            starvation_after: Duration::from_millis(250),
            spare_cpu: 0.75,
            saturated_cpu: 0.9,
            cpu_threads_per_core: 2.0,
            memory_low: 0.10,
            host_cpu_guard: 0.95,
            climb: true,
            climb_window: 5,
            climb_tolerance: 0.05,
            climb_hold: 2,
        }
    }
}

impl Config {
    /// Checks every field; the error names the first bad one.
    ///
    /// # Errors
    ///
    /// [`ConfigError`]: `min > max`, a zero thread count, a zero duration or window, a NaN or
    /// out-of-range threshold.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_adaptive::{Config, ConfigError};
    ///
    /// let mut config = Config::default();
    /// config.spare_cpu = f64::NAN;
    /// assert!(matches!(config.validate(), Err(ConfigError::OutOfRange { field: "spare_cpu", .. })));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max == 0 {
            return Err(ConfigError::ZeroThreads { field: "max" });
        }
        if self.min == 0 {
            return Err(ConfigError::ZeroThreads { field: "min" });
        }
        if self.min > self.max {
            return Err(ConfigError::MinAboveMax {
                min: self.min,
                max: self.max,
            });
        }
        for (field, value) in [
            ("interval", self.interval),
            ("keep_alive", self.keep_alive),
            ("starvation_after", self.starvation_after),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Zero { field });
            }
        }
        if self.climb_window == 0 {
            return Err(ConfigError::Zero {
                field: "climb_window",
            });
        }
        for (field, value, low, high) in [
            ("spare_cpu", self.spare_cpu, 0.0, 1.0),
            ("saturated_cpu", self.saturated_cpu, 0.0, 1.0),
            ("cpu_threads_per_core", self.cpu_threads_per_core, 1.0, 64.0),
            ("memory_low", self.memory_low, 0.0, 1.0),
            ("host_cpu_guard", self.host_cpu_guard, 0.0, 1.0),
            ("climb_tolerance", self.climb_tolerance, 0.0, 1.0),
        ] {
            // `contains` is false for NaN, so NaN is reported here too.
            if !(low..=high).contains(&value) {
                return Err(ConfigError::OutOfRange {
                    field,
                    value,
                    low,
                    high,
                });
            }
        }
        Ok(())
    }
}
