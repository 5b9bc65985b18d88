//! `ThreadPool::raise_priority` on the priority policy: moves a queued task up, never down.

mod common;

use common::{assert_levels_balance, one_worker, settle, submit_logged};
use policy_priority::Aging;
use pool_core::Priority;
use test_kit::{Log, WorkerGate, PATIENCE};

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
    // The Low entry left behind did not run: discarded, so the Low level's books balance.
    assert_eq!(stats.level(Priority::Low).discarded, 1);
    assert_eq!(stats.discarded(), 1);
    assert_levels_balance(&stats);
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
    let levels = queue.stats();
    assert_eq!(levels.queued(), 0);
    for level in [Priority::Idle, Priority::Normal, Priority::Critical] {
        assert_eq!(levels.level(level).discarded, 1, "{level:?}");
    }
    assert_eq!(levels.discarded(), 3);
    assert_levels_balance(&levels);
    let stats = pool.stats();
    assert!(stats.is_balanced());
    assert_eq!(stats.cancelled, 1, "three entries, one cancellation");
}

/// Raises and cancels from several threads while two workers run: whichever entry of a raised
/// task a worker reaches first runs it, every other entry is discarded, and once the pool is
/// shut down every level's books balance, each task ran at most once, and the entries add up:
/// one per task and one per raise, each run or discarded.
#[test]
fn raises_and_cancels_from_several_threads_keep_every_levels_books() {
    use policy_priority::{priority_pool, PrioritySubmit};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    const THREADS: usize = 4;
    const PER_THREAD: usize = 600;
    const BATCH: usize = 30;
    let (pool, queue) = priority_pool(2).unwrap();
    let runs: Arc<Vec<AtomicU32>> = Arc::new(
        (0..THREADS * PER_THREAD)
            .map(|_| AtomicU32::new(0))
            .collect(),
    );
    // Per submitter: (ran, cancelled, raises the pool took).
    let outcomes: Vec<(u64, u64, u64)> = std::thread::scope(|s| {
        let submitters: Vec<_> = (0..THREADS)
            .map(|t| {
                let (pool, runs) = (&pool, runs.clone());
                s.spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(t as u64);
                    let (mut ran, mut cancelled, mut raises) = (0, 0, 0);
                    for batch in 0..PER_THREAD / BATCH {
                        let handles: Vec<_> = (0..BATCH)
                            .map(|i| {
                                let id = t * PER_THREAD + batch * BATCH + i;
                                let level = Priority::from_index(rng.usize(1..5)).unwrap();
                                let runs = runs.clone();
                                pool.submit_at(level, move || {
                                    runs[id].fetch_add(1, Ordering::Relaxed);
                                })
                                .unwrap()
                            })
                            .collect();
                        for handle in &handles {
                            // Up to two raises (a raise to a level the task is at or below
                            // is refused), then perhaps a cancel.
                            for _ in 0..rng.usize(0..3) {
                                let to = Priority::from_index(rng.usize(0..4)).unwrap();
                                raises += u64::from(pool.raise_priority(handle, to));
                            }
                            if rng.usize(0..4) == 0 {
                                handle.cancel();
                            }
                        }
                        for handle in handles {
                            match handle.join() {
                                Ok(()) => ran += 1,
                                Err(e) => {
                                    assert!(e.is_cancelled(), "{e:?}");
                                    cancelled += 1;
                                }
                            }
                        }
                    }
                    (ran, cancelled, raises)
                })
            })
            .collect();
        submitters.into_iter().map(|h| h.join().unwrap()).collect()
    });
    pool.shutdown();
    let ran: u64 = outcomes.iter().map(|o| o.0).sum();
    let cancelled: u64 = outcomes.iter().map(|o| o.1).sum();
    let raises: u64 = outcomes.iter().map(|o| o.2).sum();
    let tasks = (THREADS * PER_THREAD) as u64;
    assert_eq!(ran + cancelled, tasks);
    assert!(
        raises > 0 && cancelled > 0,
        "raises {raises}, cancelled {cancelled}"
    );
    assert!(
        runs.iter().all(|r| r.load(Ordering::Relaxed) <= 1),
        "a task ran twice"
    );
    let ran_once = runs
        .iter()
        .filter(|r| r.load(Ordering::Relaxed) == 1)
        .count();
    assert_eq!(ran_once as u64, ran);
    let levels = queue.stats();
    let pushed: u64 = levels.iter().map(|(_, s)| s.pushed).sum();
    assert_eq!(
        pushed,
        tasks + raises,
        "one entry per task and per raise\n{levels}"
    );
    assert_eq!(levels.completed(), ran, "{levels}");
    assert_eq!(levels.discarded(), tasks + raises - ran, "{levels}");
    assert_eq!(levels.queued(), 0, "{levels}");
    assert_levels_balance(&levels);
    let stats = pool.stats();
    assert!(stats.is_balanced(), "{stats}");
    assert_eq!(stats.cancelled, cancelled, "{stats}");
}

/// A pool raises only its own tasks. A handle of another pool, or of a task made for an
/// executor through `ExecutorExt` (which reaches the pool as a plain job), is refused and
/// changes nothing: before, the pool queued a second entry for that task and ran it on its own
/// threads, out of both pools' books (this pool counted a completion it never took in, the
/// other kept the task counted as queued after its shutdown).
#[test]
fn a_pool_raises_only_its_own_tasks() {
    use pool_core::ExecutorExt;

    let (here, here_levels) = one_worker(Aging::off());
    let (there, there_levels) = one_worker(Aging::off());
    let gate = WorkerGate::occupy_at(&there, 1, Priority::Critical);
    let here_gate = WorkerGate::occupy_at(&here, 1, Priority::Critical);
    let log = Log::default();
    let foreign = submit_logged(&log, &there, Priority::Low, 1);
    assert!(!here.raise_priority(&foreign, Priority::Critical));
    assert_eq!(
        foreign.priority(),
        Priority::Low,
        "a refused raise changes nothing"
    );
    // Made by the generic extension on this very pool: a job to it, not one of its tasks.
    let log_job = log.clone();
    let as_job = ExecutorExt::submit_at(&here, Priority::Low, move || log_job.push(2)).unwrap();
    assert!(!here.raise_priority(&as_job, Priority::Critical));
    assert_eq!(here_levels.stats().queued(), 1, "only the job's own entry");
    // The pool's own task is raised as before.
    let own = submit_logged(&log, &here, Priority::Low, 3);
    assert!(here.raise_priority(&own, Priority::Critical));
    here_gate.open();
    for h in [as_job, own] {
        h.join_timeout(PATIENCE).unwrap();
    }
    settle(&here);
    assert_eq!(log.entries(), [3, 2], "the foreign task did not run here");
    gate.open();
    foreign.join_timeout(PATIENCE).unwrap();
    here.shutdown();
    there.shutdown();
    for (pool, levels) in [(&here, &here_levels), (&there, &there_levels)] {
        let stats = pool.stats();
        assert!(stats.is_balanced(), "{stats}");
        assert_eq!((stats.queued, stats.running), (0, 0), "{stats}");
        assert_levels_balance(&levels.stats());
    }
    assert_eq!(there.stats().completed, 2, "the gate and its own task");
    assert_eq!(
        here.stats().completed,
        3,
        "the gate, the job and its own task"
    );
}
