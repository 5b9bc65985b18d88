//! The worker entry point: take jobs from the engine and run them on a local `ThreadPool`.
//!
//! apalis drives the queue (claiming batches, heartbeats, acknowledging outcomes, handing the
//! jobs of a dead worker to a live one); each job's code runs on a pool-core [`ThreadPool`], so
//! a panic there is caught by the pool. The user code the engine's runtime does run (decoding
//! the arguments, dropping a job the pool refused, the stop future) runs under `catch_unwind`
//! (`codec.rs`, here): a panic there once stopped the worker taking jobs.
//!
//! # Failure semantics
//!
//! - A task that panics or returns an error is a failed attempt; the engine runs it again until
//!   the submitter's `max_attempts` is used up, then its outcome is that failure. No retry storm:
//!   the bound is per job.
//! - An unknown task name or arguments that do not decode (serde refuses them, or their
//!   `Deserialize` panics) are refused at once (the engine's `AbortError`: no retry), with a
//!   typed error for the submitter. So is an output that does not encode: running the task
//!   again would give the same.
//! - A worker process that dies (SIGKILL) leaves its claimed jobs `Running`/`Queued`; another
//!   worker's heartbeat re-enqueues them once the dead one has missed `missed_heartbeats`
//!   heartbeats. The task runs again: at-least-once, so tasks must be idempotent.
//! - Graceful shutdown stops claiming, hands unstarted claimed jobs back to the queue, lets the
//!   running ones finish and acknowledges them, then joins the pool's threads.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use apalis::layers::WorkerBuilderExt;
use apalis::prelude::{AbortError, BackendExt, BoxDynError, Data, WorkerBuilder};
use futures::FutureExt;
use pool_core::sync::{Arc, AtomicU64, Ordering};
use pool_core::{drop_quietly, ProcessThreadShare, QuietDrop, TaskError, ThreadPool};

use crate::backend::{self, Store, WorkerStorage};
use crate::executor::DEFAULT_QUEUE;
use crate::wire::{Envelope, WireFailure};
use crate::{Registry, RemoteError};

/// The text of a failed attempt: the JSON record the submitter decodes.
#[derive(Debug)]
struct AttemptFailed(WireFailure);

impl fmt::Display for AttemptFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.encode())
    }
}

impl std::error::Error for AttemptFailed {}

/// What one worker did, counted by the worker itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Attempts that produced a value.
    pub succeeded: u64,
    /// Attempts that panicked or returned an error (each may be retried by the engine).
    pub failed: u64,
    /// Jobs refused without running: unknown task name or undecodable arguments.
    pub refused: u64,
}

#[derive(Default)]
struct Counters {
    succeeded: AtomicU64,
    failed: AtomicU64,
    refused: AtomicU64,
}

struct WorkerState {
    registry: Registry,
    pool: ThreadPool,
    counters: Counters,
}

impl fmt::Debug for WorkerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerState")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

/// The apalis handler: decode, run on the pool, report.
async fn handle(
    envelope: Envelope,
    state: Data<Arc<WorkerState>>,
) -> Result<serde_json::Value, BoxDynError> {
    let state: Arc<WorkerState> = Arc::clone(&state);
    let job = match state.registry.prepare(&envelope.task, envelope.args) {
        Ok(job) => job,
        Err(refused) => {
            state.counters.refused.fetch_add(1, Ordering::Relaxed);
            return Err(AbortError::new(AttemptFailed(refused)).into());
        }
    };
    let task = envelope.task;
    let outcome = match state.pool.submit(job) {
        Ok(handle) => handle.await,
        // Only after shutdown began: this attempt failed (it did not run), and the engine
        // offers the job again while attempts are left. The job holds the decoded arguments,
        // whose `Drop` is user code: not on the engine's runtime.
        Err(refused) => {
            drop_quietly(refused);
            Ok(Err(WireFailure::Failed {
                task: task.clone(),
                message: "the worker's pool was shutting down; the task did not run".into(),
            }))
        }
    };
    let failure = match outcome {
        Ok(Ok(value)) => {
            state.counters.succeeded.fetch_add(1, Ordering::Relaxed);
            return Ok(value);
        }
        Ok(Err(failure)) => failure,
        Err(TaskError::Panicked(message)) => WireFailure::Panicked { task, message },
        Err(e) => WireFailure::Failed {
            task,
            message: e.to_string(),
        },
    };
    state.counters.failed.fetch_add(1, Ordering::Relaxed);
    if matches!(failure, WireFailure::BadOutput { .. }) {
        // Running it again gives the same undecodable output.
        return Err(AbortError::new(AttemptFailed(failure)).into());
    }
    Err(AttemptFailed(failure).into())
}

