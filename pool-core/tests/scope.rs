//! `ThreadPool::scope`, `ThreadPool::join` and the scoped `map_batch`: borrowing from the stack,
//! nesting, helping waits, panics re-raised only after everything finished, and the pool dropping
//! scoped jobs (`shutdown_now`, `cancel_all`) without hanging the scope.

use pool_core::{CancelReason, Scope, TaskError, ThreadPool};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use test_kit::{eventually, Bomb, WorkerGate, PATIENCE};

/// Silences the panics these tests provoke on purpose.
fn quiet_panics() {
    test_kit::quiet_panics(|message| {
        message.starts_with("expected") || message.contains("discarded")
    });
}

fn message(payload: &(dyn std::any::Any + Send)) -> String {
    pool_core::panic_message(payload)
}

#[test]
fn spawned_closures_borrow_and_mutate_the_callers_stack() {
    let pool = ThreadPool::new(3).unwrap();
    let input: Vec<u64> = (0..100).collect();
    let mut squares = vec![0u64; input.len()];
    let label = String::from("squares");
    let seen = pool.scope(|s| {
        for (x, out) in input.iter().zip(squares.iter_mut()) {
            s.spawn(move |_| *out = x * x);
        }
        s.spawn(|_| assert_eq!(label, "squares"));
        label.len()
    });
    assert_eq!(seen, 7);
    assert_eq!(squares, input.iter().map(|x| x * x).collect::<Vec<_>>());
    pool.shutdown();
    let stats = pool.stats();
    assert_eq!(stats.completed, 101);
    assert!(stats.is_balanced(), "{stats:?}");
}

fn count_tree<'scope>(s: &Scope<'scope>, depth: u32, nodes: &'scope AtomicUsize) {
    nodes.fetch_add(1, Ordering::Relaxed);
    if depth > 0 {
        s.spawn(move |s| count_tree(s, depth - 1, nodes));
        s.spawn(move |s| count_tree(s, depth - 1, nodes));
    }
}

#[test]
fn nested_spawns_join_before_the_scope_returns() {
    for threads in [1, 2, 4] {
        let pool = ThreadPool::new(threads).unwrap();
        let nodes = AtomicUsize::new(0);
        pool.scope(|s| count_tree(s, 10, &nodes));
        assert_eq!(
            nodes.load(Ordering::Relaxed),
            (1 << 11) - 1,
            "{threads} workers"
        );
    }
}

#[test]
fn a_scope_inside_a_task_on_a_one_worker_pool_helps_instead_of_deadlocking() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let inner = Arc::clone(&pool);
    let outer = pool
        .submit(move || {
            let inner: &ThreadPool = &inner;
            let mut slots = [0u32; 16];
            inner.scope(|s| {
                for (i, slot) in slots.iter_mut().enumerate() {
                    // The only worker is running this task: every spawn can only run because
                    // the waiting scope runs it.
                    s.spawn(move |s| {
                        let nodes = AtomicUsize::new(0);
                        // A nested scope, from a scoped closure, on the same worker.
                        inner.scope(|t| count_tree(t, 3, &nodes));
                        *slot = i as u32 + nodes.into_inner() as u32;
                        s.spawn(|_| ());
                    });
                }
            });
            slots.iter().sum::<u32>()
        })
        .unwrap();
    let expected = (0..16).sum::<u32>() + 16 * 15;
    assert_eq!(
        outer.join_timeout(PATIENCE).expect("the scope hung"),
        expected
    );
}

