//! [`RemoteExecutor`]: enqueue registered tasks on the engine and deliver their outcomes.
//!
//! # The result watcher
//!
//! apalis records each job's outcome in its table; it has no push channel back to a submitter.
//! One watcher task per executor asks the engine (its `check_status` query, batched by id) for
//! the outcomes of every outstanding handle, `poll_interval` apart, and only while some are
//! outstanding: with none, it waits on a notification (`tokio::sync::Notify` keeps a permit, so
//! a submission racing the watcher's check is not missed) and costs nothing.
//!
//! Invariant: an outstanding id leaves the `pending` map exactly once, under its lock, and
//! whoever removes it fills its slot and counts it (completed, failed or cancelled); so the books
//! `submitted = completed + failed + cancelled + outstanding` hold for every snapshot of stats.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::ops::Bound;
use std::time::Duration;

use pool_core::sync::{Arc, AtomicBool, AtomicU64, Mutex, Ordering};
use pool_core::{drop_quietly, Priority};
use tokio::sync::Notify;

use crate::backend::{self, Finished, Outgoing, Store};
use crate::codec;
use crate::handle::{RawOutcome, RemoteHandle, Slot};
use crate::wire::{engine_priority, Envelope, WireFailure};
use crate::{RemoteError, RemoteTask};

/// Ids checked per tick: bounds the watcher's cost when many thousand handles are outstanding.
/// The watcher walks the outstanding ids round-robin, `IDS_PER_TICK` at a time, so with `n`
/// outstanding each is checked every `n / IDS_PER_TICK` ticks; with few, every tick.
const IDS_PER_TICK: usize = 500;

struct Outstanding {
    task: String,
    slot: Arc<Slot<RawOutcome>>,
}

/// What the executor and its handles share.
pub(crate) struct Shared {
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
    store: Store,
    pending: Mutex<BTreeMap<ulid::Ulid, Outstanding>>,
    wake: Notify,
    closed: AtomicBool,
    submitted: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
}

impl Shared {
    /// Runs `fut` on the executor's runtime and blocks until it is done. Works from any thread,
    /// including one inside another async runtime (which it blocks, as any sync call does).
    /// `None` when the runtime is gone (the executor was dropped) and `fut` never ran to the end.
    fn block_on<F>(&self, fut: F) -> Option<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        /// Fills the slot with `None` if the future is dropped unfinished (runtime shut down),
        /// so the caller never waits for a future that will not run.
        struct Settle<T>(Arc<Slot<Option<T>>>);
        impl<T> Drop for Settle<T> {
            fn drop(&mut self) {
                self.0.fill(None); // a no-op when the value is already there
            }
        }
        let slot = Arc::new(Slot::new());
        let settle = Settle(Arc::clone(&slot));
        self.handle.spawn(async move {
            let value = fut.await;
            settle.0.fill(Some(value));
        });
        slot.take_until(None).flatten()
    }

    fn detached(&self, during: &'static str) -> RemoteError {
        RemoteError::Backend {
            during,
            message: "the executor was dropped".into(),
        }
    }

    pub(crate) fn cancel(&self, id: ulid::Ulid) -> Result<bool, RemoteError> {
        let store = self.store.clone();
        let won = self
            .block_on(async move { store.cancel(id).await })
            .unwrap_or_else(|| Err(self.detached("cancel")))?;
        if won {
            self.settle(
                id,
                |task, _| Err(RemoteError::Cancelled { task: task.into() }),
                0,
            );
        }
        Ok(won)
    }

    /// Removes `id` from the outstanding set (if still there), counts and fills its slot.
    fn settle(
        &self,
        id: ulid::Ulid,
        outcome: impl FnOnce(&str, usize) -> RawOutcome,
        attempts: usize,
    ) {
        let (entry, outcome) = {
            let mut pending = self.pending.lock();
            let Some(entry) = pending.remove(&id) else {
                return;
            };
            let outcome = outcome(&entry.task, attempts);
            let counter = match &outcome {
                Ok(_) => &self.completed,
                Err(e) if e.is_cancelled() => &self.cancelled,
                Err(_) => &self.failed,
            };
            // Counted under the lock that removed it from the outstanding set (see the module
            // docs' invariant).
            counter.fetch_add(1, Ordering::Relaxed);
            (entry, outcome)
        };
        entry.slot.fill(outcome);
    }

    fn deliver(&self, done: Finished) {
        let Finished {
            id,
            attempts,
            result,
        } = done;
        self.settle(
            id,
            |task, attempts| match result {
                Ok(value) => Ok(value),
                Err(text) => Err(match WireFailure::decode(&text) {
                    Some(failure) => failure.into_error(task, attempts),
                    None => RemoteError::Failed {
                        task: task.to_owned(),
                        message: text,
                        attempts,
                    },
                }),
            },
            attempts,
        );
    }

    async fn watch(self: Arc<Self>, poll_interval: Duration) {
        // The last id checked: the next tick starts after it (ids rise in submission order).
        let mut cursor: Option<ulid::Ulid> = None;
        while !self.closed.load(Ordering::Acquire) {
            let ids: Vec<ulid::Ulid> = {
                let pending = self.pending.lock();
                let after = cursor.map_or(Bound::Unbounded, Bound::Excluded);
                let mut ids: Vec<_> = pending
                    .range((after, Bound::Unbounded))
                    .map(|(id, _)| *id)
                    .take(IDS_PER_TICK)
                    .collect();
                if ids.len() < IDS_PER_TICK {
                    // Wrap around to the oldest.
                    let room = IDS_PER_TICK - ids.len();
                    let first = ids.first().copied();
                    ids.extend(
                        pending
                            .keys()
                            .copied()
                            .take_while(|id| Some(*id) != first)
                            .take(room),
                    );
                }
                ids
            };
            if ids.is_empty() {
                cursor = None;
                self.wake.notified().await;
                continue;
            }
            cursor = ids.last().copied();
            // A failed query (backend briefly unreachable) is retried at the next tick; the
            // outcomes stay in the backend, so nothing is lost meanwhile.
            if let Ok(done) = self.store.finished(&ids).await {
                for finished in done {
                    self.deliver(finished);
                }
            }
            tokio::time::sleep(poll_interval).await;
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
        let orphans = std::mem::take(&mut *self.pending.lock());
        for (_, entry) in orphans {
            entry
                .slot
                .fill(Err(RemoteError::Detached { task: entry.task }));
        }
        if let Some(runtime) = self.runtime.lock().take() {
            // Never blocks, so closing from inside an async context is fine.
            runtime.shutdown_background();
        }
    }
}