/// The longest heartbeat: a day (the engine turns it into signed whole seconds; beyond that
/// range it read as negative, and every claimed job as orphaned at once).
const MAX_HEARTBEAT: Duration = Duration::from_secs(24 * 60 * 60);

/// The most heartbeats a worker may miss: a dead worker's jobs wait for `heartbeat` times this.
const MAX_MISSED_HEARTBEATS: usize = 1000;

/// The most jobs claimed per fetch (the engine sizes a buffer from it and sends it as a signed
/// 32-bit limit: `usize::MAX` overflowed there and stopped the worker).
const MAX_BATCH: usize = 1000;

/// Builds a [`Worker`].
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use pool_remote::{Registry, Worker};
///
/// let worker = Worker::builder("sqlite://jobs.db", Registry::new())
///     .threads(4)
///     .name("worker-a")
///     .heartbeat(Duration::from_secs(5))
///     .build()?;
/// # Ok::<(), pool_remote::RemoteError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
#[derive(Debug)]
pub struct RemoteWorkerBuilder {
    url: String,
    registry: Registry,
    queue: String,
    name: Option<String>,
    threads: Option<usize>,
    heartbeat: Duration,
    missed_heartbeats: usize,
    batch: usize,
    poll_interval: Duration,
}

impl RemoteWorkerBuilder {
    /// The queue to consume (default `"pool-remote"`, as executors submit to).
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// The worker's name in the engine (unique per live worker; default host-process-based).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Threads of the local pool (default: available parallelism).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// How often the worker tells the engine it is alive (default 5 s, within 1 s..=1 day). A
    /// dead worker's jobs go
    /// back to the queue after `heartbeat × missed_heartbeats` (whole seconds, as the engine
    /// stores them).
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = interval;
        self
    }

    /// Heartbeats a worker may miss before its jobs are re-enqueued (default 2, at most 1000).
    pub fn missed_heartbeats(mut self, missed: usize) -> Self {
        self.missed_heartbeats = missed;
        self
    }

    /// Jobs claimed per fetch (default 10, at most 1000). Claimed jobs cannot be cancelled by
    /// submitters;
    /// smaller batches keep priorities and cancellation sharper, larger ones cost fewer queries.
    pub fn batch(mut self, jobs: usize) -> Self {
        self.batch = jobs;
        self
    }

    /// How often an idle worker asks the queue for work (default 10 ms, at most a minute).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Connects to the backend and starts the local pool.
    ///
    /// # Errors
    ///
    /// [`RemoteError::Build`] for a bad setting, [`RemoteError::Unreachable`] when the backend
    /// cannot be reached, [`RemoteError::ProcessLimit`] when the process's pools already hold
    /// their limit of threads.
    pub fn build(self) -> Result<Worker, RemoteError> {
        RemoteError::check(
            (Duration::from_secs(1)..=MAX_HEARTBEAT).contains(&self.heartbeat),
            "heartbeat",
            format_args!(
                "must be within 1 s..={MAX_HEARTBEAT:?} (the engine stores whole seconds), got {:?}",
                self.heartbeat
            ),
        )?;
        RemoteError::check(
            (1..=MAX_MISSED_HEARTBEATS).contains(&self.missed_heartbeats),
            "missed_heartbeats",
            format_args!(
                "must be within 1..={MAX_MISSED_HEARTBEATS}, got {}",
                self.missed_heartbeats
            ),
        )?;
        RemoteError::check(
            (1..=MAX_BATCH).contains(&self.batch),
            "batch",
            format_args!("must be within 1..={MAX_BATCH}, got {}", self.batch),
        )?;
        backend::check_poll_interval(self.poll_interval)?;
        let name = self.name.unwrap_or_else(|| {
            format!(
                "pool-remote-{}-{}",
                std::process::id(),
                ulid::Ulid::generate()
            )
        });
        let mut pool = ThreadPool::builder().thread_name(format!("{name}-task"));
        if let Some(threads) = self.threads {
            pool = pool.threads(threads);
        }
        let pool = pool.build().map_err(|e| {
            if e.is_process_limit() {
                RemoteError::ProcessLimit {
                    limit: ThreadPool::process_thread_limit(),
                }
            } else {
                RemoteError::Build {
                    setting: "threads",
                    message: e.to_string(),
                }
            }
        })?;
        let (runtime, store) = backend::start(&self.url, &self.queue, format!("{name}-io"))?;
        Ok(Worker {
            name,
            engine: Some((runtime, store)),
            heartbeat: self.heartbeat,
            missed_heartbeats: self.missed_heartbeats,
            batch: self.batch,
            poll_interval: self.poll_interval,
            state: Arc::new(WorkerState {
                registry: self.registry,
                pool,
                counters: Counters::default(),
            }),
        })
    }
}

