//! Workload rows for `adaptive`: policy-adaptive's `AdaptivePool` against every fixed pool size,
//! tokio's `spawn_blocking` and rusty_pool, on closed-loop scenarios (SPEC section 9).
//!
//! | scenario | each task |
//! |---|---|
//! | W1 | sleeps 5 ms (blocking I/O) |
//! | W2 | ~1 ms of fixed CPU work (an iteration count calibrated once, not a clock spin) |
//! | W3 | ~1 ms of CPU, then sleeps 4 ms |
//! | W4 | phases W1 -> W2 -> W3 -> W1 |
//! | W6 | a parent submits a child (sleeps 2 ms) to the same pool and waits for it |
//! | W7 | bursts: 16 tasks in flight sleeping 5 ms for 0.5 s, then 0.5 s with nothing submitted, three times |
//! | W8 | W2 beside an outside CPU hog (a `sh` busy loop in a child process, one per two cores) |
//! | W8 opt-in | W8 with ours at `cpu_threads_per_core` 4 (the default is 2): what a user who wants a larger share of a shared host's CPU buys |
//!
//! Closed loop: 64 tasks in flight (W6: 8 parents), each completion submits the next task,
//! for a short window per run (full mode 1.5 s, W4 1 s per phase; quick mode 0.2 s, too short
//! for the 100 ms controller to adapt: quick mode is a smoke test of the harness only). One round
//! per system (the sweep alone is 12 runs per scenario); the figures are single runs on a
//! shared machine, so read differences under ~10% as noise.
//!
//! Systems: ours is `AdaptivePool` (min 1, max 128, default 100 ms tick, 2 s keep-alive),
//! starting from 1 thread each run. The fixed pools are pool-core `ThreadPool`s of each size
//! of the sweep (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128; quick mode 2, 16, 64); the rows
//! show the best one. tokio `spawn_blocking` on a 1-worker runtime (blocking pool up to 512);
//! rusty_pool with core 1, max 128 and a 2 s keep-alive (the same bounds as ours). The fixed
//! pools are marked as peers so that the ratio is adaptive / best of (best fixed, tokio,
//! rusty_pool).
//!
//! W7's row is the throughput over its bursts (the gaps are shorter than the keep-alive, so the
//! pool should keep its size); W8's fixed pools and peers run beside the same hog.
//!
//! Controller CPU: `AdaptivePool::controller_cpu` (the controller thread's CPU clock, its waits
//! and wake-ups included) per tick over each adaptive run, and two rows per pool size (1, 64,
//! 256 workers), per tick and per second of wall time: `min = max` (so only the signals and the
//! decision run, every interval) with the workers parked, with every worker blocked in a task
//! (a still pool: the signals may reuse their last split), and with every worker busy on tasks
//! that finish (every tick measures); parked at `min` with room to grow, where the quiet
//! stretch lengthens the wait; and busy at `min` with room to grow, driven by a client outside
//! the pool (W1's closed loop, held), where the early looks run between the ticks. Beside
//! them, the host's floor: one thread's CPU per bare timed wait of the interval (a condvar
//! wait that times out, nothing else), which every tick pays and which varies from host to
//! host (30-37 µs on one 2-core VM, 81-148 µs on another).
//!
//! Thread-seconds: the process's extra threads (`/proc/self/task` minus those before the
//! system was built), sampled every 20 ms and integrated over the window. Each system's
//! threads carry a name prefix, and the next system's count starts only once none of them is
//! left in `/proc` (a drop that joins or waits does not promise that: `drive::await_exit`).
//! Time to adapt: from the start of a phase until a 300 ms moving window first reaches 90% of
//! the best fixed size's throughput in that phase.

mod closed_loop;
mod controller;
mod drive;

use std::time::Duration;

use crate::{Config, Row};
use controller::controller_rows;
use drive::{run_adaptive, run_fixed, run_rusty, run_tokio, CpuHog, Ours, Phase, Run, Work};

const FULL_SWEEP: [usize; 12] = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128];
const QUICK_SWEEP: [usize; 3] = [2, 16, 64];

struct Scenario {
    name: &'static str,
    phases: Vec<Phase>,
    in_flight: usize,
    /// Outside CPU-hog processes running beside every system's run.
    hogs: usize,
    /// Ours' `Config::cpu_threads_per_core`, where not the default (the opt-in W8 row).
    threads_per_core: Option<f64>,
}

/// The fixed size of the sweep with the highest `rate`, and its run.
fn best_fixed(fixed: &[(usize, Run)], rate: impl Fn(&Run) -> f64) -> (usize, &Run) {
    let (n, run) = fixed
        .iter()
        .max_by(|a, b| rate(&a.1).total_cmp(&rate(&b.1)))
        .expect("a non-empty sweep");
    (*n, run)
}

