//! The tokio bridge, as a user writes it: pool handles awaited inside a runtime do not block it,
//! and the coalescer and a DAG run on tokio's blocking pool through a five-line `Executor`.

use dag_scheduler::{Graph, Outcome};
use policy_coalesce::Coalescer;
use pool_core::{Executor, ExecutorExt, Job, Rejected, ThreadPool};
use std::time::Duration;

struct TokioBlocking(tokio::runtime::Handle);

impl Executor for TokioBlocking {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        drop(self.0.spawn_blocking(job));
        Ok(())
    }
}

const PATIENCE: Duration = Duration::from_secs(30);

/// On a one-thread runtime, the task that releases the pool's job can only run if awaiting the
/// pool's handle leaves the thread to the runtime.
#[tokio::test(flavor = "current_thread")]
async fn awaiting_a_pool_handle_does_not_block_the_runtime() {
    let pool = ThreadPool::new(1).unwrap();
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let handle = pool
        .submit(move || gate.recv_timeout(PATIENCE).is_ok())
        .unwrap();
    let releaser = tokio::spawn(async move { release.send(()).is_ok() });
    assert_eq!(handle.await, Ok(true), "the runtime was blocked");
    assert!(releaser.await.unwrap());
    pool.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coalescer_and_a_dag_run_on_tokios_blocking_pool() {
    let runtime = tokio::runtime::Handle::current();
    let coalescer = Coalescer::builder(TokioBlocking(runtime.clone()))
        .build()
        .unwrap();
    let handles: Vec<_> = (1..=10u32)
        .map(|i| coalescer.submit("key", move || i).unwrap())
        .collect();
    let mut values = Vec::new();
    for handle in handles {
        values.push(*handle.await.unwrap());
    }
    // Each sharer saw a real execution, and the last submitter's closure ran.
    assert_eq!(values.last(), Some(&10));
    let stats = coalescer.stats();
    assert_eq!(stats.submitted, 10);
    assert!(stats.executed >= 1 && stats.executed <= 10, "{stats}");

    let mut builder = Graph::builder();
    let a = builder.node("a", |_| 1u64).key();
    let b = builder.node("b", |_| 2u64).key();
    builder
        .node("sum", move |cx| cx.get(a).unwrap() + cx.get(b).unwrap())
        .after(a)
        .after(b);
    let report = builder
        .build()
        .unwrap()
        .start(TokioBlocking(runtime.clone()))
        .await;
    assert_eq!(report.outcome("sum"), Some(Outcome::Succeeded));

    // A handle on tokio's blocking pool through ExecutorExt.
    let answer = TokioBlocking(runtime).submit(|| 42).unwrap();
    assert_eq!(answer.await, Ok(42));
}
