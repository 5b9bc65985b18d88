//! Falls of the workers' CPU at a phase change and the second look a quarter interval on: the
//! fall taken as blocked, the workers' states telling an outside hog from workers that block,
//! a dip mid-tick, and the climber's step held on a tick that looks again.

use std::fmt::Write as _;

use policy_adaptive::{decide, Config, ControllerState, Snapshot, WorkerStates};

use crate::{peak, phase_change, trace, CORES, TICK};

/// `snapshot` with the busy workers' states read at `tick` (up to 8, as `PoolSignals` reads
/// them): all runnable before tick 3 and beside a hog; from tick 3 without the hog, four in
/// five asleep (W3's tasks sleep 4 ms of every 5).
fn with_states(snapshot: Snapshot, tick: u32, hog: bool) -> Snapshot {
    let read = snapshot.running.min(8) as u32;
    let blocked = if hog || tick < 3 { 0 } else { read * 4 / 5 };
    Snapshot {
        states: Some(WorkerStates {
            runnable: read - blocked,
            blocked,
        }),
        ..snapshot
    }
}

/// W3's load on `n` busy workers once the split has caught up: a fifth of the busy time on a
/// CPU (up to the cores), the rest blocked, as (completed, blocked, cpu, demand).
fn w3_caught_up(n: f64) -> (u64, f64, f64, f64) {
    let cpu = (n * 0.2).min(1.95);
    ((cpu * 150.0) as u64, n - cpu, cpu, cpu)
}

/// W4's CPU-and-sleep phase right after its CPU-bound one, as measured (`compare --only W4`,
/// load 3-6): ticks 1-2 are the CPU phase at 4 then 3 workers; from tick 3 each task computes
/// 1 ms and sleeps 4 ms, but the blocked/run-queue split (a 250 ms span) still reads the CPU
/// phase's run-queue wait for a tick. `hog` instead: the same CPU drop from an outside CPU hog
/// arriving (the split then stays "run-queue wait", rightly).
fn cpu_then_blocking(tick: u32, threads: usize, hog: bool) -> Snapshot {
    let busy = threads.min(64);
    let n = busy as f64;
    let (completed, blocked, cpu, demand) = match tick {
        1 => (310, 0.1, 1.95, 3.9),
        2 => (203, 0.3, 1.29, 2.7),
        // The first tick of the new load: fresh CPU, stale split.
        3 => (63, 0.4, 0.42, 2.6),
        // The split caught up: blocked 4/5 of the busy time, a fifth on a CPU, up to the cores.
        _ if !hog => w3_caught_up(n),
        // The hog stays: our CPU-bound workers share the cores with it, none blocked.
        _ => (60, 0.1, 0.42, n - 0.1),
    };
    phase_change(busy, completed, blocked, cpu, demand)
}

/// W4's switch from 4 workers, with the states or without: the fall is taken on tick 3
/// (4 -> 16) and the caught-up split keeps 12-32 workers. Returns the table.
fn w4_switch_takes_the_fall(states: bool) -> String {
    let (table, end) = trace(&Config::default(), 4, 6, |tick, threads| {
        let snapshot = cpu_then_blocking(tick, threads, false);
        if states {
            with_states(snapshot, tick, false)
        } else {
            snapshot
        }
    });
    let third = table.lines().nth(3).unwrap();
    assert!(
        third.contains("  4 -> 16") && third.contains("cpu fell"),
        "{table}"
    );
    assert!((12..=32).contains(&end), "{end}\n{table}");
    table
}

