//! `ThreadPool::join`: one closure on the caller, the other on the pool, both finished before it
//! returns. See `README.md` ("join") for the take-once slot that decides who runs `b`.

use std::panic::{self, AssertUnwindSafe};

use super::state::ScopeState;
use super::{abort_on_unwind, erase};
use crate::policy::Work;
use crate::sync::{Arc, Mutex};
use crate::unwind::drop_quietly;
use crate::ThreadPool;

/// What the caller of `join` and the queued job share. `F` is `b` wrapped to store its result
/// in the caller's frame, held inline: one allocation for the slot, `done` and `b` (a
/// separately boxed `b` was a third allocation per `join`, and allocation was most of its cost).
struct JoinShared<F> {
    /// `b`. Taken exactly once, by the queued job or by the caller, under the lock; whoever
    /// takes it runs it. Invariant: empty when `join` returns.
    body: Mutex<Option<F>>,
    /// `done`, set by the queued job when it ends (run or dropped): a `join` waits for one job
    /// only, so that job's end is the completion and no count is needed (a one-share count's
    /// only release would always take it to zero).
    state: ScopeState,
}

/// The queued half of a `join`. Once the caller has taken `b`, the only value left behind
/// borrowed data could hide in is the empty slot: this job may then be run or dropped at any
/// later time without touching the caller's frame (see the `SAFETY` argument in `join`).
struct JoinJob<F: FnOnce()>(Arc<JoinShared<F>>);

impl<F: FnOnce()> JoinJob<F> {
    fn run(self) {
        let body = self.0.body.lock().take();
        if let Some(body) = body {
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(body)) {
                self.0.state.record_panic(payload);
            }
        }
    }
}

impl<F: FnOnce()> Drop for JoinJob<F> {
    /// Dropped unrun (discarded or refused), the job leaves `b` in the slot: the caller runs it.
    fn drop(&mut self) {
        // The job's own `Arc` keeps the state alive through the signal, and `b` (if it ran) and
        // its panic were written before it (Release in `set_done`).
        self.0.state.set_done();
    }
}

impl ThreadPool {
    /// Runs `a` on the calling thread and `b` on the pool, potentially in parallel, and returns
    /// both results once both have finished. Either closure may borrow from the caller's stack.
    ///
    /// Called from one of this pool's workers, `b` goes to that worker's own queue, where an
    /// idle worker may steal it; if nobody has started `b` when `a` finishes, the caller runs it
    /// itself, and otherwise it runs queued tasks while it waits for `b`. Called from another
    /// thread, `b` is queued on the pool the same way; if it has not started when `a` is done,
    /// the caller runs it. If the pool is shut down (or discards `b` while it is queued), the
    /// caller runs `b` after `a`, so `join` always returns both results.
    ///
    /// The queued entry counts as one task in [`stats`](Self::stats) whether `b` ran on a
    /// worker or on the caller.
    ///
    /// # Panics
    ///
    /// If `a` or `b` panics, `join` waits until both have finished and then re-raises the panic
    /// with [`std::panic::resume_unwind`]: `a`'s if both panicked (`b`'s payload is then dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::ThreadPool;
    ///
    /// fn fib(pool: &ThreadPool, n: u64) -> u64 {
    ///     if n < 10 {
    ///         return (1..=n).fold((0, 1), |(a, b), _| (b, a + b)).0;
    ///     }
    ///     let (x, y) = pool.join(|| fib(pool, n - 1), || fib(pool, n - 2));
    ///     x + y
    /// }
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// assert_eq!(fib(&pool, 20), 6765);
    ///
    /// let mut left = vec![3, 1, 2];
    /// let mut right = vec![6, 5, 4];
    /// pool.join(|| left.sort(), || right.sort()); // borrows, no `'static` needed
    /// assert_eq!((left, right), (vec![1, 2, 3], vec![4, 5, 6]));
    /// ```
    ///
    /// `b` crosses threads, so it (and its result) must be `Send`; `a` stays on the caller:
    ///
    /// ```compile_fail,E0277
    /// let pool = pool_core::ThreadPool::new(1).unwrap();
    /// let not_send = std::rc::Rc::new(5);
    /// pool.join(|| (), move || *not_send);
    /// ```
    pub fn join<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA,
        B: FnOnce() -> RB + Send,
        RB: Send,
    {
        let mut rb: Option<RB> = None;
        let slot = &mut rb;
        let shared = Arc::new(JoinShared {
            body: Mutex::new(Some(move || *slot = Some(b()))),
            state: ScopeState::new(),
        });
        // From here until `b` is known to be gone nothing may unwind past this frame; the
        // straight-line code below cannot, and this guard turns a bug that would into an abort.
        let no_unwind = abort_on_unwind();
        let job = JoinJob(Arc::clone(&shared));
        // Boxed (and erased) only once the pool has accepted the job; a refused one comes back
        // as it is and is dropped, which sets `done` and leaves `b` in the slot for us.
        // Where the queued closure lives, to take it back below if no thief took it.
        let mut queued_at: *const () = std::ptr::null();
        let refused = self.submit_work(job, |job| {
            let job: Box<dyn FnOnce() + Send + '_> = Box::new(move || job.run());
            queued_at = &*job as *const (dyn FnOnce() + Send + '_) as *const ();
            // SAFETY: `erase` requires that nothing borrowed is used after this frame ends. The
            // job's only borrowed data is `b` (and `slot`, which it captures), inline in
            // `shared.body`, a slot taken exactly once under its lock; below, after `a`, the
            // caller takes it unless the queued job already has. If the caller takes it, it runs
            // it here, and the slot the job may still reach later is empty (an empty `Option`'s
            // drop reads only its tag, in the `Arc`'s allocation, which the job keeps alive). If
            // the job took it, the caller waits for `state`'s `done`, which the job sets in `Drop`,
            // after `b` ran and was consumed. So on every path `b` is gone before `rb` is
            // read and before the frame ends.
            Work::Job(unsafe { erase(job) })
        });
        drop(refused);

        let ra = panic::catch_unwind(AssertUnwindSafe(a));
        // On a worker, the queued job is usually still the newest entry of its own deque: run it
        // here, now (it takes `b` from the slot, so the take below finds it gone and the wait
        // returns at once). Left queued, it would be an empty shell that some worker pops later,
        // and a deep recursion of joins would hold one per call (memory growing with the number
        // of calls, not the depth).
        if !queued_at.is_null() {
            self.run_newest_if(queued_at);
        }

        let unclaimed = shared.body.lock().take();
        let b_panic = match unclaimed {
            Some(b) => panic::catch_unwind(AssertUnwindSafe(b)).err(),
            None => {
                shared.state.wait(self.is_worker_thread());
                shared.state.take_panic()
            }
        };
        // Our share of the slot's allocation ends here, before `rb` is read: its type mentions
        // the `slot` borrow (loom's `Arc`, unlike std's, is not known to leave it unused in
        // `Drop`). The slot is empty and any panic payload taken, so this drop runs no user code.
        drop(shared);
        no_unwind.defuse();

        match (ra, b_panic) {
            (Err(a_panic), b_panic) => {
                drop_quietly(b_panic);
                drop_quietly(rb);
                panic::resume_unwind(a_panic)
            }
            (Ok(ra), Some(b_panic)) => {
                drop_quietly(ra);
                panic::resume_unwind(b_panic)
            }
            (Ok(ra), None) => match rb {
                Some(rb) => (ra, rb),
                None => unreachable!("`b` ran to the end, so it stored its result"),
            },
        }
    }
}
