//! The stale blocked split and the process's CPU: a rise that holds growth, heavier tasks, the
//! workers' CPU bounded by the process's, light sleepers by the process's figure, a fall of the
//! process's CPU standing for the split, one low reading, stale clocks after a trim.

use std::time::Duration;

use policy_adaptive::{decide, Config, ControllerState, Snapshot};

use crate::{base, lots_of_memory, phase_change, timed_trace, trace, CORES, TICK};

/// W4's switch from tasks that sleep 5 ms to CPU-bound ones on a busy host, as measured
/// (`compare --only W4`, load 5-10, 88 threads from the sleep phase): the workers' CPU (a few
/// clocks in turn) and the blocked split (250 ms) still read the sleep phase for several
/// ticks. `process`: the process's CPU over each tick (fresh), or `None` as before the field.
fn sleep_then_cpu(tick: u32, threads: usize, process: bool) -> Snapshot {
    let busy = threads.min(64);
    let (running, queued, completed, blocked, cpu, demand, proc_cpu) = match tick {
        1 => (64, 0, 1235, 45.0, 0.9, 23.4, 0.35),
        // The switch mid-tick.
        2 => (64, 0, 578, 51.2, 0.9, 20.7, 1.1),
        3 => (74, 25, 210, 51.8, 1.0, 25.3, 1.95),
        4 => (63, 21, 180, 43.7, 1.4, 32.8, 1.95),
        5 => (46, 32, 206, 26.3, 1.4, 47.8, 1.95),
        // The split nearly caught up, the workers' clocks not (as measured: 6.8 of 39).
        6 => (busy.min(39), 64 - busy.min(39), 207, 6.8, 0.8, 42.9, 1.95),
        // Caught up: spinners waiting for the cores, hardly any blocked.
        _ => (busy, 64 - busy, 200, 0.3, 1.4, busy as f64 - 0.3, 1.95),
    };
    Snapshot {
        queued: queued as u64,
        running: running as u64,
        completed,
        blocked: Some(blocked),
        worker_cpu: Some(cpu),
        worker_demand: Some(demand),
        memory: lots_of_memory(),
        host_cpu: Some(if tick < 3 { 0.1 } else { 0.66 }),
        process_cpu: process.then_some(proc_cpu),
        ..base()
    }
}

#[test]
fn a_process_cpu_rise_holds_growth_on_the_stale_split_and_trims_to_the_cap() {
    // Before: 88 -> 113 on the sleep phase's blocked share, then trims to the blocking ratio
    // of the stale workers' CPU. Now: the process's CPU rose from 0.35 to 1.95 cores, so the
    // split is the old load's for its span (250 ms): no growth on it; once it nearly caught
    // up, the trim takes the process's CPU (1.95) for the workers' (0.8 from old clocks), and
    // the larger blocked share of this tick and the last (26.3 of 46 busy, so 22.3 of this
    // tick's 39): 4 × (1.95 + 22.3) / 1.95 = 49 threads, not 4 × (0.8 + 22.3) / 0.8 = 115 (past
    // `max`), then 21 on the next share (6.8 of 39), then the cap.
    let mut config = Config::default();
    config.max = 128;
    let (old, _) = trace(&config, 88, 8, |tick, threads| {
        sleep_then_cpu(tick, threads, false)
    });
    assert!(old.contains("88 -> 99"), "{old}");
    let peak = std::cell::Cell::new(0);
    let (table, end) = trace(&config, 88, 8, |tick, threads| {
        peak.set(peak.get().max(threads));
        sleep_then_cpu(tick, threads, true)
    });
    assert_eq!(peak.get(), 88, "grew on the stale split:\n{table}");
    assert!(table.contains(" 88 -> 49 "), "{table}");
    assert!(table.contains(" 49 -> 21 "), "{table}");
    assert!(old.contains(" 99 -> 35 "), "{old}");
    assert!(table.contains("rose 0.35 -> 1.95"), "{table}");
    assert_eq!(end, 2 * CORES, "{table}");
    insta::assert_snapshot!(format!("{table}\nwithout the process's CPU:\n{old}"));
}

