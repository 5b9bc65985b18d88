//! Graphs whose nodes are remote tasks, run by a worker on a thread of this process over a
//! throwaway SQLite file: outputs flow between nodes through the engine, a remote failure skips
//! only its dependents, the report is dag-scheduler's, bad input is a typed error.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{sqlite_url, Explode, LocalWorker, Nap, Square};
use dag_scheduler::Outcome;
use pool_core::sync::Arc;
use pool_remote::{
    BoxError, RemoteError, RemoteExecutor, RemoteGraph, RemoteGraphError, RemoteTask,
};

/// `a + b`: a node with two inputs.
struct Sum;
impl RemoteTask for Sum {
    const NAME: &'static str = "sum";
    type Args = (u64, u64);
    type Output = u64;
    fn run(&self, (a, b): (u64, u64)) -> Result<u64, BoxError> {
        Ok(a + b)
    }
}

/// Registered by no worker.
struct Nobody;
impl RemoteTask for Nobody {
    const NAME: &'static str = "nobody-knows";
    type Args = ();
    type Output = ();
    fn run(&self, (): ()) -> Result<(), BoxError> {
        Ok(())
    }
}

/// The worker's `square` seen with the wrong output type: its number does not decode as text.
struct SquareAsText;
impl RemoteTask for SquareAsText {
    const NAME: &'static str = "square";
    type Args = u64;
    type Output = String;
    fn run(&self, _: u64) -> Result<String, BoxError> {
        unreachable!("only the worker's `square` runs")
    }
}

struct Cluster {
    _dir: std::path::PathBuf,
    url: String,
    remote: Arc<RemoteExecutor>,
}

/// A fresh backend and an executor with two attempts per task (a panic is tried twice).
fn cluster(test: &str) -> Cluster {
    let (dir, url) = sqlite_url(test);
    let remote = RemoteExecutor::builder(&url)
        .max_attempts(2)
        .poll_interval(Duration::from_millis(5))
        .build()
        .unwrap();
    Cluster {
        _dir: dir,
        url,
        remote: Arc::new(remote),
    }
}

impl Cluster {
    fn worker(&self) -> LocalWorker {
        LocalWorker::start(common::quick_worker(
            &self.url,
            common::registry().register(Sum),
        ))
    }

    fn builder(&self) -> pool_remote::RemoteGraphBuilder {
        RemoteGraph::builder(Arc::clone(&self.remote))
    }
}

/// Runs with a generous deadline: a deadline that cancels is a hang, not an outcome.
fn run(graph: &RemoteGraph) -> pool_remote::RemoteReport {
    let report = graph.run_timeout(Duration::from_secs(120));
    assert!(
        !report.was_cancelled(),
        "the run hit its deadline: {report}"
    );
    report
}

#[test]
fn a_diamond_passes_outputs_through_the_engine() {
    let c = cluster("graph-diamond");
    let mut b = c.builder();
    let top = b.remote::<Square>("top", |_| 3).key();
    let left = b
        .remote::<Square>("left", move |cx| *cx.get(top).unwrap())
        .after(top)
        .key();
    let right = b
        .remote::<Sum>("right", move |cx| (*cx.get(top).unwrap(), 1))
        .after(top)
        .key();
    let bottom = b
        .remote::<Sum>("bottom", move |cx| {
            (*cx.get(left).unwrap(), *cx.get(right).unwrap())
        })
        .after(left)
        .after(right)
        .key();
    // A local node reads a remote output like any other.
    let shown = b
        .node("show", move |cx| format!("{}", cx.get(bottom).unwrap()))
        .after(bottom)
        .key();
    let graph = b.build().unwrap();
    let worker = c.worker();

    let report = run(&graph);
    worker.stop();
    assert!(report.is_success(), "{report}");
    assert_eq!(report.output(top), Some(&9));
    assert_eq!(report.output(left), Some(&81));
    assert_eq!(report.output(right), Some(&10));
    assert_eq!(report.output(bottom), Some(&91));
    assert_eq!(report.output(shown).map(String::as_str), Some("91"));
    assert_eq!(report.failures().count(), 0);
    // Dependents started after their inputs ended.
    let node = |name| report.node(name).unwrap();
    let (start, end) = (|n| node(n).start.unwrap(), |n| node(n).end.unwrap());
    assert!(end("top") <= start("left") && end("top") <= start("right"));
    assert!(end("left") <= start("bottom") && end("right") <= start("bottom"));
    assert!(end("bottom") <= start("show"));
    // Every remote node was one job, and the engine ran each once.
    let stats = c.remote.stats();
    assert_eq!(
        (stats.submitted, stats.completed, stats.outstanding),
        (4, 4, 0)
    );
    assert_eq!(c.remote.backend_counts().unwrap(), [("Done".to_owned(), 4)]);
}

