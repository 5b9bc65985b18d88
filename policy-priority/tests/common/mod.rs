//! Helpers shared by the integration tests: a gate that holds a one-worker pool's only worker so
//! that tasks queue up deterministically, and a log of the order tasks ran in.

#![allow(dead_code)] // each test file uses its own subset

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use policy_priority::{Aging, PriorityQueue, PrioritySubmit};
use pool_core::{Priority, TaskHandle, ThreadPool};

/// Generous: the machine is small and shared.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A one-worker pool with a priority queue.
pub fn one_worker(aging: Aging) -> (ThreadPool, PriorityQueue) {
    let queue = PriorityQueue::with_aging(aging);
    let pool = ThreadPool::builder()
        .threads(1)
        .queue_policy(queue.clone())
        .build()
        .expect("valid settings");
    (pool, queue)
}

/// Holds a worker until opened (or dropped).
pub struct Gate {
    release: Sender<()>,
}

impl Gate {
    /// Submits a task that blocks its worker, and returns once it is running, so that every
    /// task submitted afterwards waits in the queue.
    pub fn hold(pool: &ThreadPool) -> Gate {
        let (started_tx, started_rx) = mpsc::channel();
        let (release, gate) = mpsc::channel::<()>();
        pool.submit_at(Priority::Critical, move || {
            started_tx.send(()).unwrap();
            let _ = gate.recv();
        })
        .expect("pool is running");
        started_rx
            .recv_timeout(TIMEOUT)
            .expect("the gate task started");
        Gate { release }
    }

    pub fn open(self) {
        let _ = self.release.send(());
    }
}

/// Records the order in which tasks ran.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<u32>>>);

impl Log {
    pub fn record(&self, id: u32) {
        self.0.lock().unwrap().push(id);
    }

    pub fn entries(&self) -> Vec<u32> {
        self.0.lock().unwrap().clone()
    }

    /// Submits a task at `priority` that records `id`.
    pub fn submit(&self, pool: &ThreadPool, priority: Priority, id: u32) -> TaskHandle<()> {
        let log = self.clone();
        pool.submit_at(priority, move || log.record(id))
            .expect("pool is running")
    }
}

/// Waits for the pool to go idle, failing the test instead of hanging.
pub fn settle(pool: &ThreadPool) {
    assert!(pool.wait_idle(TIMEOUT), "the pool did not go idle");
}

pub fn receiver_drain<T>(rx: &Receiver<T>) -> Vec<T> {
    rx.try_iter().collect()
}
