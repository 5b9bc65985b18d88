//! `profile`: one workload on one system, nothing else, for `valgrind --tool=callgrind`.
//!
//! ```text
//! cargo build --release -p benches --bin profile
//! valgrind --tool=callgrind --callgrind-out-file=cg.out target/release/profile external ours 200000
//! callgrind_annotate cg.out | head -40
//! ```
//!
//! Workloads: `external` (fire-and-forget submits from this thread), `tree` (tasks spawning
//! tasks), `scope` (the same binary tree spawned into one `scope`, joined when it ends),
//! `scope-chains` (TASKS / 1000 chains 1000 deep in one `scope`, as `compare`'s chains row),
//! `scope-chains-counts` (the same on ours, printing tasks, parks and chain hand-overs per
//! worker; SYSTEM is ignored; not for callgrind),
//! `small-scopes` (TASKS scopes of one empty spawned closure each, run one after another from
//! inside a task on the pool, so the scope's own set-up and wait are what is counted; run it
//! with THREADS 1 for a count that does not depend on steals: instructions per scope are
//! callgrind's total, minus `small-scopes SYSTEM 0 1`'s, divided by TASKS),
//! `join` (the same binary tree as recursive `join`s, started on a worker: node `i` joins its
//! two children, a node with one child calls it directly; TASKS nodes, TASKS / 2 joins).
//! Systems: `ours`, `rayon`, `threadpool`, `rusty`, `tokio` (`tree`, `scope`, `join`: `ours`,
//! `rayon`).
//!
//! `paced GAP_NS [TASKS] [THREADS]`: ours only, one outside thread submits an empty task every
//! `GAP_NS` nanoseconds (a busy wait, so the submitter's CPU is the wall time) and prints the
//! start latency (submit to start; p50, p90, p99) and the process's CPU. That CPU less the wall
//! time, per task, is what the workers spent on each task of the stream: with empty tasks, mostly
//! the search after it, the park and the wake-up.
//! Not for callgrind (the latencies go through a lock).
//!
//! `priority SYSTEM [TASKS] [THREADS]`: the `external` submits of `compare`'s priority throughput
//! row, ours against ours: `fifo` (the default pool), `normal` (the priority pool, every task at
//! Normal) or `mixed` (the priority pool, tasks spread over the five levels). Instructions per
//! task: callgrind's total divided by TASKS.
//!
//! `dag-build SHAPE [NODES]` adds the nodes of one of the `compare` DAG shapes (`chain`,
//! `wavefront`, `tree`, `random`) with `node(..).after(..)` and builds the graph, nothing else
//! (the shape's predecessor lists are made first: subtract `dag-shape SHAPE`, which makes and
//! drops the lists and nothing else, from its count; `dag-build none` is `dag-shape chain`).
//! Instructions per node: callgrind's total divided by NODES. `dag-build-unnamed SHAPE [NODES]`
//! is the same with `unnamed_node` (no `format!` of a name per node), `dag-build-fmt SHAPE
//! [NODES]` names them with `format_args!` on `GraphBuilder::with_capacity` (the fast path).
//!
//! `dag-run SHAPE [NODES] [THREADS]` builds the shape (unnamed nodes) and runs it once, untimed,
//! on a `ThreadPool`: subtract `dag-build-unnamed SHAPE [NODES]` for the run alone.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::latch::Latch;
use benches::peers::{Kind, Pool};
use benches::samples::quantile;
use benches::workloads::dag::Naming;

static DONE: Latch = Latch::new();
const TIMEOUT: Duration = Duration::from_secs(600);

fn empty() {
    DONE.count_down();
}

fn external(system: &str, threads: usize, n: usize) -> Result<(), String> {
    let kind = match system {
        "ours" => Kind::Ours,
        "rayon" => Kind::Rayon,
        "threadpool" => Kind::Threadpool,
        "rusty" => Kind::RustyPool,
        "tokio" => Kind::TokioBlocking,
        other => return Err(format!("unknown system {other:?}")),
    };
    // Built by the same peer layer as `compare`'s rows, so the profile is of the same set-up.
    let pool = Pool::build(kind, threads, "prof-");
    DONE.reset(n);
    let started = Instant::now();
    (0..n).for_each(|_| pool.spawn(empty));
    DONE.wait_or_panic(TIMEOUT, kind.name());
    println!(
        "external {system}: {n} tasks, {:.2} Mtasks/s",
        n as f64 / started.elapsed().as_secs_f64() / 1e6
    );
    pool.close();
    Ok(())
}