/// Counts of one executor's submissions. `submitted = completed + failed + cancelled +
/// outstanding` holds in every snapshot (each term is counted where a handle is settled, under
/// the lock that removes it from the outstanding set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RemoteStats {
    /// Jobs the backend accepted.
    pub submitted: u64,
    /// Jobs that produced a value.
    pub completed: u64,
    /// Jobs whose final outcome is an error (panicked or failed after their attempts, refused).
    pub failed: u64,
    /// Jobs cancelled before a worker claimed them.
    pub cancelled: u64,
    /// Jobs whose outcome has not arrived yet.
    pub outstanding: u64,
}

/// Builds a [`RemoteExecutor`].
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use pool_remote::RemoteExecutor;
///
/// let remote = RemoteExecutor::builder("sqlite://jobs.db")
///     .queue("thumbnails")
///     .max_attempts(3)
///     .poll_interval(Duration::from_millis(5))
///     .build()?;
/// # Ok::<(), pool_remote::RemoteError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
#[derive(Debug, Clone)]
pub struct RemoteExecutorBuilder {
    url: String,
    queue: String,
    max_attempts: usize,
    poll_interval: Duration,
}

/// The default queue name, shared by executors and workers that do not name one.
pub const DEFAULT_QUEUE: &str = "pool-remote";

/// The most attempts a job may be given ([`RemoteExecutorBuilder::max_attempts`]): the bound
/// that keeps a task that always fails from becoming a retry storm (and fits the engine's
/// column, where `usize::MAX` read back as "retry for ever").
pub const MAX_ATTEMPTS: usize = 100;

impl RemoteExecutorBuilder {
    /// The queue (apalis's job type) to submit to; workers must consume the same one.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// How many times the engine runs a task that panics or returns an error before its outcome
    /// is a failure (default 3; within 1..=[`MAX_ATTEMPTS`]). A worker killed mid-task also uses
    /// up an attempt.
    pub fn max_attempts(mut self, attempts: usize) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// How often the outcomes of outstanding handles are read from the backend (default 10 ms,
    /// at most a minute); the floor of a round trip's latency.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Connects, migrates the engine's tables if needed, and starts the result watcher.
    ///
    /// # Errors
    ///
    /// [`RemoteError::Build`] for a bad setting, [`RemoteError::Unreachable`] when the backend
    /// cannot be reached.
    pub fn build(self) -> Result<RemoteExecutor, RemoteError> {
        RemoteError::check(
            (1..=MAX_ATTEMPTS).contains(&self.max_attempts),
            "max_attempts",
            format_args!(
                "must be within 1..={MAX_ATTEMPTS}, got {}",
                self.max_attempts
            ),
        )?;
        backend::check_poll_interval(self.poll_interval)?;
        let (runtime, store) = backend::start(&self.url, &self.queue, "pool-remote-io".into())?;
        let shared = Arc::new(Shared {
            handle: runtime.handle().clone(),
            runtime: Mutex::new(Some(runtime)),
            store,
            pending: Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
            submitted: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
        });
        shared
            .handle
            .spawn(Arc::clone(&shared).watch(self.poll_interval));
        Ok(RemoteExecutor {
            shared,
            max_attempts: self.max_attempts,
            ids: Mutex::new(ulid::Generator::new()),
        })
    }
}

