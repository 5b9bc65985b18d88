//! Loom models of the dag-scheduler run protocol (see dag-scheduler/src/README.md).
//!
//! The executor spawns one loom thread per job, so every interleaving of the drivers, the
//! join counters, the token count and the waiter is explored. Timing is off in every model (it
//! reads the real clock, which is not part of the protocol).
#![cfg(loom)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc as StdArc;
use std::task::{Context, Wake, Waker};

use dag_scheduler::{Graph, NodeKey, Outcome, Report, RunOptions};
use loom_tests::model;
use pool_core::{Executor, Job, Rejected};

/// Runs each job on a new loom thread.
struct ThreadPerJob;

impl Executor for ThreadPerJob {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        loom::thread::spawn(job);
        Ok(())
    }
}

fn untimed() -> RunOptions {
    RunOptions::new().timing(false)
}

/// Invariant: two dependencies completing at the same time start their dependent exactly once,
/// after both, and the run reports all three nodes succeeded.
#[test]
fn two_dependencies_start_the_dependent_once() {
    model("two_dependencies_start_the_dependent_once", || {
        let runs = StdArc::new(AtomicUsize::new(0));
        let r = StdArc::clone(&runs);
        let mut b = Graph::builder();
        let left = b.node("left", |_| 1).key();
        let right = b.node("right", |_| 2).key();
        let sum = b
            .node("sum", move |cx| {
                r.fetch_add(1, Ordering::Relaxed);
                cx.get(left).copied().unwrap_or(0) + cx.get(right).copied().unwrap_or(0)
            })
            .after(left)
            .after(right)
            .key();
        let graph = b.build().unwrap();
        let report = graph.start_with(ThreadPerJob, untimed()).unwrap().wait();
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        // Both inputs were visible: the counter's AcqRel published both slots.
        assert_eq!(report.output(sum), Some(&3));
        assert_eq!(report.summary().succeeded, 3);
    });
}

struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: StdArc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Starts `graph`, polls its handle once with a counting waker (registering it unless the run
/// already finished), and waits: the report, whether the poll was pending, and the wake count.
fn start_poll_once_and_wait(graph: &Graph) -> (Report, bool, usize) {
    start_on_poll_once_and_wait(graph, ThreadPerJob)
}

/// [`start_poll_once_and_wait`] on `executor`.
fn start_on_poll_once_and_wait(
    graph: &Graph,
    executor: impl Executor + 'static,
) -> (Report, bool, usize) {
    let mut handle = graph.start_with(executor, untimed()).unwrap();
    let counter = StdArc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = Waker::from(StdArc::clone(&counter));
    let pending = std::pin::Pin::new(&mut handle)
        .poll(&mut Context::from_waker(&waker))
        .is_pending();
    let report = handle.wait();
    (report, pending, counter.0.load(Ordering::Relaxed))
}

/// Invariant: the run's completion fires exactly once: a waker registered before the end is
/// woken exactly once (never zero times: no lost wake-up; never twice), and the blocking
/// waiter returns with every node decided.
#[test]
fn completion_fires_once() {
    model("completion_fires_once", || {
        let mut b = Graph::builder();
        b.node("a", |_| ());
        b.node("b", |_| ());
        let graph = b.build().unwrap();
        let (report, pending, wakes) = start_poll_once_and_wait(&graph);
        assert_eq!(report.summary().succeeded, 2);
        assert_eq!(
            wakes,
            usize::from(pending),
            "pending={pending} wakes={wakes}"
        );
    });
}

/// Invariant: a cancel racing the run's completion never loses or double-decides a node:
/// `cancel` returns true exactly when the run records it, a node after a cancelled node is
/// cancelled too, and if the cancel came too late every node succeeded.
#[test]
fn cancel_racing_completion() {
    model("cancel_racing_completion", || {
        let mut b = Graph::builder();
        b.node("a", |_| ());
        b.node("b", |_| ()).after("a");
        let graph = b.build().unwrap();
        let handle = graph.start_with(ThreadPerJob, untimed()).unwrap();
        let cancelled = handle.cancel();
        let report = handle.wait();
        assert_eq!(report.was_cancelled(), cancelled);
        let a = report.outcome("a").unwrap();
        let b = report.outcome("b").unwrap();
        if !cancelled {
            assert!(report.is_success());
        }
        assert!(matches!(a, Outcome::Succeeded | Outcome::Cancelled));
        if a == Outcome::Cancelled {
            assert_eq!(b, Outcome::Cancelled);
        }
        let s = report.summary();
        assert_eq!(s.succeeded + s.cancelled, 2);
    });
}

/// Invariant: a failing node skips its dependents even when the dependents' join counter is
/// released concurrently by a sibling: `bad` (fails) and `good` (succeeds) run on two threads
/// at once into their common dependent `sum`, which is never run and is reported as skipped
/// because of `bad`; the run completes exactly once (a waker registered before the end is
/// woken once, the blocking waiter returns).
///
/// Catches `--cfg loom_broken_dag_poison` (the `blocked_by` poison written after the join
/// counter's `fetch_sub`: `good` can then take the counter to zero and run `sum` before the
/// poison lands).
#[test]
fn failure_skips_a_dependent_released_concurrently() {
    model("failure_skips_a_dependent_released_concurrently", || {
        let runs = StdArc::new(AtomicUsize::new(0));
        let r = StdArc::clone(&runs);
        let mut b = Graph::builder();
        b.try_node("bad", |_| Err::<u8, _>("boom"));
        b.node("good", |_| 2u8);
        b.node("sum", move |_| {
            r.fetch_add(1, Ordering::Relaxed);
        })
        .after("bad")
        .after("good");
        let graph = b.build().unwrap();
        let (report, pending, wakes) = start_poll_once_and_wait(&graph);
        assert_eq!(
            runs.load(Ordering::Relaxed),
            0,
            "the dependent of a failed node ran"
        );
        assert_eq!(
            report.outcome("sum"),
            Some(Outcome::Skipped {
                because: "bad".into()
            })
        );
        assert_eq!(report.outcome("bad"), Some(Outcome::Failed("boom".into())));
        assert_eq!(report.outcome("good"), Some(Outcome::Succeeded));
        let s = report.summary();
        assert_eq!((s.succeeded, s.failed, s.skipped), (1, 1, 1));
        assert_eq!(wakes, usize::from(pending));
    });
}

/// Invariant: a run whose roots go out in chunks (a job runs several roots one after another;
/// under loom, four roots make two chunks of two) runs the dependent of all four exactly once,
/// after all of them (it reads every input), and completes once, after the last node: the
/// waiter never returns with a node undecided.
///
/// Catches `--cfg loom_broken_dag_chunk_release` (a chunk releases its token before it runs
/// its last root: when the other jobs are done by then, the run completes with that root and
/// the dependent undecided, or with their slots written after the waiter read them).
#[test]
fn chunked_roots_run_the_dependent_once_and_complete_after_it() {
    model(
        "chunked_roots_run_the_dependent_once_and_complete_after_it",
        || {
            let runs = StdArc::new(AtomicUsize::new(0));
            let r = StdArc::clone(&runs);
            let mut b = Graph::builder();
            let roots: Vec<NodeKey<usize>> = (0..4)
                .map(|i| b.node(format_args!("r{i}"), move |_| i).key())
                .collect();
            let inputs = roots.clone();
            let sum = b
                .node("sum", move |cx| {
                    r.fetch_add(1, Ordering::Relaxed);
                    inputs
                        .iter()
                        .map(|&k| cx.get(k).copied().unwrap_or(100))
                        .sum::<usize>()
                })
                .after_all(roots)
                .key();
            let graph = b.build().unwrap();
            let report = graph.start_with(ThreadPerJob, untimed()).unwrap().wait();
            assert_eq!(report.summary().succeeded, 5);
            assert_eq!(runs.load(Ordering::Relaxed), 1);
            assert_eq!(report.output(sum), Some(&6));
        },
    );
}

/// Runs each job on a new loom thread, except the job of its `drop_call`-th `execute` call
/// (counted from 0), which a new loom thread drops unrun: an executor that discards a job it
/// accepted (a queue dropped at shutdown, say), concurrently with the run's other jobs.
struct DropsOne {
    calls: loom::sync::atomic::AtomicUsize,
    drop_call: usize,
}

impl Executor for DropsOne {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        if self.calls.fetch_add(1, Ordering::Relaxed) == self.drop_call {
            loom::thread::spawn(move || drop(job));
        } else {
            loom::thread::spawn(job);
        }
        Ok(())
    }
}

