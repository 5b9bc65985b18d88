//! Random submits, cancels and key cancels from several threads: every handle resolves and the
//! books balance: user code may panic anywhere, and no handle or key may be stranded.

mod common;

use common::assert_books;
use policy_coalesce::{CoalesceError, CoalesceJoinTimeoutError, Coalescer, Mode, SubmitOptions};
use pool_core::{Priority, ThreadPool};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use test_kit::PATIENCE;

#[test]
fn random_operations_balance_the_books() {
    let pool = ThreadPool::new(2).unwrap();
    let coalescer = Coalescer::<u64, u64, _>::builder(pool)
        .shards(4)
        .build()
        .unwrap();
    let ran = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..3u64)
        .map(|seed| {
            let coalescer = coalescer.clone();
            let ran = ran.clone();
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(0x9E37_79B9_7F4A_7C15 ^ (seed + 1));
                let mut handles = Vec::new();
                for i in 0..3000u64 {
                    let key = rng.u64(..8);
                    match rng.u64(..10) {
                        0 if !handles.is_empty() => {
                            let at = rng.u64(..(handles.len() as u64).max(1)) as usize;
                            let handle: &policy_coalesce::CoalescedHandle<u64> = &handles[at];
                            handle.cancel();
                        }
                        1 => {
                            coalescer.cancel_key(&key);
                        }
                        _ => {
                            let mode =
                                [Mode::Latest, Mode::Replace, Mode::Keep][rng.u64(..3) as usize];
                            let priority = Priority::from_index(rng.u64(..5) as usize).unwrap();
                            let options = SubmitOptions::new().mode(mode).priority(priority);
                            let ran = ran.clone();
                            let panics = rng.u64(..50) == 0;
                            let handle = coalescer
                                .submit_cancellable_with(key, options, move |_flag| {
                                    ran.fetch_add(1, Ordering::Relaxed);
                                    assert!(!panics, "planned panic");
                                    i
                                })
                                .unwrap();
                            handles.push(handle);
                        }
                    }
                }
                let mut resolved = 0;
                for handle in handles {
                    match handle.join_timeout(PATIENCE) {
                        Ok(_)
                        | Err(CoalesceJoinTimeoutError::Failed(CoalesceError::Cancelled(_))) => {}
                        Err(CoalesceJoinTimeoutError::Failed(CoalesceError::Panicked(m))) => {
                            assert_eq!(m, "planned panic")
                        }
                        Err(other) => panic!("unexpected {other:?}"),
                    }
                    resolved += 1;
                }
                resolved
            })
        })
        .collect();
    let resolved: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(resolved > 0);
    assert!(coalescer.executor().wait_idle(PATIENCE));
    assert_books(&coalescer, |s| (s.pending, s.running, s.keys), (0, 0, 0));
    let stats = coalescer.stats();
    assert_eq!(stats.executed, ran.load(Ordering::Relaxed), "{stats}");
    assert!(
        stats.executed < stats.submitted,
        "some work was merged: {stats}"
    );
}

