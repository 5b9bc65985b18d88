//! A second harness for the two outside-submission figures `compare` reports: external submit
//! against the classic pools, and the priority pool's Normal level against our FIFO pool.
//!
//! ```text
//! cargo bench -p benches --bench external
//! ```
//!
//! It shares nothing with `compare` but the count-down latch, so that a figure seen in both is
//! not an artefact of either:
//! - each pool's own API is called directly (`compare` goes through its `Pool` enum, one
//!   `match` per submission), and the priority pool through `PrioritySubmit::spawn_at`, the
//!   call users make (`compare` uses `spawn_with_priority`);
//! - criterion picks how many rounds make a sample (the same number for every sample: flat
//!   sampling, for rounds this long) and reports a mean with its confidence interval
//!   (`compare` reports the median of a fixed number of rounds);
//! - a round is 1M empty tasks, as in `compare` and in the issue that set the targets, and
//!   every round builds a fresh pool, whose start and join stay outside the timed span.
//!
//! Read the ratios from criterion's throughput lines (`thrpt: [low mean high]`): ours over the
//! best classic pool for "external submit", and Normal over FIFO for "priority".

use std::time::{Duration, Instant};

use benches::latch::Latch;
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode,
    Throughput,
};
use policy_priority::{priority_pool, PrioritySubmit};
use pool_core::{Priority, ThreadPool};

/// Empty tasks per round.
const TASKS: usize = 1_000_000;
const TIMEOUT: Duration = Duration::from_secs(120);

/// Counts the round's tasks; the closures stay zero-sized, so boxing them does not allocate.
static DONE: Latch = Latch::new();

fn empty() {
    DONE.count_down();
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Times `rounds` rounds: each builds a pool (untimed), submits [`TASKS`] empty tasks from this
/// thread and waits until all ran (timed), then joins the pool (untimed).
fn timed_rounds<P>(
    rounds: u64,
    build: impl Fn() -> P,
    submit: impl Fn(&P),
    join: impl Fn(P),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..rounds {
        let pool = build();
        DONE.reset(TASKS);
        let start = Instant::now();
        for _ in 0..TASKS {
            submit(&pool);
        }
        DONE.wait_or_panic(TIMEOUT, "a round of empty tasks");
        total += start.elapsed();
        join(pool);
    }
    total
}

fn our_fifo_pool(threads: usize) -> ThreadPool {
    ThreadPool::builder()
        .threads(threads)
        .thread_name("ext-ours")
        .build()
        .expect("pool-core pool")
}

/// A group of rounds of [`TASKS`] tasks, throughput in tasks, sampled flat (each round takes
/// tens of milliseconds, so criterion's growing sample sizes would take minutes).
fn tasks_group<'c>(c: &'c mut Criterion, name: &str) -> BenchmarkGroup<'c, WallTime> {
    let mut group = c.benchmark_group(format!("{name} ({} threads)", threads()));
    group.throughput(Throughput::Elements(TASKS as u64));
    group.sampling_mode(SamplingMode::Flat);
    group
}

/// Our FIFO pool fed from this thread: ours in the first group, the reference in the second.
fn our_fifo(group: &mut BenchmarkGroup<'_, WallTime>, label: &str) {
    let threads = threads();
    group.bench_function(BenchmarkId::from_parameter(label), |b| {
        b.iter_custom(|rounds| {
            timed_rounds(
                rounds,
                || our_fifo_pool(threads),
                |pool| pool.spawn(empty).expect("running"),
                |pool| pool.shutdown(),
            )
        })
    });
}

/// Our pool, rusty_pool and threadpool, each fed from this thread.
fn external_submit(c: &mut Criterion) {
    let threads = threads();
    let mut group = tasks_group(c, "external submit");
    our_fifo(&mut group, "pool-core spawn");
    group.bench_function(BenchmarkId::from_parameter("rusty_pool execute"), |b| {
        b.iter_custom(|rounds| {
            timed_rounds(
                rounds,
                || {
                    rusty_pool::ThreadPool::new_named(
                        "ext-rusty".into(),
                        threads,
                        threads,
                        Duration::from_secs(60),
                    )
                },
                |pool| pool.execute(empty),
                rusty_pool::ThreadPool::shutdown_join,
            )
        })
    });
    group.bench_function(BenchmarkId::from_parameter("threadpool execute"), |b| {
        b.iter_custom(|rounds| {
            timed_rounds(
                rounds,
                || threadpool::ThreadPool::with_name("ext-tpool".into(), threads),
                |pool| pool.execute(empty),
                |pool| pool.join(),
            )
        })
    });
    group.finish();
}

/// The priority pool at its default level, beside our FIFO pool with as many threads.
fn priority_against_fifo(c: &mut Criterion) {
    let threads = threads();
    let mut group = tasks_group(c, "priority");
    our_fifo(&mut group, "pool-core FIFO");
    group.bench_function(BenchmarkId::from_parameter("policy-priority Normal"), |b| {
        b.iter_custom(|rounds| {
            timed_rounds(
                rounds,
                || priority_pool(threads).expect("priority pool").0,
                |pool| pool.spawn_at(Priority::Normal, empty).expect("running"),
                |pool| pool.shutdown(),
            )
        })
    });
    group.finish();
}

criterion_group! {
    name = outside_submission;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = external_submit, priority_against_fifo
}
criterion_main!(outside_submission);
