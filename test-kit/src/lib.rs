//! Helpers shared by the integration tests of every crate in the workspace (not published).
//!
//! Before this crate, each crate's `tests/common` (and several test files) carried its own copy of
//! a worker gate, an order log, a panic-silencing hook, a panicking `Drop` and a handful of
//! hand-made executors; the copies drifted. A crate's tests take this as a dev-dependency:
//!
//! ```
//! use pool_core::{ExecutorExt, ThreadPool};
//! use test_kit::{Deferred, Log, WorkerGate, PATIENCE};
//!
//! // Hold the only worker, queue two tasks behind it, release it: they run in order.
//! let pool = ThreadPool::new(1).unwrap();
//! let gate = WorkerGate::occupy(&pool, 1);
//! let log = Log::default();
//! for id in [1, 2] {
//!     let log = log.clone();
//!     pool.spawn(move || log.push(id)).unwrap();
//! }
//! gate.open();
//! assert!(pool.wait_idle(PATIENCE));
//! assert_eq!(log.take(), [1, 2]);
//!
//! // An executor that keeps jobs until the test runs them.
//! let deferred = Deferred::default();
//! let handle = deferred.submit(|| 6 * 7).unwrap();
//! assert_eq!(deferred.run_all(), 1);
//! assert_eq!(handle.join(), Ok(42));
//! ```
//!
//! Every wait here is for an event, bounded by [`PATIENCE`], so a regression fails a test instead
//! of hanging it. The loom models keep their own helpers: they must run on loom's threads and
//! synchronise through loom's types.

#![deny(missing_docs, missing_debug_implementations)]
#![warn(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod alone;
mod executors;
mod gates;
mod hostile;
mod log;
mod patience;

pub use alone::run_alone;
pub use executors::{Budget, Deferred, Dropping, Panicking, PanicsOn, Recording, Refusing};
pub use gates::{Latch, WorkerGate};
pub use hostile::{no_unwind, quiet_panics, Bomb, Fuse};
pub use log::Log;
pub use patience::{eventually, within_patience, PATIENCE};