/// Runs one scenario on every system and turns it into rows.
fn scenario_rows(config: &Config, scenario: &Scenario) -> Vec<Row> {
    let phases = &scenario.phases;
    let sweep: &[usize] = if config.quick {
        &QUICK_SWEEP
    } else if phases.len() > 1 {
        // W4 is four phases long: a coarser sweep keeps the family within its time budget.
        &[2, 4, 8, 16, 32, 64]
    } else {
        &FULL_SWEEP
    };
    let _hog = CpuHog::start(scenario.hogs);
    let fixed: Vec<(usize, Run)> = sweep
        .iter()
        .map(|&n| (n, run_fixed(n, phases, scenario.in_flight)))
        .collect();
    // The keep-alive is 2 s: in quick mode the return to min is not waited for.
    let idle_wait = config.pick(Duration::from_secs(6), Duration::ZERO);
    let Ours {
        run: ours,
        back_to_min,
        peak_workers,
        reversals,
        controller,
    } = run_adaptive(
        phases,
        scenario.in_flight,
        idle_wait,
        scenario.threads_per_core,
    );
    let tokio = run_tokio(phases, scenario.in_flight);
    let rusty = run_rusty(phases, scenario.in_flight);

    let mut rows = Vec::new();
    let mut adapt_times = Vec::new();
    let bursts = phases.iter().any(|p| matches!(p.work, Work::Idle));
    if bursts {
        // Bursts with gaps: one row over the bursts.
        let (best_n, best_run) = best_fixed(&fixed, |run| run.busy_rate(phases));
        let mut row = Row::new(
            format!("adaptive {}: throughput", scenario.name),
            "tasks/s",
            true,
        );
        row.push("policy-adaptive", true, &[ours.busy_rate(phases)]);
        row.push(
            format!("best fixed ({best_n} threads)"),
            false,
            &[best_run.busy_rate(phases)],
        );
        row.push("tokio spawn_blocking", false, &[tokio.busy_rate(phases)]);
        row.push("rusty_pool 1..128", false, &[rusty.busy_rate(phases)]);
        rows.push(row.with_note(format!(
            "over the bursts only; {} bursts; target >= 90% of best fixed",
            phases
                .iter()
                .filter(|p| !matches!(p.work, Work::Idle))
                .count()
        )));
    }
    for (index, phase) in phases.iter().enumerate() {
        if bursts {
            // Bursts with gaps have their one row above.
            break;
        }
        let label = if phases.len() > 1 {
            format!("{} phase {} ({:?})", scenario.name, index + 1, phase.work)
        } else {
            scenario.name.to_owned()
        };
        let (best_n, best_run) = best_fixed(&fixed, |run| run.rate(index, phase.length));
        let best = best_run.rate(index, phase.length);
        let adapt = ours.time_to_reach(index, 0.9 * best);
        adapt_times.push(adapt);
        let mut row = Row::new(format!("adaptive {label}: throughput"), "tasks/s", true);
        row.push("policy-adaptive", true, &[ours.rate(index, phase.length)]);
        row.push(format!("best fixed ({best_n} threads)"), false, &[best]);
        row.push(
            "tokio spawn_blocking",
            false,
            &[tokio.rate(index, phase.length)],
        );
        row.push(
            "rusty_pool 1..128",
            false,
            &[rusty.rate(index, phase.length)],
        );
        let adapt_note = match adapt {
            Some(s) => format!("reached 90% of best fixed after {s:.1} s"),
            None => "did not reach 90% of best fixed within the window".to_owned(),
        };
        let from = if index == 0 {
            "from 1 thread".to_owned()
        } else {
            "from the previous phase's size".to_owned()
        };
        let sweep_rates: Vec<String> = fixed
            .iter()
            .map(|(n, run)| format!("{n}: {:.0}", run.rate(index, phase.length)))
            .collect();
        rows.push(row.with_note(format!(
            "{adapt_note}; window {:.1} s {from}; target >= 90% of best fixed; fixed sizes \
             (threads: tasks/s) {}",
            phase.length.as_secs_f64(),
            sweep_rates.join(", ")
        )));
    }

    let (best_n, best_run) = best_fixed(&fixed, |run| run.total_rate(phases));
    let mut threads = Row::new(
        format!("adaptive {}: thread-seconds", scenario.name),
        "thread-s",
        false,
    );
    threads.push("policy-adaptive", true, &[ours.thread_seconds]);
    threads.push(
        format!("best fixed ({best_n} threads)"),
        false,
        &[best_run.thread_seconds],
    );
    threads.push("tokio spawn_blocking", false, &[tokio.thread_seconds]);
    threads.push("rusty_pool 1..128", false, &[rusty.thread_seconds]);
    let stuck = if ours.stuck + best_run.stuck > 0 || scenario.name.starts_with("W6") {
        let deadlocked: Vec<String> = fixed
            .iter()
            .filter(|(_, r)| r.stuck > 0)
            .map(|(n, r)| format!("{n} ({})", r.stuck))
            .collect();
        format!(
            "; parents stuck > 1 s: ours {}, fixed sizes with stuck parents: [{}]",
            ours.stuck,
            deadlocked.join(", ")
        )
    } else {
        String::new()
    };
    let controller = controller.map_or("unknown".to_owned(), |(per_tick, share)| {
        format!(
            "{:.1} µs per tick, {:.3}% of a core",
            per_tick.as_secs_f64() * 1e6,
            share * 100.0
        )
    });
    // A best fixed size that read no thread-seconds has no ratio (a ratio over a floor of
    // f64::MIN_POSITIVE once printed as 4e301).
    let thread_seconds = if best_run.thread_seconds > 0.0 {
        format!("{:.2}", ours.thread_seconds / best_run.thread_seconds)
    } else {
        "unknown (the best fixed size read none)".to_owned()
    };
    rows.push(threads.with_note(format!(
        "peak threads: ours {} ({peak_workers} workers at most, the controller aside; target \
         <= 2 x {} cores on CPU-bound work), best fixed {best_n}, \
         tokio {}, rusty_pool {}; thread-seconds ours / best fixed {thread_seconds} (target <= 1.5); \
         ours back to min once idle: {} (target keep-alive 2 s + 1 s); controller CPU: \
         {controller}; {reversals} direction reversals{stuck}",
        ours.peak_threads,
        cores(),
        tokio.peak_threads,
        rusty.peak_threads,
        back_to_min.map_or(
            format!("not within {:.0} s", idle_wait.as_secs_f64()),
            |s| format!("after {s:.1} s")
        ),
    )));
    rows
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The rows of this workload family.
pub fn rows(config: &Config) -> Vec<Row> {
    let window = config.pick(Duration::from_millis(1500), Duration::from_millis(200));
    let phase = config.pick(Duration::from_millis(1000), Duration::from_millis(200));
    let five = Duration::from_millis(5);
    let four = Duration::from_millis(4);
    let burst = config.pick(Duration::from_millis(500), Duration::from_millis(100));
    let one = |work, length| vec![Phase { work, length }];
    let scenarios = [
        Scenario {
            name: "W1 sleep 5 ms",
            phases: one(Work::Sleep(five), window),
            in_flight: 64,
            hogs: 0,
            threads_per_core: None,
        },
        Scenario {
            name: "W2 CPU 1 ms",
            phases: one(Work::Cpu, window),
            in_flight: 64,
            hogs: 0,
            threads_per_core: None,
        },
        Scenario {
            name: "W3 CPU 1 ms + sleep 4 ms",
            phases: one(Work::CpuThenSleep(four), window),
            in_flight: 64,
            hogs: 0,
            threads_per_core: None,
        },
        Scenario {
            name: "W4 phases W1-W2-W3-W1",
            phases: [
                Work::Sleep(five),
                Work::Cpu,
                Work::CpuThenSleep(four),
                Work::Sleep(five),
            ]
            .into_iter()
            .map(|work| Phase {
                work,
                length: phase,
            })
            .collect(),
            in_flight: 64,
            hogs: 0,
            threads_per_core: None,
        },
        Scenario {
            name: "W6 nested blocking",
            phases: one(Work::Nested(Duration::from_millis(2)), window),
            in_flight: 8,
            hogs: 0,
            threads_per_core: None,
        },
        Scenario {
            name: "W7 bursts of sleep 5 ms with idle gaps",
            phases: (0..3)
                .flat_map(|_| {
                    [
                        Phase {
                            work: Work::Sleep(five),
                            length: burst,
                        },
                        Phase {
                            work: Work::Idle,
                            length: burst,
                        },
                    ]
                })
                .collect(),
            in_flight: 16,
            hogs: 0,
            threads_per_core: None,
        },
        Scenario {
            name: "W8 CPU 1 ms beside a CPU hog",
            phases: one(Work::Cpu, window),
            in_flight: 64,
            hogs: (cores() / 2).max(1),
            threads_per_core: None,
        },
        // The scheduler shares the cores by thread, so beside the hog the best fixed size is
        // the largest (32 threads on 2 cores), and the default CPU cap (2 threads per core)
        // gets at most 4 / (4 + 1) of 2 cores against 32 / 33. A user who wants a larger share
        // of a shared host's CPU raises the cap; this row measures what that buys.
        Scenario {
            name: "W8 opt-in: cpu_threads_per_core 4 beside a CPU hog",
            phases: one(Work::Cpu, window),
            in_flight: 64,
            hogs: (cores() / 2).max(1),
            threads_per_core: Some(4.0),
        },
    ];
    let mut rows: Vec<Row> = scenarios
        .iter()
        .filter(|s| config.wants(&format!("adaptive {}", s.name)))
        .flat_map(|s| scenario_rows(config, s))
        .collect();
    if config.wants("adaptive controller CPU per tick") {
        rows.extend(controller_rows(config));
    }
    rows
}
