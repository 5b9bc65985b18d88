//! policy-adaptive: a file scan (blocking I/O) then a CPU-bound pass over what it found, on a pool
//! that sizes itself; then idleness, and the pool goes back to its minimum.

use policy_adaptive::AdaptivePool;
use std::time::{Duration, Instant};

use crate::section;

pub fn run() {
    section("policy-adaptive: blocking I/O, then CPU-bound work, then idle");
    let pool = AdaptivePool::builder()
        .min(1)
        .max(64)
        .interval(Duration::from_millis(50))
        .keep_alive(Duration::from_millis(400))
        .thread_name("adaptive")
        .build()
        .expect("a valid configuration");

    // Phase 1: 600 "file reads" of 5 ms each, blocking, not using CPU.
    let start = Instant::now();
    let reads: Vec<_> = (0..600)
        .map(|_| {
            pool.submit(|| std::thread::sleep(Duration::from_millis(5)))
                .unwrap()
        })
        .collect();
    let peak_io = watch(&pool, || reads.iter().all(|h| h.is_finished()));
    for h in reads {
        h.join().unwrap();
    }
    let io_time = start.elapsed();
    println!(
        "  I/O phase: 600 reads of 5 ms in {io_time:.2?}; threads peaked at {peak_io} \
         (one thread would need 3 s)"
    );

    // Phase 2: 200 hashes of ~2 ms of CPU each: more threads than cores only compete.
    let start = Instant::now();
    let hashes: Vec<_> = (0..200)
        .map(|i| pool.submit(move || cpu_work(i)).unwrap())
        .collect();
    let peak_cpu = watch(&pool, || hashes.iter().all(|h| h.is_finished()));
    for h in hashes {
        h.join().unwrap();
    }
    println!(
        "  CPU phase: 200 hashes in {:.2?}; threads at the end {} (peak during the phase {peak_cpu}) \
         on {} cores",
        start.elapsed(),
        pool.stats().live_threads,
        crate::cores()
    );

    // Phase 3: idle. Workers above `min` retire after the keep-alive.
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.stats().live_threads > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "  idle: back to {} thread(s) after the keep-alive",
        pool.stats().live_threads
    );

    let history = pool.history();
    // The first 4 and the last 3, each once (a short history is shown whole).
    let (first, last) = (4, 3);
    let skipped = history.len().saturating_sub(first + last);
    if skipped == 0 {
        println!("  {} scaling events:", history.len());
    } else {
        println!(
            "  {} scaling events; the first {first} and the last {last}:",
            history.len()
        );
    }
    let shown = history
        .iter()
        .take(first)
        .chain(history.iter().skip(first + skipped));
    for e in shown {
        println!(
            "    {:>7.2?}  {:>2} -> {:<2}  {}",
            e.at, e.from, e.to, e.reason
        );
    }
    if let Some(cpu) = pool.controller_cpu() {
        println!(
            "  the controller itself used {cpu:.2?} of CPU over {} ticks",
            pool.ticks()
        );
    }
    pool.shutdown();
    println!("  after shutdown: {}", pool.stats());
}

/// Samples the thread count until `done`; returns the peak.
fn watch(pool: &AdaptivePool, done: impl Fn() -> bool) -> usize {
    let mut peak = 0;
    while !done() {
        peak = peak.max(pool.stats().live_threads);
        std::thread::sleep(Duration::from_millis(10));
    }
    peak.max(pool.stats().live_threads)
}

fn cpu_work(seed: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..2_000_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}
