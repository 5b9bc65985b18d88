//! What the controller remembers between ticks: [`ControllerState`], and the hill climber's
//! memory inside it.

use std::time::Duration;

use super::peak::PeakWindow;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Direction {
    Up,
    Down,
}

/// The hill climber's memory.
#[derive(Clone, Debug, Default)]
pub(super) struct Climb {
    /// The size the current window measures; a size change restarts the window.
    pub(super) size: usize,
    pub(super) done: u64,
    pub(super) time: Duration,
    /// The previous window's size and the baseline of the next comparison: that window's
    /// throughput, or on a walk the best the walk has measured.
    pub(super) last: Option<(usize, f64)>,
    /// Next probe's direction (`None` = up).
    pub(super) direction: Option<Direction>,
    /// Windows to wait before the next probe.
    pub(super) hold: u32,
    /// Reversals in a row, for the damping.
    pub(super) reversals: u32,
}

impl Climb {
    pub(super) fn restart(&mut self, size: usize) {
        self.size = size;
        self.done = 0;
        self.time = Duration::ZERO;
    }
}

/// What the controller remembers between ticks. Start with [`ControllerState::new`].
///
/// # Examples
///
/// ```
/// use policy_adaptive::ControllerState;
///
/// let state = ControllerState::new();
/// assert_eq!(state.ticks(), 0);
/// assert_eq!(state.reversals(), 0);
/// ```
#[derive(Clone, Debug, Default)]
pub struct ControllerState {
    pub(super) ticks: u64,
    /// Time with nothing queued and someone idle, and the most workers busy at once over the
    /// last `keep_alive` of it: the idle rule shrinks to that peak.
    pub(super) surplus: PeakWindow,
    /// Time with work queued, all busy and no completion.
    pub(super) stalled_for: Duration,
    pub(super) climb: Climb,
    pub(super) total_reversals: u64,
    /// After a growth by the blocked count: the throughput before it, and how long growth on
    /// that evidence stays damped unless throughput rises (`DAMP_FOR`).
    pub(super) damp: Option<(f64, Duration)>,
    /// The last two full ticks' workers' CPU (cores) and busy count, newest first, for the
    /// off-CPU presumption of rule 4 (a CPU use that fell by half at no fewer busy workers).
    /// Two: a load that changes mid-tick splits its drop over two ticks.
    pub(super) last_cpu: [Option<(f64, u64)>; 2],
    /// The last two full ticks' process CPU (cores), newest first, for the rise of rule 4.
    pub(super) last_process: [Option<f64>; 2],
    /// The last two full ticks' process CPU per completed task (seconds), newest first, for
    /// the heavier tasks that make the split stale (`HEAVIER_TASKS`).
    pub(super) last_task_cpu: [Option<f64>; 2],
    /// The last full tick's blocked share of its busy workers, for rule 6's trim (the larger
    /// of it and this tick's).
    pub(super) last_blocked_share: Option<f64>,
    /// After the process's CPU rose to the cores, or with heavier tasks: the rise (from, to)
    /// and how long the blocked split still speaks for the load before it (`SPLIT_SPAN`).
    pub(super) stale_split: Option<(f64, f64, Duration)>,
    /// The last full tick read the workers' CPU dipped by a quarter or more with a backlog and
    /// the pool near the CPU cap, but not by half (a load that changed mid-tick): a decision
    /// `LOOK_AGAIN_AFTER` into the next interval judges the drop on its own window
    /// ([`ControllerState::looks_again`]).
    pub(super) look_again: bool,
    /// The backlog the last sample read, net of the workers not running a task (zero after a
    /// look between samples that found it gone): rule 4's burst grows by at most what two
    /// looks in a row read (`ControllerState::forget_backlog`).
    pub(super) backlog_seen: usize,
}

impl ControllerState {
    /// A fresh state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ticks decided so far.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// How often the hill climber reversed direction.
    pub fn reversals(&self) -> u64 {
        self.total_reversals
    }

    /// Whether the last full tick asks for a second look: a decision
    /// `interval / LOOK_AGAIN_AFTER` after it (the controller takes one then, early tick or not).
    ///
    /// Set when a CPU-bound pool with a backlog read its workers' CPU fallen by a quarter or
    /// more but not by half: the tick straddles a change of load (a computing phase's queued
    /// tasks ran its first half), and the look, over the new load alone, tells a fall by half
    /// (rule 4's "CPU fell") a tick sooner. Set too, on the same terms, when the CPU has not
    /// fallen yet but the busy workers' states (`Snapshot::states`) read half or more of them
    /// asleep: the change reached them at the tick's very end. Cleared by the next full tick,
    /// or by the look that grows on the fall.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_adaptive::{decide, Config, ControllerState, Snapshot};
    /// use std::time::Duration;
    ///
    /// let mut state = ControllerState::new();
    /// assert!(!state.looks_again());
    /// let quiet = Snapshot { threads: 1, target: 1, ..Snapshot::new(Duration::from_millis(100), 2) };
    /// decide(&quiet, &mut state, &Config::default());
    /// assert!(!state.looks_again());
    /// ```
    pub fn looks_again(&self) -> bool {
        self.look_again
    }

    /// A look between samples found nothing queued, or the queue covered by workers not
    /// running a task: the backlog the last sample read is gone, and a backlog the next sample
    /// reads is a new one (rule 4's burst then grows by one and looks again).
    pub(crate) fn forget_backlog(&mut self) {
        self.backlog_seen = 0;
    }
}
