#![cfg(loom)]
//! Loom models of the coalescing slot protocol (policy-coalesce/src/README.md).
//!
//! The executor is a plain locked queue that the model drains from loom threads, so each model
//! controls exactly which thread starts which job; the protocol under test is the coalescer's
//! shard lock, execution outcome slot and job guards, all from `pool_core::sync`.

use std::collections::VecDeque;
use std::sync::Arc as StdArc;

use loom::thread;
use loom_tests::model;
use policy_coalesce::{CoalesceCancelReason, CoalesceError, Coalescer, SubmitOptions};
use pool_core::sync::{Arc, Mutex};
use pool_core::{Executor, Job, Priority, Rejected};

/// Holds jobs until a model thread runs them.
#[derive(Default)]
struct Queue {
    jobs: Mutex<VecDeque<Job>>,
}

impl Queue {
    fn run_next(&self) -> bool {
        let job = self.jobs.lock().pop_front();
        match job {
            Some(job) => {
                job();
                true
            }
            None => false,
        }
    }

    fn drain(&self) {
        while self.run_next() {}
    }
}

impl Executor for Queue {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        self.jobs.lock().push_back(job);
        Ok(())
    }
}

/// A one-shard coalescer of `u8` keys and values on `executor` (one shard: every key shares
/// the one lock, the smallest model of the protocol).
fn one_shard<E: Executor + 'static>(executor: E) -> Coalescer<u8, u8, E> {
    Coalescer::builder(executor).shards(1).build().unwrap()
}

/// The set-up of the queue models: a [`Queue`] and a one-shard coalescer on it.
fn on_queue() -> (StdArc<Queue>, Coalescer<u8, u8, StdArc<Queue>>) {
    let queue = StdArc::new(Queue::default());
    (queue.clone(), one_shard(queue))
}

/// A loom thread that runs the queue's jobs until it finds it empty.
fn drain_on_a_thread(queue: &StdArc<Queue>) -> thread::JoinHandle<()> {
    let queue = queue.clone();
    thread::spawn(move || queue.drain())
}

/// The books once every handle resolved: balanced, with no key left.
fn assert_books_closed<E: Executor + 'static>(coalescer: &Coalescer<u8, u8, E>) {
    let stats = coalescer.stats();
    assert!(stats.is_balanced() && stats.keys == 0, "{stats}");
}

/// The order in which the closures of a model ran (their tags).
type Log = Arc<Mutex<Vec<u8>>>;

fn new_log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

fn logged(log: &Log, tag: u8) -> impl FnOnce() -> u8 + Send + 'static {
    let log = log.clone();
    move || {
        log.lock().push(tag);
        tag
    }
}

/// Invariant: a submit racing the worker that starts the key's execution never loses the latest
/// closure: it runs exactly once, an earlier closure runs at most once, and both handles resolve.
#[test]
fn submit_races_start() {
    model("submit_races_start", || {
        let (queue, coalescer) = on_queue();
        let log = new_log();
        let first = coalescer.submit(0, logged(&log, 1)).unwrap();
        let worker = drain_on_a_thread(&queue);
        let second = coalescer.submit(0, logged(&log, 2)).unwrap();
        worker.join().unwrap();
        queue.drain();
        let shared = first.id() == second.id();
        let (a, b) = (*first.join().unwrap(), *second.join().unwrap());
        let ran = log.lock().clone();
        assert_eq!(
            ran.iter().filter(|&&t| t == 2).count(),
            1,
            "latest ran once: {ran:?}"
        );
        if shared {
            assert_eq!((a, b, ran), (2, 2, vec![2]));
        } else {
            assert_eq!((a, b, ran), (1, 2, vec![1, 2]));
        }
        assert_books_closed(&coalescer);
    });
}

