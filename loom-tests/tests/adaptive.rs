//! Loom models of policy-adaptive's protocol: the controller's resize racing submissions and
//! shutdown, the controller's stop, and the early ask's handshake with the controller's wait.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p loom-tests --test
//! adaptive`.
//!
//! The resize models drive pool-core's real `ThreadPool` (its deques swap to locked
//! `VecDeque`s under loom) with `set_threads` on one loom thread, exactly the call the
//! controller makes on its tick, racing a submission and then `shutdown` on the main thread.
//! The stop model runs the real `AdaptivePool` controller thread. loom's `Condvar::wait_timeout`
//! never times out, so under loom the controller only wakes when notified: the model checks
//! that `shutdown` always wakes and joins it, whatever point of its wait loop it is at.
#![cfg(loom)]

use std::time::{Duration, Instant};

use loom_tests::model;
use policy_adaptive::{AdaptivePool, EarlyAsk, Signals, Snapshot};
use pool_core::sync::{thread, Arc, AtomicUsize, Condvar, Mutex, Ordering};
use pool_core::ThreadPool;

/// Resizes to `to` from one thread (the controller's tick) while the main thread submits a job
/// and then shuts the pool down; checks that the job ran exactly once or came back rejected,
/// that the books balance, and that no worker thread is left.
///
/// loom allows 4 threads per model: main, the resizer and up to two workers, so the submission
/// and the shutdown share the main thread. Submission racing shutdown on its own is pool-core's
/// model (`core.rs`, `shutdown_vs_submit_runs_or_rejects`).
fn resize_vs_submit_vs_shutdown(name: &'static str, start: usize, to: usize) {
    model(name, move || {
        let pool = Arc::new(ThreadPool::new(start).unwrap());
        let runs = Arc::new(AtomicUsize::new(0));

        let resizer = {
            let pool = pool.clone();
            // Like the controller, a refused resize after shutdown is not an error to report.
            thread::spawn(move || pool.set_threads(to).is_ok())
        };
        let counted = runs.clone();
        let handle = pool
            .submit(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                7
            })
            .ok();
        pool.shutdown();
        let _resized = resizer.join().unwrap();

        match handle {
            // Accepted before shutdown: graceful shutdown runs it.
            Some(handle) => {
                assert_eq!(handle.join().unwrap(), 7, "an accepted job runs");
                assert_eq!(runs.load(Ordering::SeqCst), 1, "exactly once");
            }
            None => unreachable!("submitted before shutdown, so accepted"),
        }
        let stats = pool.stats();
        assert!(stats.is_balanced(), "{stats}");
        assert_eq!(stats.queued + stats.running, 0, "{stats}");
        assert_eq!(
            stats.live_threads, 0,
            "no worker outlives shutdown: {stats}"
        );
    });
}

/// Invariant: growing (1 -> 2) racing a submission and the shutdown loses no job and leaks no
/// thread (the worker started by the resize is joined by shutdown, or the resize is refused).
#[test]
fn grow_vs_submit_vs_shutdown() {
    resize_vs_submit_vs_shutdown("grow_vs_submit_vs_shutdown", 1, 2);
}

/// Invariant: shrinking (2 -> 1) racing a submission and the shutdown loses no job (the
/// retiring worker leaves it to the other) and leaks no thread.
#[test]
fn shrink_vs_submit_vs_shutdown() {
    resize_vs_submit_vs_shutdown("shrink_vs_submit_vs_shutdown", 2, 1);
}

/// Signals that are never read under loom (the controller only wakes to stop) but must exist.
struct Quiet;

impl Signals for Quiet {
    fn sample(&mut self, pool: &ThreadPool, elapsed: Duration) -> Snapshot {
        Snapshot {
            threads: pool.stats().live_threads,
            target: pool.threads(),
            ..Snapshot::new(elapsed, 1)
        }
    }
}

