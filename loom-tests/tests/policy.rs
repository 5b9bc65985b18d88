//! Loom models of pool-core's queue-policy plug point under a hostile policy: the pool's own
//! protocols must hold when the policy (user code) panics. See `loom-tests/README.md` for the run
//! command, the counts and the planted bugs (`.ci/loom-planted`).
#![cfg(loom)]

use std::sync::atomic::{AtomicBool, Ordering};

use pool_core::{FifoQueue, QueuePolicy, QueuedTask, ThreadPool};

/// The panic [`HostileEmptiness`] raises (not a string, so it is told apart from a failed
/// assertion).
struct HostileCheck;

/// When a [`HostileEmptiness`] policy's `is_empty` panics; otherwise it answers truthfully.
#[derive(Clone, Copy, Debug)]
enum PanicWhen {
    /// On its first call only.
    FirstCall,
    /// Whenever the queue holds an entry, so any caller that asks while a task is queued gets
    /// the panic.
    HoldingAnEntry,
}

/// A FIFO policy whose `is_empty` panics as [`PanicWhen`] says.
///
/// Its own flag is a std atomic: only the worker calls `is_empty` in these models, so the flag
/// adds no interleaving worth exploring.
#[derive(Debug)]
struct HostileEmptiness {
    queue: FifoQueue,
    when: PanicWhen,
    checked: AtomicBool,
}

impl HostileEmptiness {
    fn new(when: PanicWhen) -> Self {
        HostileEmptiness {
            queue: FifoQueue::default(),
            when,
            checked: AtomicBool::new(false),
        }
    }
}

impl QueuePolicy for HostileEmptiness {
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
        let panics = match self.when {
            PanicWhen::FirstCall => !self.checked.swap(true, Ordering::Relaxed),
            PanicWhen::HoldingAnEntry => !self.queue.is_empty(),
        };
        if panics {
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
                .queue_policy(HostileEmptiness::new(PanicWhen::FirstCall))
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

/// Invariant: a graceful `shutdown` runs every task accepted before it, even when the policy's
/// `is_empty` panics while the task is queued: a worker whose quiescence check (may it exit the
/// shutdown?) turns on that panic looks again instead of leaving, so `shutdown` returns with the
/// task run and nothing queued.
///
/// One worker on the hostile policy; this thread spawns one task and shuts the pool down. The
/// race takes both preemptions: one lets the worker search before the spawn (it finds nothing),
/// the other stops it between that search and its shutdown check; the spawn then queues the task
/// without waking anyone (the worker is not parked) and `shutdown` flags the pool, and the
/// worker finds the pool shutting down and drainable and asks the policy whether its queue is
/// empty while the task is in it. (With one preemption allowed the planted bug passes: checked.)
///
/// Catches `--cfg loom_broken_quiescence_guess` (`Shared::quiescence` takes a panicking
/// `is_empty` for "empty"): the worker exits the shutdown, `shutdown` returns with the task still
/// queued, and the assertion on `completed` fails.
#[test]
fn a_panicking_emptiness_check_never_ends_a_shutdown_with_a_task_queued() {
    test_kit::quiet_panics(|_| false);
    loom_tests::model(
        "a_panicking_emptiness_check_never_ends_a_shutdown_with_a_task_queued",
        || {
            let pool = ThreadPool::builder()
                .threads(1)
                .queue_policy(HostileEmptiness::new(PanicWhen::HoldingAnEntry))
                .build()
                .unwrap();
            pool.spawn(|| ()).unwrap();
            pool.shutdown();
            let stats = pool.stats();
            assert_eq!(
                (stats.completed, stats.queued),
                (1, 0),
                "shutdown returned before the queued task ran: {stats:?}"
            );
            assert!(stats.is_balanced(), "{stats:?}");
        },
    );
}