fn paced(gap_ns: u64, threads: usize, n: usize) -> Result<(), String> {
    static STARTS: std::sync::Mutex<Vec<u64>> = std::sync::Mutex::new(Vec::new());
    if n == 0 {
        return Err("paced needs at least one task".to_owned());
    }
    let pool = pool_core::ThreadPool::new(threads).map_err(|e| e.to_string())?;
    let gap = Duration::from_nanos(gap_ns);
    STARTS.lock().map_err(|e| e.to_string())?.clear();
    DONE.reset(n);
    let cpu_before = benches::procfs::process_cpu_ns();
    let started = Instant::now();
    for _ in 0..n {
        let paced = Instant::now();
        while paced.elapsed() < gap {
            std::hint::spin_loop();
        }
        let submitted = Instant::now();
        let job = move || {
            let waited = u64::try_from(submitted.elapsed().as_nanos()).unwrap_or(u64::MAX);
            if let Ok(mut starts) = STARTS.lock() {
                starts.push(waited);
            }
            DONE.count_down();
        };
        if pool.spawn(job).is_err() {
            return Err("the pool refused a job".to_owned());
        }
    }
    DONE.wait_or_panic(TIMEOUT, "paced");
    let wall = started.elapsed();
    let cpu = benches::procfs::process_cpu_ns()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    let mut starts: Vec<f64> = std::mem::take(&mut *STARTS.lock().map_err(|e| e.to_string())?)
        .into_iter()
        .map(|ns| ns as f64 / 1e3)
        .collect();
    starts.sort_by(f64::total_cmp);
    let at = |q: f64| quantile(&starts, q);
    println!(
        "paced {gap_ns} ns: {n} tasks in {wall:.3?}; start p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs; \
         process CPU {}",
        at(0.5),
        at(0.9),
        at(0.99),
        cpu.map_or("unknown".to_owned(), |ns| format!("{:.3} s", ns as f64 / 1e9)),
    );
    pool.shutdown();
    Ok(())
}

fn priority(system: &str, threads: usize, n: usize) -> Result<(), String> {
    use pool_core::Priority;
    let (pool, mixed) = match system {
        "fifo" => (
            pool_core::ThreadPool::new(threads).map_err(|e| e.to_string())?,
            false,
        ),
        "normal" | "mixed" => {
            let (pool, _queue) =
                policy_priority::priority_pool(threads).map_err(|e| e.to_string())?;
            (pool, system == "mixed")
        }
        other => return Err(format!("unknown system {other:?} for priority")),
    };
    DONE.reset(n);
    let started = Instant::now();
    for i in 0..n {
        let level = if mixed {
            Priority::ALL[i % Priority::ALL.len()]
        } else {
            Priority::Normal
        };
        if pool.spawn_with_priority(level, empty).is_err() {
            return Err("the pool refused a job".to_owned());
        }
    }
    DONE.wait_or_panic(TIMEOUT, "priority");
    println!(
        "priority {system}: {n} tasks, {:.2} Mtasks/s",
        n as f64 / started.elapsed().as_secs_f64() / 1e6
    );
    pool.shutdown();
    Ok(())
}

fn ours_tree(pool: Arc<pool_core::ThreadPool>, i: usize, n: usize) {
    for child in [2 * i + 1, 2 * i + 2] {
        if child < n {
            let p = Arc::clone(&pool);
            pool.spawn(move || ours_tree(p, child, n)).expect("running");
        }
    }
    DONE.count_down();
}

fn rayon_tree(i: usize, n: usize) {
    for child in [2 * i + 1, 2 * i + 2] {
        if child < n {
            rayon_core::spawn(move || rayon_tree(child, n));
        }
    }
    DONE.count_down();
}

