//! # dag-scheduler
//!
//! Dependency-graph execution on any [`pool_core::Executor`]: a build or test runner hands over a
//! graph of named jobs, and each runs the moment its inputs are ready.
//!
//! ```
//! use dag_scheduler::{Graph, Outcome};
//! use pool_core::ThreadPool;
//!
//! let mut builder = Graph::builder();
//! let source = builder.node("fetch", |_| String::from("fn main() {}")).key();
//! let object = builder
//!     .node("compile", move |cx| cx.get(source).map_or(0, |s| s.len()))
//!     .after(source)
//!     .key();
//! builder.try_node("lint", |_| Err::<(), _>("unused import")).after("fetch");
//! builder.node("package", |_| ()).after("lint").after("compile");
//! let graph = builder.build()?; // validates: cycles, unknown or duplicate names
//!
//! let pool = ThreadPool::new(2)?;
//! let report = graph.run(&pool);
//! assert_eq!(report.output(object), Some(&12));
//! assert_eq!(report.outcome("package"), Some(Outcome::Skipped { because: "lint".into() }));
//! println!("{report}");
//! std::fs::write(std::env::temp_dir().join("run.trace.json"), report.to_chrome_trace())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## How it runs
//!
//! - No polling: each node has an atomic count of unfinished dependencies. The completion that
//!   takes a count to zero releases the node; the first node a completion releases runs in place
//!   on the same thread (a chain costs no executor round trip), the others go to the executor
//!   with [`Executor::execute_with_priority`](pool_core::Executor::execute_with_priority):
//!   nodes on a longest remaining chain at `High`, the rest at `Normal`.
//! - The run's completion wakes the waiting caller (condition variable or waker), once.
//! - A failed or panicked node skips its transitive dependents (reported `Skipped`, naming the
//!   failed node); independent branches run on. See [`NodeBuilder::run_even_if_failed`] and
//!   [`RunOptions::mark_failed`].
//! - [`RunHandle::cancel`] cancels the nodes that have not started; running ones see
//!   [`Context::is_cancelled`].
//! - A refused, dropped or panicking job hand-over (the executor shut down, or is broken) cancels
//!   the rest of the run; it never hangs. A blocking [`Graph::run`] returns, or unwinds, only
//!   after the last job let go of the borrowed executor.
//! - User code may panic anywhere (a node, the `Drop` of its output or of a panic payload, a
//!   clock, a waker, an executor): the node fails or the call is ignored, and neither the run
//!   nor the worker is harmed.
//! - Waiting for a run on a worker of a [`pool_core::ThreadPool`] runs the pool's queued tasks
//!   meanwhile, so graphs run and awaited from inside tasks of their own pool do not deadlock it.
//!
//! ## Build once, run many times
//!
//! Building validates and lays the graph out (names indexed, successors in flat arrays): of the
//! order of a hundred nanoseconds per node with [`GraphBuilder::unnamed_node`], more with names,
//! which is more than one run of small nodes costs. A [`Graph`] is immutable and cheap to clone, so a program that runs the same work
//! again (a build tool's rebuild, a pipeline per request, a simulation step) builds it once and
//! runs it as often as it likes, even concurrently; each run only resets 24 bytes of state per
//! node (40 with timing), and a finished run's state array is reused by the next one. Inputs
//! that change between runs come in through captured shared state, not by rebuilding.
//!
//! ```
//! use dag_scheduler::{Graph, RunOptions};
//! use pool_core::ThreadPool;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//!
//! let input = Arc::new(AtomicU64::new(0));
//! let mut builder = Graph::builder();
//! let read = {
//!     let input = Arc::clone(&input);
//!     builder.node("read", move |_| input.load(Ordering::Relaxed)).key()
//! };
//! let double = builder.node("double", move |cx| cx.get(read).map_or(0, |v| v * 2)).after(read).key();
//! let graph = builder.build()?; // paid once
//!
//! let pool = ThreadPool::new(2)?;
//! for step in 1..=100 {
//!     input.store(step, Ordering::Relaxed);
//!     // Timing off: no clock reads, 24 B of state per node.
//!     let report = graph.run_with(&pool, RunOptions::new().timing(false))?;
//!     assert_eq!(report.output(double), Some(&(2 * step)));
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The protocol is written down in `src/README.md`.

#![deny(missing_docs, missing_debug_implementations)]
#![warn(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

// Bottom to top: each group imports only from the groups above it (and itself), never below.
// Plain data:
mod error;
mod key;
mod names;
mod options;
mod state;

// What a node sees, and the validated graph it reads (topology below context below inner):
mod topology;

mod context;

mod inner;

mod dot;

// The run protocol, then what the caller holds:
mod run;

mod report;

mod handle;

// The public face:
mod graph;

mod builder;

pub use builder::{GraphBuilder, NodeBuilder};
pub use context::Context;
pub use error::{GraphBuildError, RunError};
pub use graph::Graph;
pub use handle::RunHandle;
pub use key::{Dependency, NodeKey, NodeName};
pub use options::RunOptions;
pub use report::{NodeReport, Outcome, Report, Summary};