/// W4's switch from sleepers to spinners at 87 threads, as measured (per-tick dump of
/// `compare --only "adaptive W4"`, 2 cores): two sleep-phase ticks (67-74 µs of the process's
/// CPU per task), the tick that straddles the switch (459 completions at 1.67 cores, the split
/// still 53.1 of 77 blocked, 34 queued), two with the split catching up, then spinners. With
/// `heavier: false`, the straddling tick's completions keep the sleepers' CPU per task: the
/// same rise of the process's CPU from a pool of sleepers growing on them.
fn sleepers_turn_into_spinners(tick: u32, threads: usize, heavier: bool) -> Snapshot {
    let busy = threads.min(64);
    let (running, queued, completed, blocked, cpu, demand, process) = match tick {
        1 => (64, 0, 1216, 55.9, 0.50, 9.2, 0.90),
        2 => (62, 0, 1168, 52.4, 0.53, 11.1, 0.79),
        3 if heavier => (77, 34, 459, 53.1, 0.51, 21.8, 1.67),
        3 => (77, 34, 2490, 53.1, 0.51, 21.8, 1.67),
        4 => (56, 53, 213, 28.3, 0.63, 39.0, 1.95),
        5 => (busy.min(104), 3, 190, 28.8, 1.08, 77.4, 2.0),
        _ => (busy, 64 - busy, 200, 0.3, 1.4, busy as f64 - 0.3, 1.95),
    };
    Snapshot {
        queued: queued as u64,
        running: running.min(threads) as u64,
        completed,
        blocked: Some(blocked),
        worker_cpu: Some(cpu),
        worker_demand: Some(demand),
        memory: lots_of_memory(),
        host_cpu: Some(if tick < 5 { 0.17 } else { 0.54 }),
        process_cpu: Some(process),
        ..base()
    }
}

#[test]
fn heavier_tasks_hold_growth_on_the_stale_split() {
    // Before: the straddling tick grew 87 -> 111 on the sleep phase's split (the process's
    // 1.67 cores is not the cores, so the rise to them did not hold it), and rule 6 trimmed
    // back 300 ms later. Now the process's CPU per task rose x5 (74 -> 375 µs) with the
    // process up 0.88 cores: the tasks got heavier, the split is the last load's for its span
    // (this tick and the next two), then the trim on the caught-up split.
    let mut config = Config::default();
    config.max = 128;
    let peak_threads = std::cell::Cell::new(0);
    let (heavier, end) = trace(&config, 87, 8, |tick, threads| {
        peak_threads.set(peak_threads.get().max(threads));
        sleepers_turn_into_spinners(tick, threads, true)
    });
    let line = |table: &str, n: usize| table.lines().nth(n).unwrap().to_owned();
    assert!(line(&heavier, 3).contains(" 87 -> 87 "), "{heavier}");
    assert!(line(&heavier, 3).contains("rose 0.79 -> 1.67"), "{heavier}");
    assert_eq!(
        peak_threads.get(),
        87,
        "grew on the stale split:\n{heavier}"
    );
    assert_eq!(end, 2 * CORES, "{heavier}");
    // The same rise from sleepers growing on the same tasks (their CPU per task held): the
    // split is theirs, and the backlog grows the pool at once, as before.
    let (steady, _) = trace(&config, 87, 3, |tick, threads| {
        sleepers_turn_into_spinners(tick, threads, false)
    });
    assert!(line(&steady, 3).contains(" 87 -> 111 "), "{steady}");
    insta::assert_snapshot!(format!(
        "{heavier}\nthe same rise, the CPU per task held:\n{steady}"
    ));
}

