//! `Coalescer`: the public front, the executor jobs, and the glue that acts on each slot
//! transition once the shard lock is released.

use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc as ValueArc;

use pool_core::sync::{Arc, ErasedArc};
use pool_core::{
    call_quietly, catch_panic, drop_quietly, Executor, Job, Priority, QuietDrop, Rejected,
};

use crate::error::{CoalesceBuildError, CoalesceCancelReason, CoalesceError};
use crate::exec::{BoxedWork, Plain, WithFlag};
use crate::handle::{CoalescedHandle, ExecOps};
use crate::options::{Mode, SubmitOptions};
use crate::slot::{ExecutionRef, KeyPanicked, KeySlots};
use crate::stats::{CoalesceStats, KeyStats};
use crate::CoalesceCancelToken;

const MAX_SHARDS: usize = 1 << 16;
const DEFAULT_SHARDS: usize = 16;

/// Merges submissions that carry the same key, on top of any [`Executor`].
///
/// Per key, at most one execution runs and at most one waits (see [`Mode`] for what a new
/// submission does to them). Every submitter gets a [`CoalescedHandle`] to the execution it
/// joined; refused work comes back in [`Rejected`]. Cloning a `Coalescer` is cheap and shares it.
///
/// # Examples
///
/// Ten renders requested while the first is still queued run once, with the tenth closure:
///
/// ```
/// use policy_coalesce::Coalescer;
/// use pool_core::ThreadPool;
/// use std::sync::mpsc;
///
/// let pool = ThreadPool::new(1).unwrap();
/// let (release, gate) = mpsc::channel::<()>();
/// pool.spawn(move || gate.recv().unwrap()).unwrap(); // the only worker is busy
/// let renders = Coalescer::builder(pool).build()?;
/// let handles: Vec<_> = (1..=10)
///     .map(|n| renders.submit("preview", move || format!("render of keystroke {n}")).unwrap())
///     .collect();
/// release.send(()).unwrap();
/// for handle in handles {
///     assert_eq!(*handle.join().unwrap(), "render of keystroke 10");
/// }
/// let stats = renders.stats();
/// assert_eq!((stats.submitted, stats.executed, stats.coalesced), (10, 1, 9));
/// # Ok::<(), policy_coalesce::CoalesceBuildError>(())
/// ```
pub struct Coalescer<K, T, E> {
    inner: Arc<Inner<K, T, E>>,
}

struct Inner<K, T, E> {
    slots: Arc<KeySlots<K, T>>,
    /// User code, its `Drop` too: dropped quietly wherever it goes (with a builder dropped or
    /// refused, with the coalescer, or on a worker whose job held the last reference).
    executor: QuietDrop<E>,
    mode: Mode,
    bumps: bool,
}

/// Builds a [`Coalescer`]: the default [`Mode`], the shard count, priority raises.
///
/// # Examples
///
/// ```
/// use policy_coalesce::{Coalescer, Mode};
/// use pool_core::ThreadPool;
///
/// let coalescer = Coalescer::<String, u64, _>::builder(ThreadPool::new(2).unwrap())
///     .mode(Mode::Replace)
///     .shards(8)
///     .priority_raises(false)
///     .build()?;
/// # drop(coalescer);
/// # Ok::<(), policy_coalesce::CoalesceBuildError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct CoalescerBuilder<K, T, E> {
    executor: QuietDrop<E>,
    mode: Mode,
    shards: usize,
    bumps: bool,
    _types: PhantomData<fn() -> (K, T)>,
}

impl<K, T, E> CoalescerBuilder<K, T, E>
where
    K: Hash + Eq + Send + Sync + 'static,
    T: Send + Sync + 'static,
    E: Executor + 'static,
{
    /// The mode of submissions that do not choose one (default [`Mode::Latest`]).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// How many independently locked parts the key map has (default 16, rounded up to a power
    /// of two). More shards mean less contention between submitters of different keys.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }

    /// Whether a higher-priority submitter joining a queued execution sends one more job at
    /// its priority (default `true`). Turn it off for executors that ignore priorities, where
    /// the extra job would only be a cheap no-op.
    pub fn priority_raises(mut self, enabled: bool) -> Self {
        self.bumps = enabled;
        self
    }

    /// Builds the coalescer.
    ///
    /// # Errors
    ///
    /// [`CoalesceBuildError`] when the shard count is 0 or above 65536.
    pub fn build(self) -> Result<Coalescer<K, T, E>, CoalesceBuildError> {
        if self.shards == 0 {
            return Err(CoalesceBuildError::zero_shards());
        }
        if self.shards > MAX_SHARDS {
            return Err(CoalesceBuildError::too_many_shards(self.shards, MAX_SHARDS));
        }
        Ok(Coalescer {
            inner: Arc::new(Inner {
                slots: Arc::new(KeySlots::new(self.shards.next_power_of_two())),
                executor: self.executor,
                mode: self.mode,
                bumps: self.bumps,
            }),
        })
    }
}

