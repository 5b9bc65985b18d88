//! Loom models of pool-core's protocols: wake-up, cancellation, shutdown, resize, stealing and
//! the `Future` handle's waker. Each model asserts one invariant; see `loom-tests/README.md` for the
//! run command, the counts and the planted bugs (`.ci/loom-planted`).
//!
//! Under `--cfg loom` the whole `ThreadPool` runs on loom threads, with crossbeam-deque swapped
//! for locked `VecDeque`s (pool-core's `deque.rs`), so these models drive the real pool code.
#![cfg(loom)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Wake, Waker};

use std::num::NonZeroUsize;
use std::time::Duration;

use loom_tests::model;
use pool_core::sync::{thread, Arc, AtomicUsize, Condvar, Mutex, Ordering, ThreadBudget};
use pool_core::{CancelReason, PoolStats, ResizeError, TaskError, ThreadPool};

/// Counts how often the closures of a model ran.
fn run_counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

fn runs(counter: &AtomicUsize) -> usize {
    counter.load(Ordering::SeqCst)
}

/// A task that bumps `counter` when it runs and returns `value`.
fn counted<T: Send + 'static>(counter: &Arc<AtomicUsize>, value: T) -> impl FnOnce() -> T + Send {
    let counter = counter.clone();
    move || {
        counter.fetch_add(1, Ordering::SeqCst);
        value
    }
}

/// Model 1 (and, under `--cfg loom_broken`, the check that loom catches a broken `Sleep::park`).
///
/// Invariant: a task submitted while the only worker is on its way to sleep is executed. The
/// worker starts with nothing to do and heads for `park`; the submission lands at every point of
/// that path. A lost wake-up leaves `join` blocked forever, which loom reports as a deadlock.
/// Two rounds, so that the second submission also races a worker going back to sleep after a
/// task (not only the first park after start-up).
///
/// Catches `--cfg loom_broken_notify_fence` (the submitter's `SeqCst` fence removed from
/// `Sleep::notify_one`), now that the deque stand-in's emptiness check is lock-free.
#[test]
#[cfg_attr(loom_broken, ignore = "run by broken_park_is_caught")]
fn no_lost_wakeup() {
    model("no_lost_wakeup", || {
        let pool = ThreadPool::new(1).unwrap();
        let first = pool.submit(|| 1).unwrap();
        assert_eq!(first.join().unwrap(), 1);
        let second = pool.submit(|| 2).unwrap();
        assert_eq!(second.join().unwrap(), 2);
        pool.shutdown();
    });
}

/// The deliberately broken variant: built with `--cfg loom_broken`, `Sleep::park` skips its
/// re-check after announcing the worker idle, so a wake-up can be lost. This passes only if loom
/// catches it: `no_lost_wakeup` must fail with loom's deadlock report.
///
/// The model runs in a child process of this test binary because a loom deadlock cannot be
/// caught with `should_panic`: loom then unwinds the parked worker's stack, whose `Drop`s call
/// into loom again, and the process aborts ("panic in a destructor during cleanup").
#[test]
#[cfg(loom_broken)]
fn broken_park_is_caught() {
    loom_tests::expect_model_fails("no_lost_wakeup", "deadlock");
}

/// Model 2. Invariant: cancel and start race, exactly one wins. `cancel()` returns true iff the
/// closure never ran; `join` reports `Cancelled(Requested)` iff `cancel()` returned true, and the
/// value otherwise; the closure runs at most once.
#[test]
#[cfg_attr(loom_broken, ignore = "checks another protocol")]
fn cancel_vs_start_exactly_one_wins() {
    model("cancel_vs_start_exactly_one_wins", || {
        let pool = ThreadPool::new(1).unwrap();
        let counter = run_counter();
        let handle = pool.submit(counted(&counter, 7)).unwrap();
        let cancelled = handle.cancel();
        let outcome = handle.join();
        pool.shutdown();
        let ran = runs(&counter);
        assert!(ran <= 1, "the closure ran {ran} times");
        assert_eq!(cancelled, ran == 0, "cancel() = {cancelled}, runs = {ran}");
        match outcome {
            Ok(value) => {
                assert!(!cancelled);
                assert_eq!(value, 7);
            }
            Err(TaskError::Cancelled(CancelReason::Requested)) => assert!(cancelled),
            Err(other) => panic!("unexpected outcome {other:?}"),
        }
        // Delivered once, counted once: one task, either completed or cancelled.
        let stats = pool.stats();
        assert_eq!(stats.completed + stats.cancelled, 1, "{stats:?}");
        assert!(stats.is_balanced(), "{stats:?}");
    });
}

