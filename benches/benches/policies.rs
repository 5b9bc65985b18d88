//! Criterion benches of the policy crates' hot paths, for regression tracking: a priority queue
//! push and pop, a coalesced submit that merges into a pending execution, and a DAG node's
//! completion releasing its dependent.
//!
//! ```text
//! cargo bench -p benches --bench policies
//! ```
//!
//! Sample sizes are small so that a run takes seconds on a shared 2-core machine.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dag_scheduler::Graph;
use policy_coalesce::Coalescer;
use policy_priority::LevelQueue;
use pool_core::{Executor, InlineExecutor, Job, Priority, Rejected};

/// One push and one pop at a level, on an uncontended queue.
fn priority_push_pop(c: &mut Criterion) {
    let queue = LevelQueue::new();
    let mut group = c.benchmark_group("priority");
    group.throughput(Throughput::Elements(1));
    for level in [Priority::Critical, Priority::Idle] {
        group.bench_function(format!("push+pop {level:?}"), |b| {
            b.iter(|| {
                queue.push(black_box(1u32), level);
                black_box(queue.pop())
            })
        });
    }
    group.finish();
}

/// An executor that keeps jobs and never runs them, so every submit after the first merges into
/// the pending execution: the cost of a merged submit alone.
#[derive(Default)]
struct Parked(std::sync::Mutex<Vec<Job>>);

impl Executor for Parked {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        self.0.lock().unwrap().push(job);
        Ok(())
    }
}

fn coalesced_submit(c: &mut Criterion) {
    let coalescer = Coalescer::<u32, u32, _>::new(Parked::default());
    let mut group = c.benchmark_group("coalesce");
    group.throughput(Throughput::Elements(1));
    group.bench_function("merged submit (spawn, same key)", |b| {
        b.iter(|| coalescer.spawn(black_box(7), Default::default(), || 1).ok())
    });
    group.bench_function("merged submit (handle, same key)", |b| {
        b.iter(|| black_box(coalescer.submit(black_box(7), || 1).ok()))
    });
    group.finish();
}

/// A 1,000-node chain run inline: each completion releases the next node (run in place).
fn dag_node_completion(c: &mut Criterion) {
    let mut builder = Graph::builder();
    let mut previous = builder.node("n0", |_| ()).key();
    for i in 1..1000 {
        previous = builder.node(format!("n{i}"), |_| ()).after(previous).key();
    }
    let graph = builder.build().expect("a chain has no cycle");
    let mut group = c.benchmark_group("dag");
    group.throughput(Throughput::Elements(graph.len() as u64));
    group.bench_function("1k-node chain, inline, per run", |b| {
        b.iter(|| black_box(graph.run(&InlineExecutor)))
    });
    group.finish();
}

criterion_group! {
    name = policies;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = priority_push_pop, coalesced_submit, dag_node_completion
}
criterion_main!(policies);