/// Invariant: `shutdown` stops the controller wherever it is in its wait loop (checking the
/// flag, about to wait, waiting): the stop is never missed, the controller is joined, and no
/// pool worker is left. A missed stop leaves the join blocked forever, which loom reports.
#[test]
fn shutdown_always_stops_and_joins_the_controller() {
    model("shutdown_always_stops_and_joins_the_controller", || {
        let pool = AdaptivePool::builder()
            .min(1)
            .max(2)
            .signals(Quiet)
            .build()
            .unwrap();
        pool.shutdown();
        assert_eq!(pool.stats().live_threads, 0);
        assert!(pool.submit(|| ()).is_err(), "shut down");
    });
}

/// What the early-ask model keeps under the controller's lock: the stop, the ask, and whether
/// the look came.
#[derive(Default)]
struct AskControl {
    stop: bool,
    ask: EarlyAsk,
    looked: bool,
}

impl AsMut<EarlyAsk> for AskControl {
    fn as_mut(&mut self) -> &mut EarlyAsk {
        &mut self.ask
    }
}

/// The controller's lock, its wake-up, and the model's own signal that the look came.
struct AskShared {
    control: Mutex<AskControl>,
    wake: Condvar,
    looked: Condvar,
}

/// The early look may come 10 ms after the controller's start; its next tick is at 100 ms.
const LOOK_DUE: Duration = Duration::from_millis(10);
const TICK: Duration = Duration::from_millis(100);

/// The controller's wait for an early look, reduced to the handshake: `schedule.rs`'s wait loop
/// wakes, calls `awake`, takes the ask once the look is due, and otherwise promises
/// (`before_wait`) and waits until the look's time, or once it is past, until the tick. loom
/// has no clock, and its `wait_timeout` never times out, so this loop keeps time itself: a wait
/// that ends no later than the look's time ends on its own (its timeout fires at a point loom
/// picks: the lock is released, any thread may run, then the clock moves to the deadline); a
/// wait past it ends only when notified. A wake-up at the tick would be the lost ask this model
/// is about, so it never comes: a missed notify leaves the controller waiting for good.
fn early_look_controller(shared: &AskShared) {
    let start = Instant::now();
    let (look_due, tick_at) = (start + LOOK_DUE, start + TICK);
    let mut now = start;
    let mut control = shared.control.lock();
    loop {
        control.ask.awake();
        if control.stop {
            return;
        }
        if now >= look_due && control.ask.take() {
            control.looked = true;
            shared.looked.notify_all();
            continue;
        }
        let until = if now < look_due { look_due } else { tick_at };
        control.ask.before_wait(until, look_due);
        if until <= look_due {
            drop(control);
            thread::yield_now();
            control = shared.control.lock();
            now = until;
        } else {
            control = shared.wake.wait(control);
        }
    }
}

/// Invariant: an ask for an early look is looked at by the look's due time, wherever the
/// controller is in its wait when the ask comes: waiting until the look's time (the asker
/// leaves the ask to it, no notify), past it (the asker notifies), or between the two with the
/// lock held. Runs `EarlyAsk::ask` as a submission does, racing the controller's wait; the main
/// thread then waits for the look and stops the controller. A lost ask leaves the controller
/// waiting for a notify that never comes, and the main thread waiting for the look: loom
/// reports the deadlock. Catches `loom_broken_early_promise` (a wait past the look promises to
/// wake in time) and `loom_broken_early_notify_first` (the notify sent before the ask is
/// recorded).
#[test]
fn an_ask_is_never_left_past_its_look() {
    model("an_ask_is_never_left_past_its_look", || {
        let shared = Arc::new(AskShared {
            control: Mutex::new(AskControl::default()),
            wake: Condvar::new(),
            looked: Condvar::new(),
        });
        let controller = {
            let shared = shared.clone();
            thread::spawn(move || early_look_controller(&shared))
        };
        let asker = {
            let shared = shared.clone();
            thread::spawn(move || EarlyAsk::ask(&shared.control, &shared.wake))
        };
        asker.join().unwrap();
        let mut control = shared.control.lock();
        while !control.looked {
            control = shared.looked.wait(control);
        }
        assert_eq!(control.ask.counts().0, 1, "one ask");
        assert!(!control.ask.is_asked(), "the look took the ask");
        control.stop = true;
        drop(control);
        shared.wake.notify_one();
        controller.join().unwrap();
    });
}