#[test]
fn the_workers_cpu_is_never_above_the_processs() {
    // W4's sleep phase after its CPU-and-sleep one, as measured: 22 workers, 11.4 blocked, the
    // workers' clocks (read in turn, each since its last reading) still at 1.9 cores: the
    // cores looked full and the tick held. The process used 0.3 cores over the tick: the
    // workers used no more, so the cores are not full. Over 326 completions that is 92 µs of
    // CPU per task (light: sleepers) and they grow to the backlog at once (22 -> 23 on the
    // first look, as any backlog no look read before, then 23 -> 64); over 30 (1 ms per task,
    // W3's) they are not light and grow to their blocking ratio on their own clocks
    // (4 × (1.9 + 11.4) / 1.9 = 28: a process starved by a crowded host is not taken for light
    // workers, see decide's unit tests).
    let world = |process_cpu, completed| {
        move |_, threads: usize| Snapshot {
            queued: 64 - threads as u64,
            running: threads as u64,
            completed,
            // 11.4 of 22: the same share at any size.
            blocked: Some(threads as f64 * 11.4 / 22.0),
            worker_cpu: Some(1.9),
            worker_demand: Some(10.6),
            memory: lots_of_memory(),
            host_cpu: Some(1.0),
            process_cpu,
            ..base()
        }
    };
    let config = Config::default();
    let (clocks, _) = trace(&config, 22, 1, world(None, 326));
    let (light, light_end) = trace(&config, 22, 2, world(Some(0.3), 326));
    let (heavy, _) = trace(&config, 22, 1, world(Some(0.3), 30));
    assert!(clocks.contains("22 -> 22 "), "{clocks}");
    assert!(
        light.contains("22 -> 23 ") && light.contains("23 -> 64 "),
        "{light}"
    );
    assert_eq!(light_end, 64, "{light}");
    assert!(heavy.contains("22 -> 28 "), "{heavy}");
    insta::assert_snapshot!(format!(
        "the clocks alone:\n{clocks}\nthe process at 0.3 cores, 326 done:\n{light}\n\
         30 done:\n{heavy}"
    ));
}

#[test]
fn starved_cpu_and_sleep_work_does_not_burst_as_light() {
    // W3 (1 ms of CPU, then 4 ms asleep) on a host crowded by other processes, as measured:
    // 7 workers get 0.15 cores, 3.6 of them read blocked, 15 tasks done a tick. Under a tenth
    // of the cores and half blocked, they passed for light sleepers and burst 7 -> 64 (then
    // were trimmed 64 -> 18 -> 11). A millisecond of CPU per task is not light: they grow by
    // the paced share (x2 on a busy host) toward their blocking ratio.
    let (table, end) = trace(&Config::default(), 7, 3, |_, threads| {
        let busy = threads.min(64);
        let n = busy as f64;
        Snapshot {
            queued: (64 - busy) as u64,
            running: busy as u64,
            completed: 15,
            blocked: Some(n * 0.52),
            worker_cpu: Some(0.15),
            worker_demand: Some(n * 0.46),
            memory: lots_of_memory(),
            host_cpu: Some(1.0),
            process_cpu: Some(0.2),
            ..base()
        }
    });
    assert!(!table.contains("-> 64"), "{table}");
    assert!(end < 64, "{end}\n{table}");
    insta::assert_snapshot!(table);
}

#[test]
fn a_fresh_process_cpu_makes_stale_clocked_sleepers_light() {
    // W4's switch from CPU-and-sleep tasks (1 ms of CPU, 4 ms asleep) to sleepers (5 ms), as
    // measured. The workers' clocks, read a few a tick in turn, still read the last phase's
    // CPU (0.3-1.5 cores); the process's CPU, fresh every tick, has fallen. Tick 1 (full) still
    // ran the last phase's queued tasks: 0.39 cores over 280 completions is 139 µs a task, not
    // light, and the pool grows by the blocked share (15 -> 25). Tick 2, an early look 1 ms
    // later, spans too little to judge. Tick 3, an early look over 10 ms: 0.12 cores over 45
    // completions (27 µs a task), 14.7 of 25 blocked: light, to the backlog at once (25 -> 64).
    // Before, it held for the next full tick (100 ms later); at 16 workers the full tick grew
    // by the count at the host guard's x2 (16 -> 32), the next early tick to 64, 177 ms into
    // the phase (0.87 of the best fixed size).
    let world = |tick: u32, threads: usize| {
        let busy = threads.min(64);
        let queued = (64 - busy) as u64;
        let (completed, blocked, cpu, process) = match tick {
            1 => (280, 8.04, 1.48, 0.39),
            2 => (2, 14.6, 1.12, 1.25),
            _ => (45, 14.69, 0.31, 0.12),
        };
        Snapshot {
            queued,
            running: busy as u64,
            completed,
            blocked: Some(blocked),
            worker_cpu: Some(cpu),
            worker_demand: Some(busy as f64 - blocked),
            memory: lots_of_memory(),
            host_cpu: Some(1.0),
            process_cpu: Some(process),
            ..Snapshot { threads, ..base() }
        }
    };
    let config = Config::default();
    let when = |tick| match tick {
        1 => TICK,
        2 => Duration::from_millis(1),
        _ => Duration::from_millis(10),
    };
    let (table, end) = timed_trace(&config, 15, 3, when, world);
    assert_eq!(end, 64, "{table}");
    assert!(table.contains(" 15 -> 25 "), "{table}");
    assert!(table.contains(" 25 -> 25 "), "{table}");
    // Starved CPU-and-sleep work beside it: 0.15 cores over 10 completions (150 µs a task: 1 ms
    // each, some spent in the window before) on the same 10 ms look is not light, and an early
    // look grows only workers nearly all blocked: it holds.
    let starved = Snapshot {
        elapsed: Duration::from_millis(10),
        completed: 10,
        process_cpu: Some(0.15),
        target: 25,
        ..world(3, 25)
    };
    let d = decide(&starved, &mut ControllerState::new(), &config);
    let starved = format!("{starved} | 25 -> {} {}", d.target, d.reason);
    assert!(starved.contains("25 -> 25"), "{starved}");
    insta::assert_snapshot!(format!("{table}\nstarved:\n{starved}"));
}

