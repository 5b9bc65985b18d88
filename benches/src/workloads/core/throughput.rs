//! Throughput rows: empty tasks submitted from one outside thread, and tasks spawning tasks.
//!
//! Every task counts itself down on a static [`Latch`], so its closure captures nothing (an
//! empty closure is zero-sized and boxing it does not allocate, as for any empty task), and the
//! round ends when the last task has run, not when the submitter is done.

use std::sync::Arc;
use std::time::Instant;

use pool_core::ThreadPool;

use super::systems::{Kind, Pool, TIMEOUT};
use crate::latch::Latch;
use crate::{Config, Row};

static DONE: Latch = Latch::new();

fn empty() {
    DONE.count_down();
}

/// Runs `n` tasks through the pool once, untimed, so that lazily started threads exist.
fn warm_up(pool: &Pool, n: usize) {
    DONE.reset(n);
    for _ in 0..n {
        pool.spawn(empty);
    }
    DONE.wait_or_panic(TIMEOUT, "warm-up");
}

fn per_second(n: usize, started: Instant) -> f64 {
    n as f64 / started.elapsed().as_secs_f64() / 1e6
}

/// One round of `n` fire-and-forget submissions; Mtasks/s.
fn external_spawn(pool: &Pool, n: usize) -> f64 {
    DONE.reset(n);
    let started = Instant::now();
    for _ in 0..n {
        pool.spawn(empty);
    }
    DONE.wait_or_panic(TIMEOUT, "external submit");
    per_second(n, started)
}

/// One round of `n` submissions keeping each handle, then joining every handle; Mtasks/s.
fn external_submit_join(pool: &Pool, n: usize) -> f64 {
    let mut handles = Vec::with_capacity(n);
    DONE.reset(n);
    let started = Instant::now();
    for _ in 0..n {
        handles.push(pool.submit(empty));
    }
    for handle in handles {
        handle.join().expect("an empty task cannot fail");
    }
    DONE.wait_or_panic(TIMEOUT, "external submit+join");
    per_second(n, started)
}

/// External submit: `n` empty tasks from this thread, for every system.
pub(crate) fn external_rows(config: &Config) -> Vec<Row> {
    let n = config.pick(1_000_000, 100_000);
    let mut rounds: Vec<(String, bool, Vec<f64>)> = Vec::new();
    let mut record =
        |name: &str, ours: bool, value: f64| match rounds.iter_mut().find(|(n, _, _)| n == name) {
            Some((_, _, values)) => values.push(value),
            None => rounds.push((name.to_string(), ours, vec![value])),
        };
    // Round-robin over the systems so that load from elsewhere on the machine spreads evenly.
    for _ in 0..config.rounds {
        for kind in Kind::ALL {
            let pool = Pool::build(kind, config.cores, &format!("ext-{}", kind.tag()));
            warm_up(&pool, n / 10);
            record(kind.name(), kind.is_ours(), external_spawn(&pool, n));
            if kind.is_ours() {
                record(
                    "pool-core submit+join",
                    true,
                    external_submit_join(&pool, n),
                );
            }
            pool.close();
        }
    }
    let mut row = Row::new(
        format!("external submit: {} empty tasks", count(n)),
        "Mtasks/s",
        true,
    )
    .with_note(
        "one outside thread submits, the round ends when the last task ran; \
         target >= 1.5x the best peer",
    );
    for (name, ours, values) in rounds {
        row.push(name, ours, &values);
    }
    vec![row]
}

