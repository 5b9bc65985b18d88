//! `OldestWait` on real pools: the counters date the queue's head to within a look on the FIFO
//! path, and never overstate it under a policy that takes the newest first.
//!
//! The looks carry made-up instants a second apart (`observe` takes the instant of the read),
//! so the figures are exact whatever the machine's pace; the tests wait only for the events
//! they assert (a task started, the pool idle).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pool_core::{OldestWait, PoolStats, QueuePolicy, QueuedTask, ThreadPool};
use test_kit::{Latch, WorkerGate, PATIENCE};

const SECOND: Duration = Duration::from_secs(1);

/// A task that says when it started, then waits at `latch`.
fn held_task(pool: &ThreadPool, latch: &Arc<Latch>) -> mpsc::Receiver<()> {
    let (started, on_start) = mpsc::channel();
    let latch = Arc::clone(latch);
    pool.spawn(move || {
        let _ = started.send(());
        latch.wait();
    })
    .expect("an open pool");
    on_start
}

/// Opens `gate` and waits for the held task to start: the worker ran everything the queue gave
/// it before that task. Returns the stats then, with one task left queued.
fn run_up_to_the_held_task(
    pool: &ThreadPool,
    gate: WorkerGate,
    held: &mpsc::Receiver<()>,
) -> PoolStats {
    gate.open();
    held.recv_timeout(PATIENCE).expect("the held task started");
    let stats = pool.stats();
    assert_eq!(stats.queued, 1, "{stats}");
    stats
}

/// Lets the held task finish and the queue drain: the next look reads zero.
fn drain(pool: &ThreadPool, latch: &Latch, oldest: &mut OldestWait, at: Instant) {
    latch.open();
    assert!(pool.wait_idle(PATIENCE));
    assert_eq!(oldest.observe(&pool.stats(), at), Duration::ZERO);
}

#[test]
fn the_fifo_head_is_dated_by_the_first_look_that_counted_it() {
    let pool = ThreadPool::new(1).expect("a pool");
    let gate = WorkerGate::occupy(&pool, 1);
    let mut oldest = OldestWait::new();
    let t0 = Instant::now();

    // Three tasks queued before the first look: nothing dates them yet.
    for _ in 0..3 {
        pool.spawn(|| ()).expect("an open pool");
    }
    assert_eq!(oldest.observe(&pool.stats(), t0), Duration::ZERO);

    // Two more (one that will hold the worker, one behind it) between the first look and the
    // second: the head is still one of the first three, counted at the first look.
    let latch = Arc::new(Latch::default());
    let held = held_task(&pool, &latch);
    pool.spawn(|| ()).expect("an open pool");
    assert_eq!(oldest.observe(&pool.stats(), t0 + SECOND), SECOND);

    // The worker runs the first three and stops in the held task: the one left queued was
    // counted at the second look.
    let stats = run_up_to_the_held_task(&pool, gate, &held);
    assert_eq!(oldest.observe(&stats, t0 + 2 * SECOND), SECOND);
    drain(&pool, &latch, &mut oldest, t0 + 3 * SECOND);
}

/// Newest first: the policy of `QueuePolicy`'s own example.
#[derive(Debug, Default)]
struct Stack(Mutex<Vec<QueuedTask>>);

impl QueuePolicy for Stack {
    fn push(&self, task: QueuedTask) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(task);
    }
    fn pop(&self) -> Option<QueuedTask> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[test]
fn a_newest_first_policy_is_never_overstated() {
    let pool = ThreadPool::builder()
        .threads(1)
        .queue_policy(Stack::default())
        .build()
        .expect("a pool");
    let gate = WorkerGate::occupy(&pool, 1);
    let mut oldest = OldestWait::new();
    let t0 = Instant::now();

    // The oldest task, queued before the first look, then one per look after it.
    pool.spawn(|| ()).expect("an open pool");
    assert_eq!(oldest.observe(&pool.stats(), t0), Duration::ZERO);
    let latch = Arc::new(Latch::default());
    let held = held_task(&pool, &latch);
    assert_eq!(oldest.observe(&pool.stats(), t0 + SECOND), SECOND);

    // The stack runs the newest (the held task) first: one task has left the queue, so the
    // counts point at the second one accepted, first counted at the second look, while the
    // task still queued is the very first, counted at the first look. The figure is 1 s
    // where the truth is 2 s: low, never high.
    let stats = run_up_to_the_held_task(&pool, gate, &held);
    assert_eq!(oldest.observe(&stats, t0 + 2 * SECOND), SECOND);
    drain(&pool, &latch, &mut oldest, t0 + 3 * SECOND);
}
