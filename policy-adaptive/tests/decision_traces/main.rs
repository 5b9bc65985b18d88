//! Decision traces: scripted signal sequences fed through `decide`, one table line per tick,
//! pinned with insta. Each scenario feeds the decision back (the next snapshot's `target` and
//! `threads` are the last decision), as the controller does.
//! `rules` holds the basic rules' traces, `early` the early decisions', `cpu_cap` those of the CPU
//! cap beside other processes, `falls` the falls of the workers' CPU and second looks, and
//! `stale_split` the stale blocked split and the process's CPU; the shared worlds are here.

mod cpu_cap;
mod early;
mod falls;
mod rules;
mod stale_split;

use std::fmt::Write as _;
use std::time::Duration;

use policy_adaptive::{
    decide, grows_on_demand, Config, ControllerState, Decision, Memory, Snapshot,
};

const TICK: Duration = Duration::from_millis(100);
const CORES: usize = 2;

/// Runs `ticks` ticks starting at `start` threads; `world(tick, threads)` gives the signals a pool
/// of that size would show. Returns the table and the final thread count.
fn trace(
    config: &Config,
    start: usize,
    ticks: u32,
    world: impl FnMut(u32, usize) -> Snapshot,
) -> (String, usize) {
    run_trace(
        config,
        start,
        ticks,
        "tick | signals | from -> to | reason",
        world,
        |tick, snapshot, from, decision| {
            format!(
                "{tick:>4} | {snapshot} | {from:>3} -> {:<3} | {}",
                decision.target, decision.reason
            )
        },
    )
}

/// The loop of every trace: each tick's snapshot is `world`'s with the last decision fed back
/// (`threads` and `target`), and `line(tick, snapshot, from, decision)` is its table line under
/// `header`. Returns the table and the final thread count.
fn run_trace(
    config: &Config,
    start: usize,
    ticks: u32,
    header: &str,
    mut world: impl FnMut(u32, usize) -> Snapshot,
    mut line: impl FnMut(u32, &Snapshot, usize, &Decision) -> String,
) -> (String, usize) {
    let mut state = ControllerState::new();
    let mut threads = start;
    let mut table = format!("{header}\n");
    for tick in 1..=ticks {
        let snapshot = Snapshot {
            threads,
            target: threads,
            ..world(tick, threads)
        };
        let decision = decide(&snapshot, &mut state, config);
        writeln!(
            table,
            "{}",
            line(tick, &snapshot, threads, &decision).trim_end()
        )
        .unwrap();
        threads = decision.target;
    }
    (table, threads)
}

fn base() -> Snapshot {
    Snapshot::new(TICK, CORES)
}

fn lots_of_memory() -> Option<Memory> {
    Some(Memory {
        available: 6 << 30,
        limit: 8 << 30,
    })
}

/// Closed loop of `clients` outstanding tasks that sleep 5 ms (I/O): each busy worker finishes 20
/// per tick, is blocked all the time, and uses almost no CPU.
fn io_world(clients: usize) -> impl FnMut(u32, usize) -> Snapshot {
    move |_, threads| {
        let busy = threads.min(clients);
        Snapshot {
            queued: (clients - busy) as u64,
            running: busy as u64,
            completed: busy as u64 * 20,
            blocked: Some(busy as f64 * 0.98),
            worker_cpu: Some(busy as f64 * 0.01),
            worker_demand: Some(busy as f64 * 0.012),
            memory: lots_of_memory(),
            host_cpu: Some((busy as f64 * 0.01 / CORES as f64).min(1.0)),
            ..base()
        }
    }
}

/// Closed loop of `clients` tasks of 1 ms CPU each on `cores` free cores: throughput is
/// capped by the cores, extra threads wait in the run queue (not blocked).
fn cpu_world(clients: usize, free_cores: f64, host: f64) -> impl FnMut(u32, usize) -> Snapshot {
    move |_, threads| {
        let busy = threads.min(clients);
        cpu_bound(clients, busy, (busy as f64).min(free_cores), Some(host))
    }
}

/// The signals of `clients` tasks of 1 ms CPU each, `busy` of them on workers that get `on_cpu`
/// cores in all (never blocked: the rest of their time is spent waiting for a core).
fn cpu_bound(clients: usize, busy: usize, on_cpu: f64, host_cpu: Option<f64>) -> Snapshot {
    Snapshot {
        queued: (clients - busy) as u64,
        running: busy as u64,
        completed: (on_cpu * 100.0) as u64,
        blocked: Some(0.0),
        worker_cpu: Some(on_cpu),
        worker_demand: Some(busy as f64),
        memory: lots_of_memory(),
        host_cpu,
        ..base()
    }
}

/// `cpu_bound`'s 64 clients on `threads` workers beside one outside busy process on the 2 cores:
/// the scheduler shares the cores by thread, so `n` busy workers get `2n / (n + 1)` of them.
fn beside_a_hog(threads: usize) -> Snapshot {
    let busy = threads.min(64);
    cpu_bound(64, busy, 2.0 * busy as f64 / (busy as f64 + 1.0), Some(1.0))
}

/// Like `trace`, with each tick's `elapsed` given by `when(tick)` (early decisions come a
/// fraction of an interval apart) and a column saying whether the controller stays armed for
/// early decisions after it (`grows_on_demand`).
fn timed_trace(
    config: &Config,
    start: usize,
    ticks: u32,
    when: impl Fn(u32) -> Duration,
    mut world: impl FnMut(u32, usize) -> Snapshot,
) -> (String, usize) {
    run_trace(
        config,
        start,
        ticks,
        "tick | elapsed | signals | from -> to | armed | reason",
        |tick, threads| Snapshot {
            elapsed: when(tick),
            ..world(tick, threads)
        },
        |tick, snapshot, from, decision| {
            let armed = grows_on_demand(
                &Snapshot {
                    target: decision.target,
                    ..*snapshot
                },
                config,
            );
            format!(
                "{tick:>4} | {:>5.0?} | {snapshot} | {from:>3} -> {:<3} | {:<5} | {}",
                snapshot.elapsed, decision.target, armed, decision.reason
            )
        },
    )
}

/// The largest "to" of a trace table: the most workers it asked for.
fn peak(table: &str) -> Option<usize> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| line.split(" -> ").nth(1))
        .filter_map(|to| to.split_whitespace().next()?.parse::<usize>().ok())
        .max()
}

/// A tick of a phase change (W4's traces): `busy` workers running with the rest of 64 tasks
/// queued, and the tick's completions, blocked share, CPU and demand.
fn phase_change(busy: usize, completed: u64, blocked: f64, cpu: f64, demand: f64) -> Snapshot {
    Snapshot {
        queued: 64u64.saturating_sub(busy as u64),
        running: busy as u64,
        completed,
        blocked: Some(blocked),
        worker_cpu: Some(cpu),
        worker_demand: Some(demand),
        memory: lots_of_memory(),
        host_cpu: Some(0.5),
        ..base()
    }
}
