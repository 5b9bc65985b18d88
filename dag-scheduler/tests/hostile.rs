//! Hostile user code: executors that panic, node outputs, closures and panic payloads whose
//! `Drop` panics, a panicking clock and waker, and blocking runs nested inside tasks of the pool
//! they run on. None may hang a run, kill a worker, leave a node without an outcome, or touch a
//! borrowed executor after `Graph::run` returned.
//!
//! A test that must wait for something waits for that event with a generous timeout; a run that
//! would hang is driven on a helper thread, so a regression fails the test instead of hanging it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use dag_scheduler::{Graph, GraphBuilder, Outcome, RunError, RunOptions};
use pool_core::{Executor, InlineExecutor, Job, Priority, Rejected, ThreadPool};
use test_kit::{within_patience, Fuse, Latch, PATIENCE};

/// A value whose destructor panics.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("hostile destructor");
    }
}

/// Panics with a payload whose own `Drop` panics.
fn hostile_panic() -> ! {
    std::panic::panic_any(PanicsOnDrop)
}

/// What a hostile executor does with the job on the call where it panics.
#[derive(Clone, Copy, Debug)]
enum JobOnPanic {
    /// Panics holding the job: the job is dropped while the panic unwinds.
    Dropped,
    /// Queues the job on its pool first: the job runs after the panic was caught.
    Queued,
    /// Runs the job inline first.
    RunInline,
}

/// Passes jobs to a pool, except call number `panic_on` (0-based), which panics with a payload
/// whose `Drop` panics, after opening `gate`.
struct PanickingExecutor {
    pool: ThreadPool,
    calls: AtomicUsize,
    panic_on: usize,
    mode: JobOnPanic,
    gate: Arc<Latch>,
}

impl Executor for PanickingExecutor {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        self.execute_with_priority(job, Priority::Normal)
    }

    fn execute_with_priority(&self, job: Job, priority: Priority) -> Result<(), Rejected<Job>> {
        if self.calls.fetch_add(1, Ordering::SeqCst) != self.panic_on {
            return self.pool.execute_with_priority(job, priority);
        }
        self.gate.open();
        match self.mode {
            JobOnPanic::Dropped => {}
            JobOnPanic::Queued => {
                let _ = self.pool.execute(job);
            }
            JobOnPanic::RunInline => job(),
        }
        hostile_panic()
    }
}

/// Defect: `Graph::run(&executor)` with an executor that panics on its second call unwound out of
/// `run` while the first root's job was still queued; that job then called the executor through a
/// pointer into `run`'s dead stack frame. Now the panic is caught, the run is cancelled, and `run`
/// returns only after the last job let go of the executor: no node runs after `run` returned.
#[test]
fn a_borrowed_executor_that_panics_is_never_used_after_run_returns() {
    for panic_on in [0, 1, 2] {
        for mode in [
            JobOnPanic::Dropped,
            JobOnPanic::Queued,
            JobOnPanic::RunInline,
        ] {
            let gate = Arc::new(Latch::default());
            let ran = Arc::new(AtomicUsize::new(0));
            let mut b = Graph::builder();
            // "a" waits until the executor has panicked, then fans out: its second successor
            // goes through the executor after the panic.
            let (g, r) = (Arc::clone(&gate), Arc::clone(&ran));
            b.node("a", move |_| {
                g.wait();
                r.fetch_add(1, Ordering::SeqCst);
            });
            for name in ["b", "c"] {
                let r = Arc::clone(&ran);
                b.node(name, move |_| {
                    r.fetch_add(1, Ordering::SeqCst);
                });
            }
            for name in ["a1", "a2", "a3"] {
                let r = Arc::clone(&ran);
                b.node(name, move |_| {
                    r.fetch_add(1, Ordering::SeqCst);
                })
                .after("a");
            }
            let graph = b.build().unwrap();
            let exec = PanickingExecutor {
                pool: ThreadPool::new(2).unwrap(),
                calls: AtomicUsize::new(0),
                panic_on,
                mode,
                gate: Arc::clone(&gate),
            };
            let report = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                graph.run_with(&exec, RunOptions::new().timing(false))
            }));
            let Ok(Ok(report)) = report else {
                // Before the fix: the panic unwound out of `run` with jobs still queued.
                std::mem::forget(exec);
                panic!("run unwound (panic on call {panic_on}, {mode:?})");
            };
            // Nothing of the run executes after `run` returned.
            let ran_at_return = ran.load(Ordering::SeqCst);
            assert!(exec.pool.wait_idle(PATIENCE));
            assert_eq!(ran.load(Ordering::SeqCst), ran_at_return);
            let s = report.summary();
            assert_eq!(s.succeeded, ran_at_return, "{mode:?} {panic_on}\n{report}");
            assert_eq!(s.succeeded + s.cancelled, graph.len(), "{report}");
            if let JobOnPanic::Dropped = mode {
                // The job dropped in the panic cancels its node. (A queued or inline job may
                // run before the run notices the panic: the other nodes may all succeed.)
                assert!(s.cancelled >= 1, "{report}");
            }
            assert!(report.was_cancelled() && report.executor_refused());
            assert_eq!(exec.pool.stats().panicked, 0);
        }
    }
}

