//! The shutdown protocol (see `README.md` beside this file, "Shutdown protocol"): the lifecycle
//! bits, the gates outside submitters hold from their check to their push, and the barrier,
//! discard and join steps of `shutdown` and `shutdown_now`.

use super::stats::{add_shared, Counters};
use super::worker;
use super::ThreadPool;
use crate::deque::steal_retrying;
use crate::error::CancelReason;
use crate::policy::Work;
use crate::sync::{CachePadded, Ordering, SpinLock};
use crate::Priority;

/// `lifecycle` bits: graceful shutdown started (intake closed); queued work is being discarded;
/// every outside submitter that got in has pushed (workers may exit once the queues are empty).
/// Written only at shutdown, so the word stays in every core's cache while the pool runs.
pub(crate) const SHUTDOWN: usize = 0b001;
pub(crate) const DISCARD: usize = 0b010;
pub(crate) const DRAINABLE: usize = 0b100;

/// One stripe per thread slot (`sync::thread_slot`).
const STRIPES: usize = crate::sync::THREAD_SLOTS;

/// One stripe of the outside submitters: their counters, and the gate each holds from its
/// shutdown check to its push (see the pool README, "shutdown").
#[derive(Debug, Default)]
pub(crate) struct Stripe {
    /// Held by an outside submitter across check-and-push; shutdown passes through every gate
    /// once after raising its flag. Uncontended unless two submitting threads share the stripe,
    /// so a spin lock: one compare-and-swap to take it, one plain store to release it (a
    /// `Mutex` also checks poisoning twice and releases with a locked swap). What runs under it
    /// cannot unwind past the guard (a policy's `push` is contained), and the guard releases it
    /// on any way out regardless.
    pub(crate) gate: SpinLock,
    /// `submitted` and `rejected` are written only under `gate` (plain increments); `cancelled`
    /// by any thread with `add_shared`.
    pub(crate) counters: Counters,
}

/// The gates of the outside submitters (and their counters), striped so that several submitters
/// rarely share a line. Shutdown's barrier passes through every gate once.
pub(crate) struct SubmitGates {
    stripes: [CachePadded<Stripe>; STRIPES],
}

impl Default for SubmitGates {
    fn default() -> Self {
        SubmitGates {
            stripes: std::array::from_fn(|_| CachePadded::new(Stripe::default())),
        }
    }
}

impl SubmitGates {
    /// The calling thread's stripe.
    #[inline]
    pub(crate) fn mine(&self) -> &Stripe {
        // One comparison on the path of every outside submission: the index's bounds check is
        // also the test for "not assigned yet" (`usize::MAX` is out of bounds).
        match self.stripes.get(crate::sync::thread_slot_if_assigned()) {
            Some(stripe) => stripe,
            None => self.assign_mine(),
        }
    }

    /// The calling thread's first use of a slot: picks it.
    #[cold]
    #[inline(never)]
    fn assign_mine(&self) -> &Stripe {
        &self.stripes[crate::sync::thread_slot()]
    }

    /// Waits until no outside submitter is between its shutdown check and its push: takes and
    /// releases every gate once.
    pub(crate) fn barrier(&self) {
        for stripe in &self.stripes {
            drop(stripe.gate.lock());
        }
    }

    /// The stripes' counter blocks, for [`Totals::read`].
    pub(crate) fn blocks(&self) -> impl Iterator<Item = &Counters> + Clone {
        self.stripes.iter().map(|stripe| &stripe.counters)
    }
}

impl ThreadPool {
    /// Cancels every task that has not started; returns how many it cancelled.
    ///
    /// Running tasks are not affected. Handles of cancelled tasks report
    /// [`CancelReason::CancelAll`].
    pub fn cancel_all(&self) -> usize {
        self.discard_queued(CancelReason::CancelAll)
    }

    fn discard_queued(&self, reason: CancelReason) -> usize {
        let shared = &*self.shared;
        let mut cancelled_now = 0;
        let mut counted = 0;
        let mut discard = |work: Work| {
            let d = work.discard(reason);
            cancelled_now += usize::from(d.cancelled_now);
            counted += u64::from(d.count);
        };
        // Per level, the entries taken from a policy: reported to it once the books are closed.
        let mut from_policy = [0u64; Priority::ALL.len()];
        while let Some(ready) = shared.pop_global() {
            if let Some(priority) = ready.popped_at {
                from_policy[priority.index()] += 1;
            }
            discard(ready.work);
        }
        for stealer in shared.registry.stealers().iter() {
            while let Some(task) = steal_retrying(|| stealer.steal()) {
                discard(task);
            }
        }
        add_shared(&shared.external.mine().counters.cancelled, counted);
        for priority in Priority::ALL {
            let count = from_policy[priority.index()];
            if count != 0 {
                shared.policy_discarded(priority, count);
            }
        }
        cancelled_now
    }

