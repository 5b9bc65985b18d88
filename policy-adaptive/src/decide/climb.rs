//! Rule 7, the hill climber: with a backlog and no other rule applying, it compares
//! throughput window by window and steps the size up or down while that helps.

use super::figures::Figures;
use super::state::{ControllerState, Direction};
use super::{per_second, Decision, Reason};
use crate::config::Config;
use crate::snapshot::Snapshot;

/// The share of the cores other processes must use, on a busy host (`host_cpu_guard`), for the
/// climber to keep the CPU cap as its floor (rule 7): the scheduler shares the cores by thread,
/// so a thread fewer hands the neighbour part of our share. Beside `compare`'s hog (one busy
/// process on 2 cores) 4 workers leave it 0.4 cores (a fifth), 8 leave it 0.22 (a ninth: at
/// a tenth, one of three such runs probed 8 -> 6 on a reading under it; the host figure is a
/// second's, the process's a tick's). On a quiet host two busy loops read the others at -0.03
/// to -0.01 cores over aligned 1 s windows; the pool's windows are not aligned, so a reading
/// may swing by a tenth of a core, and a false one only keeps the climber at the cap.
const OUTSIDE_LOAD: f64 = 0.05;

/// Rule 7: the climber's floor and whether it may probe up, then its step (`None` to hold,
/// and when `config.climb` is off).
pub(super) fn hill_climb(
    s: &Snapshot,
    state: &mut ControllerState,
    config: &Config,
    r: &Figures,
    memory_low: Option<f64>,
    cpu_bound: bool,
) -> Option<Decision> {
    let Figures {
        process_cpu,
        current,
        cores,
        cap,
        ..
    } = *r;
    let (min, max) = (config.min, config.max);
    if config.climb {
        // Probing up is pointless when memory is low or the cores are already full (the
        // saturation rule would take the thread back); the climber then probes down only.
        let up_allowed = memory_low.is_none() && !(cpu_bound && current >= cap.bounded);
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
        return climb(
            s,
            state,
            config,
            current,
            r.load_changed,
            up_allowed,
            lowest,
        );
    }
    None
}

/// The hill climber's step; `None` to hold. `load_changed`: this tick's figures saw the load
/// change (`Figures::load_changed`).
fn climb(
    s: &Snapshot,
    state: &mut ControllerState,
    config: &Config,
    current: usize,
    load_changed: bool,
    up_allowed: bool,
    lowest: usize,
) -> Option<Decision> {
    let straddling = state.look_again;
    let climb = &mut state.climb;
    // Throughput only measures capacity while work waits; without a backlog it measures demand.
    // Nor across a tick that asked for a second look (rule 4): it may straddle a change of
    // load, so the window would compare two loads. W4's CPU-bound phase took its first probe
    // (4 -> 3) on the tick that straddled the switch to W3's tasks in 7 of 19 traced runs; the
    // fall the second look found then grew 3 -> 12, not 4 -> 16 (a probe a tick before the
    // straddling one still does that; the fall is now paced from the CPU cap, so it grows
    // 3 -> 16 too: `backlog.rs`). Nor across a tick whose
    // figures saw the load change (`Figures::load_changed`): a window begun on the old load
    // read against one on the new would step on the change, not on the size. A trace of
    // `large_switch` (256 sleepers turned spinners) saw a revert 192 -> 256 on "-94%"; with
    // no other rule acting, a change of task weight mid-window does the same at any size.
    // Either way the window and its baseline start again.
    if s.queued == 0 || straddling || load_changed {
        climb.last = None;
        climb.restart(current);
        return None;
    }
    if climb.size != current {
        climb.restart(current);
    }
    climb.done = climb.done.saturating_add(s.completed);
    climb.time = climb.time.saturating_add(s.elapsed);
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