/// Submits registered tasks to remote workers through the job engine.
///
/// `submit` returns once the job is durably in the backend; its [`RemoteHandle`] then joins,
/// awaits or cancels it. Dropping the executor detaches the handles still waiting (their jobs
/// stay queued and run).
///
/// # Examples
///
/// ```no_run
/// use pool_core::Priority;
/// use pool_remote::{BoxError, RemoteExecutor, RemoteTask};
///
/// struct Square;
/// impl RemoteTask for Square {
///     const NAME: &'static str = "square";
///     type Args = u64;
///     type Output = u64;
///     fn run(&self, x: u64) -> Result<u64, BoxError> { Ok(x * x) }
/// }
///
/// let remote = RemoteExecutor::builder("sqlite://jobs.db").build()?;
/// let urgent = remote.submit_at::<Square>(Priority::High, 3)?;
/// let batch = remote.submit_batch::<Square>((0..100).map(|x| (Priority::Low, x)))?;
/// assert_eq!(urgent.join()?, 9);
/// for (x, h) in batch.into_iter().enumerate() {
///     assert_eq!(h.join()?, (x * x) as u64);
/// }
/// # Ok::<(), pool_remote::RemoteError>(())
/// ```
pub struct RemoteExecutor {
    shared: Arc<Shared>,
    max_attempts: usize,
    ids: Mutex<ulid::Generator>,
}

