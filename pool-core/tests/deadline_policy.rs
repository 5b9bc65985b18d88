//! A policy a user writes with what `QueuedTask` shows: earliest start deadline first
//! ([`QueuedTask::deadline`]), ties and tasks without a deadline in arrival order, the arrival
//! number kept in the entry's own word ([`QueuedTask::tag`]) rather than beside it.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pool_core::{
    CancelReason, Priority, QueuePolicy, QueuedTask, TaskError, TaskOptions, ThreadPool,
};

const TIMEOUT: Duration = Duration::from_secs(60);

/// An entry in the heap, ordered by its deadline (none: after every deadline), then by the
/// arrival number the policy wrote into its tag.
#[derive(Debug)]
struct ByDeadline(QueuedTask);

impl ByDeadline {
    fn key(&self) -> (bool, Option<Instant>, u32) {
        let deadline = self.0.deadline();
        (deadline.is_none(), deadline, self.0.tag())
    }
}

impl PartialEq for ByDeadline {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for ByDeadline {}

impl PartialOrd for ByDeadline {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByDeadline {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// Earliest deadline first. (A `u32` arrival number wraps after 4 billion pushes; a long-lived
/// policy would renumber, which this test does not need.)
#[derive(Debug, Default)]
struct EarliestDeadlineFirst {
    heap: Mutex<BinaryHeap<Reverse<ByDeadline>>>,
    arrivals: AtomicU32,
}

impl QueuePolicy for EarliestDeadlineFirst {
    fn push(&self, mut task: QueuedTask) {
        task.set_tag(self.arrivals.fetch_add(1, AtomicOrdering::Relaxed));
        self.heap.lock().unwrap().push(Reverse(ByDeadline(task)));
    }

    fn pop(&self) -> Option<QueuedTask> {
        self.heap
            .lock()
            .unwrap()
            .pop()
            .map(|Reverse(entry)| entry.0)
    }

    fn len(&self) -> usize {
        self.heap.lock().unwrap().len()
    }
}

/// A one-worker pool whose worker is held until the returned sender is dropped or sent to.
fn held_pool() -> (ThreadPool, mpsc::Sender<()>) {
    let pool = ThreadPool::builder()
        .threads(1)
        .queue_policy(EarliestDeadlineFirst::default())
        .build()
        .expect("a pool");
    let (release, held) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    pool.spawn(move || {
        started_tx.send(()).unwrap();
        let _ = held.recv_timeout(TIMEOUT);
    })
    .expect("running");
    started.recv_timeout(TIMEOUT).expect("the worker is held");
    (pool, release)
}

#[test]
fn tasks_start_in_deadline_order_then_the_rest_in_arrival_order() {
    let (pool, release) = held_pool();
    let base = Instant::now() + Duration::from_secs(3600);
    let order = Arc::new(Mutex::new(Vec::new()));
    // (label, deadline in seconds after `base`), submitted in this order while the worker is held.
    let plan = [
        ("d50", Some(50)),
        ("none-a", None),
        ("d10", Some(10)),
        ("d40", Some(40)),
        ("d20-first", Some(20)),
        ("none-b", None),
        ("d20-second", Some(20)),
        ("d30", Some(30)),
    ];
    let handles: Vec<_> = plan
        .iter()
        .map(|&(label, seconds)| {
            let options = match seconds {
                Some(s) => TaskOptions::new().start_deadline(base + Duration::from_secs(s)),
                None => TaskOptions::new(),
            };
            let order = order.clone();
            pool.submit_with(options, move || order.lock().unwrap().push(label))
                .expect("running")
        })
        .collect();
    assert_eq!(
        pool.stats().queued,
        plan.len() as u64,
        "all wait behind the held worker"
    );
    release.send(()).unwrap();
    for handle in handles {
        handle.join().expect("each task ran");
    }
    assert_eq!(
        *order.lock().unwrap(),
        [
            "d10",
            "d20-first",
            "d20-second",
            "d30",
            "d40",
            "d50",
            "none-a",
            "none-b"
        ]
    );
    pool.shutdown();
}

#[test]
fn a_deadline_that_passes_in_the_queue_cancels_the_task_and_the_rest_still_run() {
    let (pool, release) = held_pool();
    let deadline = Instant::now() + Duration::from_millis(1);
    let soon = pool
        .submit_with(
            TaskOptions::new()
                .priority(Priority::High)
                .start_deadline(deadline),
            || "too late",
        )
        .expect("running");
    let later = pool
        .submit_with(TaskOptions::new().start_within(TIMEOUT * 10), || "on time")
        .expect("running");
    // The earliest deadline comes out first, and by then it has passed: the worker is held
    // until the clock is past it (the event this waits for is the clock itself).
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        std::thread::sleep(left + Duration::from_millis(1));
    }
    release.send(()).unwrap();
    assert_eq!(
        soon.join(),
        Err(TaskError::Cancelled(CancelReason::DeadlineExpired))
    );
    assert_eq!(later.join(), Ok("on time"));
    pool.shutdown();
    let stats = pool.stats();
    assert_eq!((stats.completed, stats.cancelled), (2, 1), "{stats:?}");
}