/// Invariant: one sharer cancelling while the worker starts the shared execution never cancels
/// it for the other: it runs exactly once; the canceller gets `Cancelled` iff its cancel won.
#[test]
fn cancel_by_one_sharer_races_start() {
    model("cancel_by_one_sharer_races_start", || {
        let (queue, coalescer) = on_queue();
        let log = new_log();
        let first = coalescer.submit(0, logged(&log, 1)).unwrap();
        let second = coalescer.submit(0, logged(&log, 2)).unwrap();
        let worker = drain_on_a_thread(&queue);
        let detached = first.cancel();
        worker.join().unwrap();
        assert_eq!(*log.lock(), vec![2]);
        assert_eq!(*second.join().unwrap(), 2);
        match first.join() {
            Err(CoalesceError::Cancelled(CoalesceCancelReason::Requested)) => assert!(detached),
            Ok(value) => assert!(!detached && *value == 2),
            Err(other) => panic!("unexpected {other:?}"),
        }
    });
}

/// Invariant: when every sharer cancels while the worker starts the execution, exactly one of
/// start and cancel wins: the closure runs iff some cancel came too late, and no handle hangs.
#[test]
fn cancel_by_all_sharers_races_start() {
    model("cancel_by_all_sharers_races_start", || {
        let (queue, coalescer) = on_queue();
        let log = new_log();
        let first = coalescer.submit(0, logged(&log, 1)).unwrap();
        let second = coalescer.submit(0, logged(&log, 2)).unwrap();
        let worker = drain_on_a_thread(&queue);
        let canceller = thread::spawn(move || {
            let detached = first.cancel();
            (detached, first.join())
        });
        let second_detached = second.cancel();
        let second_outcome = second.join();
        let (first_detached, first_outcome) = canceller.join().unwrap();
        worker.join().unwrap();
        let runs = log.lock().len();
        assert!(runs <= 1);
        assert_eq!(runs == 0, first_detached && second_detached);
        for (detached, outcome) in [
            (first_detached, first_outcome),
            (second_detached, second_outcome),
        ] {
            assert_eq!(detached, outcome.is_err());
        }
        assert!(coalescer.stats().is_balanced());
    });
}

