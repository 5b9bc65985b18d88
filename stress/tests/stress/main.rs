//! The reliability harness: random operations from several threads at once, then the books must
//! balance exactly.
//!
//! Seeded and reproducible: the seed is printed at the start and in every failure message; set
//! `STRESS_SEED=<n>` to replay one. A short run is part of `cargo test`; a soak runs with
//! `STRESS_SOAK_SECS=<seconds>` (for example `STRESS_SOAK_SECS=300 cargo test --release -p stress
//! --test stress -- --nocapture`) and prints its figures. A watchdog fails the test with a dump of
//! the pool's state if no progress is made for a generous time, instead of hanging CI.
//!
//! Hostile mode (`hostile/`): every piece of user code panics at random, across all crates on one
//! pool. The test suite runs a few short seeds; `STRESS_HOSTILE_SEEDS=1000` runs that many seeds
//! from `STRESS_SEED` on; `STRESS_SOAK_SECS` runs it as a timed soak with a flat-RSS check;
//! `STRESS_HOSTILE=<parts>` chooses which crates get hostile code (see `hostile/mod.rs`). For
//! example `STRESS_HOSTILE=all STRESS_HOSTILE_SEEDS=1000 cargo test --release -p stress --test
//! stress hostile -- --nocapture`.

mod core_ops;
mod hostile;
mod mixed_ops;
mod watchdog;

use std::time::{Duration, Instant};

use policy_coalesce::CoalesceStats;
use policy_priority::PriorityStats;
use pool_core::PoolStats;

/// The seed for this run: `STRESS_SEED`, or the clock.
pub fn seed() -> u64 {
    std::env::var("STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

/// How long to keep going: a short run by default, minutes with `STRESS_SOAK_SECS`.
pub fn soak() -> Option<Duration> {
    std::env::var("STRESS_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
}

/// Resident set size of this process in KiB (Linux), for the soak's flat-memory check.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4)
}

/// The books a run on every crate ends with, after the pool's shutdown: the pool's balance with
/// no thread, task or queued job left, the coalescer's balance with no key left, and the
/// priority queue drained and, with `level_books` (the queue's reports were not made to
/// panic), every level's books balanced (each entry pushed ran or was discarded) and every task
/// the pool ran counted at a level. `ctx` (the seed to replay) opens every message and `dump`
/// (the state at the end, or nothing) closes it.
pub fn assert_books_closed(
    ctx: &str,
    dump: &str,
    pool: &PoolStats,
    coalescer: &CoalesceStats,
    levels: &PriorityStats,
    level_books: bool,
) {
    assert!(pool.is_balanced(), "{ctx}: pool books\n{dump}");
    assert_eq!(
        (pool.live_threads, pool.running, pool.queued),
        (0, 0, 0),
        "{ctx}: threads, running, queued after shutdown\n{dump}"
    );
    assert!(coalescer.is_balanced(), "{ctx}: coalescer books\n{dump}");
    assert_eq!(
        (coalescer.pending, coalescer.running, coalescer.keys),
        (0, 0, 0),
        "{ctx}: coalescer keys left\n{dump}"
    );
    assert_eq!(
        levels.queued(),
        0,
        "{ctx}: priority queue not drained\n{levels}\n{dump}"
    );
    if !level_books {
        return;
    }
    assert!(
        levels.is_balanced(),
        "{ctx}: the levels' books\n{levels}\n{dump}"
    );
    // Every task goes through the priority queue (it keeps no worker-local queues).
    assert_eq!(
        levels.completed(),
        pool.completed + pool.panicked,
        "{ctx}: tasks run against the levels' count\n{levels}\n{dump}"
    );
}

/// Deliberate panics (the harness's own, marked) are part of the load; keep them out of the
/// output, print any other. Installed once for the whole test binary.
fn quiet_deliberate_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // STRESS_HOSTILE_LOUD=1 prints the hostile panics too (with RUST_BACKTRACE, where).
        let loud = std::env::var_os("STRESS_HOSTILE_LOUD").is_some();
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let text = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("");
            if loud || !text.starts_with("deliberate panic") && !hostile::is_marker(payload) {
                default(info);
            }
        }));
    });
}