/// Invariant: a job the executor drops on another thread, while the run's other jobs run,
/// releases its token (its `Share` of the run's count) exactly once and only after its node is
/// decided: the run completes exactly once (a waker registered before the end is woken once,
/// the blocking waiter returns), the dropped root is `Cancelled`, the dependent is `Cancelled`
/// (the run was cancelled by the drop) and never runs, and the report reads every slot after
/// its write (loom checks the cells). Two roots go out through the launcher (call 0), whose
/// batch hands over `a` (call 1, dropped) and `b` (call 2, run).
///
/// Planted bug: `--cfg loom_broken_dag_drop_release` makes a dropped job release its share
/// before its node is decided (the report then reads `a`'s slot concurrently with its write);
/// `.ci/loom-planted` expects this model to fail with it.
#[test]
fn a_dropped_job_releases_its_token_after_its_node() {
    model("a_dropped_job_releases_its_token_after_its_node", || {
        let runs = StdArc::new(AtomicUsize::new(0));
        let r = StdArc::clone(&runs);
        let mut b = Graph::builder();
        b.node("a", |_| 1u8);
        b.node("b", |_| 2u8);
        b.node("c", move |_| {
            r.fetch_add(1, Ordering::Relaxed);
        })
        .after("a")
        .after("b");
        let graph = b.build().unwrap();
        let executor = DropsOne {
            calls: loom::sync::atomic::AtomicUsize::new(0),
            drop_call: 1,
        };
        let (report, pending, wakes) = start_on_poll_once_and_wait(&graph, executor);
        assert_eq!(
            runs.load(Ordering::Relaxed),
            0,
            "a node after a dropped one ran"
        );
        assert!(report.was_cancelled());
        assert_eq!(report.outcome("a"), Some(Outcome::Cancelled));
        assert_eq!(report.outcome("c"), Some(Outcome::Cancelled));
        assert!(matches!(
            report.outcome("b"),
            Some(Outcome::Succeeded | Outcome::Cancelled)
        ));
        let s = report.summary();
        assert_eq!(s.succeeded + s.cancelled, 3);
        assert_eq!(wakes, usize::from(pending));
    });
}
