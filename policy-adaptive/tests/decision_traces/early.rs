//! Early decisions (growth that does not wait for the tick) and what a backlog read on one look
//! is worth: a blocked burst, CPU-bound work left unarmed, an early tick after a growth, queued
//! work beside workers between tasks, an instant's backlog in a closed loop.

use std::time::Duration;

use policy_adaptive::{Config, Snapshot};

use crate::{
    base, cpu_world, io_world, lots_of_memory, peak, phase_change, timed_trace, trace, TICK,
};

#[test]
fn early_decisions_grow_a_blocked_burst_to_its_backlog_on_the_second_look() {
    // A burst of 200 sleep-bound tasks after an idle gap. The submissions find the one worker
    // busy and ask for early decisions, 10 ms apart. Every busy worker is blocked and the CPU
    // is idle: the first early decision grows by one (no look before read the backlog: a
    // closed loop's clients can make one appear for an instant), the next, reading it again,
    // to the backlog at once (a thread per queued task, as tokio's blocking pool does). Paced
    // at x4 per 100 ms (+1 per early decision while the pool was small), 1 -> 64 took 300 ms:
    // W1 and W4's sleep phases at 0.72-0.88 of the best fixed size.
    let when = |_| Duration::from_millis(10);
    let mut io = io_world(200);
    let (table, end) = timed_trace(&Config::default(), 1, 4, when, |tick, threads| {
        let mut s = io(tick, threads);
        s.completed /= 10; // 10 ms of completions, not 100
        s
    });
    assert_eq!(
        end, 200,
        "grew to the backlog on the second early decision: {table}"
    );
    let line = |table: &str, n: usize| table.lines().nth(n).unwrap().to_owned();
    assert!(line(&table, 1).contains("  1 -> 2 "), "{table}");
    assert!(line(&table, 1).contains("none at the last look"), "{table}");
    assert!(line(&table, 2).contains("  2 -> 200"), "{table}");
    // With the host CPU at the guard (read once a second: after a CPU-bound phase it still
    // shows our own workers), the burst grows at once all the same; paced at x2 per interval,
    // +1 per early decision, it took 450 ms to 64 in W4's last phase.
    let mut io = io_world(200);
    let (busy_host, busy_end) = timed_trace(&Config::default(), 1, 3, when, |tick, threads| {
        let mut s = io(tick, threads);
        s.completed /= 10;
        s.host_cpu = Some(1.0);
        s
    });
    assert_eq!(busy_end, 200, "{busy_host}");
    insta::assert_snapshot!(format!("{table}\n{busy_host}"));
}

#[test]
fn cpu_bound_work_is_not_armed_for_early_growth() {
    // CPU-bound: 64 clients on 2 cores, 2 workers. Each early decision sees the workers running
    // (not blocked): it holds, and the controller disarms, so submissions stop asking.
    let when = |_| Duration::from_millis(10);
    let (table, end) = timed_trace(&Config::default(), 2, 4, when, cpu_world(64, 2.0, 1.0));
    assert_eq!(end, 2);
    assert!(
        !table.lines().skip(1).any(|l| l.contains("| true ")),
        "{table}"
    );
    insta::assert_snapshot!(table);
}

#[test]
fn an_early_decision_grows_only_workers_nearly_all_blocked() {
    // CPU-bound spinners on a host at load 40, 2 workers, early decisions 10 ms apart: over so
    // short a window a worker waiting for a CPU looks partly blocked (0.8 of the 2 here, seen
    // in `cpu_bound_work_does_not_grow_on_demand`), and growing on that added a worker per
    // early decision. Early decisions now grow only workers nearly all blocked (3/4 or more);
    // the next full tick judges the rest.
    let when = |tick| Duration::from_millis(if tick < 4 { 10 } else { 100 });
    let (table, end) = timed_trace(&Config::default(), 2, 4, when, |_, threads| Snapshot {
        queued: 14,
        running: threads as u64,
        completed: 1,
        blocked: Some(0.8),
        worker_cpu: Some(0.4),
        worker_demand: Some(1.2),
        memory: lots_of_memory(),
        ..base()
    });
    assert!(
        !table.lines().skip(1).take(3).any(|l| l.contains("backlog")),
        "{table}"
    );
    assert_eq!(
        end, 3,
        "the full tick may still grow by the blocked worker: {table}"
    );
    // Nearly all blocked (a burst of sleepers): early decisions grow as before.
    let (burst, burst_end) = timed_trace(&Config::default(), 2, 3, when, |_, threads| Snapshot {
        queued: 14,
        running: threads as u64,
        completed: 1,
        blocked: Some(threads as f64 * 0.95),
        worker_cpu: Some(0.02),
        worker_demand: Some(0.03),
        memory: lots_of_memory(),
        ..base()
    });
    assert!(burst_end > 2, "{burst}");
    insta::assert_snapshot!(format!("{table}\n{burst}"));
}

