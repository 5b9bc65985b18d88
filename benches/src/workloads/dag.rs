//! Workload rows for `dag`: empty-node graphs of four shapes run by dag-scheduler on the
//! pool-core pool, by dagrs 0.9 on tokio, and by a hand-made rayon-core scope version.
//!
//! The same graph also runs on every peer pool of the peer layer ([`crate::peers::Pool`], an
//! `Executor`): `graph.run(&executor)` takes any executor, and those figures show what the plug
//! point costs on another runtime's threads. Figures are nanoseconds per node for the run alone
//! (lower is better); graph build times are in each row's note. Every system uses
//! `config.cores` threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dag_scheduler::{Graph, GraphBuilder, NodeKey, RunOptions};
use pool_core::ThreadPool;

use crate::peers::{self, Kind, Pool};
use crate::{Config, Figure, Measurement, Row};

/// A graph shape as predecessor lists (every predecessor has a smaller index).
#[derive(Debug)]
pub struct Shape {
    /// Display name.
    pub name: String,
    /// `preds[i]`: the nodes node `i` depends on.
    pub preds: Vec<Vec<u32>>,
}

impl Shape {
    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.preds.len()
    }

    /// Whether the shape has no nodes.
    pub fn is_empty(&self) -> bool {
        self.preds.is_empty()
    }

    /// Number of edges.
    pub fn edges(&self) -> usize {
        self.preds.iter().map(Vec::len).sum()
    }
}

/// A chain of `n` nodes.
pub fn chain(n: usize) -> Shape {
    Shape {
        name: format!("{n}-node chain"),
        preds: (0..n as u32)
            .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
            .collect(),
    }
}

/// A `side` x `side` grid where each cell depends on its upper and left neighbours.
pub fn wavefront(side: usize) -> Shape {
    let at = |r: usize, c: usize| (r * side + c) as u32;
    let mut preds = Vec::with_capacity(side * side);
    for r in 0..side {
        for c in 0..side {
            let mut p = Vec::new();
            if r > 0 {
                p.push(at(r - 1, c));
            }
            if c > 0 {
                p.push(at(r, c - 1));
            }
            preds.push(p);
        }
    }
    Shape {
        name: format!("{side}x{side} wavefront"),
        preds,
    }
}

/// A binary fan-out tree with `levels` levels (2^levels - 1 nodes): each node depends on its
/// parent.
pub fn binary_tree(levels: u32) -> Shape {
    let n = (1usize << levels) - 1;
    Shape {
        name: format!("binary tree, depth {levels}"),
        preds: (0..n)
            .map(|i| {
                if i == 0 {
                    vec![]
                } else {
                    vec![((i - 1) / 2) as u32]
                }
            })
            .collect(),
    }
}

/// A random DAG of `n` nodes: each depends on 0-3 nodes among the previous 64 (seeded).
pub fn random_dag(n: usize, seed: u64) -> Shape {
    let mut state = seed.max(1);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let preds = (0..n)
        .map(|i| {
            let k = (next() % 4) as usize;
            let mut p: Vec<u32> = (0..k.min(i))
                .map(|_| (i - 1 - (next() as usize % i.min(64))) as u32)
                .collect();
            p.sort_unstable();
            p.dedup();
            p
        })
        .collect();
    Shape {
        name: format!("random DAG, {n} nodes"),
        preds,
    }
}

/// How [`add`] names the nodes (all are added with `node(..).after(key)`, as a user would).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Naming {
    /// `node(format!("n{i}"), ..)` on `Graph::builder()`: what a user who writes the obvious
    /// code pays (a `String` allocated, grown and freed per node).
    Format,
    /// `node(format_args!("n{i}"), ..)` on `GraphBuilder::with_capacity(n)`: the name is
    /// written straight into the builder, no array regrows (the documented fast path).
    FormatArgs,
    /// `unnamed_node(..)` on `Graph::builder()`: no name at all; errors and reports show
    /// `#index`.
    Unnamed,
}

/// Adds the shape's empty nodes, named as `naming` says, with `after(key)` for every edge.
pub fn add(shape: &Shape, naming: Naming) -> GraphBuilder {
    let mut builder = match naming {
        Naming::FormatArgs => GraphBuilder::with_capacity(shape.len()),
        Naming::Format | Naming::Unnamed => Graph::builder(),
    };
    let mut keys: Vec<NodeKey<()>> = Vec::with_capacity(shape.len());
    for (i, preds) in shape.preds.iter().enumerate() {
        let node = match naming {
            Naming::Format => builder.node(format!("n{i}"), |_| ()),
            Naming::FormatArgs => builder.node(format_args!("n{i}"), |_| ()),
            Naming::Unnamed => builder.unnamed_node(|_| ()),
        };
        keys.push(
            node.after_all(preds.iter().map(|&p| keys[p as usize]))
                .key(),
        );
    }
    builder
}