impl<K, T, E> fmt::Debug for CoalescerBuilder<K, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoalescerBuilder")
            .field("mode", &self.mode)
            .field("shards", &self.shards)
            .field("priority_raises", &self.bumps)
            .finish_non_exhaustive()
    }
}

impl<K, T, E> Coalescer<K, T, E>
where
    K: Hash + Eq + Send + Sync + 'static,
    T: Send + Sync + 'static,
    E: Executor + 'static,
{
    /// A builder over `executor`.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_coalesce::Coalescer;
    /// use pool_core::InlineExecutor;
    ///
    /// let coalescer = Coalescer::<u32, String, _>::builder(InlineExecutor).build()?;
    /// # drop(coalescer);
    /// # Ok::<(), policy_coalesce::CoalesceBuildError>(())
    /// ```
    pub fn builder(executor: E) -> CoalescerBuilder<K, T, E> {
        CoalescerBuilder {
            executor: QuietDrop::new(executor),
            mode: Mode::default(),
            shards: DEFAULT_SHARDS,
            bumps: true,
            _types: PhantomData,
        }
    }

    /// A coalescer over `executor` with the default settings.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_coalesce::Coalescer;
    /// use pool_core::InlineExecutor;
    ///
    /// let coalescer = Coalescer::<u32, u32, _>::new(InlineExecutor);
    /// assert_eq!(*coalescer.submit(1, || 2).unwrap().join().unwrap(), 2);
    /// ```
    pub fn new(executor: E) -> Self {
        match Self::builder(executor).build() {
            Ok(coalescer) => coalescer,
            Err(_) => unreachable!("the default settings are valid"),
        }
    }

    /// Submits `f` under `key` with the default mode and [`Priority::Normal`].
    ///
    /// # Panics
    ///
    /// When the key's `Hash` or `Eq` panics (see [`submit_with`](Self::submit_with)).
    ///
    /// # Errors
    ///
    /// When the executor refuses the job (it is shut down), `f` comes back in [`Rejected`].
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_coalesce::Coalescer;
    /// use pool_core::ThreadPool;
    ///
    /// let coalescer = Coalescer::builder(ThreadPool::new(2).unwrap()).build()?;
    /// let handle = coalescer.submit("answer", || 6 * 7).unwrap();
    /// assert_eq!(*handle.join().unwrap(), 42);
    /// # Ok::<(), policy_coalesce::CoalesceBuildError>(())
    /// ```
    pub fn submit<F>(&self, key: K, f: F) -> Result<CoalescedHandle<T>, Rejected<F>>
    where
        F: FnOnce() -> T + Send + 'static,
    {
        self.submit_with(key, SubmitOptions::default(), f)
    }

    /// [`submit`](Self::submit) with a [`Mode`] and/or a priority.
    ///
    /// # Panics
    ///
    /// When the key's `Hash` or `Eq` panics: the panic is the caller's and reaches it, after
    /// `f` and the key are dropped, with nothing submitted or counted. No other user code
    /// panics into the caller: a panic of `f` reaches every sharer as
    /// [`CoalesceError::Panicked`]; one in a `Drop` of a closure, a key or a value, a waker or
    /// the executor stops where it happens (an executor that drops the job while panicking
    /// resolves the handle with [`CoalesceCancelReason::Dropped`]).
    ///
    /// # Errors
    ///
    /// When the executor refuses the job, `f` comes back in [`Rejected`].
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_coalesce::{Coalescer, Mode, SubmitOptions};
    /// use pool_core::{InlineExecutor, Priority};
    ///
    /// let coalescer = Coalescer::<&str, u8, _>::new(InlineExecutor);
    /// let options = SubmitOptions::new().mode(Mode::Keep).priority(Priority::High);
    /// assert_eq!(*coalescer.submit_with("k", options, || 1).unwrap().join().unwrap(), 1);
    /// ```
    pub fn submit_with<F>(
        &self,
        key: K,
        options: SubmitOptions,
        f: F,
    ) -> Result<CoalescedHandle<T>, Rejected<F>>
    where
        F: FnOnce() -> T + Send + 'static,
    {
        self.submit_boxed(key, options, Box::new(Plain(f)), true)
            .map(expect_handle)
            .map_err(|work| match work.into_any().downcast::<Plain<F>>() {
                Ok(plain) => Rejected(plain.0),
                Err(_) => unreachable!("a refused closure is the submitter's own"),
            })
    }

    /// Submits a closure that receives a [`CoalesceCancelToken`], so it can stop early when every
    /// handle cancelled, the key was cancelled, or a [`Mode::Replace`] submission arrived.
    ///
    /// # Panics
    ///
    /// When the key's `Hash` or `Eq` panics (see [`submit_with`](Self::submit_with)).
    ///
    /// # Errors
    ///
    /// When the executor refuses the job, `f` comes back in [`Rejected`].
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_coalesce::Coalescer;
    /// use pool_core::InlineExecutor;
    ///
    /// let coalescer = Coalescer::<u8, bool, _>::new(InlineExecutor);
    /// let handle = coalescer.submit_cancellable(1, |flag| flag.is_cancelled()).unwrap();
    /// assert!(!*handle.join().unwrap());
    /// ```
    pub fn submit_cancellable<F>(&self, key: K, f: F) -> Result<CoalescedHandle<T>, Rejected<F>>
    where
        F: for<'a> FnOnce(&CoalesceCancelToken<'a>) -> T + Send + 'static,
    {
        self.submit_cancellable_with(key, SubmitOptions::default(), f)
    }

    /// [`submit_cancellable`](Self::submit_cancellable) with options.
    ///
    /// # Panics
    ///
    /// When the key's `Hash` or `Eq` panics (see [`submit_with`](Self::submit_with)).
    ///
    /// # Errors
    ///
    /// When the executor refuses the job, `f` comes back in [`Rejected`].
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_coalesce::{Coalescer, Mode, SubmitOptions};
    /// use pool_core::InlineExecutor;
    ///
    /// let coalescer = Coalescer::<u8, u8, _>::new(InlineExecutor);
    /// let replace = SubmitOptions::new().mode(Mode::Replace);
    /// let handle = coalescer.submit_cancellable_with(1, replace, |_flag| 3).unwrap();
    /// assert_eq!(*handle.join().unwrap(), 3);
    /// ```
    pub fn submit_cancellable_with<F>(
        &self,
        key: K,
        options: SubmitOptions,
        f: F,
    ) -> Result<CoalescedHandle<T>, Rejected<F>>
    where
        F: for<'a> FnOnce(&CoalesceCancelToken<'a>) -> T + Send + 'static,
    {
        self.submit_boxed(key, options, Box::new(WithFlag(f)), true)
            .map(expect_handle)
            .map_err(|work| match work.into_any().downcast::<WithFlag<F>>() {
                Ok(with_flag) => Rejected(with_flag.0),
                Err(_) => unreachable!("a refused closure is the submitter's own"),
            })
    }

    /// Fire-and-forget [`submit_with`](Self::submit_with): the same coalescing, no handle.
    ///
    /// The cheapest way to submit: merging into a pending execution touches no reference
    /// count. An execution joined this way cannot be cancelled through handles (this submitter
    /// has none and never cancels), only by [`cancel_key`](Self::cancel_key).
    ///
    /// # Panics
    ///
    /// When the key's `Hash` or `Eq` panics (see [`submit_with`](Self::submit_with)).
    ///
    /// # Errors
    ///
    /// When the executor refuses the job, `f` comes back in [`Rejected`].
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_coalesce::{Coalescer, SubmitOptions};
    /// use pool_core::ThreadPool;
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let (tx, rx) = mpsc::channel();
    /// let autosave = Coalescer::<&str, (), _>::builder(ThreadPool::new(1).unwrap()).build()?;
    /// autosave
    ///     .spawn("notes.txt", SubmitOptions::new(), move || tx.send("saved").unwrap())
    ///     .unwrap();
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "saved");
    /// # Ok::<(), policy_coalesce::CoalesceBuildError>(())
    /// ```
    pub fn spawn<F>(&self, key: K, options: SubmitOptions, f: F) -> Result<(), Rejected<F>>
    where
        F: FnOnce() -> T + Send + 'static,
    {
        match self.submit_boxed(key, options, Box::new(Plain(f)), false) {
            Ok(_) => Ok(()),
            Err(work) => match work.into_any().downcast::<Plain<F>>() {
                Ok(plain) => Err(Rejected(plain.0)),
                Err(_) => unreachable!("a refused closure is the submitter's own"),
            },
        }
    }

    /// Cancels `key` for everyone: its pending execution (if any) never runs and all its
    /// handles resolve to `Cancelled(Key)`; its running execution (if any) is asked to stop
    /// through its [`CoalesceCancelToken`]. Returns whether there was anything to cancel.
    ///
    /// # Panics
    ///
    /// When the key's `Hash` or `Eq` panics; nothing is cancelled then.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_coalesce::{CoalesceCancelReason, CoalesceError, Coalescer};
    /// use pool_core::ThreadPool;
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPool::new(1).unwrap();
    /// let (release, gate) = mpsc::channel::<()>();
    /// pool.spawn(move || gate.recv().unwrap()).unwrap();
    /// let coalescer = Coalescer::builder(pool).build()?;
    /// let handle = coalescer.submit("index", || "built").unwrap();
    /// assert!(coalescer.cancel_key(&"index"));
    /// release.send(()).unwrap();
    /// assert_eq!(handle.join().unwrap_err(), CoalesceError::Cancelled(CoalesceCancelReason::Key));
    /// assert_eq!(coalescer.stats().keys, 0);
    /// # Ok::<(), policy_coalesce::CoalesceBuildError>(())
    /// ```
    pub fn cancel_key(&self, key: &K) -> bool {
        let slots = &self.inner.slots;
        let (cancelled, stopped, removed) = slots.cancel_key(key, slots.hash(key));
        drop_quietly(removed);
        let any = cancelled.is_some() || stopped;
        if let Some((exec, work)) = cancelled {
            exec.publish(Err(CoalesceError::Cancelled(CoalesceCancelReason::Key)));
            drop_quietly((exec, work));
        }
        any
    }

    /// A snapshot of the counters (see [`CoalesceStats`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_coalesce::Coalescer;
    /// use pool_core::InlineExecutor;
    ///
    /// let coalescer = Coalescer::<u8, (), _>::new(InlineExecutor);
    /// coalescer.submit(1, || ()).unwrap();
    /// assert_eq!(coalescer.stats().executed, 1);
    /// ```
    pub fn stats(&self) -> CoalesceStats {
        let (counts, keys, pending, running) = self.inner.slots.counts();
        CoalesceStats::from_counts(counts, keys, pending, running)
    }

    /// What `key` has in flight, or `None` when it is idle (idle keys are not in the map).
    ///
    /// # Panics
    ///
    /// When the key's `Hash` or `Eq` panics.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_coalesce::Coalescer;
    /// use pool_core::ThreadPool;
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPool::new(1).unwrap();
    /// let (release, gate) = mpsc::channel::<()>();
    /// pool.spawn(move || gate.recv().unwrap()).unwrap();
    /// let coalescer = Coalescer::builder(pool).build()?;
    /// let a = coalescer.submit("k", || ()).unwrap();
    /// let b = coalescer.submit("k", || ()).unwrap();
    /// assert_eq!(coalescer.key_stats(&"k").unwrap().live_handles, 2);
    /// release.send(()).unwrap();
    /// a.join().unwrap();
    /// b.join().unwrap();
    /// # Ok::<(), policy_coalesce::CoalesceBuildError>(())
    /// ```
    pub fn key_stats(&self, key: &K) -> Option<KeyStats> {
        let slots = &self.inner.slots;
        slots.key_stats(key, slots.hash(key))
    }

    /// The executor the executions run on.
    pub fn executor(&self) -> &E {
        &self.inner.executor
    }

    fn submit_boxed(
        &self,
        key: K,
        options: SubmitOptions,
        work: BoxedWork<T>,
        want_handle: bool,
    ) -> Result<Option<CoalescedHandle<T>>, BoxedWork<T>> {
        let inner = &self.inner;
        let mode = options.get_mode().unwrap_or(inner.mode);
        // The key's `Hash` and `Eq` are the caller's code, run before anything changes: a panic
        // there reaches the caller, uncounted, once the closure and the key are dropped.
        let hash = match catch_unwind(AssertUnwindSafe(|| inner.slots.hash(&key))) {
            Ok(hash) => hash,
            Err(payload) => key_panicked(KeyPanicked { payload, key, work }),
        };
        let admitted = match KeySlots::admit(
            &inner.slots,
            key,
            hash,
            mode,
            options.get_priority(),
            work,
            inner.bumps,
            want_handle,
        ) {
            Ok(admitted) => admitted,
            Err(panicked) => key_panicked(panicked),
        };
        // Outside the lock, quietly: the superseded or kept-out closure and the submitter's key
        // are user code, and the submission has been accepted whatever their `Drop` does.
        drop_quietly(admitted.dropped);
        drop_quietly(admitted.key);
        let Some(exec) = admitted.exec else {
            return Ok(None);
        };
        if let Some(priority) = admitted.dispatch {
            if let Err(Some((work, installed))) = Inner::dispatch(inner, &exec, priority) {
                if installed == admitted.ticket {
                    return Err(work);
                }
                drop_quietly(work);
            }
        }
        if let Some(priority) = admitted.bump {
            // A refused raise is dropped; its guard gives back its share of `jobs_out`.
            Inner::send(inner, JobGuard::job(inner, &exec), priority);
        }
        if !want_handle {
            // On an inline executor the run is over, and this may be the last reference to
            // the execution and its value.
            drop_quietly(exec);
            return Ok(None);
        }
        let ops: ErasedArc<dyn ExecOps<T>> = exec;
        Ok(Some(CoalescedHandle::new(
            ops,
            admitted.ticket,
            admitted.kept,
        )))
    }
}

