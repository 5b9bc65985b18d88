//! One decision: `tick` samples the signals, runs `decide` under the control lock, resizes the
//! pool, records the [`ScalingEvent`] and calls the `on_scale` hook; `Flow` is what it leaves for
//! the loop.

use std::time::Duration;

use pool_core::sync::Ordering;
use pool_core::{call_quietly, ResizeError};

use super::{ScalingEvent, Shared};
use crate::decide::{decide, grows_on_demand, ControllerState};
use crate::snapshot::{Signals, Snapshot};
use crate::stretch;

/// The history keeps the most recent events only, so a long-running pool's memory stays bounded.
const HISTORY_CAPACITY: usize = 4096;

/// What a tick leaves for the loop.
pub(super) enum Flow {
    /// The pool was shut down.
    Stop,
    /// Carry on, with what the tick found.
    Go(Found),
}

/// What a tick found: what the loop schedules the next looks and the arming by. The default
/// is a tick with no opinion (its sample or decision panicked).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Found {
    /// The count went up.
    pub(super) grew: bool,
    /// Growth on demand is allowed next (`None`: no opinion).
    pub(super) arm: Option<bool>,
    /// The signals could not yet tell blocked workers from waiting ones.
    pub(super) pending: bool,
    /// The pool is idle at `min` and armed (`stretch::is_quiet`).
    pub(super) quiet: bool,
    /// The sample saw work queued.
    pub(super) queued: bool,
    /// The decision asks for a second look (`ControllerState::looks_again`).
    pub(super) look_again: bool,
    /// The sample's `Snapshot::process_cpu` with its `cores`: a regular tick's is the midway
    /// look's mark.
    pub(super) process_cpu: Option<(f64, usize)>,
}

/// One decision: sample, decide, resize.
///
/// `stretched`: the wait before it was longer than the interval (`stretch`); the decision
/// then sees at most one interval of `elapsed`.
pub(super) fn tick(
    shared: &Shared,
    signals: &mut dyn Signals,
    elapsed: Duration,
    stretched: bool,
) -> Flow {
    let tick = shared.ticks.fetch_add(1, Ordering::Relaxed) + 1;
    let pool = &shared.pool;
    if pool.is_shutdown() {
        return Flow::Stop;
    }
    let no_opinion = Flow::Go(Found::default());
    let interval = shared.config.interval;
    // The size the sample is taken at, and the decision resizes from: a resize from outside
    // (`pool().set_threads`, or from the source itself) between here and the resize below
    // makes the decision stale, and `compare_set_threads` refuses it.
    let from = pool.threads();
    // User code (a custom source) is called quietly: its panic, and its panic's payload, whose
    // own `Drop` may panic too, stay here.
    let snapshot = match call_quietly(|| signals.sample(pool, elapsed)) {
        Some(snapshot) => Snapshot {
            elapsed: stretch::decision_elapsed(snapshot.elapsed, interval, stretched),
            ..snapshot
        },
        None => {
            shared.callback_panics.fetch_add(1, Ordering::Relaxed);
            return no_opinion;
        }
    };
    let (decision, look_again) = {
        let mut control = shared.control.lock();
        let state = &mut control.state;
        let decided = call_quietly(|| decide(&snapshot, state, &shared.config));
        match decided {
            Some(decision) => {
                control.last_decision = Some((snapshot, decision));
                (decision, control.state.looks_again())
            }
            None => {
                // The state may be half-updated: start afresh rather than trust it.
                control.state = ControllerState::new();
                shared.callback_panics.fetch_add(1, Ordering::Relaxed);
                return no_opinion;
            }
        }
    };
    let to = decision.target.clamp(shared.config.min, shared.config.max);
    let arm = Some(grows_on_demand(
        &Snapshot {
            target: to,
            ..snapshot
        },
        &shared.config,
    ));
    let found = Found {
        grew: false,
        arm,
        pending: snapshot.blocked.is_none() && snapshot.worker_cpu.is_some(),
        quiet: stretch::is_quiet(&snapshot, to, &shared.config, arm == Some(true)),
        queued: snapshot.queued > 0,
        look_again,
        process_cpu: snapshot.process_cpu.map(|cpu| (cpu, snapshot.cores)),
    };
    if to == from {
        return Flow::Go(found);
    }
    // A resize, made or refused, means the pool is not quiet at `min`.
    let found = Found {
        quiet: false,
        ..found
    };
    match pool.compare_set_threads(from, to) {
        Ok(()) => {}
        Err(ResizeError::ShutDown) => return Flow::Stop,
        // Resized from outside since the sample: the decision judged a size the pool no longer
        // has (applied, a shrink to 1 would undo a resize to 6); the next tick judges the new
        // one. A hold (`to == from`) resizes nothing, so it cannot undo one either.
        Err(ResizeError::SizeChanged { .. }) => return Flow::Go(found),
        // The OS refused a thread, or the process's pools hold their limit of threads (or the
        // target was 0, which the clamp rules out): keep what we have and try again next tick.
        Err(_) => return Flow::Go(found),
    }
    let event = ScalingEvent {
        at: shared.born.elapsed(),
        tick,
        from,
        to,
        reason: decision.reason,
    };
    {
        let mut control = shared.control.lock();
        if control.history.len() == HISTORY_CAPACITY {
            control.history.pop_front();
        }
        control.history.push_back(event);
    }
    if let Some(hook) = &shared.on_scale {
        if call_quietly(|| hook(&event)).is_none() {
            shared.callback_panics.fetch_add(1, Ordering::Relaxed);
        }
    }
    Flow::Go(Found {
        grew: to > from,
        ..found
    })
}
