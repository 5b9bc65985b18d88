//! A `QueuePolicy` is user code too (SPEC 10): its `push`, `pop`, `len` and `is_empty` may
//! panic. None of that may kill a worker, lose a task or run one
//! twice, leave a handle unresolved, hang a shutdown or unbalance the books.

use pool_core::{CancelReason, QueuePolicy, QueuedTask, TaskError, TaskHandle, ThreadPool};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use test_kit::{within_patience, WorkerGate, PATIENCE};

fn quiet_panics() {
    test_kit::quiet_panics(|message| message.starts_with("hostile"));
}

/// Which calls panic: every `n`th call of a method (0: never).
#[derive(Debug, Default, Clone, Copy)]
struct Faults {
    /// `push` stores the entry, then panics.
    push_after_keeping: usize,
    /// `push` panics before storing (the entry is dropped while the panic unwinds).
    push_dropping: usize,
    /// `pop` takes an entry, then panics (dropping it).
    pop_dropping: usize,
    /// `len` and `is_empty` (the default one, which asks `len`) panic.
    len: usize,
    /// `push` throws the entry away and returns normally (a bounded queue shedding load).
    push_shedding: usize,
    /// `on_finished` (called once per task by the default `on_finished_many`) panics.
    finished: usize,
    /// `on_discarded` panics.
    discarded: usize,
}

/// A FIFO queue that panics as `faults` says.
#[derive(Debug, Default)]
struct Hostile {
    queue: Mutex<VecDeque<QueuedTask>>,
    faults: Faults,
    calls: [AtomicUsize; 7],
    /// `on_finished` calls that returned.
    reported: AtomicUsize,
    /// Entries `on_discarded` calls that returned were told of, and those calls.
    discarded: AtomicUsize,
    discard_reports: AtomicUsize,
    /// Entries the policy dropped on purpose.
    dropped: AtomicUsize,
    /// Whether `push` follows `faults` (`new` arms it; a test that builds one by hand arms it once
    /// its setup is done).
    armed: AtomicBool,
    /// What `local_queues` answers.
    local: bool,
}

impl Hostile {
    fn new(faults: Faults) -> Arc<Hostile> {
        Arc::new(Hostile {
            faults,
            armed: AtomicBool::new(true),
            ..Hostile::default()
        })
    }

    /// Whether this call of method `m` (its `n`th) should panic.
    fn strikes(&self, m: usize, every: usize) -> bool {
        let n = self.calls[m].fetch_add(1, Ordering::Relaxed) + 1;
        every != 0 && n.is_multiple_of(every)
    }
}

/// The pool takes the policy by value; tests keep an `Arc` to read what it did.
#[derive(Debug)]
struct Shared(Arc<Hostile>);

impl QueuePolicy for Shared {
    fn push(&self, task: QueuedTask) {
        let h = &self.0;
        let armed = h.armed.load(Ordering::Relaxed);
        if armed && h.strikes(0, h.faults.push_dropping) {
            h.dropped.fetch_add(1, Ordering::Relaxed);
            panic!("hostile push (dropping {task:?})");
        }
        if armed && h.strikes(4, h.faults.push_shedding) {
            h.dropped.fetch_add(1, Ordering::Relaxed);
            drop(task);
            return;
        }
        h.queue.lock().unwrap().push_back(task);
        if armed && h.strikes(1, h.faults.push_after_keeping) {
            panic!("hostile push (kept)");
        }
    }

    fn pop(&self) -> Option<QueuedTask> {
        let h = &self.0;
        let task = h.queue.lock().unwrap().pop_front();
        if task.is_some() && h.strikes(2, h.faults.pop_dropping) {
            h.dropped.fetch_add(1, Ordering::Relaxed);
            panic!("hostile pop (dropping {task:?})");
        }
        task
    }

    fn len(&self) -> usize {
        let h = &self.0;
        if h.strikes(3, h.faults.len) {
            panic!("hostile len");
        }
        h.queue.lock().unwrap().len()
    }

    fn local_queues(&self) -> bool {
        self.0.local
    }

