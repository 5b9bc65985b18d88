//! Scoped spawns that borrow from the caller's stack (`ThreadPool::scope`), and `ThreadPool::join`.
//!
//! The protocol (the completion count, the panic slot, the wait) and why no borrowed closure can
//! outlive the scope are written down in `README.md` beside this file.

mod join;
mod state;

use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};

use self::state::{Payload, ScopeState};
use crate::executor::Job;
use crate::policy::Work;
use crate::sync::{Arc, Share, ShareCount};
use crate::unwind::{drop_quietly, OnExit};
use crate::ThreadPool;

/// What a scope does with a job the pool refuses (the pool is shut down).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnReject {
    /// Run it on the spawning thread, so the scope's work still gets done (`ThreadPool::scope`).
    RunInline,
    /// Drop it unrun and count it as discarded (`map_batch`, which reports such inputs).
    Drop,
}

/// A scope to spawn closures that borrow from the stack of [`ThreadPool::scope`]'s caller.
///
/// Every closure spawned on it, and every closure those spawn, has finished (run to the end, or
/// been dropped by the pool without running) before `scope` returns.
///
/// The lifetime `'scope` is the lifetime of the data spawned closures may borrow: anything
/// that outlives the call to `scope`, but nothing local to the scope's body.
///
/// # Examples
///
/// ```
/// use pool_core::ThreadPool;
///
/// let pool = ThreadPool::new(2).unwrap();
/// let words = ["scope", "borrows", "the", "stack"];
/// let mut lengths = vec![0; words.len()];
/// pool.scope(|s| {
///     for (word, length) in words.iter().zip(lengths.iter_mut()) {
///         s.spawn(move |_| *length = word.len());
///     }
/// });
/// assert_eq!(lengths, [5, 7, 3, 5]);
/// ```
pub struct Scope<'scope> {
    pool: &'scope ThreadPool,
    /// The completion count: the body's share and one per job until it finishes. In the frame,
    /// not behind the `Arc`: jobs reach it only while they hold a share, so the frame is alive
    /// (`README.md`), and a scope then pays no allocation for its 9 padded lines.
    count: ShareCount,
    state: Arc<ScopeState>,
    on_reject: OnReject,
    /// Invariant in `'scope` (as `std::thread::Scope`): a `Scope<'long>` must not pass for a
    /// `Scope<'short>` or the other way round, or a closure could borrow for a lifetime the
    /// scope does not wait for.
    marker: PhantomData<fn(&'scope ()) -> &'scope ()>,
}

impl<'scope> Scope<'scope> {
    /// Runs `f` on one of the pool's workers; `f` may borrow anything that outlives the scope.
    ///
    /// `f` gets the scope back, so it can spawn more closures into the same scope. A panic in
    /// `f` does not stop the other closures: the scope re-raises it to its caller once they have
    /// all finished. Called from one of the pool's workers (the scope's body on a worker, or a
    /// spawned closure), `f` goes to that worker's own queue, where idle workers steal it.
    ///
    /// If the pool is shut down and refuses `f`, `f` runs at once on the calling thread, so a
    /// scope always does its work.
    ///
    /// # Examples
    ///
    /// A tree of spawns summing a slice in place:
    ///
    /// ```
    /// use pool_core::{Scope, ThreadPool};
    /// use std::sync::atomic::{AtomicU64, Ordering};
    ///
    /// fn sum<'scope>(s: &Scope<'scope>, data: &'scope [u64], total: &'scope AtomicU64) {
    ///     if data.len() <= 4 {
    ///         total.fetch_add(data.iter().sum(), Ordering::Relaxed);
    ///         return;
    ///     }
    ///     let (left, right) = data.split_at(data.len() / 2);
    ///     s.spawn(move |s| sum(s, left, total));
    ///     s.spawn(move |s| sum(s, right, total));
    /// }
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// let data: Vec<u64> = (1..=100).collect();
    /// let total = AtomicU64::new(0);
    /// pool.scope(|s| sum(s, &data, &total));
    /// assert_eq!(total.into_inner(), 5050);
    /// ```
    #[inline]
    pub fn spawn<F>(&self, f: F)
    where
        F: FnOnce(&Scope<'scope>) + Send + 'scope,
    {
        // Taken in this thread's slot of the count: a chain of jobs that each spawn the next on
        // one worker adds and releases on that worker's own line, never on a shared one.
        let share = self.count.add();
        let job = ScopedJob {
            body: ManuallyDrop::new(f),
            scope: ScopePtr(self),
            share: ManuallyDrop::new(share),
        };
        // Boxed (and erased) only once the pool has accepted the job: a refused one comes back
        // as it is and is run or dropped below, with no allocation.
        let refused = self.pool.submit_work(job, |job| {
            let job: Box<dyn FnOnce() + Send + 'scope> = Box::new(move || job.run());
            // SAFETY: `erase` requires that the job is run or dropped before `'scope` ends. It
            // holds a share of the scope's count (taken above, released only by `ScopedJob::run`
            // or by its `Drop`, after the closure and its captures are gone), and
            // `ThreadPool::scope_with` does not return, normally or by unwinding, before every
            // share is released: the body runs inside `catch_unwind`, and the wait after it
            // aborts the process rather than unwind. This closure runs only once the pool has accepted the job, which it then
            // queues (on this worker's deque or the shared queue): the pool runs it, or drops it
            // when `shutdown_now`/`cancel_all` discard it or a policy's push drops it; a queue of
            // a live pool is never dropped, and `self.pool` is borrowed for `'scope`.
            Work::Job(unsafe { erase(job) })
        });
        if let Err(job) = refused {
            job.refused(self.on_reject);
        }
    }

    /// Releases a finished job's share of the count; the last one wakes the scope's waiter.
    ///
    /// # Safety
    ///
    /// `scope` points to a live `Scope` and `share` is an unreleased share of its count (so the
    /// frame holding the `Scope` cannot have returned). A raw pointer, not `&self`: once the
    /// share is released the frame may be gone while this function still runs, and a reference
    /// argument would claim it stays valid for the whole call.
    // Inline: called once per job from `ScopedJob::run`, which is instantiated in the user's
    // crate, where a plain function of this crate would stay a call.
    #[inline]
    unsafe fn release_job_share(scope: *const Scope<'scope>, share: Share) {
        // SAFETY: the share is unreleased, so the frame (and the count in it) is alive until the
        // release's last access; a release that returns `false` touches nothing after it, and
        // neither do we.
        let count: &ShareCount = unsafe { &(*scope).count };
        if count.release(share) {
            // The count is zero but `done` is unset, so the waiter has not returned and the frame
            // is still alive: clone its `Arc` now, so the signal below touches only an allocation
            // this job keeps alive, even after the waiter returns and the frame is gone.
            // SAFETY: as above, the frame is alive until `set_done`.
            let own = unsafe { Arc::clone(&(*scope).state) };
            own.set_done();
        }
    }
}

impl fmt::Debug for Scope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("pending", &self.count.outstanding())
            .field("discarded", &self.state.discarded())
            .finish_non_exhaustive()
    }
}

