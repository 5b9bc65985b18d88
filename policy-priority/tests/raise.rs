//! `ThreadPool::raise_priority` on the priority policy: moves a queued task up, never down.

mod common;

use common::{one_worker, settle, submit_logged};
use policy_priority::Aging;
use pool_core::Priority;
use test_kit::{Log, WorkerGate};

#[test]
fn raise_moves_a_queued_task_ahead() {
    let (pool, queue) = one_worker(Aging::off());
    let gate = WorkerGate::occupy_at(&pool, 1, Priority::Critical);
    let log = Log::default();
    let a = submit_logged(&log, &pool, Priority::Low, 1);
    let b = submit_logged(&log, &pool, Priority::Low, 2);
    let c = submit_logged(&log, &pool, Priority::Normal, 3);
    assert!(pool.raise_priority(&b, Priority::Critical));
    assert_eq!(b.priority(), Priority::Critical);
    // The raise pushed a second entry; the Low one is now stale but still queued.
    let before = queue.stats();
    assert_eq!(before.level(Priority::Low).queued, 2);
    assert_eq!(before.level(Priority::Critical).queued, 1);
    gate.open();
    for h in [a, b, c] {
        h.join().unwrap();
    }
    settle(&pool);
    assert_eq!(log.entries(), [2, 3, 1]);
    pool.shutdown();
    let stats = queue.stats();
    assert_eq!(
        stats.queued(),
        0,
        "the stale entry was popped and discarded"
    );
    // Counted once, at the level it ran from (the gate task also ran at Critical).
    assert_eq!(stats.level(Priority::Critical).completed, 2);
    assert_eq!(stats.level(Priority::Low).completed, 1);
    assert_eq!(stats.completed(), 4);
    let pool_stats = pool.stats();
    assert!(pool_stats.is_balanced());
    assert_eq!(pool_stats.completed, 4);
}

#[test]
fn raise_never_lowers_and_is_idempotent() {
    let (pool, queue) = one_worker(Aging::off());
    let gate = WorkerGate::occupy_at(&pool, 1, Priority::Critical);
    let log = Log::default();
    let high = submit_logged(&log, &pool, Priority::High, 1);
    let normal = submit_logged(&log, &pool, Priority::Normal, 2);
    assert!(
        !pool.raise_priority(&high, Priority::Low),
        "lowering is refused"
    );
    assert!(
        !pool.raise_priority(&high, Priority::High),
        "same level is not a raise"
    );
    assert_eq!(high.priority(), Priority::High);
    assert!(pool.raise_priority(&normal, Priority::High));
    assert!(
        !pool.raise_priority(&normal, Priority::High),
        "already at High"
    );
    assert!(!pool.raise_priority(&normal, Priority::Normal));
    // Raised to High behind the task that was already at High: FIFO among equals.
    assert_eq!(queue.stats().level(Priority::High).queued, 2);
    gate.open();
    high.join().unwrap();
    normal.join().unwrap();
    settle(&pool);
    assert_eq!(log.entries(), [1, 2]);
    pool.shutdown();
    assert!(pool.stats().is_balanced());
}

#[test]
fn raise_after_start_or_finish_is_refused() {
    let (pool, _queue) = one_worker(Aging::off());
    let log = Log::default();
    let done = submit_logged(&log, &pool, Priority::Idle, 1);
    settle(&pool);
    assert!(done.is_finished());
    assert!(!pool.raise_priority(&done, Priority::Critical));
    assert_eq!(done.priority(), Priority::Idle);
    done.join().unwrap();

    let gate = WorkerGate::occupy_at(&pool, 1, Priority::Critical);
    let cancelled = submit_logged(&log, &pool, Priority::Low, 2);
    assert!(cancelled.cancel());
    assert!(!pool.raise_priority(&cancelled, Priority::Critical));
    gate.open();
    settle(&pool);
    assert!(cancelled.join().unwrap_err().is_cancelled());
    pool.shutdown();
    assert_eq!(log.entries(), [1]);
    assert!(pool.stats().is_balanced());
}

#[test]
fn raised_then_cancelled_task_leaves_no_trace() {
    let (pool, queue) = one_worker(Aging::off());
    let gate = WorkerGate::occupy_at(&pool, 1, Priority::Critical);
    let log = Log::default();
    let t = submit_logged(&log, &pool, Priority::Idle, 1);
    assert!(pool.raise_priority(&t, Priority::Normal));
    assert!(pool.raise_priority(&t, Priority::Critical));
    assert_eq!(
        queue.stats().queued(),
        3,
        "one entry per level it was queued at"
    );
    assert!(t.cancel());
    gate.open();
    settle(&pool);
    assert!(t.join().unwrap_err().is_cancelled());
    pool.shutdown();
    assert!(log.entries().is_empty());
    assert_eq!(queue.stats().queued(), 0);
    let stats = pool.stats();
    assert!(stats.is_balanced());
    assert_eq!(stats.cancelled, 1, "three entries, one cancellation");
}
