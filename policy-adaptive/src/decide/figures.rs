//! The figures [`decide`](super::decide) derives from a snapshot before its rules
//! ([`Figures`]), taken by the step that also moves the state's histories on by a tick.

use super::backlog::net_backlog;
use super::cpu::CpuCap;
use super::state::ControllerState;
use super::{per_second, Decision, Reason, CPU_FELL_BELOW, DIPPED_TO, FULL_CORES, LIGHT_TASKS};
use crate::config::Config;
use crate::snapshot::Snapshot;
use std::time::Duration;

/// A decision counts as the second look when its window spans at least this share of the
/// interval (`interval / LOOK_AGAIN_AT_LEAST`): an early look 10 ms after a tick is not it.
const LOOK_AGAIN_AT_LEAST: u32 = 8;

/// How many times the process's CPU per completed task must grow for the tasks to count as
/// heavier ones (rule 4: the blocked split is then the last load's). A steady load's figure
/// moves by a few tens of percent from tick to tick; W4's sleepers turning into spinners read
/// x4.1, x5.6 and x11 on the tick that straddled the switch (three runs), x14-x25 on the next.
const HEAVIER_TASKS: f64 = 3.0;

/// The share of the cores the process's CPU must rise by, with heavier tasks, for the blocked
/// split to be the last load's: tasks that got heavier but leave the cores as they were (a
/// light task turned into one that blocks longer) do not make it wrong where it matters.
const ROSE_BY: f64 = 0.25;

/// How long the blocked/run-queue split speaks for the load before a change: the signals'
/// `schedstat` share spans this much (`SHARE_SPAN` in signals/run_queue.rs). Counted from the
/// tick that saw the rise, whose own interval holds part of the change: that tick and the next
/// two full ones hold.
const SPLIT_SPAN: Duration = Duration::from_millis(250);

/// One tick's figures, derived from its snapshot and the state's histories before any rule
/// runs; the rules read them in place of the snapshot's raw figures where both exist.
#[derive(Clone, Copy, Debug)]
pub(super) struct Figures {
    /// The process's CPU (cores), where it is a number of cores.
    pub(super) process_cpu: Option<f64>,
    /// The process's CPU per completed task (seconds), where the window can date it.
    pub(super) process_task_cpu: Option<f64>,
    /// The current target (`s.target`).
    pub(super) current: usize,
    /// Workers running a task.
    pub(super) busy: usize,
    /// The backlog net of the workers not running a task.
    pub(super) backlog: usize,
    /// The backlog the last sample read.
    pub(super) backlog_before: usize,
    /// The cores, at least one.
    pub(super) cores: f64,
    /// The CPU cap for this decision.
    pub(super) cap: CpuCap,
    /// Tasks completed per second over this sample.
    pub(super) rate: f64,
    /// Whether the sample spans a full interval.
    pub(super) full_tick: bool,
    /// A full tick, or the second look a full tick asked for.
    pub(super) judged_as_tick: bool,
    /// The workers' CPU and busy count of the higher of the last two full ticks, before this one.
    pub(super) cpu_before: Option<(f64, u64)>,
    /// The last full tick's blocked share of its busy workers, before this one.
    pub(super) blocked_share_before: Option<f64>,
    /// The process's CPU fell by half or more from at least half the cores.
    pub(super) process_fell: bool,
    /// The process's CPU dipped with the workers', or is not known.
    pub(super) process_dipped: bool,
    /// This tick saw the load change: the process's CPU fell (`process_fell`), or a stale split
    /// began (it rose to the cores, or the tasks got heavier). Throughput from before it does
    /// not compare with throughput after it (the climber starts its window again).
    pub(super) load_changed: bool,
}

impl Figures {
    /// Derives the tick's figures from `s` and moves `state`'s histories on: the tick count,
    /// the backlog seen, the second look, the damping, the last full ticks' CPU figures and the
    /// stale split.
    pub(super) fn take(s: &Snapshot, state: &mut ControllerState, config: &Config) -> Figures {
        // A process figure that is not a number of cores (a custom `Signals`) is no figure.
        let process_cpu = s.process_cpu.filter(|p| p.is_finite() && *p >= 0.0);
        // The process's CPU per completed task (seconds), over a tenth of an interval and
        // `LIGHT_TASKS` completions or more: a shorter window, or fewer tasks, cannot date a task's
        // CPU (it computes, then sleeps). Tells light tasks (rule 4's burst) and heavier ones (the
        // stale split).
        let process_task_cpu = process_cpu
            .filter(|_| {
                s.completed >= LIGHT_TASKS && s.elapsed.saturating_mul(10) >= config.interval
            })
            .map(|p| p * s.elapsed.as_secs_f64() / s.completed as f64);
        state.ticks += 1;
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
        let mut split_went_stale = false;
        if let (Some(now), Some(before)) = (process_cpu, of_last_two(state.last_process, f64::min))
        {
            let to_the_cores = full_tick && now >= FULL_CORES * cores && before * 2.0 <= now;
            let heavier = state.stale_split.is_none()
                && now - before >= ROSE_BY * cores
                && matches!((process_task_cpu, of_last_two(state.last_task_cpu, f64::min)),
                    (Some(task), Some(was)) if task >= HEAVIER_TASKS * was);
            if to_the_cores || heavier {
                state.stale_split = Some((before, now, SPLIT_SPAN));
                split_went_stale = true;
            }
        }
        if full_tick {
            state.last_process = [process_cpu, state.last_process[0]];
            state.last_task_cpu = [process_task_cpu, state.last_task_cpu[0]];
        }
        Figures {
            process_cpu,
            process_task_cpu,
            current,
            busy,
            backlog,
            backlog_before,
            cores,
            cap,
            rate,
            full_tick,
            judged_as_tick,
            cpu_before,
            blocked_share_before,
            process_fell,
            process_dipped,
            load_changed: process_fell || split_went_stale,
        }
    }

    /// No change: the current target, for `reason`.
    pub(super) fn hold(&self, reason: Reason) -> Decision {
        Decision {
            target: self.current,
            reason,
        }
    }
}

/// One figure from the last two full ticks' (`pick` of both, or the one known).
fn of_last_two<T: Copy>(last: [Option<T>; 2], pick: impl Fn(T, T) -> T) -> Option<T> {
    match last {
        [Some(a), Some(b)] => Some(pick(a, b)),
        [a, b] => a.or(b),
    }
}