    fn on_finished(&self, _: pool_core::Priority) {
        let h = &self.0;
        if h.strikes(5, h.faults.finished) {
            panic!("hostile on_finished");
        }
        h.reported.fetch_add(1, Ordering::Relaxed);
    }

    fn on_discarded(&self, _: pool_core::Priority, count: u64) {
        let h = &self.0;
        if h.strikes(6, h.faults.discarded) {
            panic!("hostile on_discarded");
        }
        h.discarded
            .fetch_add(usize::try_from(count).unwrap(), Ordering::Relaxed);
        h.discard_reports.fetch_add(1, Ordering::Relaxed);
    }
}

fn pool_with(policy: &Arc<Hostile>, threads: usize) -> ThreadPool {
    ThreadPool::builder()
        .threads(threads)
        .queue_policy(Shared(policy.clone()))
        .build()
        .unwrap()
}

/// Submits `n` tasks that each count their own runs; returns the handles and the counts.
fn counted_tasks(pool: &ThreadPool, n: usize) -> (Vec<TaskHandle<usize>>, Arc<Vec<AtomicU32>>) {
    let runs: Arc<Vec<AtomicU32>> = Arc::new((0..n).map(|_| AtomicU32::new(0)).collect());
    let handles = (0..n)
        .map(|i| {
            let runs = runs.clone();
            pool.submit(move || {
                runs[i].fetch_add(1, Ordering::Relaxed);
                i
            })
            .unwrap()
        })
        .collect();
    (handles, runs)
}

/// Every handle resolves: `Ok(i)` for a task that ran (exactly once), `Cancelled(Dropped)` for
/// one the policy dropped (never run). Returns how many were dropped.
fn resolve_all(handles: Vec<TaskHandle<usize>>, runs: &[AtomicU32]) -> usize {
    let mut dropped = 0;
    for (i, handle) in handles.into_iter().enumerate() {
        match handle.join_timeout(PATIENCE) {
            Ok(value) => {
                assert_eq!(value, i);
                assert_eq!(runs[i].load(Ordering::Relaxed), 1, "task {i} ran twice");
            }
            Err(pool_core::JoinTimeoutError::Failed(TaskError::Cancelled(
                CancelReason::Dropped,
            ))) => {
                assert_eq!(runs[i].load(Ordering::Relaxed), 0, "a dropped task ran");
                dropped += 1;
            }
            Err(other) => panic!("task {i}: {other:?}"),
        }
    }
    dropped
}

/// Shutdown returns, every worker has left, and the books balance with `cancelled` dropped.
fn shut_down_balanced(pool: ThreadPool, threads: usize, cancelled: u64) {
    let later = pool.submit(|| 5).unwrap();
    assert_eq!(later.join_timeout(PATIENCE).ok(), Some(5), "a worker died");
    assert_eq!(pool.stats().live_threads, threads);
    let stats = within_patience(move || {
        pool.shutdown();
        pool.stats()
    })
    .expect("shutdown hung");
    assert_eq!(
        (stats.live_threads, stats.running, stats.queued),
        (0, 0, 0),
        "{stats}"
    );
    assert_eq!(stats.cancelled, cancelled, "{stats}");
    assert_eq!(stats.lost_workers, 0, "{stats}");
    assert!(stats.is_balanced(), "{stats}");
}

#[test]
fn a_push_that_panics_after_keeping_the_entry_loses_nothing() {
    quiet_panics();
    let policy = Hostile::new(Faults {
        push_after_keeping: 2,
        ..Faults::default()
    });
    let pool = pool_with(&policy, 2);
    let (handles, runs) = counted_tasks(&pool, 200);
    assert_eq!(resolve_all(handles, &runs), 0);
    shut_down_balanced(pool, 2, 0);
}