/// Model 3. Invariant: submissions racing `shutdown()` each either run or come back rejected:
/// runs + rejections == submissions (2: one handle-less `spawn`, one `submit`), an accepted
/// handle resolves with its value, and `stats.rejected` agrees.
#[test]
#[cfg_attr(loom_broken, ignore = "checks another protocol")]
fn shutdown_vs_submit_runs_or_rejects() {
    model("shutdown_vs_submit_runs_or_rejects", || {
        let (rejected, (), ran) = race_with_shutdown(
            |pool, counter| {
                let mut rejected = usize::from(pool.spawn(counted(counter, ())).is_err());
                match pool.submit(counted(counter, 3)) {
                    Ok(handle) => assert_eq!(handle.join().unwrap(), 3),
                    Err(_rejected) => rejected += 1,
                }
                rejected
            },
            ThreadPool::shutdown,
        );
        assert_eq!(ran.runs + rejected, 2);
        ran.assert_rejected(rejected);
    });
}

/// What a shutdown race leaves: the closures' runs and the pool's stats after both threads.
struct AfterRace {
    runs: usize,
    stats: PoolStats,
}

impl AfterRace {
    /// The stats count `rejected` refusals, and balance.
    fn assert_rejected(&self, rejected: usize) {
        let stats = &self.stats;
        assert_eq!(stats.rejected, rejected as u64, "{stats:?}");
        assert!(stats.is_balanced(), "{stats:?}");
    }
}

/// The set-up of the shutdown models: on a 1-worker pool, `submit` runs on a second loom thread
/// (with the pool and a run counter its closures bump) while this thread runs `shut`. Returns
/// what each returned and what the race left.
fn race_with_shutdown<R, S>(
    submit: impl FnOnce(&ThreadPool, &Arc<AtomicUsize>) -> R + Send + 'static,
    shut: impl FnOnce(&ThreadPool) -> S,
) -> (R, S, AfterRace)
where
    R: Send + 'static,
{
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let counter = run_counter();
    let submitter = {
        let pool = pool.clone();
        let counter = counter.clone();
        loom::thread::spawn(move || submit(&pool, &counter))
    };
    let shut = shut(&pool);
    let submitted = submitter.join().unwrap();
    let after = AfterRace {
        runs: runs(&counter),
        stats: pool.stats(),
    };
    (submitted, shut, after)
}

/// Model 3b. Invariant: a submission racing `shutdown_now()` is accounted exactly once: it comes
/// back rejected, or its handle resolves (with the value if it ran, with `Cancelled(Shutdown)` if
/// the shutdown discarded it); runs + discarded + rejected == 1, and `shutdown_now`'s return
/// counts the discarded one.
#[test]
#[cfg_attr(loom_broken, ignore = "checks another protocol")]
fn shutdown_now_vs_submit_accounts_once() {
    model("shutdown_now_vs_submit_accounts_once", || {
        let ((discarded, rejected), cancelled, ran) = race_with_shutdown(
            |pool, counter| match pool.submit(counted(counter, 4)) {
                Ok(handle) => match handle.join() {
                    Ok(value) => {
                        assert_eq!(value, 4);
                        (0, 0)
                    }
                    Err(TaskError::Cancelled(CancelReason::Shutdown)) => (1, 0),
                    Err(other) => panic!("unexpected outcome {other:?}"),
                },
                Err(_rejected) => (0, 1),
            },
            ThreadPool::shutdown_now,
        );
        assert_eq!(ran.runs + discarded + rejected, 1);
        assert_eq!(cancelled, discarded);
        ran.assert_rejected(rejected);
    });
}

