//! Helpers of the coalescer tests: a one-worker pool whose worker is held, the error a handle
//! resolved to, and the check of the books every test ends with. The executors and gates come
//! from `test_kit`.

#![allow(dead_code)] // each test file uses its own subset

use std::fmt::Debug;
use std::hash::Hash;

use policy_coalesce::{
    CoalesceError, CoalesceJoinTimeoutError, CoalesceStats, CoalescedHandle, Coalescer,
};
use pool_core::{Executor, ThreadPool};
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

/// Asserts the coalescer's books: the fields `pick` reads equal `expected`, and the books
/// balance (every submission accounted for exactly once).
#[track_caller]
pub fn assert_books<K, T, E, F>(
    coalescer: &Coalescer<K, T, E>,
    pick: impl FnOnce(&CoalesceStats) -> F,
    expected: F,
) where
    K: Hash + Eq + Send + Sync + 'static,
    T: Send + Sync + 'static,
    E: Executor + 'static,
    F: PartialEq + Debug,
{
    let stats = coalescer.stats();
    assert_eq!(pick(&stats), expected, "{stats}");
    assert!(stats.is_balanced(), "{stats}");
}
