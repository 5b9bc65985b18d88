//! Loom models of `ThreadPool::scope`'s completion count and panic hand-off, and of `join`'s
//! take-once slot (pool-core `scope/`, protocol in `scope/README.md`).
//!
//! Run: `RUSTFLAGS="--cfg loom -C debug-assertions" LOOM_MAX_PREEMPTIONS=2
//! CARGO_TARGET_DIR=target/loom cargo test --release -p loom-tests --test scope`.
//!
//! Planted bug: `--cfg loom_broken_scope_count` makes a scoped job complete (decrement the
//! scope's count) *before* its closure runs, so the scope can return while the closure has not
//! run yet. `broken_scope_count_is_caught` then runs `scope_returns_after_its_closures` in a child
//! process and passes only if loom reports the failure (the other models are ignored in that
//! build).
#![cfg(loom)]

use std::panic::{catch_unwind, AssertUnwindSafe};

use pool_core::sync::{Arc, AtomicUsize, Ordering};
use pool_core::ThreadPool;

/// Runs `f` under `loom::model` with the panics the models raise on purpose silenced: `Token`
/// payloads (not strings, so `quiet_panics` silences them), and the scope's report of a discard.
fn model(name: &'static str, f: impl Fn() + Send + Sync + 'static) {
    test_kit::quiet_panics(|message| message.contains("discarded"));
    loom_tests::model(name, f);
}

/// A panic payload that counts its own drop, so a model can check that every payload is either
/// handed to the caller or dropped, once.
struct Token {
    name: &'static str,
    dropped: Arc<AtomicUsize>,
}

impl Drop for Token {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// Invariant: `scope` returns only after its spawned closure has run.
///
/// One worker; the caller is outside the pool, so it blocks on the scope's condvar while the
/// worker runs the closure, and the decrement-to-zero races the caller's check. With the planted
/// bug the count reaches zero before the closure runs and the caller sees `ran == 0`.
#[test]
#[cfg_attr(
    loom_broken_scope_count,
    ignore = "run by broken_scope_count_is_caught"
)]
fn scope_returns_after_its_closures() {
    model("scope_returns_after_its_closures", || {
        let pool = ThreadPool::new(1).unwrap();
        let ran = AtomicUsize::new(0);
        pool.scope(|s| {
            let ran = &ran;
            s.spawn(move |_| {
                ran.fetch_add(1, Ordering::Relaxed);
            });
        });
        // Relaxed on purpose: the scope's own Release/Acquire must order the closure's write.
        assert_eq!(
            ran.load(Ordering::Relaxed),
            1,
            "scope returned before its closure ran"
        );
        pool.shutdown();
    });
}

/// The planted bug is caught: built with `--cfg loom_broken_scope_count`, the model above must
/// fail. In a child process, as in `core.rs`: after a failed model loom unwinds the other loom
/// threads' stacks, whose `Drop`s call into loom again, and the process may abort.
#[test]
#[cfg(loom_broken_scope_count)]
fn broken_scope_count_is_caught() {
    loom_tests::expect_model_fails(
        "scope_returns_after_its_closures",
        "scope returned before its closure ran",
    );
}

/// Invariant: a panic reaches the scope's caller exactly once, after every closure finished.
///
/// The body and a spawned closure both panic; a second spawned closure runs normally. The
/// caller gets exactly one payload (either: whichever was recorded first), the other payload is
/// dropped inside the scope, and the normal closure has run.
#[test]
#[cfg_attr(loom_broken_scope_count, ignore = "checks another invariant")]
fn a_panic_reaches_the_caller_exactly_once() {
    model("a_panic_reaches_the_caller_exactly_once", || {
        let pool = ThreadPool::new(1).unwrap();
        let dropped = Arc::new(AtomicUsize::new(0));
        let ran = AtomicUsize::new(0);
        let result = catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                let token = Token {
                    name: "closure",
                    dropped: Arc::clone(&dropped),
                };
                s.spawn(move |_| std::panic::panic_any(token));
                let ran = &ran;
                s.spawn(move |_| {
                    ran.fetch_add(1, Ordering::Relaxed);
                });
                std::panic::panic_any(Token {
                    name: "body",
                    dropped: Arc::clone(&dropped),
                });
            })
        }));
        assert_eq!(ran.load(Ordering::Relaxed), 1, "a closure had not finished");
        let payload = result.expect_err("no panic reached the caller");
        let token = payload.downcast_ref::<Token>().expect("a Token payload");
        assert!(["closure", "body"].contains(&token.name));
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "the other payload");
        drop(payload);
        assert_eq!(dropped.load(Ordering::SeqCst), 2);
        pool.shutdown();
    });
}

