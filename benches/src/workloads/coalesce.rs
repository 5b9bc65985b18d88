//! Coalescing workloads (performance is measured side by side, never asserted in a test). No peer crate offers keyed coalescing, so the
//! comparison is a plain pool-core `ThreadPool` running every submission.
//!
//! 1. **Keyed submits**: 2 outside threads submit 1M closures (500k each) over 1k keys to a
//!    coalescer on a pool with the machine's core count of workers; timed until both submitters
//!    return (the submit path). Reported: wall ns per submit per thread, the submitters' own CPU
//!    ns per submit (thread CPU time, which other processes on a loaded machine do not inflate),
//!    and the executions that ran (target: ≤ 100 ns per merged submit; executions ≤ keys × a
//!    small factor). Both `submit` (handle dropped at once) and `spawn` (no handle).
//! 2. **Typing scenario**: keystrokes arrive every 50 µs round-robin over 4 documents and each asks
//!    for a 200 µs preview render. Reported: renders executed, and the time from the first
//!    keystroke until every render is done, for the coalescer (latest text wins per document)
//!    against the plain pool (every keystroke renders).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use policy_coalesce::Coalescer;
use pool_core::ThreadPool;

use crate::{Config, Figure, Measurement, Row};

const TIMEOUT: Duration = Duration::from_secs(120);
const KEYS: u64 = 1000;

/// The rows of this workload family.
pub fn rows(config: &Config) -> Vec<Row> {
    let mut rows = Vec::new();
    if config.wants("coalesce: keyed submits") {
        rows.extend(keyed_submits(config));
    }
    if config.wants("coalesce: typing") {
        rows.extend(typing(config));
    }
    rows
}

fn figure(rounds: &[f64]) -> Figure {
    Figure::from_rounds(rounds).unwrap_or(Figure {
        median: f64::NAN,
        min: f64::NAN,
        max: f64::NAN,
    })
}

/// CPU time of the calling thread in nanoseconds (`/proc/thread-self/schedstat`), 0 where
/// unavailable: on a loaded machine the wall clock also counts other processes' time slices.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

struct KeyedRound {
    wall_ns: f64,
    cpu_ns: f64,
    executions: f64,
}

/// One round of `total` submits from 2 threads, with handles (dropped at once) or fire-and-forget.
fn keyed_round(config: &Config, total: u64, handles: bool) -> KeyedRound {
    let pool = ThreadPool::new(config.cores).expect("a pool");
    let coalescer = Coalescer::<u64, u64, _>::builder(pool)
        .build()
        .expect("valid settings");
    let submitters = 2u64;
    let per_thread = total / submitters;
    let start = Instant::now();
    let threads: Vec<_> = (0..submitters)
        .map(|t| {
            let coalescer = coalescer.clone();
            std::thread::spawn(move || {
                let cpu = thread_cpu_ns();
                // A cheap xorshift spreads the keys without a shared counter.
                let mut x = 0x2545_F491_4F6C_DD1D_u64 ^ (t + 1);
                for i in 0..per_thread {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let job = move || black_box(i);
                    if handles {
                        drop(black_box(coalescer.submit(x % KEYS, job)));
                    } else {
                        let _ = black_box(coalescer.spawn(x % KEYS, Default::default(), job));
                    }
                }
                thread_cpu_ns().saturating_sub(cpu)
            })
        })
        .collect();
    let cpu: u64 = threads
        .into_iter()
        .map(|t| t.join().expect("submitter"))
        .sum();
    let elapsed = start.elapsed();
    coalescer.executor().wait_idle(TIMEOUT);
    let stats = coalescer.stats();
    assert!(stats.is_balanced(), "{stats}");
    let submits = (per_thread * submitters) as f64;
    KeyedRound {
        wall_ns: elapsed.as_nanos() as f64 / submits * submitters as f64,
        cpu_ns: cpu as f64 / submits,
        executions: stats.executed as f64,
    }
}

