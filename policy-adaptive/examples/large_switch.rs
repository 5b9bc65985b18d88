//! A pool grown to 256 workers by sleeping tasks whose load turns CPU-bound: how long until the
//! controller brings it down near the CPU cap (twice the cap or fewer: 8 workers on a 2-core
//! machine), and by which decisions. Each task sleeps (or, after the switch, computes) for 20 ms, then submits
//! the next; 320 are in flight, so the pool stays at `max` with a backlog before the switch.
//!
//! This is the case a rule that reads the process's CPU clock less often must not slow down
//! (`src/README.md`, "Tried and left out": reading it every other tick in a large, steady pool
//! did slow it). It also showed two pool-core faults that made about one run in three take 2-9 s
//! (a `set_threads` that waited for exiting threads, and leaving workers listed as busy ones):
//! since their fixes, 42 runs of the final build on a 2-core VM took 0.57-0.96 s (one of 62
//! runs of the build before its last change took 12.5 s, not traced). Run with
//! `cargo run --release -p policy-adaptive --example large_switch`, several times.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use policy_adaptive::AdaptivePool;

const WORKERS: usize = 256;
const IN_FLIGHT: usize = 320;
const TASK: Duration = Duration::from_millis(20);

/// One task of the chain: sleep or compute for `TASK`, then submit the next, until `stop`.
fn task(pool: Arc<AdaptivePool>, computing: Arc<AtomicBool>, stop: Arc<AtomicBool>) {
    if stop.load(Relaxed) {
        return;
    }
    if computing.load(Relaxed) {
        let until = Instant::now() + TASK;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    } else {
        std::thread::sleep(TASK);
    }
    let next = Arc::clone(&pool);
    // A refused task (the pool shut down) ends the chain.
    let _ = pool.spawn(move || task(next, computing, stop));
}

fn main() {
    // Down to this many workers counts as trimmed: twice the cap on CPU-bound work (2 per
    // core), as the trim's last step lands anywhere from the cap to about that.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let trimmed_at = 4 * cores;
    let built = Instant::now();
    let pool = Arc::new(
        AdaptivePool::builder()
            .min(4)
            .max(WORKERS)
            .build()
            .expect("a valid configuration"),
    );
    let computing = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    for _ in 0..IN_FLIGHT {
        let (next, computing, stop) = (Arc::clone(&pool), computing.clone(), stop.clone());
        pool.spawn(move || task(next, computing, stop))
            .expect("the pool accepts work");
    }
    // Polled: the count changes on the controller's ticks, which announce nothing.
    let patience = Duration::from_secs(20);
    while pool.threads() < WORKERS && built.elapsed() < patience {
        std::thread::sleep(Duration::from_millis(5));
    }
    let (grown, grown_to) = (built.elapsed(), pool.threads());
    // Two seconds of the steady load at `max`, and up to an interval more, so that the switch
    // falls at a different point of the controller's 100 ms tick in each run: the first tick
    // after it reads the new load at once or waits for a CPU among 256 spinning threads, and a
    // fixed wait put every run of a build at the same point (two builds a few ms apart then
    // differed by 0.2 s in every run). The sub-second clock is jitter enough.
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos() % 100_000_000);
    std::thread::sleep(Duration::from_secs(2) + Duration::from_nanos(u64::from(jitter)));
    let seen = pool.history().len();
    let switched = Instant::now();
    let switch_at = switched - built;
    computing.store(true, Relaxed);
    while pool.threads() > trimmed_at && switched.elapsed() < patience {
        std::thread::sleep(Duration::from_millis(1));
    }
    let trimmed = switched.elapsed();
    println!("grown to {grown_to} workers in {grown:.2?}; switched to CPU-bound tasks");
    if pool.threads() > trimmed_at {
        println!(
            "still {} workers {trimmed:.2?} after the switch",
            pool.threads()
        );
    } else {
        println!("{trimmed_at} workers or fewer {trimmed:.2?} after the switch; the decisions:");
    }
    for event in pool.history().into_iter().skip(seen) {
        let after = event.at.saturating_sub(switch_at);
        println!(
            "  +{:>5} ms  {:>3} -> {:<3} {:?}",
            after.as_millis(),
            event.from,
            event.to,
            event.reason
        );
    }
    stop.store(true, Relaxed);
    pool.shutdown();
}
