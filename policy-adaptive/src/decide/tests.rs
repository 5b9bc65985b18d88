//! Unit tests of the decision: rule 4's burst, fall, rise and light-task readings, the second
//! look and the trim, tick by tick on scripted snapshots.

use std::time::Duration;

use super::backlog::net_backlog;
use super::*;
use crate::snapshot::WorkerStates;

const TICK: Duration = Duration::from_millis(100);

/// Whether `decision` grew on the presumption that our workers' fallen CPU is blocked time.
fn cpu_fell(decision: &Decision) -> bool {
    matches!(decision.reason, Reason::CpuFell { .. })
}

fn busy(threads: usize, blocked: f64, cpu: f64, demand: f64) -> Snapshot {
    Snapshot {
        threads,
        target: threads,
        queued: 60,
        running: threads as u64,
        completed: 100,
        blocked: Some(blocked),
        worker_cpu: Some(cpu),
        worker_demand: Some(demand),
        ..Snapshot::new(TICK, 2)
    }
}

/// A fresh state whose last sample read `s`'s backlog: a burst on `s` is then confirmed
/// (a backlog no look read before grows by one, `Reason::NewBacklog`).
fn after_a_look_at(s: &Snapshot) -> ControllerState {
    ControllerState {
        backlog_seen: net_backlog(s),
        ..ControllerState::new()
    }
}

#[test]
fn a_burst_grows_by_at_most_what_the_last_look_read_too() {
    let config = Config::default();
    // Sleepers (nearly all blocked, hardly any CPU) at `threads`, `running` of them busy.
    let sleepers = |threads: usize, running: u64, queued: u64| Snapshot {
        queued,
        running,
        ..busy(threads, running as f64 * 0.97, 0.2, 0.3)
    };
    // 64 sleepers at 64 threads: for an instant 25 tasks queued beside 64 running (their
    // clients submitted the next before the workers left the last), none the look before.
    let mut state = ControllerState::new();
    let d = decide(&sleepers(64, 64, 25), &mut state, &config);
    assert_eq!(
        (d.target, d.reason),
        (65, Reason::NewBacklog { queued: 25 })
    );
    assert_eq!(
        d.reason.to_string(),
        "backlog, 25 queued, none at the last look: one more, look again"
    );
    // The next look reads 10 queued: to at most what both read.
    let d = decide(&sleepers(65, 65, 10), &mut state, &config);
    assert_eq!(d.target, 75, "{d:?}");
    assert!(matches!(d.reason, Reason::Backlog { .. }), "{d:?}");
    // And a look that reads 40 after one that read 10: by 10.
    assert_eq!(
        decide(&sleepers(75, 75, 40), &mut state, &config).target,
        85
    );
    // A look between samples that found nothing queued (the controller's cheap look)
    // makes the next backlog new again.
    state.forget_backlog();
    let d = decide(&sleepers(85, 85, 40), &mut state, &config);
    assert_eq!(
        (d.target, d.reason),
        (86, Reason::NewBacklog { queued: 40 })
    );
    // A backlog the workers between tasks cover is none, so the one after it is new.
    assert_eq!(decide(&sleepers(86, 80, 6), &mut state, &config).target, 86);
    let d = decide(&sleepers(86, 86, 6), &mut state, &config);
    assert_eq!((d.target, d.reason), (87, Reason::NewBacklog { queued: 6 }));
}

#[test]
fn cpu_that_fell_by_half_counts_off_cpu_time_as_blocked_once() {
    let config = Config::default();
    let mut state = ControllerState::new();
    // A CPU-bound tick at the cap holds (and is remembered).
    let before = decide(&busy(4, 0.1, 1.9, 3.9), &mut state, &config);
    assert_eq!(before.target, 4);
    // The CPU falls to a fifth with the split unchanged: x4 at once.
    let fell = decide(&busy(4, 0.4, 0.4, 3.6), &mut state, &config);
    assert_eq!(fell.target, 16);
    assert!(cpu_fell(&fell), "{fell:?}");
    // The same low reading again (a hog that stayed, say) is no new drop.
    let again = decide(&busy(16, 0.1, 0.4, 15.9), &mut state, &config);
    assert!(!cpu_fell(&again), "{again:?}");
    // The host reading still showing the CPU phase (busy) does not halve the step.
    let mut state = ControllerState::new();
    let hot = |s: Snapshot| Snapshot {
        host_cpu: Some(1.0),
        ..s
    };
    decide(&hot(busy(4, 0.1, 1.9, 3.9)), &mut state, &config);
    assert_eq!(
        decide(&hot(busy(4, 0.4, 0.4, 3.6)), &mut state, &config).target,
        16
    );
}