#[test]
fn a_push_that_panics_and_drops_the_entry_cancels_that_task_counted() {
    quiet_panics();
    let policy = Hostile::new(Faults {
        push_dropping: 3,
        ..Faults::default()
    });
    let pool = pool_with(&policy, 2);
    let (handles, runs) = counted_tasks(&pool, 200);
    // Fire-and-forget jobs the policy drops are counted too.
    for _ in 0..29 {
        pool.spawn(|| ()).unwrap();
    }
    let dropped = resolve_all(handles, &runs);
    assert!(pool.wait_idle(PATIENCE));
    let by_policy = policy.dropped.load(Ordering::Relaxed);
    // Every third of 229 pushes (the task `shut_down_balanced` submits next is the 230th: it is
    // kept).
    assert_eq!(by_policy, 229 / 3);
    assert_eq!(dropped, 200 / 3);
    shut_down_balanced(pool, 2, by_policy as u64);
}

#[test]
fn a_push_that_sheds_the_entry_without_panicking_cancels_that_task_counted() {
    let policy = Hostile::new(Faults {
        push_shedding: 4,
        ..Faults::default()
    });
    let pool = pool_with(&policy, 2);
    let (handles, runs) = counted_tasks(&pool, 200);
    for _ in 0..28 {
        pool.spawn(|| ()).unwrap();
    }
    let dropped = resolve_all(handles, &runs);
    assert!(pool.wait_idle(PATIENCE));
    let by_policy = policy.dropped.load(Ordering::Relaxed);
    // Every fourth of 228 pushes (the task `shut_down_balanced` submits next is the 229th: it is
    // kept).
    assert_eq!(by_policy, 228 / 4);
    assert_eq!(dropped, 200 / 4);
    shut_down_balanced(pool, 2, by_policy as u64);
}

#[test]
fn an_entry_made_for_a_policy_test_is_in_no_pools_books() {
    // Dropped on this thread before it submits to a pool: the pool must not count it.
    drop(QueuedTask::new(pool_core::Priority::Normal, || ()));
    let policy = Hostile::new(Faults::default());
    let pool = pool_with(&policy, 1);
    assert_eq!(
        pool.submit(|| 1).unwrap().join_timeout(PATIENCE).ok(),
        Some(1)
    );
    shut_down_balanced(pool, 1, 0);
}

/// Workers report finished tasks in batches (`on_finished_many`, whose default calls
/// `on_finished` per task), 64 at most per report and always before they park: once the pool is
/// idle every task has been reported, exactly once.
#[test]
fn every_finished_task_is_reported_once_the_pool_is_idle() {
    let policy = Hostile::new(Faults::default());
    let pool = pool_with(&policy, 2);
    for round in 1..=3 {
        let (handles, runs) = counted_tasks(&pool, 300);
        assert_eq!(resolve_all(handles, &runs), 0);
        assert!(pool.wait_idle(PATIENCE));
        assert_eq!(policy.reported.load(Ordering::Relaxed), 300 * round);
    }
    shut_down_balanced(pool, 2, 0);
    // The task `shut_down_balanced` submits last is reported before its worker exits.
    assert_eq!(policy.reported.load(Ordering::Relaxed), 901);
}