#[test]
fn a_panic_reaches_the_caller_only_after_every_spawned_closure_finished() {
    quiet_panics();
    let pool = ThreadPool::new(2).unwrap();
    let panicked = AtomicBool::new(false);
    let finished = AtomicUsize::new(0);
    let result = catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            // Outside submissions start in order, so this one starts first.
            s.spawn(|_| {
                panicked.store(true, Ordering::SeqCst);
                panic!("expected: spawned closure");
            });
            for _ in 0..4 {
                s.spawn(|_| {
                    while !panicked.load(Ordering::SeqCst) {
                        std::thread::yield_now();
                    }
                    // Still running well after the panic happened.
                    std::thread::sleep(Duration::from_millis(20));
                    finished.fetch_add(1, Ordering::SeqCst);
                });
            }
        })
    }));
    let finished_before = finished.load(Ordering::SeqCst);
    let payload = result.expect_err("the panic was not re-raised");
    assert_eq!(message(payload.as_ref()), "expected: spawned closure");
    assert_eq!(finished_before, 4, "the panic overtook running closures");
    pool.shutdown();
    let stats = pool.stats();
    // The scope catches its closures' panics itself: the pool saw five jobs complete.
    assert_eq!((stats.completed, stats.panicked), (5, 0), "{stats:?}");
    assert!(stats.is_balanced(), "{stats:?}");
}

#[test]
fn a_panic_of_the_body_waits_for_the_spawned_closures_too() {
    quiet_panics();
    let pool = ThreadPool::new(2).unwrap();
    let finished = AtomicUsize::new(0);
    let result = catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            for _ in 0..3 {
                s.spawn(|_| {
                    std::thread::sleep(Duration::from_millis(20));
                    finished.fetch_add(1, Ordering::SeqCst);
                });
            }
            panic!("expected: body");
        })
    }));
    assert_eq!(finished.load(Ordering::SeqCst), 3);
    let payload = result.expect_err("the body's panic was not re-raised");
    assert_eq!(message(payload.as_ref()), "expected: body");
}

#[test]
fn only_the_first_panic_reaches_the_caller_and_hostile_payloads_are_dropped_quietly() {
    quiet_panics();
    let pool = ThreadPool::new(1).unwrap();
    let ran = AtomicUsize::new(0);
    let result = catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            // One worker runs outside submissions in order: "expected: first" is recorded first.
            s.spawn(|_| {
                ran.fetch_add(1, Ordering::SeqCst);
                panic!("expected: first");
            });
            for depth in 0..3 {
                let ran = &ran;
                s.spawn(move |_| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    std::panic::panic_any(Bomb(depth));
                });
            }
        })
    }));
    assert_eq!(ran.load(Ordering::SeqCst), 4);
    let payload = result.expect_err("no panic re-raised");
    assert_eq!(message(payload.as_ref()), "expected: first");
    // The pool's only worker survived the hostile payloads.
    assert_eq!(pool.submit(|| 5).unwrap().join().unwrap(), 5);
}

#[test]
fn hostile_captures_of_scoped_closures_are_contained_on_every_path() {
    quiet_panics();
    let pool = ThreadPool::new(2).unwrap();
    let is_bomb = |payload: &Box<dyn std::any::Any + Send>| payload.is::<Bomb>();
    // Run by a worker: each capture's `Drop` panics (with a payload whose `Drop` panics too)
    // once its closure has run; the first of those panics is the scope's.
    let ran = AtomicUsize::new(0);
    let result = catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            for _ in 0..4 {
                let (bomb, ran) = (Bomb(2), &ran);
                s.spawn(move |_| {
                    let _captured = &bomb;
                    ran.fetch_add(1, Ordering::SeqCst);
                });
            }
        })
    }));
    assert_eq!(ran.load(Ordering::SeqCst), 4);
    let payload = result.expect_err("a capture's panicking Drop was not re-raised");
    assert!(is_bomb(&payload));
    pool_core::drop_quietly(payload);
    // Refused by the shut-down pool and run on the caller instead: the same.
    pool.shutdown();
    let result = catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            let bomb = Bomb(2);
            s.spawn(move |_| drop(bomb));
        })
    }));
    let payload = result.expect_err("a capture's panicking Drop was not re-raised");
    assert!(is_bomb(&payload));
    pool_core::drop_quietly(payload);
    // Refused and dropped unrun (`map_batch`): the hostile inputs are dropped quietly and every
    // input is reported.
    let results = pool.map_batch((0..3).map(|_| Bomb(2)), |bomb| bomb.0, |_| {});
    assert!(results
        .iter()
        .all(|r| *r == Err(TaskError::Cancelled(CancelReason::Shutdown))));
    let stats = pool.stats();
    assert_eq!((stats.completed, stats.panicked, stats.rejected), (4, 0, 4));
    assert!(stats.is_balanced(), "{stats:?}");
}