/// Invariant: a fall read while the pool is below the CPU cap (the climber probing the CPU-bound
/// size one down) grows to 4 × the cap as from the cap: 3 -> 16 on 2 cores, where ×4 of the
/// probe stopped at 12.
#[test]
fn cpu_that_fell_during_a_probe_down_is_paced_from_the_cap() {
    let config = Config::default();
    let mut state = ControllerState::new();
    assert_eq!(
        decide(&busy(4, 0.1, 1.9, 3.9), &mut state, &config).target,
        4
    );
    // The probe's tick: 3 workers, still CPU-bound.
    assert_eq!(
        decide(&busy(3, 0.1, 1.9, 2.9), &mut state, &config).target,
        3
    );
    // The load changes: the CPU falls to a third.
    let fell = decide(&busy(3, 0.4, 0.6, 2.6), &mut state, &config);
    assert!(cpu_fell(&fell), "{fell:?}");
    assert_eq!(fell.target, 16, "{fell:?}");
    // Room still bounds it: a smaller fall (to 0.94 cores) justifies 4 x 3 / 0.94 = 12.
    let mut state = ControllerState::new();
    decide(&busy(4, 0.1, 1.9, 3.9), &mut state, &config);
    decide(&busy(3, 0.1, 1.9, 2.9), &mut state, &config);
    let partial = decide(&busy(3, 0.4, 0.94, 2.6), &mut state, &config);
    assert!(cpu_fell(&partial), "{partial:?}");
    assert_eq!(partial.target, 12, "{partial:?}");
}

#[test]
fn states_at_their_limits_are_counted_without_overflow() {
    // `WorkerStates` is public: a custom `Signals` may fill it with anything. The checks
    // count in u64, so no count overflows, and the decision stays within the bounds.
    let config = Config::default();
    for (runnable, blocked) in [(u32::MAX, u32::MAX), (0, u32::MAX), (u32::MAX, 0), (0, 0)] {
        let states = Some(WorkerStates { runnable, blocked });
        let mut state = ControllerState::new();
        decide(&busy(4, 0.1, 1.9, 3.9), &mut state, &config);
        for cpu in [1.9, 1.3, 0.4] {
            let s = Snapshot {
                states,
                ..busy(4, 0.1, cpu, 3.9)
            };
            let d = decide(&s, &mut state, &config);
            assert!((config.min..=config.max).contains(&d.target), "{d:?}");
        }
    }
}

#[test]
fn cpu_that_fell_needs_a_full_tick_and_as_many_busy_workers() {
    let config = Config::default();
    // With half the workers busy the drop is theirs (a load that drained), not a stale split.
    let mut state = ControllerState::new();
    decide(&busy(4, 0.1, 1.9, 3.9), &mut state, &config);
    let fewer = Snapshot {
        running: 2,
        ..busy(4, 0.4, 0.4, 1.6)
    };
    assert!(!cpu_fell(&decide(&fewer, &mut state, &config)));
    // An early tick (a few ms) neither shows a drop nor records its CPU.
    let mut state = ControllerState::new();
    decide(&busy(4, 0.1, 1.9, 3.9), &mut state, &config);
    let early = Snapshot {
        elapsed: Duration::from_millis(10),
        ..busy(4, 0.4, 0.4, 3.6)
    };
    assert!(!cpu_fell(&decide(&early, &mut state, &config)));
    assert_eq!(state.last_cpu, [Some((1.9, 4)), None]);
    // Without a last full tick there is nothing to have fallen from.
    let mut state = ControllerState::new();
    let first = decide(&busy(4, 0.4, 0.4, 3.6), &mut state, &config);
    assert_eq!(first.target, 4, "{first:?}");
}