/// Adds the shape's nodes as a user would: named empty nodes, `node(format!(..)).after(..)`
/// with keys.
pub fn add_ours(shape: &Shape) -> GraphBuilder {
    add(shape, Naming::Format)
}

/// Adds the shape's nodes without names (`unnamed_node(..).after(..)` with keys): what a user
/// who never looks a node up by name pays. Errors and reports show such a node as `#index`.
pub fn add_unnamed(shape: &Shape) -> GraphBuilder {
    add(shape, Naming::Unnamed)
}

/// Builds the shape with dag-scheduler: [`add_ours`], then `build()`.
pub fn build_ours(shape: &Shape) -> Graph {
    add_ours(shape)
        .build()
        .expect("benchmark shapes are acyclic")
}

/// Runs the shape once with a hand-made rayon-core scope: per-node atomic counters, one spawn
/// per ready node. Returns the run time.
pub fn run_rayon(
    pool: &rayon_core::ThreadPool,
    succs: &[Vec<u32>],
    indegree: &[usize],
) -> Duration {
    let counters: Vec<AtomicUsize> = indegree.iter().map(|&d| AtomicUsize::new(d)).collect();
    let done = AtomicUsize::new(0);
    let start = Instant::now();
    fn visit<'s>(
        s: &rayon_core::Scope<'s>,
        node: usize,
        succs: &'s [Vec<u32>],
        counters: &'s [AtomicUsize],
        done: &'s AtomicUsize,
    ) {
        std::hint::black_box(node);
        done.fetch_add(0, Ordering::Relaxed);
        for &succ in &succs[node] {
            if counters[succ as usize].fetch_sub(1, Ordering::AcqRel) == 1 {
                s.spawn(move |s| visit(s, succ as usize, succs, counters, done));
            }
        }
    }
    pool.scope(|s| {
        for (i, &d) in indegree.iter().enumerate() {
            if d == 0 {
                let (succs, counters, done) = (succs, &counters[..], &done);
                s.spawn(move |s| visit(s, i, succs, counters, done));
            }
        }
    });
    start.elapsed()
}

fn rayon_inputs(shape: &Shape) -> (Vec<Vec<u32>>, Vec<usize>) {
    let mut succs = vec![Vec::new(); shape.len()];
    for (i, preds) in shape.preds.iter().enumerate() {
        for &p in preds {
            succs[p as usize].push(i as u32);
        }
    }
    let indegree = shape.preds.iter().map(Vec::len).collect();
    (succs, indegree)
}

mod dagrs_peer {
    use super::Shape;
    use dagrs::{
        async_trait::async_trait, Action, DefaultNode, EnvVar, Graph, InChannels, Node, NodeTable,
        OutChannels, Output,
    };
    use std::sync::Arc;

    struct Noop;

    #[async_trait]
    impl Action for Noop {
        async fn run(&self, _: &mut InChannels, _: &mut OutChannels, _: Arc<EnvVar>) -> Output {
            Output::empty()
        }
    }

    /// The shape as a dagrs graph of no-op actions.
    pub fn build(shape: &Shape) -> Graph {
        let mut table = NodeTable::default();
        let nodes: Vec<_> = (0..shape.len())
            .map(|i| DefaultNode::with_action(format!("n{i}"), Noop, &mut table))
            .collect();
        let ids: Vec<_> = nodes.iter().map(|node| node.id()).collect();
        let mut graph = Graph::new();
        for node in nodes {
            graph.add_node(node).expect("unique nodes");
        }
        for (i, preds) in shape.preds.iter().enumerate() {
            for &p in preds {
                graph
                    .add_edge(ids[p as usize], [ids[i]])
                    .expect("existing nodes");
            }
        }
        graph.set_env(EnvVar::new(table));
        graph
    }

    /// Runs a built graph on the runtime.
    pub fn run(runtime: &dagrs::tokio::runtime::Runtime, graph: &mut Graph) -> bool {
        runtime.block_on(async { graph.async_start().await.is_ok() })
    }
}

fn ns_per_node(d: Duration, nodes: usize) -> f64 {
    d.as_nanos() as f64 / nodes.max(1) as f64
}

