//! A client outside the pool in a closed loop: it keeps a number of tasks in flight and answers
//! each completion with a new task, as a server handing blocking work to a pool does. `compare`'s
//! W rows drive every system this way (`drive`), and the controller-cost rows hold ours under it
//! (`Hold::Outside`).

use std::sync::mpsc;
use std::time::Duration;

/// The longest one wait for a completion lasts before the client looks at its clock (a phase
/// change, the end of a run, a stop flag) again.
pub(super) const POLL: Duration = Duration::from_millis(10);

/// The client's side of the loop: the channel its tasks report completion on, and how many it
/// has outstanding.
pub(super) struct ClosedLoop {
    done_tx: mpsc::Sender<()>,
    done_rx: mpsc::Receiver<()>,
    /// Tasks the system took and that have not yet been seen to complete.
    outstanding: usize,
}

impl ClosedLoop {
    pub(super) fn new() -> ClosedLoop {
        let (done_tx, done_rx) = mpsc::channel();
        ClosedLoop {
            done_tx,
            done_rx,
            outstanding: 0,
        }
    }

    /// Submits tasks until `in_flight` are outstanding. `submit` is handed the sender each task
    /// reports its completion on, and says whether the system took the task. Stops at the first
    /// refusal, which it does not count (the task will never report), and returns `false`.
    pub(super) fn top_up(
        &mut self,
        in_flight: usize,
        mut submit: impl FnMut(&mpsc::Sender<()>) -> bool,
    ) -> bool {
        while self.outstanding < in_flight {
            if !submit(&self.done_tx) {
                return false;
            }
            self.outstanding += 1;
        }
        true
    }

    /// Waits up to `patience` for one completion; `true` if one came.
    pub(super) fn completed_within(&mut self, patience: Duration) -> bool {
        let completed = self.done_rx.recv_timeout(patience).is_ok();
        if completed {
            self.outstanding -= 1;
        }
        completed
    }

    pub(super) fn outstanding(&self) -> usize {
        self.outstanding
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pool_core::{Executor, ThreadPool};
    use std::sync::{Arc, Mutex};

    /// Submits one task to `pool` that reports on `done` once `gate` opens (or is dropped).
    fn gated_task(pool: &ThreadPool, done: &mpsc::Sender<()>, gate: &Arc<Mutex<()>>) -> bool {
        let (done, gate) = (done.clone(), Arc::clone(gate));
        pool.execute(Box::new(move || {
            drop(gate.lock());
            let _ = done.send(());
        }))
        .is_ok()
    }

    /// Invariant: the loop keeps exactly `in_flight` tasks outstanding, counts each completion
    /// once, and a top-up after completions submits only what they freed.
    #[test]
    fn keeps_the_tasks_in_flight_and_counts_each_completion_once() {
        let pool = ThreadPool::new(2).unwrap();
        let gate = Arc::new(Mutex::new(()));
        let closed = gate.lock().unwrap();
        let mut client = ClosedLoop::new();
        let mut submitted = 0;
        assert!(client.top_up(4, |done| {
            submitted += 1;
            gated_task(&pool, done, &gate)
        }));
        assert_eq!((client.outstanding(), submitted), (4, 4));
        // Nothing can complete while the gate is shut: a wait times out and counts nothing.
        assert!(!client.completed_within(Duration::from_millis(1)));
        assert_eq!(client.outstanding(), 4);
        drop(closed);
        for left in (0..4).rev() {
            assert!(client.completed_within(Duration::from_secs(30)));
            assert_eq!(client.outstanding(), left);
        }
        assert!(client.top_up(4, |done| {
            submitted += 1;
            gated_task(&pool, done, &gate)
        }));
        assert_eq!((client.outstanding(), submitted), (4, 8));
        while client.outstanding() > 0 {
            assert!(client.completed_within(Duration::from_secs(30)));
        }
        pool.shutdown();
        assert_eq!(pool.stats().completed, 8);
    }

    /// Invariant: a refused task stops the top-up, is not counted as outstanding (it will never
    /// report), and the top-up says so.
    #[test]
    fn a_refused_task_stops_the_top_up_and_is_not_counted() {
        let pool = ThreadPool::new(1).unwrap();
        pool.shutdown();
        let gate = Arc::new(Mutex::new(()));
        let mut client = ClosedLoop::new();
        let mut offered = 0;
        assert!(!client.top_up(3, |done| {
            offered += 1;
            gated_task(&pool, done, &gate)
        }));
        assert_eq!((client.outstanding(), offered), (0, 1));
    }
}
