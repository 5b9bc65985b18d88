//! Submitting: values, panics, refusals after shutdown, tasks spawning tasks.

use pollster::block_on;
use pool_core::{Executor, Job, Priority, TaskError, ThreadPool};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use test_kit::{Bomb, Log, WorkerGate, PATIENCE};

#[test]
fn submit_returns_the_value() {
    let pool = ThreadPool::new(2).unwrap();
    let handles: Vec<_> = (0..100u64)
        .map(|i| pool.submit(move || i * i).unwrap())
        .collect();
    let values: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(values, (0..100u64).map(|i| i * i).collect::<Vec<_>>());
}

#[test]
fn a_panic_is_reported_with_its_message_and_the_worker_lives_on() {
    let pool = ThreadPool::new(1).unwrap();
    let bad = pool
        .submit(|| -> u32 { panic!("parse error at line {}", 7) })
        .unwrap();
    assert_eq!(
        bad.join(),
        Err(TaskError::Panicked("parse error at line 7".into()))
    );
    let good = pool.submit(|| 1).unwrap();
    assert_eq!(good.join(), Ok(1));
    pool.shutdown();
    let stats = pool.stats();
    assert_eq!(
        (stats.panicked, stats.completed, stats.live_threads),
        (1, 1, 0)
    );
    assert!(stats.is_balanced(), "{stats}");
}

#[test]
fn non_string_panic_payloads_are_reported() {
    let pool = ThreadPool::new(1).unwrap();
    let bad = pool.submit(|| std::panic::panic_any(42u8)).unwrap();
    assert!(matches!(bad.join(), Err(TaskError::Panicked(m)) if m.contains("non-string")));
}

#[test]
fn submit_after_shutdown_hands_the_closure_back() {
    let pool = ThreadPool::new(1).unwrap();
    pool.shutdown();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let refused = pool
        .submit(move || r.fetch_add(1, Ordering::SeqCst))
        .unwrap_err();
    // The job is ours again: running it proves nothing was lost.
    (refused.into_inner())();
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert!(pool.spawn(|| ()).is_err());
    let job: Job = Box::new(|| ());
    assert!(pool.execute(job).is_err());
    let stats = pool.stats();
    assert_eq!((stats.submitted, stats.rejected), (3, 3));
    assert!(stats.is_balanced());
}

#[test]
fn executor_trait_runs_jobs_and_accepts_priority_hints() {
    let pool = ThreadPool::new(2).unwrap();
    let exec: &dyn Executor = &pool;
    let count = Arc::new(AtomicUsize::new(0));
    for i in 0..50 {
        let c = count.clone();
        let p = Priority::from_index(i % 5).unwrap();
        exec.execute_with_priority(
            Box::new(move || {
                c.fetch_add(1, Ordering::SeqCst);
            }),
            p,
        )
        .unwrap();
    }
    assert!(pool.wait_idle(PATIENCE));
    assert_eq!(count.load(Ordering::SeqCst), 50);
}

#[test]
fn tasks_spawning_tasks_all_run() {
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    fn fan_out(pool: &Arc<ThreadPool>, count: &Arc<AtomicUsize>, depth: u32) {
        count.fetch_add(1, Ordering::SeqCst);
        if depth == 0 {
            return;
        }
        for _ in 0..2 {
            let (p, c) = (pool.clone(), count.clone());
            pool.spawn(move || fan_out(&p, &c, depth - 1)).unwrap();
        }
    }
    let (p, c) = (pool.clone(), count.clone());
    pool.spawn(move || fan_out(&p, &c, 12)).unwrap();
    assert!(pool.wait_idle(PATIENCE));
    assert_eq!(count.load(Ordering::SeqCst), (1 << 13) - 1);
    let stats = pool.stats();
    assert_eq!(stats.completed, (1 << 13) - 1);
    assert!(stats.is_balanced(), "{stats}");
}

#[test]
fn fifo_order_from_one_submitter_on_one_worker() {
    let pool = ThreadPool::new(1).unwrap();
    let gate = WorkerGate::occupy(&pool, 1);
    let log = Log::default();
    for i in 0..20 {
        let log = log.clone();
        pool.spawn(move || log.push(i)).unwrap();
    }
    gate.open();
    assert!(pool.wait_idle(PATIENCE));
    assert_eq!(log.take(), (0..20).collect::<Vec<_>>());
}

#[test]
fn handles_can_be_awaited() {
    let pool = ThreadPool::new(2).unwrap();
    let a = pool.submit(|| 20).unwrap();
    let b = pool.submit(|| 22).unwrap();
    let sum = block_on(async move { a.await.unwrap() + b.await.unwrap() });
    assert_eq!(sum, 42);
}

