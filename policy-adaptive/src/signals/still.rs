//! The still-pool rule: when the counters have not moved for a few samples, a sample reuses the
//! last measured split instead of reading CPU clocks and `/proc` files, and now and then checks
//! it against the process's CPU clock alone.

/// Samples in a row that must find the pool still (nothing finished, the same queued, running,
/// live and target counts, the host CPU on the same side of `HOST_FREE_BELOW`) before the next
/// still one reuses the last measured split instead of reading the CPU clocks and the
/// `schedstat` sample.
pub(super) const STILL_SAMPLES: u32 = 2;

/// Still samples in a row that may reuse the split: every `REUSE_MAX + 1`-th still sample
/// checks it (or measures it again), so a task that turns from blocked to computing without
/// finishing (the one change the counters cannot show) is seen at most `REUSE_MAX` ticks late.
pub(super) const REUSE_MAX: u32 = 3;

/// Checks in a row that may stand in for a measurement: at least every
/// `(CHECK_MAX + 1) × (REUSE_MAX + 1)`-th still sample (1.6 s at the default interval) measures
/// the split again, so that a change the process's CPU cannot show (tasks trading CPU for
/// blocking among themselves, the total unchanged) is not carried for longer.
pub(super) const CHECK_MAX: u32 = 3;

/// How far the process's CPU may move, in cores, before a check says the pool moved: this many
/// cores plus `CHECK_SLACK_SHARE` of the measured figure. A task that turns from blocked to
/// computing moves it by up to a core over one tick, a quarter of a core over the four ticks
/// a check's reading spans (the checks come `REUSE_MAX + 1` samples apart): above this. The
/// process's other threads and the controller itself stay well below it in a still pool.
pub(super) const CHECK_SLACK_CORES: f64 = 0.1;

/// The share of the measured process CPU a check allows on top of `CHECK_SLACK_CORES`: a pool
/// of tasks that compute a little between their waits reads a few percent apart from one
/// window to the next.
pub(super) const CHECK_SLACK_SHARE: f64 = 0.25;

/// What a sample does about the split of the workers' busy time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SplitRead {
    /// Read the CPU clocks and the `schedstat` and state samples (`worker_time`).
    Measure,
    /// Reuse the last measured split: no clock, no file.
    Reuse,
    /// Read the process's CPU clock alone: reuse the split if the figure is where the last
    /// measurement left it (`steady`), else measure (with that reading).
    Check,
}

/// Where a still pool stands in the rule (the steady-state rule for the dearest reads).
///
/// A pool whose counters do not move (every busy worker stuck in the same task, the backlog
/// unchanged, the last decisions all kept the count: the target did not change) has nothing new
/// to say about how its busy time splits, and the reads that measure the split are most of a
/// busy tick: at 256 blocked workers with a backlog, the two `stat` and two `schedstat`
/// re-reads were 42% of the sample's CPU, the CPU clocks 6% and re-opening the sample's files
/// 5% (`perf record` of `tick_cost 256 busy`). What the counters cannot show, a task turning
/// from blocked to computing (or back), moves the process's CPU: one clock read (the kernel's
/// sum over the process's threads) checks for it at a third of a measurement's cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Stillness {
    /// Samples in a row that found the pool still.
    still: u32,
    /// Of those, the reuses since the last check or measurement.
    reused: u32,
    /// Checks since the last measurement.
    checked: u32,
}

impl Stillness {
    /// `moved`: a counter moved since the last sample; `known`: the last measured sample split
    /// the busy time (there is something to reuse); `idle`: nothing is running or queued now.
    /// Returns what this sample does about the split.
    ///
    /// An idle still pool reuses its split for as long as it stays still, past `REUSE_MAX`:
    /// the check or measurement every `REUSE_MAX + 1` samples is there for a running task that
    /// turns from blocked to computing without finishing, and with nothing running there is
    /// none. Its split was measured still and idle (at least one still sample measures first,
    /// with the same counters: nothing running), so a measurement would only read it again: no
    /// blocked worker and next to no CPU, or, on a busy host, unknown (`sample` keeps an idle
    /// pool's split even then). A submission, a finished task, a resize or the host
    /// reading crossing `HOST_FREE_BELOW` moves a counter, and the next sample measures.
    pub(super) fn next(&mut self, moved: bool, known: bool, idle: bool) -> SplitRead {
        if moved {
            *self = Stillness::default();
            return SplitRead::Measure;
        }
        self.still = self.still.saturating_add(1);
        if self.still <= STILL_SAMPLES || !known {
            self.reused = 0;
            self.checked = 0;
            return SplitRead::Measure;
        }
        if idle || self.reused < REUSE_MAX {
            self.reused = self.reused.saturating_add(1);
            return SplitRead::Reuse;
        }
        self.reused = 0;
        if self.checked < CHECK_MAX {
            self.checked += 1;
            SplitRead::Check
        } else {
            self.checked = 0;
            SplitRead::Measure
        }
    }

    /// A check found the process's CPU moved: the pool is not still, as if a counter had
    /// moved (the check's sample measures, and so do the next `STILL_SAMPLES`).
    pub(super) fn moved(&mut self) {
        *self = Stillness::default();
    }
}

/// A check's verdict: whether the process's CPU since its last reading (`now`, cores) is
/// within the slack of the last measured sample's (`measured`). `None` when either is unknown
/// (no process clock on this platform, or a figure that is not a number): the sample then
/// measures, and the pool stays still.
pub(super) fn steady(now: Option<f64>, measured: Option<f64>) -> Option<bool> {
    let (now, measured) = (now?, measured?);
    (now.is_finite() && measured.is_finite())
        .then(|| (now - measured).abs() <= CHECK_SLACK_CORES + CHECK_SLACK_SHARE * measured.abs())
}

/// What a still sample compares with the last one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Counters {
    pub(super) queued: u64,
    pub(super) running: u64,
    pub(super) threads: usize,
    pub(super) target: usize,
    /// Whether the host reading is below `HOST_FREE_BELOW`: what the split's method depends
    /// on (the reading itself is in every snapshot, fresh, for the host CPU guard).
    pub(super) host_free: Option<bool>,
}