/// Invariant: a full tick whose CPU dipped by a quarter (not by half) asks for one second
/// look; that look, a quarter interval on, grows on a fall by half with a full tick's weight
/// (to 4 × the CPU cap, not by 4^(1/4)) and asks for no more; an early look (10 ms) or a look without the
/// fall changes nothing; a dip of less than a quarter asks for nothing.
#[test]
fn a_dip_mid_tick_looks_again_and_grows_on_the_fall_at_a_ticks_pace() {
    let config = Config::default();
    let look = |s: Snapshot| Snapshot {
        elapsed: TICK / LOOK_AGAIN_AFTER,
        ..s
    };
    let mut state = ControllerState::new();
    decide(&busy(3, 0.1, 1.95, 2.9), &mut state, &config);
    assert!(!state.looks_again());
    // The switch reached the workers mid-tick: 1.95 -> 1.3 cores, no fall by half yet.
    let dipped = decide(&busy(3, 0.2, 1.3, 2.8), &mut state, &config);
    assert_eq!(dipped.target, 3, "{dipped:?}");
    assert!(state.looks_again());
    // An early look 10 ms on is not the second look (too short a window to judge).
    let early = Snapshot {
        elapsed: Duration::from_millis(10),
        ..busy(3, 0.3, 0.5, 2.7)
    };
    assert!(!cpu_fell(&decide(&early, &mut state, &config)));
    assert!(state.looks_again());
    // The look reads the new load alone: fell by half from 1.95, to 4 × the CPU cap at once
    // (3 -> 16; a quarter interval's ×4^(1/4) would give 4).
    let fell = decide(&look(busy(3, 0.3, 0.5, 2.7)), &mut state, &config);
    assert!(cpu_fell(&fell), "{fell:?}");
    assert_eq!(fell.target, 16, "{fell:?}");
    assert!(!state.looks_again());
    // A look that does not read the fall holds and grows nothing.
    let mut state = ControllerState::new();
    decide(&busy(3, 0.1, 1.95, 2.9), &mut state, &config);
    decide(&busy(3, 0.2, 1.3, 2.8), &mut state, &config);
    let steady = decide(&look(busy(3, 0.1, 1.4, 2.9)), &mut state, &config);
    assert_eq!(steady.target, 3, "{steady:?}");
    // The next full tick decides afresh: no dip, no look.
    decide(&busy(3, 0.1, 1.9, 2.9), &mut state, &config);
    assert!(!state.looks_again());
    // Noise under a quarter (1.95 -> 1.6) asks for nothing.
    let mut state = ControllerState::new();
    decide(&busy(3, 0.1, 1.95, 2.9), &mut state, &config);
    decide(&busy(3, 0.1, 1.6, 2.9), &mut state, &config);
    assert!(!state.looks_again());
    // Nor does a dip without a backlog, or far above the CPU cap.
    let mut state = ControllerState::new();
    decide(&busy(3, 0.1, 1.95, 2.9), &mut state, &config);
    let drained = Snapshot {
        queued: 0,
        ..busy(3, 0.2, 1.3, 2.8)
    };
    decide(&drained, &mut state, &config);
    assert!(!state.looks_again());
    let mut state = ControllerState::new();
    decide(&busy(20, 0.1, 1.95, 19.0), &mut state, &config);
    decide(&busy(20, 0.2, 1.3, 19.0), &mut state, &config);
    assert!(!state.looks_again());
}

/// Invariant: the CPU a fall is measured from is the higher of the workers' clocks and the
/// process's (fresh where the clocks of a trimmed pool are stale), so W4's switch right
/// after a trim (clocks 1.43, process 1.99 cores) still dips and falls.
#[test]
fn a_fall_after_a_trim_is_measured_from_the_processs_cpu() {
    let config = Config::default();
    let with = |s: Snapshot, p: f64| Snapshot {
        process_cpu: Some(p),
        ..s
    };
    let mut state = ControllerState::new();
    decide(&with(busy(8, 0.4, 1.43, 7.6), 1.99), &mut state, &config);
    // The straddling tick at 4 threads: 1.38 by the clocks, 1.42 by the process.
    decide(&with(busy(4, 0.7, 1.38, 3.3), 1.42), &mut state, &config);
    assert!(state.looks_again());
    let look = Snapshot {
        elapsed: TICK / LOOK_AGAIN_AFTER,
        ..with(busy(4, 1.6, 0.84, 2.4), 0.86)
    };
    let fell = decide(&look, &mut state, &config);
    assert!(cpu_fell(&fell), "{fell:?}");
    assert_eq!(fell.target, 16, "{fell:?}");
    // Without the process's figure the clocks' 1.43 stands: 0.84 is no fall by half.
    let mut state = ControllerState::new();
    decide(&busy(8, 0.4, 1.43, 7.6), &mut state, &config);
    decide(&busy(4, 0.7, 1.38, 3.3), &mut state, &config);
    assert!(!state.looks_again());
    assert!(!cpu_fell(&decide(
        &busy(4, 1.6, 0.84, 2.4),
        &mut state,
        &config
    )));
}