#[test]
fn a_failing_remote_node_skips_only_its_dependents() {
    let c = cluster("graph-failure");
    let mut b = c.builder();
    let root = b.remote::<Square>("root", |_| 2).key();
    b.remote::<Explode>("bad", |_| "planned".to_owned())
        .after(root);
    let child = b.remote::<Square>("child", |_| 1).after("bad").key();
    b.node("grandchild", move |cx| cx.get(child).copied())
        .after(child);
    let sibling = b
        .remote::<Square>("sibling", move |cx| *cx.get(root).unwrap())
        .after(root)
        .key();
    let joined = b
        .remote::<Sum>("joined", move |cx| {
            (*cx.get(root).unwrap(), *cx.get(sibling).unwrap())
        })
        .after(root)
        .after(sibling)
        .key();
    // Runs although a dependency failed, and sees which.
    let cleanup = b
        .node("cleanup", |cx| {
            cx.missing_inputs().collect::<Vec<_>>().join(",")
        })
        .after("bad")
        .after(joined)
        .run_even_if_failed()
        .key();
    let graph = b.build().unwrap();
    let worker = c.worker();

    let report = run(&graph);
    worker.stop();
    let bad = report.outcome("bad").unwrap();
    assert!(
        matches!(&bad, Outcome::Failed(m) if m.contains("panicked") && m.contains("planned")),
        "{bad:?}"
    );
    assert!(matches!(
        report.failure("bad"),
        Some(RemoteGraphError::Remote(RemoteError::Panicked {
            attempts: 2,
            ..
        }))
    ));
    for skipped in ["child", "grandchild"] {
        assert_eq!(
            report.outcome(skipped),
            Some(Outcome::Skipped {
                because: "bad".into()
            }),
            "{skipped}"
        );
    }
    assert_eq!(report.output(sibling), Some(&16));
    assert_eq!(report.output(joined), Some(&20));
    assert_eq!(report.output(cleanup).map(String::as_str), Some("bad"));
    let summary = report.summary();
    assert_eq!(
        (
            summary.succeeded,
            summary.failed,
            summary.skipped,
            summary.cancelled
        ),
        (4, 1, 2, 0)
    );
    assert_eq!(
        report.failures().map(|(n, _)| n).collect::<Vec<_>>(),
        ["bad"]
    );
    // Skipped nodes sent nothing: root, bad, sibling, joined.
    let stats = c.remote.stats();
    assert_eq!((stats.submitted, stats.completed, stats.failed), (4, 3, 1));
}

