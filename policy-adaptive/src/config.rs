//! The controller's settings, their defaults (each with its reason) and their validation.

use std::time::Duration;

use pool_core::ThreadPool;

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
    /// `max` is above the most workers a pool holds
    /// ([`ThreadPool::MAX_THREADS`](pool_core::ThreadPool::MAX_THREADS)): growing towards it
    /// could take the process past what the operating system can map for threads.
    #[error("`max` ({max}) is more than a pool holds (ThreadPool::MAX_THREADS, {limit})")]
    MaxAbovePoolLimit {
        /// The `max` given.
        max: usize,
        /// `ThreadPool::MAX_THREADS`.
        limit: usize,
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
    /// A duration outside its range (`interval`: `Config::INTERVAL_RANGE`).
    #[error("`{field}` is {value:?}: it must be within {low:?}..={high:?}")]
    DurationOutOfRange {
        /// The field's name, e.g. `"interval"`.
        field: &'static str,
        /// The value given.
        value: Duration,
        /// The shortest value allowed.
        low: Duration,
        /// The longest value allowed.
        high: Duration,
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
    /// At most [`ThreadPool::MAX_THREADS`].
    pub max: usize,
    /// Time between two decisions. Default 100 ms: adapts within a second. A tick reads
    /// pool-core's counters and per-worker busy time (`stats_with_workers`: one walk, no
    /// allocation), the process's CPU clock when the pool moved, every busy worker's CPU clock
    /// up to 8 busy workers and beyond that 4 in turn (pooled with the previous tick's 4), and,
    /// with a backlog on a busy host, 2 `schedstat` files kept open (a `pread` each, every
    /// other tick for light workers on a free host; where the split is measured and 3 or more
    /// workers, or more than the cores, are busy, their `stat` too and 6 more busy workers'
    /// `stat`, kept open: the states, `Snapshot::states`, read between the `schedstat` readings
    /// too), memory from `/proc/meminfo` kept open every 20 ticks and `/proc/stat` once a
    /// second, so its cost hardly grows with the pool. A still pool (nothing finished, the
    /// counts unchanged for 2 ticks) reuses its last measured split for up to 3 ticks in a row
    /// without a clock or a file, then checks it with the process's CPU clock alone (a full
    /// measurement every 16th still tick); an idle pool at `min` (armed) waits up to 4 intervals between
    /// ticks (the quiet stretch, `src/README.md`).
    ///
    /// What that costs: the controller thread's CPU per tick at this default, wake-up included
    /// (`compare --only "adaptive controller CPU per tick"`, 2-core VMs, 15 runs on 2026-12-05
    /// and 2026-12-06), was 65-142 µs at 256 workers parked, idle or blocked and 104-195 µs
    /// with tasks finishing (every tick measures), over a floor of 40-80 µs that any thread
    /// paid on those hosts for one bare timed wait of the interval. The crate README gives the
    /// figures day by day and where the 0.1%-of-a-core target (100 µs per tick) held;
    /// `src/README.md`, "What a tick costs", gives each item's cost and how it was measured.
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
    /// size at 2.0, 0.88-0.89 at 3.0, 0.91-0.93 at 4.0, its opt-in row), at the cost of more
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
    /// The shortest and the longest `interval`. Below a millisecond the controller would do
    /// little but wake up (at 1 ns it took 67 000 ticks in 0.4 s, a core's worth of CPU) and
    /// its rates would count a handful of tasks; above an hour it would not follow any load,
    /// and its schedule (up to 4 intervals ahead of the clock: the quiet stretch) could pass
    /// the end of `Instant`'s range, which panicked the controller thread at `Duration::MAX`.
    /// `keep_alive` and `starvation_after` have no upper bound: `Duration::MAX` reads as
    /// "never".
    pub const INTERVAL_RANGE: (Duration, Duration) =
        (Duration::from_millis(1), Duration::from_secs(3600));

    /// Checks every field; the error names the first bad one.
    ///
    /// # Errors
    ///
    /// [`ConfigError`]: `min > max`, a zero thread count, a zero duration or window, an
    /// `interval` outside [`INTERVAL_RANGE`](Self::INTERVAL_RANGE), a NaN or out-of-range
    /// threshold.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_adaptive::{Config, ConfigError};
    /// use std::time::Duration;
    ///
    /// let mut config = Config::default();
    /// config.spare_cpu = f64::NAN;
    /// assert!(matches!(config.validate(), Err(ConfigError::OutOfRange { field: "spare_cpu", .. })));
    ///
    /// let mut config = Config::default();
    /// config.interval = Duration::MAX;
    /// let error = config.validate().unwrap_err();
    /// assert!(matches!(error, ConfigError::DurationOutOfRange { field: "interval", .. }));
    /// assert!(error.to_string().contains("1ms..=3600s"), "{error}");
    ///
    /// // "Never retire": no upper bound on the keep-alive.
    /// config.interval = Duration::from_millis(100);
    /// config.keep_alive = Duration::MAX;
    /// assert_eq!(config.validate(), Ok(()));
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
        if self.max > ThreadPool::MAX_THREADS {
            return Err(ConfigError::MaxAbovePoolLimit {
                max: self.max,
                limit: ThreadPool::MAX_THREADS,
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
        let (low, high) = Config::INTERVAL_RANGE;
        if !(low..=high).contains(&self.interval) {
            return Err(ConfigError::DurationOutOfRange {
                field: "interval",
                value: self.interval,
                low,
                high,
            });
        }
        if self.climb_window == 0 {
            return Err(ConfigError::Zero {
                field: "climb_window",
            });
        }
        // The table lends its fields mutably (what `bounded` needs); a copy of this plain-data
        // config lends them here.
        for (field, value, (low, high)) in self.clone().thresholds() {
            // `contains` is false for NaN, so NaN is reported here too.
            if !(low..=high).contains(value) {
                return Err(ConfigError::OutOfRange {
                    field,
                    value: *value,
                    low,
                    high,
                });
            }
        }
        Ok(())
    }

    /// This config read as its nearest valid one: each field [`validate`](Self::validate)
    /// would refuse moves to the closest value it accepts (`min` into
    /// `1..=ThreadPool::MAX_THREADS`, `max` into `min..=ThreadPool::MAX_THREADS`, a zero
    /// duration to 1 ns, the interval into `INTERVAL_RANGE`, a threshold into its range, a NaN
    /// threshold to its default). What `decide` and `grows_on_demand` read: both are public,
    /// and a config built by hand and never validated (`min` above `max`) panicked them in a
    /// clamp. A valid config comes back unchanged.
    pub(crate) fn bounded(&self) -> Config {
        let mut bounded = self.clone();
        bounded.min = self.min.clamp(1, ThreadPool::MAX_THREADS);
        bounded.max = self.max.clamp(bounded.min, ThreadPool::MAX_THREADS);
        let (low, high) = Config::INTERVAL_RANGE;
        bounded.interval = self.interval.clamp(low, high);
        for duration in [&mut bounded.keep_alive, &mut bounded.starvation_after] {
            *duration = (*duration).max(Duration::from_nanos(1));
        }
        bounded.climb_window = self.climb_window.max(1);
        let mut defaults = Config::default();
        for ((_, value, (low, high)), (_, default, _)) in
            bounded.thresholds().into_iter().zip(defaults.thresholds())
        {
            *value = if value.is_nan() {
                *default
            } else {
                value.clamp(low, high)
            };
        }
        bounded
    }

    /// The thresholds, each with the range [`validate`](Self::validate) accepts.
    fn thresholds(&mut self) -> [(&'static str, &mut f64, (f64, f64)); 6] {
        [
            ("spare_cpu", &mut self.spare_cpu, (0.0, 1.0)),
            ("saturated_cpu", &mut self.saturated_cpu, (0.0, 1.0)),
            (
                "cpu_threads_per_core",
                &mut self.cpu_threads_per_core,
                (1.0, 64.0),
            ),
            ("memory_low", &mut self.memory_low, (0.0, 1.0)),
            ("host_cpu_guard", &mut self.host_cpu_guard, (0.0, 1.0)),
            ("climb_tolerance", &mut self.climb_tolerance, (0.0, 1.0)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `decide` reads every config through `bounded`: a valid one must come back unchanged, or
    /// a validated pool's decisions would move.
    #[test]
    fn a_valid_config_is_its_own_nearest_valid_one() {
        let mut config = Config::default();
        assert_eq!(config.bounded(), config);
        config.min = 3;
        config.max = ThreadPool::MAX_THREADS;
        config.interval = Config::INTERVAL_RANGE.1;
        config.keep_alive = Duration::MAX;
        config.cpu_threads_per_core = 64.0;
        config.spare_cpu = 0.0;
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.bounded(), config);
    }

    #[test]
    fn an_invalid_config_reads_as_its_nearest_valid_one() {
        let mut config = Config {
            min: 9,
            max: 4,
            interval: Duration::ZERO,
            keep_alive: Duration::ZERO,
            climb_window: 0,
            spare_cpu: f64::NAN,
            cpu_threads_per_core: 0.5,
            host_cpu_guard: f64::INFINITY,
            ..Config::default()
        };
        let bounded = config.bounded();
        assert_eq!(bounded.validate(), Ok(()));
        assert_eq!((bounded.min, bounded.max), (9, 9));
        assert_eq!(bounded.interval, Config::INTERVAL_RANGE.0);
        assert_eq!(bounded.keep_alive, Duration::from_nanos(1));
        assert_eq!(bounded.climb_window, 1);
        assert_eq!(bounded.spare_cpu, Config::default().spare_cpu);
        assert_eq!(bounded.cpu_threads_per_core, 1.0);
        assert_eq!(bounded.host_cpu_guard, 1.0);
        config.min = 0;
        config.max = usize::MAX;
        let bounded = config.bounded();
        assert_eq!((bounded.min, bounded.max), (1, ThreadPool::MAX_THREADS));
    }
}
