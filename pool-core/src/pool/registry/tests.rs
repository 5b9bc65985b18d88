use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{Registry, RegistryInner};
use crate::pool::stats::{has_left, DONE};
use crate::sync::Ordering;
use crate::ThreadPool;

/// How long a test waits for an event before it calls the event missing.
const PATIENCE: Duration = Duration::from_secs(30);

/// Entries whose `parked_since` satisfies `marked`.
fn marked(registry: &RegistryInner, marked: impl Fn(u64) -> bool) -> usize {
    registry
        .workers
        .iter()
        .filter(|w| marked(w.counters.parked_since.load(Ordering::Acquire)))
        .count()
}

/// Yields until `registry` (whose lock the caller holds) has an entry marked as `marked` says.
/// A mark has no event to wait on: polled, within `PATIENCE`.
fn wait_for_mark(registry: &RegistryInner, what: &str, is: impl Fn(u64) -> bool + Copy) {
    let deadline = Instant::now() + PATIENCE;
    while marked(registry, is) == 0 {
        assert!(Instant::now() < deadline, "no worker marked itself {what}");
        std::thread::yield_now();
    }
}

/// A worker that has left its loop is not listed in `WorkerStats` while it is still registered
/// (the registry's lock is held here by the test, so nothing can sweep it): it marks itself
/// `LEFT` first, so that the wait cannot make it look like a busy worker.
#[test]
fn a_leaving_worker_is_not_listed_while_it_is_still_registered() {
    let pool = ThreadPool::new(2).unwrap();
    assert!(pool.wait_idle(PATIENCE));
    let registry = pool.shared.registry.inner.lock();
    pool.set_threads(1).unwrap();
    wait_for_mark(&registry, "as leaving", has_left);
    let mut listed = Vec::new();
    Registry::read_workers(&registry, &mut listed);
    assert_eq!((registry.workers.len(), listed.len()), (2, 1), "{listed:?}");
    drop(registry);
    pool.shutdown();
    assert!(pool.worker_stats().is_empty());
    assert_eq!(pool.shared.registry.entries(), 0);
}

/// A leaving worker that finds another sweeping does not wait for the registry's lock: once that
/// sweep takes its entry out, it goes on (here to its stop hook) while the sweeper still has its
/// turn and the lock. Before the sweep, every leaving worker blocked in the lock until each
/// holder before it was done. The test plays the sweeper.
#[test]
fn a_leaving_worker_goes_once_another_holder_sweeps_it() {
    let (stopped_tx, stopped) = mpsc::channel();
    let stopped_tx = std::sync::Mutex::new(stopped_tx);
    let pool = ThreadPool::builder()
        .threads(2)
        .on_thread_stop(move |index| {
            let _ = stopped_tx.lock().map(|tx| tx.send(index));
        })
        .build()
        .unwrap();
    for value in 0..100_u64 {
        pool.spawn(move || {
            std::hint::black_box(value);
        })
        .unwrap();
    }
    assert!(pool.wait_idle(PATIENCE));
    let sweeping = &pool.shared.registry.sweeping;
    assert!(!sweeping.swap(true, Ordering::Acquire));
    let mut registry = pool.shared.registry.inner.lock();
    pool.set_threads(1).unwrap();
    // The retiring worker's counters are final: it waits to be swept.
    wait_for_mark(&registry, "done", |since| since == DONE);
    let generation = pool.shared.registry.generation.load(Ordering::Acquire);
    pool.shared.registry.sweep(&mut registry);
    assert_eq!(registry.workers.len(), 1, "the swept entry is out");
    assert!(pool.shared.registry.generation.load(Ordering::Acquire) > generation);
    let totals = Registry::totals_of(&registry, &pool.shared.external);
    assert_eq!(
        totals.completed, 100,
        "the swept worker's count stays in the totals"
    );
    // Still under the lock: the worker is on its way out.
    assert!(
        stopped.recv_timeout(PATIENCE).is_ok(),
        "a swept worker still waited for the sweeper's turn or the registry's lock"
    );
    drop(registry);
    sweeping.store(false, Ordering::Release);
    pool.shutdown();
    let stats = pool.stats();
    assert!(stats.is_balanced(), "{stats}");
    assert_eq!(stats.completed, 100, "{stats}");
    assert_eq!(pool.shared.registry.entries(), 0);
}

/// Many workers leaving at once, while other threads read the stats: every entry is swept by the
/// time `shutdown` returns, and no task's count is lost or counted twice on the way.
#[test]
fn workers_leaving_together_are_all_swept_and_nothing_is_lost() {
    const TASKS: u64 = 2_000;
    let pool = std::sync::Arc::new(ThreadPool::new(16).unwrap());
    for value in 0..TASKS {
        pool.spawn(move || {
            std::hint::black_box(value);
        })
        .unwrap();
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (pool, stop) = (pool.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut workers = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let stats = pool.stats_with_workers(&mut workers);
                    assert!(stats.is_balanced(), "{stats}");
                    assert!(stats.completed <= TASKS, "{stats}");
                }
            })
        })
        .collect();
    for threads in [1, 12, 2, 16, 3] {
        pool.set_threads(threads).unwrap();
    }
    assert!(pool.wait_idle(PATIENCE));
    pool.shutdown();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        reader.join().unwrap();
    }
    let stats = pool.stats();
    assert!(stats.is_balanced(), "{stats}");
    assert_eq!(stats.completed, TASKS, "{stats}");
    assert_eq!(pool.shared.registry.entries(), 0);
}