/// Only what the policy popped is reported to it: tasks spawned from inside a worker go to that
/// worker's own deque when the policy allows local queues, and run from there (or are stolen
/// from there) without the policy ever seeing them, so `on_finished` must not hear of them.
#[test]
fn tasks_run_from_a_workers_own_deque_are_not_reported_to_the_policy() {
    let policy = Arc::new(Hostile {
        local: true,
        armed: AtomicBool::new(true),
        ..Hostile::default()
    });
    let pool = pool_with(&policy, 2);
    let runs = Arc::new(AtomicUsize::new(0));
    for _ in 0..10 {
        let runs = runs.clone();
        pool.spawn(move || {
            for _ in 0..5 {
                let runs = runs.clone();
                pool_core::spawn_here(move || {
                    runs.fetch_add(1, Ordering::Relaxed);
                })
                .unwrap();
            }
            runs.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    }
    assert!(pool.wait_idle(PATIENCE));
    assert_eq!(runs.load(Ordering::Relaxed), 60);
    assert_eq!(policy.reported.load(Ordering::Relaxed), 10);
    let stats = pool.stats();
    assert_eq!(
        (stats.completed, stats.running, stats.queued),
        (60, 0, 0),
        "{stats}"
    );
    pool.shutdown();
}

/// Queues `n` counted tasks behind a gate on the pool's one worker and cancels every other one
/// by its handle (their entries stay queued); opens the gate and waits for the pool to be idle.
/// The worker takes every entry: the cancelled ones are discarded, one report each.
fn run_half_cancelled(pool: &ThreadPool, n: usize) {
    let gate = WorkerGate::occupy(pool, 1);
    let (handles, runs) = counted_tasks(pool, n);
    for handle in handles.iter().step_by(2) {
        assert!(handle.cancel());
    }
    gate.open();
    for (i, handle) in handles.into_iter().enumerate() {
        match handle.join_timeout(PATIENCE) {
            Ok(value) => assert_eq!((value % 2, runs[i].load(Ordering::Relaxed)), (1, 1)),
            Err(pool_core::JoinTimeoutError::Failed(TaskError::Cancelled(
                CancelReason::Requested,
            ))) => assert_eq!((i % 2, runs[i].load(Ordering::Relaxed)), (0, 0)),
            Err(other) => panic!("task {i}: {other:?}"),
        }
    }
    assert!(pool.wait_idle(PATIENCE));
}

/// Every entry the pool takes from a policy is reported to it once: run (`on_finished`) or
/// discarded (`on_discarded`: cancelled, by its handle on the worker's path, by `cancel_all` in
/// one report per level).
#[test]
fn every_discarded_entry_is_reported_once() {
    let policy = Hostile::new(Faults::default());
    let pool = pool_with(&policy, 1);
    run_half_cancelled(&pool, 10);
    assert_eq!(policy.discarded.load(Ordering::Relaxed), 5);
    assert_eq!(policy.discard_reports.load(Ordering::Relaxed), 5);
    // The gate's task and the 5 that ran.
    assert_eq!(policy.reported.load(Ordering::Relaxed), 6);
    let gate = WorkerGate::occupy(&pool, 1);
    let (handles, _runs) = counted_tasks(&pool, 7);
    assert!(handles[3].cancel());
    assert_eq!(pool.cancel_all(), 6);
    assert_eq!(policy.discarded.load(Ordering::Relaxed), 12);
    assert_eq!(policy.discard_reports.load(Ordering::Relaxed), 6);
    gate.open();
    assert!(pool.wait_idle(PATIENCE));
    assert_eq!(policy.reported.load(Ordering::Relaxed), 7);
    shut_down_balanced(pool, 1, 12);
}

#[test]
fn a_panicking_on_discarded_kills_no_worker() {
    quiet_panics();
    let policy = Hostile::new(Faults {
        discarded: 2,
        ..Faults::default()
    });
    let pool = pool_with(&policy, 1);
    run_half_cancelled(&pool, 40);
    // Every other report panicked and counted nothing; the pool's own books are whole.
    assert_eq!(policy.discarded.load(Ordering::Relaxed), 10);
    assert_eq!(policy.reported.load(Ordering::Relaxed), 21);
    shut_down_balanced(pool, 1, 20);
}

#[test]
fn a_panicking_on_finished_kills_no_worker() {
    quiet_panics();
    let policy = Hostile::new(Faults {
        finished: 3,
        ..Faults::default()
    });
    let pool = pool_with(&policy, 2);
    let (handles, runs) = counted_tasks(&pool, 300);
    assert_eq!(resolve_all(handles, &runs), 0);
    assert!(pool.wait_idle(PATIENCE));
    let reported = policy.reported.load(Ordering::Relaxed);
    assert!(reported > 0 && reported < 300, "{reported}");
    shut_down_balanced(pool, 2, 0);
}

#[test]
fn panicking_pops_and_lens_kill_no_worker() {
    quiet_panics();
    let policy = Hostile::new(Faults {
        pop_dropping: 7,
        len: 5,
        ..Faults::default()
    });
    let pool = pool_with(&policy, 2);
    let gate = WorkerGate::occupy(&pool, 2);
    let (handles, runs) = counted_tasks(&pool, 300);
    gate.open();
    let dropped = resolve_all(handles, &runs);
    assert!(pool.wait_idle(PATIENCE));
    assert_eq!(dropped, policy.dropped.load(Ordering::Relaxed));
    assert!(dropped > 0, "the test provoked no dropping pop");
    shut_down_balanced(pool, 2, dropped as u64);
}

#[test]
fn a_retiring_worker_hands_its_deque_back_through_a_panicking_push() {
    quiet_panics();
    // Four workers, each running a parent that fills its own deque (local queues) and blocks;
    // shrunk to one, the three that retire push their deques back into a policy whose push
    // panics on every third call, dropping that entry.
    const PARENTS: usize = 4;
    const CHILDREN: usize = 500;
    let policy = Arc::new(Hostile {
        faults: Faults {
            push_dropping: 3,
            ..Faults::default()
        },
        local: true,
        ..Hostile::default()
    });
    let pool = pool_with(&policy, PARENTS);
    let runs: Arc<Vec<AtomicU32>> =
        Arc::new((0..PARENTS * CHILDREN).map(|_| AtomicU32::new(0)).collect());
    let (spawned_tx, spawned) = std::sync::mpsc::channel();
    let mut releases = Vec::new();
    let mut parents = Vec::new();
    for p in 0..PARENTS {
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        releases.push(release);
        let (runs, spawned_tx) = (runs.clone(), spawned_tx.clone());
        let parent = pool
            .submit(move || {
                for c in 0..CHILDREN {
                    let runs = runs.clone();
                    pool_core::spawn_here(move || {
                        runs[p * CHILDREN + c].fetch_add(1, Ordering::Relaxed);
                    })
                    .unwrap();
                }
                spawned_tx.send(()).unwrap();
                blocked.recv_timeout(PATIENCE).unwrap();
            })
            .unwrap();
        parents.push(parent);
    }
    for _ in 0..PARENTS {
        spawned
            .recv_timeout(PATIENCE)
            .expect("a parent did not start");
    }
    // Every worker runs a parent now, each with its children in its deque.
    policy.armed.store(true, Ordering::Relaxed);
    pool.set_threads(1).unwrap();
    // Three parents end: their workers retire and hand their deques back through the policy,
    // while the fourth worker, still in its parent, cannot steal the children first (released
    // at once, a survivor that got to the retirees' deques before they did left the policy
    // nothing to drop: found by a planted delay).
    let last = releases.pop().expect("four parents");
    for release in releases {
        release.send(()).unwrap();
    }
    // A retiring worker deregisters after its hand-back; until then an entry it popped from its
    // deque and has not pushed yet is in neither queue, where `wait_idle` cannot see it (a race
    // of the hand-back itself, not of the containment tested here).
    assert!(
        test_kit::eventually(|| pool.worker_stats().len() == 1),
        "the surplus workers did not retire"
    );
    last.send(()).unwrap();
    for parent in parents {
        parent.join_timeout(PATIENCE).unwrap();
    }
    assert!(pool.wait_idle(PATIENCE));
    assert_eq!(pool.queue_len(), 0);
    let dropped = policy.dropped.load(Ordering::Relaxed);
    assert!(dropped > 0, "no retiring worker pushed through the policy");
    let ran = runs
        .iter()
        .filter(|r| r.load(Ordering::Relaxed) == 1)
        .count();
    assert!(
        runs.iter().all(|r| r.load(Ordering::Relaxed) <= 1),
        "a task ran twice"
    );
    assert_eq!(ran + dropped, PARENTS * CHILDREN, "a task was lost");
    // The task `shut_down_balanced` submits must not be dropped.
    policy.armed.store(false, Ordering::Relaxed);
    shut_down_balanced(pool, 1, dropped as u64);
}

#[test]
fn a_policy_whose_pop_always_panics_does_not_hang_shutdown() {
    quiet_panics();
    let policy = Hostile::new(Faults {
        pop_dropping: 1,
        ..Faults::default()
    });
    let pool = pool_with(&policy, 2);
    let handles: Vec<_> = (0..10).map(|i| pool.submit(move || i).unwrap()).collect();
    for handle in handles {
        // Each entry the policy took was dropped by it: cancelled, never run.
        assert!(matches!(
            handle.join_timeout(PATIENCE),
            Err(pool_core::JoinTimeoutError::Failed(TaskError::Cancelled(_)))
        ));
    }
    let stats = within_patience(move || {
        pool.shutdown();
        pool.stats()
    })
    .expect("shutdown hung");
    assert_eq!((stats.live_threads, stats.cancelled), (0, 10), "{stats}");
    assert!(stats.is_balanced(), "{stats}");
}

/// A policy that refuses in `attach`, by its answer or by a panic (with a payload whose own
/// `Drop` panics): the build fails with the typed error and the policy's reason, no worker
/// starts, and the policy is dropped quietly.
#[test]
fn a_policy_that_refuses_to_attach_fails_the_build_with_its_reason() {
    quiet_panics();
    #[derive(Debug)]
    struct Refusing {
        panics: bool,
        dropped: Arc<AtomicUsize>,
    }
    impl QueuePolicy for Refusing {
        fn push(&self, task: QueuedTask) {
            drop(task);
        }
        fn pop(&self) -> Option<QueuedTask> {
            None
        }
        fn len(&self) -> usize {
            0
        }
        fn attach(&self) -> Result<(), pool_core::PolicyRefused> {
            if self.panics {
                std::panic::panic_any(test_kit::Bomb(2));
            }
            Err(pool_core::PolicyRefused::new("hostile: taken"))
        }
    }
    impl Drop for Refusing {
        fn drop(&mut self) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            std::panic::panic_any(test_kit::Bomb(1));
        }
    }
    let dropped = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    for panics in [false, true] {
        let started_hook = started.clone();
        let error = test_kit::no_unwind(|| {
            ThreadPool::builder()
                .threads(2)
                .on_thread_start(move |_| {
                    started_hook.fetch_add(1, Ordering::Relaxed);
                })
                .queue_policy(Refusing {
                    panics,
                    dropped: dropped.clone(),
                })
                .build()
                .unwrap_err()
        })
        .expect("the build unwound");
        assert!(error.is_policy_refused(), "{error}");
        let expected = if panics {
            "the queue policy refused to serve this pool: its `attach` panicked"
        } else {
            "the queue policy refused to serve this pool: hostile: taken"
        };
        assert!(error.to_string().starts_with(expected), "{error}");
        let reason = error.policy_refusal().map(|r| r.reason().to_owned());
        assert!(
            reason.is_some_and(|r| error.to_string().ends_with(&r)),
            "{error}"
        );
    }
    assert_eq!(
        dropped.load(Ordering::Relaxed),
        2,
        "each policy dropped once"
    );
    assert_eq!(started.load(Ordering::Relaxed), 0, "no worker started");
}

/// A graceful shutdown runs everything queued even when the policy's `pop` and `is_empty` panic
/// now and then: a worker whose `pop` panicked (dropping one entry) looks for quiescence with
/// tasks still queued, and an `is_empty` that panics there is not taken for "empty" until it has
/// panicked many times in a row. Before, the worker read that one panic as empty and exited
/// with the rest of the queue in it (the stress harness's `policy` part: 6 tasks left counted
/// as queued after shutdown).
#[test]
fn a_shutdown_runs_the_queue_through_a_panicking_is_empty() {
    quiet_panics();
    for every in [2, 3] {
        // `pop` drops its entry and panics on every 5th call; `is_empty` (the trait's default)
        // asks `len`, which panics on every `every`th call.
        let policy = Hostile::new(Faults {
            pop_dropping: 5,
            len: every,
            ..Faults::default()
        });
        let pool = Arc::new(pool_with(&policy, 1));
        let gate = WorkerGate::occupy(&pool, 1);
        let (handles, runs) = counted_tasks(&pool, 40);
        let stopper = {
            let pool = pool.clone();
            std::thread::spawn(move || pool.shutdown())
        };
        // Shutting down with the worker still held: then let it drain the queue.
        assert!(
            test_kit::eventually(|| pool.is_shutdown()),
            "shutdown did not start"
        );
        gate.open();
        stopper.join().unwrap();
        let dropped = resolve_all(handles, &runs);
        let stats = pool.stats();
        assert_eq!(
            (
                stats.completed + stats.cancelled,
                stats.queued,
                stats.live_threads
            ),
            (41, 0, 0),
            "every {every}th len panics, {dropped} dropped by pop: {stats}"
        );
        assert_eq!(stats.cancelled, dropped as u64, "{stats}");
        assert!(stats.is_balanced(), "{stats}");
    }
}

/// A batch input whose entry the queue policy dropped comes back as `Cancelled(Dropped)`, not
/// as `Cancelled(CancelAll)`: no `cancel_all` ran (before, every input dropped unrun on a
/// running pool was reported as `cancel_all`'s).
#[test]
fn a_batch_input_dropped_by_the_policy_is_reported_as_dropped() {
    let policy = Hostile::new(Faults {
        push_shedding: 3,
        ..Faults::default()
    });
    let pool = pool_with(&policy, 2);
    let results = pool.map_batch(0..12u32, |x| x * 2, |_| ());
    let mut dropped = 0;
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(value) => assert_eq!(value, 2 * i as u32),
            Err(TaskError::Cancelled(CancelReason::Dropped)) => dropped += 1,
            Err(other) => panic!("input {i}: {other:?}"),
        }
    }
    assert_eq!(dropped, policy.dropped.load(Ordering::Relaxed));
    assert!(dropped > 0, "the policy shed none");
    pool.shutdown();
    let stats = pool.stats();
    assert!(stats.is_balanced(), "{stats}");
    assert_eq!(stats.cancelled, dropped as u64, "{stats}");
}