/// `1000000` as `1M`, `100000` as `100k`.
#[allow(clippy::manual_is_multiple_of)] // `is_multiple_of` is newer than the MSRV (1.80)
pub(crate) fn count(n: usize) -> String {
    if n >= 1_000_000 && n % 1_000_000 == 0 {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000 && n % 1_000 == 0 {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

/// The shape of a tasks-spawning-tasks workload.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// Task `i` spawns tasks `2i + 1` and `2i + 2` while they are below `n`.
    Tree { n: usize },
    /// `chains` tasks submitted from outside, each the head of a chain `depth` tasks long.
    Chains { chains: usize, depth: usize },
}

impl Shape {
    fn tasks(self) -> usize {
        match self {
            Shape::Tree { n } => n,
            Shape::Chains { chains, depth } => chains * depth,
        }
    }
}

fn ours_tree(pool: Arc<ThreadPool>, i: usize, n: usize) {
    let left = 2 * i + 1;
    if left + 1 < n {
        let p = Arc::clone(&pool);
        pool.spawn(move || ours_tree(p, left, n)).expect("running");
        let p = Arc::clone(&pool);
        pool.spawn(move || ours_tree(p, left + 1, n))
            .expect("running");
    } else if left < n {
        let p = Arc::clone(&pool);
        pool.spawn(move || ours_tree(p, left, n)).expect("running");
    }
    DONE.count_down();
}

fn ours_chain(pool: Arc<ThreadPool>, k: usize, depth: usize) {
    if k + 1 < depth {
        let p = Arc::clone(&pool);
        pool.spawn(move || ours_chain(p, k + 1, depth))
            .expect("running");
    }
    DONE.count_down();
}

fn rayon_tree(i: usize, n: usize) {
    let left = 2 * i + 1;
    if left < n {
        rayon_core::spawn(move || rayon_tree(left, n));
    }
    if left + 1 < n {
        rayon_core::spawn(move || rayon_tree(left + 1, n));
    }
    DONE.count_down();
}

fn rayon_chain(k: usize, depth: usize) {
    if k + 1 < depth {
        rayon_core::spawn(move || rayon_chain(k + 1, depth));
    }
    DONE.count_down();
}

fn tokio_tree(i: usize, n: usize) {
    let left = 2 * i + 1;
    if left < n {
        tokio::spawn(async move { tokio_tree(left, n) });
    }
    if left + 1 < n {
        tokio::spawn(async move { tokio_tree(left + 1, n) });
    }
    DONE.count_down();
}

fn tokio_chain(k: usize, depth: usize) {
    if k + 1 < depth {
        tokio::spawn(async move { tokio_chain(k + 1, depth) });
    }
    DONE.count_down();
}

/// One round of `shape` on one system; Mtasks/s. The pool is built and dropped untimed.
fn internal_round(system: &str, threads: usize, shape: Shape) -> f64 {
    let n = shape.tasks();
    let name = "int";
    match system {
        "pool-core" => {
            let pool = Arc::new(
                ThreadPool::builder()
                    .threads(threads)
                    .thread_name(name)
                    .build()
                    .expect("pool-core pool"),
            );
            DONE.reset(n);
            let started = Instant::now();
            match shape {
                Shape::Tree { n } => {
                    let p = Arc::clone(&pool);
                    pool.spawn(move || ours_tree(p, 0, n)).expect("running");
                }
                Shape::Chains { chains, depth } => {
                    for _ in 0..chains {
                        let p = Arc::clone(&pool);
                        pool.spawn(move || ours_chain(p, 0, depth))
                            .expect("running");
                    }
                }
            }
            DONE.wait_or_panic(TIMEOUT, "internal spawn (pool-core)");
            let figure = per_second(n, started);
            pool.shutdown();
            figure
        }
        "rayon-core" => {
            let pool = rayon_core::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("rayon pool");
            DONE.reset(n);
            let started = Instant::now();
            match shape {
                Shape::Tree { n } => pool.spawn(move || rayon_tree(0, n)),
                Shape::Chains { chains, depth } => {
                    for _ in 0..chains {
                        pool.spawn(move || rayon_chain(0, depth));
                    }
                }
            }
            DONE.wait_or_panic(TIMEOUT, "internal spawn (rayon-core)");
            per_second(n, started)
        }
        _ => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .build()
                .expect("tokio runtime");
            DONE.reset(n);
            let started = Instant::now();
            match shape {
                Shape::Tree { n } => drop(runtime.spawn(async move { tokio_tree(0, n) })),
                Shape::Chains { chains, depth } => {
                    for _ in 0..chains {
                        drop(runtime.spawn(async move { tokio_chain(0, depth) }));
                    }
                }
            }
            DONE.wait_or_panic(TIMEOUT, "internal spawn (tokio)");
            let figure = per_second(n, started);
            runtime.shutdown_timeout(TIMEOUT);
            figure
        }
    }
}

/// Tasks spawning tasks: a binary fan-out tree and 1k-deep chains.
pub(crate) fn internal_rows(config: &Config) -> Vec<Row> {
    let n = config.pick(1_000_000, 100_000);
    let depth = 1_000;
    let shapes = [
        (
            format!("internal spawn: binary tree, {} tasks", count(n)),
            Shape::Tree { n },
        ),
        (
            format!(
                "internal spawn: {} chains x {} deep",
                count(n / depth),
                count(depth)
            ),
            Shape::Chains {
                chains: n / depth,
                depth,
            },
        ),
    ];
    let systems = [
        ("pool-core", "pool-core spawn (Arc<ThreadPool>)", true),
        ("rayon-core", "rayon-core spawn", false),
        ("tokio", "tokio spawn", false),
    ];
    let mut rows = Vec::new();
    for (workload, shape) in shapes {
        let mut values = vec![Vec::new(); systems.len()];
        for _ in 0..config.rounds {
            for (i, (system, _, _)) in systems.iter().enumerate() {
                values[i].push(internal_round(system, config.cores, shape));
            }
        }
        let mut row = Row::new(workload, "Mtasks/s", true).with_note(
            "every task but the roots is spawned from inside a worker; target: ahead of rayon",
        );
        for ((_, label, ours), values) in systems.iter().zip(&values) {
            row.push(*label, *ours, values);
        }
        rows.push(row);
    }
    rows
}
