//! dag-scheduler: a small build pipeline with one failing unit, on the priority pool; the failure
//! skips only what depends on it. Then a cycle, caught when the graph is built.

use dag_scheduler::{Graph, Outcome};
use policy_priority::priority_pool;
use std::time::Duration;

use crate::section;

pub fn run() {
    section("dag-scheduler: fetch, compile 4 units (one fails), link, test; docs on the side");
    let mut b = Graph::builder();
    let sources = b
        .node("fetch", |_| {
            work(3);
            vec!["core.rs", "net.rs", "ui.rs", "db.rs"]
        })
        .key();
    let mut objects = Vec::new();
    for (i, unit) in ["core", "net", "ui", "db"].into_iter().enumerate() {
        let name = format!("compile {unit}");
        let key = b
            .try_node(name, move |cx| {
                work(2 + i as u64);
                let files = cx.get(sources).ok_or("no sources")?;
                if *unit == *"ui" {
                    return Err(format!("{}: expected `;`", files[i]));
                }
                Ok(format!("{unit}.o"))
            })
            .after(sources)
            .key();
        objects.push(key);
    }
    let link = b
        .node("link", move |cx| {
            work(4);
            objects.iter().filter_map(|o| cx.get(*o)).count()
        })
        .after_all(["compile core", "compile net", "compile ui", "compile db"])
        .key();
    b.node("test", move |cx| cx.get(link).copied()).after(link);
    b.node("docs", |_| work(5)).after("fetch");
    b.node("report failures", |_| "mailed the team")
        .after("compile ui")
        .run_even_if_failed();
    let graph = b.build().expect("the pipeline has no cycle");

    let (pool, _queue) = priority_pool(2).expect("a valid pool");
    let report = graph.run(&pool);
    for node in ["compile ui", "link", "test", "docs", "report failures"] {
        println!("  {node:<16} {}", describe(report.outcome(node)));
    }
    println!("  summary: {:?}", report.summary());
    println!(
        "  critical path of the graph: {}",
        graph.critical_path().join(" -> ")
    );
    let dir = std::env::temp_dir();
    let dot = dir.join("tour-pipeline.dot");
    let trace = dir.join("tour-pipeline.trace.json");
    let written = std::fs::write(&dot, report.to_dot())
        .and_then(|()| std::fs::write(&trace, report.to_chrome_trace()));
    match written {
        Ok(()) => println!(
            "  wrote {} and {} (open in Perfetto)",
            dot.display(),
            trace.display()
        ),
        Err(e) => println!("  could not write the DOT and trace files: {e}"),
    }
    let again = graph.run(&pool);
    println!(
        "  ran the same graph again: same outcomes = {}",
        again.summary() == report.summary()
    );
    pool.shutdown();

    section("dag-scheduler: a cycle is an error naming it, never a hang");
    let mut b = Graph::builder();
    b.node("configure", |_| ()).after("install");
    b.node("build", |_| ()).after("configure");
    b.node("install", |_| ()).after("build");
    match b.build() {
        Err(e) => println!("  build() refused the graph: {e}"),
        Ok(_) => println!("  unexpected: the cycle was accepted"),
    }
}

fn describe(outcome: Option<Outcome>) -> String {
    match outcome {
        Some(o) => format!("{o:?}"),
        None => "not in the report".to_string(),
    }
}

/// Stand-in for compiling: a few milliseconds of work.
fn work(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}
