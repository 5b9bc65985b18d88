//! The midway look: after an early look that held a backlog on a pool the rules would still
//! grow, the controller reads the process's CPU halfway to the next regular tick and samples
//! there only if that CPU fell (see `README.md`, "Early decisions").
//!
//! Why: the early look that held disarms the pool until the next tick, which comes an interval
//! after it. A load that turns to blocking just after that look (W4's switch from W3's tasks,
//! which fill the cores, to sleepers) then runs a whole interval at the old size: 15-20 threads
//! where the sleepers want 64. The process's CPU falls at once when it happens (1.99 cores ->
//! 0.15-1.26 over the midway window), so one clock read tells a look worth a sample from one
//! that is not. A steady held backlog pays a wake-up and that read per interval, no sample.

use std::time::{Duration, Instant};

/// The midway look comes `interval / MIDWAY` after the early look that held: halfway to the
/// next regular tick, which comes `interval` after that look. With the early look 10 ms after
/// a tick, a change of load waits at most 50 ms for a look, not 100.
const MIDWAY: u32 = 2;

/// The share of the cores the last regular tick's process CPU must fill for a midway look: the
/// held backlog it is for fills them (W3's tasks: 1.95-2.0 of 2 cores), where a fall of the CPU
/// is a change of load. Below it, a held backlog is held by a rule the process's CPU does not
/// lift (the damping after a growth that did not pay, the host guard, memory), and a low figure
/// swings by a quarter from window to window (W4's sleep phases read 0.14-1.04 cores): a look
/// there would be a wake-up for a sample on noise. The same 3/4 as the signals' "saturating".
const CORES_FULL: f64 = 0.75;

/// The share of the last regular tick's process CPU the process's CPU since the last sample
/// must fall below for the midway look to sample: a fall by a quarter, as the second look's
/// (`DIPPED_TO` in decide/mod.rs). W3's held backlog reads 1.95-2.0 cores on 2 cores, tick
/// after tick; a midway window that holds a switch to sleepers read 0.15-1.26 (1.67 when the
/// switch came at its very end: no sample, and the next tick sees it).
const FELL_TO: f64 = 0.75;

/// The midway look's schedule, kept by the controller thread alone.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct MidwayLook {
    /// When it is due, if scheduled.
    due: Option<Instant>,
    /// Scheduled since the last regular tick: at most one per tick.
    taken: bool,
    /// The last regular tick's `Snapshot::process_cpu`, the figure a fall is measured from,
    /// kept only when it filled `CORES_FULL` of the cores.
    tick_cpu: Option<f64>,
}

impl MidwayLook {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// When it is due, if scheduled.
    pub(crate) fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Any wake-up ends the wait for it: a sample moves the baseline it would read, and the
    /// wake-up it was due for is this one.
    pub(crate) fn cancel(&mut self) {
        self.due = None;
    }

    /// After a regular tick, with its sample's process CPU and cores: a new tick's look may
    /// come if that CPU filled the cores.
    pub(crate) fn after_tick(&mut self, process_cpu: Option<(f64, usize)>) {
        self.tick_cpu = process_cpu
            .filter(|&(cpu, cores)| cpu >= CORES_FULL * cores.max(1) as f64)
            .map(|(cpu, _)| cpu);
        self.taken = false;
    }

    /// After an early look (at `now`) that held on a pool the rules would still grow: due
    /// halfway to the next tick, unless this tick already had one or its CPU did not fill the
    /// cores (no wake-up then).
    pub(crate) fn after_held_early_look(&mut self, now: Instant, interval: Duration) {
        if !self.taken && self.tick_cpu.is_some() {
            self.due = Some(now + interval / MIDWAY);
            self.taken = true;
        }
    }

    /// Whether the look goes on to a sample: the process's CPU since the last sample
    /// (`since_sample`, in cores) fell below `FELL_TO` of the last regular tick's.
    pub(crate) fn samples(&self, since_sample: Option<f64>) -> bool {
        match (self.tick_cpu, since_sample) {
            (Some(tick), Some(since)) => since >= 0.0 && since < FELL_TO * tick,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_millis(100);

    /// Invariant: one midway look per regular tick, due halfway to the next tick, and only after
    /// a tick whose process CPU filled the cores; a new tick allows the next.
    #[test]
    fn one_look_per_tick_halfway_to_the_next() {
        let mut look = MidwayLook::new();
        let t0 = Instant::now();
        look.after_tick(Some((1.99, 2)));
        assert_eq!(look.due(), None);
        look.after_held_early_look(t0, INTERVAL);
        assert_eq!(look.due(), Some(t0 + INTERVAL / 2));
        look.cancel();
        // Another held early look before the next tick: no second look.
        look.after_held_early_look(t0 + INTERVAL / 2, INTERVAL);
        assert_eq!(look.due(), None);
        look.after_tick(Some((1.99, 2)));
        look.after_held_early_look(t0 + INTERVAL, INTERVAL);
        assert_eq!(look.due(), Some(t0 + INTERVAL * 3 / 2));
        look.cancel();
        // A tick whose CPU did not fill the cores (W1's sleepers: 0.3 of 2): no look at all.
        look.after_tick(Some((0.3, 2)));
        look.after_held_early_look(t0 + INTERVAL * 2, INTERVAL);
        assert_eq!(look.due(), None);
        look.after_tick(None);
        look.after_held_early_look(t0 + INTERVAL * 3, INTERVAL);
        assert_eq!(look.due(), None);
    }

    /// Invariant: a sample only on a fall by more than a quarter from the last tick's CPU, which
    /// filled the cores, on figures that are numbers of cores; no figure, no sample.
    #[test]
    fn samples_only_on_a_fall_by_a_quarter() {
        let mut look = MidwayLook::new();
        assert!(!look.samples(Some(0.1)), "no tick yet");
        look.after_tick(Some((1.99, 2)));
        // W4's windows: a switch to sleepers early, mid-window, at its very end.
        assert!(look.samples(Some(0.15)));
        assert!(look.samples(Some(1.26)));
        assert!(!look.samples(Some(1.67)));
        // W3 steady.
        assert!(!look.samples(Some(1.97)));
        assert!(!look.samples(None));
        // A custom source's nonsense.
        assert!(!look.samples(Some(-1.0)));
        assert!(!look.samples(Some(f64::NAN)));
        // A tick that read nothing (a still pool): no mark, no sample.
        look.after_tick(None);
        assert!(!look.samples(Some(0.0)));
        // A tick under the cores (W1's sleepers): a fall there is noise.
        look.after_tick(Some((0.4, 2)));
        assert!(!look.samples(Some(0.1)));
        // Zero cores from a custom source counts as one.
        look.after_tick(Some((0.9, 0)));
        assert!(look.samples(Some(0.1)));
    }
}
