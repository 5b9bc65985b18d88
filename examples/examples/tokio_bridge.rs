//! The bridge to tokio: await pool handles inside a runtime without blocking it, and run the
//! coalescer and a DAG on tokio's blocking pool through a five-line `Executor`.
//!
//! Run: `cargo run -p examples --example tokio_bridge`.

use dag_scheduler::{Graph, Outcome};
use policy_coalesce::Coalescer;
use pool_core::{Executor, Job, Rejected, ThreadPool};

/// Hands each job to tokio's blocking pool: the whole adapter.
struct TokioBlocking(tokio::runtime::Handle);

impl Executor for TokioBlocking {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        drop(self.0.spawn_blocking(job));
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. A pool-core handle is a plain `Future`: awaiting it parks this task, not the runtime's
    //    only thread, so another task makes progress meanwhile.
    let pool = ThreadPool::new(2)?;
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let render = pool.submit(move || {
        gate.recv().expect("released by the ticker");
        "rendered"
    })?;
    let ticker = tokio::spawn(async move {
        // Runs on the same runtime thread while `main` awaits the pool's handle.
        release.send(()).expect("the render waits");
        "ticked"
    });
    println!("awaited on tokio: {}", render.await?);
    println!("the runtime kept running: {}", ticker.await?);

    // 2. The coalescer on tokio's blocking pool: five searches typed quickly, one execution.
    let blocking = TokioBlocking(tokio::runtime::Handle::current());
    let searches = Coalescer::builder(blocking).build()?;
    let handles: Vec<_> = ["r", "ru", "rus", "rust", "rusty"]
        .into_iter()
        .map(|query| searches.submit("search", move || query.len()))
        .collect::<Result<_, _>>()?;
    for handle in handles {
        // Every sharer gets the latest closure's value (or the earlier one's, if it had
        // already started when a later one came in).
        println!("search result: {}", handle.await?);
    }
    println!("coalescer: {}", searches.stats());

    // 3. A DAG on tokio's blocking pool, awaited.
    let mut builder = Graph::builder();
    let fetch = builder.node("fetch", |_| 20).key();
    builder
        .node("compile", move |cx| cx.get(fetch).copied().unwrap_or(0) + 1)
        .after(fetch);
    let graph = builder.build()?;
    let report = graph
        .start(TokioBlocking(tokio::runtime::Handle::current()))
        .await;
    assert_eq!(report.outcome("compile"), Some(Outcome::Succeeded));
    println!("dag on tokio's blocking pool: {:?}", report.summary());
    pool.shutdown();
    Ok(())
}