/// Model 4. Invariant: shrinking from 2 workers to 1 while a task is submitted loses no job:
/// the handle resolves with the value and the closure ran exactly once.
///
/// `set_threads(1)` returns at once; the surplus worker retires later, on its own thread, so the
/// submission races the retirement (a worker woken by `wake_all`, claimed by `notify_one`, or
/// between its `try_retire` and its exit). Calling `set_threads` from a third loom thread as well
/// multiplies the interleavings (about 100 s) without reaching a new state of the protocol.
#[test]
#[cfg_attr(loom_broken, ignore = "checks another protocol")]
fn shrink_vs_submit_loses_nothing() {
    model("shrink_vs_submit_loses_nothing", || {
        let pool = ThreadPool::new(2).unwrap();
        let counter = run_counter();
        pool.set_threads(1).unwrap();
        let handle = pool.submit(counted(&counter, 5)).unwrap();
        assert_eq!(handle.join().unwrap(), 5);
        pool.shutdown();
        assert_eq!(runs(&counter), 1);
    });
}

/// Model 4b. Invariant: a task already queued when the pool shrinks is not lost: the retiring
/// worker hands back whatever it holds, and the handle resolves with the value.
#[test]
#[cfg_attr(loom_broken, ignore = "checks another protocol")]
fn submit_then_shrink_loses_nothing() {
    model("submit_then_shrink_loses_nothing", || {
        let pool = ThreadPool::new(2).unwrap();
        let counter = run_counter();
        let handle = pool.submit(counted(&counter, 6)).unwrap();
        pool.set_threads(1).unwrap();
        assert_eq!(handle.join().unwrap(), 6);
        pool.shutdown();
        assert_eq!(runs(&counter), 1);
    });
}

/// A waker that wakes a loom `Notify`, so that loom tracks the wake-up (std's `Arc` for the
/// waker allocation only: its reference count is not part of the protocol under test).
struct NotifyWaker(loom::sync::Notify);

impl Wake for NotifyWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.notify();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0.notify();
    }
}

/// Polls `future` to completion, sleeping on a loom `Notify` between polls: a lost wake-up is a
/// deadlock loom reports.
fn block_on<F: Future>(future: F) -> F::Output {
    let notify = std::sync::Arc::new(NotifyWaker(loom::sync::Notify::new()));
    let waker = Waker::from(notify.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        notify.0.wait();
    }
}

/// Model 5. Invariant: the `Future` handle's waker is never lost against completion: a poll
/// that returns `Pending` is always followed by a wake-up, so awaiting the handle finishes.
#[test]
#[cfg_attr(loom_broken, ignore = "checks another protocol")]
fn future_handle_waker_not_lost() {
    model("future_handle_waker_not_lost", || {
        let pool = ThreadPool::new(1).unwrap();
        let handle = pool.submit(|| 9).unwrap();
        assert_eq!(block_on(handle).unwrap(), 9);
        pool.shutdown();
    });
}

/// Model 6. Invariant: `cancel_all` racing the worker popping counts every task exactly once:
/// each task either completed or was cancelled (never both, never neither), `cancel_all`'s return
/// equals the number of handles reporting `CancelAll`, and the stats balance.
#[test]
#[cfg_attr(loom_broken, ignore = "checks another protocol")]
fn cancel_all_vs_pop_counts_once() {
    model("cancel_all_vs_pop_counts_once", || {
        let pool = ThreadPool::new(1).unwrap();
        let counter = run_counter();
        let handles: Vec<_> = (0..2)
            .map(|i| pool.submit(counted(&counter, i)).unwrap())
            .collect();
        let cancelled = pool.cancel_all();
        let mut reported = 0;
        for (i, handle) in handles.into_iter().enumerate() {
            match handle.join() {
                Ok(value) => assert_eq!(value, i),
                Err(TaskError::Cancelled(CancelReason::CancelAll)) => reported += 1,
                Err(other) => panic!("unexpected outcome {other:?}"),
            }
        }
        pool.shutdown();
        assert_eq!(cancelled, reported);
        assert_eq!(runs(&counter) + cancelled, 2);
        let stats = pool.stats();
        assert_eq!(stats.completed, runs(&counter) as u64, "{stats:?}");
        assert_eq!(stats.cancelled, cancelled as u64, "{stats:?}");
        assert!(stats.is_balanced(), "{stats:?}");
    });
}