#[test]
fn workers_cpu_that_fell_by_half_is_taken_as_blocked_at_once() {
    // The stale split held the pool at 3 threads for the first tick of the phase (then 3 -> 26
    // on the next): a fifth of the phase at a fifth of the speed, 0.79-0.80 of the best fixed
    // size. Our CPU fell from 1.29 to 0.42 cores with the same 3 workers busy: off-CPU time is
    // taken as blocked, x4 at once (4 -> 16 here), where the caught-up split finds the cores
    // full (1 ms of CPU per 5 ms: 16 workers want 3.2 cores).
    let table = w4_switch_takes_the_fall(false);
    // An outside hog arriving looks the same for one tick: one x4 step, then the split
    // (runnable, not blocked) trims back to the CPU cap on its second reading (the trim takes
    // the larger blocked share of two ticks), with no second step on the drop.
    let (hog, hog_end) = trace(&Config::default(), 4, 6, |tick, threads| {
        cpu_then_blocking(tick, threads, true)
    });
    assert_eq!(hog.matches("cpu fell").count(), 1, "{hog}");
    assert_eq!(hog_end, 2 * CORES, "{hog}");
    insta::assert_snapshot!(format!("{table}\nhog arriving:\n{hog}"));
}

#[test]
fn fresh_states_tell_an_outside_hog_from_workers_that_block() {
    // The same two worlds as above, with the states: the fall of W4's switch reads 3 of 4
    // workers asleep and is taken as before (4 -> 16); the hog's reads all 4 runnable, so it
    // is contention, not blocking: no step at all, where without the states it grew x4 for a
    // tick (and rule 6 trimmed back two ticks later).
    let table = w4_switch_takes_the_fall(true);
    let (hog, hog_end) = trace(&Config::default(), 4, 6, |tick, threads| {
        with_states(cpu_then_blocking(tick, threads, true), tick, true)
    });
    assert!(!hog.contains("cpu fell"), "{hog}");
    assert_eq!(peak(&hog), Some(2 * CORES), "{hog}");
    // The climber may probe below the cap, never below the cores.
    assert!(hog_end >= CORES, "{hog}");
    insta::assert_snapshot!(format!("{table}\nhog arriving:\n{hog}"));
}

/// W4's switch from CPU-bound tasks to W3's (1 ms of CPU, then 4 ms asleep) as traced
/// (`compare --only W4`): the queued CPU-bound tasks run the first ~50 ms of the tick, so the
/// tick that straddles the switch reads 1.95 -> 1.3 cores at 3 workers (tick 2, a full tick);
/// the controller looks again a quarter interval later (tick 3, 25 ms) and reads the new load
/// alone (0.5 cores); the split (a 250 ms span) still says run-queue wait for both.
fn cpu_then_blocking_mid_tick(tick: u32, threads: usize) -> Snapshot {
    let n = threads.min(64) as f64;
    let (completed, blocked, cpu, demand) = match tick {
        1 => (320, 0.1, 1.95, 2.9),
        2 => (190, 0.2, 1.3, 2.8),
        3 => (15, 0.3, 0.5, 2.7),
        _ => w3_caught_up(n),
    };
    phase_change(threads, completed, blocked, cpu, demand)
}

/// A trace whose tick `look_at` is the second look a quarter interval after the full tick
/// before it (the other ticks full), with a column saying whether the controller will look
/// again after each tick. Returns the table, the first tick that grew and the final count.
fn trace_with_a_second_look(
    start: usize,
    ticks: u32,
    look_at: u32,
    world: impl Fn(u32, usize) -> Snapshot,
) -> (String, Option<u32>, usize) {
    let config = Config::default();
    let mut state = ControllerState::new();
    let mut threads = start;
    let mut table = String::from("tick | elapsed | signals | from -> to | looks again | reason\n");
    let mut grew_at = None;
    for tick in 1..=ticks {
        let elapsed = if tick == look_at { TICK / 4 } else { TICK };
        let snapshot = Snapshot {
            threads,
            target: threads,
            elapsed,
            ..world(tick, threads)
        };
        let decision = decide(&snapshot, &mut state, &config);
        writeln!(
            table,
            "{tick:>4} | {:>5.0?} | {snapshot} | {threads:>3} -> {:<3} | {:<11} | {}",
            elapsed,
            decision.target,
            state.looks_again(),
            decision.reason
        )
        .unwrap();
        if decision.target > threads && grew_at.is_none() {
            grew_at = Some(tick);
        }
        threads = decision.target;
    }
    (table, grew_at, threads)
}