#[test]
fn shutdown_now_while_scoped_closures_are_queued_returns_and_reports_them() {
    quiet_panics();
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let (started_tx, started) = mpsc::channel();
    let (release, gate) = mpsc::channel::<()>();
    let stopper = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || {
            started.recv_timeout(PATIENCE).expect("the blocker started");
            let releaser = {
                let pool = Arc::clone(&pool);
                std::thread::spawn(move || {
                    // Let the blocker go only once the queued closures are discarded, or the
                    // worker could run them first.
                    assert!(
                        eventually(|| pool.stats().cancelled == 5),
                        "timed out waiting for the discard"
                    );
                    release.send(()).unwrap();
                })
            };
            let cancelled = pool.shutdown_now();
            releaser.join().unwrap();
            cancelled
        })
    };
    let ran = AtomicUsize::new(0);
    let blocker_done = AtomicBool::new(false);
    let (ran_ref, done_ref) = (&ran, &blocker_done);
    let result = catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            s.spawn(move |_| {
                started_tx.send(()).unwrap();
                gate.recv_timeout(PATIENCE).unwrap();
                done_ref.store(true, Ordering::SeqCst);
            });
            for _ in 0..5 {
                s.spawn(move |_| {
                    ran_ref.fetch_add(1, Ordering::SeqCst);
                });
            }
        })
    }));
    assert_eq!(stopper.join().unwrap(), 5);
    let payload = result.expect_err("the scope returned normally with work discarded");
    let text = message(payload.as_ref());
    assert!(text.contains("discarded 5 spawned closure"), "{text}");
    assert!(
        blocker_done.load(Ordering::SeqCst),
        "the scope returned before its running closure"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    let stats = pool.stats();
    assert_eq!((stats.completed, stats.cancelled), (1, 5));
    assert!(stats.is_balanced(), "{stats:?}");
}

#[test]
fn a_scope_on_a_shut_down_pool_runs_its_closures_on_the_caller() {
    let pool = ThreadPool::new(2).unwrap();
    pool.shutdown();
    let caller = std::thread::current().id();
    let mut ran_on = Vec::new();
    let ran_on_ref = std::sync::Mutex::new(&mut ran_on);
    pool.scope(|s| {
        for _ in 0..3 {
            s.spawn(|s| {
                ran_on_ref.lock().unwrap().push(std::thread::current().id());
                s.spawn(|_| ran_on_ref.lock().unwrap().push(std::thread::current().id()));
            });
        }
    });
    assert_eq!(ran_on, vec![caller; 6]);
    assert_eq!(pool.stats().rejected, 6);
}

#[test]
fn a_spawn_from_a_worker_refused_by_shutdown_now_runs_inline_on_that_worker() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let (started_tx, started) = mpsc::channel();
    let inner = Arc::clone(&pool);
    let task = pool
        .submit(move || {
            started_tx.send(()).unwrap();
            // Spawns from a worker are refused once `shutdown_now` has begun.
            assert!(
                eventually(|| pool_core::spawn_here(|| ()).is_err()),
                "shutdown_now did not begin"
            );
            let mut ran_on = Vec::new();
            inner.scope(|s| {
                // The body runs on the worker, so this takes the worker's own route, refused.
                s.spawn(|_| ran_on.push(std::thread::current().id()));
            });
            ran_on == [std::thread::current().id()]
        })
        .unwrap();
    started.recv_timeout(PATIENCE).unwrap();
    pool.shutdown_now();
    assert_eq!(
        task.join_timeout(PATIENCE).ok(),
        Some(true),
        "the refused closure did not run inline on the worker"
    );
    let stats = pool.stats();
    assert!(stats.rejected >= 2, "{stats:?}");
    assert!(stats.is_balanced(), "{stats:?}");
}

