//! Throughput rows: empty tasks submitted from one outside thread, and tasks spawning tasks.
//!
//! Every task counts itself down on a static [`Latch`], so its closure captures nothing (an
//! empty closure is zero-sized and boxing it does not allocate, as for any empty task), and the
//! round ends when the last task has run, not when the submitter is done.

use std::sync::Arc;
use std::time::Instant;

use pool_core::ThreadPool;

use crate::latch::Latch;
use crate::peers::{self, Elastic, Kind, Pool, TIMEOUT};
use crate::{Config, Figure, Row};

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

/// How a tasks-spawning-tasks round spawns its children.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spawner {
    /// `ThreadPool::spawn` through an `Arc<ThreadPool>` clone captured by every task.
    OursArc,
    /// `pool_core::spawn_here`: the current worker's pool, no clone per task.
    OursHere,
    /// `ThreadPool::scope`: `Scope::spawn`, joined when the scope ends.
    OursScope,
    /// `rayon_core::spawn` (the current worker's registry).
    RayonSpawn,
    /// `rayon_core::ThreadPool::scope`: `Scope::spawn`, joined when the scope ends.
    RayonScope,
    /// `tokio::spawn` on the multi-thread runtime.
    Tokio,
}

impl Spawner {
    const ALL: [Spawner; 6] = [
        Spawner::OursArc,
        Spawner::OursHere,
        Spawner::OursScope,
        Spawner::RayonSpawn,
        Spawner::RayonScope,
        Spawner::Tokio,
    ];

    fn label(self) -> &'static str {
        match self {
            Spawner::OursArc => "pool-core spawn (Arc<ThreadPool>)",
            Spawner::OursHere => "pool-core spawn_here",
            Spawner::OursScope => "pool-core scope",
            Spawner::RayonSpawn => "rayon-core spawn",
            Spawner::RayonScope => "rayon-core scope",
            Spawner::Tokio => "tokio spawn",
        }
    }

    fn is_ours(self) -> bool {
        matches!(
            self,
            Spawner::OursArc | Spawner::OursHere | Spawner::OursScope
        )
    }
}

impl Shape {
    /// How many tasks are submitted from outside (each is task 0 of its tree or chain).
    fn roots(self) -> usize {
        match self {
            Shape::Tree { .. } => 1,
            Shape::Chains { chains, .. } => chains,
        }
    }

    /// The tasks task `i` spawns: `2i + 1` and `2i + 2` in the tree, `i + 1` in a chain.
    fn children(self, i: usize) -> impl Iterator<Item = usize> {
        let (first, count, end) = match self {
            Shape::Tree { n } => (2 * i + 1, 2, n),
            Shape::Chains { depth, .. } => (i + 1, 1, depth),
        };
        (first..first + count).filter(move |&child| child < end)
    }
}

fn ours_task(pool: Arc<ThreadPool>, shape: Shape, i: usize) {
    for child in shape.children(i) {
        let p = Arc::clone(&pool);
        pool.spawn(move || ours_task(p, shape, child))
            .expect("running");
    }
    DONE.count_down();
}

fn here_task(shape: Shape, i: usize) {
    for child in shape.children(i) {
        if pool_core::spawn_here(move || here_task(shape, child)).is_err() {
            panic!("spawn_here called off a worker");
        }
    }
    DONE.count_down();
}

fn ours_scope_task(s: &pool_core::Scope<'_>, shape: Shape, i: usize) {
    for child in shape.children(i) {
        s.spawn(move |s| ours_scope_task(s, shape, child));
    }
    DONE.count_down();
}

fn rayon_task(shape: Shape, i: usize) {
    for child in shape.children(i) {
        rayon_core::spawn(move || rayon_task(shape, child));
    }
    DONE.count_down();
}

fn rayon_scope_task(s: &rayon_core::Scope<'_>, shape: Shape, i: usize) {
    for child in shape.children(i) {
        s.spawn(move |s| rayon_scope_task(s, shape, child));
    }
    DONE.count_down();
}