/// `phase_change`'s tick at `threads` workers, all busy, with one measured sample's
/// `(completed, blocked, workers' CPU, their demand, the process's CPU)` beside a host at
/// `host` of its CPUs.
fn closed_loop_of_64(threads: usize, host: f64, figures: (u64, f64, f64, f64, f64)) -> Snapshot {
    let (completed, blocked, cpu, demand, process) = figures;
    Snapshot {
        threads,
        host_cpu: Some(host),
        process_cpu: Some(process),
        ..phase_change(threads.min(64), completed, blocked, cpu, demand)
    }
}

#[test]
fn a_process_cpu_fall_stands_for_a_stale_split_on_an_early_look() {
    // W4's switch from CPU-and-sleep tasks to sleepers at 20 workers, as measured (2026-12-02,
    // the controller's snapshots printed around the switch). Ticks 1 and 2 (full) still run
    // the CPU-and-sleep phase: the process at 2.0 and 1.73 cores, 7.3 and 8.5 of 20 blocked,
    // and the pool holds. Tick 3, an early look 10 ms into the sleep phase: the process at 0.12
    // cores over 40 completions (30 µs a task), but the split, spanning 250 ms, still reads 8.6
    // of 20 blocked, under half. The process's fall by half from the cores stands for it: light,
    // to the backlog at once (20 -> 64). Before, it held for the next full tick, 100 ms later.
    let world = |tick: u32, threads: usize| {
        let figures = match tick {
            1 => (184, 7.3, 2.08, 12.7, 2.0),
            2 => (213, 8.5, 1.97, 11.49, 1.73),
            _ => (40, 8.6, 1.82, 11.41, 0.12),
        };
        closed_loop_of_64(threads, 0.94, figures)
    };
    let config = Config::default();
    let when = |tick| match tick {
        1 | 2 => TICK,
        _ => Duration::from_millis(10),
    };
    let (table, end) = timed_trace(&config, 20, 3, when, world);
    assert_eq!(end, 64, "{table}");
    assert_eq!(table.matches(" 20 -> 20 ").count(), 2, "{table}");
    // The same look in a process that was never busy (a quarter of a core on the full ticks
    // before, say a host crowded all along): no fall, the split under half, and it holds.
    let mut state = ControllerState::new();
    for tick in 1..=2 {
        let quiet_before = Snapshot {
            process_cpu: Some(0.25),
            target: 20,
            ..world(tick, 20)
        };
        decide(&quiet_before, &mut state, &config);
    }
    let look = Snapshot {
        elapsed: Duration::from_millis(10),
        target: 20,
        ..world(3, 20)
    };
    let d = decide(&look, &mut state, &config);
    let never_busy = format!("{look} | 20 -> {} {}", d.target, d.reason);
    assert!(never_busy.contains("20 -> 20"), "{never_busy}");
    insta::assert_snapshot!(format!("{table}\nnever busy before:\n{never_busy}"));
}

