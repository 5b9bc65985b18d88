//! The still-pool rule: when the counters have not moved for a few samples, a sample reuses the
//! last measured split instead of reading CPU clocks and `/proc` files.

/// Samples in a row that must find the pool still (nothing finished, the same queued, running,
/// live and target counts, the host CPU on the same side of `HOST_FREE_BELOW`) before the next still one reuses the last
/// measured split instead of reading the CPU clocks and the `schedstat` sample.
pub(super) const STILL_SAMPLES: u32 = 2;

/// Still samples in a row that may reuse the split: every `REUSE_MAX + 1`-th still sample
/// measures again, so a task that turns from blocked to computing without finishing (the one
/// change the counters cannot show) is seen at most `REUSE_MAX` ticks late.
pub(super) const REUSE_MAX: u32 = 3;

/// Whether a sample may reuse the last split (the steady-state rule for the dearest reads).
///
/// A pool whose counters do not move (every busy worker stuck in the same task, the backlog
/// unchanged, the last decisions all kept the count: the target did not change) has nothing new
/// to say about how its busy time splits, and the reads that measure the split are most of a
/// busy tick: at 256 blocked workers with a backlog, the two `stat` and two `schedstat`
/// re-reads were 42% of the sample's CPU, the CPU clocks 6% and re-opening the sample's files
/// 5% (`perf record` of `tick_cost 256 busy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Stillness {
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
    pub(super) fn reuse(&mut self, moved: bool, known: bool, idle: bool) -> bool {
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
pub(super) struct Counters {
    pub(super) queued: u64,
    pub(super) running: u64,
    pub(super) threads: usize,
    pub(super) target: usize,
    /// Whether the host reading is below `HOST_FREE_BELOW`: what the split's method depends
    /// on (the reading itself is in every snapshot, fresh, for the host CPU guard).
    pub(super) host_free: Option<bool>,
}