fn tokio_task(shape: Shape, i: usize) {
    for child in shape.children(i) {
        tokio::spawn(async move { tokio_task(shape, child) });
    }
    DONE.count_down();
}

/// One round of `shape` with `spawner`; Mtasks/s. The pool is built and dropped untimed; the
/// round ends when the last task has counted itself down (for the scopes: when `scope`
/// returned, which is later still).
fn internal_round(spawner: Spawner, threads: usize, shape: Shape) -> f64 {
    let n = shape.tasks();
    let what = spawner.label();
    match spawner {
        Spawner::OursArc | Spawner::OursHere | Spawner::OursScope => {
            let pool = Arc::new(peers::our_pool(threads, "int"));
            DONE.reset(n);
            let started = Instant::now();
            match spawner {
                Spawner::OursScope => pool.scope(|s| {
                    for _ in 0..shape.roots() {
                        s.spawn(move |s| ours_scope_task(s, shape, 0));
                    }
                }),
                Spawner::OursHere => {
                    for _ in 0..shape.roots() {
                        pool.spawn(move || here_task(shape, 0)).expect("running");
                    }
                }
                _ => {
                    for _ in 0..shape.roots() {
                        let p = Arc::clone(&pool);
                        pool.spawn(move || ours_task(p, shape, 0)).expect("running");
                    }
                }
            }
            DONE.wait_or_panic(TIMEOUT, what);
            let figure = per_second(n, started);
            pool.shutdown();
            figure
        }
        Spawner::RayonSpawn | Spawner::RayonScope => {
            let pool = peers::rayon_pool(threads, "int-rayon-");
            DONE.reset(n);
            let started = Instant::now();
            if spawner == Spawner::RayonScope {
                pool.scope(|s| {
                    for _ in 0..shape.roots() {
                        s.spawn(move |s| rayon_scope_task(s, shape, 0));
                    }
                });
            } else {
                for _ in 0..shape.roots() {
                    pool.spawn(move || rayon_task(shape, 0));
                }
            }
            DONE.wait_or_panic(TIMEOUT, what);
            per_second(n, started)
        }
        Spawner::Tokio => {
            let runtime = peers::tokio_runtime(Elastic::fixed(threads), "int-tokio");
            DONE.reset(n);
            let started = Instant::now();
            for _ in 0..shape.roots() {
                drop(runtime.spawn(async move { tokio_task(shape, 0) }));
            }
            DONE.wait_or_panic(TIMEOUT, what);
            let figure = per_second(n, started);
            runtime.shutdown_timeout(TIMEOUT);
            figure
        }
    }
}

/// Tasks spawning tasks: a binary fan-out tree and 1k-deep chains, each with every way of
/// spawning from inside a task that pool-core and rayon offer (plain spawn, and a scope), so the
/// note can put our scope beside rayon's.
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
    let mut rows = Vec::new();
    for (workload, shape) in shapes {
        let mut values = vec![Vec::new(); Spawner::ALL.len()];
        // Systems alternate within each round, so a burst of load on the shared machine lands
        // on all of them rather than on one.
        for _ in 0..config.rounds {
            for (i, spawner) in Spawner::ALL.into_iter().enumerate() {
                values[i].push(internal_round(spawner, config.cores, shape));
            }
        }
        let of = |spawner: Spawner| {
            let i = Spawner::ALL
                .iter()
                .position(|&s| s == spawner)
                .expect("listed");
            // The row's own median (no rounds: NaN, printed as such in the note).
            Figure::from_rounds(&values[i]).map_or(f64::NAN, |figure| figure.median)
        };
        let note = format!(
            "every task but the roots is spawned from inside a worker; target: ahead of rayon; \
             scope vs scope: pool-core {:.2}x rayon-core (medians)",
            of(Spawner::OursScope) / of(Spawner::RayonScope)
        );
        let mut row = Row::new(workload, "Mtasks/s", true).with_note(note);
        for (spawner, values) in Spawner::ALL.into_iter().zip(&values) {
            row.push(spawner.label(), spawner.is_ours(), values);
        }
        rows.push(row);
    }
    rows
}
