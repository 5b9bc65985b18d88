//! # pool-core
//!
//! The executor traits and a fast work-stealing thread pool that every policy crate of this
//! workspace builds on: task handles with cancellation (before start, exactly; while running,
//! cooperatively), panic isolation, statistics, runtime resizing and graceful shutdown.
//!
//! ```
//! use pool_core::ThreadPool;
//!
//! let pool = ThreadPool::builder().threads(4).thread_name("worker").build()?;
//! let handle = pool.submit(|| 2 + 2).expect("pool is running");
//! let queued = pool.submit(|| "maybe never").expect("pool is running");
//! queued.cancel(); // true if it had not started yet
//! assert_eq!(handle.join()?, 4);
//! pool.shutdown();
//! assert!(pool.stats().is_balanced());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## How the pieces plug in
//!
//! - [`Executor`] is the minimal object-safe trait: hand over a [`Job`], or get it back in
//!   [`Rejected`]. The DAG scheduler and the coalescer run on any `Executor`.
//! - [`QueuePolicy`] is the ready queue of a [`ThreadPool`]; `policy-priority` plugs its queue in
//!   with [`ThreadPoolBuilder::queue_policy`], keeping the same pool, handles and stats.
//! - [`ThreadPool::set_threads`] is what `policy-adaptive` drives.
//!
//! ## Work distribution
//!
//! Submissions from outside the pool go to a shared injector and start in submission order: with
//! one worker strictly, with N workers none starts more than N places out of order and none waits
//! while a worker is idle, so jobs that must run together (a barrier, a rendezvous) never deadlock
//! a pool that has room for them. Tasks submitted by a running task go to that worker's own deque,
//! where the newest runs next (depth-first, as in rayon), and idle workers steal the oldest. A
//! worker that waits on other tasks ([`TaskHandle::join`], [`ThreadPool::map_batch`], a DAG run)
//! runs queued tasks meanwhile ([`yield_now`]). Idle workers park on a condition
//! variable with a protocol that cannot lose a wake-up (see `pool/README.md` in the sources), so
//! an idle pool uses no CPU.
//!
//! ## When user code panics
//!
//! Every piece of user code the pool calls may panic: a task's closure; the values it captures,
//! returns or panics with, and their `Drop`; a waker that awaits a handle; start/stop hooks and the
//! panic handler; a custom [`QueuePolicy`]. None of these can kill a worker, lose a task, leave a
//! handle unresolved or unbalance [`stats`](ThreadPool::stats): a task's panic resolves its handle
//! with [`TaskError::Panicked`] (or goes to the panic handler for [`ThreadPool::spawn`]), and every
//! other panic is caught and dropped quietly (a panic payload whose own `Drop` panics included).
//! The helpers that do this are public ([`drop_quietly`], [`wake_quietly`], [`call_quietly`],
//! [`catch_panic`], [`OnExit`], and [`QuietDrop`] for user code a value holds) so the sibling
//! crates, and executors written by users, call user code the same way.
//!
//! Two things no library can catch: a stack overflow in a task aborts the process (Rust's
//! behaviour; size stacks with [`ThreadPoolBuilder::stack_size`]), and so does a panic while
//! already unwinding, which these helpers exist to prevent inside the pool.
//! ## Borrowing: `scope` and `join`
//!
//! [`ThreadPool::scope`] spawns closures that borrow from the caller's stack and returns once all
//! of them have finished; [`ThreadPool::join`] runs two closures, one of them on the pool:
//!
//! ```
//! let pool = pool_core::ThreadPool::new(2).unwrap();
//! let mut halves = [vec![4, 2, 3], vec![9, 7, 8]];
//! let [left, right] = &mut halves;
//! pool.scope(|s| {
//!     s.spawn(|_| left.sort());
//!     s.spawn(|_| right.sort());
//! });
//! let (min, max) = pool.join(|| halves[0][0], || halves[1][2]);
//! assert_eq!((min, max), (2, 9));
//! ```
//!
//! ## Send and Sync
//!
//! A submitted closure and its value cross threads, so both must be `Send`:
//!
//! ```compile_fail
//! let pool = pool_core::ThreadPool::new(1).unwrap();
//! let not_send = std::rc::Rc::new(5);
//! let _ = pool.submit(move || *not_send);
//! ```
//!
//! ```compile_fail
//! let pool = pool_core::ThreadPool::new(1).unwrap();
//! let _ = pool.submit(|| std::rc::Rc::new(5)); // the value would cross threads
//! ```
//!
//! A pool can be shared between threads (it is `Send + Sync`), and so can a handle:
//!
//! ```
//! fn shareable<T: Send + Sync>() {}
//! shareable::<pool_core::ThreadPool>();
//! shareable::<pool_core::TaskHandle<Vec<u8>>>();
//! ```
//!
//! ## Verification
//!
//! All synchronisation goes through one internal facade (`pool_core::sync`, public only so the
//! sibling crates and `loom-tests` share it; not part of the API), which switches to loom under
//! `--cfg loom`; the `loom-tests` crate model-checks the wake-up, cancellation, shutdown, resize and waker
//! protocols.

#![deny(missing_docs, missing_debug_implementations)]
#![warn(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod batch;
mod clock;
mod deque;
mod error;
mod executor;
mod policy;
mod pool;
mod scope;
mod share_count;
#[doc(hidden)]
pub mod sync;
mod task;
mod unwind;

pub use batch::BatchProgress;
pub use error::{
    CancelReason, JoinTimeoutError, PolicyRefused, PoolBuildError, ProcessLimitError, ResizeError,
    TaskError,
};
pub use executor::{Executor, InlineExecutor, Job, Priority, Rejected};
pub use policy::{FifoQueue, QueuePolicy, QueuedTask};
pub use pool::{
    spawn_here, yield_now, CountedThread, OldestWait, PoolStats, ProcessThreadShare, TaskOptions,
    ThreadPool, ThreadPoolBuilder, WorkerStats, Yield,
};
pub use scope::Scope;
pub use task::{CancelToken, ExecutorExt, TaskHandle, TaskId};
pub use unwind::{
    call_quietly, catch_panic, drop_quietly, panic_message, wake_quietly, OnExit, QuietDrop,
};
