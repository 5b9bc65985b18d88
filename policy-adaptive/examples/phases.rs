//! An I/O-like phase (tasks that sleep 5 ms), a CPU-bound phase (about 1 ms of arithmetic per
//! task), then a mixed one (1 ms of arithmetic, then a 4 ms sleep: it starts from the CPU
//! phase's few threads and needs about twenty), each with 64 tasks kept in flight, then an idle
//! phase. Prints the worker count over time and the scaling events with their reasons.
//!
//! Run with `cargo run --release -p policy-adaptive --example phases`.

use std::hint::black_box;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use policy_adaptive::AdaptivePool;

const IN_FLIGHT: usize = 64;
const PHASE: Duration = Duration::from_secs(3);

/// A fixed amount of arithmetic (not a wall-clock spin: it slows down when the CPU is shared).
fn spin(iterations: u64) -> u64 {
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    for _ in 0..iterations {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    black_box(x)
}

/// Iterations that take about 1 ms on this machine, measured once.
fn calibrate() -> u64 {
    let start = Instant::now();
    spin(black_box(1_000_000));
    let per_iteration = start.elapsed().as_secs_f64() / 1e6;
    ((1e-3 / per_iteration) as u64).max(1)
}

/// Keeps `IN_FLIGHT` tasks running for `PHASE`, printing the worker count every 250 ms.
fn phase(pool: &AdaptivePool, name: &str, job: impl Fn() + Clone + Send + 'static) -> u64 {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let submit = || {
        let job = job.clone();
        let done = done_tx.clone();
        pool.spawn(move || {
            job();
            let _ = done.send(());
        })
        .expect("pool is running");
    };
    for _ in 0..IN_FLIGHT {
        submit();
    }
    let start = Instant::now();
    let mut next_print = start;
    let mut completed = 0;
    while start.elapsed() < PHASE {
        if done_rx.recv_timeout(Duration::from_millis(50)).is_ok() {
            completed += 1;
            submit();
        }
        if Instant::now() >= next_print {
            let stats = pool.stats();
            println!(
                "{name:>4} {:>5.2}s  threads {:>3}  busy {:>3}  queued {:>3}  done {completed}",
                start.elapsed().as_secs_f64(),
                stats.live_threads,
                stats.running,
                stats.queued
            );
            next_print += Duration::from_millis(250);
        }
    }
    // Drain the tasks still in flight so the next phase starts clean.
    for _ in 0..IN_FLIGHT {
        let _ = done_rx.recv_timeout(Duration::from_secs(30));
    }
    completed
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cores = std::thread::available_parallelism()?.get();
    let iterations = calibrate();
    let pool = AdaptivePool::builder()
        .min(1)
        .max(128)
        .keep_alive(Duration::from_secs(1))
        .build()?;
    println!("{cores} cores; 1 ms of CPU = {iterations} iterations; {IN_FLIGHT} tasks in flight");

    let io = phase(&pool, "io", || std::thread::sleep(Duration::from_millis(5)));
    println!("io phase: {:.0} tasks/s", io as f64 / PHASE.as_secs_f64());
    let cpu = phase(&pool, "cpu", move || {
        spin(iterations);
    });
    println!("cpu phase: {:.0} tasks/s", cpu as f64 / PHASE.as_secs_f64());
    let mix = phase(&pool, "mix", move || {
        spin(iterations);
        std::thread::sleep(Duration::from_millis(4));
    });
    println!("mix phase: {:.0} tasks/s", mix as f64 / PHASE.as_secs_f64());

    // Idle: the workers above `min` retire after the keep-alive.
    let idle_start = Instant::now();
    while pool.stats().live_threads > 1 && idle_start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(250));
        println!(
            "idle {:>5.2}s  threads {:>3}",
            idle_start.elapsed().as_secs_f64(),
            pool.stats().live_threads
        );
    }

    println!("\nscaling events:");
    for event in pool.history() {
        println!(
            "  {:>6.2}s  tick {:>3}  {:>3} -> {:<3}  {}",
            event.at.as_secs_f64(),
            event.tick,
            event.from,
            event.to,
            event.reason
        );
    }
    if let Some(cpu) = pool.controller_cpu() {
        println!(
            "controller: {} ticks, {:.1} ms of CPU",
            pool.ticks(),
            cpu.as_secs_f64() * 1e3
        );
    }
    pool.shutdown();
    println!("{}", pool.stats());
    Ok(())
}