/// Forgets the lifetime of a scoped job so that it can enter the pool's queues.
///
/// # Safety
///
/// The caller guarantees that the returned job is run or dropped before `'scope` ends, on every
/// path (see `Scope::spawn` and `README.md`).
unsafe fn erase<'scope>(job: Box<dyn FnOnce() + Send + 'scope>) -> Job {
    // SAFETY: the two types differ only in the trait object's lifetime bound, so they have the
    // same layout (a data pointer and the same vtable); the caller upholds the lifetime.
    unsafe {
        std::mem::transmute::<Box<dyn FnOnce() + Send + 'scope>, Box<dyn FnOnce() + Send + 'static>>(
            job,
        )
    }
}

/// The scope a spawned closure gets back, as a pointer that may cross threads.
struct ScopePtr<'scope>(*const Scope<'scope>);

// SAFETY: the pointer is only dereferenced as a `&Scope` (in `ScopedJob::run` and
// `Scope::release_job_share`), and `Scope` is `Sync` (a shared pool reference, an `Arc` of `Sync`
// state, a phantom `fn`), so a `&Scope` may be used from any thread. The pointee outlives every
// use: each is made while the job still holds its share of the count, and the scope's frame waits
// until every share is released and the last releaser has signalled.
unsafe impl Send for ScopePtr<'_> {}

/// The premise of `ScopePtr`'s `Send`: a `Scope` may be shared between threads.
const _: fn() = || {
    fn shared_between_threads<T: Sync>() {}
    shared_between_threads::<Scope<'static>>();
};

