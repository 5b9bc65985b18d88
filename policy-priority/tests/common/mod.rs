//! Helpers of the priority tests: a one-worker pool with a priority queue (hold its worker with
//! `test_kit::WorkerGate` and tasks queue up deterministically), and a submission that logs its
//! id when it runs.

#![allow(dead_code)] // each test file uses its own subset

use policy_priority::{Aging, PriorityQueue, PriorityStats, PrioritySubmit};
use pool_core::{Priority, TaskHandle, ThreadPool};
use test_kit::{Log, PATIENCE};

/// A one-worker pool with a priority queue.
pub fn one_worker(aging: Aging) -> (ThreadPool, PriorityQueue) {
    let queue = PriorityQueue::with_aging(aging);
    let pool = ThreadPool::builder()
        .threads(1)
        .queue_policy(queue.clone())
        .build()
        .expect("valid settings");
    (pool, queue)
}

/// Submits a task at `priority` that logs `id` when it runs.
pub fn submit_logged(log: &Log, pool: &ThreadPool, priority: Priority, id: u32) -> TaskHandle<()> {
    let log = log.clone();
    pool.submit_at(priority, move || log.push(id))
        .expect("pool is running")
}

/// Every level's books balance (the pool idle or shut down): each entry pushed at a level was
/// taken and ran (`completed`) or did not run (`discarded`: cancelled, or stale after a
/// raise), or is still queued.
pub fn assert_levels_balance(stats: &PriorityStats) {
    assert!(stats.is_balanced(), "{stats}");
}

/// Waits for the pool to go idle, failing the test instead of hanging.
pub fn settle(pool: &ThreadPool) {
    assert!(pool.wait_idle(PATIENCE), "the pool did not go idle");
}