    /// Whether [`shutdown`](Self::shutdown) or [`shutdown_now`](Self::shutdown_now) was called.
    pub fn is_shutdown(&self) -> bool {
        self.shared.is_shutting_down()
    }

    /// Stops taking submissions, runs everything already queued, and joins the threads.
    ///
    /// Tasks that running tasks submit during the shutdown are still accepted (they are part of
    /// finishing the queue). Idempotent. Called from inside one of the pool's own tasks, it stops
    /// intake and returns without joining (a thread cannot wait for itself); the workers exit
    /// once the queue is done.
    pub fn shutdown(&self) {
        self.begin_shutdown(SHUTDOWN);
        self.join_workers();
    }

    /// Stops taking submissions, cancels every queued task, lets running tasks finish and joins
    /// the threads. Returns how many queued tasks it cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::ThreadPool;
    /// use std::sync::{mpsc, Arc};
    ///
    /// let pool = Arc::new(ThreadPool::new(1).unwrap());
    /// let (started_tx, started) = mpsc::channel();
    /// let (release, gate) = mpsc::channel::<()>();
    /// pool.spawn(move || {
    ///     started_tx.send(()).unwrap();
    ///     gate.recv().unwrap();
    /// })
    /// .unwrap();
    /// started.recv().unwrap(); // the worker is busy, so the next five stay queued
    /// let queued: Vec<_> = (0..5).map(|_| pool.submit(|| ()).unwrap()).collect();
    /// // `shutdown_now` waits for the running task: release it once the queue is cancelled
    /// // (released earlier, the worker could run the queued five first).
    /// let watcher = Arc::clone(&pool);
    /// let releaser = std::thread::spawn(move || {
    ///     while watcher.stats().cancelled < 5 {
    ///         std::thread::yield_now();
    ///     }
    ///     release.send(()).unwrap();
    /// });
    /// assert_eq!(pool.shutdown_now(), 5);
    /// releaser.join().unwrap();
    /// assert!(queued.into_iter().all(|h| h.join().unwrap_err().is_cancelled()));
    /// let stats = pool.stats();
    /// assert_eq!((stats.cancelled, stats.completed), (5, 1));
    /// assert!(stats.is_balanced());
    /// ```
    pub fn shutdown_now(&self) -> usize {
        self.begin_shutdown(SHUTDOWN | DISCARD);
        // `begin_shutdown` passed the barrier: every outside submitter that got in has pushed,
        // so everything accepted is in a queue (or running) now.
        let cancelled = self.discard_queued(CancelReason::Shutdown);
        self.mark_drainable();
        self.join_workers();
        cancelled
    }

    fn begin_shutdown(&self, bits: usize) {
        let shared = &*self.shared;
        shared.lifecycle.fetch_or(bits, Ordering::AcqRel);
        // The barrier: a submitter that checked the flag before we set it still holds its gate
        // until it has pushed; one that takes its gate after we pass it sees the flag.
        shared.external.barrier();
        if bits & DISCARD != 0 {
            // `shutdown_now` discards the queue before workers may exit on an empty one.
            return;
        }
        self.mark_drainable();
    }

    /// Lets workers exit once the queues are empty, and wakes the parked ones to see it.
    fn mark_drainable(&self) {
        self.shared.lifecycle.fetch_or(DRAINABLE, Ordering::AcqRel);
        self.shared.sleep.wake_all();
    }

    /// On a worker of this pool: runs the newest entry of its own deque here if it is the job
    /// whose closure lives at `job_at` (`worker::run_newest_if`); whether it did.
    pub(crate) fn run_newest_if(&self, job_at: *const ()) -> bool {
        worker::run_newest_if(&self.shared, job_at)
    }

    /// Whether the calling thread is one of this pool's workers (so a wait on it can help).
    pub(crate) fn is_worker_thread(&self) -> bool {
        worker::is_worker_of(&self.shared)
    }

    fn join_workers(&self) {
        if worker::is_worker_of(&self.shared) {
            return;
        }
        // Join without holding the `threads` lock: a worker lost to a panic takes that lock on its
        // way out (to start its replacement, which it skips once shutdown began), so joining it
        // under the lock would deadlock. Shutdown is already marked, so once a drain finds the
        // list empty no worker can be added to it.
        let _joining = self.shared.joining.lock();
        loop {
            let handles = self.shared.threads.lock().take_all();
            if handles.is_empty() {
                break;
            }
            for handle in handles {
                // A worker catches even a panic of its own loop (counted in `lost_workers`), so
                // a join error cannot carry anything more to report.
                let _ = handle.join();
            }
        }
        let shared = &*self.shared;
        shared.sleep.idle_may_have_changed(|| shared.is_idle());
    }
}