/// How a hostile `execute_batch` misbehaves after taking (and queueing) its first job.
#[derive(Clone, Copy, Debug)]
enum BatchFault {
    /// Returns `Ok` with the other jobs never taken.
    StopsEarly,
    Panics,
}

struct HostileBatch {
    pool: ThreadPool,
    fault: BatchFault,
}

impl Executor for HostileBatch {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        self.pool.execute(job)
    }

    fn execute_batch(
        &self,
        jobs: &mut dyn Iterator<Item = Job>,
        priority: Priority,
    ) -> Result<(), Rejected<Job>> {
        if let Some(job) = jobs.next() {
            self.pool.execute_with_priority(job, priority)?;
        }
        match self.fault {
            BatchFault::StopsEarly => Ok(()),
            BatchFault::Panics => hostile_panic(),
        }
    }
}

/// A fan-out goes to `execute_batch`; an executor that leaves some of the batch untaken (by
/// returning early or panicking) cancels those nodes and the rest of the run, which finishes:
/// every node has exactly one outcome and none is lost.
#[test]
fn an_execute_batch_that_stops_early_or_panics_cancels_what_it_did_not_take() {
    for fault in [BatchFault::StopsEarly, BatchFault::Panics] {
        let ran = Arc::new(AtomicUsize::new(0));
        let mut b = Graph::builder();
        let root = b.node("root", |_| ()).key();
        for _ in 0..6 {
            let r = Arc::clone(&ran);
            b.unnamed_node(move |_| {
                r.fetch_add(1, Ordering::SeqCst);
            })
            .after(root);
        }
        let graph = b.build().unwrap();
        let exec = HostileBatch {
            pool: ThreadPool::new(2).unwrap(),
            fault,
        };
        let report = within_patience(move || {
            let report = graph
                .run_with(&exec, RunOptions::new().timing(false))
                .unwrap();
            let s = report.summary();
            (s.succeeded, s.cancelled, report.executor_refused())
        });
        let (succeeded, cancelled, refused) = report.expect("the run finishes");
        // The four batched nodes never taken are cancelled; the one taken and the one run in
        // place may run or see the cancellation first, depending on timing.
        assert!(refused, "{fault:?}");
        assert_eq!(succeeded + cancelled, 7, "{fault:?}");
        assert!(cancelled >= 4, "{fault:?}: {cancelled}");
        assert_eq!(ran.load(Ordering::SeqCst), succeeded - 1, "{fault:?}");
    }
}

/// An owned executor that panics on every call: every node is cancelled, the run finishes.
#[test]
fn an_owned_executor_that_always_panics_cancels_every_node() {
    struct AlwaysPanics;
    impl Executor for AlwaysPanics {
        fn execute(&self, _job: Job) -> Result<(), Rejected<Job>> {
            hostile_panic()
        }
    }
    let mut b = Graph::builder();
    b.node("a", |_| ());
    b.node("b", |_| ());
    b.node("c", |_| ()).after("a").after("b");
    let graph = b.build().unwrap();
    let report = within_patience(move || {
        let report = graph.start(AlwaysPanics).wait();
        (report.summary().cancelled, report.executor_refused())
    });
    assert_eq!(report, Some((3, true)));
}

