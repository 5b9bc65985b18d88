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
    /// allocation), every busy worker's CPU clock up to 8 busy workers and beyond that 4 in
    /// turn (pooled with the previous tick's 4), and, with a backlog on a busy host, 2
    /// `schedstat` files kept open (a `pread` each, every other tick for light workers on a
    /// free host; with more busy workers than cores and the split's rule needing them, their
    /// `stat` too), memory from `/proc/meminfo` kept open every 20 ticks and `/proc/stat` once a
    /// second, so its cost hardly grows with the pool. A still pool (nothing finished, the
    /// counts unchanged for 2 ticks) reuses its last measured split for up to 3 ticks in a row
    /// without a clock or a file; an idle pool at `min` (armed) waits up to 4 intervals between
    /// ticks (the quiet stretch, `src/README.md`).
    ///
    /// Measured (`examples/tick_cost.rs`: `PoolSignals::sample` + `decide`, the tick's own
    /// thread CPU, mean and median of 50 ticks; 2 cores shared with three other builds, load
    /// average 2-8 by `uptime`, alternating with the previous version): 256 workers all
    /// blocked with a backlog 64-86 µs (median 37-56 µs) where the previous version took
    /// 107-135 µs (median 85-114 µs); 64 blocked 41 µs (74 before); 256 parked 37-42 µs, the
    /// same as before within the noise (28% fewer instructions hardly show: the tick runs with
    /// cold caches after its sleep, and a fused stats read that saved instructions cost time,
    /// so it was dropped); 1
    /// parked 14-18 µs. System calls per 256-busy tick: 4.4 thread CPU clocks and 1.5 `pread`s
    /// on average (8 and 4.3 before; a measured tick still makes 8 and 4), plus the wait's
    /// `futex`; the controller no longer reads its own clock each tick. User space
    /// (callgrind): 32 k instructions per 256-busy sample (55 k before), 29 k parked (43 k).
    /// The wait and wake-up come on top, 31-44 µs of thread CPU per wake-up on this VM whatever
    /// the mechanism, and only the quiet stretch reduces their number. `compare`'s controller
    /// rows count them (`compare --only "adaptive controller" --rounds 1`, load average 2-3):
    /// per tick 49 µs at 1 parked worker, 55 µs at 64, 101 µs at 256 parked and 101 µs at 256
    /// busy (the previous round: 119-307 and 154-185 µs at 256), that is 486, 549, 1007 and
    /// 1004 µs per second of wall time (0.05-0.1% of a core). Idle at `min` with room to grow,
    /// the stretch gave 127 µs/s at 1 worker and 281 µs/s at 64; at 256 it did not apply on
    /// that busy host (645 µs/s at 65 µs per tick): with the host's CPU at 90% or more the
    /// parked workers' split is unknown, so a pool at or above the CPU cap is not armed, and
    /// an unarmed pool never stretches its wait. So at 256 workers, parked or busy, the
    /// controller sits at the 0.1% target on this host (101 µs per tick, 1.0 ms per second:
    /// just over it), and an idle pool whose wait stretches is well under it. A longer
    /// interval divides the cost.
    ///
    /// Busy workers whose tasks finish (`tick_cost N churn`, `compare`'s "tasks finishing"
    /// hold: 2N tasks each blocking 20 ms and queueing itself again, so every tick measures),
    /// alternating runs of main's and this version at load average 2.5-3.5: 256 workers
    /// 64-81 µs per tick (median 56-69) against 99-118 µs (median 91-103); 64 workers
    /// 52-54 µs (median 42-51) against 80-89 µs (median 71-75). Per 256-worker tick (`strace
    /// -p` of the ticking thread only, 29 ticks): 4 CPU clocks, 1.45 `pread`s and 0.1 `open`s
    /// against 8, 4.4 and 0.2 (light sleepers on a host with a CPU free: no `stat` re-reads,
    /// the `schedstat` pair every other tick; on a host at 90% CPU or more the 2 `stat` and 2
    /// `schedstat` re-reads stay, every tick). User space (callgrind, `--toggle-collect=
    /// '*PoolSignals*sample*'`): 33.4 k instructions per sample against 40.2 k, of which
    /// pool-core's walk over the workers' counters is 17.6 k (their cache lines move with
    /// every finished task: why this hold costs more than the still busy one). `compare --only
    /// "adaptive controller" --rounds 1` (wake-ups included), main's binary then this
    /// version's, load average 0.4-1.1 (4.2 at the very end): tasks finishing 150 -> 84 µs
    /// per tick at 256 workers and 123 -> 85 µs at 64; parked 90 -> 78 and busy-still 100 ->
    /// 84 µs at 256 (those paths are unchanged: noise). An earlier single run of this version
    /// at load 1.1: 97 µs at 256 finishing, 75 µs at 64.
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
    /// are noise, and a flat result prefers fewer threads.
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
