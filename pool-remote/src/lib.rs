//! Run the same prioritized jobs on worker processes, on this machine or many, through the
//! [apalis](https://docs.rs/apalis) job engine.
//!
//! Closures cannot cross machines, so remote work is a [`RemoteTask`]: a stable name, serde
//! arguments and output, and a `run` function. Worker binaries link a [`Registry`] of tasks and
//! run a [`Worker`], which takes jobs from the engine's queue and executes them on a local
//! `pool_core::ThreadPool`. Submitters use a [`RemoteExecutor`]: it enqueues with a priority
//! (pool-core's five levels map onto the engine's) and returns a [`RemoteHandle`] to join,
//! await, or cancel before a worker claims it.
//!
//! The default backend is SQLite (feature `sqlite`, on by default): one file, no server, shared
//! by the worker processes of one machine. For several machines, enable `postgres`.
//!
//! Delivery is **at-least-once**: a worker killed in the middle of a task cannot report it, and
//! the engine gives the task to another worker. Tasks must be idempotent (see [`RemoteTask`]).
//!
//! # Examples
//!
//! ```
//! use pool_core::Priority;
//! use pool_remote::{BoxError, Registry, RemoteExecutor, RemoteTask, Worker};
//!
//! struct Square;
//! impl RemoteTask for Square {
//!     const NAME: &'static str = "square";
//!     type Args = u64;
//!     type Output = u64;
//!     fn run(&self, x: u64) -> Result<u64, BoxError> {
//!         Ok(x * x)
//!     }
//! }
//!
//! # let dir = std::env::temp_dir().join(format!("pool-remote-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! # let url = format!("sqlite://{}", dir.join("jobs.db").display());
//! // Submitter side (any process sharing the backend).
//! let remote = RemoteExecutor::builder(&url).build()?;
//! let handle = remote.submit_at::<Square>(Priority::High, 12)?;
//!
//! // Worker side (usually another process): runs until told to stop.
//! let worker = Worker::builder(&url, Registry::new().register(Square)).threads(2).build()?;
//! let (stop, stopped) = std::sync::mpsc::channel::<()>();
//! let running = std::thread::spawn(move || {
//!     worker.run_until(async move {
//!         tokio::task::spawn_blocking(move || stopped.recv()).await.ok();
//!     })
//! });
//!
//! assert_eq!(handle.join()?, 144);
//! stop.send(()).unwrap();
//! running.join().unwrap()?;
//! # Ok::<(), pool_remote::RemoteError>(())
//! ```
#![deny(missing_docs, missing_debug_implementations)]
#![warn(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

// The embedded backend is always built: the postgres feature adds a server backend beside it.
#[cfg(not(feature = "sqlite"))]
compile_error!("pool-remote needs its `sqlite` feature (PostgreSQL comes in addition to it)");

mod backend;
mod codec;
mod error;
mod executor;
mod graph;
mod handle;
mod task;
mod wire;
mod worker;

pub use error::RemoteError;
pub use executor::{
    RemoteExecutor, RemoteExecutorBuilder, RemoteStats, DEFAULT_QUEUE, MAX_ATTEMPTS,
};
pub use graph::{
    RemoteGraph, RemoteGraphBuilder, RemoteGraphError, RemoteReport, CANCEL_CHECK, DEFAULT_WAITERS,
};
pub use handle::RemoteHandle;
pub use task::{BoxError, Registry, RemoteTask};
pub use worker::{RemoteWorkerBuilder, Worker, WorkerReport};