/// A worker process's engine loop: claims jobs from the queue and runs them on a local pool.
///
/// # Examples
///
/// ```no_run
/// use pool_remote::{BoxError, Registry, RemoteTask, Worker};
///
/// struct Square;
/// impl RemoteTask for Square {
///     const NAME: &'static str = "square";
///     type Args = u64;
///     type Output = u64;
///     fn run(&self, x: u64) -> Result<u64, BoxError> { Ok(x * x) }
/// }
///
/// let registry = Registry::new().register(Square);
/// let worker = Worker::builder("sqlite://jobs.db", registry).build()?;
/// let report = worker.run_until_signal()?; // until Ctrl-C or SIGTERM, then a graceful stop
/// println!("{report:?}");
/// # Ok::<(), pool_remote::RemoteError>(())
/// ```
pub struct Worker {
    name: String,
    /// The engine's runtime and connection: taken by `run_until`; shut down in the background
    /// by `Drop` for a worker never run (it may be dropped on a thread that drives an async
    /// runtime, where dropping a runtime panics).
    engine: Option<(tokio::runtime::Runtime, Store)>,
    heartbeat: Duration,
    missed_heartbeats: usize,
    batch: usize,
    poll_interval: Duration,
    state: Arc<WorkerState>,
}

/// The engine's runtime in the engine thread's closure. A thread the OS refuses drops its
/// closure on the calling thread, which may drive an async runtime, where dropping a runtime
/// panics: dropped unrun, this one shuts down in the background. The engine thread takes it out
/// (`into_inner`) and drops it as usual once its loop has ended.
struct EngineRuntime(Option<tokio::runtime::Runtime>);

impl EngineRuntime {
    fn into_inner(mut self) -> Option<tokio::runtime::Runtime> {
        self.0.take()
    }
}

