//! User code is hostile: closures, their values and panic payloads (and those values' `Drop`),
//! wakers and hooks may all panic. None of it may kill a worker, strand a handle or unbalance the
//! books.

use pool_core::{yield_now, Executor, TaskError, ThreadPool, Yield};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Wake, Waker};
use test_kit::{Bomb, Fuse, WorkerGate, PATIENCE};

/// Silences the panics these tests provoke on purpose.
fn quiet_panics() {
    test_kit::quiet_panics(|message| message.starts_with("hostile"));
}

/// The pool still works after the hostile tasks: a later task runs, the pool goes idle, and after
/// shutdown every thread has left and the books balance.
fn assert_pool_survived(pool: &ThreadPool, expect_panicked: u64) {
    let later = pool.submit(|| 5).unwrap();
    assert_eq!(
        later.join_timeout(PATIENCE).ok(),
        Some(5),
        "the worker died"
    );
    assert!(pool.wait_idle(PATIENCE), "the pool never went idle");
    pool.shutdown();
    let stats = pool.stats();
    assert_eq!(
        (stats.live_threads, stats.running, stats.queued),
        (0, 0, 0),
        "{stats}"
    );
    assert_eq!(stats.panicked, expect_panicked, "{stats}");
    assert!(stats.is_balanced(), "{stats}");
}

#[test]
fn a_panic_payload_whose_drop_panics_does_not_kill_the_worker() {
    quiet_panics();
    let pool = ThreadPool::new(1).unwrap();
    let handle = pool
        .submit(|| -> u32 { std::panic::panic_any(Bomb(3)) })
        .unwrap();
    pool.spawn(|| std::panic::panic_any(Bomb(3))).unwrap();
    let error = handle.join_timeout(PATIENCE).unwrap_err();
    assert!(
        matches!(
            &error,
            pool_core::JoinTimeoutError::Failed(TaskError::Panicked(_))
        ),
        "{error:?}"
    );
    assert_pool_survived(&pool, 2);
}

#[test]
fn values_whose_drop_panics_do_not_kill_the_worker() {
    quiet_panics();
    let pool = ThreadPool::new(1).unwrap();
    // A captured value dropped after the closure runs, a returned value dropped with an
    // abandoned handle (on the worker), and a captured value of a cancelled task.
    let captured = Bomb(2);
    pool.spawn(move || drop(captured)).unwrap();
    drop(pool.submit(|| Bomb(2)).unwrap());
    let gate = WorkerGate::occupy(&pool, 1);
    let doomed = Bomb(2);
    let cancelled = pool.submit(move || drop(doomed)).unwrap();
    assert!(cancelled.cancel());
    gate.open();
    // The dropped closure ran to its end (the drop panicked inside it) and counts as panicked.
    assert_pool_survived(&pool, 1);
}

struct HostileWaker {
    woken: AtomicUsize,
}

impl Wake for HostileWaker {
    fn wake(self: Arc<Self>) {
        self.woken.fetch_add(1, Ordering::SeqCst);
        std::panic::panic_any(Bomb(2));
    }
}

#[test]
fn a_waker_that_panics_does_not_kill_the_worker() {
    quiet_panics();
    let pool = ThreadPool::new(1).unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let mut handle = pool
        .submit(move || gate.recv_timeout(PATIENCE).map(|()| 9))
        .unwrap();
    let hostile = Arc::new(HostileWaker {
        woken: AtomicUsize::new(0),
    });
    let waker = Waker::from(hostile.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut handle).poll(&mut cx).is_pending());
    release.send(()).unwrap();
    // The completion wakes the hostile waker on the worker. One worker runs tasks in order, so
    // once a task submitted afterwards has run, that wake has happened.
    pool.submit(|| ()).unwrap().join_timeout(PATIENCE).unwrap();
    assert_eq!(hostile.woken.load(Ordering::SeqCst), 1);
    // The outcome is there all the same.
    let outcome = pollster::block_on(handle);
    assert_eq!(outcome.unwrap(), Ok(9));
    assert_pool_survived(&pool, 0);
}

/// A FIFO policy holding a value whose `Drop` panics.
#[derive(Debug)]
struct FusedPolicy {
    queue: pool_core::FifoQueue,
    _fuse: Fuse,
}

impl pool_core::QueuePolicy for FusedPolicy {
    fn push(&self, task: pool_core::QueuedTask) {
        self.queue.push(task);
    }

    fn pop(&self) -> Option<pool_core::QueuedTask> {
        self.queue.pop()
    }

    fn len(&self) -> usize {
        self.queue.len()
    }
}

