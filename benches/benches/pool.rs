//! Criterion benches of pool-core's hot paths, for regression tracking (the side-by-side
//! comparison with peer crates is the `compare` program, and `external` for outside submission).
//!
//! ```text
//! cargo bench -p benches --bench pool
//! ```
//!
//! Sample sizes are small so that a run takes seconds on a shared 2-core machine.

use std::hint::black_box;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use benches::latch::Latch;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pool_core::ThreadPool;

const TIMEOUT: Duration = Duration::from_secs(60);

static DONE: Latch = Latch::new();
static GATE: Latch = Latch::new();
static STARTED: Latch = Latch::new();

fn empty() {
    DONE.count_down();
}

fn pool(threads: usize) -> ThreadPool {
    ThreadPool::builder()
        .threads(threads)
        .thread_name("bench")
        .build()
        .expect("a pool")
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Submit + run, fire-and-forget: a batch of empty tasks from this thread until all ran.
fn spawn_run(c: &mut Criterion) {
    let pool = pool(cores());
    let mut group = c.benchmark_group("spawn+run");
    for batch in [1usize, 1_000] {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            b.iter(|| {
                DONE.reset(batch);
                for _ in 0..batch {
                    pool.spawn(empty).expect("running");
                }
                DONE.wait_or_panic(TIMEOUT, "spawn+run");
            })
        });
    }
    group.finish();
    pool.shutdown();
}

/// Submit with a handle, then join it: the round trip of one task.
fn submit_join(c: &mut Criterion) {
    let pool = pool(cores());
    c.bench_function("submit+join", |b| {
        b.iter(|| pool.submit(|| black_box(1)).expect("running").join())
    });
    pool.shutdown();
}

/// Cancel a task that is still queued (its only worker is blocked): the exact-cancel path.
fn cancel_queued(c: &mut Criterion) {
    let pool = pool(1);
    GATE.reset(1);
    STARTED.reset(1);
    pool.spawn(|| {
        STARTED.count_down();
        GATE.wait(TIMEOUT);
    })
    .expect("running");
    STARTED.wait_or_panic(TIMEOUT, "blocking the worker");
    c.bench_function("submit+cancel queued", |b| {
        b.iter(|| {
            let handle = pool.submit(|| ()).expect("running");
            assert!(
                handle.cancel(),
                "the task was queued behind a blocked worker"
            );
        })
    });
    GATE.count_down();
    pool.shutdown();
}

/// Submit-to-start latency once the workers have parked (each sample waits 200 µs untimed).
fn wake_up(c: &mut Criterion) {
    let pool = pool(cores());
    let (tx, rx) = mpsc::channel::<Instant>();
    let mut group = c.benchmark_group("wake-up");
    group.measurement_time(Duration::from_millis(300));
    group.bench_function("after 200µs idle", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                std::thread::sleep(Duration::from_micros(200));
                let tx = tx.clone();
                let submitted = Instant::now();
                pool.spawn(move || {
                    let _ = tx.send(Instant::now());
                })
                .expect("running");
                let started = rx.recv_timeout(TIMEOUT).expect("the task started");
                total += started.duration_since(submitted);
            }
            total
        })
    });
    group.finish();
    pool.shutdown();
}

criterion_group! {
    name = hot_paths;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = spawn_run, submit_join, cancel_queued, wake_up
}
criterion_main!(hot_paths);
