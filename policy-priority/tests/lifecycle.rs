//! Cancellation, shutdown and resize on a pool with the priority policy: the books balance.

mod common;

use common::{assert_levels_balance, one_worker, settle, submit_logged};
use policy_priority::{Aging, PriorityQueue, PrioritySubmit};
use pool_core::{CancelReason, Priority, TaskError, ThreadPool};
use std::time::Instant;
use test_kit::{Log, WorkerGate, PATIENCE};

#[test]
fn cancel_queued_tasks_of_every_level() {
    let (pool, queue) = one_worker(Aging::default());
    let gate = WorkerGate::occupy_at(&pool, 1, Priority::Critical);
    let log = Log::default();
    let mut keep = Vec::new();
    let mut drop_ = Vec::new();
    for (i, level) in Priority::ALL.into_iter().enumerate() {
        let i = i as u32;
        keep.push(submit_logged(&log, &pool, level, 10 + i));
        drop_.push(submit_logged(&log, &pool, level, 20 + i));
    }
    for h in &drop_ {
        assert!(h.cancel(), "a queued task is cancelled exactly");
        assert!(!h.cancel(), "only once");
    }
    gate.open();
    for h in keep {
        h.join_timeout(PATIENCE).unwrap();
    }
    for h in drop_ {
        assert_eq!(
            h.join().unwrap_err(),
            TaskError::Cancelled(CancelReason::Requested)
        );
    }
    settle(&pool);
    assert_eq!(log.entries(), [10, 11, 12, 13, 14]);
    pool.shutdown();
    let stats = pool.stats();
    assert!(stats.is_balanced(), "{stats:?}");
    assert_eq!(stats.cancelled, 5);
    let levels = queue.stats();
    assert_eq!(levels.queued(), 0);
    for level in Priority::ALL {
        let expected = if level == Priority::Critical { 2 } else { 1 }; // + the gate
        assert_eq!(levels.level(level).completed, expected, "{level:?}");
        assert_eq!(levels.level(level).pushed, expected + 1, "{level:?}");
        assert_eq!(levels.level(level).discarded, 1, "{level:?}");
    }
    assert_levels_balance(&levels);
}

#[test]
fn shutdown_now_cancels_queued_tasks_at_all_levels() {
    let (pool, queue) = one_worker(Aging::default());
    let gate = WorkerGate::occupy_at(&pool, 1, Priority::Critical);
    let log = Log::default();
    let handles: Vec<_> = (0..20u32)
        .map(|i| {
            submit_logged(
                &log,
                &pool,
                Priority::from_index(i as usize % 5).unwrap(),
                i,
            )
        })
        .collect();
    let raised = submit_logged(&log, &pool, Priority::Idle, 99);
    assert!(pool.raise_priority(&raised, Priority::High));
    std::thread::scope(|s| {
        let stopper = s.spawn(|| pool.shutdown_now());
        // shutdown_now empties the queue, then joins the worker, which needs the gate opened.
        // No event marks "queue emptied", so poll the count (bounded; not a timing assumption).
        let deadline = Instant::now() + PATIENCE;
        while !(pool.is_shutdown() && queue.stats().queued() == 0) {
            assert!(
                Instant::now() < deadline,
                "shutdown_now did not drain the queue"
            );
            std::thread::yield_now();
        }
        gate.open();
        assert_eq!(
            stopper.join().unwrap(),
            21,
            "every queued task was cancelled once"
        );
    });
    for h in handles.into_iter().chain([raised]) {
        assert_eq!(
            h.join().unwrap_err(),
            TaskError::Cancelled(CancelReason::Shutdown)
        );
    }
    assert!(log.entries().is_empty());
    let stats = pool.stats();
    assert!(stats.is_balanced(), "{stats:?}");
    assert_eq!((stats.cancelled, stats.completed), (21, 1));
    // 22 entries discarded: four per level, the raised task's two (Idle and High).
    let levels = queue.stats();
    assert_eq!(levels.discarded(), 22, "{levels}");
    assert_eq!(levels.level(Priority::High).discarded, 5, "{levels}");
    assert_eq!(levels.level(Priority::Idle).discarded, 5, "{levels}");
    assert_levels_balance(&levels);
    assert!(pool.submit_at(Priority::Critical, || ()).is_err());
}