impl Drop for EngineRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some((runtime, _store)) = self.engine.take() {
            runtime.shutdown_background();
        }
    }
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("name", &self.name)
            .field("registry", &self.state.registry)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A builder for a worker of the backend at `url` that runs the tasks in `registry`.
    pub fn builder(url: impl Into<String>, registry: Registry) -> RemoteWorkerBuilder {
        RemoteWorkerBuilder {
            url: url.into(),
            registry,
            queue: DEFAULT_QUEUE.to_owned(),
            name: None,
            threads: None,
            heartbeat: Duration::from_secs(5),
            missed_heartbeats: 2,
            batch: 10,
            poll_interval: Duration::from_millis(10),
        }
    }

    /// The worker's name in the engine.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs until Ctrl-C (SIGINT) or SIGTERM, then stops gracefully.
    ///
    /// # Errors
    ///
    /// [`RemoteError::Backend`] if the engine's loop failed (the backend went away).
    pub fn run_until_signal(self) -> Result<WorkerReport, RemoteError> {
        self.run_until(async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{signal, SignalKind};
                match signal(SignalKind::terminate()) {
                    Ok(mut term) => {
                        let ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
                        let term = std::pin::pin!(term.recv());
                        futures::future::select(ctrl_c, term).await;
                    }
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
        })
    }

    /// Runs until `stop` completes (or panics), then stops gracefully: no new claims,
    /// claimed-but-unstarted jobs go back to the queue, running ones finish and are
    /// acknowledged, the pool is joined.
    ///
    /// Blocks the calling thread, from any thread: the engine runs on a thread of its own, so a
    /// call made on a thread that drives an async runtime blocks it like any blocking call,
    /// rather than panicking as a nested `block_on` does.
    ///
    /// # Errors
    ///
    /// [`RemoteError::Backend`] if the engine's loop failed (the backend went away), or the OS
    /// refused its thread; [`RemoteError::ProcessLimit`] if the process's pools already hold
    /// their limit of threads. The pool is shut down either way.
    pub fn run_until<S>(self, stop: S) -> Result<WorkerReport, RemoteError>
    where
        S: Future<Output = ()> + Send + 'static,
    {
        let mut this = self;
        // The engine thread's share of the process's thread budget, taken before anything moves
        // into its closure, then the engine (only `run_until` takes it, and it consumes the
        // worker: never missing). Either refused: the pool is shut down as on every way out, the
        // stop future (user code) dropped quietly, and the worker dropped whole: its `Drop` shuts
        // the engine's runtime down in the background (this thread may drive an async runtime,
        // where dropping one panics).
        let taken = ProcessThreadShare::reserve()
            .map_err(|refused| RemoteError::ProcessLimit {
                limit: refused.limit(),
            })
            .and_then(|share| {
                let engine = this.engine.take().ok_or_else(|| RemoteError::Backend {
                    during: "run worker",
                    message: "the worker's engine was already taken".into(),
                })?;
                Ok((share, engine))
            });
        let (share, (runtime, store)) = match taken {
            Ok(taken) => taken,
            Err(refused) => {
                this.state.pool.shutdown();
                drop_quietly(stop);
                return Err(refused);
            }
        };
        let (name, state) = (std::mem::take(&mut this.name), Arc::clone(&this.state));
        let (heartbeat, missed_heartbeats) = (this.heartbeat, this.missed_heartbeats);
        let (batch, poll_interval) = (this.batch, this.poll_interval);
        drop(this);
        let concurrency = state.pool.threads().max(1) * 2;
        // The stop future is user code: one that panics asks for the stop all the same (its
        // payload dropped quietly), and the worker stops gracefully instead of unwinding out of
        // the engine's loop with jobs claimed and the pool not joined.
        // Its `Drop` is user code too: quiet whether the future ran or the thread never started.
        let stop = QuietDrop::new(Box::pin(stop));
        let stop = async move {
            let mut stop = stop;
            if let Err(payload) = AssertUnwindSafe(stop.as_mut()).catch_unwind().await {
                drop_quietly(payload);
            }
            Ok::<(), std::io::Error>(())
        };
        let engine_state = Arc::clone(&state);
        let thread_name = format!("{name}-engine");
        // One engine loop per backend type (apalis workers are generic over the storage), on a
        // thread of its own: `block_on`, and dropping the runtime, panic on a thread that
        // drives an async runtime, and this call may come from one.
        let runtime = EngineRuntime(Some(runtime));
        let engine = move || {
            // Never `None`: only this closure takes it out.
            let Some(runtime) = runtime.into_inner() else {
                return Ok(());
            };
            // The same loop whatever the storage's type.
            macro_rules! engine_loop {
                ($storage:expr) => {
                    runtime.block_on(
                        WorkerBuilder::new(name)
                            .backend($storage.poll_with_interval(poll_interval))
                            .concurrency(concurrency)
                            .data(engine_state)
                            .build(handle)
                            .run_until(stop),
                    )
                };
            }
            match store.storage(heartbeat, missed_heartbeats, batch) {
                WorkerStorage::Sqlite(storage) => engine_loop!(storage),
                #[cfg(feature = "postgres")]
                WorkerStorage::Postgres(storage) => engine_loop!(storage),
            }
        };
        // The engine thread counts against the process's thread limit, as the pool's workers
        // do (its share taken above): a thread past it could abort the process as it starts.
        let ran = share
            .spawn(std::thread::Builder::new().name(thread_name), engine)
            .map_err(|e| RemoteError::Backend {
                during: "start the worker's engine thread",
                message: e.to_string(),
            })
            .map(|engine| match engine.join() {
                Ok(ran) => ran,
                // Not user code (the engine's runtime runs none): re-raised where it was asked.
                Err(panic) => std::panic::resume_unwind(panic),
            });
        // Finish what the pool still holds (nothing, after a clean engine stop) and join it.
        state.pool.shutdown();
        ran?.map_err(|e| RemoteError::Backend {
            during: "run worker",
            message: e.to_string(),
        })?;
        Ok(WorkerReport {
            succeeded: state.counters.succeeded.load(Ordering::Relaxed),
            failed: state.counters.failed.load(Ordering::Relaxed),
            refused: state.counters.refused.load(Ordering::Relaxed),
        })
    }
}
