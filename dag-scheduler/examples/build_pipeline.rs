//! A small build pipeline: fetch, compile four units, link, test, package docs — with one unit
//! that fails to compile. Prints the report, and writes the graph as DOT and the run as a Chrome
//! trace (open it at https://ui.perfetto.dev).
//!
//! Run with `cargo run -p dag-scheduler --example build_pipeline`.

use std::time::Duration;

use dag_scheduler::{Graph, Outcome};
use pool_core::ThreadPool;

fn work(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut builder = Graph::builder();
    let sources = builder
        .node("fetch", |_| {
            work(20);
            vec!["parser", "lexer", "codegen", "runtime"]
        })
        .key();
    let mut objects = Vec::new();
    for (i, unit) in ["parser", "lexer", "codegen", "runtime"]
        .into_iter()
        .enumerate()
    {
        let key = builder
            .try_node(format!("compile {unit}"), move |cx| {
                let sources = cx.get(sources).ok_or("no sources")?;
                work(10 + 10 * i as u64);
                if unit == "codegen" {
                    return Err(format!("{unit}.rs:42: mismatched types"));
                }
                Ok(format!("{}.o", sources[i]))
            })
            .after(sources)
            .key();
        objects.push(key);
    }
    let binary = builder
        .node("link", move |cx| {
            work(15);
            let objects: Vec<&String> = objects.iter().filter_map(|&o| cx.get(o)).collect();
            format!("app ({} objects)", objects.len())
        })
        .after_all([
            "compile parser",
            "compile lexer",
            "compile codegen",
            "compile runtime",
        ])
        .key();
    builder
        .node("test", move |cx| {
            work(25);
            cx.get(binary).is_some()
        })
        .after(binary);
    builder.node("docs", |_| work(30)).after(sources);
    builder
        .node("summary", |cx| {
            let missing: Vec<&str> = cx.missing_inputs().collect();
            format!("missing: {}", missing.join(", "))
        })
        .after("test")
        .after("docs")
        .run_even_if_failed();
    let graph = builder.build()?;

    let pool = ThreadPool::new(2)?;
    let report = graph.run(&pool);
    println!("{report}\n");

    for node in report.nodes() {
        if let Outcome::Skipped { because } = &node.outcome {
            println!("{} did not run because {because} failed", node.name);
        }
    }

    let dir = std::env::temp_dir();
    let dot = dir.join("build_pipeline.dot");
    let trace = dir.join("build_pipeline.trace.json");
    std::fs::write(&dot, report.to_dot())?;
    std::fs::write(&trace, report.to_chrome_trace())?;
    println!("\nwrote the graph to {} (render: dot -Tsvg)", dot.display());
    println!(
        "wrote the trace to {} (open in ui.perfetto.dev)",
        trace.display()
    );
    Ok(())
}
