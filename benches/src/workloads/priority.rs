//! Priority workloads (measured side by side with the peers, never asserted in a test):
//!
//! 1. **Critical behind a backlog**: every worker is held by a gate, 100k empty Idle tasks are
//!    queued, then one Critical task; the gates open and we time from the release to the Critical
//!    task's start. A priority pool starts it within one task plus a wake-up; FIFO pools (the
//!    peers, and our own FIFO pool) start it after the whole backlog.
//! 2. **Throughput cost of priority**: 1M empty fire-and-forget tasks submitted from one outside
//!    thread to the priority pool vs our FIFO pool (target: at least 80% of FIFO). The FIFO pool
//!    is listed as the reference (not "ours") so that the row's ratio is priority / FIFO.

use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use policy_priority::priority_pool;
use pool_core::{Priority, ThreadPool};

use crate::peers::{Kind, Pool};
use crate::{Config, Figure, Measurement, Row};

const TIMEOUT: Duration = Duration::from_secs(120);

/// The rows of this workload family (those [`Config::wants`]).
pub fn rows(config: &Config) -> Vec<Row> {
    let mut rows = Vec::new();
    if config.wants(&backlog_name(config)) {
        rows.push(critical_behind_backlog(config));
    }
    if config.wants(&throughput_name(config)) {
        rows.extend(throughput(config));
    }
    rows
}

fn backlog_size(config: &Config) -> usize {
    config.pick(100_000, 10_000)
}

fn backlog_name(config: &Config) -> String {
    format!(
        "Critical task start behind {}k queued Idle tasks ({} threads)",
        backlog_size(config) / 1000,
        config.cores.max(1)
    )
}

fn throughput_size(config: &Config) -> usize {
    config.pick(1_000_000, 100_000)
}

fn throughput_name(config: &Config) -> String {
    format!(
        "priority pool throughput, {}k empty tasks from one thread ({} threads)",
        throughput_size(config) / 1000,
        config.cores.max(1)
    )
}

/// A gate that holds every worker of a pool until opened.
struct Gate {
    open: Arc<(Mutex<bool>, Condvar)>,
    started: mpsc::Receiver<()>,
    started_tx: mpsc::Sender<()>,
}

impl Gate {
    fn new() -> Gate {
        let (started_tx, started) = mpsc::channel();
        Gate {
            open: Arc::new((Mutex::new(false), Condvar::new())),
            started,
            started_tx,
        }
    }

    /// A task that reports it started, then blocks until the gate opens.
    fn task(&self) -> impl FnOnce() + Send + 'static {
        let (open, started) = (self.open.clone(), self.started_tx.clone());
        move || {
            started.send(()).unwrap();
            let (lock, cvar) = &*open;
            let mut is_open = lock.lock().unwrap();
            while !*is_open {
                is_open = cvar.wait(is_open).unwrap();
            }
        }
    }

    /// Waits until `workers` gate tasks are running (every worker is held).
    fn wait_held(&self, workers: usize) {
        for _ in 0..workers {
            self.started
                .recv_timeout(TIMEOUT)
                .expect("a worker took the gate");
        }
    }

    /// Opens the gate; returns the instant of the release.
    fn open(&self) -> Instant {
        let (lock, cvar) = &*self.open;
        let at = Instant::now();
        *lock.lock().unwrap() = true;
        cvar.notify_all();
        at
    }
}

/// The pool behind each system of the backlog row: ours with priority levels, ours FIFO, and the
/// peers from the peer layer (which have no levels: `spawn_at` ignores the priority).
fn make(system: &str, threads: usize) -> Pool {
    let name = "prio";
    match system {
        "policy-priority" => Pool::Ours(priority_pool(threads).expect("valid").0),
        "pool-core FIFO" => Pool::build(Kind::Ours, threads, name),
        "threadpool" => Pool::build(Kind::Threadpool, threads, name),
        "rusty_pool" => Pool::build(Kind::RustyPool, threads, name),
        "rayon-core" => Pool::build(Kind::Rayon, threads, name),
        other => unreachable!("unknown system {other}"),
    }
}