#[test]
fn a_process_cpu_fall_holds_the_cpu_bound_trim_for_its_span() {
    // The same switch at 12 workers, as measured in another run: ticks 1 and 2 run the
    // CPU-and-sleep phase (the process at the cores, 4.3 of 12 blocked: rule 6's size is 12, no
    // trim). Tick 3, the first full tick of the sleep phase: the process at 0.28 cores, but at
    // 120 µs a completed task (the last phase's queued tasks ran in it) not light, and the
    // split, still the last phase's, reads 1.4 blocked and 10.6 cores wanted: rule 6 trimmed
    // 12 -> 9 on it. The process's fall holds that trim. Tick 4: the process at 0.08 cores over
    // 176 completions, light, to the backlog (12 -> 64).
    let world = |tick: u32, threads: usize| {
        let figures = match tick {
            1 | 2 => (232, 4.3, 1.99, 11.0, 2.0),
            3 => (232, 1.4, 1.03, 10.6, 0.28),
            _ => (176, 3.4, 0.43, 5.6, 0.08),
        };
        closed_loop_of_64(threads, 0.96, figures)
    };
    let (table, end) = trace(&Config::default(), 12, 4, world);
    assert_eq!(end, 64, "{table}");
    assert!(!table.contains("-> 9 "), "{table}");
    assert_eq!(table.matches(" 12 -> 12 ").count(), 3, "{table}");
    insta::assert_snapshot!(table);
}

#[test]
fn a_starved_pool_grown_on_a_fall_is_trimmed_back_a_tick_later() {
    // What a fall of the process's CPU cannot tell from a phase change: tiny CPU-bound tasks
    // (20 µs each) at the CPU cap, then an outside load that takes the cores from tick 3 on.
    // Tick 3: rule 4's presumed split grows on the fall (4 -> 16, at most 4 x the cap), as
    // before. Tick 4: the fall is still in the last two full ticks, so rule 6 does not trim on
    // the split (before this hold, it trimmed here). Tick 5: rule 6 trims to the blocking
    // ratio on the process's figure (6), and the pool holds there: the hold costs a starved
    // pool one tick at 16 threads.
    let world = |tick: u32, threads: usize| {
        let process = if tick >= 3 { 0.2 } else { 2.0 };
        // 20 µs of CPU a task, whatever share of the cores the process gets; every busy
        // worker wants a core.
        let completed = (process * 0.1 / 20e-6) as u64;
        let demand = threads.min(64) as f64;
        closed_loop_of_64(threads, 1.0, (completed, 0.1, process, demand, process))
    };
    let (table, end) = trace(&Config::default(), 4, 8, world);
    assert!(table.contains("   4 -> 16 "), "{table}");
    assert!(table.contains("  16 -> 16 "), "{table}");
    assert!(table.contains("  16 -> 6 "), "{table}");
    assert_eq!(end, 6, "{table}");
    insta::assert_snapshot!(table);
}

/// W3 (1 ms of CPU, then 4 ms asleep) at 16 workers on 2 cores, its best fixed size, as
/// measured (`compare --only "adaptive W4"`, phase 3): the blocked count read 8.0, 6.1, then
/// 4.0 over three ticks of the same load, the workers' CPU 1.9-2.0 cores all along; after the
/// climber's step up to 20, one more low reading (5.0 of 20, tick 6: another run trimmed
/// 20 -> 8 on such a reading). `then_cpu_bound`: from tick 3 the load is CPU-bound instead
/// (next to none blocked).
fn w3_at_its_best_size(tick: u32, threads: usize, then_cpu_bound: bool) -> Snapshot {
    let busy = threads.min(64);
    let n = busy as f64;
    let blocked: f64 = match tick {
        1 => 8.0,
        2 => 6.1,
        _ if then_cpu_bound => 0.3,
        3 => 4.0,
        6 => 5.0,
        _ => 7.9,
    };
    let cpu = 2.0_f64.min(n);
    Snapshot {
        queued: 64 - busy as u64,
        running: busy as u64,
        completed: 195,
        blocked: Some(blocked.min(n)),
        worker_cpu: Some(cpu),
        worker_demand: Some((n - blocked).max(cpu)),
        memory: lots_of_memory(),
        host_cpu: Some(0.94),
        process_cpu: Some(1.99),
        ..base()
    }
}