#[test]
fn cpu_that_fell_grows_only_a_pool_near_the_cpu_cap() {
    let config = Config::default();
    // 26 threads (an outside load arrived on a pool above the CPU-bound size): no step.
    let mut state = ControllerState::new();
    decide(&busy(26, 0.5, 1.34, 25.0), &mut state, &config);
    let far = decide(&busy(26, 0.5, 0.52, 25.0), &mut state, &config);
    assert!(!cpu_fell(&far), "{far:?}");
    // 8 (twice the cap of 4): x4 would be 32; at most 4 × the cap, 16.
    let mut state = ControllerState::new();
    decide(&busy(8, 0.2, 1.9, 7.8), &mut state, &config);
    let near = decide(&busy(8, 0.4, 0.5, 7.0), &mut state, &config);
    assert_eq!((near.target, cpu_fell(&near)), (16, true));
}

#[test]
fn a_drop_split_over_two_ticks_counts_from_the_higher() {
    // The load changed mid-tick: 1.9 -> 1.1 -> 0.8 cores, neither tick halving the last.
    let config = Config::default();
    let mut state = ControllerState::new();
    decide(&busy(4, 0.1, 1.9, 3.9), &mut state, &config);
    let mid = decide(&busy(4, 0.3, 1.1, 3.7), &mut state, &config);
    assert!(!cpu_fell(&mid), "{mid:?}");
    let fell = decide(&busy(4, 0.4, 0.8, 3.6), &mut state, &config);
    assert!(cpu_fell(&fell), "{fell:?}");
    // ... once: the peak is forgotten after the step.
    let again = decide(&busy(16, 0.1, 0.4, 15.9), &mut state, &config);
    assert!(!cpu_fell(&again), "{again:?}");
}

fn with_process(s: Snapshot, process: f64) -> Snapshot {
    Snapshot {
        process_cpu: Some(process),
        ..s
    }
}

#[test]
fn heavier_tasks_hold_growth_on_the_blocked_split_from_an_early_tick_too() {
    let config = Config::default();
    // Two full ticks of sleepers: 60 of 64 blocked, 1000 completions at 0.5 cores (50 µs
    // of the process's CPU a task).
    let sleepers = Snapshot {
        completed: 1000,
        ..with_process(busy(64, 60.0, 0.3, 2.0), 0.5)
    };
    let after_sleepers = || {
        let mut state = ControllerState::new();
        for _ in 0..2 {
            decide(&sleepers, &mut state, &config);
        }
        state
    };
    // `ms` into the next interval, `completed` tasks at `process` cores, the split still
    // the sleepers' (nearly all blocked: an early tick's growth).
    let early = |ms, completed, process| Snapshot {
        elapsed: Duration::from_millis(ms),
        completed,
        ..with_process(busy(64, 60.0, 0.3, 2.0), process)
    };
    let cases = [
        // Spinners 20 ms in: 30 tasks at 1.9 cores, 1.3 ms each: the split is stale.
        ((20, 30, 1.9), true),
        // Over 5 ms (under a tenth of an interval): too short a window to judge.
        ((5, 30, 1.9), false),
        // Fewer than `LIGHT_TASKS` completions: a task's CPU may precede the window.
        ((20, LIGHT_TASKS - 1, 1.9), false),
        // Heavier tasks, but the process up only 0.1 cores: the cores are as they were.
        ((20, 8, 0.6), false),
        // The process up to 1.9 cores with the tasks as they were (the sleepers' pool
        // grown): its split, growth on it.
        ((20, 760, 1.9), false),
    ];
    for ((ms, completed, process), holds) in cases {
        let mut state = after_sleepers();
        let d = decide(&early(ms, completed, process), &mut state, &config);
        let rose = matches!(d.reason, Reason::CpuRose { .. });
        assert_eq!(
            rose, holds,
            "{ms} ms, {completed} done, {process} cores: {d:?}"
        );
        assert_eq!(d.target > 64, !holds, "{ms} ms, {completed} done: {d:?}");
    }
}

