//! Test helpers: a gated one-worker pool, and an executor the test drives by hand.

#![allow(dead_code)]

use pool_core::{Executor, Job, Priority, Rejected, ThreadPool};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Mutex;
use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(20);

/// A one-worker pool whose worker is blocked until the returned sender is used (or dropped).
pub fn gated_pool() -> (ThreadPool, Sender<()>) {
    let pool = ThreadPool::new(1).unwrap();
    let (release, gate) = mpsc::channel::<()>();
    pool.spawn(move || {
        let _ = gate.recv();
    })
    .unwrap();
    (pool, release)
}

/// Holds jobs until the test runs or drops them; records the priority of each.
#[derive(Default)]
pub struct Manual {
    jobs: Mutex<VecDeque<(Job, Priority)>>,
    closed: AtomicBool,
}

impl Manual {
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    pub fn len(&self) -> usize {
        self.jobs.lock().unwrap().len()
    }

    pub fn priorities(&self) -> Vec<Priority> {
        self.jobs.lock().unwrap().iter().map(|(_, p)| *p).collect()
    }

    /// Runs the job at `index` (removing it); false if there is none.
    pub fn run_at(&self, index: usize) -> bool {
        let job = self.jobs.lock().unwrap().remove(index);
        match job {
            Some((job, _)) => {
                job();
                true
            }
            None => false,
        }
    }

    pub fn run_next(&self) -> bool {
        self.run_at(0)
    }

    /// Runs jobs (including ones queued while running) until none is left; returns how many.
    pub fn run_all(&self) -> usize {
        let mut n = 0;
        while self.run_next() {
            n += 1;
        }
        n
    }

    /// Drops every queued job unrun, as a pool's `shutdown_now` would.
    pub fn drop_all(&self) -> usize {
        let jobs: Vec<_> = self.jobs.lock().unwrap().drain(..).collect();
        let n = jobs.len();
        drop(jobs);
        n
    }
}

impl Executor for Manual {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        self.execute_with_priority(job, Priority::Normal)
    }

    fn execute_with_priority(&self, job: Job, priority: Priority) -> Result<(), Rejected<Job>> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Rejected(job));
        }
        self.jobs.lock().unwrap().push_back((job, priority));
        Ok(())
    }
}

/// Joins with the generous timeout and returns the error the handle resolved to.
pub fn failed<T>(handle: policy_coalesce::CoalescedHandle<T>) -> policy_coalesce::CoalesceError {
    match handle.join_timeout(WAIT) {
        Err(policy_coalesce::CoalesceJoinTimeoutError::Failed(error)) => error,
        Err(policy_coalesce::CoalesceJoinTimeoutError::TimedOut(_)) => {
            panic!("handle did not resolve")
        }
        Ok(_) => panic!("expected an error, got a value"),
    }
}
