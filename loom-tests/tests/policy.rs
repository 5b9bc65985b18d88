//! Loom models of pool-core's queue-policy plug point under a hostile policy: the pool's own
//! protocols must hold when the policy (user code) panics. See `loom-tests/README.md` for the run
//! command, the counts and the planted bugs (`.ci/loom-planted`).
#![cfg(loom)]

use std::sync::atomic::{AtomicBool, Ordering};

use pool_core::{FifoQueue, QueuePolicy, QueuedTask, ThreadPool};

/// The panic [`PanicsOnFirstEmptinessCheck`] raises (not a string, so it is told apart from a
/// failed assertion).
struct HostileCheck;

/// A FIFO policy whose first `is_empty` panics; later calls answer truthfully.
///
/// Its own flag is a std atomic: only the worker calls `is_empty` in these models, so the flag
/// adds no interleaving worth exploring.
#[derive(Debug, Default)]
struct PanicsOnFirstEmptinessCheck {
    queue: FifoQueue,
    checked: AtomicBool,
}

impl QueuePolicy for PanicsOnFirstEmptinessCheck {
    fn push(&self, task: QueuedTask) {
        self.queue.push(task);
    }

    fn pop(&self) -> Option<QueuedTask> {
        self.queue.pop()
    }

    fn len(&self) -> usize {
        self.queue.len()
    }

    fn is_empty(&self) -> bool {
        if !self.checked.swap(true, Ordering::Relaxed) {
            std::panic::panic_any(HostileCheck);
        }
        self.queue.is_empty()
    }
}

/// Invariant: a worker whose parking re-check turns on a panicking `is_empty` does not park on
/// that answer: a task pushed after the worker's last search and before it announced itself idle
/// (so the submitter saw no one to wake) still runs, and its handle resolves.
///
/// One worker on the hostile policy; this thread submits and joins. The only `is_empty` call is
/// the re-check of `Sleep::park` (step 2), so the panic lands there in every interleaving: before
/// the push (the worker looks again, finds nothing, parks, and the push wakes it) or after it
/// (the worker must look again and find the task).
///
/// Catches `--cfg loom_broken_emptiness_guess` (a panicking `is_empty` reads as "empty", as
/// before `bed54d3`): the worker parks beside the queued task and `join` never returns, which
/// loom reports as a deadlock.
#[test]
fn a_panicking_emptiness_check_never_parks_a_worker_beside_a_queued_task() {
    // `HostileCheck` is not a string, so `quiet_panics` silences it; every string still prints.
    test_kit::quiet_panics(|_| false);
    loom_tests::model(
        "a_panicking_emptiness_check_never_parks_a_worker_beside_a_queued_task",
        || {
            let pool = ThreadPool::builder()
                .threads(1)
                .queue_policy(PanicsOnFirstEmptinessCheck::default())
                .build()
                .unwrap();
            let handle = pool.submit(|| 7).unwrap();
            assert_eq!(handle.join().unwrap(), 7);
            pool.shutdown();
            let stats = pool.stats();
            assert_eq!(stats.completed, 1, "{stats:?}");
            assert!(stats.is_balanced(), "{stats:?}");
        },
    );
}
