//! # policy-priority
//!
//! Five priority levels for pool-core's [`ThreadPool`](pool_core::ThreadPool), with a starvation
//! guard. [`PriorityQueue`] plugs into the pool's queue plug point
//! ([`QueuePolicy`](pool_core::QueuePolicy)), so it is the same pool with the same
//! [`TaskHandle`](pool_core::TaskHandle)s, cancellation, stats, resize and shutdown; only the order
//! in which queued tasks start changes:
//!
//! - `Critical`, `High`, `Normal`, `Low`, `Idle`, most urgent first; FIFO within a level;
//! - a task that has waited longer than the [`Aging`] bound (one second by default, can be
//!   changed or turned off) is served ahead of newer higher-priority work, so background work is
//!   never starved by a steady stream of user-facing work;
//! - [`ThreadPool::raise_priority`](pool_core::ThreadPool::raise_priority) moves a queued task up
//!   (never down) by its handle;
//! - [`PriorityQueue::stats`] counts queued and completed tasks per level.
//!
//! ```
//! use policy_priority::{priority_pool, PrioritySubmit};
//! use pool_core::Priority;
//! use std::sync::mpsc;
//!
//! let (pool, queue) = priority_pool(1)?;
//! // Hold the only worker so the next three tasks queue up behind it.
//! let (release, gate) = mpsc::channel::<()>();
//! pool.submit(move || gate.recv().unwrap()).unwrap();
//!
//! let (log, order) = mpsc::channel();
//! let (l1, l2, l3) = (log.clone(), log.clone(), log);
//! let count = pool.submit_at(Priority::Idle, move || l1.send("word count").unwrap()).unwrap();
//! let save = pool.submit_at(Priority::Low, move || l2.send("auto-save").unwrap()).unwrap();
//! let render = pool.submit_at(Priority::High, move || l3.send("preview").unwrap()).unwrap();
//! // The auto-save became urgent: raise it above the preview.
//! assert!(pool.raise_priority(&save, Priority::Critical));
//!
//! release.send(()).unwrap();
//! for handle in [count, save, render] {
//!     handle.join().unwrap();
//! }
//! let ran: Vec<_> = order.try_iter().collect();
//! assert_eq!(ran, ["auto-save", "preview", "word count"]);
//!
//! pool.shutdown();
//! assert!(pool.stats().is_balanced());
//! assert_eq!(queue.stats().level(Priority::Critical).completed, 1);
//! # Ok::<(), pool_core::PoolBuildError>(())
//! ```
//!
//! ## How it plugs in
//!
//! [`priority_pool`] builds a pool with a [`PriorityQueue`] and hands back a clone of the queue
//! for its statistics; or pass `queue.clone()` to
//! [`ThreadPoolBuilder::queue_policy`](pool_core::ThreadPoolBuilder::queue_policy) yourself.
//! [`PrioritySubmit::submit_at`] is `submit_with(TaskOptions::new().priority(p), f)`;
//! [`PrioritySubmit::spawn_at`] queues fire-and-forget work at a level without a handle. Crates
//! that only hold an [`Executor`](pool_core::Executor) pass a level with `execute_with_priority`.
//!
//! The policy keeps one global queue (no per-worker deques, no stealing), because a worker's
//! own deque would let its `Idle` work start before another thread's `Critical` work. The queue
//! itself, [`LevelQueue`], is five lock-free FIFOs (crossbeam-deque injectors) and a bitmap of
//! the non-empty levels, with a coarse clock for the aging stamps; `README.md` beside the
//! sources describes the protocol and the race each step closes.

#![deny(missing_docs, missing_debug_implementations)]
#![warn(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod clock;
mod config;
mod injector;
mod level_queue;
mod levels;
mod queue;
mod stats;
mod submit;

pub use config::{Aging, ConfigError};
pub use level_queue::LevelQueue;
pub use queue::PriorityQueue;
pub use stats::{LevelStats, PriorityStats};
pub use submit::{priority_pool, PrioritySubmit};