#[test]
fn cancel_all_and_graceful_shutdown() {
    let (pool, queue) = one_worker(Aging::default());
    let gate = WorkerGate::occupy_at(&pool, 1, Priority::Critical);
    let log = Log::default();
    for i in 0..10u32 {
        submit_logged(
            &log,
            &pool,
            Priority::from_index(i as usize % 5).unwrap(),
            i,
        );
    }
    assert_eq!(pool.cancel_all(), 10);
    assert_eq!(queue.stats().queued(), 0);
    // Graceful shutdown runs what is queued, in priority order.
    submit_logged(&log, &pool, Priority::Idle, 100);
    submit_logged(&log, &pool, Priority::Critical, 101);
    std::thread::scope(|s| {
        let stopper = s.spawn(|| pool.shutdown());
        gate.open();
        stopper.join().unwrap();
    });
    assert_eq!(log.entries(), [101, 100]);
    let stats = pool.stats();
    assert!(stats.is_balanced());
    assert_eq!((stats.cancelled, stats.completed), (10, 3));
    let levels = queue.stats();
    assert_eq!(levels.discarded(), 10, "{levels}");
    assert_levels_balance(&levels);
}

#[test]
fn panics_are_counted_at_their_level_and_resize_works() {
    let queue = PriorityQueue::new();
    let pool = ThreadPool::builder()
        .threads(1)
        .queue_policy(queue.clone())
        .build()
        .unwrap();
    let bad = pool
        .submit_at(Priority::Low, || -> u32 { panic!("bad input") })
        .unwrap();
    assert_eq!(
        bad.join().unwrap_err(),
        TaskError::Panicked("bad input".into())
    );
    pool.set_threads(2).unwrap();
    let handles: Vec<_> = (0..200u32)
        .map(|i| pool.submit_at(Priority::Normal, move || i).unwrap())
        .collect();
    pool.set_threads(1).unwrap();
    let sum: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, (0..200).sum());
    settle(&pool);
    pool.shutdown();
    let stats = pool.stats();
    assert!(stats.is_balanced());
    assert_eq!(stats.panicked, 1);
    assert_eq!(queue.stats().level(Priority::Low).completed, 1);
    assert_eq!(queue.stats().level(Priority::Normal).completed, 200);
}

/// One queue serves one live pool. Before, a clone handed to a second pool's builder was taken:
/// each pool's workers ran the other's tasks (20 tasks on one pool: 10 ran on the other's
/// worker), one pool read `submitted 0 = completed 10`, the other kept 10 counted as queued
/// after its shutdown. Now the second build is refused, naming why, and the first pool is
/// untouched; once the first pool is dropped the queue serves another.
#[test]
fn a_queue_serves_one_live_pool_at_a_time() {
    let queue = PriorityQueue::new();
    let build = |name: &str| {
        ThreadPool::builder()
            .threads(1)
            .thread_name(name)
            .queue_policy(queue.clone())
            .build()
    };
    let first = build("first").unwrap();
    let refused = build("second").unwrap_err();
    assert!(refused.is_policy_refused(), "{refused}");
    assert!(
        refused.to_string().contains("already serves a live pool"),
        "{refused}"
    );
    let ran_on: Vec<String> = (0..20)
        .map(|_| {
            first
                .submit_at(Priority::Normal, || {
                    std::thread::current().name().unwrap_or("").to_owned()
                })
                .unwrap()
        })
        .map(|h| h.join_timeout(PATIENCE).unwrap())
        .collect();
    assert!(
        ran_on.iter().all(|name| name.starts_with("first")),
        "{ran_on:?}"
    );
    first.shutdown();
    let stats = first.stats();
    assert!(stats.is_balanced(), "{stats}");
    assert_eq!((stats.completed, stats.queued), (20, 0), "{stats}");
    assert_levels_balance(&queue.stats());
    drop(first);
    let second = build("second").unwrap();
    assert_eq!(
        second
            .submit_at(Priority::High, || 7)
            .unwrap()
            .join_timeout(PATIENCE)
            .unwrap(),
        7
    );
    second.shutdown();
    assert_eq!(queue.stats().completed(), 21);
}
