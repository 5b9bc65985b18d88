//! DOT and Chrome trace exports, pinned with insta snapshots (deterministic: no times in DOT; a
//! fake clock and the inline executor for the trace).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dag_scheduler::{Graph, RunOptions};
use pool_core::InlineExecutor;

fn pipeline() -> Graph {
    let mut b = Graph::builder();
    b.node("fetch", |_| ());
    b.node("compile \"a\"", |_| ()).after("fetch");
    b.try_node("compile b", |_| Err::<(), _>("b.rs:1: expected `;`"))
        .after("fetch");
    b.node("link", |_| ())
        .after("compile \"a\"")
        .after("compile b");
    b.node("docs", |_| ()).after("fetch");
    b.node("report", |_| ())
        .after("link")
        .after("docs")
        .run_even_if_failed();
    b.build().unwrap()
}

/// A clock that advances 1 ms per reading.
fn fake_clock() -> impl Fn() -> Duration + Send + Sync + 'static {
    let ticks = AtomicU64::new(0);
    move || Duration::from_millis(ticks.fetch_add(1, Ordering::Relaxed))
}

#[test]
fn graph_dot() {
    insta::assert_snapshot!("graph_dot", pipeline().to_dot());
}

#[test]
fn report_dot_colours_outcomes() {
    let report = pipeline().run(&InlineExecutor);
    insta::assert_snapshot!("report_dot", report.to_dot());
}

#[test]
fn chrome_trace_with_a_fake_clock() {
    let report = pipeline()
        .run_with(&InlineExecutor, RunOptions::new().clock(fake_clock()))
        .unwrap();
    let trace = report.to_chrome_trace();
    insta::assert_snapshot!("chrome_trace", trace);
    // Well-formed enough for Perfetto: balanced braces and brackets, one event per node that ran.
    assert_eq!(trace.matches('{').count(), trace.matches('}').count());
    assert_eq!(trace.matches('[').count(), trace.matches(']').count());
    assert_eq!(trace.matches("\"ph\":\"X\"").count(), 5);
}

#[test]
fn report_table_with_a_fake_clock() {
    let report = pipeline()
        .run_with(&InlineExecutor, RunOptions::new().clock(fake_clock()))
        .unwrap();
    insta::assert_snapshot!("report_table", report.to_string());
    assert_eq!(report.critical_path(), ["fetch", "docs", "report"]);
}

#[test]
fn untimed_run_has_no_times_and_an_empty_trace() {
    let report = pipeline()
        .run_with(&InlineExecutor, RunOptions::new().timing(false))
        .unwrap();
    assert!(report
        .nodes()
        .all(|n| n.start.is_none() && n.thread.is_none()));
    assert_eq!(
        report.to_chrome_trace(),
        "{\"traceEvents\":[\n],\"displayTimeUnit\":\"ms\"}\n"
    );
    assert_eq!(report.elapsed(), None);
    // Untimed, the critical path is the graph's longest chain.
    assert_eq!(
        report.critical_path(),
        ["fetch", "compile \"a\"", "link", "report"]
    );
}

#[test]
fn timed_run_on_a_pool_has_consistent_times() {
    let pool = pool_core::ThreadPool::new(2).unwrap();
    let report = pipeline().run(&pool);
    let elapsed = report.elapsed().unwrap();
    for node in report.nodes() {
        if let (Some(start), Some(end)) = (node.start, node.end) {
            assert!(
                start <= end && end <= elapsed,
                "{node:?} outside {elapsed:?}"
            );
            assert!(matches!(node.thread, Some(1..=2)));
        }
    }
}