#[test]
fn one_low_blocked_reading_does_not_trim_work_that_blocks() {
    // Tick 3's 4.0 of 16 blocked makes the work look CPU-bound (a quarter blocked), and its
    // blocking ratio alone trimmed 16 -> 11 (4 × (2.03 + 4.0) / 2.03, rounded down; another
    // run trimmed 16 -> 8 so and read 0.83 of the best fixed size over the phase). The trim
    // takes the larger blocked share of this tick and the last (6.1 of 16):
    // 4 × (2.0 + 6.1) / 2.0 = 16, no trim, and the next reading (7.9) is the load's again.
    // Tick 6's 5.0 of 20, after the climber's step from 16, is weighed against 7.9 of 16 as a
    // share (9.9 of 20): no trim.
    let (table, end) = trace(&Config::default(), 16, 7, |tick, threads| {
        w3_at_its_best_size(tick, threads, false)
    });
    assert!(end >= 16, "{table}");
    assert!(!table.contains("cpu-bound"), "{table}");
    // A load that turned CPU-bound (0.3 blocked from tick 3 on) still trims to the CPU cap,
    // a tick later: first to the ratio of the larger count (no trim at 6.1), then to 4.
    let (cpu_bound, cpu_end) = trace(&Config::default(), 16, 5, |tick, threads| {
        w3_at_its_best_size(tick, threads, true)
    });
    assert_eq!(cpu_end, 2 * CORES, "{cpu_bound}");
    let trimmed_at = cpu_bound
        .lines()
        .position(|line| line.contains("cpu-bound"))
        .expect("trimmed");
    assert_eq!(trimmed_at, 4, "the first trim is tick 4's:\n{cpu_bound}");
    insta::assert_snapshot!(format!("{table}\nturned cpu-bound:\n{cpu_bound}"));
}

/// W4's CPU phase (1 ms CPU-bound tasks, 64 in flight) as measured: tick 1 at 12 workers
/// whose clocks, read a few a tick in turn, still span the 18 that shared the cores (0.42
/// cores) while the process used 1.98; the trim to 4 leaves the survivors' clocks with marks
/// from then, so tick 2 reads 0.45 cores at 4 workers. The process's CPU, fresh every tick:
/// unchanged at 1.96. `fell`: the load really changed at tick 2 (W3's tasks: the process read
/// 0.86 cores too).
fn trimmed_cpu_phase(tick: u32, threads: usize, fell: bool) -> Snapshot {
    let busy = threads.min(64);
    let (cpu, blocked, proc_cpu) = match tick {
        1 => (0.42, 0.0, 1.98),
        2 if fell => (0.81, 1.0, 0.86),
        2 => (0.45, 0.0, 1.96),
        // W3 caught up by the split: half the busy workers blocked, the cores full.
        _ if fell => (1.96, busy as f64 * 0.5, 1.98),
        _ => (1.96, 0.0, 1.96),
    };
    Snapshot {
        queued: 64 - busy as u64,
        running: busy as u64,
        completed: 200,
        blocked: Some(blocked),
        worker_cpu: Some(cpu),
        worker_demand: Some(busy as f64 - blocked),
        memory: lots_of_memory(),
        host_cpu: Some(0.34),
        process_cpu: Some(proc_cpu),
        ..base()
    }
}

#[test]
fn stale_clocks_after_a_trim_are_no_fall_while_the_process_keeps_the_cores() {
    // Taken as a fall (the workers' 0.45 cores against the 1.98 recorded), it grew 4 -> 16,
    // and the next tick trimmed back to 4. The process's CPU, fresh every tick, held at 1.96:
    // the load did not change, so there is no fall to presume blocked time from.
    let (table, end) = trace(&Config::default(), 12, 4, |tick, threads| {
        trimmed_cpu_phase(tick, threads, false)
    });
    assert!(!table.contains("cpu fell"), "{table}");
    assert_eq!(end, 2 * CORES, "{table}");
    // A real fall (W3's tasks: the process fell to 0.86 cores with the clocks) still grows
    // at once.
    let (fell, _) = trace(&Config::default(), 12, 4, |tick, threads| {
        trimmed_cpu_phase(tick, threads, true)
    });
    let second = fell.lines().nth(2).unwrap();
    assert!(
        second.contains("cpu fell") && second.contains("4 -> 16"),
        "{fell}"
    );
    insta::assert_snapshot!(format!("{table}\nthe load fell:\n{fell}"));
}