#[test]
fn an_awaited_handle_is_woken_by_completion() {
    let pool = ThreadPool::new(1).unwrap();
    let gate = WorkerGate::occupy(&pool, 1);
    let handle = pool.submit(|| "late").unwrap();
    let opener = std::thread::spawn(move || gate.open());
    // Polled while queued (Pending, waker stored), completed later: the waker must fire.
    assert_eq!(block_on(handle).unwrap(), "late");
    opener.join().unwrap();
}

#[test]
fn task_ids_are_unique_and_stable() {
    let pool = ThreadPool::new(2).unwrap();
    let handles: Vec<_> = (0..100).map(|_| pool.submit(|| ()).unwrap()).collect();
    let mut ids: Vec<_> = handles.iter().map(|h| h.id()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 100);
}

#[test]
fn state_queries_follow_the_task() {
    let pool = ThreadPool::new(1).unwrap();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let running = pool
        .submit(move || {
            started_tx.send(()).unwrap();
            release_rx.recv_timeout(PATIENCE).unwrap();
        })
        .unwrap();
    let queued = pool.submit(|| ()).unwrap();
    started_rx.recv_timeout(PATIENCE).unwrap();
    assert!(running.is_running() && !running.is_finished() && !running.is_cancelled());
    assert!(!queued.is_running() && !queued.is_finished());
    release_tx.send(()).unwrap();
    let id = queued.id();
    assert!(format!("{queued:?}").contains(&format!("{}", id.as_u64())));
    running.join().unwrap();
    queued.join().unwrap();
}

/// A value or closure whose destructor panics must not take a worker down, wherever it is dropped.
#[test]
fn panicking_destructors_do_not_kill_workers() {
    test_kit::quiet_panics(|_| false);
    let pool = ThreadPool::new(1).unwrap();

    // The value is dropped on the worker, since the handle is gone before the task runs.
    let gate = WorkerGate::occupy(&pool, 1);
    drop(pool.submit(|| Bomb(1)).unwrap());
    gate.open();
    assert!(pool.wait_idle(PATIENCE));

    // A cancelled closure is dropped by whoever cancels; a discarded job by `cancel_all`.
    let gate = WorkerGate::occupy(&pool, 1);
    let bomb = Bomb(1);
    let queued = pool.submit(move || drop(bomb)).unwrap();
    let bomb = Bomb(1);
    pool.spawn(move || drop(bomb)).unwrap();
    assert!(queued.cancel());
    assert_eq!(pool.cancel_all(), 1);
    gate.open();
    assert!(pool.wait_idle(PATIENCE));

    assert_eq!(
        pool.submit(|| 7).unwrap().join(),
        Ok(7),
        "the single worker is alive"
    );
    pool.shutdown();
    let stats = pool.stats();
    assert_eq!((stats.completed, stats.cancelled), (4, 2), "{stats}");
    assert!(stats.is_balanced(), "{stats}");
}

/// A worker runs its own newest spawn first (depth-first, hot in cache); outside submissions
/// keep their order.
#[test]
fn a_workers_own_spawns_run_newest_first() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let log = Log::default();
    let (p, l) = (pool.clone(), log.clone());
    pool.spawn(move || {
        for i in 0..5 {
            let l = l.clone();
            p.spawn(move || l.push(i)).unwrap();
        }
    })
    .unwrap();
    assert!(pool.wait_idle(PATIENCE));
    assert_eq!(log.take(), [4, 3, 2, 1, 0]);
}

/// A task that keeps spawning its successor never empties its worker's deque; the worker still
/// looks at the shared queue periodically, so an outside submission is not starved.
#[test]
fn a_self_feeding_task_does_not_starve_outside_work() {
    const CAP: usize = 1_000_000;
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let links = Arc::new(AtomicUsize::new(0));
    fn link(
        pool: Arc<ThreadPool>,
        stop: Arc<std::sync::atomic::AtomicBool>,
        links: Arc<AtomicUsize>,
    ) {
        if stop.load(Ordering::SeqCst) || links.fetch_add(1, Ordering::SeqCst) >= CAP {
            return;
        }
        let p = pool.clone();
        pool.spawn(move || link(p, stop, links)).unwrap();
    }
    let (p, s, l) = (pool.clone(), stop.clone(), links.clone());
    pool.spawn(move || link(p, s, l)).unwrap();
    let s = stop.clone();
    let outside = pool
        .submit(move || s.store(true, Ordering::SeqCst))
        .unwrap();
    outside.join_timeout(PATIENCE).unwrap();
    assert!(pool.wait_idle(PATIENCE));
    let ran = links.load(Ordering::SeqCst);
    assert!(
        ran < CAP,
        "the outside task waited for the whole chain ({ran} links)"
    );
}
