//! Order on a single worker: levels first, FIFO within a level, for every way of submitting.

mod common;

use common::{one_worker, settle, submit_logged};
use policy_priority::{priority_pool, Aging, PrioritySubmit};
use pool_core::{Executor, Priority};
use std::sync::mpsc;
use test_kit::{Log, WorkerGate, PATIENCE};

#[test]
fn higher_levels_first_fifo_within_each() {
    let (pool, queue) = one_worker(Aging::off());
    let gate = WorkerGate::occupy_at(&pool, 1, Priority::Critical);
    let log = Log::default();
    // Ids encode the expected position: level rank * 100 + arrival order within the level.
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let mut next_in_level = [0u32; 5];
    let mut handles = Vec::new();
    for _ in 0..100 {
        let level = Priority::from_index(rng.u64(..5) as usize).unwrap();
        let rank = 4 - level.index() as u32; // Critical = 0 .. Idle = 4
        let id = rank * 100 + next_in_level[level.index()];
        next_in_level[level.index()] += 1;
        handles.push(submit_logged(&log, &pool, level, id));
    }
    assert_eq!(queue.stats().queued(), 100);
    gate.open();
    for h in handles {
        h.join().unwrap();
    }
    let ran = log.entries();
    let mut expected = ran.clone();
    expected.sort_unstable();
    assert_eq!(ran.len(), 100);
    assert_eq!(
        ran, expected,
        "levels out of order or FIFO broken within a level"
    );
    pool.shutdown();
    let stats = queue.stats();
    for level in Priority::ALL {
        let gate = u64::from(level == Priority::Critical); // the gate task ran at Critical
        assert_eq!(
            stats.level(level).completed,
            u64::from(next_in_level[level.index()]) + gate,
            "completed at {level:?}"
        );
    }
    assert_eq!(stats.completed(), 101);
    assert!(pool.stats().is_balanced());
}

#[test]
fn fifo_within_one_level() {
    let (pool, _queue) = one_worker(Aging::off());
    let gate = WorkerGate::occupy_at(&pool, 1, Priority::Critical);
    let log = Log::default();
    for id in 0..500 {
        submit_logged(&log, &pool, Priority::Low, id);
    }
    gate.open();
    settle(&pool);
    assert_eq!(log.entries(), (0..500).collect::<Vec<_>>());
}

#[test]
fn fire_and_forget_jobs_follow_their_level() {
    let (pool, queue) = one_worker(Aging::off());
    let gate = WorkerGate::occupy_at(&pool, 1, Priority::Critical);
    let (tx, rx) = mpsc::channel();
    for (id, level) in [
        (3, Priority::Idle),
        (1, Priority::High),
        (2, Priority::Normal),
    ] {
        let tx = tx.clone();
        pool.execute_with_priority(Box::new(move || tx.send(id).unwrap()), level)
            .unwrap();
    }
    // Plain `spawn` and `execute` are Normal.
    let tx2 = tx.clone();
    pool.spawn(move || tx2.send(20).unwrap()).unwrap();
    gate.open();
    let ran: Vec<i32> = (0..4).map(|_| rx.recv_timeout(PATIENCE).unwrap()).collect();
    assert_eq!(ran, [1, 2, 20, 3]);
    settle(&pool);
    assert_eq!(queue.stats().level(Priority::Normal).completed, 2);
}

#[test]
fn tasks_submitted_from_a_worker_use_the_same_order() {
    // With local queues a worker's own deque would run its Idle child first; this policy keeps
    // one global queue, so the Critical child submitted second still runs first.
    let (pool, _queue) = one_worker(Aging::off());
    let pool = std::sync::Arc::new(pool);
    let log = Log::default();
    let (p, l) = (pool.clone(), log.clone());
    pool.submit_at(Priority::Normal, move || {
        submit_logged(&l, &p, Priority::Idle, 2);
        submit_logged(&l, &p, Priority::Critical, 1);
    })
    .unwrap()
    .join()
    .unwrap();
    settle(&pool);
    assert_eq!(log.entries(), [1, 2]);
    pool.shutdown();
}

#[test]
fn many_workers_run_everything_and_count_per_level() {
    let (pool, queue) = priority_pool(2).unwrap();
    let mut handles = Vec::new();
    for i in 0..1000u32 {
        let level = Priority::from_index((i % 5) as usize).unwrap();
        handles.push(pool.submit_at(level, move || i).unwrap());
    }
    let sum: u64 = handles
        .into_iter()
        .map(|h| u64::from(h.join().unwrap()))
        .sum();
    assert_eq!(sum, (0..1000u64).sum());
    pool.shutdown();
    let stats = queue.stats();
    for (level, s) in stats.iter() {
        assert_eq!(
            (s.pushed, s.completed, s.queued),
            (200, 200, 0),
            "{level:?}"
        );
    }
    assert!(pool.stats().is_balanced());
}