#[test]
fn map_batch_takes_borrowed_inputs_and_a_borrowing_function() {
    let pool = ThreadPool::new(2).unwrap();
    let words: Vec<String> = ["scope", "join", "batch"].map(String::from).to_vec();
    let suffix = String::from("!");
    let mut progress = Vec::new();
    let results = pool.map_batch(
        words.iter(),
        |w| format!("{w}{suffix}"),
        |p| progress.push(p.done),
    );
    let results: Vec<String> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(results, ["scope!", "join!", "batch!"]);
    assert_eq!(progress.last(), Some(&3));
}

#[test]
fn map_batch_reports_inputs_discarded_by_cancel_all_instead_of_hanging() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let gate = WorkerGate::occupy(&pool, 1);
    let batch = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || pool.map_batch(0..4u32, |x| x + 1, |_| {}))
    };
    assert!(
        eventually(|| pool.queue_len() == 4),
        "timed out waiting for the batch's inputs queued"
    );
    assert_eq!(pool.cancel_all(), 4);
    gate.open();
    let results = batch.join().unwrap();
    assert!(
        results
            .iter()
            .all(|r| *r == Err(TaskError::Cancelled(CancelReason::CancelAll))),
        "{results:?}"
    );
}

#[test]
fn join_runs_both_sides_and_returns_both_results() {
    let pool = ThreadPool::new(2).unwrap();
    let mut left = vec![5, 3, 1];
    let right = [2, 4];
    let (a, b) = pool.join(
        || {
            left.sort();
            left.len()
        },
        || right.iter().sum::<i32>(),
    );
    assert_eq!((a, b), (3, 6));
    assert_eq!(left, [1, 3, 5]);
}

/// Joins `depth` deep below `i`, counting the calls.
fn join_tree(pool: &ThreadPool, depth: u32, calls: &AtomicUsize) {
    if depth == 0 {
        return;
    }
    calls.fetch_add(1, Ordering::Relaxed);
    pool.join(
        || join_tree(pool, depth - 1, calls),
        || join_tree(pool, depth - 1, calls),
    );
}

#[test]
fn a_join_on_a_worker_takes_its_untouched_half_back_and_leaves_nothing_queued() {
    // One worker, so no thief: every join's queued half is still the newest entry of the
    // worker's deque when `a` returns, and is run there and then. Left queued, each call would
    // leave an empty shell behind (511 here), counted as queued until some worker popped it.
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let (sent, received) = mpsc::channel();
    {
        let (pool2, calls) = (Arc::clone(&pool), Arc::clone(&calls));
        pool.spawn(move || {
            join_tree(&pool2, 10, &calls);
            sent.send(pool2.stats()).unwrap();
        })
        .unwrap();
    }
    let inside = received
        .recv_timeout(PATIENCE)
        .expect("the join tree finished");
    assert_eq!(calls.load(Ordering::Relaxed), 1023);
    assert_eq!(inside.queued, 0, "shells left queued: {inside:?}");
    // The outer task is still running; each join's half ran on the worker as a task of its own.
    assert_eq!(inside.running, 1, "{inside:?}");
    assert_eq!(inside.started, 1 + 1023, "{inside:?}");
    assert!(pool.wait_idle(PATIENCE), "the pool never went idle");
    let after = pool.stats();
    assert_eq!(
        (
            after.submitted,
            after.started,
            after.completed,
            after.queued
        ),
        (1 + 1023, 1 + 1023, 1 + 1023, 0),
        "{after:?}"
    );
}