/// The submitter's key panicked in `Hash` or `Eq`: drop what it submitted (quietly: its
/// destructors are user code too, and must not panic while this panic unwinds) and let the
/// panic reach the caller.
fn key_panicked<K, T>(panicked: KeyPanicked<K, T>) -> ! {
    let KeyPanicked { payload, key, work } = panicked;
    drop_quietly(work);
    drop_quietly(key);
    resume_unwind(payload)
}

/// The handle of a submission that asked for one.
fn expect_handle<T>(handle: Option<CoalescedHandle<T>>) -> CoalescedHandle<T> {
    match handle {
        Some(handle) => handle,
        None => unreachable!("a submission that asks for a handle gets one"),
    }
}

impl<K, T, E> Inner<K, T, E>
where
    K: Hash + Eq + Send + Sync + 'static,
    T: Send + Sync + 'static,
    E: Executor + 'static,
{
    /// Hands the first job of `exec` to the executor. On refusal, when no other job for it is
    /// out, every sharer is resolved with `Rejected` and the closure is returned with the
    /// ticket of its submitter.
    #[allow(clippy::type_complexity)]
    fn dispatch(
        inner: &Arc<Self>,
        exec: &ExecutionRef<K, T>,
        priority: Priority,
    ) -> Result<(), Option<(BoxedWork<T>, u64)>> {
        let Some(job) = Inner::send(inner, JobGuard::job(inner, exec), priority) else {
            return Ok(());
        };
        // Resolve before dropping the refused job, so its guard finds the slot already empty.
        let (refused, removed) = inner.slots.refused(exec);
        drop_quietly(removed);
        if refused.is_some() {
            exec.publish(Err(CoalesceError::Rejected));
        }
        drop_quietly(job);
        Err(refused)
    }

    /// Hands `job` to the executor; the job if it was refused.
    ///
    /// The executor is user code. If it panics, the job was either dropped while it unwound
    /// (the job's guard then resolved the execution with `Cancelled(Dropped)` and freed the
    /// slot) or kept (it will run): either way nothing is left to do, and the panic is not
    /// passed on: not to a worker, which has a follow-up to run, nor to a submitter, which
    /// already has a handle that resolves.
    fn send(inner: &Arc<Self>, job: Job, priority: Priority) -> Option<Job> {
        match call_quietly(|| inner.executor.execute_with_priority(job, priority)) {
            Some(Err(Rejected(job))) => Some(job),
            Some(Ok(())) | None => None,
        }
    }

    /// What a job does when a worker reaches it. Nothing in it unwinds: the closure, its
    /// output's and its panic payload's destructors, the wakers and the executor are user code,
    /// and each is called so that its panic stops at it. So the run always reaches `finish`,
    /// the outcome is published to every sharer, and the key's follow-up is dispatched.
    fn run(inner: &Arc<Self>, exec: &ExecutionRef<K, T>) {
        let Some(work) = inner.slots.start(exec) else {
            return; // stale: another job of this execution started it, or it was cancelled
        };
        #[cfg(feature = "tracing")]
        let _execution = exec.span.enter();
        // The closure's captures are dropped inside the call, the payload inside `catch_panic`.
        let (outcome, panicked) = match catch_panic(|| work.run(&exec.flag())) {
            Ok(value) => (Ok(ValueArc::new(value)), false),
            Err(message) => (Err(CoalesceError::Panicked(message)), true),
        };
        let (follow_up, removed) = inner.slots.finish(exec, panicked);
        drop_quietly(removed);
        exec.publish(outcome);
        if let Some((next, priority)) = follow_up {
            // A refusal has already resolved every sharer of `next`; its closure is dropped.
            if let Err(Some(refused)) = Inner::dispatch(inner, &next, priority) {
                drop_quietly(refused);
            }
            drop_quietly(next);
        }
    }
}