impl fmt::Debug for RemoteExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteExecutor")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl RemoteExecutor {
    /// A builder for the backend at `url`: `sqlite://path.db` (created if missing) or, with the
    /// `postgres` feature, `postgres://user@host/db`.
    pub fn builder(url: impl Into<String>) -> RemoteExecutorBuilder {
        RemoteExecutorBuilder {
            url: url.into(),
            queue: DEFAULT_QUEUE.to_owned(),
            max_attempts: 3,
            poll_interval: Duration::from_millis(10),
        }
    }

    /// Submits one task at `Priority::Normal`.
    ///
    /// # Errors
    ///
    /// [`RemoteError::BadArgs`] if the arguments do not serialise (serde refuses them, or their
    /// `Serialize` panics), [`RemoteError::Backend`] if the backend refused the insert; in both
    /// cases nothing was enqueued.
    pub fn submit<T>(&self, args: T::Args) -> Result<RemoteHandle<T::Output>, RemoteError>
    where
        T: RemoteTask,
    {
        self.submit_at::<T>(Priority::Normal, args)
    }

    /// Submits one task at `priority` (mapped onto the engine's priority: higher first).
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit).
    pub fn submit_at<T>(
        &self,
        priority: Priority,
        args: T::Args,
    ) -> Result<RemoteHandle<T::Output>, RemoteError>
    where
        T: RemoteTask,
    {
        let mut handles = self.submit_batch::<T>([(priority, args)])?;
        Ok(handles.remove(0))
    }

    /// Submits many tasks in one transaction (all or none), in the given order.
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit); on error none of them was enqueued (the arguments after one
    /// that cannot be encoded are dropped, quietly, unencoded).
    pub fn submit_batch<T>(
        &self,
        items: impl IntoIterator<Item = (Priority, T::Args)>,
    ) -> Result<Vec<RemoteHandle<T::Output>>, RemoteError>
    where
        T: RemoteTask,
    {
        let mut items = items.into_iter();
        let mut jobs = Vec::new();
        for (priority, args) in items.by_ref() {
            match codec::encode(args) {
                Ok(args) => jobs.push(self.outgoing(T::NAME, priority, args)),
                Err(message) => {
                    // The arguments not encoded yet are dropped here; their `Drop` is user code.
                    drop_quietly(items);
                    return Err(RemoteError::BadArgs {
                        task: T::NAME.to_owned(),
                        message,
                    });
                }
            }
        }
        self.enqueue(jobs)
    }

    /// Submits a task by name with JSON arguments, for callers that do not link the task's type
    /// (a gateway, a scheduler reading names from configuration). A name no worker knows comes
    /// back as [`RemoteError::UnknownTask`] from the handle.
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit).
    pub fn submit_json(
        &self,
        name: &str,
        priority: Priority,
        args: serde_json::Value,
    ) -> Result<RemoteHandle<serde_json::Value>, RemoteError> {
        let mut handles = self.enqueue(vec![self.outgoing(name, priority, args)])?;
        Ok(handles.remove(0))
    }

    /// Ids rise in submission order (a monotonic ULID generator), and the engine serves equal
    /// priorities by id: FIFO within a level for one submitter.
    fn next_id(&self) -> ulid::Ulid {
        let mut ids = self.ids.lock();
        match ids.generate() {
            Ok(id) => id,
            // More than 2^80 ids in one millisecond: take the next one anyway.
            Err(overflow) => overflow.commit_overflow_increment(),
        }
    }

    fn outgoing(&self, name: &str, priority: Priority, args: serde_json::Value) -> Outgoing {
        Outgoing {
            id: self.next_id(),
            envelope: Envelope {
                task: name.to_owned(),
                args,
            },
            priority: engine_priority(priority),
            max_attempts: self.max_attempts,
        }
    }

    fn enqueue<O>(&self, jobs: Vec<Outgoing>) -> Result<Vec<RemoteHandle<O>>, RemoteError>
    where
        O: serde::de::DeserializeOwned,
    {
        let store = self.shared.store.clone();
        let jobs = self
            .shared
            .block_on(async move {
                let pushed = store.push(&jobs).await;
                pushed.map(|()| jobs)
            })
            .unwrap_or_else(|| Err(self.shared.detached("enqueue")))?;
        let mut handles = Vec::with_capacity(jobs.len());
        {
            let mut pending = self.shared.pending.lock();
            for job in jobs {
                let slot = Arc::new(Slot::new());
                pending.insert(
                    job.id,
                    Outstanding {
                        task: job.envelope.task.clone(),
                        slot: Arc::clone(&slot),
                    },
                );
                handles.push(RemoteHandle::new(
                    job.id,
                    job.envelope.task,
                    slot,
                    Arc::clone(&self.shared),
                ));
            }
            // Counted under the lock that makes them outstanding, so no snapshot sees them
            // settled but not submitted.
            self.shared
                .submitted
                .fetch_add(handles.len() as u64, Ordering::Relaxed);
        }
        self.shared.wake.notify_one();
        Ok(handles)
    }

    /// A snapshot of this executor's books.
    pub fn stats(&self) -> RemoteStats {
        // The lock orders this snapshot against `enqueue` and `settle`, which change the counts
        // and the outstanding set under it.
        let pending = self.shared.pending.lock();
        RemoteStats {
            submitted: self.shared.submitted.load(Ordering::Relaxed),
            completed: self.shared.completed.load(Ordering::Relaxed),
            failed: self.shared.failed.load(Ordering::Relaxed),
            cancelled: self.shared.cancelled.load(Ordering::Relaxed),
            outstanding: pending.len() as u64,
        }
    }

    /// The backend's own count of this queue's jobs by engine status (`Done`, `Failed`,
    /// `Killed`, `Pending`, `Queued`, `Running`), across every submitter of the queue.
    ///
    /// # Errors
    ///
    /// [`RemoteError::Backend`] when the query fails.
    pub fn backend_counts(&self) -> Result<Vec<(String, u64)>, RemoteError> {
        let store = self.shared.store.clone();
        self.shared
            .block_on(async move { store.status_counts().await })
            .unwrap_or_else(|| Err(self.shared.detached("count jobs")))
    }
}

impl RemoteExecutor {
    /// How many of the queue's jobs (from every submitter) finished with a value after more
    /// than one attempt: re-run after a failed attempt or because their worker died. Evidence
    /// of at-least-once delivery at work.
    ///
    /// # Errors
    ///
    /// [`RemoteError::Backend`] when the query fails.
    pub fn backend_done_after_retry(&self) -> Result<u64, RemoteError> {
        let store = self.shared.store.clone();
        self.shared
            .block_on(async move { store.done_after_retry().await })
            .unwrap_or_else(|| Err(self.shared.detached("count jobs")))
    }
}

impl Drop for RemoteExecutor {
    fn drop(&mut self) {
        self.shared.close();
    }
}