#[test]
fn join_runs_b_in_parallel_with_a() {
    // `a` cannot finish until `b` has run: `b` must be on a worker, not waiting for `a`.
    let pool = ThreadPool::new(1).unwrap();
    let (tx, rx) = mpsc::channel();
    let (a, ()) = pool.join(
        || rx.recv_timeout(PATIENCE).expect("b never ran in parallel"),
        move || tx.send(7).unwrap(),
    );
    assert_eq!(a, 7);
}

fn fib(pool: &ThreadPool, n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (x, y) = pool.join(|| fib(pool, n - 1), || fib(pool, n - 2));
    x + y
}

#[test]
fn nested_joins_on_a_one_worker_pool_do_not_deadlock() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let inner = Arc::clone(&pool);
    let handle = pool.submit(move || fib(&inner, 18)).unwrap();
    assert_eq!(
        handle.join_timeout(PATIENCE).expect("nested joins hung"),
        2584
    );
    assert_eq!(fib(&pool, 15), 610);
}

#[test]
fn join_with_both_sides_panicking_reraises_a_after_both_finished() {
    quiet_panics();
    let pool = ThreadPool::new(2).unwrap();
    let finished = AtomicUsize::new(0);
    let result = catch_unwind(AssertUnwindSafe(|| {
        pool.join(
            || -> () {
                finished.fetch_add(1, Ordering::SeqCst);
                panic!("expected: a");
            },
            || -> () {
                std::thread::sleep(Duration::from_millis(20));
                finished.fetch_add(1, Ordering::SeqCst);
                std::panic::panic_any(Bomb(2));
            },
        )
    }));
    assert_eq!(finished.load(Ordering::SeqCst), 2);
    let payload = result.expect_err("no panic re-raised");
    assert_eq!(message(payload.as_ref()), "expected: a");

    let result = catch_unwind(AssertUnwindSafe(|| {
        pool.join(|| 1, || -> u8 { panic!("expected: b") })
    }));
    assert_eq!(message(result.unwrap_err().as_ref()), "expected: b");
    assert_eq!(pool.join(|| 1, || 2), (1, 2), "the pool survived");
}

#[test]
fn join_runs_b_on_the_caller_when_the_pool_cannot() {
    let pool = ThreadPool::new(1).unwrap();
    pool.shutdown();
    assert_eq!(pool.join(|| 1, || 2), (1, 2));

    // Queued behind a blocked worker: the caller runs `b` itself once `a` is done.
    let pool = ThreadPool::new(1).unwrap();
    let gate = WorkerGate::occupy(&pool, 1);
    let caller = std::thread::current().id();
    let (_, b_thread) = pool.join(|| (), || std::thread::current().id());
    assert_eq!(b_thread, caller);
    gate.open();

    // Discarded while queued: the caller still runs it.
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let gate = WorkerGate::occupy(&pool, 1);
    let canceler = Arc::clone(&pool);
    let (a, b) = pool.join(
        move || {
            assert!(
                eventually(|| canceler.queue_len() == 1),
                "timed out waiting for b queued"
            );
            canceler.cancel_all()
        },
        || "b ran",
    );
    assert_eq!((a, b), (1, "b ran"));
    gate.open();
}

/// A chain of `left` closures, each spawning the next, each counted in `ran`.
fn chain<'scope>(s: &Scope<'scope>, left: usize, ran: &'scope AtomicUsize) {
    ran.fetch_add(1, Ordering::Relaxed);
    if left > 1 {
        s.spawn(move |s| chain(s, left - 1, ran));
    }
}