#[test]
fn a_process_cpu_rise_holds_growth_on_the_blocked_split_for_its_span() {
    let config = Config::default();
    let mut state = ControllerState::new();
    // Sleepers (0.3 cores), then the process at the cores with the split still "blocked".
    let sleepers = with_process(busy(16, 15.0, 0.3, 1.0), 0.3);
    assert!(decide(&sleepers, &mut state, &config).target > 16);
    let stale = with_process(busy(16, 15.0, 0.3, 1.0), 1.9);
    let rose = decide(&stale, &mut state, &config);
    assert_eq!(rose.target, 16, "{rose:?}");
    assert!(matches!(rose.reason, Reason::CpuRose { .. }), "{rose:?}");
    // The next ticks within the span (250 ms) hold too; an early tick does not start
    // another.
    let early = Snapshot {
        elapsed: Duration::from_millis(10),
        ..stale
    };
    assert_eq!(decide(&early, &mut state, &config).target, 16);
    for _ in 0..3 {
        assert_eq!(decide(&stale, &mut state, &config).target, 16);
    }
    // Past the span, a blocked reading is the new load's: growth again.
    assert!(decide(&stale, &mut state, &config).target > 16);
    // A process already at the cores (no rise) grows on the split at once.
    let mut state = ControllerState::new();
    decide(&stale, &mut state, &config);
    assert!(decide(&stale, &mut state, &config).target > 16);
}

#[test]
fn the_workers_cpu_is_at_most_the_processs() {
    let config = Config::default();
    // Half blocked, the workers' clocks at the cores (a last load's): no room.
    let old = busy(22, 11.4, 1.9, 10.6);
    assert_eq!(
        decide(&old, &mut ControllerState::new(), &config).target,
        22
    );
    // The process used 0.3 cores: so did they at most, and there is room.
    let fresh = with_process(old, 0.3);
    assert!(decide(&fresh, &mut ControllerState::new(), &config).target > 22);
    // A process above the workers' figure leaves it as it is (other threads count there).
    let busier = with_process(old, 2.0);
    assert_eq!(
        decide(&busier, &mut ControllerState::new(), &config).target,
        22
    );
    // Not a number of cores: ignored.
    for bad in [f64::NAN, f64::INFINITY, -1.0] {
        let s = with_process(old, bad);
        assert_eq!(decide(&s, &mut ControllerState::new(), &config).target, 22);
    }
    // Only the full-cores check takes it: a process starved to 0.15 cores by a crowded
    // host does not make half-blocked workers "light" (a burst to the backlog: W3 went
    // 6 -> 65 on it); they grow by the paced share, bounded by the ratio of their clocks.
    let starved = with_process(busy(6, 3.1, 0.8, 2.9), 0.15);
    let starved = Snapshot {
        host_cpu: Some(1.0),
        ..starved
    };
    let d = decide(&starved, &mut ControllerState::new(), &config);
    assert_eq!(d.target, 12, "{d:?}");
}