/// A count that a model waits on: bumped (from a hook or a task) with a wake-up, so the model
/// waits for the event itself, never for a time.
#[derive(Default)]
struct Events {
    count: Mutex<usize>,
    changed: Condvar,
}

impl Events {
    fn bump(&self) {
        *self.count.lock() += 1;
        self.changed.notify_all();
    }

    fn wait_for(&self, n: usize) {
        let mut count = self.count.lock();
        while *count < n {
            count = self.changed.wait(count);
        }
    }

    fn get(&self) -> usize {
        *self.count.lock()
    }
}

/// No deadline: `wait_idle` then waits on its condition variable alone (no clock under loom).
const FOREVER: Duration = Duration::MAX;

/// Model 7. Invariant: shrinking an idle pool retires the surplus with nothing submitted
/// afterwards: a 2-worker pool whose workers are both parked (`wait_idle`) is set to 1 thread,
/// and a worker's stop hook fires (the model waits for it; a missed wake-up is a deadlock loom
/// reports), after which the live count is 1, while the target stays 1.
///
/// Catches `--cfg loom_broken_idle_shrink` (`set_threads` without its `wake_all`): both workers
/// sleep on, since no submission comes to wake one. This is policy-adaptive's keep-alive case.
#[test]
#[cfg_attr(loom_broken, ignore = "checks another protocol")]
fn idle_shrink_retires_the_surplus() {
    model("idle_shrink_retires_the_surplus", || {
        let stopped = Arc::new(Events::default());
        let hook = stopped.clone();
        let pool = ThreadPool::builder()
            .threads(2)
            .on_thread_stop(move |_| hook.bump())
            .build()
            .unwrap();
        assert!(pool.wait_idle(FOREVER));
        pool.set_threads(1).unwrap();
        stopped.wait_for(1);
        let stats = pool.stats();
        assert_eq!((stats.live_threads, pool.threads()), (1, 1), "{stats:?}");
        pool.shutdown();
        assert_eq!(stopped.get(), 2);
    });
}

/// Model 8. Invariant: a task spawned from inside a task runs exactly once when the other
/// worker must steal it: on a 2-worker pool, task A spawns B into its worker's own deque and
/// then waits for B, so only the second worker (woken by the spawn's `notify_one`) can run B,
/// by stealing it from A's deque; B runs once, A finishes, and the pool goes idle with both
/// tasks completed.
#[test]
#[cfg_attr(loom_broken, ignore = "checks another protocol")]
fn spawned_task_is_stolen_once() {
    model("spawned_task_is_stolen_once", || {
        let pool = Arc::new(ThreadPool::new(2).unwrap());
        let b_runs = Arc::new(Events::default());
        let inner = pool.clone();
        let waits = b_runs.clone();
        pool.spawn(move || {
            let done = waits.clone();
            inner.spawn(move || done.bump()).unwrap();
            drop(inner);
            waits.wait_for(1);
        })
        .unwrap();
        assert!(pool.wait_idle(FOREVER));
        assert_eq!(b_runs.get(), 1);
        let stats = pool.stats();
        assert_eq!((stats.submitted, stats.completed), (2, 2), "{stats:?}");
        assert!(stats.is_balanced(), "{stats:?}");
        pool.shutdown();
    });
}