/// Defect: a node that panicked with a payload whose `Drop` panics hung the run (the payload's
/// drop unwound out of the driver before the outcome was written and the token released), and
/// left the thread's driver state pointing at the freed run, so a later run allocated at the same
/// address was never driven. The node fails; everything else runs, then and afterwards.
#[test]
fn a_panic_payload_whose_drop_panics_fails_only_its_node() {
    fn graph() -> Graph {
        let mut b = Graph::builder();
        b.node("bad", |_| -> () { hostile_panic() });
        b.node("after", |_| ()).after("bad");
        b.node("beside", |_| ());
        b.build().unwrap()
    }
    let check = |report: &dag_scheduler::Report| {
        assert_eq!(
            report.outcome("bad"),
            Some(Outcome::Failed(
                "panicked: a panic with a non-string payload".into()
            ))
        );
        assert_eq!(
            report.outcome("after"),
            Some(Outcome::Skipped {
                because: "bad".into()
            })
        );
        assert_eq!(report.outcome("beside"), Some(Outcome::Succeeded));
    };
    // Inline, then more runs on the same thread (a stale driver state would defer their jobs
    // to a driver that no longer exists: they would hang).
    let inline = within_patience(move || {
        let first = std::panic::catch_unwind(|| graph().run(&InlineExecutor));
        let first_ok = first.as_ref().map(check).is_ok();
        if let Err(payload) = first {
            std::mem::forget(payload); // its Drop panics
        }
        for _ in 0..100 {
            let mut b = Graph::builder();
            b.node("x", |_| ());
            b.node("y", |_| ()).after("x");
            assert!(b.build().unwrap().run(&InlineExecutor).is_success());
        }
        first_ok
    });
    assert_eq!(
        inline,
        Some(true),
        "None: later runs hung; false: the first unwound"
    );
    // On a pool.
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let p = Arc::clone(&pool);
    let report = within_patience(move || graph().run(&*p));
    let Some(report) = report else {
        std::mem::forget(pool);
        panic!("the run on the pool hung");
    };
    check(&report);
    assert!(pool.wait_idle(PATIENCE));
    assert_eq!(pool.stats().panicked, 0);
}

/// Node outputs, captured values and a custom clock are user values too: a panicking `Drop`
/// (on the worker that finishes a detached run, or on the thread dropping the report) or a
/// panicking clock neither hangs the run nor reaches the worker or the caller.
#[test]
fn outputs_closures_and_clocks_whose_code_panics_are_called_quietly() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let gate = Arc::new(Latch::default());
    let mut b = Graph::builder();
    let g = Arc::clone(&gate);
    let captured = PanicsOnDrop;
    b.node("first", move |_| {
        let _ = &captured;
        g.wait();
        PanicsOnDrop
    });
    b.node("second", |_| PanicsOnDrop).after("first");
    let graph = b.build().unwrap();
    // A detached run: the worker holds the last reference to the run and the graph.
    let handle = graph.start(Arc::clone(&pool));
    drop(graph);
    drop(handle);
    gate.open();
    assert!(pool.wait_idle(PATIENCE));
    assert_eq!(pool.stats().panicked, 0, "a user Drop reached the worker");

    // A report dropped by the caller; a clock that panics with a hostile payload.
    let mut b = Graph::builder();
    b.node("x", |_| PanicsOnDrop);
    b.node("y", |_| ()).after("x");
    let graph = b.build().unwrap();
    let p = Arc::clone(&pool);
    let outcome = within_patience(move || {
        let options = RunOptions::new().clock(|| -> Duration { hostile_panic() });
        let report = graph.run_with(&*p, options).unwrap();
        let succeeded = report.summary().succeeded;
        let dropped_quietly =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(report))).is_ok();
        (succeeded, dropped_quietly)
    });
    let Some(outcome) = outcome else {
        std::mem::forget(pool);
        panic!("a panicking clock hung the run");
    };
    assert_eq!(outcome, (2, true));
    assert!(pool.wait_idle(PATIENCE));
    assert_eq!(pool.stats().panicked, 0);
}

/// A waker whose `wake` panics with a hostile payload: the run still completes, the worker that
/// completes it is not taken down, and polling again gives the report.
#[test]
fn a_panicking_waker_does_not_reach_the_worker() {
    use std::future::Future;
    use std::task::{Context, Poll, Wake, Waker};

    struct HostileWaker(mpsc::Sender<()>);
    impl Wake for HostileWaker {
        fn wake(self: Arc<Self>) {
            let _ = self.0.send(());
            hostile_panic();
        }
    }
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let gate = Arc::new(Latch::default());
    let g = Arc::clone(&gate);
    let mut b = Graph::builder();
    let v = b
        .node("v", move |_| {
            g.wait();
            7
        })
        .key();
    let mut handle = b.build().unwrap().start(Arc::clone(&pool));
    let (woken, wakes) = mpsc::channel();
    let waker = Waker::from(Arc::new(HostileWaker(woken)));
    let mut cx = Context::from_waker(&waker);
    assert!(std::pin::Pin::new(&mut handle).poll(&mut cx).is_pending());
    gate.open();
    wakes.recv_timeout(PATIENCE).expect("the waker was called");
    let Poll::Ready(report) = std::pin::Pin::new(&mut handle).poll(&mut cx) else {
        panic!("woken, but not ready");
    };
    assert_eq!(report.output(v), Some(&7));
    assert!(pool.wait_idle(PATIENCE));
    assert_eq!(pool.stats().panicked, 0);
}