/// Invariant: the two jobs of an execution whose priority was raised, run by two workers at once,
/// start it exactly once (the second finds the slot taken).
#[test]
fn duplicate_jobs_of_a_raised_execution_start_it_once() {
    model("duplicate_jobs_of_a_raised_execution_start_it_once", || {
        let (queue, coalescer) = on_queue();
        let log = new_log();
        let low = SubmitOptions::new().priority(Priority::Low);
        let high = SubmitOptions::new().priority(Priority::High);
        let first = coalescer.submit_with(0, low, logged(&log, 1)).unwrap();
        let second = coalescer.submit_with(0, high, logged(&log, 2)).unwrap();
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let queue = queue.clone();
                thread::spawn(move || {
                    queue.run_next();
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        assert_eq!(*log.lock(), vec![2]);
        assert_eq!((*first.join().unwrap(), *second.join().unwrap()), (2, 2));
        assert_eq!(coalescer.stats().executed, 1);
    });
}

/// Invariant: the executor dropping the only job unrun, racing a sharer's cancel, resolves every
/// handle (the drop guard cancels the execution, or the cancel already detached), nothing runs,
/// and the books balance with the key gone.
#[test]
fn dropped_job_races_cancel() {
    model("dropped_job_races_cancel", || {
        let (queue, coalescer) = on_queue();
        let log = new_log();
        let first = coalescer.submit(0, logged(&log, 1)).unwrap();
        let second = coalescer.submit(0, logged(&log, 2)).unwrap();
        let dropper = {
            let queue = queue.clone();
            thread::spawn(move || drop(queue.jobs.lock().pop_front()))
        };
        let detached = first.cancel();
        dropper.join().unwrap();
        assert!(log.lock().is_empty());
        assert_eq!(
            second.join().unwrap_err(),
            CoalesceError::Cancelled(CoalesceCancelReason::Dropped)
        );
        match first.join().unwrap_err() {
            CoalesceError::Cancelled(CoalesceCancelReason::Requested) => assert!(detached),
            CoalesceError::Cancelled(CoalesceCancelReason::Dropped) => assert!(!detached),
            other => panic!("unexpected {other:?}"),
        }
        assert_books_closed(&coalescer);
    });
}

/// Invariant: on a real one-worker `ThreadPool`, a submit racing the worker starting the key's
/// execution runs the latest closure exactly once and resolves both handles.
#[test]
fn submit_races_start_on_a_thread_pool() {
    model("submit_races_start_on_a_thread_pool", || {
        let pool = pool_core::ThreadPool::new(1).unwrap();
        let coalescer = one_shard(pool);
        let log = new_log();
        let first = coalescer.submit(0, logged(&log, 1)).unwrap();
        let second = coalescer.submit(0, logged(&log, 2)).unwrap();
        let shared = first.id() == second.id();
        assert_eq!(*second.join().unwrap(), 2);
        assert_eq!(*first.join().unwrap(), if shared { 2 } else { 1 });
        coalescer.executor().shutdown();
        let ran = log.lock().clone();
        assert_eq!(ran, if shared { vec![2] } else { vec![1, 2] });
    });
}

/// Steps of a handshake between a closure and the model's main thread.
#[derive(Default)]
struct Stage {
    reached: Mutex<u8>,
    changed: pool_core::sync::Condvar,
}

impl Stage {
    fn set(&self, stage: u8) {
        *self.reached.lock() = stage;
        self.changed.notify_all();
    }

    fn wait_for(&self, stage: u8) {
        let mut reached = self.reached.lock();
        while *reached < stage {
            reached = self.changed.wait(reached);
        }
    }
}

/// Invariant: at most one execution per key runs at a time, with two executor threads and a
/// submit during a run; the latest closure runs exactly once, after the first, and both handles
/// resolve with their own values.
///
/// Executor thread A runs the first execution, whose closure waits (a handshake, not a time)
/// until the main thread has submitted the key again, so that submission always lands while the
/// key runs; executor thread B drains the queue meanwhile. Each closure counts the key's
/// executions running at once (an atomic bumped on entry, dropped on exit); an overlap fails the
/// model, as does `KeySlots::start`'s `debug_assert!`. Catches `--cfg loom_broken_coalesce_followup`
/// (the follow-up dispatched at once instead of when the running execution finishes): B then
/// starts it while A is still inside the first closure. The race of a submit with the *start* of
/// the execution is `submit_races_start`'s.
#[test]
fn one_execution_per_key_at_a_time() {
    use pool_core::sync::{AtomicBool, AtomicUsize, Ordering};

    model("one_execution_per_key_at_a_time", || {
        let (queue, coalescer) = on_queue();
        let running = Arc::new(AtomicUsize::new(0));
        let overlapped = Arc::new(AtomicBool::new(false));
        let stage = Arc::new(Stage::default());
        let log = new_log();
        let counted = |tag: u8| {
            let (running, overlapped) = (running.clone(), overlapped.clone());
            let (stage, log) = (stage.clone(), log.clone());
            move || {
                if running.fetch_add(1, Ordering::SeqCst) > 0 {
                    overlapped.store(true, Ordering::SeqCst);
                }
                if tag == 1 {
                    // Running: let the main thread submit again, and wait until it has.
                    stage.set(1);
                    stage.wait_for(2);
                }
                log.lock().push(tag);
                running.fetch_sub(1, Ordering::SeqCst);
                tag
            }
        };
        let first = coalescer.submit(0, counted(1)).unwrap();
        let executor_a = drain_on_a_thread(&queue);
        stage.wait_for(1);
        let second = coalescer.submit(0, counted(2)).unwrap();
        stage.set(2);
        let executor_b = drain_on_a_thread(&queue);
        executor_a.join().unwrap();
        executor_b.join().unwrap();
        queue.drain();
        assert!(
            !overlapped.load(Ordering::SeqCst),
            "two executions of the key ran at once"
        );
        assert_ne!(first.id(), second.id());
        let outcomes = (*first.join().unwrap(), *second.join().unwrap());
        assert_eq!((outcomes, log.lock().clone()), ((1, 2), vec![1, 2]));
        assert_books_closed(&coalescer);
    });
}
