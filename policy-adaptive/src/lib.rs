//! # policy-adaptive
//!
//! A worker count that follows the work. [`AdaptivePool`] attaches a small controller thread to
//! a pool-core [`ThreadPool`](pool_core::ThreadPool) the user configures (any queue policy, such
//! as policy-priority's, hooks and names: [`AdaptivePoolBuilder::pool`]), and implements
//! [`Executor`](pool_core::Executor), so coalescers and DAG runs can use it. Every `interval`
//! the controller reads a [`Snapshot`] of signals, asks the pure function [`decide`] for a
//! target and resizes the pool; a submission that finds every worker busy with work queued asks
//! for an early decision ([`grows_on_demand`]). Threads are added
//! while workers are blocked (I/O) with a backlog, trimmed when they only compete for the cores,
//! added one at a time when the pool starves (a task waiting on a child queued behind it), and
//! retired after a keep-alive when idle.
//!
//! ```
//! use policy_adaptive::AdaptivePool;
//! use std::time::Duration;
//!
//! let pool = AdaptivePool::builder().min(1).max(64).build()?;
//! // Blocking work: the controller sees the workers blocked with a backlog and grows the pool.
//! let handles: Vec<_> = (0..64)
//!     .map(|_| pool.submit(|| std::thread::sleep(Duration::from_millis(5))).unwrap())
//!     .collect();
//! for handle in handles {
//!     handle.join().unwrap();
//! }
//! for event in pool.history() {
//!     println!("{:>6.2?} {:>3} -> {:<3} {}", event.at, event.from, event.to, event.reason);
//! }
//! pool.shutdown(); // stops the controller, runs what is queued, joins every thread
//! assert!(pool.stats().is_balanced());
//! # Ok::<(), policy_adaptive::AdaptiveBuildError>(())
//! ```
//!
//! ## Signals
//!
//! [`PoolSignals`] (the default) reads the pool's counters and each worker's busy time from
//! pool-core (no system call), the CPU clocks of the busy workers (one `clock_gettime` each, at
//! most 8 per tick: busy time the workers spent off the CPU was blocked, which tells blocking
//! I/O from CPU work), a bounded `schedstat` sample when the host's CPU may be full (to tell
//! blocked workers from ones queued for a CPU), and from `sysinfo` the available memory, the
//! cgroup memory limit and the host CPU use. Host CPU includes other processes, so it only
//! slows growth; it never shrinks the pool. A tick's cost hardly grows with the pool (see
//! [`Config::interval`] for the measured figure). Tests and simulations supply their own
//! [`Signals`].
//!
//! ## Policies
//!
//! [`decide`] combines threshold rules (grow on backlog with blocked workers and spare CPU,
//! shrink after the keep-alive when idle, no growth under memory pressure, straight to the core
//! count when every worker is busy below it, trim when the workers saturate the cores),
//! starvation detection and a throughput-seeking hill climber.
//! Every default of [`Config`] comes with its reason. The protocol (controller lifecycle, resize
//! vs shutdown) is written down in `src/README.md`.

#![deny(missing_docs, missing_debug_implementations)]
#![warn(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod config;
mod controller;
mod decide;
mod midway;
mod proc;
mod signals;
mod snapshot;
mod stretch;

pub use config::{Config, ConfigError};
pub use controller::{
    AdaptiveBuildError, AdaptivePool, AdaptivePoolBuilder, EarlyAsk, ScalingEvent,
};
pub use decide::{decide, grows_on_demand, ControllerState, Decision, Reason};
pub use proc::WorkerThreads;
pub use signals::PoolSignals;
pub use snapshot::{Memory, Signals, Snapshot, WorkerStates};
