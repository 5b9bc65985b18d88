//! Rules 5 and 6, the two that move the pool to the CPU cap: up to it from below the cores,
//! and the trim of CPU-bound work down to it (scaled by the blocking ratio). [`CpuCap`] is that
//! size, bound once per decision.

use super::figures::Figures;
use super::state::{Climb, ControllerState};
use super::{Decision, Reason};
use crate::config::Config;
use crate::snapshot::Snapshot;

/// The CPU cap, `cpu_threads_per_core × cores`: the size CPU-bound work keeps (rule 6 trims
/// to it, rule 5 grows to it, rule 4 scales it by the blocking ratio). Bound once per decision
/// so the rules cannot drift apart on how it is rounded or clamped.
#[derive(Clone, Copy, Debug)]
pub(super) struct CpuCap {
    /// Unrounded, in threads: the base the blocking ratio scales.
    pub(super) exact: f64,
    /// Rounded up.
    pub(super) threads: usize,
    /// Rounded up and kept within `min..=max`: the size rules 5 and 6 move to.
    pub(super) bounded: usize,
}

impl CpuCap {
    pub(super) fn new(config: &Config, cores: usize) -> Self {
        let exact = config.cpu_threads_per_core * cores.max(1) as f64;
        let threads = exact.ceil() as usize;
        CpuCap {
            exact,
            threads,
            bounded: threads.clamp(config.min, config.max),
        }
    }
}

/// Rule 5, up to the CPU cap.
pub(super) fn grow_to_cpu_cap(
    s: &Snapshot,
    state: &mut ControllerState,
    r: &Figures,
    memory_low: Option<f64>,
) -> Option<Decision> {
    let Figures {
        current, busy, cap, ..
    } = *r;
    // Below the cores with a backlog and nobody idle, nobody blocked enough for rule 4
    // (backlog.rs): up to `cpu_threads_per_core × cores` at once, what the saturation rule below
    // keeps for CPU-bound work anyway (it trims to that, never below). Going only to the
    // cores left the climber to add the rest one 500 ms window per step: beside an outside CPU
    // hog, where each of our threads gets a fair share of the cores (the scheduler shares by
    // thread), 2 threads got 1.3 of the 2 cores and 4 get 1.6 (W8 at 0.73 of the best fixed
    // size, most of its window at 2-3 threads). Only from below the cores, so the climber may
    // still settle between the cores and the cap when fewer threads lose nothing.
    if s.queued > 0 && busy >= current && current < s.cores.max(1).min(cap.bounded) {
        if let Some(available) = memory_low {
            return Some(r.hold(Reason::MemoryPressure { available }));
        }
        state.climb = Climb::default();
        let queued = usize::try_from(s.queued).unwrap_or(usize::MAX);
        return Some(Decision {
            target: cap.bounded.min(current.saturating_add(queued)),
            reason: Reason::BelowCpuCap,
        });
    }
    None
}

/// Whether the workers are CPU-bound (rule 6 trims them, the climber does not probe up).
pub(super) fn is_cpu_bound(s: &Snapshot, config: &Config, r: &Figures) -> bool {
    let Figures { busy, cores, .. } = *r;
    // CPU-bound: the workers fill the cores and almost none is blocked.
    // Judged on our workers' demand, not the host's CPU: a busy neighbour lowers the CPU our
    // workers get, not what they ask for, so it never makes the pool look oversubscribed.
    match (s.worker_demand.or(s.worker_cpu), s.blocked) {
        (Some(demand), Some(blocked)) => {
            demand >= config.saturated_cpu * cores && blocked * 4.0 <= busy as f64
        }
        _ => false,
    }
}

/// Rule 6, CPU saturation: trim CPU-bound workers (`cpu_bound`) to the blocking ratio's size,
/// not below the CPU cap.
pub(super) fn trim_cpu_bound(
    s: &Snapshot,
    state: &mut ControllerState,
    config: &Config,
    r: &Figures,
    cpu_bound: bool,
) -> Option<Decision> {
    let Figures {
        process_cpu,
        current,
        busy,
        cores,
        cap,
        judged_as_tick,
        blocked_share_before,
        process_fell,
        ..
    } = *r;
    let max = config.max;
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
        return Some(Decision {
            target: trim_to,
            reason: Reason::CpuSaturated {
                demand: s.worker_demand.or(s.worker_cpu).unwrap_or_default(),
            },
        });
    }
    None
}
