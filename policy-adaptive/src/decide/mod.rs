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
//!    one keep-alive per step down. The window holds one entry per distinct busy count
//!    (`peak.rs`), whatever the keep-alive.
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
//!    tick: from at most twice the CPU cap, growth to at most 4 × the cap in one step (from a
//!    climber's probe below the cap too; not halved by the host guard: its once-a-second
//!    reading still shows the CPU phase), within the room, damped like a
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

mod backlog;
mod climb;
mod cpu;
mod figures;
mod limits;
mod peak;
mod state;
#[cfg(test)]
mod tests;

use std::fmt;

use crate::config::Config;
use crate::snapshot::Snapshot;

use backlog::grow_on_backlog;
use climb::hill_climb;
use cpu::{grow_to_cpu_cap, is_cpu_bound, trim_cpu_bound, CpuCap};
use figures::Figures;
use limits::{advance_timers, keep_within_bounds, relieve_starvation, shrink_when_idle};
pub use state::ControllerState;

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
    /// load), growth to at most 4 × the CPU cap at once.
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

/// The second look (`ControllerState::looks_again`) comes `interval / LOOK_AGAIN_AFTER` after
/// the tick that asked for it: 25 ms at the default interval. W4's switch from CPU-bound tasks
/// to W3's (1 ms of CPU, then 4 ms asleep) reaches the workers about 50 ms into a tick (the
/// queued CPU-bound tasks run first), so that tick reads 1.2-1.4 cores, and a look 25 ms on
/// reads the new load alone (3 workers complete about 15 tasks in it): its growth comes 75 ms
/// before the next tick's.
pub(crate) const LOOK_AGAIN_AFTER: u32 = 4;

/// The share of its earlier CPU (the higher of the last two full ticks) a full tick's must
/// fall to, at most, for the second look: a quarter less. W2's CPU-bound tasks at 3-4 workers
/// read 1.8-1.95 cores on a quiet host; a tick straddling the switch to W3's read 1.2-1.4.
const DIPPED_TO: f64 = 0.75;

/// The share of the cores our workers' CPU time must fill for the cores to count as full
/// (room rule in `decide`): a sample's CPU time reads a little under the cores even when every
/// core ran a worker throughout.
const FULL_CORES: f64 = 0.9;

/// The CPU per completed task (seconds) under which the workers' tasks are light (rule 4's
/// burst of half-blocked workers): a task that sleeps 5 ms costs 10-20 µs of CPU, W3's (1 ms
/// of CPU, then a 4 ms sleep) 1 ms however little of the cores a crowded host leaves it.
pub(crate) const LIGHT_TASK_CPU: f64 = 100e-6;

/// The completions a tick needs for the process's CPU per completed task to tell light tasks
/// (rule 4's burst on the process's figure): over a few, a task whose CPU was spent in the
/// window before (it computes, then sleeps) looks free.
pub(crate) const LIGHT_TASKS: u64 = 8;

/// The share of the cores our workers' CPU use must fall under, from at least this share on
/// the last full tick and by half or more with no fewer workers busy, for their off-CPU time
/// to be presumed blocked while the measured split still says run-queue wait (rule 4): the
/// split spans 250 ms, so on the first tick of a blocking phase after a CPU-bound one it is
/// still the CPU phase's.
const CPU_FELL_BELOW: f64 = 0.5;

/// Decides the worker count for one tick. Pure: the same snapshots give the same decisions.
///
/// The rules and their order are described in the module docs of the crate's README; in short:
/// bounds, starvation, idle keep-alive, backlog with blocked workers (capped under memory
/// pressure, slowed by the host CPU guard), CPU saturation, then the hill climber.
///
/// Any snapshot and any config are accepted: counts past what a machine holds are read as
/// that bound, and a config [`Config::validate`] would refuse as its nearest valid one (`min`
/// above `max` reads as `max == min`), so the target stays within that config's bounds.
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
    // A custom `Signals` may report any count: read none past what a machine holds. A caller of
    // this public function may hand a config it never validated: read its nearest valid one.
    let s = &s.bounded();
    let config = &config.bounded();
    // The figures the rules read, and the histories they move on (every tick, in this order).
    let r = Figures::take(s, state, config);
    // Timers first: they must see every tick, whichever rule decides.
    advance_timers(s, state, config, &r);

    // The rules, first match wins (the module docs above).
    if let Some(decision) = keep_within_bounds(state, config, &r) {
        return decision;
    }
    if let Some(decision) = relieve_starvation(state, config, &r) {
        return decision;
    }
    if let Some(decision) = shrink_when_idle(state, config, &r) {
        return decision;
    }

    let memory_low = s
        .memory
        .map(|m| m.available_fraction())
        .filter(|&available| available < config.memory_low);

    // Rule 4 may also ask for a second look (`ControllerState::looks_again`) without deciding:
    // the climber reads that.
    if let Some(decision) = grow_on_backlog(s, state, config, &r, memory_low) {
        return decision;
    }
    if let Some(decision) = grow_to_cpu_cap(s, state, &r, memory_low) {
        return decision;
    }
    let cpu_bound = is_cpu_bound(s, config, &r);
    if let Some(decision) = trim_cpu_bound(s, state, config, &r, cpu_bound) {
        return decision;
    }
    if let Some(decision) = hill_climb(s, state, config, &r, memory_low, cpu_bound) {
        return decision;
    }
    r.hold(Reason::Hold)
}

/// Tasks completed per second over `time`; 0 over no time.
fn per_second(completed: u64, time: std::time::Duration) -> f64 {
    if time.is_zero() {
        0.0
    } else {
        completed as f64 / time.as_secs_f64()
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
    let s = &s.bounded();
    let config = &config.bounded();
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