/// Invariant: the values the hooks, the panic handler and a plugged-in policy captured are user
/// code too: their `Drop`s run once each when the pool goes, and none of their panics reaches the
/// thread that dropped it (two panicking in one drop would have aborted the process).
#[test]
fn hooks_and_a_policy_whose_captures_panic_on_drop_are_dropped_quietly_with_the_pool() {
    quiet_panics();
    let dropped = Arc::new(AtomicUsize::new(0));
    let pool = fused_builder(&dropped).threads(2).build().unwrap();
    pool.spawn(|| panic!("hostile task")).unwrap();
    assert_eq!(pool.submit(|| 3).unwrap().join().unwrap(), 3);
    assert!(pool.wait_idle(PATIENCE));
    drop(pool); // would unwind here
    assert_eq!(dropped.load(Ordering::SeqCst), 6);
}

/// A builder whose five hooks and policy each hold a [`Fuse`] counting into `dropped`.
fn fused_builder(dropped: &Arc<AtomicUsize>) -> pool_core::ThreadPoolBuilder {
    let (start, stop, park, unpark, handler) = (
        Fuse::new(dropped),
        Fuse::new(dropped),
        Fuse::new(dropped),
        Fuse::new(dropped),
        Fuse::new(dropped),
    );
    ThreadPool::builder()
        .on_thread_start(move |_| {
            let _ = &start;
        })
        .on_thread_stop(move |_| {
            let _ = &stop;
        })
        .on_thread_park(move |_| {
            let _ = &park;
        })
        .on_thread_unpark(move |_| {
            let _ = &unpark;
        })
        .panic_handler(move |_| {
            let _ = &handler;
        })
        .queue_policy(FusedPolicy {
            queue: Default::default(),
            _fuse: Fuse::new(dropped),
        })
}

/// Invariant: a build that fails returns its typed error, and what the builder held (five hooks
/// and a policy, user code) is dropped quietly on the way, once each: a panicking `Drop` does not
/// turn the error into a panic, and two of them do not abort the process (as two in one `Vec`
/// did). The same holds for a builder dropped without building.
#[test]
fn a_failed_build_drops_its_hooks_and_policy_quietly_and_returns_its_error() {
    quiet_panics();
    let dropped = Arc::new(AtomicUsize::new(0));
    type IsExpected = fn(&pool_core::PoolBuildError) -> bool;
    let checks: [(pool_core::ThreadPoolBuilder, IsExpected); 4] = [
        (fused_builder(&dropped).threads(0), |e| e.is_zero_threads()),
        (fused_builder(&dropped).stack_size(0), |e| {
            e.is_zero_stack_size()
        }),
        (fused_builder(&dropped).thread_name("a\0b"), |e| {
            e.is_invalid_name()
        }),
        // More stack than the address space holds: the OS refuses the first worker.
        (
            fused_builder(&dropped).threads(1).stack_size(1 << 62),
            |e| e.is_spawn_failure(),
        ),
    ];
    for (round, (builder, is_expected)) in checks.into_iter().enumerate() {
        let error = builder.build().expect_err("a bad setting");
        assert!(is_expected(&error), "round {round}: {error}");
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            6 * (round + 1),
            "round {round}"
        );
    }
    drop(fused_builder(&dropped)); // would unwind (abort) here
    assert_eq!(dropped.load(Ordering::SeqCst), 6 * 5);
}

/// A FIFO policy that panics, with a payload whose `Drop` panics, when asked what it needs.
/// Counts its pushes.
#[derive(Debug, Default)]
struct SilentPolicy(pool_core::FifoQueue, Arc<AtomicUsize>);

impl pool_core::QueuePolicy for SilentPolicy {
    fn push(&self, task: pool_core::QueuedTask) {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.push(task);
    }

    fn pop(&self) -> Option<pool_core::QueuedTask> {
        self.0.pop()
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn local_queues(&self) -> bool {
        std::panic::panic_any(Bomb(2))
    }

    fn honors_priority(&self) -> bool {
        std::panic::panic_any(Bomb(2))
    }
}

/// Invariant: a policy that panics when the build asks what it needs (its own queues, a
/// priority order) gets the trait's defaults, and the pool works: every task in its queue.
#[test]
fn a_policy_that_panics_when_asked_what_it_needs_gets_the_defaults() {
    quiet_panics();
    let policy = SilentPolicy::default();
    let pushes = Arc::clone(&policy.1);
    let built = test_kit::no_unwind(|| {
        ThreadPool::builder()
            .threads(2)
            .queue_policy(policy)
            .build()
    });
    let pool = built.expect("the build does not unwind").unwrap();
    assert!(!pool.honors_priority());
    let (ran, done) = mpsc::channel();
    let spawned = pool.submit(move || pool_core::spawn_here(move || ran.send(4).unwrap()).is_ok());
    assert_eq!(spawned.unwrap().join_timeout(PATIENCE).ok(), Some(true));
    assert_eq!(done.recv_timeout(PATIENCE), Ok(4));
    // The worker's spawn went through the policy too, not to the worker's own deque.
    assert_eq!(pushes.load(Ordering::SeqCst), 2);
    assert_pool_survived(&pool, 0);
}

#[test]
fn hooks_and_panic_handlers_that_panic_with_hostile_payloads_are_contained() {
    quiet_panics();
    let pool = ThreadPool::builder()
        .threads(1)
        .on_thread_start(|_| std::panic::panic_any(Bomb(2)))
        .on_thread_stop(|_| std::panic::panic_any(Bomb(2)))
        .panic_handler(|_| std::panic::panic_any(Bomb(2)))
        .build()
        .unwrap();
    pool.spawn(|| panic!("hostile task")).unwrap();
    assert_pool_survived(&pool, 1);
}

#[test]
fn joining_a_task_queued_behind_the_caller_on_a_one_thread_pool_helps_it_run() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let inner = Arc::clone(&pool);
    let outer = pool
        .submit(move || {
            let queued: Vec<_> = (0..3)
                .map(|i| inner.submit(move || i * 10).unwrap())
                .collect();
            queued.into_iter().map(|h| h.join().unwrap()).sum::<i32>()
        })
        .unwrap();
    assert_eq!(outer.join_timeout(PATIENCE).ok(), Some(30));
    pool.shutdown();
    assert!(pool.stats().is_balanced());
}