#[test]
fn a_cpu_dip_mid_tick_looks_again_a_quarter_interval_on() {
    // Before: the straddling tick held at 3 threads and the fall by half showed only on the next
    // full tick (3 -> 12 there): about 1.8 ticks at a third of the best rate, 0.86-0.91 of the
    // best fixed size. Now tick 2 (a dip by a quarter: 1.95 -> 1.3) asks for a second look; the
    // look (25 ms) reads the fall and grows with a full tick's weight, 75 ms sooner, to 4 × the
    // CPU cap (16 on 2 cores): 3 -> 16 (paced at ×4 from the 3 threads of the climber's probe
    // it was 3 -> 12, which then held with the cores full); the full ticks after it grow on the
    // caught-up split.
    let (table, grew_at, threads) = trace_with_a_second_look(3, 6, 3, cpu_then_blocking_mid_tick);
    assert_eq!(grew_at, Some(3), "{table}");
    assert!(table.lines().nth(2).unwrap().contains("| true "), "{table}");
    assert!(
        table.lines().nth(3).unwrap().contains("  3 -> 16"),
        "{table}"
    );
    assert_eq!(table.matches("| true ").count(), 1, "{table}");
    assert!((12..=32).contains(&threads), "{threads}\n{table}");
    insta::assert_snapshot!(table);
}

/// `cpu_then_blocking_mid_tick` (`hog` false) or an outside CPU hog arriving mid-tick beside
/// the same 3 CPU-bound workers with the same CPU figures (`hog` true), with the states read at
/// every tick, the second look (tick 3) included. The straddling tick (2) finds every worker
/// runnable either way (the queued CPU-bound tasks still run); from the look on, W3's tasks
/// read four in five asleep, the hog's neighbours all runnable.
fn mid_tick_with_states(tick: u32, threads: usize, hog: bool) -> Snapshot {
    let snapshot = if hog {
        let busy = threads.min(64);
        let (completed, cpu) = match tick {
            1 => (320, 1.95),
            2 => (190, 1.3),
            3 => (15, 0.5),
            _ => (60, 0.5),
        };
        phase_change(busy, completed, 0.1, cpu, busy as f64 - 0.1)
    } else {
        cpu_then_blocking_mid_tick(tick, threads)
    };
    with_states(snapshot, tick, hog)
}

#[test]
fn a_second_look_whose_states_find_the_workers_runnable_takes_no_fall() {
    // The straddling tick's states still read the CPU-bound tasks (all runnable), so they do
    // not stop the look; the look's own states decide. W3's tasks: 2 of 3 asleep, the fall
    // is taken there as before (3 -> 16, to 4 × the CPU cap). The hog: 3 of 3 runnable, no
    // fall, and no step past the CPU cap (without states the look grew 3 -> 12 beside the hog).
    let (table, grew_at, _) = trace_with_a_second_look(3, 6, 3, |tick, threads| {
        mid_tick_with_states(tick, threads, false)
    });
    assert_eq!(grew_at, Some(3), "{table}");
    assert!(table.lines().nth(2).unwrap().contains("| true "), "{table}");
    assert!(
        table.lines().nth(3).unwrap().contains("  3 -> 16"),
        "{table}"
    );
    let (hog, _, threads) = trace_with_a_second_look(3, 6, 3, |tick, threads| {
        mid_tick_with_states(tick, threads, true)
    });
    assert!(hog.lines().nth(2).unwrap().contains("| true "), "{hog}");
    assert!(!hog.contains("cpu fell"), "{hog}");
    assert!(peak(&hog) <= Some(2 * CORES), "{hog}");
    assert!((CORES..=2 * CORES).contains(&threads), "{threads}\n{hog}");
    insta::assert_snapshot!(format!("{table}\nhog arriving:\n{hog}"));
}

