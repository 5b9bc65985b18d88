//! Cancellation: before start (exact), while running (cooperative), by deadline, under stress.

use pool_core::{CancelReason, JoinTimeoutError, TaskError, TaskOptions, ThreadPool};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_kit::{WorkerGate, PATIENCE};

#[test]
fn cancel_before_start_prevents_the_run_and_drops_the_closure() {
    let pool = ThreadPool::new(1).unwrap();
    let gate = WorkerGate::occupy(&pool, 1);
    let captured = Arc::new(());
    let c = captured.clone();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let handle = pool
        .submit(move || {
            let _keep = c;
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    assert!(handle.cancel());
    // The closure (and what it captured) is released at cancel time, not when a worker gets to it.
    assert_eq!(Arc::strong_count(&captured), 1);
    assert!(handle.is_cancelled() && handle.is_finished());
    assert!(!handle.cancel(), "a second cancel does not win again");
    gate.open();
    assert_eq!(
        handle.join(),
        Err(TaskError::Cancelled(CancelReason::Requested))
    );
    assert!(pool.wait_idle(PATIENCE));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    pool.shutdown();
    let stats = pool.stats();
    assert_eq!(stats.cancelled, 1);
    assert!(stats.is_balanced(), "{stats}");
}

#[test]
fn cancel_while_running_is_cooperative() {
    let pool = ThreadPool::new(1).unwrap();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let handle = pool
        .submit_cancellable(move |token| {
            started_tx.send(()).unwrap();
            let mut spins = 0u64;
            while !token.is_cancelled() {
                spins += 1;
                std::thread::yield_now();
            }
            spins
        })
        .unwrap();
    started_rx.recv_timeout(PATIENCE).unwrap();
    assert!(!handle.cancel(), "too late to prevent the start");
    assert!(
        handle.join().is_ok(),
        "the task saw the request and returned"
    );
}

#[test]
fn cancel_after_finish_returns_false() {
    let pool = ThreadPool::new(1).unwrap();
    let handle = pool.submit(|| 3).unwrap();
    assert!(pool.wait_idle(PATIENCE));
    assert!(handle.is_finished());
    assert!(!handle.cancel());
    assert_eq!(handle.join(), Ok(3));
}

#[test]
fn an_expired_start_deadline_cancels_the_task_and_says_why() {
    let pool = ThreadPool::new(1).unwrap();
    let gate = WorkerGate::occupy(&pool, 1);
    let already_passed = Instant::now() - Duration::from_millis(1);
    let late = pool
        .submit_with(TaskOptions::new().start_deadline(already_passed), || {
            "too late"
        })
        .unwrap();
    let on_time = pool
        .submit_with(
            TaskOptions::new().start_within(Duration::from_secs(3600)),
            || "ok",
        )
        .unwrap();
    // The deadline is checked when a worker reaches the task: no timer thread.
    gate.open();
    assert_eq!(
        late.join(),
        Err(TaskError::Cancelled(CancelReason::DeadlineExpired))
    );
    assert_eq!(on_time.join(), Ok("ok"));
    pool.shutdown();
    assert_eq!(pool.stats().cancelled, 1);
}

#[test]
fn join_timeout_hands_the_handle_back() {
    let pool = ThreadPool::new(1).unwrap();
    let gate = WorkerGate::occupy(&pool, 1);
    let handle = pool.submit(|| 9).unwrap();
    let handle = match handle.join_timeout(Duration::from_millis(1)) {
        Err(JoinTimeoutError::TimedOut(h)) => h,
        other => panic!("expected a timeout, got {other:?}"),
    };
    gate.open();
    assert_eq!(handle.join_timeout(PATIENCE).unwrap(), 9);
}

#[test]
fn cancel_all_cancels_exactly_the_queued_tasks() {
    let pool = ThreadPool::new(2).unwrap();
    let gate = WorkerGate::occupy(&pool, 2);
    let handles: Vec<_> = (0..50).map(|i| pool.submit(move || i).unwrap()).collect();
    assert_eq!(pool.cancel_all(), 50);
    gate.open();
    for h in handles {
        assert_eq!(h.join(), Err(TaskError::Cancelled(CancelReason::CancelAll)));
    }
    pool.shutdown();
    let stats = pool.stats();
    assert_eq!((stats.cancelled, stats.completed), (50, 2));
    assert!(stats.is_balanced(), "{stats}");
}

/// Many threads race cancels against starts: exactly one side wins each time.
#[test]
fn cancel_races_start_under_stress() {
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let runs = Arc::new(AtomicUsize::new(0));
    let mut cancels_won = 0;
    let per_thread = 2_000;
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let pool = pool.clone();
            let runs = runs.clone();
            std::thread::spawn(move || {
                let mut won = 0;
                for i in 0..per_thread {
                    let r = runs.clone();
                    let h = pool
                        .submit(move || {
                            r.fetch_add(1, Ordering::SeqCst);
                        })
                        .unwrap();
                    if i % 3 == 0 {
                        std::hint::spin_loop();
                    }
                    let cancelled = h.cancel();
                    match h.join() {
                        Ok(()) => assert!(!cancelled, "cancel returned true but the task ran"),
                        Err(TaskError::Cancelled(_)) => {
                            assert!(cancelled);
                            won += 1;
                        }
                        Err(e) => panic!("unexpected {e}"),
                    }
                }
                won
            })
        })
        .collect();
    for t in threads {
        cancels_won += t.join().unwrap();
    }
    let total = 4 * per_thread;
    assert_eq!(runs.load(Ordering::SeqCst) + cancels_won, total);
    pool.shutdown();
    let stats = pool.stats();
    assert_eq!(stats.submitted as usize, total);
    assert_eq!(stats.cancelled as usize, cancels_won);
    assert!(stats.is_balanced(), "{stats}");
}
