//! Loom models of policy-adaptive's protocol: the controller's resize racing submissions and
//! shutdown, and the controller's stop.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p loom-tests --test
//! adaptive`.
//!
//! The resize models drive pool-core's real `ThreadPool` (its deques swap to locked
//! `VecDeque`s under loom) with `set_threads` on one loom thread, exactly the call the
//! controller makes on its tick, racing a submission and then `shutdown` on the main thread.
//! The stop model runs the real `AdaptivePool` controller thread. loom's `Condvar::wait_timeout`
//! never times out, so under loom the controller only wakes when notified: the model checks
//! that `shutdown` always wakes and joins it, whatever point of its wait loop it is at.
#![cfg(loom)]

use std::time::Duration;

use loom_tests::model;
use policy_adaptive::{AdaptivePool, Signals, Snapshot};
use pool_core::sync::{thread, Arc, AtomicUsize, Ordering};
use pool_core::ThreadPool;

/// Resizes to `to` from one thread (the controller's tick) while the main thread submits a job
/// and then shuts the pool down; checks that the job ran exactly once or came back rejected,
/// that the books balance, and that no worker thread is left.
///
/// loom allows 4 threads per model: main, the resizer and up to two workers, so the submission
/// and the shutdown share the main thread. Submission racing shutdown on its own is pool-core's
/// model (`core.rs`, `shutdown_vs_submit_runs_or_rejects`).
fn resize_vs_submit_vs_shutdown(name: &'static str, start: usize, to: usize) {
    model(name, move || {
        let pool = Arc::new(ThreadPool::new(start).unwrap());
        let runs = Arc::new(AtomicUsize::new(0));

        let resizer = {
            let pool = pool.clone();
            // Like the controller, a refused resize after shutdown is not an error to report.
            thread::spawn(move || pool.set_threads(to).is_ok())
        };
        let counted = runs.clone();
        let handle = pool
            .submit(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                7
            })
            .ok();
        pool.shutdown();
        let _resized = resizer.join().unwrap();

        match handle {
            // Accepted before shutdown: graceful shutdown runs it.
            Some(handle) => {
                assert_eq!(handle.join().unwrap(), 7, "an accepted job runs");
                assert_eq!(runs.load(Ordering::SeqCst), 1, "exactly once");
            }
            None => unreachable!("submitted before shutdown, so accepted"),
        }
        let stats = pool.stats();
        assert!(stats.is_balanced(), "{stats}");
        assert_eq!(stats.queued + stats.running, 0, "{stats}");
        assert_eq!(
            stats.live_threads, 0,
            "no worker outlives shutdown: {stats}"
        );
    });
}

/// Invariant: growing (1 -> 2) racing a submission and the shutdown loses no job and leaks no
/// thread (the worker started by the resize is joined by shutdown, or the resize is refused).
#[test]
fn grow_vs_submit_vs_shutdown() {
    resize_vs_submit_vs_shutdown("grow_vs_submit_vs_shutdown", 1, 2);
}

/// Invariant: shrinking (2 -> 1) racing a submission and the shutdown loses no job (the
/// retiring worker leaves it to the other) and leaks no thread.
#[test]
fn shrink_vs_submit_vs_shutdown() {
    resize_vs_submit_vs_shutdown("shrink_vs_submit_vs_shutdown", 2, 1);
}

/// Signals that are never read under loom (the controller only wakes to stop) but must exist.
struct Quiet;

impl Signals for Quiet {
    fn sample(&mut self, pool: &ThreadPool, elapsed: Duration) -> Snapshot {
        Snapshot {
            threads: pool.stats().live_threads,
            target: pool.threads(),
            ..Snapshot::new(elapsed, 1)
        }
    }
}

/// Invariant: `shutdown` stops the controller wherever it is in its wait loop (checking the
/// flag, about to wait, waiting): the stop is never missed, the controller is joined, and no
/// pool worker is left. A missed stop leaves the join blocked forever, which loom reports.
#[test]
fn shutdown_always_stops_and_joins_the_controller() {
    model("shutdown_always_stops_and_joins_the_controller", || {
        let pool = AdaptivePool::builder()
            .min(1)
            .max(2)
            .signals(Quiet)
            .build()
            .unwrap();
        pool.shutdown();
        assert_eq!(pool.stats().live_threads, 0);
        assert!(pool.submit(|| ()).is_err(), "shut down");
    });
}