/// Model 13. Invariant: `wait_idle` never returns while a retiring worker holds a task on its way
/// back to the shared queue. On a 2-worker pool, task A spawns B into its own worker's deque and
/// shrinks the pool to 1; a worker that leaves hands its deque back (B goes from its deque to the
/// shared queue). Whenever `wait_idle` returns true, B has run.
///
/// Catches `--cfg loom_broken_handback_idle` (the retiree does not count itself in
/// `handing_back`): between its pop and its push, B is in no queue, the other worker is parked,
/// and `wait_idle` returns with B not yet run.
#[test]
#[cfg_attr(loom_broken, ignore = "checks another protocol")]
fn wait_idle_waits_for_a_retirees_hand_back() {
    model("wait_idle_waits_for_a_retirees_hand_back", || {
        let pool = Arc::new(ThreadPool::new(2).unwrap());
        let counter = run_counter();
        let inner = pool.clone();
        let b = counted(&counter, ());
        pool.spawn(move || {
            if pool_core::spawn_here(b).is_err() {
                unreachable!("a live pool takes a spawn from its own worker");
            }
            inner.set_threads(1).unwrap();
        })
        .unwrap();
        assert!(pool.wait_idle(FOREVER));
        assert_eq!(
            runs(&counter),
            1,
            "wait_idle returned before the handed-back task ran"
        );
        pool.shutdown();
    });
}

/// Model 9. Invariant: on one worker, outside submissions start in submission order (the worker
/// takes them from the shared queue one at a time); each runs exactly once and the pool goes
/// idle. (It failed when workers moved batches into their own LIFO deque unreversed.)
#[test]
#[cfg_attr(loom_broken, ignore = "checks another protocol")]
fn one_worker_starts_outside_submissions_in_order() {
    model("one_worker_starts_outside_submissions_in_order", || {
        let pool = ThreadPool::new(1).unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        for i in 0..5 {
            let order = order.clone();
            pool.spawn(move || order.lock().push(i)).unwrap();
        }
        assert!(pool.wait_idle(FOREVER));
        assert_eq!(*order.lock(), vec![0, 1, 2, 3, 4]);
        pool.shutdown();
    });
}

/// An executor that runs each job on a loom thread of its own, so a model of the task cell needs
/// no pool (and no pool wake-up, which another planted bug breaks in the same build).
struct ThreadPerJob;

impl pool_core::Executor for ThreadPerJob {
    fn execute(&self, job: pool_core::Job) -> Result<(), pool_core::Rejected<pool_core::Job>> {
        drop(loom::thread::spawn(job));
        Ok(())
    }
}

/// Model 12. Invariant: a thread blocked in `join` is always woken by the task's completion: the
/// joiner's flag (in the task's state word) and the outcome are both written under the slot's
/// mutex, so whichever of joiner and completer comes second sees the other. A lost wake-up leaves
/// `join` blocked forever, which loom reports as a deadlock.
///
/// Catches `--cfg loom_broken_join_flag` (the completer reads the flag before taking the lock).
#[test]
#[cfg_attr(loom_broken, ignore = "checks another protocol")]
fn blocking_join_sees_completion() {
    use pool_core::ExecutorExt;
    model("blocking_join_sees_completion", || {
        let handle = ThreadPerJob.submit(|| 5).unwrap();
        assert_eq!(handle.join().unwrap(), 5);
    });
}

/// Model 14. Invariant: once `shutdown` has returned to an outside caller, no worker thread is
/// still running: each worker that leaves joins the finished ones that left before it (under
/// loom, all of them: `pool/threads.rs`, `leave` and `finished`), and `shutdown` joins every
/// handle still held, so every join ends in `shutdown`. What shows a thread
/// still running is the pool's state it holds: on a 2-worker pool shut down and dropped, the
/// stop hook's closure (owned by that state) must be dropped too.
///
/// Catches `--cfg loom_broken_leave_join` (a leaving worker detaches the threads it took instead
/// of joining them): the first worker to leave is preempted after its hand-off, the second takes
/// its handle, detaches it and exits, and `shutdown` joins only the second.
#[test]
#[cfg_attr(loom_broken, ignore = "checks another protocol")]
fn shutdown_returns_after_every_worker_has_left() {
    model("shutdown_returns_after_every_worker_has_left", || {
        // A std `Arc`: the hook type is std's (pool-core's `IndexHook`); its count is only read
        // after the pool is dropped.
        let owned_by_hook = std::sync::Arc::new(());
        let in_hook = owned_by_hook.clone();
        let pool = ThreadPool::builder()
            .threads(2)
            .on_thread_stop(move |_| {
                let _ = &in_hook;
            })
            .build()
            .unwrap();
        pool.shutdown();
        drop(pool);
        assert_eq!(
            std::sync::Arc::strong_count(&owned_by_hook),
            1,
            "a worker thread still holds the pool after shutdown returned"
        );
    });
}

