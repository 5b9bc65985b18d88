//! The pure decision: [`decide`] maps a [`Snapshot`] and the [`ControllerState`] to a target
//! worker count and a reason. No threads, no clocks: tests script it tick by tick.
//!
//! Rules, in order (the first that applies wins):
//! 1. *Bounds*: a target outside `min..=max` is brought inside.
//! 2. *Starvation*: work queued, every worker busy, no completion for `starvation_after`: add
//!    one worker. Applies even under memory pressure: one more stack is cheaper than a deadlock
//!    (a task waiting on a child queued behind it).
//! 3. *Idle keep-alive*: no work queued and some workers idle for `keep_alive`: shrink to the
//!    most workers that were busy at once in the last `keep_alive` (at least `min`). The window
//!    slides: while the surplus lasts, every tick may shrink again, so a pool whose load drained
//!    away over a while is back at `min` one keep-alive after the last busy worker, not after
//!    one keep-alive per step down.
//! 4. *Backlog with blocked workers*: work queued, busy workers blocked, and room for more:
//!    the blocking ratio's size, `cpu_threads_per_core × cores × (cpu + blocked) / cpu` (the
//!    CPU cap scaled by how long a worker is off the CPU for each unit on it, the run-queue
//!    wait left out), not yet reached. Busy workers nearly all (3/4) blocked: grow to the
//!    backlog at once (one thread per queued task, as tokio's blocking pool does), bounded by
//!    that room and `max`, early decision or not, and by the backlog the last sample read too:
//!    a backlog no look read before grows by one (`Reason::NewBacklog`), and the controller
//!    looks again after the early gap (a closed loop's clients submit their next task before
//!    the worker leaves the last, so an instant can read a backlog that is none; a look
//!    between samples that finds the queue empty ends the backlog it read). At least half
//!    blocked: by the backlog's blocked share (each queued task is that share of a thread) or
//!    the blocked count, the larger; under half, by the count; either at most ×4 per
//!    interval (an early decision, taken a fraction of an interval after the last, grows only
//!    workers nearly all blocked: over its few ms a worker waiting for a CPU can look
//!    blocked). Workers that want the cores (`spare_cpu × cores`) without being blocked half
//!    their busy time leave no room, and so do workers whose own CPU time already fills the
//!    cores (9/10 of them): a thread more would only queue for one. Held under memory pressure; at most doubling per
//!    interval when the host CPU is saturated (the guard), except the burst of workers nearly
//!    all blocked (the host's CPU, read once a second, may still be our own last phase's).
//!    A growth by the blocked count that did not raise throughput holds the next one (for
//!    `DAMP_FOR` = 3 intervals, or until throughput rises): the blocked reading spans 250 ms
//!    and may still be the last load's. The same lag the other way: when our workers' CPU
//!    falls by half or more (from the higher of the last two full ticks), to under half the
//!    cores, on a full tick with the workers busy, while the split still reads mostly
//!    run-queue wait (a CPU-bound phase's), and the process's CPU, where known, dipped by a
//!    quarter with it (the clocks, read in turn, may still span a trim's larger pool), their
//!    off-CPU time counts as blocked for that
//!    tick: growth at ×4 (not halved by the host guard: its once-a-second reading still shows
//!    the CPU phase), from at most twice the CPU cap to at most 4 × the cap, damped like a
//!    growth by the count (`Reason::CpuFell`); a full tick whose CPU fell by a quarter only
//!    (a load that changed mid-tick) asks for a second look a quarter interval on
//!    (`ControllerState::looks_again`), which judges the fall as that tick's. The busy
//!    workers' states, where read (`Snapshot::states`), are fresh where those figures average
//!    the window: found mostly runnable they veto the fall (an outside hog taking the cores);
//!    found mostly asleep (3/4) they make a fall by a quarter enough, to any share of the
//!    cores; found half asleep on a full tick they ask for the second look however little the
//!    CPU fell yet (CPU-bound workers never read asleep). And the lag the
//!    first way: when the process's CPU (fresh every tick) rises to the cores (9/10) from half
//!    or less of the lower of the last two full ticks, or rises by a quarter of the cores with
//!    its CPU per completed task tripled (heavier tasks: a tick that straddles the switch, or
//!    an early one after it), the split is the last load's for its span (250 ms): no growth
//!    on it (`Reason::CpuRose`). The backlog counted is net of the workers not running a task (each
//!    takes a queued task once it gets a CPU). Whether the workers' CPU fills the cores (no
//!    room) is judged on at most the process's over the same interval (their clocks, read in
//!    turn, may span seconds). Half-blocked workers are light (the burst) by the process's CPU
//!    too, where it is under half the cores and under `LIGHT_TASK_CPU` per completed task
//!    (over `LIGHT_TASKS` completions, a tenth of an interval or more): the clocks of a sleep
//!    phase's workers still read the CPU phase before it; the blocking ratio is then taken on
//!    the process's figure. "Half blocked" there is the split's, or, while the split may still
//!    be the last phase's, the process's CPU fallen by half from at least half the cores.
//! 5. *Up to the CPU cap*: work queued, every worker busy, fewer workers than cores: grow to
//!    `cpu_threads_per_core × cores` at once (the size rule 6 keeps for CPU-bound work; the
//!    climber, one window per step, may then settle lower, never below the cores).
//! 6. *CPU saturation*: the workers want (use or wait for) at least the cores and almost none
//!    is blocked: trim to `cpu_threads_per_core × cores`, scaled by the blocking ratio
//!    (`(cpu + blocked) / cpu`, as in rule 4) when some of them are blocked (the larger blocked
//!    share of the busy workers, this tick's or the last full one's), the CPU there the
//!    process's (up to the cores) when higher than the workers' clocks say. Judged on our own workers' demand,
//!    never on host CPU, so a busy neighbour never triggers it. Not while the process's CPU
//!    has fallen by half from at least half the cores (the split is the last load's), and
//!    only on a tick's window (a full tick or the second look), not on an early decision.
//! 7. *Hill climber*: with a backlog and nothing above applying, compare throughput window by
//!    window (`climb_window` intervals of time): probe a step, keep the direction while it helps
//!    (up) or costs nothing (down: within `climb_tolerance` of the best rate the walk measured),
//!    else go back and wait, longer after each reversal. It never goes below the core count:
//!    under a CPU hog its comparisons are noise, and fewer threads than cores only hand the hog
//!    our share; nor below the CPU cap while other processes use the cores (the scheduler
//!    shares them by thread). Below the cores only the idle rule shrinks.
//!    Not on a tick that asked for a second look (rule 4): it may straddle a change of load,
//!    whose rate the window would take for its step's; the window starts again after it.
//!
//! Between ticks, [`grows_on_demand`] says whether a submission that finds every worker busy
//! and work queued should ask for an early decision (the controller's on-demand growth).

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use crate::config::Config;
use crate::snapshot::Snapshot;

/// Why the controller chose its target.
///
/// # Examples
///
/// ```
/// use policy_adaptive::Reason;
///
/// assert_eq!(Reason::Starvation.to_string(), "starvation: queued work, all busy, no completions");
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Reason {
    /// Nothing to change.
    Hold,
    /// The current count was outside `min..=max`.
    Bounds,
    /// Queued work, all workers busy, no completions for `starvation_after`.
    Starvation,
    /// Workers idle with nothing queued for `keep_alive`.
    Idle {
        /// The most workers busy at once during the keep-alive.
        peak_busy: usize,
    },
    /// Queued work while busy workers were blocked and CPU was spare.
    Backlog {
        /// Busy workers' worth of blocked time (`None`: per-thread CPU unknown, all were busy).
        blocked: Option<f64>,
        /// Whether the host CPU guard limited the step to doubling.
        host_busy: bool,
    },
    /// Queued work on busy workers (nearly) all blocked, but the last sample read none (or a
    /// look since found none): one worker more, and the controller looks again, where a
    /// backlog two looks in a row read grows at once. A closed loop's clients submit the next
    /// task before the worker that ran the last one leaves it, so an instant's reading can
    /// show a backlog that is not one.
    NewBacklog {
        /// The backlog read, net of the workers not running a task.
        queued: usize,
    },
    /// Queued work while our workers' CPU use fell by half or more, to under half the cores:
    /// their off-CPU time was taken as blocked (the measured split still spoke for the last
    /// load), growth paced at x4 per interval.
    CpuFell {
        /// Cores' worth of CPU the workers used on the last full tick.
        from: f64,
        /// Cores' worth of CPU they used on this one.
        to: f64,
    },
    /// Queued work on busy workers read as blocked, but within the blocked split's span the
    /// process's CPU rose to the cores (from half or less of its last two full ticks), or rose
    /// by a quarter of the cores with its CPU per completed task tripled (heavier tasks): the
    /// split is the last load's, so no growth on it.
    CpuRose {
        /// Cores' worth of CPU the process used before (the lower of the last two full ticks).
        from: f64,
        /// Cores' worth it used on the tick of the rise.
        to: f64,
    },
    /// Work queued and every worker busy with fewer workers than cores: up to the CPU cap
    /// (`cpu_threads_per_core × cores`).
    BelowCpuCap,
    /// Growth was wanted but memory is low.
    MemoryPressure {
        /// The available share of memory.
        available: f64,
    },
    /// The workers saturate the cores: extra threads only switch.
    CpuSaturated {
        /// Cores' worth of CPU the workers wanted (on a CPU or waiting for one).
        demand: f64,
    },
    /// The hill climber starts a probe from a measured baseline.
    ClimbProbe {
        /// Whether the probe adds threads.
        up: bool,
    },
    /// The last step helped (up) or cost nothing (down): another step the same way.
    ClimbContinue {
        /// Whether the step adds threads.
        up: bool,
        /// Throughput change of the last step, relative.
        gain: f64,
    },
    /// The last growth by the blocked count did not raise throughput: hold instead of growing
    /// again on the same reading.
    GrowthDamped {
        /// Throughput change since that growth, relative.
        gain: f64,
    },
    /// The last step hurt (or, upward, did not help): back to where it was.
    ClimbRevert {
        /// Throughput change of the last step, relative.
        gain: f64,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Reason::Hold => f.write_str("hold"),
            Reason::Bounds => f.write_str("bounds: kept within min..=max"),
            Reason::Starvation => f.write_str("starvation: queued work, all busy, no completions"),
            Reason::Idle { peak_busy } => {
                write!(f, "idle past keep-alive (peak busy {peak_busy})")
            }
            Reason::Backlog {
                blocked: Some(b),
                host_busy,
            } => {
                write!(f, "backlog, {b:.1} blocked")?;
                if host_busy {
                    f.write_str(", host busy: slower")?;
                }
                Ok(())
            }
            Reason::NewBacklog { queued } => write!(
                f,
                "backlog, {queued} queued, none at the last look: one more, look again"
            ),
            Reason::Backlog { blocked: None, .. } => {
                f.write_str("backlog, all busy (no per-thread CPU)")
            }
            Reason::CpuFell { from, to } => write!(
                f,
                "backlog, workers' cpu fell {from:.2} -> {to:.2} cores: off-cpu taken as blocked"
            ),
            Reason::CpuRose { from, to } => write!(
                f,
                "backlog, process cpu rose {from:.2} -> {to:.2} cores: blocked split stale, hold"
            ),
            Reason::BelowCpuCap => f.write_str("backlog, all busy, below the cpu cap"),
            Reason::MemoryPressure { available } => {
                write!(
                    f,
                    "memory pressure ({:.0}% free): no growth",
                    available * 100.0
                )
            }
            Reason::CpuSaturated { demand } => {
                write!(f, "cpu-bound: workers want {demand:.1} cores")
            }
            Reason::ClimbProbe { up } => {
                write!(f, "climb: probe {}", if up { "up" } else { "down" })
            }
            Reason::ClimbContinue { up, gain } => write!(
                f,
                "climb: {} again ({:+.0}%)",
                if up { "up" } else { "down" },
                gain * 100.0
            ),
            Reason::ClimbRevert { gain } => write!(f, "climb: revert ({:+.0}%)", gain * 100.0),
            Reason::GrowthDamped { gain } => write!(
                f,
                "backlog, last growth did not help ({:+.0}%): hold",
                gain * 100.0
            ),
        }
    }
}

