//! The basic rules: backlog growth, the CPU saturation trim, memory pressure, idle retirement,
//! a noisy neighbour, starvation, the hill climber, the bounds, and determinism.

use policy_adaptive::{decide, Config, ControllerState, Memory, Reason, Snapshot};

use crate::{base, cpu_bound, cpu_world, io_world, lots_of_memory, trace, CORES};

#[test]
fn backlog_with_blocked_workers_grows_until_the_backlog_is_gone() {
    let (table, end) = trace(&Config::default(), 1, 10, io_world(64));
    assert_eq!(end, 64);
    insta::assert_snapshot!(table);
}

#[test]
fn cpu_saturation_trims_to_two_per_core_and_the_climber_finds_fewer() {
    let (table, end) = trace(&Config::default(), 32, 40, cpu_world(64, 2.0, 1.0));
    assert!(
        end <= 2 * CORES,
        "CPU-bound work keeps at most 2 threads per core, got {end}"
    );
    assert!(
        end >= CORES,
        "throughput needs a thread per core, got {end}"
    );
    insta::assert_snapshot!(table);
}

#[test]
fn memory_pressure_caps_growth() {
    let mut io = io_world(64);
    let (table, end) = trace(&Config::default(), 4, 6, |tick, threads| Snapshot {
        memory: Some(Memory {
            available: 300 << 20,
            limit: 8 << 30,
        }),
        ..io(tick, threads)
    });
    assert_eq!(end, 4);
    insta::assert_snapshot!(table);
}

#[test]
fn idle_workers_retire_to_min_after_keep_alive() {
    // 16 threads; 6 stay busy for 10 ticks with nothing queued, then all go idle. The keep-alive
    // window slides: 16 -> 6 at tick 20 (6 were busy in the last 2 s), and 6 -> 1 at tick 30,
    // one keep-alive after the last busy tick (it took a second keep-alive, to tick 40, when
    // the window restarted after each shrink).
    let (table, end) = trace(&Config::default(), 16, 32, |tick, _| {
        let busy = if tick <= 10 { 6 } else { 0 };
        Snapshot {
            running: busy,
            completed: busy * 20,
            blocked: Some(busy as f64),
            worker_cpu: Some(0.05),
            memory: lots_of_memory(),
            host_cpu: Some(0.02),
            ..base()
        }
    });
    assert_eq!(end, 1);
    insta::assert_snapshot!(table);
}

#[test]
fn a_noisy_neighbour_changes_nothing_but_the_growth_speed() {
    // CPU-bound: 8 workers share the cores with a neighbour's 2 busy threads (the scheduler is
    // fair per thread, so our share is busy / (busy + 2)); the host shows 100%. The same world
    // with the host CPU signal missing gets exactly the same decisions: host CPU never shrinks.
    let neighbour = |host: Option<f64>| {
        move |_, threads: usize| {
            let busy = threads.min(8);
            let on_cpu = CORES as f64 * busy as f64 / (busy as f64 + 2.0);
            cpu_bound(8, busy, on_cpu, host)
        }
    };
    let (busy_host, end) = trace(&Config::default(), 8, 30, neighbour(Some(1.0)));
    let (unknown_host, _) = trace(&Config::default(), 8, 30, neighbour(None));
    let strip = |t: &str| {
        t.lines()
            .map(|l| l.replace("host 100%", "host").replace("host    -", "host"))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&busy_host), strip(&unknown_host));
    assert!(
        (CORES + 1..=2 * CORES).contains(&end),
        "trimmed to 2 per core; the climber's probe down loses share and comes back: {end}"
    );
    // I/O-bound workers with a backlog under a busy host: growth continues, to the backlog at
    // once (every busy worker blocked: the guard paces only partly blocked workers, see
    // `an_oversubscribed_host_grows_sleep_bound_work_to_its_blocking_ratio`).
    let mut io = io_world(64);
    let (io_table, io_end) = trace(&Config::default(), 4, 12, |tick, threads| Snapshot {
        host_cpu: Some(1.0),
        ..io(tick, threads)
    });
    assert!(
        io_end > 16,
        "growth continues under a busy host, got {io_end}"
    );
    insta::assert_snapshot!(format!("{busy_host}\n{io_table}"));
}

