//! The starvation guard on a real pool. The exact bound arithmetic is unit-tested with a
//! synthetic clock (src/levels.rs); here we check the behaviour end to end, by counts.

mod common;

use common::{one_worker, submit_logged};
use policy_priority::{Aging, PrioritySubmit};
use pool_core::{Priority, ThreadPool};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use test_kit::{Log, WorkerGate, PATIENCE};

struct Stream {
    pool: Arc<ThreadPool>,
    ran: AtomicU32,
    idle_ran: AtomicBool,
    cap: u32,
    work: Duration,
    end: mpsc::Sender<u32>,
}

/// One link of a steady High stream: it queues its successor before doing its work, so a High
/// task is always waiting when the worker looks for the next task. The stream stops once the
/// Idle task has run (to keep the test short) or after `cap` links.
fn link(stream: Arc<Stream>) {
    let s = stream.clone();
    let more = !s.idle_ran.load(Ordering::SeqCst) && s.ran.load(Ordering::SeqCst) + 1 < s.cap;
    if more {
        let next = stream.clone();
        s.pool
            .submit_at(Priority::High, move || link(next))
            .expect("pool is running");
    }
    if !s.work.is_zero() {
        std::thread::sleep(s.work); // the link's "work"; time must pass for anything to age
    }
    let ran = s.ran.fetch_add(1, Ordering::SeqCst) + 1;
    if !more {
        s.end.send(ran).unwrap();
    }
}

/// Runs an Idle task against a High stream; returns (High links run before the Idle task,
/// links run in total).
fn idle_against_high_stream(aging: Aging, cap: u32, work: Duration) -> (u32, u32, u64) {
    let (pool, queue) = one_worker(aging);
    let pool = Arc::new(pool);
    let (end, ended) = mpsc::channel();
    let stream = Arc::new(Stream {
        pool: pool.clone(),
        ran: AtomicU32::new(0),
        idle_ran: AtomicBool::new(false),
        cap,
        work,
        end,
    });
    let gate = WorkerGate::occupy_at(&pool, 1, Priority::Critical);
    let s = stream.clone();
    let idle = pool
        .submit_at(Priority::Idle, move || {
            s.idle_ran.store(true, Ordering::SeqCst);
            s.ran.load(Ordering::SeqCst)
        })
        .unwrap();
    let first = stream.clone();
    pool.submit_at(Priority::High, move || link(first)).unwrap();
    gate.open();
    let before_idle = idle.join_timeout(PATIENCE).expect("the Idle task ran");
    let total = ended.recv_timeout(PATIENCE).expect("the stream ended");
    assert!(pool.wait_idle(PATIENCE));
    drop(stream);
    pool.shutdown();
    assert!(pool.stats().is_balanced());
    (before_idle, total, queue.stats().aged)
}

#[test]
fn idle_task_runs_during_a_steady_high_stream() {
    // Bound 10 ms, each link ~0.5 ms: the Idle task is overdue after about 20 links. The cap
    // is far beyond that, so reaching it would mean the guard failed.
    let aging = Aging::after(Duration::from_millis(10)).unwrap();
    let cap = 20_000;
    let (before_idle, total, aged) =
        idle_against_high_stream(aging, cap, Duration::from_micros(500));
    assert!(
        before_idle < cap,
        "the Idle task waited for the whole stream"
    );
    assert!(
        total < cap,
        "the stream stopped early because the Idle task ran"
    );
    assert!(aged >= 1, "the Idle task was served by aging");
}

#[test]
fn without_aging_idle_waits_for_the_whole_stream() {
    let cap = 300;
    let (before_idle, total, aged) = idle_against_high_stream(Aging::off(), cap, Duration::ZERO);
    assert_eq!(total, cap);
    assert_eq!(
        before_idle, cap,
        "strict priority: Idle runs only after every High task"
    );
    assert_eq!(aged, 0);
}

#[test]
fn an_overdue_backlog_delays_critical_work_by_at_most_one_task() {
    let (pool, queue) = one_worker(Aging::after(Duration::from_millis(1)).unwrap());
    let gate = WorkerGate::occupy_at(&pool, 1, Priority::Critical);
    let log = Log::default();
    for id in 0..50 {
        submit_logged(&log, &pool, Priority::Idle, id);
    }
    assert_eq!(queue.stats().level(Priority::Idle).queued, 50);
    // Let the backlog become overdue (time has to pass; nothing is waited for by sleeping).
    std::thread::sleep(Duration::from_millis(5));
    let critical = submit_logged(&log, &pool, Priority::Critical, 1000);
    gate.open();
    critical.join_timeout(PATIENCE).unwrap();
    assert!(pool.wait_idle(PATIENCE));
    let ran = log.entries();
    let position = ran.iter().position(|&id| id == 1000).unwrap();
    assert!(
        position <= 1,
        "Critical ran at position {position}: {ran:?}"
    );
    // The Idle backlog itself still ran in FIFO order.
    let idle: Vec<u32> = ran.into_iter().filter(|&id| id < 1000).collect();
    assert_eq!(idle, (0..50).collect::<Vec<_>>());
    pool.shutdown();
    assert!(queue.stats().aged >= 1);
}

#[test]
fn a_waiting_task_is_not_served_by_aging_before_the_bound() {
    // The other side of the guard: against a steady High stream, the Idle task starts only once
    // it has waited about the bound (aging stamps are coarse; see src/README.md, "The aging
    // stamp").
    let bound = Duration::from_millis(30);
    let (pool, _queue) = one_worker(Aging::after(bound).unwrap());
    let pool = Arc::new(pool);
    let (end, ended) = mpsc::channel();
    let stream = Arc::new(Stream {
        pool: pool.clone(),
        ran: AtomicU32::new(0),
        idle_ran: AtomicBool::new(false),
        cap: 20_000,
        work: Duration::from_micros(500),
        end,
    });
    let gate = WorkerGate::occupy_at(&pool, 1, Priority::Critical);
    let s = stream.clone();
    let queued = std::time::Instant::now();
    let idle = pool
        .submit_at(Priority::Idle, move || {
            s.idle_ran.store(true, Ordering::SeqCst);
            queued.elapsed()
        })
        .unwrap();
    let first = stream.clone();
    pool.submit_at(Priority::High, move || link(first)).unwrap();
    gate.open();
    let waited = idle.join_timeout(PATIENCE).expect("the Idle task ran");
    ended.recv_timeout(PATIENCE).expect("the stream ended");
    // Stamps are coarse: early by less than 1/64 of the bound plus the time since the tick's
    // last refresh (src/clock.rs); the Idle push refreshes it (its level was empty). Much more
    // than that would mean stale stamps.
    let tolerance = bound / 64 + Duration::from_millis(1);
    assert!(
        waited > bound - tolerance,
        "served by aging after {waited:?}, bound {bound:?}"
    );
    drop(stream);
    pool.shutdown();
}