/// Invariant: a scope inside a task on a one-worker pool finishes: the waiting worker runs the
/// closure it waits for (`yield_now`), or, if it found none, is woken by its completion.
#[test]
#[cfg_attr(loom_broken_scope_count, ignore = "checks another invariant")]
fn a_scope_on_the_only_worker_helps() {
    model("a_scope_on_the_only_worker_helps", || {
        let pool = Arc::new(ThreadPool::new(1).unwrap());
        let inner = Arc::clone(&pool);
        let handle = pool
            .submit(move || {
                let ran = AtomicUsize::new(0);
                inner.scope(|s| {
                    let ran = &ran;
                    s.spawn(move |_| {
                        ran.fetch_add(1, Ordering::Relaxed);
                    });
                });
                ran.load(Ordering::Relaxed)
            })
            .unwrap();
        assert_eq!(handle.join().unwrap(), 1);
        pool.shutdown();
    });
}

/// Invariant: a scoped closure discarded by `shutdown_now` while queued is dropped (never run
/// after the scope, never leaked), the scope still returns, and it reports the discard.
///
/// One worker, busy with a first closure that only ends once `shutdown_now` has started, so the
/// second closure is still queued when the discard may reach it; it may also have been started
/// by then. Either way `ran + dropped == 1`, and the scope panics iff it was dropped.
#[test]
#[cfg_attr(loom_broken_scope_count, ignore = "checks another invariant")]
fn shutdown_now_drops_a_queued_closure_and_the_scope_returns() {
    model(
        "shutdown_now_drops_a_queued_closure_and_the_scope_returns",
        || {
            struct Guard<'a> {
                ran: bool,
                dropped: &'a AtomicUsize,
            }
            impl Drop for Guard<'_> {
                fn drop(&mut self) {
                    if !self.ran {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }

            let pool = Arc::new(ThreadPool::new(1).unwrap());
            let stopper = {
                let pool = Arc::clone(&pool);
                loom::thread::spawn(move || pool.shutdown_now())
            };
            let (ran, dropped) = (AtomicUsize::new(0), AtomicUsize::new(0));
            let result = catch_unwind(AssertUnwindSafe(|| {
                pool.scope(|s| {
                    let guard = Guard {
                        ran: false,
                        dropped: &dropped,
                    };
                    let ran = &ran;
                    s.spawn(move |_| {
                        // Move the whole guard in (a closure would capture only the field).
                        let mut guard = guard;
                        guard.ran = true;
                        ran.fetch_add(1, Ordering::Relaxed);
                    });
                })
            }));
            let (ran, dropped) = (ran.load(Ordering::Relaxed), dropped.load(Ordering::Relaxed));
            assert_eq!(ran + dropped, 1, "ran {ran}, dropped {dropped}");
            assert_eq!(
                result.is_err(),
                dropped == 1,
                "the discard was not reported"
            );
            stopper.join().unwrap();
            DISCARDS_SEEN.fetch_add(dropped, std::sync::atomic::Ordering::Relaxed);
        },
    );
    // The model is only worth its time if some interleaving reached the discard.
    assert!(DISCARDS_SEEN.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

/// Interleavings of the model above in which the closure was discarded (a plain std counter:
/// it is outside the protocol and only read after the model).
static DISCARDS_SEEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Invariant: `join`'s `b` runs exactly once, on the worker or on the caller (whoever takes it
/// from the slot first), and `join` returns only after it ran.
#[test]
#[cfg_attr(loom_broken_scope_count, ignore = "checks another invariant")]
fn join_runs_b_exactly_once() {
    model("join_runs_b_exactly_once", || {
        let pool = ThreadPool::new(1).unwrap();
        let runs = AtomicUsize::new(0);
        let (a, b) = pool.join(
            || 1,
            || {
                runs.fetch_add(1, Ordering::Relaxed);
                2
            },
        );
        assert_eq!((a, b), (1, 2));
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        pool.shutdown();
    });
}

/// Invariant: a `join` called on a worker runs `b` exactly once and returns both results, whether
/// the caller takes its queued half back from its own deque (`worker::run_newest_if`) or the
/// other worker steals it first (then the caller finds the slot empty and waits for the thief).
/// The race is the caller's pop against the thief's steal of the same entry; the deque decides
/// it, the slot's take-once lock decides who runs `b`.
#[test]
fn a_join_on_a_worker_runs_b_once_taken_back_or_stolen() {
    model(
        "a_join_on_a_worker_runs_b_once_taken_back_or_stolen",
        || {
            let pool = Arc::new(ThreadPool::new(2).unwrap());
            let inner = Arc::clone(&pool);
            let handle = pool
                .submit(move || {
                    let runs = AtomicUsize::new(0);
                    let (a, b) = inner.join(
                        || 1,
                        || {
                            runs.fetch_add(1, Ordering::Relaxed);
                            2
                        },
                    );
                    (a, b, runs.load(Ordering::Relaxed))
                })
                .unwrap();
            assert_eq!(handle.join().unwrap(), (1, 2, 1));
            pool.shutdown();
        },
    );
}