type Armed<K, T, E> = (Arc<Inner<K, T, E>>, ExecutionRef<K, T>);

/// The job handed to the executor. If the executor drops it without running it (a
/// `shutdown_now`, a queue torn down), `Drop` resolves the execution, so no handle waits forever.
struct JobGuard<K, T, E>
where
    K: Hash + Eq + Send + Sync + 'static,
    T: Send + Sync + 'static,
    E: Executor + 'static,
{
    /// Taken by the run; still there on drop means the executor dropped the job unrun.
    armed: Option<Armed<K, T, E>>,
}

impl<K, T, E> JobGuard<K, T, E>
where
    K: Hash + Eq + Send + Sync + 'static,
    T: Send + Sync + 'static,
    E: Executor + 'static,
{
    fn job(inner: &Arc<Inner<K, T, E>>, exec: &ExecutionRef<K, T>) -> Job {
        let mut guard = JobGuard {
            armed: Some((inner.clone(), exec.clone())),
        };
        Box::new(move || {
            if let Some((inner, exec)) = guard.armed.take() {
                Inner::run(&inner, &exec);
                // Maybe the last references: to the execution (its value's `Drop`) and to the
                // coalescer (the executor's).
                drop_quietly((inner, exec));
            }
        })
    }
}

impl<K, T, E> Drop for JobGuard<K, T, E>
where
    K: Hash + Eq + Send + Sync + 'static,
    T: Send + Sync + 'static,
    E: Executor + 'static,
{
    /// Runs wherever the executor drops the job, maybe while an executor's panic unwinds: so
    /// every piece of user code here is dropped quietly (a second panic would abort).
    fn drop(&mut self) {
        if let Some((inner, exec)) = self.armed.take() {
            let (work, removed) = inner.slots.job_gone(&exec);
            drop_quietly(removed);
            if let Some(work) = work {
                exec.publish(Err(CoalesceError::Cancelled(CoalesceCancelReason::Dropped)));
                drop_quietly(work);
            }
            drop_quietly((inner, exec));
        }
    }
}

impl<K, T, E> Clone for Coalescer<K, T, E> {
    fn clone(&self) -> Self {
        Coalescer {
            inner: self.inner.clone(),
        }
    }
}

impl<K, T, E> fmt::Debug for Coalescer<K, T, E>
where
    K: Hash + Eq + Send + Sync + 'static,
    T: Send + Sync + 'static,
    E: Executor + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coalescer")
            .field("mode", &self.inner.mode)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