/// How W4's switch to W3's tasks met the ticks, as traced at 4 and 5 workers
/// (`ADAPTIVE_DEBUG`-style per-tick dumps of `compare --only "adaptive W4"`, 2026-12-04).
#[derive(Clone, Copy)]
enum Switch {
    /// The queued CPU-bound tasks ran nearly to the straddling tick's end: it reads 1.88 cores
    /// at 4 workers with `asleep` of them already asleep; the look 25 ms on reads 0.8 cores.
    Late { asleep: usize },
    /// At 5 workers the straddling tick reads 1.34 cores with 4 of 5 asleep, and the new load
    /// alone 1.03 (W3's tasks on 5 workers use a core).
    Mid,
}

/// The switch's ticks with the states read at each: the CPU phase (tick 1, all runnable),
/// the straddling tick (2), then W3's tasks (four in five asleep). `hog`: the same CPU figures
/// from an outside hog arriving, every worker runnable.
fn switch_seen_by_the_states(tick: u32, threads: usize, switch: Switch, hog: bool) -> Snapshot {
    let busy = threads.min(64);
    let n = busy as f64;
    let (completed, blocked, cpu, asleep) = match (tick, switch) {
        (1, Switch::Late { .. }) => (185, 0.03, 1.95, 0),
        // Held at 5 by rule 6: a tenth of the busy time blocked, the CPU cap scaled by it.
        (1, Switch::Mid) => (202, 0.52, 1.96, 0),
        (2, Switch::Late { asleep }) => (182, 0.09, 1.88, asleep),
        (2, Switch::Mid) => (129, 1.37, 1.34, busy - 1),
        (_, Switch::Late { .. }) if hog => (100, 0.1, 0.8, 0),
        (_, Switch::Mid) if hog => (100, 0.1, 1.03, 0),
        (3, Switch::Late { .. }) => (20, 0.1, 0.8, busy - 1),
        (3, Switch::Mid) => (14, 1.48, 1.03, busy),
        _ => {
            let (completed, blocked, cpu, _) = w3_caught_up(n);
            (completed, blocked, cpu, busy.min(8) * 4 / 5)
        }
    };
    let read = busy.min(8) as u32;
    let asleep = if hog { 0 } else { (asleep as u32).min(read) };
    Snapshot {
        process_cpu: Some(cpu),
        states: Some(WorkerStates {
            runnable: read - asleep,
            blocked: asleep,
        }),
        ..phase_change(busy, completed, blocked, cpu, n - blocked)
    }
}

