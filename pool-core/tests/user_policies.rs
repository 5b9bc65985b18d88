//! Policies a user writes with what `QueuedTask` shows and where `QueuePolicy::push` runs:
//! - earliest start deadline first ([`QueuedTask::deadline`]), ties and tasks without a deadline
//!   in arrival order, the arrival number kept in the entry's own word ([`QueuedTask::tag`])
//!   rather than beside it;
//! - fair between tenants: `push` runs on the submitting thread, at the moment of enqueueing, so
//!   the policy reads the submitter's tenant from a thread-local and keeps it in the tag; `pop`
//!   takes the tenants in turn.

use std::cell::Cell;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pool_core::{CancelReason, QueuePolicy, QueuedTask, TaskError, TaskOptions, ThreadPool};
use test_kit::WorkerGate;

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

thread_local! {
    /// The tenant this thread submits for (set by the application, read by `push`).
    static TENANT: Cell<u32> = const { Cell::new(0) };
}

/// Tenants in turn: one FIFO per tenant, and the order in which tenants with work are served.
/// A tenant that floods the queue waits its turn behind one task of every other tenant.
#[derive(Debug, Default)]
struct FairBetweenTenants {
    state: Mutex<Tenants>,
}

#[derive(Debug, Default)]
struct Tenants {
    queues: HashMap<u32, VecDeque<QueuedTask>>,
    /// Tenants with queued work, next to serve first; each appears once.
    turn: VecDeque<u32>,
    len: usize,
}

impl QueuePolicy for FairBetweenTenants {
    fn push(&self, mut task: QueuedTask) {
        let tenant = TENANT.with(Cell::get);
        task.set_tag(tenant);
        let mut state = self.state.lock().unwrap();
        let queue = state.queues.entry(tenant).or_default();
        queue.push_back(task);
        if queue.len() == 1 {
            state.turn.push_back(tenant);
        }
        state.len += 1;
    }

    fn pop(&self) -> Option<QueuedTask> {
        let mut state = self.state.lock().unwrap();
        let tenant = state.turn.pop_front()?;
        let queue = state.queues.get_mut(&tenant)?;
        let task = queue.pop_front();
        if !queue.is_empty() {
            state.turn.push_back(tenant);
        }
        state.len -= usize::from(task.is_some());
        task
    }

    fn len(&self) -> usize {
        self.state.lock().unwrap().len
    }
}

/// A one-worker pool on `policy`, its worker held by a gate so that what is submitted next waits
/// in the policy.
fn held_pool(policy: impl QueuePolicy) -> (ThreadPool, WorkerGate) {
    let pool = ThreadPool::builder()
        .threads(1)
        .queue_policy(policy)
        .build()
        .expect("a pool");
    let gate = WorkerGate::occupy(&pool, 1);
    (pool, gate)
}

#[test]
fn tasks_start_in_deadline_order_then_the_rest_in_arrival_order() {
    let (pool, gate) = held_pool(EarliestDeadlineFirst::default());
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
    gate.open();
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
fn an_expired_deadline_in_the_policy_cancels_only_its_task() {
    let (pool, gate) = held_pool(EarliestDeadlineFirst::default());
    let later = pool
        .submit_with(
            TaskOptions::new().start_within(Duration::from_secs(3600)),
            || "on time",
        )
        .expect("running");
    // Already passed when submitted: the worker that takes it from the policy cancels it
    // instead of starting it (the deadline is checked there, with no timer thread).
    let already_passed = Instant::now() - Duration::from_millis(1);
    let soon = pool
        .submit_with(TaskOptions::new().start_deadline(already_passed), || {
            "too late"
        })
        .expect("running");
    gate.open();
    assert_eq!(
        soon.join(),
        Err(TaskError::Cancelled(CancelReason::DeadlineExpired))
    );
    assert_eq!(later.join(), Ok("on time"));
    pool.shutdown();
    let stats = pool.stats();
    assert_eq!((stats.completed, stats.cancelled), (2, 1), "{stats:?}");
}

#[test]
fn tenants_take_turns_however_many_tasks_each_queued() {
    let (pool, gate) = held_pool(FairBetweenTenants::default());
    let order = Arc::new(Mutex::new(Vec::new()));
    // Tenant 1 floods the queue first, then tenants 2 and 3 queue two tasks each, each tenant
    // from its own thread.
    let mut handles = Vec::new();
    for (tenant, tasks) in [(1u32, 5usize), (2, 2), (3, 2)] {
        let (pool, order) = (&pool, &order);
        handles.extend(std::thread::scope(|s| {
            s.spawn(move || {
                TENANT.with(|t| t.set(tenant));
                (0..tasks)
                    .map(|i| {
                        let order = order.clone();
                        pool.submit(move || order.lock().unwrap().push((tenant, i)))
                            .expect("running")
                    })
                    .collect::<Vec<_>>()
            })
            .join()
            .expect("a submitter")
        }));
    }
    gate.open();
    for handle in handles {
        handle.join().expect("each task ran");
    }
    assert_eq!(
        *order.lock().unwrap(),
        [
            (1, 0),
            (2, 0),
            (3, 0),
            (1, 1),
            (2, 1),
            (3, 1),
            (1, 2),
            (1, 3),
            (1, 4)
        ]
    );
    pool.shutdown();
    assert_eq!(
        pool.stats().completed,
        10,
        "nine tasks and the one that held the worker"
    );
}