fn measurement(system: &str, ours: bool, rounds: &[f64]) -> Option<Measurement> {
    Figure::from_rounds(rounds).map(|figure| Measurement {
        system: system.to_owned(),
        ours,
        figure,
    })
}

/// The tokio runtime dagrs runs on, with `cores` workers.
fn tokio_runtime(cores: usize) -> dagrs::tokio::runtime::Runtime {
    dagrs::tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The hand-made rayon scope, `rounds` times: ns/node of the run alone, and of making its
/// successor lists plus the run (what it pays to "build" its graph).
fn rayon_rounds(cores: usize, shape: &Shape, rounds: usize) -> (Vec<f64>, Vec<f64>) {
    let pool = peers::rayon_pool(cores, "dag-scope-");
    let (mut run, mut both) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        let (succs, indegree) = rayon_inputs(shape);
        let prepared = t.elapsed();
        let ran = run_rayon(&pool, &succs, &indegree);
        run.push(ns_per_node(ran, shape.len()));
        both.push(ns_per_node(prepared + ran, shape.len()));
    }
    (run, both)
}

/// dagrs, `rounds` times (a dagrs graph is consumed by its run, its channels close: one build
/// per round): ns/node of the run alone and of build plus run, and the last build's time.
fn dagrs_rounds(cores: usize, shape: &Shape, rounds: usize) -> (Vec<f64>, Vec<f64>, Duration) {
    let runtime = tokio_runtime(cores);
    let (mut run, mut both, mut build) = (Vec::new(), Vec::new(), Duration::ZERO);
    for _ in 0..rounds {
        let t = Instant::now();
        let mut graph = dagrs_peer::build(shape);
        build = t.elapsed();
        let t = Instant::now();
        assert!(dagrs_peer::run(&runtime, &mut graph), "dagrs run failed");
        let ran = t.elapsed();
        run.push(ns_per_node(ran, shape.len()));
        both.push(ns_per_node(build + ran, shape.len()));
    }
    (run, both, build)
}

/// Measures one shape on every system; `dagrs_shape` is the (possibly smaller) shape given to
/// dagrs.
fn row(config: &Config, shape: &Shape, dagrs_shape: &Shape) -> Row {
    let rounds = config.rounds.max(1);
    let pool = ThreadPool::new(config.cores).expect("pool");
    let built = Instant::now();
    let graph = build_ours(shape);
    let build_time = built.elapsed();

    let mut untimed = Vec::new();
    let mut timed = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let report = graph
            .run_with(&pool, RunOptions::new().timing(false))
            .expect("no marks");
        untimed.push(ns_per_node(t.elapsed(), shape.len()));
        assert_eq!(report.summary().succeeded, shape.len());
        drop(report);
        let t = Instant::now();
        let report = graph.run(&pool);
        timed.push(ns_per_node(t.elapsed(), shape.len()));
        assert!(report.is_success());
    }
    drop(pool);
    // Our graph on each peer's threads, through the peer layer's `Executor` impl. rayon's
    // worker deques are LIFO (pool-core's are FIFO), which keeps fan-out graphs depth-first and
    // cache-warm; the others take jobs from one shared queue.
    let on_peers: Vec<(Kind, Vec<f64>)> = Kind::ALL
        .into_iter()
        .filter(|kind| !kind.is_ours())
        .map(|kind| {
            let peer = Pool::build(kind, config.cores, &format!("dag-{}-", kind.tag()));
            let figures = (0..rounds)
                .map(|_| {
                    let t = Instant::now();
                    let report = graph
                        .run_with(&peer, RunOptions::new().timing(false))
                        .expect("no marks");
                    let elapsed = t.elapsed();
                    assert!(report.is_success(), "{}", kind.name());
                    ns_per_node(elapsed, shape.len())
                })
                .collect();
            peer.close();
            (kind, figures)
        })
        .collect();
    drop(graph);

    let (rayon, _) = rayon_rounds(config.cores, shape, rounds);
    let (dagrs, _, dagrs_build) = dagrs_rounds(config.cores, dagrs_shape, rounds);

    let mut note = format!(
        "{} nodes, {} edges; build {:.1} ms ({:.0} ns/node); {TARGETS}; ours run untimed on a \
         pool-core ThreadPool unless named (timing on: two clock reads per node, ~0.5 us each \
         in this sandbox; on a peer's threads: through the peer layer's Executor impl)",
        shape.len(),
        shape.edges(),
        build_time.as_secs_f64() * 1e3,
        ns_per_node(build_time, shape.len()),
    );
    if dagrs_shape.len() != shape.len() {
        note.push_str(&format!(
            "; dagrs on the smaller {} (1M nodes take too long), build {:.1} ms",
            dagrs_shape.name,
            dagrs_build.as_secs_f64() * 1e3
        ));
    } else {
        note.push_str(&format!(
            "; dagrs build {:.1} ms",
            dagrs_build.as_secs_f64() * 1e3
        ));
    }
    Row {
        workload: workload_name(shape),
        unit: "ns/node".to_owned(),
        higher_is_better: false,
        measurements: [
            measurement("dag-scheduler", true, &untimed),
            measurement("dag-scheduler (timing on)", true, &timed),
        ]
        .into_iter()
        .chain(on_peers.iter().map(|(kind, figures)| {
            measurement(
                &format!("dag-scheduler on {} threads", peer_label(*kind)),
                true,
                figures,
            )
        }))
        .chain([
            measurement("dagrs 0.9 (tokio)", false, &dagrs),
            measurement("rayon-core scope (hand-made)", false, &rayon),
        ])
        .flatten()
        .collect(),
        note,
    }
}