fn keyed_submits(config: &Config) -> Vec<Row> {
    let total = config.pick(1_000_000u64, 100_000);
    let name = format!(
        "coalesce: keyed submits, {}k over 1k keys, 2 threads",
        total / 1000
    );
    let mut wall = Vec::new();
    let mut cpu = Vec::new();
    let mut executions = Vec::new();
    for (system, handles) in [
        ("submit (handle dropped)", true),
        ("spawn (no handle)", false),
    ] {
        let mut rounds = Vec::new();
        for _ in 0..config.rounds {
            rounds.push(keyed_round(config, total, handles));
        }
        let pick = |f: fn(&KeyedRound) -> f64| figure(&rounds.iter().map(f).collect::<Vec<_>>());
        let system = format!("policy-coalesce {system}");
        wall.push(Measurement::new(&system, true, pick(|r| r.wall_ns)));
        cpu.push(Measurement::new(&system, true, pick(|r| r.cpu_ns)));
        executions.push(Measurement::new(&system, true, pick(|r| r.executions)));
    }
    executions.push(Measurement::new(
        "plain pool (every submit runs)",
        false,
        figure(&[total as f64]),
    ));
    vec![
        Row {
            workload: format!("{name}, wall time per submit per thread"),
            unit: "ns/submit".into(),
            higher_is_better: false,
            measurements: wall,
            note: format!(
                "target <= 100 ns per merged submit; {} cores, workers run beside the submitters",
                config.cores
            ),
        },
        Row {
            workload: format!("{name}, submitter CPU per submit"),
            unit: "ns/submit".into(),
            higher_is_better: false,
            measurements: cpu,
            note: "thread CPU time (schedstat): immune to other processes' time slices".into(),
        },
        Row {
            workload: format!("{name}, executions"),
            unit: "executions".into(),
            higher_is_better: false,
            measurements: executions,
            note: format!("target: <= keys ({KEYS}) x a small factor"),
        },
    ]
}

fn spin_for(duration: Duration) {
    let start = Instant::now();
    while start.elapsed() < duration {
        std::hint::spin_loop();
    }
}

const DOCUMENTS: u64 = 4;
const KEYSTROKE: Duration = Duration::from_micros(50);
const RENDER: Duration = Duration::from_micros(200);

/// One typing round: returns (renders executed, ms until every render is done).
fn typing_round(config: &Config, keystrokes: u64, coalesce: bool) -> (f64, f64) {
    let pool = Arc::new(ThreadPool::new(config.cores).expect("a pool"));
    let renders = Arc::new(AtomicU64::new(0));
    let coalescer = Coalescer::<u64, u64, _>::builder(pool.clone())
        .build()
        .expect("valid settings");
    let start = Instant::now();
    let mut next = start;
    for stroke in 0..keystrokes {
        let document = stroke % DOCUMENTS;
        let renders = renders.clone();
        let render = move || {
            spin_for(RENDER);
            renders.fetch_add(1, Ordering::Relaxed);
            stroke
        };
        if coalesce {
            drop(coalescer.submit(document, render));
        } else {
            drop(pool.submit(render));
        }
        next += KEYSTROKE;
        while Instant::now() < next {
            std::hint::spin_loop();
        }
    }
    pool.wait_idle(TIMEOUT);
    let elapsed = start.elapsed();
    (
        renders.load(Ordering::Relaxed) as f64,
        elapsed.as_secs_f64() * 1e3,
    )
}

fn typing(config: &Config) -> Vec<Row> {
    let keystrokes = config.pick(4000u64, 1000);
    let mut ours = (Vec::new(), Vec::new());
    let mut plain = (Vec::new(), Vec::new());
    for _ in 0..config.rounds {
        let (e, ms) = typing_round(config, keystrokes, true);
        ours.0.push(e);
        ours.1.push(ms);
        let (e, ms) = typing_round(config, keystrokes, false);
        plain.0.push(e);
        plain.1.push(ms);
    }
    let name = format!(
        "coalesce: typing, {keystrokes} keystrokes every 50 µs over {DOCUMENTS} docs, 200 µs renders"
    );
    vec![
        Row {
            workload: format!("{name}, renders run"),
            unit: "renders".into(),
            higher_is_better: false,
            measurements: vec![
                Measurement::new("policy-coalesce", true, figure(&ours.0)),
                Measurement::new("pool-core ThreadPool (plain)", false, figure(&plain.0)),
            ],
            note: "no peer offers coalescing; the plain pool renders every keystroke".into(),
        },
        Row {
            workload: format!("{name}, until the last render"),
            unit: "ms".into(),
            higher_is_better: false,
            measurements: vec![
                Measurement::new("policy-coalesce", true, figure(&ours.1)),
                Measurement::new("pool-core ThreadPool (plain)", false, figure(&plain.1)),
            ],
            note: format!("typing itself takes {} ms", keystrokes * 50 / 1000),
        },
    ]
}
