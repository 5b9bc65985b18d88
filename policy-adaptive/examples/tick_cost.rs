//! What one controller tick costs with the real signals (`PoolSignals`: the pool's counters,
//! each worker's `/proc` times, memory and host CPU from sysinfo) plus the decision, at 1 and
//! at 64 workers (parked, so the figure is the controller's alone), and that cost as a share of
//! one core at the default 100 ms interval.
//!
//! Run with `cargo run --release -p policy-adaptive --example tick_cost`.

use std::time::{Duration, Instant};

use policy_adaptive::{decide, Config, ControllerState, PoolSignals, Signals, WorkerThreads};
use pool_core::ThreadPool;

const TICKS: u32 = 200;

/// The calling thread's CPU time (Linux `schedstat`, nanoseconds): the machine may be shared,
/// so wall time would count other processes' turns on the core.
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Wall time and CPU time (where known) per tick.
fn tick_cost(workers: usize) -> Result<(Duration, Option<Duration>), Box<dyn std::error::Error>> {
    let registry = WorkerThreads::new();
    let hook = registry.clone();
    let pool = ThreadPool::builder()
        .threads(workers)
        .on_thread_start(move |index| hook.record_current(index))
        .build()?;
    // Every worker has recorded its thread id once the pool has run as many tasks as workers
    // and gone idle: wait for that event, with a generous timeout.
    for _ in 0..workers {
        pool.spawn(|| ())?;
    }
    pool.wait_idle(Duration::from_secs(30));
    let config = Config::default();
    let mut signals = PoolSignals::new(registry);
    let mut state = ControllerState::new();
    // One warm-up tick: the first sample opens the files sysinfo keeps.
    let _ = signals.sample(&pool, config.interval);
    let start = Instant::now();
    let cpu_start = thread_cpu();
    for _ in 0..TICKS {
        let snapshot = signals.sample(&pool, config.interval);
        std::hint::black_box(decide(&snapshot, &mut state, &config));
    }
    let wall = start.elapsed() / TICKS;
    let cpu = thread_cpu()
        .zip(cpu_start)
        .map(|(end, start)| end.saturating_sub(start) / TICKS);
    pool.shutdown();
    Ok((wall, cpu))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let interval = Config::default().interval;
    for workers in [1, 64, 256] {
        let (wall, cpu) = tick_cost(workers)?;
        let cost = cpu.unwrap_or(wall);
        println!(
            "{workers:>4} workers: {cost:>8.1?} CPU per tick ({wall:.1?} wall) = {:.3}% of a core at a {interval:?} interval",
            cost.as_secs_f64() / interval.as_secs_f64() * 100.0
        );
    }
    Ok(())
}