/// A peer's name in the "dag-scheduler on … threads" figures.
fn peer_label(kind: Kind) -> &'static str {
    match kind {
        Kind::Ours => "pool-core",
        Kind::Rayon => "rayon-core",
        Kind::Threadpool => "threadpool",
        Kind::TokioBlocking => "tokio blocking-pool",
        Kind::RustyPool => "rusty_pool",
    }
}

fn workload_name(shape: &Shape) -> String {
    format!("DAG: {}, empty nodes", shape.name)
}

fn build_workload_name(shape: &Shape) -> String {
    format!("DAG build + one run: {}, empty nodes", shape.name)
}

fn parts_workload_name(shape: &Shape) -> String {
    format!("DAG build, run, reuse: {}, empty nodes", shape.name)
}

/// What a user who builds a graph and runs it once pays, per node, in two rows:
///
/// - `DAG build + one run`: our build plus one run beside dagrs (build + run) and the hand-made
///   rayon scope (its successor lists + run). Only like is compared with like, so the ratio
///   column is build + run against the peers' build + run.
/// - `DAG build, run, reuse` (ours alone, no ratio): the parts of our figure, build and run, and
///   the reuse pattern (one build, 100 runs, per node per run) that makes the build cost vanish.
///
/// The note gives the heap bytes per node of the built graph and of one run's state.
fn build_rows(config: &Config, shape: &Shape, dagrs_shape: &Shape) -> Vec<Row> {
    let rounds = config.rounds.max(1);
    let nodes = shape.len();
    let pool = ThreadPool::new(config.cores).expect("pool");
    let untimed = || RunOptions::new().timing(false);
    let (mut build, mut run, mut both) = (Vec::new(), Vec::new(), Vec::new());
    let (mut build_unnamed, mut build_fmt) = (Vec::new(), Vec::new());
    // Add + build() alone, ns/node (the graph is dropped after the clock stops).
    let time_build = |naming| {
        let t = Instant::now();
        let graph = add(shape, naming)
            .build()
            .expect("benchmark shapes are acyclic");
        let ns = ns_per_node(t.elapsed(), nodes);
        drop(graph);
        ns
    };
    for _ in 0..rounds {
        build_unnamed.push(time_build(Naming::Unnamed));
        build_fmt.push(time_build(Naming::FormatArgs));
        let t = Instant::now();
        let graph = build_ours(shape);
        let built = t.elapsed();
        let t = Instant::now();
        let report = graph.run_with(&pool, untimed()).expect("no marks");
        let ran = t.elapsed();
        assert!(report.is_success());
        build.push(ns_per_node(built, nodes));
        run.push(ns_per_node(ran, nodes));
        both.push(ns_per_node(built + ran, nodes));
    }
    // Per run state: the first report is kept while the second run is measured, so neither
    // reuses the state array a finished run gives back to its graph. The heap count is
    // process-wide, and a run's last job (holding the run) is freed on a worker after the
    // waiting caller has its report: each measurement starts once the workers are parked, or
    // an earlier run's state freed meanwhile is subtracted from it (the random DAG read
    // "net negative").
    let settle = || assert!(pool.wait_idle(Duration::from_secs(60)), "pool never idle");
    settle();
    let (graph_bytes, graph) = crate::heap::measure(|| build_ours(shape));
    let (untimed_bytes, first) = crate::heap::measure(|| {
        let report = graph.run_with(&pool, untimed()).expect("no marks");
        settle();
        report
    });
    let (timed_bytes, second) = crate::heap::measure(|| {
        let report = graph.run(&pool);
        settle();
        report
    });
    drop((first, second));
    drop(graph);
    // The reuse pattern: build once, run many times.
    let reuse = config.pick(100, 10);
    let t = Instant::now();
    let graph = build_ours(shape);
    for _ in 0..reuse {
        let report = graph.run_with(&pool, untimed()).expect("no marks");
        assert!(report.is_success());
    }
    let reused = ns_per_node(t.elapsed(), nodes * reuse);
    drop(graph);
    drop(pool);

    let (_, rayon) = rayon_rounds(config.cores, shape, rounds);
    let (_, dagrs, _) = dagrs_rounds(config.cores, dagrs_shape, rounds);

    let per_node = |bytes: isize| {
        if bytes >= 0 {
            format!("{:.0} B/node", bytes as f64 / nodes as f64)
        } else {
            // Net heap: a run that frees more than it allocates hides its own share.
            "not measurable (net negative)".to_owned()
        }
    };
    let mut note = format!(
        "{nodes} nodes; built graph {}, one run's state {} untimed, {} timed (net heap, report \
         included); targets: build <= 150 ns/node, graph <= 120 B/node, run state <= 40 B/node",
        per_node(graph_bytes),
        per_node(untimed_bytes),
        per_node(timed_bytes),
    );
    if dagrs_shape.len() != nodes {
        note.push_str(&format!("; dagrs on the smaller {}", dagrs_shape.name));
    }
    let whole = Row {
        workload: build_workload_name(shape),
        unit: "ns/node".to_owned(),
        higher_is_better: false,
        measurements: [
            measurement("dag-scheduler build + run", true, &both),
            measurement("dagrs 0.9 build + run (tokio)", false, &dagrs),
            measurement("rayon-core scope: successor lists + run", false, &rayon),
        ]
        .into_iter()
        .flatten()
        .collect(),
        note,
    };
    let parts = Row {
        workload: parts_workload_name(shape),
        unit: "ns/node".to_owned(),
        higher_is_better: false,
        measurements: [
            measurement("dag-scheduler build (add nodes + build())", true, &build),
            measurement(
                "dag-scheduler build, named with format_args! on with_capacity",
                true,
                &build_fmt,
            ),
            measurement(
                "dag-scheduler build, unnamed nodes (add + build())",
                true,
                &build_unnamed,
            ),
            measurement("dag-scheduler run (untimed)", true, &run),
            measurement(
                &format!("dag-scheduler reused: one build, {reuse} runs, per run"),
                true,
                &[reused],
            ),
        ]
        .into_iter()
        .flatten()
        .collect(),
        note: "ours alone (no ratio): the parts of the build + one run row above (named with \
               format!(\"n{i}\") on Graph::builder(), as before), the same build named with \
               format_args! on GraphBuilder::with_capacity (no String per node) or unnamed, and \
               the reuse pattern (Graph docs: build once, run many times)"
            .to_owned(),
    };
    vec![whole, parts]
}