fn tree(system: &str, threads: usize, n: usize) -> Result<(), String> {
    let rate = run_on_pool(
        system,
        threads,
        n,
        |pool| {
            let p = Arc::clone(pool);
            pool.spawn(move || ours_tree(p, 0, n)).expect("running");
        },
        move || rayon_tree(0, n),
    )?;
    println!("tree {system}: {n} tasks, {rate:.2} Mtasks/s");
    Ok(())
}

/// Starts one root job on a fresh pool of `system` (`ours` or `rayon`) with `threads` workers
/// and waits until `n` count-downs of `DONE`; returns millions of count-downs per second.
fn run_on_pool(
    system: &str,
    threads: usize,
    n: usize,
    ours: impl FnOnce(&Arc<pool_core::ThreadPool>),
    rayon: impl FnOnce() + Send + 'static,
) -> Result<f64, String> {
    DONE.reset(n);
    let started = Instant::now();
    match system {
        "ours" => {
            let pool = Arc::new(pool_core::ThreadPool::new(threads).map_err(|e| e.to_string())?);
            ours(&pool);
            DONE.wait_or_panic(TIMEOUT, "ours");
        }
        "rayon" => {
            let pool = rayon_core::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .map_err(|e| e.to_string())?;
            pool.spawn(rayon);
            DONE.wait_or_panic(TIMEOUT, "rayon");
        }
        other => return Err(format!("unknown system {other:?}")),
    }
    Ok(n as f64 / started.elapsed().as_secs_f64() / 1e6)
}

/// Node `i` of `join`'s binary tree of `n`: counts itself, then joins its children.
fn ours_join(pool: &pool_core::ThreadPool, i: usize, n: usize) {
    DONE.count_down();
    let (left, right) = (2 * i + 1, 2 * i + 2);
    if right < n {
        pool.join(|| ours_join(pool, left, n), || ours_join(pool, right, n));
    } else if left < n {
        ours_join(pool, left, n);
    }
}

fn rayon_join(i: usize, n: usize) {
    DONE.count_down();
    let (left, right) = (2 * i + 1, 2 * i + 2);
    if right < n {
        rayon_core::join(|| rayon_join(left, n), || rayon_join(right, n));
    } else if left < n {
        rayon_join(left, n);
    }
}

/// The binary tree of `tree` as recursive joins, the root spawned onto the pool (so every
/// `join` is called on a worker). Instructions per join: callgrind's total divided by N / 2.
fn join(system: &str, threads: usize, n: usize) -> Result<(), String> {
    let rate = run_on_pool(
        system,
        threads,
        n,
        |pool| {
            let p = Arc::clone(pool);
            pool.spawn(move || ours_join(&p, 0, n)).expect("running");
        },
        move || rayon_join(0, n),
    )?;
    println!("join {system}: {n} nodes, {rate:.2} Mnodes/s");
    Ok(())
}

/// The tasks task `i` spawns: `2i + 1` and `2i + 2` in a binary tree of `n`, `i + 1` in a chain
/// `n` deep.
fn children(chains: bool, i: usize, n: usize) -> std::ops::Range<usize> {
    let (first, count) = if chains { (i + 1, 1) } else { (2 * i + 1, 2) };
    first.min(n)..(first + count).min(n)
}

fn ours_scope_task<'scope>(s: &pool_core::Scope<'scope>, chains: bool, i: usize, n: usize) {
    for child in children(chains, i, n) {
        s.spawn(move |s| ours_scope_task(s, chains, child, n));
    }
    DONE.count_down();
}

fn rayon_scope_task<'scope>(s: &rayon_core::Scope<'scope>, chains: bool, i: usize, n: usize) {
    for child in children(chains, i, n) {
        s.spawn(move |s| rayon_scope_task(s, chains, child, n));
    }
    DONE.count_down();
}

