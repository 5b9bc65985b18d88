//! Loom models of pool-core's statistics: a `stats()` read that races the events it counts
//! still balances. `Totals::read` sums the counter blocks in two passes, a task's later stages
//! first (see `pool-core/src/pool/stats.rs`); these models read while a task is submitted,
//! started and completed, and check the order-derived inequalities on every snapshot. See
//! `loom-tests/README.md` for the counts and the planted bug (`.ci/loom-planted`).
#![cfg(loom)]

use loom_tests::model;
use pool_core::sync::{thread, Arc};
use pool_core::{PoolStats, ThreadPool};

/// What every snapshot must satisfy, however the read interleaves with the events.
fn assert_consistent(stats: &PoolStats) {
    assert!(
        stats.completed + stats.panicked <= stats.started,
        "more tasks finished than started: {stats:?}"
    );
    assert!(
        stats.started + stats.cancelled + stats.rejected <= stats.submitted,
        "more tasks started, cancelled or rejected than submitted: {stats:?}"
    );
    assert!(stats.is_balanced(), "{stats:?}");
}

/// Model 1. Invariant: a reader's snapshot never counts a task's completion without its start,
/// nor its start without its submission, while the task is submitted (from another thread),
/// started and completed by the worker. After the pool goes idle, the books show one task
/// completed.
///
/// Catches `--cfg loom_broken_stats_order` (pass 1 reads a block's `started` before its
/// `completed`): a task that starts and completes between the two loads counts as completed and
/// not started.
#[test]
fn a_concurrent_read_never_counts_a_later_stage_without_the_earlier() {
    model(
        "a_concurrent_read_never_counts_a_later_stage_without_the_earlier",
        || {
            let pool = Arc::new(ThreadPool::new(1).unwrap());
            let submitter = {
                let pool = pool.clone();
                thread::spawn(move || pool.spawn(|| ()).unwrap())
            };
            assert_consistent(&pool.stats());
            assert_consistent(&pool.stats());
            submitter.join().unwrap();
            assert!(pool.wait_idle(std::time::Duration::MAX));
            let stats = pool.stats();
            assert_eq!((stats.submitted, stats.completed), (1, 1), "{stats:?}");
            assert_consistent(&stats);
            pool.shutdown();
        },
    );
}

/// Model 2. Invariant: as model 1, for `stats_with_workers` (`Registry::read_all`: the worker
/// stats and the totals under one lock); the worker's stats come back for the one worker.
///
/// Catches `--cfg loom_broken_stats_order` too (the same `Totals::read`).
#[test]
fn a_concurrent_read_with_workers_never_counts_a_later_stage_without_the_earlier() {
    model(
        "a_concurrent_read_with_workers_never_counts_a_later_stage_without_the_earlier",
        || {
            let pool = Arc::new(ThreadPool::new(1).unwrap());
            let submitter = {
                let pool = pool.clone();
                thread::spawn(move || pool.spawn(|| ()).unwrap())
            };
            let mut workers = Vec::new();
            assert_consistent(&pool.stats_with_workers(&mut workers));
            assert_consistent(&pool.stats_with_workers(&mut workers));
            submitter.join().unwrap();
            assert!(pool.wait_idle(std::time::Duration::MAX));
            let stats = pool.stats_with_workers(&mut workers);
            assert_eq!((stats.submitted, stats.completed), (1, 1), "{stats:?}");
            assert_eq!(workers.len(), 1, "{workers:?}");
            assert_consistent(&stats);
            pool.shutdown();
        },
    );
}