#[test]
fn a_fresh_process_figure_makes_half_blocked_workers_light() {
    let config = Config::default();
    // 16 workers, 10.9 blocked, their clocks at 1.16 cores (a last load's), 48 queued.
    let stale = Snapshot {
        queued: 48,
        completed: 313,
        ..busy(16, 10.9, 1.16, 5.1)
    };
    let grow = |s: Snapshot| decide(&s, &mut after_a_look_at(&s), &config).target;
    let paced = grow(stale);
    assert!(paced < 64, "{paced}");
    // The process used 0.07 cores over 313 completions (22 µs a task): to the backlog.
    assert_eq!(grow(with_process(stale, 0.07)), 64);
    // Not a number of cores: ignored, as without the figure.
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.5] {
        assert_eq!(grow(with_process(stale, bad)), paced, "{bad}");
    }
    // Not light: over 7 completions (fewer than `LIGHT_TASKS`); at 150 µs a task; at half
    // the cores; with under half the busy workers blocked; over under a tenth of an
    // interval (an early look right after a resize).
    let cases = [
        Snapshot {
            completed: LIGHT_TASKS - 1,
            ..with_process(stale, 0.001)
        },
        Snapshot {
            completed: 10,
            elapsed: Duration::from_millis(10),
            ..with_process(stale, 0.15)
        },
        with_process(
            Snapshot {
                completed: 10_000,
                ..stale
            },
            1.0,
        ),
        with_process(busy(16, 7.9, 1.16, 8.1), 0.07),
        Snapshot {
            elapsed: Duration::from_millis(9),
            ..with_process(stale, 0.07)
        },
    ];
    for s in cases {
        let d = decide(&s, &mut ControllerState::new(), &config);
        assert!(d.target < 64, "{s:?}: {d:?}");
    }
    // An early look over 10 ms with enough completions: light.
    let early = Snapshot {
        elapsed: Duration::from_millis(10),
        completed: 45,
        ..with_process(stale, 0.12)
    };
    assert_eq!(grow(early), 64);
}

#[test]
fn starved_tasks_of_a_millisecond_of_cpu_are_not_light() {
    let config = Config::default();
    // W3 on a crowded host, as measured: 7 workers, 3.6 blocked, 0.15 cores, 15 tasks
    // done (1 ms of CPU each): not light, so no burst to the backlog (57 queued).
    let starved = Snapshot {
        completed: 15,
        host_cpu: Some(1.0),
        ..busy(7, 3.6, 0.15, 3.4)
    };
    let d = decide(&starved, &mut ControllerState::new(), &config);
    assert!(d.target <= 14, "{d:?}");
    // Sleepers at the same CPU finish hundreds of tasks (75 µs of CPU each): light.
    let sleepers = Snapshot {
        completed: 200,
        ..starved
    };
    let d = decide(&sleepers, &mut after_a_look_at(&sleepers), &config);
    assert_eq!(d.target, 67, "{d:?}");
}

#[test]
fn workers_between_tasks_take_the_queued_work_first() {
    let config = Config::default();
    // 12 queued beside 12 of 64 workers not running: no shortage.
    let s = Snapshot {
        queued: 12,
        running: 52,
        ..busy(64, 51.0, 0.2, 0.2)
    };
    assert_eq!(decide(&s, &mut ControllerState::new(), &config).target, 64);
    // 20 queued: 8 short (read by the look before too).
    let s = Snapshot { queued: 20, ..s };
    assert_eq!(decide(&s, &mut after_a_look_at(&s), &config).target, 72);
}

#[test]
fn the_trim_takes_the_processs_cpu_when_higher() {
    let config = Config::default();
    // CPU-bound (6 of 40 blocked) with the workers' clocks at 0.8 cores: 4 × 6.8 / 0.8 = 34.
    let s = Snapshot {
        queued: 0,
        ..busy(64, 6.0, 0.8, 40.0)
    };
    let s = Snapshot { running: 40, ..s };
    assert_eq!(decide(&s, &mut ControllerState::new(), &config).target, 34);
    // The process used the cores (2.0, counted up to the cores): 4 × 8 / 2 = 16.
    let p = with_process(s, 2.5);
    assert_eq!(decide(&p, &mut ControllerState::new(), &config).target, 16);
}

#[test]
fn a_majority_blocked_grows_by_the_backlog_share_a_minority_by_the_count() {
    let config = Config::default();
    // 3.6 of 6 blocked, 58 queued: 58 × 0.6 = 35, bounded by the room 4 × 4.8 / 1.2 = 16.
    let jump = Snapshot {
        queued: 58,
        ..busy(6, 3.6, 1.2, 2.4)
    };
    assert_eq!(
        decide(&jump, &mut ControllerState::new(), &config).target,
        16
    );
    // 0.8 of 2 blocked (a crowded host's CPU-bound workers can read so): by the count, +1.
    let minority = Snapshot {
        queued: 14,
        ..busy(2, 0.8, 0.4, 1.2)
    };
    assert_eq!(
        decide(&minority, &mut ControllerState::new(), &config).target,
        3
    );
}