/// Defect: every worker of a pool blocked in `Graph::run(&pool)` from inside a task, so nobody was
/// left to run the graphs' nodes. A waiting worker now runs queued tasks while it waits.
#[test]
fn nested_blocking_runs_on_the_same_pool_do_not_deadlock() {
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let (done, results) = mpsc::channel();
    for task in 0..4usize {
        let p = Arc::clone(&pool);
        let done = done.clone();
        pool.spawn(move || {
            let mut b = Graph::builder();
            let root = b.node("root", move |_| task).key();
            let mut leaves = Vec::new();
            for i in 0..8 {
                leaves.push(
                    b.node(format!("leaf{i}"), move |cx| {
                        cx.get(root).copied().unwrap_or(0) + i
                    })
                    .after(root)
                    .key(),
                );
            }
            let inputs = leaves.clone();
            let sum = b
                .node("sum", move |cx| {
                    inputs
                        .iter()
                        .map(|&k| cx.get(k).copied().unwrap_or(0))
                        .sum::<usize>()
                })
                .after_all(leaves)
                .key();
            let report = b.build().unwrap().run(&*p);
            let _ = done.send((task, report.output(sum).copied()));
        })
        .unwrap();
    }
    let mut seen = Vec::new();
    for _ in 0..4 {
        match results.recv_timeout(PATIENCE) {
            Ok(result) => seen.push(result),
            Err(_) => {
                // Deadlocked workers cannot be joined: leak the pool.
                std::mem::forget(pool);
                panic!("nested runs deadlocked; finished: {seen:?}");
            }
        }
    }
    seen.sort_unstable();
    let expected: Vec<_> = (0..4).map(|t| (t, Some(8 * t + 28))).collect();
    assert_eq!(seen, expected);
}

/// A builder of two nodes, `a` and `b` after it, whose closures each hold a [`Fuse`] counting
/// into `dropped`.
fn fused_builder(dropped: &Arc<AtomicUsize>) -> GraphBuilder {
    let mut b = Graph::builder();
    let (first, second) = (Fuse::new(dropped), Fuse::new(dropped));
    b.node("a", move |_| {
        let _ = &first;
    });
    b.node("b", move |_| {
        let _ = &second;
    })
    .after("a");
    b
}

/// Invariant: the nodes' closures and a custom clock are user code, and so is what they
/// captured: each is dropped once, quietly, wherever it goes. A failed build returns its typed
/// error (a panicking `Drop` does not turn it into a panic, and two do not abort the process, as
/// two in one `Vec` did); so do options refused by `run_with` (their clock goes there), a builder
/// dropped unbuilt, a graph dropped after its run, and the last copy of a clock, which goes with
/// the run's report.
#[test]
fn a_failed_build_a_dropped_builder_and_a_clock_drop_their_user_code_quietly() {
    test_kit::quiet_panics(|message| message.starts_with("hostile"));
    let dropped = Arc::new(AtomicUsize::new(0));
    let mut duplicate = fused_builder(&dropped);
    duplicate.node("a", |_| ());
    let error = duplicate.build().expect_err("a duplicate name");
    assert!(error.is_duplicate_name(), "{error}");
    assert_eq!(dropped.load(Ordering::SeqCst), 2);

    drop(fused_builder(&dropped)); // aborted here
    assert_eq!(dropped.load(Ordering::SeqCst), 4);

    let pool = ThreadPool::new(2).unwrap();
    let graph = fused_builder(&dropped).build().unwrap();
    // Options refused before anything runs: the clock goes with them.
    let fuse = Fuse::new(&dropped);
    let refused = RunOptions::new()
        .clock(move || {
            let _ = &fuse;
            Duration::ZERO
        })
        .mark_failed("missing", "no such node");
    let refused = test_kit::no_unwind(|| graph.run_with(&pool, refused));
    let error = refused.expect("no unwind").expect_err("an unknown node");
    assert!(matches!(error, RunError::UnknownNode(_)), "{error}");
    assert_eq!(dropped.load(Ordering::SeqCst), 5);
    let fuse = Fuse::new(&dropped);
    let options = RunOptions::new().clock(move || {
        let _ = &fuse;
        Duration::ZERO
    });
    let report = graph.run_with(&pool, options).unwrap();
    assert_eq!(report.summary().succeeded, 2);
    drop(graph); // the report still holds the graph
    assert!(pool.wait_idle(PATIENCE));
    assert_eq!(dropped.load(Ordering::SeqCst), 5);
    // The graph's two closures and the clock go here, quietly.
    assert!(test_kit::no_unwind(move || drop(report)).is_some());
    assert_eq!(dropped.load(Ordering::SeqCst), 8);
    assert_eq!(pool.stats().panicked, 0);
}
