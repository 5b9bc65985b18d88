//! # policy-coalesce
//!
//! Keyed coalescing of submissions on top of any [`pool_core::Executor`]: work that carries the
//! same key is merged, so only the latest request runs. Made for the editor whose every
//! keystroke asks for a preview render, where only the newest text matters.
//!
//! ```
//! use policy_coalesce::Coalescer;
//! use pool_core::ThreadPool;
//! use std::sync::mpsc;
//!
//! let pool = ThreadPool::new(1).unwrap();
//! let (release, gate) = mpsc::channel::<()>();
//! pool.spawn(move || gate.recv().unwrap()).unwrap(); // keep the worker busy for the demo
//!
//! let previews = Coalescer::builder(pool).build()?;
//! let handles: Vec<_> = ["h", "he", "hel", "hell", "hello"]
//!     .into_iter()
//!     .map(|text| previews.submit("doc-1", move || text.to_uppercase()).unwrap())
//!     .collect();
//! release.send(()).unwrap();
//! for handle in handles {
//!     assert_eq!(*handle.join().unwrap(), "HELLO"); // one render, the latest text
//! }
//! assert_eq!(previews.stats().executed, 1);
//! # Ok::<(), policy_coalesce::CoalesceBuildError>(())
//! ```
//!
//! ## The rules
//!
//! - A key submitted while its execution is **pending** (queued, not started): the new closure
//!   replaces the pending one, the execution keeps its place in the executor's queue, and every
//!   submitter holds a [`CoalescedHandle`] to it (same [`TaskId`](pool_core::TaskId)).
//! - A key submitted while its execution is **running**: one follow-up waits behind it with the
//!   latest closure, and starts when the running one finishes (one execution per key at a time).
//!   [`Mode::Replace`] also asks the running one to stop; [`Mode::Keep`] drops the newcomer.
//! - [`CoalescedHandle::cancel`] detaches one submitter; the execution is cancelled when every
//!   live handle has cancelled. [`Coalescer::cancel_key`] cancels for everyone.
//! - Every sharer gets the real outcome: the value as an `Arc<T>`, or the panic, or why it did not
//!   run; each can tell whether its own closure ran ([`CoalescedHandle::ran_my_closure`]).
//! - On an executor with priorities, an execution runs at the highest priority of its submitters:
//!   a higher-priority joiner sends one more job at its level, and the first job reached runs it.
//! - Keys leave the map when they have nothing pending or running.
//! - User code may panic anywhere (closures, their captures and values, keys' `Hash`/`Eq`/`Drop`,
//!   wakers, the executor): no such panic unwinds into a worker, strands a handle, leaves a key
//!   dead or unbalances [`CoalesceStats`]. Only the submitter's own key's `Hash`/`Eq` panic
//!   reaches it, before anything is counted. Keys are never cloned.
//!
//! The slot protocol (states, races, and which step closes which race) is written down in
//! `src/README.md`.

#![deny(missing_docs, missing_debug_implementations)]
#![warn(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod coalescer;
mod error;
mod exec;
mod handle;
mod keymap;
mod options;
mod slot;
mod stats;

pub use coalescer::{Coalescer, CoalescerBuilder};
pub use error::{CoalesceBuildError, CoalesceCancelReason, CoalesceError};
pub use exec::CoalesceCancelToken;
pub use handle::{CoalesceJoinTimeoutError, CoalescedHandle};
pub use options::{Mode, SubmitOptions};
pub use stats::{CoalesceStats, KeyStats};