/// The binary tree of `tree` (or `n / 1000` chains 1000 deep), spawned into one scope from this
/// (outside) thread; done when `scope` returns. Instructions per task: callgrind's total divided
/// by N.
fn scope(system: &str, chains: bool, threads: usize, n: usize) -> Result<(), String> {
    let (roots, size) = if chains { (n / 1000, 1000) } else { (1, n) };
    DONE.reset(roots * size);
    let started = Instant::now();
    match system {
        "ours" => {
            let pool = pool_core::ThreadPool::new(threads).map_err(|e| e.to_string())?;
            pool.scope(|s| {
                for _ in 0..roots {
                    s.spawn(move |s| ours_scope_task(s, chains, 0, size));
                }
            });
        }
        "rayon" => {
            let pool = rayon_core::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .map_err(|e| e.to_string())?;
            pool.scope(|s| {
                for _ in 0..roots {
                    s.spawn(move |s| rayon_scope_task(s, chains, 0, size));
                }
            });
        }
        other => return Err(format!("unknown system {other:?} for scope")),
    }
    // The scope has returned, so every task has counted itself down: this cannot wait.
    DONE.wait_or_panic(TIMEOUT, system);
    println!(
        "scope {system}: {} tasks, {:.2} Mtasks/s",
        roots * size,
        (roots * size) as f64 / started.elapsed().as_secs_f64() / 1e6
    );
    Ok(())
}

/// `small-scopes`: `n` scopes of one spawned closure each, one after another, on a worker.
fn small_scopes(system: &str, threads: usize, n: usize) -> Result<(), String> {
    let started = Instant::now();
    match system {
        "ours" => {
            let pool = std::sync::Arc::new(
                pool_core::ThreadPool::new(threads).map_err(|e| e.to_string())?,
            );
            let inner = Arc::clone(&pool);
            let handle = pool
                .submit(move || {
                    let mut ran = 0usize;
                    for _ in 0..n {
                        inner.scope(|s| s.spawn(|_| ran += 1));
                    }
                    ran
                })
                .map_err(|e| e.to_string())?;
            let ran = handle.join().map_err(|e| e.to_string())?;
            assert_eq!(ran, n);
        }
        "rayon" => {
            let pool = rayon_core::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .map_err(|e| e.to_string())?;
            let ran = pool.install(|| {
                let mut ran = 0usize;
                for _ in 0..n {
                    rayon_core::scope(|s| s.spawn(|_| ran += 1));
                }
                ran
            });
            assert_eq!(ran, n);
        }
        other => return Err(format!("unknown system {other:?} for small-scopes")),
    }
    println!(
        "small-scopes {system}: {n} scopes, {:.0} ns/scope",
        started.elapsed().as_nanos() as f64 / n.max(1) as f64
    );
    Ok(())
}

/// Where `scope-chains` runs on our pool: tasks per worker, parks per worker, and the chain
/// hand-overs (a task running on another worker than its parent: a steal, or a head taken from
/// the shared queue). Not for callgrind (one relaxed add per task on a per-worker line).
fn scope_chains_counts(threads: usize, n: usize) -> Result<(), String> {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    thread_local!(static WORKER: Cell<usize> = const { Cell::new(usize::MAX) });
    #[repr(align(128))]
    #[derive(Default)]
    struct PerWorker {
        tasks: AtomicU64,
        parks: AtomicU64,
        moved: AtomicU64,
    }
    fn chain<'scope>(
        s: &pool_core::Scope<'scope>,
        per: &'scope [PerWorker],
        from: usize,
        i: usize,
    ) {
        let me = WORKER.with(Cell::get);
        per[me].tasks.fetch_add(1, Relaxed);
        if me != from {
            per[me].moved.fetch_add(1, Relaxed);
        }
        if i + 1 < 1000 {
            s.spawn(move |s| chain(s, per, me, i + 1));
        }
    }
    let per: Arc<Vec<PerWorker>> = Arc::new((0..threads).map(|_| PerWorker::default()).collect());
    let parks = Arc::clone(&per);
    let pool = pool_core::ThreadPool::builder()
        .threads(threads)
        .on_thread_start(|i| WORKER.with(|w| w.set(i)))
        .on_thread_park(move |i| {
            parks[i].parks.fetch_add(1, Relaxed);
        })
        .build()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    pool.scope(|s| {
        for _ in 0..n / 1000 {
            let per = &per[..];
            s.spawn(move |s| chain(s, per, usize::MAX, 0));
        }
    });
    let elapsed = started.elapsed();
    for (i, w) in per.iter().enumerate() {
        println!(
            "worker {i}: {} tasks, {} parks, {} hand-overs",
            w.tasks.load(Relaxed),
            w.parks.load(Relaxed),
            w.moved.load(Relaxed)
        );
    }
    println!(
        "scope-chains-counts: {n} tasks, {:.2} Mtasks/s",
        n as f64 / elapsed.as_secs_f64() / 1e6
    );
    Ok(())
}

