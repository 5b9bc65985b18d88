//! Rules 1 to 3, which apply before any reading of the load: the bounds, starvation and the
//! idle keep-alive, with the stall and surplus timers the last two read.

use std::time::Duration;

use super::figures::Figures;
use super::state::{Climb, ControllerState};
use super::{Decision, Reason};
use crate::config::Config;
use crate::snapshot::Snapshot;

/// Advances the surplus timer (nothing queued, someone idle) and the stall timer (work
/// queued, all busy, no completion).
pub(super) fn advance_timers(
    s: &Snapshot,
    state: &mut ControllerState,
    config: &Config,
    r: &Figures,
) {
    let Figures { current, busy, .. } = *r;
    if s.queued == 0 && busy < current {
        state.surplus.push(s.elapsed, busy, config.keep_alive);
    } else {
        state.surplus.clear();
    }
    if s.queued > 0 && s.completed == 0 && s.threads > 0 && busy >= s.threads {
        state.stalled_for = state.stalled_for.saturating_add(s.elapsed);
    } else {
        state.stalled_for = Duration::ZERO;
    }
}

/// Rule 1, bounds: a target outside `min..=max` is brought inside.
pub(super) fn keep_within_bounds(
    state: &mut ControllerState,
    config: &Config,
    r: &Figures,
) -> Option<Decision> {
    let (min, max) = (config.min, config.max);
    let current = r.current;
    if current < min || current > max {
        state.climb = Climb::default();
        return Some(Decision {
            target: current.clamp(min, max),
            reason: Reason::Bounds,
        });
    }
    None
}

/// Rule 2, starvation: work queued, every worker busy, no completion for `starvation_after`.
pub(super) fn relieve_starvation(
    state: &mut ControllerState,
    config: &Config,
    r: &Figures,
) -> Option<Decision> {
    let (current, max) = (r.current, config.max);
    if state.stalled_for >= config.starvation_after && current < max {
        state.stalled_for = Duration::ZERO;
        state.climb = Climb::default();
        return Some(Decision {
            target: current + 1,
            reason: Reason::Starvation,
        });
    }
    None
}

/// Rule 3, idle keep-alive: shrink to the most workers busy at once over the last
/// `keep_alive` of surplus.
pub(super) fn shrink_when_idle(
    state: &mut ControllerState,
    config: &Config,
    r: &Figures,
) -> Option<Decision> {
    let (current, min) = (r.current, config.min);
    if state.surplus.time() >= config.keep_alive {
        // The window slides: no reset here, so the next tick may shrink further as the busy
        // ticks of the drained load leave it.
        let peak_busy = state.surplus.peak();
        let target = peak_busy.max(min);
        if target < current {
            state.climb = Climb::default();
            return Some(Decision {
                target,
                reason: Reason::Idle { peak_busy },
            });
        }
    }
    None
}