/// A task waiting on its own pool (a nested batch) helps run the queue; a pop that panics
/// there (dropping one entry) is not taken for an empty queue. Before, the waiting worker,
/// the pool's only one, blocked on its first panicking pop with the batch's other inputs still
/// queued behind it, and the pool deadlocked (found by the stress harness's `policy` part).
#[test]
fn a_waiting_worker_helps_on_through_a_panicking_pop() {
    quiet_panics();
    let policy = Hostile::new(Faults {
        pop_dropping: 2,
        ..Faults::default()
    });
    let pool = Arc::new(pool_with(&policy, 1));
    let inner = pool.clone();
    let outer = pool
        .submit(move || {
            // Queued ahead of the batch: the helping pop that panics (the second pop that finds
            // an entry; the first took this task) drops this one, not a batch input, whose
            // drop would have woken the waiter by reporting.
            inner.spawn(|| ()).unwrap();
            let results = inner.map_batch(0..8u32, |x| x + 1, |_| ());
            results
                .iter()
                .map(|r| match r {
                    Ok(_) => 1,
                    Err(TaskError::Cancelled(CancelReason::Dropped)) => 0,
                    Err(other) => panic!("a batch input: {other:?}"),
                })
                .sum::<u32>()
        })
        .unwrap();
    let ran = match outer.join_timeout(PATIENCE) {
        Ok(ran) => ran,
        Err(e) => panic!("the waiting worker never finished its batch: {e:?}"),
    };
    let dropped = policy.dropped.load(Ordering::Relaxed);
    assert!(dropped > 0, "no pop panicked");
    assert_eq!(
        ran as usize + dropped,
        9,
        "each input ran or was dropped by a pop (the task ahead of them was dropped)"
    );
    pool.shutdown();
    let stats = pool.stats();
    assert!(stats.is_balanced(), "{stats}");
    assert_eq!(
        (stats.cancelled, stats.queued, stats.live_threads),
        (dropped as u64, 0, 0),
        "{stats}"
    );
}