/// A spawned closure with its drop guard: however the job ends (run, dropped unrun by the pool,
/// dropped after a refusal), the closure is gone before the scope's count goes down.
struct ScopedJob<'scope, F>
where
    F: FnOnce(&Scope<'scope>) + Send + 'scope,
{
    /// Taken exactly once: by `run` (which then never drops the job) or by `Drop` (which runs
    /// only for a job that was never run). No `Option`: its take and check cost instructions on
    /// every job.
    body: ManuallyDrop<F>,
    /// The scope's frame, reached through this pointer only while the job holds its share (no
    /// `Arc` per job: the count keeps the frame alive).
    scope: ScopePtr<'scope>,
    /// The job's share of the scope's count, in the slot of the thread that spawned it. Taken
    /// exactly once, with `body` (by `run` or by `Drop`), and released after the closure is gone.
    share: ManuallyDrop<Share>,
}

impl<'scope, F> ScopedJob<'scope, F>
where
    F: FnOnce(&Scope<'scope>) + Send + 'scope,
{
    /// The pool refused the job (it is shut down): run it here, or drop it (counted as
    /// discarded), as the scope asked. Out of line, so that the hot path inlines `run` and the
    /// `Drop` into the job's one call site, the queued closure.
    #[cold]
    #[inline(never)]
    fn refused(self, on_reject: OnReject) {
        match on_reject {
            OnReject::RunInline => self.run(),
            OnReject::Drop => drop(self),
        }
    }

    /// Runs the closure (its panic goes to the scope), then releases the job's share.
    #[inline(always)]
    fn run(self) {
        // The job is not dropped from here on: its `Drop` is for a job that never ran.
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `body` is taken once: `this` is never dropped, so `Drop`, the only other place
        // that takes it, does not run for this job.
        let body = unsafe { ManuallyDrop::take(&mut this.body) };
        // SAFETY: as `body`: taken once, here, since `Drop` does not run for this job.
        let share = unsafe { ManuallyDrop::take(&mut this.share) };
        let scope_ptr = this.scope.0;
        // Planted bug (loom models only): complete before the closure has run, so the scope may
        // return while the closure still uses its borrows. `loom-tests/tests/scope.rs` must
        // catch it.
        #[cfg(loom_broken_scope_count)]
        {
            // SAFETY: the job holds its share (the planted bug releases it here, early).
            unsafe { Scope::release_job_share(scope_ptr, share) };
        }
        // SAFETY: the scope's frame holds the `Scope` until every share is released, and this
        // job holds its own until the release below.
        let scope = unsafe { &*scope_ptr };
        // The closure is consumed inside `catch_unwind`, so a panic of its captures' `Drop` is
        // caught too. Nothing from here to the release can unwind (`record_panic` drops a later
        // payload quietly), so the share is released on every path.
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || body(scope))) {
            scope.state.record_panic(payload);
        }
        #[cfg(not(loom_broken_scope_count))]
        {
            // SAFETY: the job's share is unreleased until this call (released exactly once,
            // here; `Drop`, the other release, does not run for this job), and the closure is
            // gone.
            unsafe { Scope::release_job_share(scope_ptr, share) };
        }
    }
}

