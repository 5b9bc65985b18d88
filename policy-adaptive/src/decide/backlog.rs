//! Rule 4, backlog with blocked workers: how far a backlog grows the pool, from the blocking
//! ratio's room, the presumed fall of the workers' CPU, and the pace, damping and holds on it.

use super::figures::Figures;
use super::state::{Climb, ControllerState};
use super::{Decision, Reason, CPU_FELL_BELOW, DIPPED_TO, FULL_CORES, LIGHT_TASK_CPU};
use crate::config::Config;
use crate::snapshot::Snapshot;

/// How long, in intervals, a growth by the blocked count that did not raise throughput holds
/// the next one. Long enough to let the blocked reading (a 250 ms span) catch up with a change
/// of load; short enough that a load whose throughput really fell (a slower phase) grows again.
const DAMP_FOR: u32 = 3;

/// The share of the cores under which our workers' CPU use is light enough for a backlog of
/// half-blocked workers to grow at once (rule 4): sleep-bound work uses a few thousandths of a
/// core per worker; CPU-bound work starved by an outside hog to under a tenth of the cores is
/// rare, and its workers are not half blocked (the states say runnable).
const LIGHT_CORES: f64 = 0.1;

/// The backlog net of the workers not running a task: each of those takes a queued task as
/// soon as it gets a CPU (a wake-up, or a finished task's next), so only the rest is short of a
/// thread. On a busy host a closed loop of 64 sleepers at 64 threads reads a dozen tasks queued
/// beside a dozen workers between tasks, and grew 64 -> 76 -> 88 on the raw count.
pub(super) fn net_backlog(s: &Snapshot) -> usize {
    let busy = usize::try_from(s.running).unwrap_or(usize::MAX);
    usize::try_from(s.queued)
        .unwrap_or(usize::MAX)
        .saturating_sub(s.target.saturating_sub(busy))
}

/// Rule 4: grows (or holds) on a backlog with blocked workers; `None` when it does not
/// decide. May ask for the second look (`state.look_again`) either way.
pub(super) fn grow_on_backlog(
    s: &Snapshot,
    state: &mut ControllerState,
    config: &Config,
    r: &Figures,
    memory_low: Option<f64>,
) -> Option<Decision> {
    let Figures {
        current,
        busy,
        backlog,
        backlog_before,
        cores,
        cap,
        rate,
        full_tick,
        ..
    } = *r;
    let max = config.max;
    if !(s.queued > 0 && current < max) {
        return None;
    }
    let fell = presumed_fall(s, state, r);
    let cpu_fell = fell.is_some();
    // A decision with a tick's weight: a full tick, or the second look that took the fall
    // (that tick's second half: a tick's pace, damping and holds).
    let as_tick = full_tick || cpu_fell;
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
    let process_light = light_by_process(s, r);
    let room = room(s, config, r, blocked, process_light);
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
        // presumed split too, up to 4 × the CPU cap.
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
            return Some(r.hold(Reason::CpuRose { from, to }));
        }
        if let Some(available) = memory_low {
            return Some(r.hold(Reason::MemoryPressure { available }));
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
        } else if cpu_fell {
            // A presumed fall grows to at most 4 × the CPU cap (`fell_cap`) in one step,
            // within the room; not halved by the host guard: the host reading (once a
            // second) then still shows our own CPU-bound phase (the mixed phase of the
            // `phases` example went 2 -> 4 on it), and an outside hog arriving is not in it
            // yet either. It was paced at ×4 of the size, which from at most twice the cap
            // reaches 4 × the cap anyway, except below the cap: the climber probing the CPU
            // phase's size, 4 -> 3 on 2 cores, a tick before the load changed (W4's switch
            // to W3's tasks, in 6 of 10 traced runs). From the probe the fall grew 3 -> 12;
            // with the cores then full, the backlog rule held at 12 (1830-1870 tasks/s
            // against 1900-1935 at the best fixed size, 16) until the climber probed up 5-8
            // ticks later. Those runs read 0.85-0.93 of the best fixed size in that phase,
            // the runs that fell from 4 0.93-0.95.
            fell_cap.saturating_sub(current)
        } else {
            let factor: f64 = if host_busy { 2.0 } else { 4.0 };
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
                return Some(r.hold(Reason::GrowthDamped { gain }));
            }
        }
        let step = wanted.min(queued).min(pace_cap).min(room).max(1);
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
        return Some(Decision {
            target: current.saturating_add(step).min(max),
            reason,
        });
    }
    None
}

/// The fall of rule 4, as (cores before, cores now), when the presumption that the workers'
/// off-CPU time is blocked applies; asks for the second look on a dip (`state.look_again`).
fn presumed_fall(s: &Snapshot, state: &mut ControllerState, r: &Figures) -> Option<(f64, f64)> {
    let Figures {
        process_cpu,
        current,
        busy,
        cores,
        cap,
        full_tick,
        judged_as_tick,
        cpu_before,
        process_dipped,
        ..
    } = *r;
    // Our workers' CPU fell by half or more (from the higher of the last two full ticks:
    // a load that changes mid-tick splits its drop over two), to under half the cores,
    // with the workers busy (at most a quarter idle at the instant, between tasks) and
    // at most a quarter fewer of them than then, while the split says their
    // off-CPU time is mostly run-queue wait: with the cores that free, a runnable worker
    // gets one, so the split (it spans 250 ms) is the last load's. W4's CPU-and-sleep
    // phase after its CPU-bound one: 3 workers at 0.42 cores (1.29 the tick before) read
    // 0.4 blocked and 2.6 cores wanted, held a tick at 3 threads, then grew 3 -> 26 on the
    // caught-up split: a fifth of the phase at a fifth of the speed (0.79-0.80 of the best
    // fixed size). The fresh figures stand instead (off-CPU time blocked), up to 4 × the
    // CPU cap at once: an
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
    fell
}

/// Rule 4's light workers by the process's CPU: its figure, where the workers count as light
/// by it.
fn light_by_process(s: &Snapshot, r: &Figures) -> Option<f64> {
    let Figures {
        process_cpu,
        process_task_cpu,
        busy,
        cores,
        process_fell,
        ..
    } = *r;
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
    match (process_cpu, process_task_cpu, s.blocked) {
        (Some(p), Some(task), Some(b))
            if p < CPU_FELL_BELOW * cores
                && (b * 2.0 >= busy as f64 || process_fell)
                && task < LIGHT_TASK_CPU =>
        {
            Some(p)
        }
        _ => None,
    }
}

/// Rule 4's room: how many more workers the blocking ratio justifies (`usize::MAX`: no bound
/// short of `max`).
fn room(
    s: &Snapshot,
    config: &Config,
    r: &Figures,
    blocked: Option<f64>,
    process_light: Option<f64>,
) -> usize {
    let Figures {
        process_cpu,
        current,
        busy,
        cores,
        cap,
        ..
    } = *r;
    let max = config.max;
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
    // Those workers' blocking ratio is taken on the process's figure when lower than
    // their clocks (stale-high: at 0.07 cores the room is past any `max`).
    let got = match (process_light, got) {
        (Some(p), Some(g)) if p < g => Some(p),
        (_, g) => g,
    };
    match (got, blocked) {
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
        // (`process_light`, from `light_by_process`): a process starved by a crowded host
        // reads as little.
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
    }
}