/// What [`decide`] chose: the worker count to ask for, and why.
///
/// # Examples
///
/// ```
/// use policy_adaptive::{decide, Config, ControllerState, Reason, Snapshot};
/// use std::time::Duration;
///
/// let config = Config::default();
/// let mut state = ControllerState::new();
/// let quiet = Snapshot { threads: 1, target: 1, ..Snapshot::new(Duration::from_millis(100), 2) };
/// let decision = decide(&quiet, &mut state, &config);
/// assert_eq!((decision.target, decision.reason), (1, Reason::Hold));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    /// The worker count to ask for.
    pub target: usize,
    /// Why.
    pub reason: Reason,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

/// The hill climber's memory.
#[derive(Clone, Debug, Default)]
struct Climb {
    /// The size the current window measures; a size change restarts the window.
    size: usize,
    done: u64,
    time: Duration,
    /// The previous window's size and the baseline of the next comparison: that window's
    /// throughput, or on a walk the best the walk has measured.
    last: Option<(usize, f64)>,
    /// Next probe's direction (`None` = up).
    direction: Option<Direction>,
    /// Windows to wait before the next probe.
    hold: u32,
    /// Reversals in a row, for the damping.
    reversals: u32,
}

impl Climb {
    fn restart(&mut self, size: usize) {
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
    ticks: u64,
    /// Time with nothing queued and someone idle.
    surplus_for: Duration,
    /// The busy count of each tick of that time, the last `keep_alive` of it (oldest first):
    /// the idle rule shrinks to the most busy at once over this sliding window.
    surplus: VecDeque<(Duration, usize)>,
    /// Time with work queued, all busy and no completion.
    stalled_for: Duration,
    climb: Climb,
    total_reversals: u64,
    /// After a growth by the blocked count: the throughput before it, and how long growth on
    /// that evidence stays damped unless throughput rises (`DAMP_FOR`).
    damp: Option<(f64, Duration)>,
    /// The last two full ticks' workers' CPU (cores) and busy count, newest first, for the
    /// off-CPU presumption of rule 4 (a CPU use that fell by half at no fewer busy workers).
    /// Two: a load that changes mid-tick splits its drop over two ticks.
    last_cpu: [Option<(f64, u64)>; 2],
    /// The last two full ticks' process CPU (cores), newest first, for the rise of rule 4.
    last_process: [Option<f64>; 2],
    /// The last two full ticks' process CPU per completed task (seconds), newest first, for
    /// the heavier tasks that make the split stale (`HEAVIER_TASKS`).
    last_task_cpu: [Option<f64>; 2],
    /// The last full tick's blocked share of its busy workers, for rule 6's trim (the larger
    /// of it and this tick's).
    last_blocked_share: Option<f64>,
    /// After the process's CPU rose to the cores, or with heavier tasks: the rise (from, to)
    /// and how long the blocked split still speaks for the load before it (`SPLIT_SPAN`).
    stale_split: Option<(f64, f64, Duration)>,
    /// The last full tick read the workers' CPU dipped by a quarter or more with a backlog and
    /// the pool near the CPU cap, but not by half (a load that changed mid-tick): a decision
    /// `LOOK_AGAIN_AFTER` into the next interval judges the drop on its own window
    /// ([`ControllerState::looks_again`]).
    look_again: bool,
    /// The backlog the last sample read, net of the workers not running a task (zero after a
    /// look between samples that found it gone): rule 4's burst grows by at most what two
    /// looks in a row read (`ControllerState::forget_backlog`).
    backlog_seen: usize,
}

/// How long, in intervals, a growth by the blocked count that did not raise throughput holds
/// the next one. Long enough to let the blocked reading (a 250 ms span) catch up with a change
/// of load; short enough that a load whose throughput really fell (a slower phase) grows again.
const DAMP_FOR: u32 = 3;

/// How long the blocked/run-queue split speaks for the load before a change: the signals'
/// `schedstat` share spans this much (`SHARE_SPAN` in signals.rs). Counted from the tick that
/// saw the rise, whose own interval holds part of the change: that tick and the next two full
/// ones hold.
const SPLIT_SPAN: Duration = Duration::from_millis(250);

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

/// The second look (`ControllerState::looks_again`) comes `interval / LOOK_AGAIN_AFTER` after
/// the tick that asked for it: 25 ms at the default interval. W4's switch from CPU-bound tasks
/// to W3's (1 ms of CPU, then 4 ms asleep) reaches the workers about 50 ms into a tick (the
/// queued CPU-bound tasks run first), so that tick reads 1.2-1.4 cores, and a look 25 ms on
/// reads the new load alone (3 workers complete about 15 tasks in it): its growth comes 75 ms
/// before the next tick's.
pub(crate) const LOOK_AGAIN_AFTER: u32 = 4;

/// A decision counts as the second look when its window spans at least this share of the
/// interval (`interval / LOOK_AGAIN_AT_LEAST`): an early look 10 ms after a tick is not it.
const LOOK_AGAIN_AT_LEAST: u32 = 8;

/// The share of its earlier CPU (the higher of the last two full ticks) a full tick's must
/// fall to, at most, for the second look: a quarter less. W2's CPU-bound tasks at 3-4 workers
/// read 1.8-1.95 cores on a quiet host; a tick straddling the switch to W3's read 1.2-1.4.
const DIPPED_TO: f64 = 0.75;

/// The share of the cores our workers' CPU time must fill for the cores to count as full
/// (room rule in `decide`): a sample's CPU time reads a little under the cores even when every
/// core ran a worker throughout.
const FULL_CORES: f64 = 0.9;

/// The share of the cores under which our workers' CPU use is light enough for a backlog of
/// half-blocked workers to grow at once (rule 4): sleep-bound work uses a few thousandths of a
/// core per worker; CPU-bound work starved by an outside hog to under a tenth of the cores is
/// rare, and its workers are not half blocked (the states say runnable).
const LIGHT_CORES: f64 = 0.1;

/// The CPU per completed task (seconds) under which the workers' tasks are light (rule 4's
/// burst of half-blocked workers): a task that sleeps 5 ms costs 10-20 µs of CPU, W3's (1 ms
/// of CPU, then a 4 ms sleep) 1 ms however little of the cores a crowded host leaves it.
pub(crate) const LIGHT_TASK_CPU: f64 = 100e-6;

/// The completions a tick needs for the process's CPU per completed task to tell light tasks
/// (rule 4's burst on the process's figure): over a few, a task whose CPU was spent in the
/// window before (it computes, then sleeps) looks free.
pub(crate) const LIGHT_TASKS: u64 = 8;

/// How many times the process's CPU per completed task must grow for the tasks to count as
/// heavier ones (rule 4: the blocked split is then the last load's). A steady load's figure
/// moves by a few tens of percent from tick to tick; W4's sleepers turning into spinners read
/// x4.1, x5.6 and x11 on the tick that straddled the switch (three runs), x14-x25 on the next.
const HEAVIER_TASKS: f64 = 3.0;

/// The share of the cores the process's CPU must rise by, with heavier tasks, for the blocked
/// split to be the last load's: tasks that got heavier but leave the cores as they were (a
/// light task turned into one that blocks longer) do not make it wrong where it matters.
const ROSE_BY: f64 = 0.25;

/// The share of the cores other processes must use, on a busy host (`host_cpu_guard`), for the
/// climber to keep the CPU cap as its floor (rule 7): the scheduler shares the cores by thread,
/// so a thread fewer hands the neighbour part of our share. Beside `compare`'s hog (one busy
/// process on 2 cores) 4 workers leave it 0.4 cores (a fifth), 8 leave it 0.22 (a ninth: at
/// a tenth, one of three such runs probed 8 -> 6 on a reading under it; the host figure is a
/// second's, the process's a tick's). On a quiet host two busy loops read the others at -0.03
/// to -0.01 cores over aligned 1 s windows; the pool's windows are not aligned, so a reading
/// may swing by a tenth of a core, and a false one only keeps the climber at the cap.
const OUTSIDE_LOAD: f64 = 0.05;

/// The share of the cores our workers' CPU use must fall under, from at least this share on
/// the last full tick and by half or more with no fewer workers busy, for their off-CPU time
/// to be presumed blocked while the measured split still says run-queue wait (rule 4): the
/// split spans 250 ms, so on the first tick of a blocking phase after a CPU-bound one it is
/// still the CPU phase's.
const CPU_FELL_BELOW: f64 = 0.5;

/// The CPU cap, `cpu_threads_per_core × cores`: the size CPU-bound work keeps (rule 6 trims
/// to it, rule 5 grows to it, rule 4 scales it by the blocking ratio). Bound once per decision
/// so the rules cannot drift apart on how it is rounded or clamped.
#[derive(Clone, Copy, Debug)]
struct CpuCap {
    /// Unrounded, in threads: the base the blocking ratio scales.
    exact: f64,
    /// Rounded up.
    threads: usize,
    /// Rounded up and kept within `min..=max`: the size rules 5 and 6 move to.
    bounded: usize,
}

impl CpuCap {
    fn new(config: &Config, cores: usize) -> Self {
        let exact = config.cpu_threads_per_core * cores.max(1) as f64;
        let threads = exact.ceil() as usize;
        CpuCap {
            exact,
            threads,
            bounded: threads.clamp(config.min, config.max),
        }
    }
}

/// The backlog net of the workers not running a task: each of those takes a queued task as
/// soon as it gets a CPU (a wake-up, or a finished task's next), so only the rest is short of a
/// thread. On a busy host a closed loop of 64 sleepers at 64 threads reads a dozen tasks queued
/// beside a dozen workers between tasks, and grew 64 -> 76 -> 88 on the raw count.
fn net_backlog(s: &Snapshot) -> usize {
    let busy = usize::try_from(s.running).unwrap_or(usize::MAX);
    usize::try_from(s.queued)
        .unwrap_or(usize::MAX)
        .saturating_sub(s.target.saturating_sub(busy))
}

/// Decides the worker count for one tick. Pure: the same snapshots give the same decisions.
///
/// The rules and their order are described in the module docs of the crate's README; in short:
/// bounds, starvation, idle keep-alive, backlog with blocked workers (capped under memory
/// pressure, slowed by the host CPU guard), CPU saturation, then the hill climber.
///
/// # Examples
///
/// Work is queued and the four busy workers are blocked in I/O with the CPU idle: grow.
///
/// ```
/// use policy_adaptive::{decide, Config, ControllerState, Reason, Snapshot};
/// use std::time::Duration;
///
/// let config = Config::default();
/// let mut state = ControllerState::new();
/// let snapshot = Snapshot {
///     threads: 4,
///     target: 4,
///     queued: 50,
///     running: 4,
///     completed: 70,
///     blocked: Some(3.8),
///     worker_cpu: Some(0.2),
///     ..Snapshot::new(Duration::from_millis(100), 2)
/// };
/// // A backlog the last look did not read: one worker more (the controller looks again soon).
/// let first = decide(&snapshot, &mut state, &config);
/// assert_eq!(first.target, 5);
/// assert_eq!(first.reason, Reason::NewBacklog { queued: 50 });
/// // Read again by the next look, 10 ms later: every busy worker blocked, so a thread per
/// // queued task at once (5 + 49), within the size the blocking ratio allows
/// // (2 per core × (0.2 + 4.8) / 0.2 = 100).
/// let again = Snapshot {
///     elapsed: Duration::from_millis(10),
///     threads: 5,
///     target: 5,
///     queued: 49,
///     running: 5,
///     completed: 7,
///     blocked: Some(4.8),
///     ..snapshot
/// };
/// let decision = decide(&again, &mut state, &config);
/// assert_eq!(decision.target, 54);
/// assert!(matches!(decision.reason, Reason::Backlog { .. }));
/// ```
pub fn decide(s: &Snapshot, state: &mut ControllerState, config: &Config) -> Decision {
    // A process figure that is not a number of cores (a custom `Signals`) is no figure.
    let process_cpu = s.process_cpu.filter(|p| p.is_finite() && *p >= 0.0);
    // The process's CPU per completed task (seconds), over a tenth of an interval and
    // `LIGHT_TASKS` completions or more: a shorter window, or fewer tasks, cannot date a task's
    // CPU (it computes, then sleeps). Tells light tasks (rule 4's burst) and heavier ones (the
    // stale split).
    let process_task_cpu = process_cpu
        .filter(|_| s.completed >= LIGHT_TASKS && s.elapsed.saturating_mul(10) >= config.interval)
        .map(|p| p * s.elapsed.as_secs_f64() / s.completed as f64);
    state.ticks += 1;
    let (min, max) = (config.min, config.max);
    let current = s.target;
    let busy = usize::try_from(s.running).unwrap_or(usize::MAX);
    let backlog = net_backlog(s);
    let backlog_before = std::mem::replace(&mut state.backlog_seen, backlog);
    let cores = s.cores.max(1) as f64;
    let cap = CpuCap::new(config, s.cores);

    let rate = per_second(s.completed, s.elapsed);
    let full_tick = s.elapsed >= config.interval;
    // The second look a full tick asked for (its own window, after the tick that dipped): it
    // judges the fall as that tick's second half, so a full tick's rules and pace apply.
    let second_look = !full_tick
        && state.look_again
        && s.elapsed.saturating_mul(LOOK_AGAIN_AT_LEAST) >= config.interval;
    if full_tick {
        state.look_again = false;
    }
    let judged_as_tick = full_tick || second_look;
    // The damping after a growth: lifted once throughput rises past the rate before it (on a
    // full tick: an early one's rate is a few ms of noise), or once it has run its time.
    if let Some((before, left)) = state.damp {
        let left = left.saturating_sub(s.elapsed);
        let helped = full_tick && rate > before * (1.0 + config.climb_tolerance);
        state.damp = (!helped && !left.is_zero()).then_some((before, left));
    }

    // The higher CPU of the last two full ticks, then this one's in front (early ticks span a
    // few ms: their CPU figure is not a tick's).
    let cpu_before = of_last_two(state.last_cpu, |a, b| if b.0 > a.0 { b } else { a });
    // Recorded as the higher of the workers' clocks and the process's CPU (up to the cores):
    // the clocks, read 4 a tick in turn beyond 8 busy workers, still read a trim's larger pool
    // (W4's CPU phase trimmed 9 -> 8 -> 4 read 0.41 and 1.43 cores by the clocks, 1.96 and
    // 1.99 by the process); measured from 1.43, W3's 0.84 cores was no fall by half, and the
    // pool held at 4 threads for two ticks until the split caught up. The drop itself is read
    // on the clocks (at most the process's, as everywhere in rule 4).
    if full_tick {
        let cpu = s
            .worker_cpu
            .map(|w| process_cpu.map_or(w, |p| w.max(p.min(cores))));
        state.last_cpu = [cpu.map(|cpu| (cpu, s.running)), state.last_cpu[0]];
    }
    let blocked_share_before = state.last_blocked_share;
    if full_tick {
        state.last_blocked_share = s.blocked.filter(|_| busy > 0).map(|b| b / busy as f64);
    }
    // The whole process's CPU fell by half or more, from at least half the cores on the higher
    // of the last two full ticks (before this tick's) to this sample: the load changed, and
    // the blocked split (250 ms) is still the last one's. Rule 4 takes it for half-blocked
    // (`process_light`); rule 6 does not trim on that split.
    let process_before = of_last_two(state.last_process, f64::max);
    let process_fell = matches!((process_cpu, process_before),
        (Some(p), Some(was)) if was >= CPU_FELL_BELOW * cores && p * 2.0 <= was);
    // The process's CPU dipped with the workers' (to `DIPPED_TO` of the higher of the last two
    // full ticks, or lower), or it is not known: rule 4's fall is a fall of the load, and the
    // process's figure is fresh every tick where the workers' clocks, read a few a tick in
    // turn, may still span a trim. W4's CPU phase trimmed 12 -> 4 read the survivors' clocks
    // at 0.45 cores (their marks from when 12 shared the cores) while the process used 1.96:
    // taken as a fall, it grew 4 -> 16, and the next tick trimmed back to 4.
    let process_dipped = match (process_cpu, process_before) {
        (Some(p), Some(was)) => p <= DIPPED_TO * was,
        _ => true,
    };
    // The process's CPU rose to the cores (9/10) from half of it or less (the lower of the
    // last two full ticks: a rise mid-tick splits over two): a load that computes replaced one
    // that did not, and for the split's span its blocked share is the old load's (rule 4 does
    // not grow on it). W4's switch from tasks that sleep 5 ms to CPU-bound ones read 48-52 of
    // 65-74 workers blocked and grew 67 -> 87 or 88 -> 113 on it.
    if let Some((from, to, left)) = state.stale_split {
        let left = left.saturating_sub(s.elapsed);
        state.stale_split = (!left.is_zero()).then_some((from, to, left));
    }
    // Or the tasks got heavier: the process's CPU per completed task tripled (from the lower
    // of the last two full ticks) while the process rose by a quarter of the cores, not yet to
    // them. A tick that straddles the switch reads a mix: W4's sleepers (67 µs of the
    // process's CPU per task at 87 workers, 0.79 cores) turning into spinners read 375 µs a
    // task at 1.67 cores, the split still 53 of 77 blocked with 34 queued, and grew 87 -> 111
    // (69 -> 89 and 67 -> 125 in other runs), trimmed back 300 ms later. On an early tick
    // too (`process_task_cpu` spans a tenth of an interval and `LIGHT_TASKS` completions): the
    // on-demand growth may come a few ms into the new load. A pool growing on a steady load
    // (W3's ramp: 1 ms a task at any size) keeps its CPU per task, and a span already running
    // is not lengthened by it.
    if let (Some(now), Some(before)) = (process_cpu, of_last_two(state.last_process, f64::min)) {
        let to_the_cores = full_tick && now >= FULL_CORES * cores && before * 2.0 <= now;
        let heavier = state.stale_split.is_none()
            && now - before >= ROSE_BY * cores
            && matches!((process_task_cpu, of_last_two(state.last_task_cpu, f64::min)),
                (Some(task), Some(was)) if task >= HEAVIER_TASKS * was);
        if to_the_cores || heavier {
            state.stale_split = Some((before, now, SPLIT_SPAN));
        }
    }
    if full_tick {
        state.last_process = [process_cpu, state.last_process[0]];
        state.last_task_cpu = [process_task_cpu, state.last_task_cpu[0]];
    }

    // Timers first: they must see every tick, whichever rule decides.
    if s.queued == 0 && busy < current {
        state.surplus_for += s.elapsed;
        state.surplus.push_back((s.elapsed, busy));
        // Keep the newest ticks that cover `keep_alive`: drop the oldest while the rest still do.
        let mut covered: Duration = state.surplus.iter().map(|&(e, _)| e).sum();
        while let Some(&(oldest, _)) = state.surplus.front() {
            if covered.saturating_sub(oldest) < config.keep_alive {
                break;
            }
            covered -= oldest;
            state.surplus.pop_front();
        }
    } else {
        state.surplus_for = Duration::ZERO;
        state.surplus.clear();
    }
    if s.queued > 0 && s.completed == 0 && s.threads > 0 && busy >= s.threads {
        state.stalled_for += s.elapsed;
    } else {
        state.stalled_for = Duration::ZERO;
    }

    if current < min || current > max {
        state.climb = Climb::default();
        return Decision {
            target: current.clamp(min, max),
            reason: Reason::Bounds,
        };
    }

    if state.stalled_for >= config.starvation_after && current < max {
        state.stalled_for = Duration::ZERO;
        state.climb = Climb::default();
        return Decision {
            target: current + 1,
            reason: Reason::Starvation,
        };
    }

    if state.surplus_for >= config.keep_alive {
        // The window slides: no reset here, so the next tick may shrink further as the busy
        // ticks of the drained load leave it.
        let peak_busy = state.surplus.iter().map(|&(_, b)| b).max().unwrap_or(0);
        let target = peak_busy.max(min);
        if target < current {
            state.climb = Climb::default();
            return Decision {
                target,
                reason: Reason::Idle { peak_busy },
            };
        }
    }

    let memory_low = s
        .memory
        .map(|m| m.available_fraction())
        .filter(|&available| available < config.memory_low);
    let hold = |reason| Decision {
        target: current,
        reason,
    };

    if s.queued > 0 && current < max {
        // Room: how many more workers the blocking ratio justifies. Workers on a CPU a share
        // `got / (got + blocked)` of their (non-queued) busy time keep `cpu_cap` CPU-bound
        // workers' worth of cores busy at `cpu_cap × (got + blocked) / got` threads: the CPU
        // cap (`cpu_threads_per_core × cores`, what CPU-bound work keeps) scaled by the
        // blocking ratio, with the run-queue wait left out. W3 (1 ms of CPU, then 4 ms asleep)
        // on 2 cores: 4 × 5 = 20 (the best fixed sizes were 16-32). Two earlier designs: room
        // without bound while demand stayed below `spare_cpu × cores`, then the ratio with
        // `spare_cpu × cores` (1.5 on 2 cores: 7 threads, stopping W3 at 0.8 of the best fixed
        // size) once above; and sizing on the CPU each worker *got* (W3 grew to 79 threads at
        // load 35: on a crowded host the wait, and so the room, has no bound).
        // Workers that want the cores without being mostly blocked (the blocked estimate of
        // CPU-bound workers on a busy host is noisy, a tenth of a worker or so: not enough to
        // grow on) leave no room.
        let budget = config.spare_cpu * cores;
        let got = s.worker_cpu.or(s.worker_demand);
        let demand = s.worker_demand.or(s.worker_cpu);
        // Our workers' CPU fell by half or more (from the higher of the last two full ticks:
        // a load that changes mid-tick splits its drop over two), to under half the cores,
        // with the workers busy (at most a quarter idle at the instant, between tasks) and
        // at most a quarter fewer of them than then, while the split says their
        // off-CPU time is mostly run-queue wait: with the cores that free, a runnable worker
        // gets one, so the split (it spans 250 ms) is the last load's. W4's CPU-and-sleep
        // phase after its CPU-bound one: 3 workers at 0.42 cores (1.29 the tick before) read
        // 0.4 blocked and 2.6 cores wanted, held a tick at 3 threads, then grew 3 -> 26 on the
        // caught-up split: a fifth of the phase at a fifth of the speed (0.79-0.80 of the best
        // fixed size). The fresh figures stand instead (off-CPU time blocked), paced at x4: an
        // outside hog arriving at that moment looks the same for one tick, and the split's
        // second reading of runnable states trims back (rule 6) without a second step on this
        // evidence.
        // The drop, as (cores before, cores now), when the presumption applies.
        // The same drop on the second look a full tick asked for (below): its window is the
        // new load's alone.
        let near_cap = match (
            s.worker_cpu.map(|w| process_cpu.map_or(w, |p| w.min(p))),
            s.blocked,
            cpu_before,
        ) {
            (Some(cpu), Some(b), Some((cpu_was, busy_was)))
                if judged_as_tick
                    && current <= 2 * cap.bounded
                    && busy * 4 >= current * 3
                    // Fewer busy than then only by our own trim is no drained load.
                    && s.running * 4 >= busy_was.min(current as u64) * 3
                    && cpu_was >= CPU_FELL_BELOW * cores
                    && b * 2.0 < busy as f64 =>
            {
                Some((cpu_was, cpu))
            }
            _ => None,
        };
        // Not when this sample's states find the busy workers mostly runnable: then the fall
        // is an outside load taking the cores (a CPU hog arriving), not our workers blocking,
        // and taken as blocked it grew CPU-bound work x4 for a tick. The states are fresh where
        // the split spans 250 ms, so they tell the two apart at once; without them (no
        // per-thread states, or a free host) the presumption stands.
        let runnable_now = s.states.is_some_and(|states| states.mostly_runnable());
        // And the other way: states that find the busy workers mostly asleep (3/4) are the
        // blocking itself, seen at the instant, where the CPU figures average the window. A
        // fall by a quarter is then enough, and to any share of the cores: W4's switch at 5
        // workers read 1.96 -> 1.03 cores on the second look (W3's tasks on 5 workers use 1.0)
        // with 6 of 6 asleep, missed the fall by half, and held 100 ms at 5 threads for the
        // split to catch up. CPU-bound workers never read asleep, an outside hog's neighbours
        // read runnable.
        let blocked_now = s.states.is_some_and(|states| states.mostly_blocked());
        let fell = near_cap.filter(|&(cpu_was, cpu)| {
            let fell_enough = if blocked_now {
                cpu <= DIPPED_TO * cpu_was
            } else {
                cpu < CPU_FELL_BELOW * cores && cpu * 2.0 <= cpu_was
            };
            fell_enough && process_dipped && !runnable_now
        });
        let cpu_fell = fell.is_some();
        // A decision with a tick's weight: a full tick, or the second look that took the fall
        // (that tick's second half: a tick's pace, damping and holds).
        let as_tick = full_tick || cpu_fell;
        if cpu_fell {
            // One step per drop: the next tick compares with this one's CPU, not the peak.
            state.last_cpu[1] = None;
            state.look_again = false;
        } else if full_tick {
            // Fell by a quarter, not by half: a load that changed mid-tick (W4's switch from
            // CPU-bound tasks to W3's reaches the workers about 50 ms into a tick, once the
            // queued CPU-bound tasks ran: 1.95 -> 1.2-1.4 cores). The next full tick would
            // see the fall; a look a quarter interval on sees it 75 ms sooner. A dip that was
            // noise costs that look's sample and changes nothing.
            // Or not at all yet, with the states finding half the workers or more asleep: the
            // tick ran the queued CPU-bound tasks nearly to its end. W4's switch read 1.86-1.91
            // cores at 4 workers with 0 of 4 runnable, or 1.88 with 3 of 5 asleep, and the next
            // full tick took the fall 100 ms later (the climber probing 4 -> 3 meanwhile, in
            // one); CPU-bound workers never read asleep, so half is already the new load, and a
            // look is only a sample.
            let half_asleep = s.states.is_some_and(|states| states.half_blocked());
            state.look_again =
                near_cap.is_some_and(|(cpu_was, cpu)| cpu <= DIPPED_TO * cpu_was || half_asleep);
        }
        // Only from about the size CPU-bound work keeps (twice the CPU cap, where rule 6
        // trims to it and the climber probes above it), and to at most 4 × the cap: what the
        // presumption is for (a CPU-bound phase's pool whose tasks started blocking), with
        // the caught-up split to grow on from there. An outside load that arrived on W4's
        // CPU phase at 26 threads read 1.34 -> 0.52 cores and grew it to 64.
        let fell_cap = 4 * cap.bounded;
        let blocked = match fell {
            Some((_, cpu)) => s.blocked.map(|b| b.max(busy as f64 - cpu)),
            None => s.blocked,
        };
        // Light by the process's CPU (fresh every full tick) where the workers' clocks, read a
        // few a tick in turn, still read a last load's CPU: the whole process under half the
        // cores, at most `LIGHT_TASK_CPU` of it per completed task, and the busy workers at
        // least half blocked. W4's sleep phase after its CPU-and-sleep one at 16 workers read
        // 10.9 blocked, the clocks 1.16 cores (the last phase's), the process 0.07 over 313
        // completions (22 µs each): by the clocks it grew 16 -> 32 (host guard x2), then
        // 32 -> 64 an early tick later, 177 ms into the 1 s phase (0.87 of the best fixed
        // size). The CPU per task is what tells it from a process starved by a crowded host
        // (W3's tasks cost 1 ms of CPU each however little of the cores they get), and from a
        // tick that still ran the last phase's tasks (660 µs per task): on the process figure
        // alone, half-blocked W3 burst 6 -> 65. An early tick too, over a tenth of an interval
        // or more (the controller's early looks come 10 ms apart): at 25 workers the phase
        // read 0.12 cores over 45 completions (27 µs each) 132 ms in, and held for the next
        // full tick, 232 ms in. Not over less (an early tick right after a resize spans a
        // fraction of a ms), and on `LIGHT_TASKS` completions or more: a task's CPU precedes
        // its sleep, so a few completions may be of CPU spent in the window before.
        // The busy workers at least half blocked by the split, or the whole process's CPU
        // fell by half or more from at least half the cores since the last full ticks: the
        // split spans 250 ms, so right after a phase change it is still the last phase's. W4's
        // sleep phase after its CPU-and-sleep one, an early look 10 ms into it at 20 workers:
        // the process 0.12 cores over 40 completions (2.0 the full tick before), the split 8.6
        // of 20 blocked: not half, and the pool held 100 ms at 20 threads for the next full
        // tick (12.2 blocked) to grow it to 64 (phase 4 at 0.82-0.91 of the best fixed size in
        // five runs). A process starved by an outside load that arrives at that moment looks
        // the same: it grows on it, and rule 6 trims back on the caught-up split once the fall
        // has left the last two full ticks (at most two ticks later).
        let process_light = match (process_cpu, process_task_cpu, s.blocked) {
            (Some(p), Some(task), Some(b))
                if p < CPU_FELL_BELOW * cores
                    && (b * 2.0 >= busy as f64 || process_fell)
                    && task < LIGHT_TASK_CPU =>
            {
                Some(p)
            }
            _ => None,
        };
        // Those workers' blocking ratio is taken on the process's figure when lower than
        // their clocks (stale-high: at 0.07 cores the room is past any `max`).
        let got = match (process_light, got) {
            (Some(p), Some(g)) if p < g => Some(p),
            (_, g) => g,
        };
        let room = match (got, blocked) {
            // (Not when the process's fall stands for the split: the demand is the split's too.)
            (Some(_), Some(b))
                if demand.is_some_and(|d| d >= budget)
                    && b * 2.0 < busy as f64
                    && process_light.is_none() =>
            {
                0
            }
            // Our own workers already keep (nearly) every core busy: a thread more only queues
            // for a core, however blocked the rest of their time reads. Without this, W3 (1 ms
            // of CPU, 4 ms asleep) grew to 98-129 threads on 2 cores (best fixed size 24, 3.2-
            // 3.7x its thread-seconds): the measured blocked share kept rising with the thread
            // count (36.5 of 41 workers "blocked" where the cores allow 8), so the blocking
            // ratio never bounded the room.
            // Their CPU as at most the whole process's over the same interval: their clocks,
            // read a few in turn, each since its last reading (1.6 s at 64 busy workers), may
            // still be a last load's. W4's sleep phase after its CPU-and-sleep one read 1.9
            // cores at 22 workers from the last phase's clocks, the process 0.3: the cores
            // looked full and the first tick held. Not for "light" without the CPU per task
            // (`process_light` above): a process starved by a crowded host reads as little.
            (Some(got), Some(_))
                if got.min(process_cpu.unwrap_or(f64::INFINITY)) >= FULL_CORES * cores =>
            {
                0
            }
            (Some(got), Some(b)) if got > 0.0 => {
                let size = (cap.exact * (got + b) / got).floor();
                if size >= max as f64 {
                    usize::MAX
                } else {
                    (size as usize).saturating_sub(current)
                }
            }
            (Some(_), None) if demand.is_some_and(|d| d >= budget) => 0,
            _ => usize::MAX,
        };
        let spare_cpu = room > 0;
        // An early decision, a fraction of an interval after the last: its blocked/run-queue
        // split covers a few ms, and on a busy host a CPU-bound worker waiting for a CPU then
        // shows as a third blocked (seen at load 40). It grows only workers nearly all blocked.
        // The second look that took the fall is that tick's second half: a tick's pace.
        let pace = if as_tick {
            1.0
        } else {
            (s.elapsed.as_secs_f64() / config.interval.as_secs_f64()).min(1.0)
        };
        let early = pace < 1.0;
        // Nearly all blocked: each queued task is a thread's worth of waiting. Or at least half
        // blocked while our workers hardly use the CPU (a tenth of the cores): the rest of
        // their off-CPU time is a wake-up's wait on a busy host, or a reading that still
        // holds the last load's run-queue wait (the split spans 250 ms). Either way a thread
        // more costs the cores next to nothing, and each queued task holds one for its sleep.
        // W4's sleep phase after its CPU-and-sleep one read 16 of 23 workers blocked at 0.07
        // cores and grew by the count (23 -> 39 -> 64: 0.79 of the best fixed size).
        // Light by the CPU per completed task too, where a task completed: a crowded host
        // starves W3's workers (1 ms of CPU per task) to under a tenth of the cores, half
        // blocked, and they burst 6 -> 64 and 7 -> 64 (W3's thread-seconds 1.67 of the best
        // fixed size; W4's third phase), then were trimmed back.
        let task_cpu = (s.completed > 0)
            .then(|| {
                s.worker_cpu
                    .map(|cpu| cpu * s.elapsed.as_secs_f64() / s.completed as f64)
            })
            .flatten();
        let light = (matches!((s.worker_cpu, s.blocked),
            (Some(cpu), Some(b)) if cpu < LIGHT_CORES * cores && b * 2.0 >= busy as f64)
            && task_cpu.is_none_or(|t| t < LIGHT_TASK_CPU))
            || process_light.is_some();
        // A presumed split is not a burst: it is paced (below), whatever share it gives.
        let all_blocked = !cpu_fell
            && (light || matches!(s.blocked, Some(b) if b >= 0.5 && b * 4.0 >= busy as f64 * 3.0));
        let queued = backlog;
        let wants = match blocked {
            _ if queued == 0 => None,
            // When (nearly) every busy worker is blocked, aim at the whole backlog; on the
            // presumed split too, at x4 per interval.
            Some(_) if (all_blocked || cpu_fell) && spare_cpu => Some(usize::MAX),
            // Half a worker's worth of blocked time is a worker that could be replaced; and,
            // once at least half the busy time is blocked, each queued task is the blocked
            // share of a thread: a share that jumped is trusted at once (within the pace, the
            // room and the damping below). By the count alone, W4's CPU-and-sleep phase read
            // 3.6 of 6 workers blocked with 58 queued and grew 6 -> 10, held (the cores looked
            // full), then 10 -> 16 two ticks later; by the backlog's share it goes to the
            // room at once (16). Under half, the count only: CPU-bound workers on a crowded
            // host read a third or so blocked, and the backlog would multiply that noise.
            Some(b) if b >= 0.5 && spare_cpu && !early => {
                let share = (b / busy.max(1) as f64).min(1.0);
                let by_backlog = if share >= 0.5 {
                    (queued as f64 * share).round() as usize
                } else {
                    0
                };
                Some((b.round() as usize).max(by_backlog).max(1))
            }
            // Without per-thread CPU, "all busy with a backlog" is the only hint; grow slowly
            // and only up to the CPU cap, leaving the rest to the starvation rule and the climber.
            None if s.worker_cpu.is_none() && busy >= current && current < cap.threads => Some(1),
            // CPU known but its split into blocked and run-queue time still pending (the CPUs
            // may be full and the sample has no pair yet): hold; the controller looks again.
            _ => None,
        };
        if let Some(wanted) = wants {
            // The process's CPU just rose to the cores: the blocked reading is the last load's
            // (a growth on it took W4's CPU phase to 113 threads); hold until the split's span
            // has passed, then rule 6 trims on the caught-up split. The blind +1 (no split) is
            // not a reading to doubt.
            if let (Some((from, to, _)), Some(_), false) = (state.stale_split, blocked, cpu_fell) {
                return hold(Reason::CpuRose { from, to });
            }
            if let Some(available) = memory_low {
                return hold(Reason::MemoryPressure { available });
            }
            let host_busy = s.host_cpu.is_some_and(|h| h >= config.host_cpu_guard);
            // Workers nearly all blocked with CPU to spare grow to the backlog at once, early
            // decision or not (tokio's blocking pool starts a thread per submission that finds
            // none idle): each queued task would otherwise wait for a sleeper, and the room
            // above (the blocking ratio) and `max` bound it. Pacing this at x4 per interval
            // took 300 ms from 1 to 64 sleepers, a third of a W4 phase at half speed: 0.72 of
            // the best fixed size. The host guard does not pace it either: the host's CPU is
            // read once a second, so after a CPU-bound phase it still showed our own workers'
            // saturation, and a sleep phase grew by one per early decision (W4's last phase took
            // 450 ms to reach 64 at load 15-50); the blocking ratio already bounds what the
            // burst may ask of the CPUs. Otherwise at most x4 per interval; x2 when the host is
            // busy (the guard slows growth, it never stops it). An early decision a fraction of
            // an interval after the last grows by that fraction of the factor (compounded, so
            // ten early decisions still make x4), and by at least one.
            // The burst goes to at most the backlog the last sample read too (one at least, and
            // the controller looks again after the gap): a closed loop of 64 sleepers at 64
            // threads reads, for an instant, 20-27 tasks queued beside 64 workers running (a
            // task hands its result over and its client submits the next before the worker
            // leaves the task), and grew 64 -> 86, 64 -> 101 on one look, the tick 10 ms
            // before having read none. A real backlog is still there a look later: W1's ramp
            // read 60 queued at its first two looks, W4's last phase 44 at every look.
            let pace_cap = if all_blocked {
                backlog_before
            } else {
                // Not the guard's x2 after our CPU fell: the host reading (once a second) then
                // still shows our own CPU-bound phase (the mixed phase of the `phases` example
                // went 2 -> 4 on it), and an outside hog arriving is not in it yet either.
                let factor: f64 = if host_busy && !cpu_fell { 2.0 } else { 4.0 };
                ((factor.powf(pace) - 1.0) * current as f64).round() as usize
            };
            // A growth by the blocked count that did not raise throughput: the blocked reading
            // (a 250 ms span) may still be the last load's. W4's switch from sleeping tasks to
            // CPU-bound ones read 48 of 65 workers blocked on the sleepers' readings, and grew
            // 67 -> 102 -> 128 on two ticks, the second with throughput down 93%.
            // Only growth on a measured blocked count (the blind +1 is not a reading to doubt).
            let by_count = !all_blocked && blocked.is_some();
            if let (Some((before, _)), true) = (state.damp, by_count) {
                if as_tick {
                    let gain = if before > 0.0 {
                        rate / before - 1.0
                    } else {
                        0.0
                    };
                    return hold(Reason::GrowthDamped { gain });
                }
            }
            let step = wanted.min(queued).min(pace_cap).min(room).max(1);
            let step = if cpu_fell {
                step.min(fell_cap.saturating_sub(current)).max(1)
            } else {
                step
            };
            if by_count && as_tick {
                state.damp = Some((rate, config.interval.saturating_mul(DAMP_FOR)));
            }
            state.climb = Climb::default();
            let reason = match fell {
                Some((from, to)) => Reason::CpuFell { from, to },
                None if all_blocked && backlog_before == 0 => Reason::NewBacklog { queued },
                None => Reason::Backlog {
                    blocked,
                    host_busy: host_busy && !all_blocked,
                },
            };
            return Decision {
                target: current.saturating_add(step).min(max),
                reason,
            };
        }
    }

    // Below the cores with a backlog and nobody idle, nobody blocked enough for the rule
    // above: up to `cpu_threads_per_core × cores` at once, what the saturation rule below
    // keeps for CPU-bound work anyway (it trims to that, never below). Going only to the
    // cores left the climber to add the rest one 500 ms window per step: beside an outside CPU
    // hog, where each of our threads gets a fair share of the cores (the scheduler shares by
    // thread), 2 threads got 1.3 of the 2 cores and 4 get 1.6 (W8 at 0.73 of the best fixed
    // size, most of its window at 2-3 threads). Only from below the cores, so the climber may
    // still settle between the cores and the cap when fewer threads lose nothing.
    if s.queued > 0 && busy >= current && current < s.cores.max(1).min(cap.bounded) {
        if let Some(available) = memory_low {
            return hold(Reason::MemoryPressure { available });
        }
        state.climb = Climb::default();
        let queued = usize::try_from(s.queued).unwrap_or(usize::MAX);
        return Decision {
            target: cap.bounded.min(current.saturating_add(queued)),
            reason: Reason::BelowCpuCap,
        };
    }

    // CPU-bound: the workers fill the cores and almost none is blocked.
    // Judged on our workers' demand, not the host's CPU: a busy neighbour lowers the CPU our
    // workers get, not what they ask for, so it never makes the pool look oversubscribed.
    let cpu_bound = match (s.worker_demand.or(s.worker_cpu), s.blocked) {
        (Some(demand), Some(blocked)) => {
            demand >= config.saturated_cpu * cores && blocked * 4.0 <= busy as f64
        }
        _ => false,
    };
    let floor = cap.bounded;
    // Trim to the blocking ratio's size, not below the CPU cap: work that is blocked a quarter
    // of its busy time or less looks CPU-bound once its threads queue for the cores, yet still
    // needs `cap × (cpu + blocked) / cpu` threads to keep them busy. W3 (1 ms of CPU, 4 ms
    // asleep) at 64 threads on 2 cores reads 9.5 of 52 busy workers blocked (each waits ~38 ms
    // for a core per task) and was trimmed to 4, a fifth of its size, then grew back.
    // The CPU the workers got: the process's when higher (up to the cores), fresh where theirs
    // spans a second or more in a large pool. W4's CPU phase at 113 threads read 0.8 cores
    // (the last phase's clocks) while the process used the cores: 4 × (0.8 + 6.8) / 0.8 = 38,
    // then 26, 24, 18 over 800 ms instead of the cap. Only here, where the workers want the
    // cores themselves, so a busy thread elsewhere in the process does not stand for them.
    let got = match (s.worker_cpu, process_cpu) {
        (Some(w), Some(p)) => Some(w.max(p.min(cores))),
        (w, _) => w,
    };
    // The blocked share of the busy workers, the larger of this tick's and the last full
    // tick's: the split reads a sample of two workers' `schedstat` and states, and W3 at 16
    // threads on 2 cores (its best fixed size) read 8.0, 6.1, then 4.0 blocked over three
    // ticks of the same load and was trimmed 16 -> 11 on the 4.0; another run trimmed 16 -> 8 on
    // about 2 blocked (the size says so; phase 3 at 0.83 of the best fixed size), and a third
    // read 20 workers (a climber's step up from 16) low once and trimmed 20 -> 8 (0.89). A
    // trim on a low reading waits a tick for a second one; CPU-bound work (next to none
    // blocked either tick) trims as before. A share, not a count: the last tick may have had
    // another busy count.
    let blocked_for_trim = match (s.blocked, blocked_share_before) {
        (Some(now), Some(share)) => Some(now.max(share * busy as f64)),
        (now, _) => now,
    };
    let trim_to = match (got, blocked_for_trim) {
        (Some(got), Some(b)) if got > 0.0 => {
            let size = (cap.exact * (got + b) / got).floor();
            if size >= max as f64 {
                max
            } else {
                (size as usize).clamp(floor, max)
            }
        }
        _ => floor,
    };
    // Not on a split the process's fall says is the last load's: W4's switch from CPU-and-sleep
    // tasks to sleepers read the process at 0.28 cores (2.01 the tick before), the split 1.4
    // of 12 blocked and 10.6 cores wanted, and trimmed 12 -> 9 a tick before growing to 64.
    // An outside load that starves a CPU-bound pool looks the same: its trim waits until the
    // fall has left the last two full ticks (trace
    // `a_starved_pool_grown_on_a_fall_is_trimmed_back_a_tick_later`: one tick later).
    // And only on a tick's window (a full tick or the second look): an early decision spans a
    // few ms, and right after a growth its new workers all run at once. W4's switch to W3's
    // tasks grew 5 -> 16 on the fall; an early tick 30 ms later read the process at the cores
    // (the 16 workers' first milliseconds of CPU) and the split still the CPU phase's (12.4
    // cores wanted), and trimmed 16 -> 10 (2 of about 40 traced runs).
    if cpu_bound && judged_as_tick && busy >= floor && current > trim_to && !process_fell {
        state.climb = Climb::default();
        return Decision {
            target: trim_to,
            reason: Reason::CpuSaturated {
                demand: s.worker_demand.or(s.worker_cpu).unwrap_or_default(),
            },
        };
    }

    if config.climb {
        // Probing up is pointless when memory is low or the cores are already full (the
        // saturation rule would take the thread back); the climber then probes down only.
        let up_allowed = memory_low.is_none() && !(cpu_bound && current >= floor);
        // Never below the cores: with someone else busy on them, fewer threads than cores only
        // give the neighbour our share, and the throughput comparison cannot tell. Nor below
        // the CPU cap while other processes use the cores: the scheduler shares them by thread,
        // so each thread fewer gives the neighbour more (on 2 cores beside one busy process, 4
        // threads get 1.6 cores, 3 get 1.5, 2 get 1.33), and a window's noise on a shared host
        // is as large as a step's loss: W8's climber went 4 -> 3 -> 2 on a "+5%" and read 0.61
        // of the best fixed size, where runs whose probe 4 -> 3 reverted read 0.81-0.82.
        let outside_load = matches!((s.host_cpu, process_cpu),
            (Some(host), Some(ours))
                if host >= config.host_cpu_guard && host * cores - ours >= OUTSIDE_LOAD * cores);
        let climb_floor = if outside_load {
            s.cores.max(cap.bounded)
        } else {
            s.cores
        };
        let lowest = climb_floor.max(1).clamp(min, max);
        if let Some(decision) = climb(s, state, config, current, up_allowed, lowest) {
            return decision;
        }
    }
    hold(Reason::Hold)
}

/// One figure from the last two full ticks' (`pick` of both, or the one known).
fn of_last_two<T: Copy>(last: [Option<T>; 2], pick: impl Fn(T, T) -> T) -> Option<T> {
    match last {
        [Some(a), Some(b)] => Some(pick(a, b)),
        [a, b] => a.or(b),
    }
}

/// Tasks completed per second over `time`; 0 over no time.
fn per_second(completed: u64, time: std::time::Duration) -> f64 {
    if time.is_zero() {
        0.0
    } else {
        completed as f64 / time.as_secs_f64()
    }
}

/// The hill climber's step; `None` to hold.
fn climb(
    s: &Snapshot,
    state: &mut ControllerState,
    config: &Config,
    current: usize,
    up_allowed: bool,
    lowest: usize,
) -> Option<Decision> {
    let straddling = state.look_again;
    let climb = &mut state.climb;
    // Throughput only measures capacity while work waits; without a backlog it measures demand.
    // Nor across a tick that asked for a second look (rule 4): it may straddle a change of
    // load, so the window would compare two loads. W4's CPU-bound phase took its first probe
    // (4 -> 3) on the tick that straddled the switch to W3's tasks in 7 of 19 traced runs; the
    // fall the second look found then grew 3 -> 12, not 4 -> 16. Either way the window and its
    // baseline start again.
    if s.queued == 0 || straddling {
        climb.last = None;
        climb.restart(current);
        return None;
    }
    if climb.size != current {
        climb.restart(current);
    }
    climb.done += s.completed;
    climb.time += s.elapsed;
    // A window is `climb_window` intervals of time, not of ticks: early decisions come at a
    // fraction of an interval, and a window of them would measure noise.
    if climb.time < config.interval.saturating_mul(config.climb_window) {
        return None;
    }
    let rate = per_second(climb.done, climb.time);
    climb.restart(current);
    if climb.hold > 0 {
        climb.hold -= 1;
        climb.last = Some((current, rate));
        return None;
    }
    let step = (current / 4).max(1);
    let (min, max) = (lowest.min(current), config.max);
    let tol = config.climb_tolerance;
    match climb.last.take() {
        Some((size, before)) if size != current && before > 0.0 => {
            let gain = rate / before - 1.0;
            let up = current > size;
            let keep = if up { gain > tol } else { gain >= -tol };
            let next = if up {
                (current + step).min(max)
            } else {
                current.saturating_sub(step).max(min)
            };
            if keep && next != current && (up_allowed || !up) {
                climb.reversals = 0;
                // The walk's best rate stays the baseline: each step down may lose up to the
                // tolerance, so against the last window alone the losses added up: beside an
                // outside CPU hog (`cpu_threads_per_core` 4, 2 cores) walks went 8 -> 6 -> 5,
                // each step within it of the last, and in the trace of that load on to 4 and
                // 3 before a revert to 4, 9% below the 8 it left. A step up keeps its own rate
                // (it beat the last by more than the tolerance).
                climb.last = Some((current, rate.max(before)));
                return Some(Decision {
                    target: next,
                    reason: Reason::ClimbContinue { up, gain },
                });
            }
            if keep {
                // At a bound (or capped by memory): stay, and probe the other way next time.
                climb.direction = Some(if up { Direction::Down } else { Direction::Up });
                climb.last = Some((current, rate));
                return None;
            }
            climb.reversals = climb.reversals.saturating_add(1);
            state.total_reversals += 1;
            climb.hold = config
                .climb_hold
                .saturating_mul(1 << climb.reversals.min(4).saturating_sub(1));
            climb.direction = Some(if up { Direction::Down } else { Direction::Up });
            Some(Decision {
                target: size,
                reason: Reason::ClimbRevert { gain },
            })
        }
        _ => {
            climb.last = Some((current, rate));
            let up = climb.direction != Some(Direction::Down) && up_allowed;
            let next = if up {
                (current + step).min(max)
            } else {
                current.saturating_sub(step).max(min)
            };
            if next == current {
                climb.direction = Some(if up { Direction::Down } else { Direction::Up });
                return None;
            }
            Some(Decision {
                target: next,
                reason: Reason::ClimbProbe { up },
            })
        }
    }
}

/// Whether, after the decision that set `s.target`, a submission that finds every worker busy
/// and work queued should ask for an early decision instead of waiting for the next tick.
///
/// Yes unless growth is ruled out: at `max`, memory below `memory_low`, or the busy workers
/// CPU-bound (demand at `spare_cpu × cores` or above with at most a quarter of them blocked:
/// more threads would only queue for the cores). Without per-thread CPU data, yes below the CPU
/// cap (`cpu_threads_per_core × cores`), where rule 4 still grows one at a time. A pool with no
/// busy worker is armed, so a burst after an idle gap grows at once. The early decision is
/// [`decide`] itself: this only says whether to ask for it, and the rules still decide.
///
/// # Examples
///
/// ```
/// use policy_adaptive::{grows_on_demand, Config, Snapshot};
/// use std::time::Duration;
///
/// let config = Config::default();
/// let idle = Snapshot { threads: 1, target: 1, blocked: Some(0.0), worker_cpu: Some(0.0),
///     ..Snapshot::new(Duration::from_millis(100), 2) };
/// assert!(grows_on_demand(&idle, &config));
/// let cpu_bound = Snapshot { running: 4, threads: 4, target: 4, blocked: Some(0.0),
///     worker_cpu: Some(2.0), ..Snapshot::new(Duration::from_millis(100), 2) };
/// assert!(!grows_on_demand(&cpu_bound, &config));
/// ```
pub fn grows_on_demand(s: &Snapshot, config: &Config) -> bool {
    let current = s.target;
    let low_memory = s
        .memory
        .is_some_and(|m| m.available_fraction() < config.memory_low);
    if current >= config.max || low_memory {
        return false;
    }
    let cores = s.cores.max(1) as f64;
    let busy = s.running as f64;
    match (s.blocked, s.worker_demand.or(s.worker_cpu)) {
        (Some(blocked), Some(demand)) if busy > 0.0 => {
            !(blocked * 4.0 <= busy && demand >= config.spare_cpu * cores)
        }
        (Some(_), _) => true,
        (None, _) => current < CpuCap::new(config, s.cores).threads,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::WorkerStates;

    const TICK: Duration = Duration::from_millis(100);

    /// Whether `decision` grew on the presumption that our workers' fallen CPU is blocked time.
    fn cpu_fell(decision: &Decision) -> bool {
        matches!(decision.reason, Reason::CpuFell { .. })
    }

    fn busy(threads: usize, blocked: f64, cpu: f64, demand: f64) -> Snapshot {
        Snapshot {
            threads,
            target: threads,
            queued: 60,
            running: threads as u64,
            completed: 100,
            blocked: Some(blocked),
            worker_cpu: Some(cpu),
            worker_demand: Some(demand),
            ..Snapshot::new(TICK, 2)
        }
    }

    /// A fresh state whose last sample read `s`'s backlog: a burst on `s` is then confirmed
    /// (a backlog no look read before grows by one, `Reason::NewBacklog`).
    fn after_a_look_at(s: &Snapshot) -> ControllerState {
        ControllerState {
            backlog_seen: net_backlog(s),
            ..ControllerState::new()
        }
    }

    #[test]
    fn a_burst_grows_by_at_most_what_the_last_look_read_too() {
        let config = Config::default();
        // Sleepers (nearly all blocked, hardly any CPU) at `threads`, `running` of them busy.
        let sleepers = |threads: usize, running: u64, queued: u64| Snapshot {
            queued,
            running,
            ..busy(threads, running as f64 * 0.97, 0.2, 0.3)
        };
        // 64 sleepers at 64 threads: for an instant 25 tasks queued beside 64 running (their
        // clients submitted the next before the workers left the last), none the look before.
        let mut state = ControllerState::new();
        let d = decide(&sleepers(64, 64, 25), &mut state, &config);
        assert_eq!(
            (d.target, d.reason),
            (65, Reason::NewBacklog { queued: 25 })
        );
        assert_eq!(
            d.reason.to_string(),
            "backlog, 25 queued, none at the last look: one more, look again"
        );
        // The next look reads 10 queued: to at most what both read.
        let d = decide(&sleepers(65, 65, 10), &mut state, &config);
        assert_eq!(d.target, 75, "{d:?}");
        assert!(matches!(d.reason, Reason::Backlog { .. }), "{d:?}");
        // And a look that reads 40 after one that read 10: by 10.
        assert_eq!(
            decide(&sleepers(75, 75, 40), &mut state, &config).target,
            85
        );
        // A look between samples that found nothing queued (the controller's cheap look)
        // makes the next backlog new again.
        state.forget_backlog();
        let d = decide(&sleepers(85, 85, 40), &mut state, &config);
        assert_eq!(
            (d.target, d.reason),
            (86, Reason::NewBacklog { queued: 40 })
        );
        // A backlog the workers between tasks cover is none, so the one after it is new.
        assert_eq!(decide(&sleepers(86, 80, 6), &mut state, &config).target, 86);
        let d = decide(&sleepers(86, 86, 6), &mut state, &config);
        assert_eq!((d.target, d.reason), (87, Reason::NewBacklog { queued: 6 }));
    }

    #[test]
    fn cpu_that_fell_by_half_counts_off_cpu_time_as_blocked_once() {
        let config = Config::default();
        let mut state = ControllerState::new();
        // A CPU-bound tick at the cap holds (and is remembered).
        let before = decide(&busy(4, 0.1, 1.9, 3.9), &mut state, &config);
        assert_eq!(before.target, 4);
        // The CPU falls to a fifth with the split unchanged: x4 at once.
        let fell = decide(&busy(4, 0.4, 0.4, 3.6), &mut state, &config);
        assert_eq!(fell.target, 16);
        assert!(cpu_fell(&fell), "{fell:?}");
        // The same low reading again (a hog that stayed, say) is no new drop.
        let again = decide(&busy(16, 0.1, 0.4, 15.9), &mut state, &config);
        assert!(!cpu_fell(&again), "{again:?}");
        // The host reading still showing the CPU phase (busy) does not halve the step.
        let mut state = ControllerState::new();
        let hot = |s: Snapshot| Snapshot {
            host_cpu: Some(1.0),
            ..s
        };
        decide(&hot(busy(4, 0.1, 1.9, 3.9)), &mut state, &config);
        assert_eq!(
            decide(&hot(busy(4, 0.4, 0.4, 3.6)), &mut state, &config).target,
            16
        );
    }

    #[test]
    fn states_at_their_limits_are_counted_without_overflow() {
        // `WorkerStates` is public: a custom `Signals` may fill it with anything. The checks
        // count in u64, so no count overflows, and the decision stays within the bounds.
        let config = Config::default();
        for (runnable, blocked) in [(u32::MAX, u32::MAX), (0, u32::MAX), (u32::MAX, 0), (0, 0)] {
            let states = Some(WorkerStates { runnable, blocked });
            let mut state = ControllerState::new();
            decide(&busy(4, 0.1, 1.9, 3.9), &mut state, &config);
            for cpu in [1.9, 1.3, 0.4] {
                let s = Snapshot {
                    states,
                    ..busy(4, 0.1, cpu, 3.9)
                };
                let d = decide(&s, &mut state, &config);
                assert!((config.min..=config.max).contains(&d.target), "{d:?}");
            }
        }
    }

    #[test]
    fn cpu_that_fell_needs_a_full_tick_and_as_many_busy_workers() {
        let config = Config::default();
        // With half the workers busy the drop is theirs (a load that drained), not a stale split.
        let mut state = ControllerState::new();
        decide(&busy(4, 0.1, 1.9, 3.9), &mut state, &config);
        let fewer = Snapshot {
            running: 2,
            ..busy(4, 0.4, 0.4, 1.6)
        };
        assert!(!cpu_fell(&decide(&fewer, &mut state, &config)));
        // An early tick (a few ms) neither shows a drop nor records its CPU.
        let mut state = ControllerState::new();
        decide(&busy(4, 0.1, 1.9, 3.9), &mut state, &config);
        let early = Snapshot {
            elapsed: Duration::from_millis(10),
            ..busy(4, 0.4, 0.4, 3.6)
        };
        assert!(!cpu_fell(&decide(&early, &mut state, &config)));
        assert_eq!(state.last_cpu, [Some((1.9, 4)), None]);
        // Without a last full tick there is nothing to have fallen from.
        let mut state = ControllerState::new();
        let first = decide(&busy(4, 0.4, 0.4, 3.6), &mut state, &config);
        assert_eq!(first.target, 4, "{first:?}");
    }

    /// Invariant: a full tick whose CPU dipped by a quarter (not by half) asks for one second
    /// look; that look, a quarter interval on, grows on a fall by half at a full tick's pace
    /// (x4, not 4^(1/4)) and asks for no more; an early look (10 ms) or a look without the
    /// fall changes nothing; a dip of less than a quarter asks for nothing.
    #[test]
    fn a_dip_mid_tick_looks_again_and_grows_on_the_fall_at_a_ticks_pace() {
        let config = Config::default();
        let look = |s: Snapshot| Snapshot {
            elapsed: TICK / LOOK_AGAIN_AFTER,
            ..s
        };
        let mut state = ControllerState::new();
        decide(&busy(3, 0.1, 1.95, 2.9), &mut state, &config);
        assert!(!state.looks_again());
        // The switch reached the workers mid-tick: 1.95 -> 1.3 cores, no fall by half yet.
        let dipped = decide(&busy(3, 0.2, 1.3, 2.8), &mut state, &config);
        assert_eq!(dipped.target, 3, "{dipped:?}");
        assert!(state.looks_again());
        // An early look 10 ms on is not the second look (too short a window to judge).
        let early = Snapshot {
            elapsed: Duration::from_millis(10),
            ..busy(3, 0.3, 0.5, 2.7)
        };
        assert!(!cpu_fell(&decide(&early, &mut state, &config)));
        assert!(state.looks_again());
        // The look reads the new load alone: fell by half from 1.95, x4 at once (3 -> 12).
        let fell = decide(&look(busy(3, 0.3, 0.5, 2.7)), &mut state, &config);
        assert!(cpu_fell(&fell), "{fell:?}");
        assert_eq!(fell.target, 12, "{fell:?}");
        assert!(!state.looks_again());
        // A look that does not read the fall holds and grows nothing.
        let mut state = ControllerState::new();
        decide(&busy(3, 0.1, 1.95, 2.9), &mut state, &config);
        decide(&busy(3, 0.2, 1.3, 2.8), &mut state, &config);
        let steady = decide(&look(busy(3, 0.1, 1.4, 2.9)), &mut state, &config);
        assert_eq!(steady.target, 3, "{steady:?}");
        // The next full tick decides afresh: no dip, no look.
        decide(&busy(3, 0.1, 1.9, 2.9), &mut state, &config);
        assert!(!state.looks_again());
        // Noise under a quarter (1.95 -> 1.6) asks for nothing.
        let mut state = ControllerState::new();
        decide(&busy(3, 0.1, 1.95, 2.9), &mut state, &config);
        decide(&busy(3, 0.1, 1.6, 2.9), &mut state, &config);
        assert!(!state.looks_again());
        // Nor does a dip without a backlog, or far above the CPU cap.
        let mut state = ControllerState::new();
        decide(&busy(3, 0.1, 1.95, 2.9), &mut state, &config);
        let drained = Snapshot {
            queued: 0,
            ..busy(3, 0.2, 1.3, 2.8)
        };
        decide(&drained, &mut state, &config);
        assert!(!state.looks_again());
        let mut state = ControllerState::new();
        decide(&busy(20, 0.1, 1.95, 19.0), &mut state, &config);
        decide(&busy(20, 0.2, 1.3, 19.0), &mut state, &config);
        assert!(!state.looks_again());
    }

    /// Invariant: the CPU a fall is measured from is the higher of the workers' clocks and the
    /// process's (fresh where the clocks of a trimmed pool are stale), so W4's switch right
    /// after a trim (clocks 1.43, process 1.99 cores) still dips and falls.
    #[test]
    fn a_fall_after_a_trim_is_measured_from_the_processs_cpu() {
        let config = Config::default();
        let with = |s: Snapshot, p: f64| Snapshot {
            process_cpu: Some(p),
            ..s
        };
        let mut state = ControllerState::new();
        decide(&with(busy(8, 0.4, 1.43, 7.6), 1.99), &mut state, &config);
        // The straddling tick at 4 threads: 1.38 by the clocks, 1.42 by the process.
        decide(&with(busy(4, 0.7, 1.38, 3.3), 1.42), &mut state, &config);
        assert!(state.looks_again());
        let look = Snapshot {
            elapsed: TICK / LOOK_AGAIN_AFTER,
            ..with(busy(4, 1.6, 0.84, 2.4), 0.86)
        };
        let fell = decide(&look, &mut state, &config);
        assert!(cpu_fell(&fell), "{fell:?}");
        assert_eq!(fell.target, 16, "{fell:?}");
        // Without the process's figure the clocks' 1.43 stands: 0.84 is no fall by half.
        let mut state = ControllerState::new();
        decide(&busy(8, 0.4, 1.43, 7.6), &mut state, &config);
        decide(&busy(4, 0.7, 1.38, 3.3), &mut state, &config);
        assert!(!state.looks_again());
        assert!(!cpu_fell(&decide(
            &busy(4, 1.6, 0.84, 2.4),
            &mut state,
            &config
        )));
    }

    #[test]
    fn cpu_that_fell_grows_only_a_pool_near_the_cpu_cap() {
        let config = Config::default();
        // 26 threads (an outside load arrived on a pool above the CPU-bound size): no step.
        let mut state = ControllerState::new();
        decide(&busy(26, 0.5, 1.34, 25.0), &mut state, &config);
        let far = decide(&busy(26, 0.5, 0.52, 25.0), &mut state, &config);
        assert!(!cpu_fell(&far), "{far:?}");
        // 8 (twice the cap of 4): x4 would be 32; at most 4 × the cap, 16.
        let mut state = ControllerState::new();
        decide(&busy(8, 0.2, 1.9, 7.8), &mut state, &config);
        let near = decide(&busy(8, 0.4, 0.5, 7.0), &mut state, &config);
        assert_eq!((near.target, cpu_fell(&near)), (16, true));
    }

    #[test]
    fn a_drop_split_over_two_ticks_counts_from_the_higher() {
        // The load changed mid-tick: 1.9 -> 1.1 -> 0.8 cores, neither tick halving the last.
        let config = Config::default();
        let mut state = ControllerState::new();
        decide(&busy(4, 0.1, 1.9, 3.9), &mut state, &config);
        let mid = decide(&busy(4, 0.3, 1.1, 3.7), &mut state, &config);
        assert!(!cpu_fell(&mid), "{mid:?}");
        let fell = decide(&busy(4, 0.4, 0.8, 3.6), &mut state, &config);
        assert!(cpu_fell(&fell), "{fell:?}");
        // ... once: the peak is forgotten after the step.
        let again = decide(&busy(16, 0.1, 0.4, 15.9), &mut state, &config);
        assert!(!cpu_fell(&again), "{again:?}");
    }

    fn with_process(s: Snapshot, process: f64) -> Snapshot {
        Snapshot {
            process_cpu: Some(process),
            ..s
        }
    }

    #[test]
    fn heavier_tasks_hold_growth_on_the_blocked_split_from_an_early_tick_too() {
        let config = Config::default();
        // Two full ticks of sleepers: 60 of 64 blocked, 1000 completions at 0.5 cores (50 µs
        // of the process's CPU a task).
        let sleepers = Snapshot {
            completed: 1000,
            ..with_process(busy(64, 60.0, 0.3, 2.0), 0.5)
        };
        let after_sleepers = || {
            let mut state = ControllerState::new();
            for _ in 0..2 {
                decide(&sleepers, &mut state, &config);
            }
            state
        };
        // `ms` into the next interval, `completed` tasks at `process` cores, the split still
        // the sleepers' (nearly all blocked: an early tick's growth).
        let early = |ms, completed, process| Snapshot {
            elapsed: Duration::from_millis(ms),
            completed,
            ..with_process(busy(64, 60.0, 0.3, 2.0), process)
        };
        let cases = [
            // Spinners 20 ms in: 30 tasks at 1.9 cores, 1.3 ms each: the split is stale.
            ((20, 30, 1.9), true),
            // Over 5 ms (under a tenth of an interval): too short a window to judge.
            ((5, 30, 1.9), false),
            // Fewer than `LIGHT_TASKS` completions: a task's CPU may precede the window.
            ((20, LIGHT_TASKS - 1, 1.9), false),
            // Heavier tasks, but the process up only 0.1 cores: the cores are as they were.
            ((20, 8, 0.6), false),
            // The process up to 1.9 cores with the tasks as they were (the sleepers' pool
            // grown): its split, growth on it.
            ((20, 760, 1.9), false),
        ];
        for ((ms, completed, process), holds) in cases {
            let mut state = after_sleepers();
            let d = decide(&early(ms, completed, process), &mut state, &config);
            let rose = matches!(d.reason, Reason::CpuRose { .. });
            assert_eq!(
                rose, holds,
                "{ms} ms, {completed} done, {process} cores: {d:?}"
            );
            assert_eq!(d.target > 64, !holds, "{ms} ms, {completed} done: {d:?}");
        }
    }

    #[test]
    fn a_process_cpu_rise_holds_growth_on_the_blocked_split_for_its_span() {
        let config = Config::default();
        let mut state = ControllerState::new();
        // Sleepers (0.3 cores), then the process at the cores with the split still "blocked".
        let sleepers = with_process(busy(16, 15.0, 0.3, 1.0), 0.3);
        assert!(decide(&sleepers, &mut state, &config).target > 16);
        let stale = with_process(busy(16, 15.0, 0.3, 1.0), 1.9);
        let rose = decide(&stale, &mut state, &config);
        assert_eq!(rose.target, 16, "{rose:?}");
        assert!(matches!(rose.reason, Reason::CpuRose { .. }), "{rose:?}");
        // The next ticks within the span (250 ms) hold too; an early tick does not start
        // another.
        let early = Snapshot {
            elapsed: Duration::from_millis(10),
            ..stale
        };
        assert_eq!(decide(&early, &mut state, &config).target, 16);
        for _ in 0..3 {
            assert_eq!(decide(&stale, &mut state, &config).target, 16);
        }
        // Past the span, a blocked reading is the new load's: growth again.
        assert!(decide(&stale, &mut state, &config).target > 16);
        // A process already at the cores (no rise) grows on the split at once.
        let mut state = ControllerState::new();
        decide(&stale, &mut state, &config);
        assert!(decide(&stale, &mut state, &config).target > 16);
    }

    #[test]
    fn the_workers_cpu_is_at_most_the_processs() {
        let config = Config::default();
        // Half blocked, the workers' clocks at the cores (a last load's): no room.
        let old = busy(22, 11.4, 1.9, 10.6);
        assert_eq!(
            decide(&old, &mut ControllerState::new(), &config).target,
            22
        );
        // The process used 0.3 cores: so did they at most, and there is room.
        let fresh = with_process(old, 0.3);
        assert!(decide(&fresh, &mut ControllerState::new(), &config).target > 22);
        // A process above the workers' figure leaves it as it is (other threads count there).
        let busier = with_process(old, 2.0);
        assert_eq!(
            decide(&busier, &mut ControllerState::new(), &config).target,
            22
        );
        // Not a number of cores: ignored.
        for bad in [f64::NAN, f64::INFINITY, -1.0] {
            let s = with_process(old, bad);
            assert_eq!(decide(&s, &mut ControllerState::new(), &config).target, 22);
        }
        // Only the full-cores check takes it: a process starved to 0.15 cores by a crowded
        // host does not make half-blocked workers "light" (a burst to the backlog: W3 went
        // 6 -> 65 on it); they grow by the paced share, bounded by the ratio of their clocks.
        let starved = with_process(busy(6, 3.1, 0.8, 2.9), 0.15);
        let starved = Snapshot {
            host_cpu: Some(1.0),
            ..starved
        };
        let d = decide(&starved, &mut ControllerState::new(), &config);
        assert_eq!(d.target, 12, "{d:?}");
    }

    #[test]
    fn a_fresh_process_figure_makes_half_blocked_workers_light() {
        let config = Config::default();
        // 16 workers, 10.9 blocked, their clocks at 1.16 cores (a last load's), 48 queued.
        let stale = Snapshot {
            queued: 48,
            completed: 313,
            ..busy(16, 10.9, 1.16, 5.1)
        };
        let grow = |s: Snapshot| decide(&s, &mut after_a_look_at(&s), &config).target;
        let paced = grow(stale);
        assert!(paced < 64, "{paced}");
        // The process used 0.07 cores over 313 completions (22 µs a task): to the backlog.
        assert_eq!(grow(with_process(stale, 0.07)), 64);
        // Not a number of cores: ignored, as without the figure.
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.5] {
            assert_eq!(grow(with_process(stale, bad)), paced, "{bad}");
        }
        // Not light: over 7 completions (fewer than `LIGHT_TASKS`); at 150 µs a task; at half
        // the cores; with under half the busy workers blocked; over under a tenth of an
        // interval (an early look right after a resize).
        let cases = [
            Snapshot {
                completed: LIGHT_TASKS - 1,
                ..with_process(stale, 0.001)
            },
            Snapshot {
                completed: 10,
                elapsed: Duration::from_millis(10),
                ..with_process(stale, 0.15)
            },
            with_process(
                Snapshot {
                    completed: 10_000,
                    ..stale
                },
                1.0,
            ),
            with_process(busy(16, 7.9, 1.16, 8.1), 0.07),
            Snapshot {
                elapsed: Duration::from_millis(9),
                ..with_process(stale, 0.07)
            },
        ];
        for s in cases {
            let d = decide(&s, &mut ControllerState::new(), &config);
            assert!(d.target < 64, "{s:?}: {d:?}");
        }
        // An early look over 10 ms with enough completions: light.
        let early = Snapshot {
            elapsed: Duration::from_millis(10),
            completed: 45,
            ..with_process(stale, 0.12)
        };
        assert_eq!(grow(early), 64);
    }

    #[test]
    fn starved_tasks_of_a_millisecond_of_cpu_are_not_light() {
        let config = Config::default();
        // W3 on a crowded host, as measured: 7 workers, 3.6 blocked, 0.15 cores, 15 tasks
        // done (1 ms of CPU each): not light, so no burst to the backlog (57 queued).
        let starved = Snapshot {
            completed: 15,
            host_cpu: Some(1.0),
            ..busy(7, 3.6, 0.15, 3.4)
        };
        let d = decide(&starved, &mut ControllerState::new(), &config);
        assert!(d.target <= 14, "{d:?}");
        // Sleepers at the same CPU finish hundreds of tasks (75 µs of CPU each): light.
        let sleepers = Snapshot {
            completed: 200,
            ..starved
        };
        let d = decide(&sleepers, &mut after_a_look_at(&sleepers), &config);
        assert_eq!(d.target, 67, "{d:?}");
    }

    #[test]
    fn workers_between_tasks_take_the_queued_work_first() {
        let config = Config::default();
        // 12 queued beside 12 of 64 workers not running: no shortage.
        let s = Snapshot {
            queued: 12,
            running: 52,
            ..busy(64, 51.0, 0.2, 0.2)
        };
        assert_eq!(decide(&s, &mut ControllerState::new(), &config).target, 64);
        // 20 queued: 8 short (read by the look before too).
        let s = Snapshot { queued: 20, ..s };
        assert_eq!(decide(&s, &mut after_a_look_at(&s), &config).target, 72);
    }

    #[test]
    fn the_trim_takes_the_processs_cpu_when_higher() {
        let config = Config::default();
        // CPU-bound (6 of 40 blocked) with the workers' clocks at 0.8 cores: 4 × 6.8 / 0.8 = 34.
        let s = Snapshot {
            queued: 0,
            ..busy(64, 6.0, 0.8, 40.0)
        };
        let s = Snapshot { running: 40, ..s };
        assert_eq!(decide(&s, &mut ControllerState::new(), &config).target, 34);
        // The process used the cores (2.0, counted up to the cores): 4 × 8 / 2 = 16.
        let p = with_process(s, 2.5);
        assert_eq!(decide(&p, &mut ControllerState::new(), &config).target, 16);
    }

    #[test]
    fn a_majority_blocked_grows_by_the_backlog_share_a_minority_by_the_count() {
        let config = Config::default();
        // 3.6 of 6 blocked, 58 queued: 58 × 0.6 = 35, bounded by the room 4 × 4.8 / 1.2 = 16.
        let jump = Snapshot {
            queued: 58,
            ..busy(6, 3.6, 1.2, 2.4)
        };
        assert_eq!(
            decide(&jump, &mut ControllerState::new(), &config).target,
            16
        );
        // 0.8 of 2 blocked (a crowded host's CPU-bound workers can read so): by the count, +1.
        let minority = Snapshot {
            queued: 14,
            ..busy(2, 0.8, 0.4, 1.2)
        };
        assert_eq!(
            decide(&minority, &mut ControllerState::new(), &config).target,
            3
        );
    }
}