/// Microseconds from opening the gates to the Critical task's start, one round.
fn backlog_round(system: &str, threads: usize, backlog: usize) -> f64 {
    let pool = make(system, threads);
    let gate = Gate::new();
    // Fire-and-forget jobs at a level: a handle (`submit_at`) would add its allocation to
    // every backlog task, which the peers do not pay.
    for _ in 0..threads {
        pool.spawn_at(Priority::Critical, gate.task());
    }
    gate.wait_held(threads);
    for _ in 0..backlog {
        pool.spawn_at(Priority::Idle, || ());
    }
    let (started_tx, started) = mpsc::channel();
    pool.spawn_at(Priority::Critical, move || {
        started_tx.send(Instant::now()).unwrap()
    });
    let released = gate.open();
    let start = started
        .recv_timeout(TIMEOUT)
        .expect("the Critical task started");
    pool.close();
    start.saturating_duration_since(released).as_secs_f64() * 1e6
}

fn critical_behind_backlog(config: &Config) -> Row {
    let backlog = backlog_size(config);
    let threads = config.cores.max(1);
    let systems = [
        ("policy-priority", true),
        ("pool-core FIFO", true),
        ("threadpool", false),
        ("rusty_pool", false),
        ("rayon-core", false),
    ];
    let measurements = systems
        .iter()
        .map(|&(system, ours)| {
            let rounds: Vec<f64> = (0..config.rounds)
                .map(|_| backlog_round(system, threads, backlog))
                .collect();
            measurement(system, ours, &rounds)
        })
        .collect();
    Row {
        workload: backlog_name(config),
        unit: "µs".into(),
        higher_is_better: false,
        measurements,
        note: "from releasing the held workers to the Critical task's start; FIFO pools run the \
               whole backlog first. Target: one task's length plus wake-up latency"
            .into(),
    }
}

/// Million tasks per second for `tasks` empty fire-and-forget tasks from this thread, one round.
fn throughput_round(pool: &ThreadPool, tasks: usize, mixed: bool) -> f64 {
    let began = Instant::now();
    for i in 0..tasks {
        if mixed {
            // Spread over the five levels.
            let level = Priority::from_index(i % 5).expect("index below 5");
            pool_core::Executor::execute_with_priority(pool, Box::new(|| ()), level)
                .unwrap_or_else(|_| panic!("pool is running"));
        } else {
            pool.spawn(|| ())
                .unwrap_or_else(|_| panic!("pool is running"));
        }
    }
    assert!(pool.wait_idle(TIMEOUT), "the pool went idle");
    tasks as f64 / began.elapsed().as_secs_f64() / 1e6
}

/// Two rows over the same interleaved rounds: all-Normal submissions, then the five levels
/// mixed, each beside our FIFO pool, so that each row's ratio column is its own over FIFO (one
/// row with both made the column the better of the two, the mixed one where it was faster,
/// while the target names the Normal one).
fn throughput(config: &Config) -> [Row; 2] {
    let tasks = throughput_size(config);
    let threads = config.cores.max(1);
    let fifo = ThreadPool::new(threads).expect("valid");
    let (prio, _queue) = priority_pool(threads).expect("valid");
    let mut fifo_rounds = Vec::new();
    let mut prio_rounds = Vec::new();
    let mut mixed_rounds = Vec::new();
    // Interleave the systems round by round so that machine load affects them alike.
    for _ in 0..config.rounds {
        fifo_rounds.push(throughput_round(&fifo, tasks, false));
        prio_rounds.push(throughput_round(&prio, tasks, false));
        mixed_rounds.push(throughput_round(&prio, tasks, true));
    }
    prio.shutdown();
    fifo.shutdown();
    let row = |levels: &str, rounds: &[f64], note: &str| Row {
        workload: format!("{}, {levels}", throughput_name(config)),
        unit: "Mtasks/s".into(),
        higher_is_better: true,
        measurements: vec![
            measurement(&format!("policy-priority ({levels})"), true, rounds),
            measurement("pool-core FIFO (reference)", false, &fifo_rounds),
        ],
        note: note.into(),
    };
    [
        row(
            "Normal",
            &prio_rounds,
            "ratio = priority pool / our FIFO pool; target >= 0.8",
        ),
        row(
            "5 levels mixed",
            &mixed_rounds,
            "ratio = priority pool / our FIFO pool, the FIFO rounds of the row above; no target",
        ),
    ]
}

fn measurement(system: &str, ours: bool, rounds: &[f64]) -> Measurement {
    Measurement {
        system: system.into(),
        ours,
        figure: Figure::from_rounds(rounds).expect("at least one round"),
    }
}