#[test]
fn the_report_lists_every_node_and_waiters_bound_the_jobs_in_flight() {
    let c = cluster("graph-report");
    // Two waiters, eight independent remote naps: never more than two in flight.
    let mut b = c.builder().waiters(2);
    let naps: Vec<_> = (0..8)
        .map(|i| b.remote::<Nap>(format!("nap {i}"), move |_| (i, 40)).key())
        .collect();
    let total = b
        .node("total", move |cx| {
            naps.iter().map(|k| *cx.get(*k).unwrap()).sum::<u64>()
        })
        .after_all((0..8).map(|i| format!("nap {i}")))
        .key();
    let graph = b.build().unwrap();
    let worker = c.worker();

    let report = run(&graph);
    worker.stop();
    assert_eq!(report.output(total), Some(&(0..8).sum::<u64>()));
    let names: Vec<&str> = report.nodes().map(|n| n.name).collect();
    assert_eq!(names, graph.graph().names().collect::<Vec<_>>());
    assert_eq!(report.len(), 9);
    let trace = report.to_chrome_trace();
    for node in report.nodes() {
        assert!(node.outcome.is_success(), "{node:?}");
        assert!(node.start.unwrap() <= node.end.unwrap(), "{node:?}");
        assert!(
            trace.contains(&format!("\"{}\"", node.name)),
            "{}",
            node.name
        );
    }
    // Waiters: the naps ran on at most two threads, so at most two overlapped.
    let naps: Vec<_> = report
        .nodes()
        .filter(|n| n.name.starts_with("nap"))
        .collect();
    let threads: HashSet<_> = naps.iter().map(|n| n.thread.unwrap()).collect();
    assert!(threads.len() <= 2, "{threads:?}");
    for n in &naps {
        let at = n.start.unwrap();
        let overlapping = naps
            .iter()
            .filter(|m| m.start.unwrap() <= at && at < m.end.unwrap())
            .count();
        assert!(overlapping <= 2, "{overlapping} in flight at {at:?}");
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    let c = cluster("graph-bad-input");
    let mut b = c.builder();
    b.remote::<Nobody>("unknown", |_| ());
    b.node("after unknown", |_| ()).after("unknown");
    b.remote::<SquareAsText>("undecodable", |_| 4);
    b.node("after undecodable", |_| ()).after("undecodable");
    b.remote::<Square>("fine", |_| 5);
    let graph = b.build().unwrap();
    let worker = c.worker();

    let report = run(&graph);
    let worker_report = worker.stop();
    assert_eq!(
        report.failure("unknown"),
        Some(&RemoteGraphError::Remote(RemoteError::UnknownTask {
            name: "nobody-knows".into()
        }))
    );
    assert!(
        matches!(
            report.failure("undecodable"),
            Some(RemoteGraphError::Remote(RemoteError::BadOutput { task, .. })) if task == "square"
        ),
        "{:?}",
        report.failure("undecodable")
    );
    assert_eq!(
        report.outcome("unknown"),
        Some(Outcome::Failed(
            "no worker has a task registered as `nobody-knows`".into()
        ))
    );
    for (node, because) in [
        ("after unknown", "unknown"),
        ("after undecodable", "undecodable"),
    ] {
        assert_eq!(
            report.outcome(node),
            Some(Outcome::Skipped {
                because: because.into()
            })
        );
    }
    assert_eq!(report.outcome("fine"), Some(Outcome::Succeeded));
    // The unknown name was refused at once, not retried.
    assert_eq!(worker_report.refused, 1);

    // Settings and graph shapes the builder refuses.
    let err = c.builder().waiters(0).build().unwrap_err();
    assert!(
        matches!(
            err,
            RemoteGraphError::Build {
                setting: "waiters",
                ..
            }
        ),
        "{err}"
    );
    let mut cyclic = c.builder();
    cyclic.remote::<Square>("a", |_| 1).after("b");
    cyclic.remote::<Square>("b", |_| 1).after("a");
    match cyclic.build().unwrap_err() {
        RemoteGraphError::Graph(e) => assert_eq!(e.to_string(), "cycle: a -> b -> a"),
        other => panic!("{other}"),
    }
    let mut twice = c.builder();
    twice.remote::<Square>("same", |_| 1);
    twice.remote::<Square>("same", |_| 2);
    assert!(matches!(
        twice.build().unwrap_err(),
        RemoteGraphError::Graph(e) if e.is_duplicate_name()
    ));
}

#[test]
fn a_run_without_workers_ends_at_its_deadline_and_cancels_its_jobs() {
    let c = cluster("graph-deadline");
    let mut b = c.builder();
    let first = b.remote::<Square>("first", |_| 1).key();
    b.remote::<Square>("second", move |cx| *cx.get(first).unwrap())
        .after(first);
    let graph = Arc::new(b.build().unwrap());

    // No worker: the deadline is what ends the run (test_kit's patience catches a hang).
    let g = Arc::clone(&graph);
    let report = test_kit::within_patience(move || g.run_timeout(Duration::from_millis(300)))
        .expect("the run ended after its deadline");
    assert!(report.was_cancelled());
    assert_eq!(
        report.failure("first"),
        Some(&RemoteGraphError::Remote(RemoteError::Cancelled {
            task: "square".into()
        }))
    );
    assert_eq!(report.outcome("second"), Some(Outcome::Cancelled));
    // Its job was cancelled in the backend (status Killed), not left to run later.
    let stats = c.remote.stats();
    assert_eq!((stats.submitted, stats.cancelled), (1, 1));
    assert_eq!(
        c.remote.backend_counts().unwrap(),
        [("Killed".to_owned(), 1)]
    );

    // The same graph runs again, now with a worker.
    let worker = c.worker();
    let report = run(&graph);
    worker.stop();
    assert!(report.is_success(), "{report}");
    assert_eq!(report.failures().count(), 0);
}