#[test]
fn starvation_adds_one_worker_at_a_time() {
    // Nested blocking without per-thread CPU: every worker waits on a child queued behind it.
    // The pool starts at the CPU cap (2 per core), so only the starvation rule can add workers.
    let (table, end) = trace(&Config::default(), 4, 12, |_, threads| {
        if threads < 6 {
            Snapshot {
                queued: threads as u64,
                running: threads as u64,
                ..base()
            }
        } else {
            Snapshot {
                running: 3,
                completed: 60,
                ..base()
            }
        }
    });
    assert_eq!(end, 6);
    insta::assert_snapshot!(table);
}

/// The climber's world: mixed work (1 ms CPU + 4 ms sleep) without the blocked signal, whose
/// completions per tick rise until the two cores saturate at 10 threads, then fall slightly from
/// switching.
fn rate(threads: usize) -> f64 {
    let t = threads as f64;
    if t <= 10.0 {
        t * 20.0
    } else {
        200.0 - (t - 10.0) * 2.0
    }
}

#[test]
fn the_hill_climber_keeps_going_while_it_helps_and_damps_reversals() {
    // The climber's world (`rate`): throughput rises to 10 threads, then falls slightly.
    let (table, end) = trace(&Config::default(), 6, 80, |_, threads| Snapshot {
        queued: 100,
        running: threads as u64,
        completed: rate(threads) as u64,
        ..base()
    });
    assert!(
        (8..=14).contains(&end),
        "the climber settles near 10, got {end}"
    );
    insta::assert_snapshot!(table);
}

#[test]
fn the_hill_climber_starts_its_window_again_when_the_load_changes() {
    // The climber's world above with the process's CPU known and tasks three times lighter,
    // until they get three times heavier at tick `CHANGE` (a new kind of request): a third of
    // the completions at any size, the process's CPU up from 0.5 to 1.6 cores (the split goes
    // stale: heavier tasks). A window begun on the old tasks and ended on the new read the
    // change as the step's loss: the climber, stepping up, reverted (8 -> 7 on "-16%"), held
    // there for its damping (15 ticks), probed down, and ended at 7 where 10 is best. Now the
    // tick that sees the change starts the window and its baseline again: the first comparison
    // after it is of the new load alone.
    const CHANGE: u32 = 14;
    let window = Config::default().climb_window;
    let (table, end) = trace(&Config::default(), 6, 40, |tick, threads| {
        let (lighter, process) = if tick < CHANGE {
            (3.0, 0.5)
        } else {
            (1.0, 1.6)
        };
        Snapshot {
            queued: 100,
            running: threads as u64,
            completed: (rate(threads) * lighter) as u64,
            process_cpu: Some(process),
            ..base()
        }
    });
    let climbs = |from: u32, to: u32| {
        table
            .lines()
            .skip(from as usize)
            .take((to - from) as usize)
            .filter(|line| line.contains("climb"))
            .count()
    };
    assert!(
        climbs(1, CHANGE) > 0,
        "the climber was stepping before\n{table}"
    );
    assert_eq!(
        climbs(CHANGE, CHANGE + window),
        0,
        "a window that began before the change ended after it\n{table}"
    );
    assert!(
        climbs(CHANGE + window, 40) > 0,
        "it steps again after\n{table}"
    );
    assert!(
        (9..=12).contains(&end),
        "the climber settles near 10, got {end}\n{table}"
    );
    // A process figure that is not a number of cores sees no change: the climber walks as
    // without the figure.
    let end_with = |process: Option<f64>| {
        trace(&Config::default(), 6, 40, |_, threads| Snapshot {
            queued: 100,
            running: threads as u64,
            completed: (rate(threads) * 3.0) as u64,
            process_cpu: process,
            ..base()
        })
        .1
    };
    for bad in [f64::NAN, f64::INFINITY, -1.0] {
        assert_eq!(end_with(Some(bad)), end_with(None), "{bad}");
    }
    insta::assert_snapshot!(table);
}

#[test]
fn counts_outside_the_bounds_are_brought_inside() {
    let mut config = Config::default();
    config.min = 2;
    config.max = 8;
    let mut state = ControllerState::new();
    let decide_for = |threads, state: &mut ControllerState| {
        decide(
            &Snapshot {
                threads,
                target: threads,
                ..base()
            },
            state,
            &config,
        )
    };
    assert_eq!(decide_for(20, &mut state).target, 8);
    assert_eq!(decide_for(1, &mut state).reason, Reason::Bounds);
    assert_eq!(decide_for(1, &mut state).target, 2);
}

#[test]
fn the_decision_is_deterministic() {
    let run = || trace(&Config::default(), 3, 60, cpu_world(16, 2.0, 0.9)).0;
    assert_eq!(run(), run());
}