#[test]
fn core_pool_books_balance_under_random_operations() {
    quiet_deliberate_panics();
    let seed = seed();
    println!("stress seed {seed} (replay with STRESS_SEED={seed})");
    match soak() {
        None => {
            for round in 0..3 {
                core_ops::run(seed.wrapping_add(round), 4, 1_500);
            }
        }
        Some(duration) => {
            let start = Instant::now();
            let rss_start = rss_kib();
            let mut rounds = 0u64;
            let mut ops = 0u64;
            let mut rss_after_first = 0;
            while start.elapsed() < duration {
                ops += core_ops::run(seed.wrapping_add(rounds), 4, 5_000);
                rounds += 1;
                if rounds == 1 {
                    rss_after_first = rss_kib();
                }
            }
            let rss_end = rss_kib();
            println!(
                "soak: {rounds} rounds, {ops} submissions in {:.1} s; RSS start {rss_start} KiB, \
                 after first round {rss_after_first} KiB, end {rss_end} KiB",
                start.elapsed().as_secs_f64()
            );
            // A leak of one task's state per task would grow by hundreds of MiB over a soak.
            assert!(
                rss_end < rss_after_first + 64 * 1024,
                "seed {seed}: RSS grew from {rss_after_first} KiB to {rss_end} KiB"
            );
        }
    }
}

#[test]
fn every_crate_on_one_pool_books_balance() {
    quiet_deliberate_panics();
    let seed = seed();
    println!("mixed stress seed {seed} (replay with STRESS_SEED={seed})");
    let rounds = soak().map_or(3, |d| d.as_secs().max(1));
    for round in 0..rounds {
        mixed_ops::run(seed.wrapping_add(round), 3, 600);
    }
}

/// Hostile mode: a few short seeds in the test suite; `STRESS_HOSTILE_SEEDS=<n>` for n seeds;
/// `STRESS_SOAK_SECS=<s>` for a timed soak whose RSS must stay flat.
#[test]
fn hostile_user_code_cannot_break_the_guarantees() {
    quiet_deliberate_panics();
    let seed = seed();
    let parts = hostile::Parts::from_env();
    println!("hostile seed {seed} parts {parts:?} (replay with STRESS_SEED={seed})");
    let seeds = std::env::var("STRESS_HOSTILE_SEEDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    match (soak(), seeds) {
        (Some(duration), _) => hostile_soak(seed, parts, duration),
        (None, Some(n)) => {
            let start = Instant::now();
            let mut ops = 0;
            for i in 0..n {
                ops += hostile::run(seed.wrapping_add(i), parts, 3, 300);
            }
            println!(
                "hostile: {n} seeds from {seed} passed, {ops} operations in {:.1} s",
                start.elapsed().as_secs_f64()
            );
        }
        (None, None) => {
            for i in 0..3 {
                hostile::run(seed.wrapping_add(i), parts, 2, 150);
            }
        }
    }
}

/// RSS may grow this much between the end of the warm-up and the end of the soak: allocator
/// caches, thread stacks of resized pools and the test harness's own buffers settle within a few
/// MiB; a leak of one task, value or payload per hostile operation grows by hundreds of MiB over
/// a soak of millions of operations.
const SOAK_RSS_MARGIN_KIB: u64 = 16 * 1024;

fn hostile_soak(seed: u64, parts: hostile::Parts, duration: Duration) {
    let start = Instant::now();
    let warm_up = duration / 10;
    let mut rounds = 0u64;
    let mut ops = 0u64;
    let mut rss_warm = None;
    let mut rss_peak = 0;
    while start.elapsed() < duration {
        ops += hostile::run(seed.wrapping_add(rounds), parts, 3, 600);
        rounds += 1;
        if rss_warm.is_none() && start.elapsed() >= warm_up {
            rss_warm = Some(rss_kib());
        }
        rss_peak = rss_peak.max(rss_kib());
    }
    let rss_end = rss_kib();
    let rss_warm = rss_warm.unwrap_or(rss_end);
    println!(
        "hostile soak: {rounds} rounds (seeds {seed}..{}), {ops} operations in {:.1} s; RSS after \
         warm-up {rss_warm} KiB, peak {rss_peak} KiB, end {rss_end} KiB (margin {SOAK_RSS_MARGIN_KIB} KiB)",
        seed.wrapping_add(rounds),
        start.elapsed().as_secs_f64()
    );
    assert!(
        rss_end <= rss_warm + SOAK_RSS_MARGIN_KIB,
        "hostile soak from seed {seed}: RSS grew from {rss_warm} KiB to {rss_end} KiB"
    );
}
