//! Helpers of the coalescer tests: a one-worker pool whose worker is held, and the error a
//! handle resolved to. The executors and gates come from `test_kit`.

#![allow(dead_code)] // each test file uses its own subset

use policy_coalesce::{CoalesceError, CoalesceJoinTimeoutError, CoalescedHandle};
use pool_core::ThreadPool;
use test_kit::{WorkerGate, PATIENCE};

/// A one-worker pool whose worker is held until the gate is opened (or dropped): submissions
/// queue behind it.
pub fn gated_pool() -> (ThreadPool, WorkerGate) {
    let pool = ThreadPool::new(1).unwrap();
    let gate = WorkerGate::occupy(&pool, 1);
    (pool, gate)
}

/// Joins with the generous timeout and returns the error the handle resolved to.
pub fn failed<T>(handle: CoalescedHandle<T>) -> CoalesceError {
    match handle.join_timeout(PATIENCE) {
        Err(CoalesceJoinTimeoutError::Failed(error)) => error,
        Err(CoalesceJoinTimeoutError::TimedOut(_)) => panic!("handle did not resolve"),
        Ok(_) => panic!("expected an error, got a value"),
    }
}
