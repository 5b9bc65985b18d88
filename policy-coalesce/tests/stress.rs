//! Random submits, cancels and key cancels from several threads: every handle resolves and the
//! books balance (SPEC section 10).

mod common;

use common::{XorShift, WAIT};
use policy_coalesce::{CoalesceError, Coalescer, JoinTimeoutError, Mode, SubmitOptions};
use pool_core::{Priority, ThreadPool};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
                let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ (seed + 1));
                let mut handles = Vec::new();
                for i in 0..3000u64 {
                    let key = rng.below(8);
                    match rng.below(10) {
                        0 if !handles.is_empty() => {
                            let at = rng.below(handles.len() as u64) as usize;
                            let handle: &policy_coalesce::CoalescedHandle<u64> = &handles[at];
                            handle.cancel();
                        }
                        1 => {
                            coalescer.cancel_key(&key);
                        }
                        _ => {
                            let mode =
                                [Mode::Latest, Mode::Replace, Mode::Keep][rng.below(3) as usize];
                            let priority = Priority::from_index(rng.below(5) as usize).unwrap();
                            let options = SubmitOptions::new().mode(mode).priority(priority);
                            let ran = ran.clone();
                            let panics = rng.below(50) == 0;
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
                    match handle.join_timeout(WAIT) {
                        Ok(_) | Err(JoinTimeoutError::Failed(CoalesceError::Canceled(_))) => {}
                        Err(JoinTimeoutError::Failed(CoalesceError::Panicked(m))) => {
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
    assert!(coalescer.executor().wait_idle(WAIT));
    let stats = coalescer.stats();
    assert!(stats.is_balanced(), "{stats}");
    assert_eq!(
        (stats.pending, stats.running, stats.keys),
        (0, 0, 0),
        "{stats}"
    );
    assert_eq!(stats.executed, ran.load(Ordering::Relaxed), "{stats}");
    assert!(
        stats.executed < stats.submitted,
        "some work was merged: {stats}"
    );
}
