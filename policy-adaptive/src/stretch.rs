//! The quiet stretch: while the pool sits idle at `min`, the controller waits longer between
//! regular ticks (up to `STRETCH_MAX` intervals), and goes back to every interval at once when
//! anything happens.
//!
//! Why it is safe: at `min`, with nothing queued and no worker running, no rule of `decide` can
//! change the count (every growth rule needs queued work, and every shrink stops at `min`), so a
//! tick only advances timers that cannot fire. What ends the quiet comes to the controller
//! without a tick: the first submission that finds work queued wakes it (the pool is armed, a
//! condition of the quiet), as in any other state. What a stretch costs is the wake-up it
//! saves: a tick at 256 parked workers is a wake-up (31-44 µs of thread CPU on the test VM)
//! plus a walk over the workers' counters, whatever it decides.

use std::time::Duration;

use crate::config::Config;
use crate::snapshot::Snapshot;

/// Quiet regular ticks in a row before the wait stretches: a pool that just went idle (say,
/// between two bursts) keeps the interval for 300 ms.
pub(crate) const QUIET_TICKS: u32 = 3;

/// The longest wait, in intervals: a sleeping pool's tick costs a quarter, and a wait that a
/// submission does not cut short (work that never queues) is at most 400 ms at the default.
pub(crate) const STRETCH_MAX: u32 = 4;

/// How long the controller waits for its next regular tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stretch {
    /// Quiet regular ticks in a row.
    quiet: u32,
    /// The wait, in intervals (1, 2 or 4).
    factor: u32,
}

impl Stretch {
    /// Every interval.
    pub(crate) fn new() -> Self {
        Stretch {
            quiet: 0,
            factor: 1,
        }
    }

    /// After a regular tick: once `QUIET_TICKS` in a row were quiet, each further quiet tick
    /// doubles the wait up to `STRETCH_MAX`; any other tick resets it.
    pub(crate) fn after_tick(&mut self, quiet: bool) {
        if !quiet {
            *self = Stretch::new();
            return;
        }
        self.quiet = self.quiet.saturating_add(1);
        if self.quiet >= QUIET_TICKS {
            self.factor = (self.factor * 2).min(STRETCH_MAX);
        }
    }

    /// Something happened (an early decision ran): back to every interval.
    pub(crate) fn reset(&mut self) {
        *self = Stretch::new();
    }

    /// The wait for the next regular tick.
    pub(crate) fn wait(&self, interval: Duration) -> Duration {
        interval.saturating_mul(self.factor)
    }

    /// Whether the wait is longer than the interval.
    pub(crate) fn is_stretched(&self) -> bool {
        self.factor > 1
    }
}

/// Whether a regular tick leaves the pool quiet: `to` (the new target) is `min` and the count
/// already, nothing queued, no worker running a task, and `armed` (the first submission that
/// finds work queued asks for an early decision, so the stretch never delays growth).
pub(crate) fn is_quiet(s: &Snapshot, to: usize, config: &Config, armed: bool) -> bool {
    armed
        && s.queued == 0
        && s.running == 0
        && to == config.min
        && s.target == to
        && s.threads == to
}

/// The `elapsed` a decision sees after a stretched wait: at most one interval. The pool was
/// quiet (nothing queued) when the stretch began, and an early request ends it as soon as work
/// queues; counted in full, the quiet time would be credited to the stall timer as if the
/// backlog found at the end had waited all along (starvation, rule 2, would add one worker
/// before the backlog rule could grow a blocked burst at once). The sample itself is taken
/// over the real time (its rates are averages over it).
pub(crate) fn decision_elapsed(elapsed: Duration, interval: Duration, stretched: bool) -> Duration {
    if stretched {
        elapsed.min(interval)
    } else {
        elapsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    fn snapshot(target: usize, queued: u64, running: u64) -> Snapshot {
        Snapshot {
            elapsed: Duration::from_millis(100),
            cores: 2,
            threads: target,
            target,
            queued,
            running,
            completed: 0,
            blocked: Some(0.0),
            worker_cpu: Some(0.0),
            worker_demand: Some(0.0),
            memory: None,
            host_cpu: Some(0.1),
            process_cpu: None,
            oldest_wait: Duration::ZERO,
            states: None,
        }
    }

    /// Invariant: only an idle pool at `min`, armed, is quiet.
    #[test]
    fn only_an_idle_armed_pool_at_min_is_quiet() {
        let config = Config::default();
        let min = config.min;
        assert!(is_quiet(&snapshot(min, 0, 0), min, &config, true));
        assert!(!is_quiet(&snapshot(min, 0, 0), min, &config, false));
        assert!(!is_quiet(&snapshot(min, 1, 0), min, &config, true));
        assert!(!is_quiet(&snapshot(min, 0, 1), min, &config, true));
        assert!(!is_quiet(&snapshot(min + 1, 0, 0), min + 1, &config, true));
        // Shrinking to `min` this tick: not yet (the retirees are still live).
        assert!(!is_quiet(&snapshot(min + 1, 0, 0), min, &config, true));
        let mut starting = snapshot(min, 0, 0);
        starting.threads = 0;
        assert!(!is_quiet(&starting, min, &config, true));
    }

    /// The waits of an idle pool, a submission burst (an early decision) and a busy tick:
    /// stretched only after `QUIET_TICKS` quiet ticks, never past `STRETCH_MAX`, back to one
    /// interval at once on anything else; the decision's elapsed is capped only after a
    /// stretched wait.
    #[test]
    fn the_wait_stretches_while_quiet_and_snaps_back() {
        let interval = Duration::from_millis(100);
        let mut stretch = Stretch::new();
        let mut table =
            String::from("tick after a wait of | its decision's elapsed | event | next wait\n");
        let events = [
            "quiet", "quiet", "quiet", "quiet", "quiet", "quiet", "early", "quiet", "busy",
            "quiet", "quiet", "quiet", "quiet",
        ];
        for event in events {
            let before = stretch;
            match event {
                "quiet" => stretch.after_tick(true),
                "busy" => stretch.after_tick(false),
                _ => stretch.reset(),
            }
            let waited = before.wait(interval);
            writeln!(
                table,
                "{waited:>5?} | {:>5?} | {event:<5} | {:?}",
                decision_elapsed(waited, interval, before.is_stretched()),
                stretch.wait(interval),
            )
            .unwrap();
            assert!(stretch.wait(interval) <= interval * STRETCH_MAX);
        }
        insta::assert_snapshot!(table);
    }
}
