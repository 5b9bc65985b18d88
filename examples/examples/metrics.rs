//! Feeding a pool's statistics into the `metrics` crate: counters for the event totals, gauges for
//! what is queued and running, and one gauge per worker for its busy share.
//!
//! A service installs its exporter (Prometheus, StatsD, ...) as the global recorder; this example
//! uses metrics-util's in-memory recorder so it can print what an exporter would see.
//!
//! Run: `cargo run -p examples --example metrics`.

use metrics::{counter, gauge};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use pool_core::ThreadPool;
use std::time::Duration;

/// Publishes one snapshot. Call it on a timer (every second, say); each call is cheap: the pool
/// sums a few counter blocks and reads the worker registry.
fn publish(pool: &ThreadPool, name: &'static str) {
    let stats = pool.stats();
    // Counters take absolute totals, so a missed tick loses nothing.
    counter!("pool_tasks_submitted_total", "pool" => name).absolute(stats.submitted);
    counter!("pool_tasks_completed_total", "pool" => name).absolute(stats.completed);
    counter!("pool_tasks_panicked_total", "pool" => name).absolute(stats.panicked);
    counter!("pool_tasks_cancelled_total", "pool" => name).absolute(stats.cancelled);
    gauge!("pool_tasks_queued", "pool" => name).set(stats.queued as f64);
    gauge!("pool_tasks_running", "pool" => name).set(stats.running as f64);
    gauge!("pool_threads", "pool" => name).set(stats.live_threads as f64);
    for worker in pool.worker_stats() {
        let share = worker.busy.as_secs_f64() / worker.alive.as_secs_f64().max(f64::EPSILON);
        gauge!("pool_worker_busy_ratio", "pool" => name, "worker" => worker.index.to_string())
            .set(share);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install()?;

    let pool = ThreadPool::builder()
        .threads(2)
        .thread_name("render")
        .build()?;
    for i in 0..1_000u64 {
        pool.spawn(move || {
            std::hint::black_box((0..1_000u64).map(|x| x * i).sum::<u64>());
        })
        .map_err(|_| "the pool refused a task")?;
    }
    // One task panics on purpose, to show the counter move: a one-line report instead of the
    // default hook's (and a backtrace where RUST_BACKTRACE is set).
    std::panic::set_hook(Box::new(|info| {
        eprintln!("a task panicked, as planned: {info}")
    }));
    pool.spawn(|| panic!("one bad render"))
        .map_err(|_| "the pool refused a task")?;
    assert!(pool.wait_idle(Duration::from_secs(30)));
    publish(&pool, "render");

    let mut lines: Vec<String> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let value = match value {
                DebugValue::Counter(v) => v.to_string(),
                DebugValue::Gauge(v) => format!("{:.3}", v.into_inner()),
                DebugValue::Histogram(v) => format!("{} samples", v.len()),
            };
            let labels: Vec<String> = key
                .key()
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            format!("{}{{{}}} {}", key.key().name(), labels.join(","), value)
        })
        .collect();
    lines.sort();
    for line in &lines {
        println!("{line}");
    }
    assert!(lines
        .iter()
        .any(|l| l.starts_with("pool_tasks_completed_total") && l.ends_with(" 1000")));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("pool_tasks_panicked_total") && l.ends_with(" 1")));
    pool.shutdown();
    Ok(())
}
