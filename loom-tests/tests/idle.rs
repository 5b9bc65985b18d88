//! Loom model of `wait_idle`'s generations (pool-core `pool/sleep.rs`, step 6 of the wake-up
//! protocol in `pool/README.md`).
//!
//! Run: `RUSTFLAGS="--cfg loom -C debug-assertions" LOOM_MAX_PREEMPTIONS=2 cargo test --release
//! -p loom-tests --test idle`. Planted bug: `--cfg loom_broken_idle_level` makes waiters re-check
//! the level on wake-up instead of the generation; `every_waiter_of_an_idle_moment_returns` must
//! then fail (run by `.ci/loom-planted`).
#![cfg(loom)]

use pool_core::sync::{Arc, AtomicBool, Condvar, Mutex, Ordering};
use pool_core::ThreadPool;

/// Counts waiters that have returned; the refill job waits until both have.
#[derive(Default)]
struct Returned {
    count: Mutex<usize>,
    changed: Condvar,
}

impl Returned {
    fn one_more(&self) {
        *self.count.lock() += 1;
        self.changed.notify_all();
    }

    fn wait_for(&self, n: usize) {
        let mut count = self.count.lock();
        while *count < n {
            count = self.changed.wait(count);
        }
    }
}

/// Invariant: every thread waiting in `wait_idle` when the pool goes idle returns true, even when
/// the first one out refills the pool at once.
///
/// One worker runs a job that holds the pool busy until both waiters are inside `wait_idle`. The
/// first waiter out submits a refill job that only ends once both waiters have returned. A waiter
/// that re-checked the level instead of the generation would see the refill, wait for the next idle
/// moment, and that moment waits for it: loom reports the deadlock. (Under loom a timed wait never
/// times out, so the timeout below cannot end the wait either.)
#[test]
fn every_waiter_of_an_idle_moment_returns() {
    loom::model(|| {
        let pool = Arc::new(ThreadPool::new(1).unwrap());
        let watched = Arc::clone(&pool);
        pool.spawn(move || {
            while watched.idle_waiters() < 2 {
                loom::thread::yield_now();
            }
        })
        .unwrap();
        let returned = Arc::new(Returned::default());
        let refilled = Arc::new(AtomicBool::new(false));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (pool, returned, refilled) = (
                    Arc::clone(&pool),
                    Arc::clone(&returned),
                    Arc::clone(&refilled),
                );
                loom::thread::spawn(move || {
                    let went_idle = pool.wait_idle(std::time::Duration::from_secs(3600));
                    if !refilled.swap(true, Ordering::SeqCst) {
                        let returned = Arc::clone(&returned);
                        pool.spawn(move || returned.wait_for(2)).unwrap();
                    }
                    returned.one_more();
                    went_idle
                })
            })
            .collect();
        for waiter in waiters {
            assert!(
                waiter.join().unwrap(),
                "a waiter of the idle moment returned false"
            );
        }
        pool.shutdown();
    });
}