impl<'scope, F> Drop for ScopedJob<'scope, F>
where
    F: FnOnce(&Scope<'scope>) + Send + 'scope,
{
    /// Dropped without running: by the pool's discard, or after a refusal (`run` never drops
    /// the job).
    fn drop(&mut self) {
        // SAFETY: the job still holds its share, so the frame is alive.
        unsafe { (*self.scope.0).state.record_discard() };
        // SAFETY: `body` is taken once: `run` did not take it (a job that ran is never dropped)
        // and `drop` runs once.
        drop_quietly(unsafe { ManuallyDrop::take(&mut self.body) });
        // SAFETY: as `body`: `run` did not take the share, and `drop` runs once.
        let share = unsafe { ManuallyDrop::take(&mut self.share) };
        // SAFETY: the job's share is unreleased until this call (released exactly once, here),
        // and the closure is gone.
        unsafe { Scope::release_job_share(self.scope.0, share) };
    }
}

/// What a scope produced: the body's value or the first panic, and how many spawned closures
/// were dropped without running.
pub(crate) struct ScopeOutcome<R> {
    pub(crate) result: Result<R, Payload>,
    pub(crate) discarded: usize,
}

impl ThreadPool {
    /// Runs `f` on the calling thread with a [`Scope`] whose spawned closures may borrow from
    /// the caller's stack, and returns once every one of them has finished.
    ///
    /// Spawned closures run on the pool's workers. While `scope` waits, a caller that is one of
    /// this pool's workers runs queued tasks (so a scope inside a task never deadlocks the pool,
    /// even with one worker); another thread blocks until the last closure finishes.
    ///
    /// # Panics
    ///
    /// If `f` or any spawned closure panics, `scope` waits until every spawned closure has
    /// finished and then re-raises the first panic with [`std::panic::resume_unwind`]; the
    /// payloads of later panics are dropped.
    ///
    /// If the pool discarded spawned closures before they ran ([`shutdown_now`] or
    /// [`cancel_all`] from another thread while they were queued), they are dropped, the scope
    /// still waits for the rest, and then panics with a message that says how many were
    /// discarded: the work the scope was asked to do was not all done. (Closures spawned after
    /// the pool shut down are not refused: they run on the spawning thread.)
    ///
    /// [`shutdown_now`]: ThreadPool::shutdown_now
    /// [`cancel_all`]: ThreadPool::cancel_all
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::ThreadPool;
    ///
    /// let pool = ThreadPool::new(4).unwrap();
    /// let mut chunks = vec![vec![3, 1, 2], vec![9, 8], vec![5, 7, 6]];
    /// let total: usize = pool.scope(|s| {
    ///     for chunk in chunks.iter_mut() {
    ///         s.spawn(move |_| chunk.sort());
    ///     }
    ///     42 // the body's value is returned once every spawned closure has finished
    /// });
    /// assert_eq!(total, 42);
    /// assert_eq!(chunks, [vec![1, 2, 3], vec![8, 9], vec![5, 6, 7]]);
    /// ```
    ///
    /// Closures need not be `'static`, but they cannot borrow what the scope's body owns, since
    /// that is gone when the body returns, before the closures are done:
    ///
    /// ```compile_fail,E0597
    /// let pool = pool_core::ThreadPool::new(1).unwrap();
    /// pool.scope(|s| {
    ///     let local = vec![1, 2, 3];
    ///     s.spawn(|_| println!("{local:?}")); // `local` does not live long enough
    /// });
    /// ```
    ///
    /// Borrowed data stays borrowed until the scope returns:
    ///
    /// ```compile_fail,E0505
    /// let pool = pool_core::ThreadPool::new(1).unwrap();
    /// let data = vec![1, 2, 3];
    /// pool.scope(|s| {
    ///     s.spawn(|_| println!("{data:?}"));
    ///     drop(data); // cannot move out of `data` while a spawned closure borrows it
    /// });
    /// ```
    ///
    /// ```compile_fail,E0499
    /// let pool = pool_core::ThreadPool::new(1).unwrap();
    /// let mut data = vec![1, 2, 3];
    /// pool.scope(|s| {
    ///     s.spawn(|_| data.push(4));
    ///     data.push(5); // a second mutable borrow while the spawned closure holds one
    /// });
    /// ```
    ///
    /// The scope itself cannot escape the call:
    ///
    /// ```compile_fail,E0521
    /// let pool = pool_core::ThreadPool::new(1).unwrap();
    /// let mut escaped = None;
    /// pool.scope(|s| escaped = Some(s));
    /// ```
    ///
    /// And spawned closures cross threads, so they must be `Send`:
    ///
    /// ```compile_fail,E0277
    /// let pool = pool_core::ThreadPool::new(1).unwrap();
    /// let not_send = std::rc::Rc::new(5);
    /// pool.scope(|s| s.spawn(move |_| drop(not_send)));
    /// ```
    pub fn scope<'scope, F, R>(&'scope self, f: F) -> R
    where
        F: FnOnce(&Scope<'scope>) -> R,
    {
        let outcome = self.scope_with(OnReject::RunInline, f);
        match outcome.result {
            Err(payload) => panic::resume_unwind(payload),
            Ok(value) if outcome.discarded == 0 => value,
            Ok(value) => {
                drop_quietly(value);
                panic!(
                    "ThreadPool::scope: the pool discarded {} spawned closure(s) before they ran \
                     (shutdown_now or cancel_all while they were queued)",
                    outcome.discarded
                )
            }
        }
    }

    /// The scope behind [`scope`](Self::scope) and `map_batch`: never unwinds, and reports
    /// discarded closures instead of panicking about them.
    pub(crate) fn scope_with<'scope, F, R>(
        &'scope self,
        on_reject: OnReject,
        f: F,
    ) -> ScopeOutcome<R>
    where
        F: FnOnce(&Scope<'scope>) -> R,
    {
        // One share, the body's: released after the body, so the count cannot reach zero while
        // the body may still spawn.
        let (count, body_share) = ShareCount::new();
        let scope = Scope {
            pool: self,
            count,
            state: Arc::new(ScopeState::new()),
            on_reject,
            marker: PhantomData,
        };
        // The body's panic is recorded at once, so "first panic wins" holds between the body
        // and the spawned closures too.
        let value = match panic::catch_unwind(AssertUnwindSafe(|| f(&scope))) {
            Ok(value) => Some(value),
            Err(payload) => {
                scope.state.record_panic(payload);
                None
            }
        };
        // Every path from the body's end to here is straight-line code that cannot unwind, and
        // `wait` aborts rather than unwind: the frame (and every borrow) outlives every job.
        // Releasing the body's share last means every job finished already (Acquire: their
        // writes are visible), and nobody else will set `done`.
        if !scope.count.release(body_share) {
            scope.state.wait(self.is_worker_thread());
        }
        let discarded = scope.state.discarded();
        let result = match (scope.state.take_panic(), value) {
            (Some(payload), value) => {
                drop_quietly(value);
                Err(payload)
            }
            (None, Some(value)) => Ok(value),
            (None, None) => unreachable!("the body panicked, so the slot holds a payload"),
        };
        ScopeOutcome { result, discarded }
    }
}

/// An abort-on-unwind guard for straight-line sections that must not unwind (see `join`).
pub(crate) fn abort_on_unwind() -> OnExit<impl FnOnce()> {
    OnExit::new(|| std::process::abort())
}