/// SPEC section 9, the same for every shape.
const TARGETS: &str =
    "targets: run <= rayon-core scope (hand-made) and Taskflow's figures, build <= 150 ns/node";

/// The rows of this workload family.
pub fn rows(config: &Config) -> Vec<Row> {
    let pick = |full: usize, quick: usize| config.pick(full, quick);
    let shapes = [
        (chain(pick(1_000_000, 10_000)), chain(pick(20_000, 2_000))),
        (wavefront(pick(1000, 100)), wavefront(pick(100, 30))),
        (
            binary_tree(pick(20, 12) as u32),
            binary_tree(pick(14, 10) as u32),
        ),
        (
            random_dag(pick(1_000_000, 10_000), 0x5eed),
            random_dag(pick(20_000, 2_000), 0x5eed),
        ),
    ];
    let mut rows: Vec<Row> = shapes
        .iter()
        .filter(|(shape, _)| config.wants(&workload_name(shape)))
        .map(|(shape, small)| row(config, shape, small))
        .collect();
    rows.extend(
        shapes
            .iter()
            .filter(|(shape, _)| {
                config.wants(&build_workload_name(shape))
                    || config.wants(&parts_workload_name(shape))
            })
            .flat_map(|(shape, small)| build_rows(config, shape, small)),
    );
    rows
}