#[test]
fn states_that_find_the_workers_asleep_see_the_fall_sooner() {
    // Late switch, 4 workers: the straddling tick's CPU has hardly fallen (1.88), but its
    // states read 4 of 4 asleep, or 2 of 4: it asks for the look (half asleep is enough for a
    // look: CPU-bound workers never read asleep), and the look takes the fall (4 -> 16) 75 ms
    // before the next full tick would have. Before, no look: the pool ran the first 100-140 ms
    // of W3's tasks at 4 threads (or 3, the climber probing down meanwhile).
    let mut tables = String::new();
    for asleep in [4, 2] {
        let (late, grew_at, threads) = trace_with_a_second_look(4, 6, 3, |tick, threads| {
            switch_seen_by_the_states(tick, threads, Switch::Late { asleep }, false)
        });
        assert!(late.lines().nth(2).unwrap().contains("| true "), "{late}");
        assert_eq!(grew_at, Some(3), "{late}");
        let look = late.lines().nth(3).unwrap();
        assert!(
            look.contains("  4 -> 16") && look.contains("cpu fell"),
            "{late}"
        );
        assert!((12..=32).contains(&threads), "{threads}\n{late}");
        writeln!(tables, "late switch, 4 workers, {asleep} asleep:\n{late}").unwrap();
    }
    // 5 workers: the straddling tick's CPU fell by a third (1.96 -> 1.34), not by half, with 4
    // of 5 asleep: the fall is taken there (5 -> 14, the room the blocking ratio gives: the
    // CPU cap × 5 busy / 1.34 cores). Before, the look read 1.03 cores (not under half the
    // cores) and held; the split caught up a full tick later.
    let (five, grew_at, _) = trace_with_a_second_look(5, 6, 3, |tick, threads| {
        switch_seen_by_the_states(tick, threads, Switch::Mid, false)
    });
    assert_eq!(grew_at, Some(2), "{five}");
    let fall = five.lines().nth(2).unwrap();
    assert!(
        fall.contains("  5 -> 14") && fall.contains("cpu fell"),
        "{five}"
    );
    writeln!(tables, "switch, 5 workers:\n{five}").unwrap();
    // The same CPU figures from an outside hog, every worker runnable: no look on the states,
    // no fall by a quarter, never past the size the CPU phase kept.
    for (switch, start) in [(Switch::Late { asleep: 4 }, 4), (Switch::Mid, 5)] {
        let (hog, _, threads) = trace_with_a_second_look(start, 6, 3, |tick, threads| {
            switch_seen_by_the_states(tick, threads, switch, true)
        });
        assert!(!hog.contains("cpu fell"), "{hog}");
        // (The mid switch's dip by a third asks for the look on the CPU alone, as before.)
        if matches!(switch, Switch::Late { .. }) {
            assert!(!hog.lines().nth(2).unwrap().contains("| true "), "{hog}");
        }
        assert!(peak(&hog) <= Some(start), "{hog}");
        assert!((CORES..=start).contains(&threads), "{threads}\n{hog}");
    }
    insta::assert_snapshot!(tables);
}

/// W4's CPU-bound phase at the CPU cap (4 workers on 2 cores) for the climber's whole first
/// window, then the switch to W3's tasks reaching the workers mid-tick: tick 5 straddles it
/// (1.4 cores by the clocks, 1.45 by the process), the second look at tick 6 (25 ms) reads
/// the new load alone, and from tick 7 the split has caught up (a fifth of the busy time on
/// a CPU, the rest blocked).
fn switch_as_the_climbers_window_ends(tick: u32, threads: usize) -> Snapshot {
    let busy = threads.min(64);
    let n = busy as f64;
    let (completed, blocked, cpu, demand, process) = match tick {
        1..=4 => (199, 0.05, 1.99, 3.9, 1.99),
        5 => (150, 0.1, 1.4, 3.5, 1.45),
        6 => (20, 0.2, 0.6, 2.5, 0.62),
        _ => {
            let (completed, blocked, cpu, demand) = w3_caught_up(n);
            (completed, blocked, cpu, demand, cpu)
        }
    };
    Snapshot {
        process_cpu: Some(process),
        ..phase_change(busy, completed, blocked, cpu, demand)
    }
}

#[test]
fn a_tick_that_looks_again_holds_the_climbers_step() {
    // Measured (`compare --only "adaptive W4"`, 7 of 19 runs): the climber's first window at the
    // CPU phase's 4 workers ended on the tick that straddled the switch and probed 4 -> 3; the
    // second look found the fall and grew 3 -> 12, and the phase ran at 12 threads until the
    // climber's next step. Now the straddling tick holds and starts the window again: the fall
    // grows from the 4 workers the CPU phase kept. (The phase's ratio did not move
    // measurably: 0.88-0.94 in those runs, 0.86-0.95 over all 19.)
    let (table, grew_at, _) = trace_with_a_second_look(4, 8, 6, switch_as_the_climbers_window_ends);
    let straddling = table.lines().nth(5).unwrap();
    assert!(
        straddling.contains("  4 -> 4 ") && straddling.contains("| true "),
        "{table}"
    );
    assert_eq!(grew_at, Some(6), "{table}");
    let look = table.lines().nth(6).unwrap();
    assert!(
        look.contains("  4 -> 16") && look.contains("cpu fell"),
        "{table}"
    );
    assert!(!table.contains("climb"), "{table}");
    insta::assert_snapshot!(table);
}