/// Invariant: two pools starting a worker at once, with one share of the process's thread
/// budget left (`pool/budget.rs`), never both take it, and one of them does: the count held is
/// exactly the number of starts that succeeded, and never passes the limit. A third thread
/// gives back a share held before the race, so a release also lands at every point of both
/// reservations.
///
/// Catches `--cfg loom_broken_thread_budget` (the reservation's check and count as two steps: a
/// load, then an add): both racers read one share free before the release, both take it, and
/// the second sees three held against a limit of two.
#[test]
#[cfg_attr(loom_broken, ignore = "checks another protocol")]
fn racing_starts_never_pass_the_process_thread_limit() {
    model("racing_starts_never_pass_the_process_thread_limit", || {
        let budget = Arc::new(ThreadBudget::new(NonZeroUsize::new(2).unwrap()));
        // Held before the race: the limit leaves one share free, and this one goes back during
        // it.
        assert!(budget.reserve());
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let budget = Arc::clone(&budget);
                thread::spawn(move || {
                    let took = budget.reserve();
                    // Never past the limit, whatever was released.
                    assert!(budget.held() <= budget.limit(), "past the limit");
                    took
                })
            })
            .collect();
        budget.release();
        let took = racers
            .into_iter()
            .map(|racer| racer.join().unwrap())
            .filter(|&took| took)
            .count();
        // The release may land before both reservations (both take one) or after either
        // (one takes the last free share, the other is refused).
        assert!((1..=2).contains(&took), "{took} racers took a share");
        assert_eq!(budget.held(), took, "the count is not the shares taken");
    });
}

/// Invariant: two resizes decided from the same size apply once. Two threads, as two
/// controllers that both sampled a 2-worker pool, call `compare_set_threads(2, 1)`: exactly one
/// resizes, the other is refused with `SizeChanged { requested: 1, expected: 2, found: 1 }`, the
/// pool's size is 1. This is the check that keeps policy-adaptive's tick from undoing a resize
/// made from outside after its sample (`controller/tick.rs`).
///
/// Catches `--cfg loom_broken_compare_resize` (the comparison made before the resize's lock):
/// both threads compare while the size is still 2, then both resize.
#[test]
#[cfg_attr(loom_broken, ignore = "checks another protocol")]
fn two_resizes_from_one_size_apply_once() {
    model("two_resizes_from_one_size_apply_once", || {
        let pool = Arc::new(ThreadPool::new(2).unwrap());
        let other = {
            let pool = pool.clone();
            thread::spawn(move || pool.compare_set_threads(2, 1))
        };
        let mine = pool.compare_set_threads(2, 1);
        let theirs = other.join().unwrap();
        // The one that applied, and the other (which must be refused).
        let refused = match (mine, theirs) {
            (Ok(()), other) | (other, Ok(())) => other,
            (Err(first), Err(second)) => panic!("neither resize applied: {first}; {second}"),
        };
        assert!(
            matches!(
                refused,
                Err(ResizeError::SizeChanged {
                    requested: 1,
                    expected: 2,
                    found: 1
                })
            ),
            "both resizes applied, or the second was refused for another reason: {refused:?}"
        );
        assert_eq!(pool.threads(), 1);
        pool.shutdown();
    });
}