/// W4's switch to W3's tasks as traced (there at 5 workers, here at the CPU cap's 4): three
/// full ticks of the CPU phase, the fall (tick 4) grows to 16, then early decisions 10 ms
/// apart (ticks 5-7: the submissions find every worker busy) read the process at the cores
/// (the 16 workers' first milliseconds of CPU) and the split still the CPU phase's (12.4 cores
/// wanted, 3.6 of 16 blocked); the full tick after them (tick 8) reads the split caught up
/// (half the busy time blocked).
fn grown_on_a_fall_then_early_ticks(tick: u32, threads: usize) -> Snapshot {
    let busy = threads.min(64);
    let (completed, blocked, cpu, demand, process) = match tick {
        1..=3 => (199, 0.05, 2.0, 4.9, 2.0),
        4 => (90, 0.2, 0.92, 3.0, 0.9),
        5..=7 => (6, 3.6, 1.9, 12.4, 2.0),
        _ => (300, busy as f64 * 0.5, 1.95, busy as f64 * 0.5, 1.97),
    };
    Snapshot {
        process_cpu: Some(process),
        ..phase_change(busy, completed, blocked, cpu, demand)
    }
}

#[test]
fn an_early_tick_right_after_a_growth_does_not_trim() {
    // Measured (`compare --only "adaptive W4"`, 2 of about 40 traced runs): the early tick 30 ms
    // after the growth trimmed 16 -> 10 on the stale split and W3's phase ran at 10-12 threads.
    // A trim now waits for a tick's window; the full tick finds the split caught up.
    let when = |tick: u32| {
        if (5..=7).contains(&tick) {
            Duration::from_millis(10)
        } else {
            TICK
        }
    };
    let (table, end) = timed_trace(
        &Config::default(),
        4,
        8,
        when,
        grown_on_a_fall_then_early_ticks,
    );
    assert!(
        table.lines().nth(4).unwrap().contains("  4 -> 16"),
        "{table}"
    );
    assert!(!table.contains("cpu-bound"), "{table}");
    assert_eq!(end, 16, "{table}");
    insta::assert_snapshot!(table);
}

#[test]
fn queued_work_beside_workers_between_tasks_is_no_shortage() {
    // 64 sleepers at 64 threads on a busy host, as measured: a dozen tasks queued while a
    // dozen workers are between tasks (a wake-up away from taking them). They grew 64 -> 76
    // -> 88 on it; the backlog net of those workers is none. 20 queued beside 12 between
    // tasks is a backlog of 8.
    let world = |queued: u64| {
        move |_, threads: usize| Snapshot {
            queued,
            running: 52,
            completed: 1213,
            blocked: Some(51.9),
            worker_cpu: Some(0.2),
            worker_demand: Some(0.2),
            memory: lots_of_memory(),
            host_cpu: Some(0.1),
            ..Snapshot { threads, ..base() }
        }
    };
    let mut config = Config::default();
    config.max = 128;
    let (table, end) = trace(&config, 64, 2, world(12));
    assert_eq!(end, 64, "{table}");
    // The first look at it grows by one (no look before read it); the next, reading it
    // again (7 net of the 13 between tasks at 65 threads), by the rest.
    let (more, more_end) = trace(&config, 64, 2, world(20));
    assert!(
        more.contains("64 -> 65 ") && more.contains("none at the last look"),
        "{more}"
    );
    assert_eq!(more_end, 72, "{more}");
    insta::assert_snapshot!(format!("{table}\n20 queued:\n{more}"));
}

#[test]
fn an_instants_backlog_in_a_closed_loop_grows_by_one_not_to_the_backlog() {
    // A closed loop of 64 sleepers at 64 threads on a busy host, as traced in W1 and W4's
    // sleep phases: the regular ticks read nothing queued, but an early look (a submission
    // found every worker busy) now and then reads 20-27 tasks queued beside 64 running: their
    // clients submitted the next task before the workers that ran the last had left it. Grown
    // to the backlog on one look, the pool went 64 -> 86, 64 -> 101. Each instant's backlog,
    // which no look before read, grows it by one; the regular tick between reads it gone.
    let clients = 64;
    let when = |tick| Duration::from_millis(if tick % 2 == 0 { 10 } else { 100 });
    let (table, end) = timed_trace(&Config::default(), 64, 6, when, |tick, threads| {
        let instant = if tick % 2 == 0 { 25 } else { 0 };
        Snapshot {
            queued: instant,
            running: clients,
            completed: if tick % 2 == 0 { 128 } else { 1280 },
            blocked: Some(62.7),
            worker_cpu: Some(0.1),
            worker_demand: Some(0.2),
            memory: lots_of_memory(),
            host_cpu: Some(0.4),
            ..Snapshot { threads, ..base() }
        }
    });
    assert_eq!(end, 67, "{table}");
    assert_eq!(peak(&table), Some(67), "{table}");
    assert_eq!(table.matches("none at the last look").count(), 3, "{table}");
    insta::assert_snapshot!(table);
}