/// User code that panics at random (seeded), everywhere at once: closures (some with a payload
/// whose `Drop` panics), captures dropped unrun, outputs, wakers, keys' `Hash`/`Eq`/`Drop`, and
/// an executor that panics with or without the job. Every handle resolves, every key is freed,
/// and the books balance.
mod hostile {
    use super::assert_books;
    use policy_coalesce::{
        CoalesceError, CoalesceJoinTimeoutError, CoalescedHandle, Coalescer, Mode, SubmitOptions,
    };
    use pool_core::{Executor, Job, Priority, Rejected, ThreadPool};
    use std::future::Future;
    use std::hash::{Hash, Hasher};
    use std::panic::{catch_unwind, panic_any, AssertUnwindSafe};
    use std::pin::Pin;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Wake, Waker};
    use test_kit::PATIENCE;

    const HOSTILE: &str = "hostile";

    /// One in `n` calls of a piece of user code panics.
    fn one_in(counter: &AtomicU64, n: u64) -> bool {
        let c = counter.fetch_add(1, Ordering::Relaxed);
        (c.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32).is_multiple_of(n)
    }

    static KEY_CALLS: AtomicU64 = AtomicU64::new(1);
    static DROPS: AtomicU64 = AtomicU64::new(1);

    struct Key {
        id: u64,
        hostile_drop: bool,
    }

    impl Hash for Key {
        fn hash<H: Hasher>(&self, state: &mut H) {
            assert!(!one_in(&KEY_CALLS, 97), "{HOSTILE} Hash");
            self.id.hash(state);
        }
    }

    impl PartialEq for Key {
        fn eq(&self, other: &Self) -> bool {
            assert!(!one_in(&KEY_CALLS, 97), "{HOSTILE} Eq");
            self.id == other.id
        }
    }

    impl Eq for Key {}

    impl Drop for Key {
        fn drop(&mut self) {
            if self.hostile_drop && !std::thread::panicking() && one_in(&DROPS, 5) {
                panic!("{HOSTILE} key Drop");
            }
        }
    }

    /// Panics in `Drop` when `loud` (a capture dropped unrun, an output, a panic payload).
    struct Loud(bool);

    impl Drop for Loud {
        fn drop(&mut self) {
            if self.0 && !std::thread::panicking() {
                panic!("{HOSTILE} Drop");
            }
        }
    }

    struct PanickyWake;

    impl Wake for PanickyWake {
        fn wake(self: Arc<Self>) {
            panic!("{HOSTILE} waker");
        }
    }

    /// A pool whose `execute_with_priority` panics one call in 50: half the time after dropping
    /// the job, half the time with the job still in hand (dropped while the panic unwinds).
    struct Flaky {
        pool: ThreadPool,
        calls: AtomicU64,
    }

    impl Executor for Flaky {
        fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
            self.execute_with_priority(job, Priority::Normal)
        }
        fn execute_with_priority(&self, job: Job, priority: Priority) -> Result<(), Rejected<Job>> {
            if one_in(&self.calls, 50) {
                if self.calls.load(Ordering::Relaxed).is_multiple_of(2) {
                    drop(job);
                }
                panic!("{HOSTILE} executor");
            }
            self.pool.execute_with_priority(job, priority)
        }
    }

    #[test]
    fn hostile_user_code_never_strands_a_handle_or_unbalances_the_books() {
        // The planned panics print nothing: the test's output stays readable.
        test_kit::quiet_panics(|message| message.contains(HOSTILE));
        let flaky = Flaky {
            pool: ThreadPool::new(2).unwrap(),
            calls: AtomicU64::new(1),
        };
        let coalescer = Coalescer::<Key, Loud, _>::builder(flaky)
            .shards(4)
            .build()
            .unwrap();
        let accepted = Arc::new(AtomicU64::new(0));
        let started = Arc::new(AtomicU64::new(0));
        let outcomes = Arc::new(Mutex::new([0u64; 4])); // ok, panicked, cancelled, key panics
        let threads: Vec<_> = (0..3u64)
            .map(|seed| {
                let coalescer = coalescer.clone();
                let (accepted, started, outcomes) =
                    (accepted.clone(), started.clone(), outcomes.clone());
                std::thread::spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(0x2545_F491_4F6C_DD1D ^ (seed + 1));
                    let mut handles: Vec<CoalescedHandle<Loud>> = Vec::new();
                    let mut key_panics = 0;
                    for _ in 0..2000 {
                        let id = rng.u64(..6);
                        let key = Key {
                            id,
                            hostile_drop: true,
                        };
                        let op = rng.u64(..20);
                        let result = catch_unwind(AssertUnwindSafe(|| match op {
                            0 => {
                                coalescer.cancel_key(&key);
                            }
                            1 if !handles.is_empty() => {
                                let at = rng.u64(..(handles.len() as u64).max(1)) as usize;
                                handles[at].cancel();
                            }
                            _ => {
                                let mode = [Mode::Latest, Mode::Replace, Mode::Keep]
                                    [rng.u64(..3) as usize];
                                let priority = Priority::from_index(rng.u64(..5) as usize).unwrap();
                                let options = SubmitOptions::new().mode(mode).priority(priority);
                                let fate = rng.u64(..10);
                                let capture = Loud(true); // panics if dropped unrun
                                let started = started.clone();
                                let work = move || {
                                    std::mem::forget(capture);
                                    started.fetch_add(1, Ordering::Relaxed);
                                    match fate {
                                        0 => panic_any(Loud(true)),
                                        1 => panic!("{HOSTILE} closure"),
                                        _ => Loud(fate == 2),
                                    }
                                };
                                let key = Key {
                                    id,
                                    hostile_drop: true,
                                };
                                if op == 2 {
                                    let spawned = coalescer.spawn(key, options, work);
                                    assert!(spawned.is_ok(), "the pool is never shut down");
                                } else {
                                    let handle = coalescer.submit_with(key, options, work);
                                    let Ok(mut handle) = handle else {
                                        panic!("the pool is never shut down");
                                    };
                                    if op == 3 {
                                        let waker = Waker::from(Arc::new(PanickyWake));
                                        let mut cx = Context::from_waker(&waker);
                                        let _ = Pin::new(&mut handle).poll(&mut cx);
                                    }
                                    handles.push(handle);
                                }
                                accepted.fetch_add(1, Ordering::Relaxed);
                            }
                        }));
                        // Only the caller's own key may panic into it.
                        if let Err(payload) = result {
                            let message = payload.downcast_ref::<String>();
                            assert!(
                                message.is_some_and(|m| m.ends_with("Hash") || m.ends_with("Eq")),
                                "a panic other than the key's reached the caller: {message:?}"
                            );
                            key_panics += 1;
                        }
                        // Keys the test keeps are dropped here, by the test: never hostile.
                        std::mem::forget(key);
                    }
                    let mut seen = [0u64; 4];
                    seen[3] = key_panics;
                    for handle in handles {
                        match handle.join_timeout(PATIENCE) {
                            // A loud value's last reference is left to leak here: a panic in
                            // the test's own thread is not what is being tested.
                            Ok(value) => {
                                std::mem::forget(value);
                                seen[0] += 1;
                            }
                            Err(CoalesceJoinTimeoutError::Failed(CoalesceError::Panicked(_))) => {
                                seen[1] += 1
                            }
                            Err(CoalesceJoinTimeoutError::Failed(CoalesceError::Cancelled(_))) => {
                                seen[2] += 1
                            }
                            Err(CoalesceJoinTimeoutError::TimedOut(_)) => {
                                panic!("a handle never resolved")
                            }
                            Err(other) => panic!("unexpected {other:?}"),
                        }
                    }
                    let mut total = outcomes.lock().unwrap();
                    for (t, s) in total.iter_mut().zip(seen) {
                        *t += s;
                    }
                })
            })
            .collect();
        for thread in threads {
            thread
                .join()
                .expect("no hostile panic reaches a submitter but its key's");
        }
        assert!(coalescer.executor().pool.wait_idle(PATIENCE));
        assert_books(&coalescer, |s| (s.pending, s.running, s.keys), (0, 0, 0));
        let stats = coalescer.stats();
        let [ok, panicked, cancelled, key_panics] = *outcomes.lock().unwrap();
        assert_eq!(stats.submitted, accepted.load(Ordering::Relaxed), "{stats}");
        assert_eq!(stats.executed, started.load(Ordering::Relaxed), "{stats}");
        assert!(
            ok > 0 && panicked > 0 && cancelled > 0,
            "{ok} {panicked} {cancelled}"
        );
        assert!(
            key_panics > 0 && stats.cancelled > 0,
            "{key_panics} {stats}"
        );
    }
}
