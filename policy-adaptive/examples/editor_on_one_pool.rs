//! One adaptive priority pool for an editor: renders coalesced per document at High, indexing at
//! Idle, a build graph, and a Critical save that overtakes the indexing backlog. The controller
//! grows the pool while the indexing blocks on (simulated) disk reads, and gives the threads back
//! when the work is done.
//!
//! Run with `cargo run -p policy-adaptive --example editor_on_one_pool`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dag_scheduler::Graph;
use policy_adaptive::AdaptivePool;
use policy_coalesce::{Coalescer, SubmitOptions};
use policy_priority::PriorityQueue;
use pool_core::{Priority, TaskOptions, ThreadPool};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let queue = PriorityQueue::new();
    let pool = Arc::new(
        AdaptivePool::builder()
            .pool(
                ThreadPool::builder()
                    .queue_policy(queue.clone())
                    .thread_name("editor"),
            )
            .min(1)
            .max(32)
            .keep_alive(Duration::from_millis(500))
            .build()?,
    );
    let started = Instant::now();

    // Indexing: 300 files, each a 5 ms disk read, at Idle.
    let indexed = Arc::new(AtomicUsize::new(0));
    let indexing: Vec<_> = (0..300)
        .map(|_| {
            let indexed = indexed.clone();
            pool.submit_with(TaskOptions::new().priority(Priority::Idle), move || {
                std::thread::sleep(Duration::from_millis(5));
                indexed.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect::<Result<_, _>>()
        .map_err(|_| "pool shut down")?;

    // A save at Critical, behind the indexing backlog.
    let save = pool
        .submit_with(TaskOptions::new().priority(Priority::Critical), {
            let indexed = indexed.clone();
            move || indexed.load(Ordering::Relaxed)
        })
        .map_err(|_| "pool shut down")?;
    let indexed_before_save = save.join()?;
    println!(
        "save ran after {indexed_before_save} of 300 indexing tasks, {:.1?} in",
        started.elapsed()
    );

    // Typing: every keystroke asks for a render of the document; only the latest text matters.
    let renders = Coalescer::<&str, String, _>::builder(pool.clone()).build()?;
    let high = SubmitOptions::new().priority(Priority::High);
    let text = "fn main() { println!(\"hello\"); }";
    let handles: Vec<_> = (1..=text.len())
        .map(|n| {
            let typed = text[..n].to_owned();
            renders.submit_with("main.rs", high, move || {
                std::thread::sleep(Duration::from_millis(2));
                format!("<pre>{typed}</pre>")
            })
        })
        .collect::<Result<_, _>>()
        .map_err(|_| "pool shut down")?;
    let mut last = String::new();
    for handle in handles {
        last = (*handle.join()?).clone();
    }
    let stats = renders.stats();
    println!(
        "{} keystrokes, {} renders ran ({} superseded); last: {last}",
        text.len(),
        stats.executed,
        stats.superseded
    );

    // A build graph on the same pool.
    let mut builder = Graph::builder();
    let fetch = builder.node("fetch", |_| 3usize).key();
    for unit in ["lexer", "parser", "codegen"] {
        builder
            .node(unit, move |cx| {
                std::thread::sleep(Duration::from_millis(10));
                cx.get(fetch).copied().unwrap_or(0)
            })
            .after(fetch);
    }
    builder
        .node("link", |_| ())
        .after_all(["lexer", "parser", "codegen"]);
    builder.node("test", |_| ()).after("link");
    let report = builder.build()?.run(&*pool);
    println!(
        "build graph: {:?}, critical path {:?}",
        report.summary(),
        report.critical_path()
    );

    for handle in indexing {
        handle.join()?;
    }
    let peak = pool.history().iter().map(|e| e.to).max().unwrap_or(1);
    println!(
        "indexing done: {} files; peak {peak} threads, {} early decisions of {} ticks",
        indexed.load(Ordering::Relaxed),
        pool.early_ticks(),
        pool.ticks()
    );
    println!("per level: {}", queue.stats());

    // Idle: the workers above `min` retire after the keep-alive.
    let idle = Instant::now();
    while pool.stats().live_threads > 1 && idle.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "{} thread(s) {:.1?} after the work ended",
        pool.stats().live_threads,
        idle.elapsed()
    );
    drop(renders);
    pool.shutdown();
    println!("{}", pool.stats());
    Ok(())
}