/// Chains and a tree spawned from inside jobs, on pools of 1 to 4 workers, and a chain in a
/// scope inside a task (its waiter helps): every closure runs once before its scope returns, and
/// the books balance afterwards.
#[test]
fn chains_spawned_from_jobs_all_run_before_the_scope_returns() {
    for threads in 1..=4 {
        let pool = Arc::new(ThreadPool::new(threads).unwrap());
        for _ in 0..20 {
            let ran = AtomicUsize::new(0);
            let nodes = AtomicUsize::new(0);
            pool.scope(|s| {
                for _ in 0..16 {
                    s.spawn(|s| chain(s, 100, &ran));
                }
                s.spawn(|s| count_tree(s, 8, &nodes));
            });
            assert_eq!(ran.load(Ordering::Relaxed), 1600);
            assert_eq!(nodes.load(Ordering::Relaxed), (1 << 9) - 1);
            let inner = Arc::clone(&pool);
            let in_task = pool
                .submit(move || {
                    let ran = AtomicUsize::new(0);
                    inner.scope(|s| s.spawn(|s| chain(s, 50, &ran)));
                    ran.into_inner()
                })
                .unwrap();
            assert_eq!(in_task.join_timeout(PATIENCE).ok(), Some(50));
        }
        assert!(pool.wait_idle(PATIENCE));
        let stats = pool.stats();
        assert!(stats.is_balanced(), "{stats}");
    }
}

/// Invariant: a scope whose jobs spawn from two workers at once (so their shares go to two
/// slots of the scope's count, and chains hand shares from one slot to another when a job is
/// stolen) returns only after every one of those jobs ran, and its `Debug` counts the body's
/// share before anything is spawned and after everything finished.
///
/// Two first jobs meet (each waits until both run, so they run on the two workers at once);
/// each then spawns 8 chains 200 deep from its own worker, so both workers' slots hold shares.
/// The scope returns with every link counted.
#[test]
fn jobs_spawning_from_both_workers_all_finish_before_the_scope_returns() {
    const CHAINS: usize = 8;
    const DEPTH: usize = 200;
    let pool = ThreadPool::new(2).unwrap();
    for _ in 0..20 {
        let arrived = AtomicUsize::new(0);
        let ran = AtomicUsize::new(0);
        let meeters = std::sync::Mutex::new(std::collections::HashSet::new());
        let (arrived, ran, meeters) = (&arrived, &ran, &meeters);
        pool.scope(|s| {
            assert!(format!("{s:?}").contains("pending: 1"), "{s:?}");
            for _ in 0..2 {
                s.spawn(move |s| {
                    arrived.fetch_add(1, Ordering::SeqCst);
                    meeters.lock().unwrap().insert(std::thread::current().id());
                    // Holds this worker until the other first job runs on the other one.
                    assert!(
                        eventually(|| arrived.load(Ordering::SeqCst) == 2),
                        "the two first jobs never ran at once"
                    );
                    for _ in 0..CHAINS {
                        s.spawn(move |s| chain(s, DEPTH, ran));
                    }
                });
            }
        });
        assert_eq!(ran.load(Ordering::Relaxed), 2 * CHAINS * DEPTH);
        assert_eq!(
            meeters.lock().unwrap().len(),
            2,
            "the first jobs ran on both workers"
        );
    }
    assert!(pool.wait_idle(PATIENCE));
    let stats = pool.stats();
    assert!(stats.is_balanced(), "{stats}");
    assert_eq!(stats.completed, 20 * (2 + 2 * CHAINS * DEPTH) as u64);
}

/// `Scope`'s `Debug` shows the outstanding shares (the body's and one per unfinished job) and
/// the discards; after the jobs finished only the body's is left.
#[test]
fn a_scopes_debug_counts_the_body_and_its_unfinished_jobs() {
    let pool = ThreadPool::new(1).unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let gate = std::sync::Mutex::new(gate);
    pool.scope(|s| {
        assert!(format!("{s:?}").contains("pending: 1"), "{s:?}");
        let gate = &gate;
        s.spawn(move |_| gate.lock().unwrap().recv_timeout(PATIENCE).unwrap());
        assert!(format!("{s:?}").contains("pending: 2"), "{s:?}");
        release.send(()).unwrap();
        assert!(
            eventually(|| format!("{s:?}").contains("pending: 1")),
            "{s:?}"
        );
    });
}