fn dag_build(shape: &str, n: usize, naming: Naming) -> Result<(), String> {
    use benches::workloads::dag;
    let shape = dag_shape(shape, n)?;
    let nodes = shape.len().max(1) as f64;
    if std::env::args().nth(2).as_deref() == Some("none") {
        println!("dag-build: {} nodes, shape only", shape.len());
        return Ok(());
    }
    let started = Instant::now();
    let builder = dag::add(&shape, naming);
    let added = started.elapsed();
    let graph = builder.build().map_err(|e| e.to_string())?;
    let built = started.elapsed();
    println!(
        "dag-build ({naming:?}): {} nodes, add {:.0} + build() {:.0} = {:.0} ns/node",
        graph.len(),
        added.as_nanos() as f64 / nodes,
        (built - added).as_nanos() as f64 / nodes,
        built.as_nanos() as f64 / nodes,
    );
    Ok(())
}

fn dag_shape(shape: &str, n: usize) -> Result<benches::workloads::dag::Shape, String> {
    use benches::workloads::dag;
    Ok(match shape {
        "chain" | "none" => dag::chain(n),
        "wavefront" => dag::wavefront((n as f64).sqrt() as usize),
        "tree" => dag::binary_tree((n + 1).ilog2()),
        "random" => dag::random_dag(n, 0x5eed),
        other => return Err(format!("unknown DAG shape {other:?}")),
    })
}

fn dag_run(shape: &str, n: usize, threads: usize) -> Result<(), String> {
    let shape = dag_shape(shape, n)?;
    let graph = benches::workloads::dag::add_unnamed(&shape)
        .build()
        .map_err(|e| e.to_string())?;
    let pool = pool_core::ThreadPool::new(threads).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let report = graph
        .run_with(&pool, dag_scheduler::RunOptions::new().timing(false))
        .map_err(|e| e.to_string())?;
    let ran = started.elapsed();
    if !report.is_success() {
        return Err("the run failed".to_owned());
    }
    println!(
        "dag-run: {} nodes on {threads} threads, {:.0} ns/node",
        graph.len(),
        ran.as_nanos() as f64 / graph.len().max(1) as f64
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: profile (external|tree|scope|scope-chains|scope-chains-counts|small-scopes|join|priority) SYSTEM [TASKS] [THREADS] | profile paced GAP_NS [TASKS] [THREADS] | profile (dag-build|dag-build-unnamed|dag-build-fmt|dag-shape|dag-run) (chain|wavefront|tree|random|none) [NODES] [THREADS]";
    let (Some(workload), Some(system)) = (args.first(), args.get(1)) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let n = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(cores);
    let result = match workload.as_str() {
        "external" => external(system, threads, n),
        "tree" => tree(system, threads, n),
        "priority" => priority(system, threads, n),
        "paced" => match system.parse() {
            Ok(gap_ns) => paced(gap_ns, threads, n),
            Err(_) => Err(format!(
                "GAP_NS {system:?} is not a whole number of nanoseconds"
            )),
        },
        "scope" => scope(system, false, threads, n),
        "scope-chains" => scope(system, true, threads, n),
        "scope-chains-counts" => scope_chains_counts(threads, n),
        "small-scopes" => small_scopes(system, threads, n),
        "join" => join(system, threads, n),
        "dag-build" => dag_build(system, n, Naming::Format),
        "dag-build-unnamed" => dag_build(system, n, Naming::Unnamed),
        "dag-build-fmt" => dag_build(system, n, Naming::FormatArgs),
        "dag-shape" => dag_shape(system, n).map(|shape| {
            println!("dag-shape: {} nodes, shape only", shape.len());
        }),
        "dag-run" => dag_run(system, n, threads),
        other => Err(format!("unknown workload {other:?}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("profile: {message}\n{usage}");
            ExitCode::from(2)
        }
    }
}
