//! Shutdown, drop, resize, wait_idle, batches, and the books balancing after all of it.

use pool_core::{CancelReason, ResizeError, TaskError, ThreadPool};
use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::LocalKey;
use test_kit::{Latch, WorkerGate, PATIENCE};

#[test]
fn shutdown_runs_everything_queued_then_joins() {
    let stopped = Arc::new(AtomicUsize::new(0));
    let s = stopped.clone();
    let pool = ThreadPool::builder()
        .threads(2)
        .on_thread_stop(move |_| {
            s.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let gate = WorkerGate::occupy(&pool, 2);
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..100 {
        let r = ran.clone();
        pool.spawn(move || {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    let opener = std::thread::spawn(move || gate.open());
    pool.shutdown();
    opener.join().unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 100);
    assert_eq!(stopped.load(Ordering::SeqCst), 2, "every thread was joined");
    pool.shutdown(); // idempotent
    let stats = pool.stats();
    assert_eq!(
        (
            stats.completed,
            stats.live_threads,
            stats.queued,
            stats.running
        ),
        (102, 0, 0, 0)
    );
    assert!(stats.is_balanced(), "{stats}");
}

#[test]
fn shutdown_now_cancels_the_queue_and_reports_how_many() {
    let pool = ThreadPool::new(1).unwrap();
    let gate = WorkerGate::occupy(&pool, 1);
    let handles: Vec<_> = (0..10).map(|i| pool.submit(move || i).unwrap()).collect();
    let opener = std::thread::spawn(move || gate.open());
    let cancelled = pool.shutdown_now();
    opener.join().unwrap();
    let outcomes: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
    let shut = outcomes
        .iter()
        .filter(|o| **o == Err(TaskError::Cancelled(CancelReason::Shutdown)))
        .count();
    assert_eq!(shut, cancelled);
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count() + cancelled,
        10
    );
    let stats = pool.stats();
    assert_eq!(stats.cancelled as usize, cancelled);
    assert!(stats.is_balanced(), "{stats}");
}

#[test]
fn drop_joins_every_thread() {
    let stopped = Arc::new(AtomicUsize::new(0));
    let s = stopped.clone();
    let pool = ThreadPool::builder()
        .threads(4)
        .on_thread_stop(move |_| {
            s.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..1000 {
        let d = done.clone();
        pool.spawn(move || {
            d.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    drop(pool);
    assert_eq!(
        done.load(Ordering::SeqCst),
        1000,
        "drop finishes queued work"
    );
    assert_eq!(stopped.load(Ordering::SeqCst), 4, "drop leaks no thread");
}

#[test]
fn shutdown_from_inside_a_task_does_not_deadlock() {
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let p = pool.clone();
    let h = pool.submit(move || p.shutdown()).unwrap();
    h.join().unwrap();
    assert!(pool.is_shutdown());
    assert!(pool.spawn(|| ()).is_err());
    pool.shutdown(); // from outside: joins the workers now
    assert_eq!(pool.stats().live_threads, 0);
}

#[test]
fn dropping_the_last_reference_inside_a_task_does_not_deadlock() {
    let (done_tx, done_rx) = mpsc::channel();
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let p = pool.clone();
    pool.spawn(move || {
        let _last = p; // dropped inside the worker after the outer Arc is gone
        done_tx.send(()).unwrap();
    })
    .unwrap();
    drop(pool);
    done_rx.recv_timeout(PATIENCE).unwrap();
}

#[test]
fn graceful_shutdown_accepts_work_spawned_by_running_tasks() {
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let ran = Arc::new(AtomicUsize::new(0));
    let gate = WorkerGate::occupy(&pool, 2);
    for _ in 0..10 {
        let (p, r) = (pool.clone(), ran.clone());
        pool.spawn(move || {
            let r2 = r.clone();
            p.spawn(move || {
                r2.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    let opener = std::thread::spawn(move || gate.open());
    pool.shutdown();
    opener.join().unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 20);
}

#[test]
fn set_threads_grows_and_shrinks_without_losing_work() {
    let (stop_tx, stop_rx) = mpsc::channel();
    let pool = ThreadPool::builder()
        .threads(1)
        .on_thread_stop(move |i| {
            let _ = stop_tx.send(i);
        })
        .build()
        .unwrap();
    pool.set_threads(4).unwrap();
    assert_eq!(pool.stats().live_threads, 4);
    // All four really run at once.
    let gate = WorkerGate::occupy(&pool, 4);
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..200 {
        let d = done.clone();
        pool.spawn(move || {
            d.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    pool.set_threads(2).unwrap();
    gate.open();
    // Two workers retire between tasks.
    for _ in 0..2 {
        stop_rx
            .recv_timeout(PATIENCE)
            .expect("a worker should retire");
    }
    assert!(pool.wait_idle(PATIENCE));
    assert_eq!(done.load(Ordering::SeqCst), 200);
    assert_eq!(pool.stats().live_threads, 2);
    assert_eq!(pool.threads(), 2);
    assert!(matches!(pool.set_threads(0), Err(ResizeError::ZeroThreads)));
    // Above the bound: refused before any thread starts, the pool left as it was.
    let too_many = ThreadPool::MAX_THREADS + 1;
    let err = pool.set_threads(too_many).unwrap_err();
    assert!(
        matches!(err, ResizeError::TooManyThreads { requested } if requested == too_many),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&ThreadPool::MAX_THREADS.to_string()),
        "{err}"
    );
    assert_eq!(pool.threads(), 2);
    assert_eq!(pool.stats().live_threads, 2);
    pool.shutdown();
    assert!(matches!(pool.set_threads(3), Err(ResizeError::ShutDown)));
    let stats = pool.stats();
    assert_eq!(stats.completed, 204);
    assert!(stats.is_balanced(), "{stats}");
}

/// A resize decided from a size the pool no longer has is refused with the size it has, and
/// leaves the pool as it was; one decided from the size it has applies; bad sizes and a shut
/// pool are refused as by `set_threads`.
#[test]
fn compare_set_threads_applies_only_from_the_size_it_was_decided_from() {
    let pool = ThreadPool::new(2).unwrap();
    let seen = pool.threads();
    pool.set_threads(3).unwrap();
    let err = pool.compare_set_threads(seen, 1).unwrap_err();
    assert!(
        matches!(
            err,
            ResizeError::SizeChanged {
                requested: 1,
                expected: 2,
                found: 3
            }
        ),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("to 1") && message.contains("size is 3") && message.contains("the 2"),
        "{message}"
    );
    assert_eq!((pool.threads(), pool.stats().live_threads), (3, 3));
    // From the size it has: applies, growing as `set_threads` does.
    pool.compare_set_threads(3, 4).unwrap();
    assert_eq!((pool.threads(), pool.stats().live_threads), (4, 4));
    pool.compare_set_threads(4, 1).unwrap();
    assert_eq!(pool.threads(), 1);
    assert!(matches!(
        pool.compare_set_threads(1, 0),
        Err(ResizeError::ZeroThreads)
    ));
    assert!(matches!(
        pool.compare_set_threads(1, ThreadPool::MAX_THREADS + 1),
        Err(ResizeError::TooManyThreads { .. })
    ));
    assert_eq!(pool.threads(), 1);
    pool.shutdown();
    assert!(matches!(
        pool.compare_set_threads(1, 2),
        Err(ResizeError::ShutDown)
    ));
}

/// Puts a value from `value` in thread-local `slot` on each of the pool's `workers` workers
/// (dropped as that worker's thread exits): the tasks meet before they return, so they run on
/// all of them at once.
fn on_each_worker<T: Send + 'static>(
    pool: &ThreadPool,
    workers: usize,
    slot: &'static LocalKey<RefCell<Option<T>>>,
    value: impl Fn() -> T,
) {
    let met = Arc::new(std::sync::Barrier::new(workers));
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (value, met) = (value(), met.clone());
            pool.submit(move || {
                slot.with(|slot| *slot.borrow_mut() = Some(value));
                met.wait();
            })
            .unwrap()
        })
        .collect();
    for task in tasks {
        task.join_timeout(PATIENCE).unwrap();
    }
}

/// A thread-local whose `Drop` (run as its worker thread exits, after the worker's loop and
/// hooks) announces itself and then waits for a gate: a thread that has finished its work but
/// not exited yet.
struct ExitsLate {
    exiting: Arc<Latch>,
    gate: Arc<Latch>,
    dropped: Arc<AtomicUsize>,
}

impl Drop for ExitsLate {
    fn drop(&mut self) {
        self.exiting.open();
        self.gate.wait();
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

thread_local! {
    static EXITS_LATE: RefCell<Option<ExitsLate>> = const { RefCell::new(None) };
}

/// `set_threads` never waits for a leaving thread to exit (leaving workers join the finished
/// ones that left before them instead), and `shutdown` still returns only after every thread exited: a worker
/// that retires while its thread-local's `Drop` blocks does not hold up the next resize, and
/// is joined by the time `shutdown` returns.
#[test]
fn a_resize_never_waits_for_a_leaving_thread_and_shutdown_joins_it() {
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let (exiting, gate) = (Arc::new(Latch::default()), Arc::new(Latch::default()));
    let dropped = Arc::new(AtomicUsize::new(0));
    on_each_worker(&pool, 2, &EXITS_LATE, || ExitsLate {
        exiting: exiting.clone(),
        gate: gate.clone(),
        dropped: dropped.clone(),
    });
    pool.set_threads(1).unwrap();
    assert!(
        exiting.wait(),
        "the retiring worker's thread-local was never dropped"
    );
    // Its thread is still there, its work done: a resize now must not wait for it.
    let resized = Arc::new(Latch::default());
    let resizer = {
        let (pool, resized) = (pool.clone(), resized.clone());
        std::thread::spawn(move || {
            pool.set_threads(2).unwrap();
            resized.open();
        })
    };
    let in_time = resized.wait();
    gate.open();
    resizer.join().unwrap();
    assert!(in_time, "set_threads waited for a leaving thread to exit");
    pool.shutdown();
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        2,
        "shutdown returned before a thread exited"
    );
}

/// A thread-local whose `Drop` blocks on a gate for the first worker thread to exit and
/// returns at once for the others, announcing each.
struct FirstExitHangs {
    exits: Arc<AtomicUsize>,
    gate: Arc<Latch>,
    quick_exit: Arc<Latch>,
}

impl Drop for FirstExitHangs {
    fn drop(&mut self) {
        if self.exits.fetch_add(1, Ordering::SeqCst) == 0 {
            self.gate.wait();
        } else {
            self.quick_exit.open();
        }
    }
}

thread_local! {
    static FIRST_EXIT_HANGS: RefCell<Option<FirstExitHangs>> = const { RefCell::new(None) };
}

/// A thread that never finishes exiting holds at most the one worker that joins it: of three
/// workers retiring together, one hangs in its thread-local's `Drop`, at most one more waits
/// to join it, and the third exits. (Were each leaving worker to join the last one before it,
/// every later one would wait in a chain behind the one that hangs.)
#[test]
fn a_thread_that_never_exits_holds_at_most_its_one_joiner() {
    let pool = ThreadPool::new(4).unwrap();
    let (gate, quick_exit) = (Arc::new(Latch::default()), Arc::new(Latch::default()));
    let exits = Arc::new(AtomicUsize::new(0));
    on_each_worker(&pool, 4, &FIRST_EXIT_HANGS, || FirstExitHangs {
        exits: exits.clone(),
        gate: gate.clone(),
        quick_exit: quick_exit.clone(),
    });
    pool.set_threads(1).unwrap();
    let in_time = quick_exit.wait();
    gate.open();
    assert!(
        in_time,
        "every retiring thread waited behind the one that never exits"
    );
    pool.shutdown();
    assert_eq!(exits.load(Ordering::SeqCst), 4);
}

#[test]
fn wait_idle_times_out_while_busy_and_succeeds_after() {
    let pool = ThreadPool::new(1).unwrap();
    let gate = WorkerGate::occupy(&pool, 1);
    assert!(!pool.wait_idle(std::time::Duration::from_millis(20)));
    gate.open();
    assert!(pool.wait_idle(PATIENCE));
    let stats = pool.stats();
    assert_eq!((stats.idle_threads, stats.running, stats.queued), (1, 0, 0));
}

#[test]
fn batch_keeps_input_order_and_reports_progress() {
    let pool = ThreadPool::new(3).unwrap();
    let mut progress = Vec::new();
    let results = pool.map_batch(0..200u32, |x| x * 2, |p| progress.push((p.done, p.total)));
    let values: Vec<u32> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(values, (0..200).map(|x| x * 2).collect::<Vec<_>>());
    assert_eq!(progress.last(), Some(&(200, 200)));
    assert!(
        progress.windows(2).all(|w| w[0].0 < w[1].0),
        "progress only moves forward"
    );
}

#[test]
fn batch_isolates_panics_in_items_and_in_the_progress_callback() {
    let pool = ThreadPool::new(2).unwrap();
    let mut calls = 0;
    let results = pool.map_batch(
        0..10u32,
        |x| if x == 3 { panic!("item 3 is bad") } else { x },
        |_| {
            calls += 1;
            panic!("progress callback bug");
        },
    );
    assert_eq!(calls, 1, "a panicking callback is not called again");
    assert_eq!(results[3], Err(TaskError::Panicked("item 3 is bad".into())));
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 9);
}

#[test]
fn nested_batch_on_a_one_thread_pool_does_not_deadlock() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let p = pool.clone();
    let outer = pool
        .submit(move || {
            let inner = p.map_batch(0..10u32, |x| x + 1, |_| {});
            inner.into_iter().map(Result::unwrap).sum::<u32>()
        })
        .unwrap();
    assert_eq!(outer.join_timeout(PATIENCE).unwrap(), 55);
}

#[test]
fn batch_on_a_shut_down_pool_reports_each_item() {
    let pool = ThreadPool::new(1).unwrap();
    pool.shutdown();
    let results = pool.map_batch(0..3u32, |x| x, |_| {});
    assert!(results
        .iter()
        .all(|r| *r == Err(TaskError::Cancelled(CancelReason::Shutdown))));
}

#[test]
fn worker_stats_tell_parked_from_busy_workers() {
    let pool = ThreadPool::new(2).unwrap();
    assert!(pool.wait_idle(PATIENCE));
    let idle = pool.worker_stats();
    assert_eq!(idle.iter().map(|w| w.index).collect::<Vec<_>>(), [0, 1]);
    assert!(
        idle.iter().all(|w| w.parked && w.busy <= w.alive),
        "{idle:?}"
    );
    let gate = WorkerGate::occupy(&pool, 1);
    let stats = pool.worker_stats();
    assert_eq!(stats.iter().filter(|w| !w.parked).count(), 1, "{stats:?}");
    gate.open();
    assert!(pool.wait_idle(PATIENCE));
    assert!(pool.worker_stats().iter().all(|w| w.parked));
}

#[test]
fn stats_with_workers_reads_both_in_index_order_through_resizes() {
    let pool = ThreadPool::new(4).unwrap();
    for i in 0..20u64 {
        pool.spawn(move || {
            std::hint::black_box(i);
        })
        .unwrap();
    }
    assert!(pool.wait_idle(PATIENCE));
    let mut workers = Vec::new();
    // Counts settle once every worker parks: then both reads agree with the separate calls.
    assert!(test_kit::eventually(|| pool.stats().idle_threads == 4));
    let stats = pool.stats_with_workers(&mut workers);
    assert_eq!(stats, pool.stats());
    assert_eq!((stats.submitted, stats.completed), (20, 20));
    let indices = |workers: &[pool_core::WorkerStats]| -> Vec<usize> {
        workers.iter().map(|w| w.index).collect()
    };
    assert_eq!(indices(&workers), [0, 1, 2, 3]);
    assert_eq!(indices(&workers), indices(&pool.worker_stats()));

    // Retire two workers and start three more: indices are reused, order is kept, and the
    // buffer's allocation is reused.
    pool.set_threads(2).unwrap();
    // A retiree leaves the live count before it leaves the registry: wait for both, or a
    // retiree still listed would make the count of 5 below come early (and then read 6).
    assert!(test_kit::eventually(|| {
        pool.stats().live_threads == 2 && pool.worker_stats().len() == 2
    }));
    pool.set_threads(5).unwrap();
    // A new worker counts as live before it registers (its thread is still starting).
    assert!(test_kit::eventually(|| pool.worker_stats().len() == 5));
    pool.stats_with_workers(&mut workers);
    assert_eq!(workers.len(), 5, "{workers:?}");
    assert!(
        workers.windows(2).all(|pair| pair[0].index < pair[1].index),
        "{workers:?}"
    );
    assert_eq!(indices(&workers), indices(&pool.worker_stats()));
    assert!(workers.iter().all(|w| w.busy <= w.alive));
    let buffer = workers.as_ptr();
    pool.stats_with_workers(&mut workers);
    assert_eq!(workers.as_ptr(), buffer, "no new allocation");
    pool.shutdown();
    let stats = pool.stats_with_workers(&mut workers);
    assert!(workers.is_empty(), "{workers:?}");
    assert_eq!((stats.live_threads, stats.queued, stats.running), (0, 0, 0));
}

/// A pool of more workers than search a while before parking (`SPIN_WORKERS_MAX`, 256, in
/// `pool/worker.rs`) parks a worker that found nothing at once: every worker holds a task at
/// the same time, then tasks submitted from outside and spawned from inside tasks, into workers
/// that park between them, all run once; the pool goes idle, the books balance, and shutdown
/// joins every worker.
#[test]
fn a_pool_too_large_to_search_before_parking_loses_no_task() {
    const WORKERS: usize = 300;
    const OUTSIDE: usize = 200;
    let stopped = Arc::new(AtomicUsize::new(0));
    let counted = stopped.clone();
    let pool = Arc::new(
        ThreadPool::builder()
            .threads(WORKERS)
            .stack_size(256 * 1024)
            .on_thread_stop(move |_| {
                counted.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap(),
    );
    // Every worker at once: all of them started and took a task.
    WorkerGate::occupy(&pool, WORKERS).open();
    assert!(pool.wait_idle(PATIENCE), "{}", pool.stats());
    // Each outside task spawns one more from inside its worker (into that worker's deque, where
    // only a search of the deques finds it if the worker is busy).
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..OUTSIDE {
        let (ran, inner_pool) = (ran.clone(), pool.clone());
        pool.spawn(move || {
            ran.fetch_add(1, Ordering::SeqCst);
            let ran = ran.clone();
            inner_pool
                .spawn(move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
        })
        .unwrap();
    }
    assert!(pool.wait_idle(PATIENCE), "{}", pool.stats());
    assert_eq!(ran.load(Ordering::SeqCst), 2 * OUTSIDE);
    let stats = pool.stats();
    assert!(stats.is_balanced(), "{stats}");
    assert_eq!(stats.completed, (WORKERS + 2 * OUTSIDE) as u64, "{stats}");
    pool.shutdown();
    assert_eq!(stopped.load(Ordering::SeqCst), WORKERS);
}