#[test]
fn nested_batches_on_every_worker_do_not_deadlock() {
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let outers: Vec<_> = (0..4u64)
        .map(|i| {
            let inner = Arc::clone(&pool);
            pool.submit(move || {
                let results = inner.map_batch(0..8u64, move |x| x + i, |_| {});
                results.into_iter().map(Result::unwrap).sum::<u64>()
            })
            .unwrap()
        })
        .collect();
    let sums: Vec<u64> = outers
        .into_iter()
        .map(|h| h.join_timeout(PATIENCE).expect("a nested batch hung"))
        .collect();
    assert_eq!(sums, [28, 36, 44, 52]);
}

#[test]
fn yield_now_outside_a_worker_is_none_and_inside_reports_what_it_did() {
    assert_eq!(yield_now(), None);
    let pool = ThreadPool::new(1).unwrap();
    let seen = pool.submit(yield_now).unwrap().join().unwrap();
    assert_eq!(seen, Some(Yield::Idle));
}

#[test]
fn every_stats_snapshot_balances_while_tasks_are_submitted_and_run() {
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (pool, done) = (Arc::clone(&pool), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut snapshots = 0u64;
            while !done.load(Ordering::Acquire) || snapshots < 1000 {
                let stats = pool.stats();
                assert!(stats.is_balanced(), "snapshot {snapshots}: {stats}");
                snapshots += 1;
            }
            snapshots
        })
    };
    let submitters: Vec<_> = (0..2)
        .map(|_| {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || {
                for i in 0..50_000u32 {
                    if i % 3 == 0 {
                        drop(pool.submit(|| ()).unwrap());
                    } else {
                        pool.spawn(|| ()).unwrap();
                    }
                }
            })
        })
        .collect();
    for s in submitters {
        s.join().unwrap();
    }
    pool.shutdown();
    done.store(true, Ordering::Release);
    let snapshots = reader.join().expect("an unbalanced snapshot");
    assert!(snapshots >= 1000);
    let stats = pool.stats();
    assert_eq!(
        (stats.submitted, stats.completed, stats.live_threads),
        (100_000, 100_000, 0)
    );
}

#[test]
fn a_batch_returns_when_cancel_all_discards_its_queued_inputs() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let gate = WorkerGate::occupy(&pool, 1);
    let batcher = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || pool.map_batch(0..3u32, |x| x, |_| {}))
    };
    // Wait until the three inputs are queued behind the gate, then discard them.
    let deadline = std::time::Instant::now() + PATIENCE;
    while pool.stats().queued < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the batch never queued"
        );
        std::thread::yield_now();
    }
    assert_eq!(pool.cancel_all(), 3);
    gate.open();
    let results = batcher.join().unwrap();
    assert_eq!(results.len(), 3);
    assert!(
        results.iter().all(|r| matches!(
            r,
            Err(TaskError::Cancelled(pool_core::CancelReason::CancelAll))
        )),
        "{results:?}"
    );
}

/// Invariant: a batch's function and progress callback are user code, their `Drop` too: the
/// batch drops them quietly and the caller gets every result. Before, the first `Drop` that
/// panicked took the results with it (and two aborted the process).
#[test]
fn a_batch_drops_its_function_and_progress_callback_quietly() {
    quiet_panics();
    let pool = ThreadPool::new(2).unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    let (f_holds, progress_holds) = (Fuse::new(&dropped), Fuse::new(&dropped));
    let results = test_kit::no_unwind(|| {
        pool.map_batch(
            0..4u64,
            move |x| {
                let _held = &f_holds;
                x * 10
            },
            move |_| {
                let _held = &progress_holds;
            },
        )
    });
    let results: Vec<u64> = results
        .expect("a Drop of the batch's user code unwound")
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(results, [0, 10, 20, 30]);
    assert_eq!(dropped.load(Ordering::SeqCst), 2);
    assert_pool_survived(&pool, 0);
}
