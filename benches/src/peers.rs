//! The peer layer: our pool and each peer pool (rayon-core, threadpool, tokio's blocking pool,
//! rusty_pool) wrapped once, behind one enum, so that each workload is written once.
//!
//! Every pool gets the same number of threads and a thread-name prefix (the idle-CPU row finds
//! a pool's threads by name). Dispatch is a `match` per submission: a perfectly predicted
//! branch, the same for every system. [`Pool`] also implements [`pool_core::Executor`], which
//! proves the plug point wraps other runtimes and lets the coalescer and DAG workloads run on
//! any peer:
//!
//! ```
//! use benches::peers::{Kind, Pool};
//! use pool_core::ExecutorExt;
//!
//! for kind in Kind::ALL {
//!     let pool = Pool::build(kind, 2, "doc-");
//!     let handle = ExecutorExt::submit(&pool, || 6 * 7).unwrap();
//!     assert_eq!(handle.join(), Ok(42), "{}", kind.name());
//!     pool.close();
//! }
//! ```

use std::time::Duration;

use pool_core::{Executor, Job, Priority, Rejected, TaskHandle, ThreadPool};

/// How long a round may take before the benchmark gives up on it (lost tasks, a hang).
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// A system offering "run this closure, no result wanted".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `pool_core::ThreadPool::spawn`.
    Ours,
    /// `rayon_core::ThreadPool::spawn`.
    Rayon,
    /// `threadpool::ThreadPool::execute`.
    Threadpool,
    /// `tokio::runtime::Runtime::spawn_blocking`, with `max_blocking_threads` = the thread count.
    TokioBlocking,
    /// `rusty_pool::ThreadPool::execute`, core size = max size = the thread count.
    RustyPool,
}

impl Kind {
    /// Every system that can take work from an outside thread.
    pub const ALL: [Kind; 5] = [
        Kind::Ours,
        Kind::Rayon,
        Kind::Threadpool,
        Kind::TokioBlocking,
        Kind::RustyPool,
    ];

    /// The system's label in the rows.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ours => "pool-core spawn",
            Kind::Rayon => "rayon-core spawn",
            Kind::Threadpool => "threadpool execute",
            Kind::TokioBlocking => "tokio spawn_blocking",
            Kind::RustyPool => "rusty_pool execute",
        }
    }

    /// Whether this is one of our pools.
    pub fn is_ours(self) -> bool {
        self == Kind::Ours
    }

    /// A short tag for thread names (the kernel keeps 15 bytes of a thread's name).
    pub fn tag(self) -> &'static str {
        match self {
            Kind::Ours => "ours",
            Kind::Rayon => "rayon",
            Kind::Threadpool => "tpool",
            Kind::TokioBlocking => "tokio",
            Kind::RustyPool => "rusty",
        }
    }
}

/// The thread bounds of an elastic peer: `core` threads kept, up to `max` under load, an extra
/// thread leaving after `keep_alive` idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elastic {
    /// Threads kept when idle (tokio: runtime workers, which take no blocking job).
    pub core: usize,
    /// Threads at most (tokio: blocking threads at most).
    pub max: usize,
    /// How long an extra thread waits for work before it exits.
    pub keep_alive: Duration,
}

impl Elastic {
    /// tokio's default blocking pool beside `core` runtime workers: up to 512 threads, 10 s
    /// keep-alive (tokio's defaults).
    pub fn tokio_default(core: usize) -> Elastic {
        Elastic {
            core,
            max: 512,
            keep_alive: Duration::from_secs(10),
        }
    }

    /// Fixed bounds: `threads` threads (tokio: `threads` workers and up to `threads` blocking
    /// threads), with tokio's default keep-alive for its blocking threads.
    pub fn fixed(threads: usize) -> Elastic {
        Elastic {
            core: threads,
            max: threads,
            keep_alive: Duration::from_secs(10),
        }
    }
}

/// A running pool of one of the [`Kind`]s.
///
/// Dropping it joins its threads where the crate allows (ours, tokio) and waits for rusty_pool's
/// work; rayon's and threadpool's threads exit on their own after the drop. None of that
/// promises the threads are gone from `/proc` when the drop returns: a row that counts the
/// process's threads waits for them by name (the adaptive rows' `await_exit`).
#[allow(missing_debug_implementations)] // the peers' pools are not all `Debug`
pub enum Pool {
    /// Ours: the FIFO pool, or any pool built with a queue policy (the priority pool).
    Ours(ThreadPool),
    /// `rayon_core::ThreadPool`.
    Rayon(rayon_core::ThreadPool),
    /// `threadpool::ThreadPool`.
    Threadpool(threadpool::ThreadPool),
    /// A tokio multi-thread runtime; jobs go to its blocking pool.
    Tokio(tokio::runtime::Runtime),
    /// `rusty_pool::ThreadPool`, joined on drop.
    Rusty(RustyPool),
}

/// rusty_pool's pool, joined when dropped: its own drop lets the work run on later, and only
/// the consuming `shutdown_join` waits for it (hence the `Option`, taken by `Drop`). It waits
/// for the work, not for the threads, which exit after it returns.
#[allow(missing_debug_implementations)] // rusty_pool's pool is not `Debug`
pub struct RustyPool(Option<rusty_pool::ThreadPool>);

impl RustyPool {
    #[inline]
    fn execute<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        // `None` only inside `drop`, which has `&mut self`: no job can arrive then.
        if let Some(pool) = &self.0 {
            pool.execute(f);
        }
    }
}

impl Drop for RustyPool {
    fn drop(&mut self) {
        if let Some(pool) = self.0.take() {
            pool.shutdown_join();
        }
    }
}

impl Pool {
    /// A pool of `kind` with `threads` threads named `name…`.
    ///
    /// # Panics
    ///
    /// If the pool cannot be built (out of threads): the benchmark cannot go on.
    pub fn build(kind: Kind, threads: usize, name: &str) -> Pool {
        match kind {
            Kind::Ours => Pool::Ours(our_pool(threads, name)),
            Kind::Rayon => Pool::Rayon(rayon_pool(threads, name)),
            Kind::Threadpool => Pool::Threadpool(
                threadpool::Builder::new()
                    .num_threads(threads)
                    .thread_name(name.to_string())
                    .build(),
            ),
            Kind::TokioBlocking => tokio_pool(Elastic::fixed(threads), name),
            Kind::RustyPool => rusty_pool(Elastic::fixed(threads), name),
        }
    }

    /// tokio's blocking pool as an elastic peer: `bounds.core` runtime workers, blocking
    /// threads started on demand up to `bounds.max`.
    ///
    /// # Examples
    ///
    /// ```
    /// use benches::peers::{Elastic, Pool};
    /// use pool_core::ExecutorExt;
    ///
    /// let pool = Pool::tokio_elastic(Elastic::tokio_default(1), "doc-tokio-");
    /// assert_eq!(ExecutorExt::submit(&pool, || 7).unwrap().join(), Ok(7));
    /// drop(pool); // joins the blocking threads
    /// ```
    pub fn tokio_elastic(bounds: Elastic, name: &str) -> Pool {
        tokio_pool(bounds, name)
    }

    /// rusty_pool as an elastic peer: `bounds.core` threads kept, up to `bounds.max`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use benches::peers::{Elastic, Pool};
    /// use pool_core::ExecutorExt;
    ///
    /// let bounds = Elastic { core: 1, max: 4, keep_alive: Duration::from_secs(2) };
    /// let pool = Pool::rusty_elastic(bounds, "doc-rusty-");
    /// assert_eq!(ExecutorExt::submit(&pool, || 7).unwrap().join(), Ok(7));
    /// drop(pool); // joins the threads
    /// ```
    pub fn rusty_elastic(bounds: Elastic, name: &str) -> Pool {
        rusty_pool(bounds, name)
    }

    /// Hands `f` to the pool, fire-and-forget.
    #[inline]
    pub fn spawn<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        match self {
            Pool::Ours(pool) => pool.spawn(f).expect("pool-core refused a job"),
            Pool::Rayon(pool) => pool.spawn(f),
            Pool::Threadpool(pool) => pool.execute(f),
            Pool::Tokio(runtime) => drop(runtime.spawn_blocking(f)),
            Pool::Rusty(pool) => pool.execute(f),
        }
    }

    /// Hands `f` to the pool at `priority`: our pools take the level (a priority pool orders
    /// by it), the peers have no levels and ignore it.
    #[inline]
    pub fn spawn_at<F>(&self, priority: Priority, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        match self {
            Pool::Ours(pool) => pool
                .spawn_with_priority(priority, f)
                .expect("pool-core refused a job"),
            _ => self.spawn(f),
        }
    }

    /// `pool_core::ThreadPool::submit`, keeping the handle.
    ///
    /// # Panics
    ///
    /// If this is not our pool.
    #[inline]
    pub fn submit<F>(&self, f: F) -> TaskHandle<()>
    where
        F: FnOnce() + Send + 'static,
    {
        match self {
            Pool::Ours(pool) => pool.submit(f).expect("pool-core refused a job"),
            _ => unreachable!("submit with a handle is pool-core's"),
        }
    }

    /// Shuts the pool down and joins its threads where the crate offers it (rayon's threads
    /// exit on their own after the drop; threadpool's queue is waited for).
    pub fn close(self) {
        match self {
            Pool::Ours(pool) => pool.shutdown(),
            Pool::Rayon(pool) => drop(pool),
            Pool::Threadpool(pool) => pool.join(),
            Pool::Tokio(runtime) => runtime.shutdown_timeout(TIMEOUT),
            Pool::Rusty(pool) => drop(pool),
        }
    }
}

/// Our FIFO pool with `threads` threads named `name…` (also what the internal-spawn rows hold
/// in an `Arc`).
///
/// # Panics
///
/// If the pool cannot be built.
pub fn our_pool(threads: usize, name: &str) -> ThreadPool {
    ThreadPool::builder()
        .threads(threads)
        .thread_name(name)
        .build()
        .expect("pool-core pool")
}

/// rayon-core's pool with `threads` threads named `name…` (also what the hand-made rayon scope
/// of the DAG rows and the internal-spawn rows run on).
///
/// # Panics
///
/// If the pool cannot be built.
pub fn rayon_pool(threads: usize, name: &str) -> rayon_core::ThreadPool {
    let name = name.to_string();
    rayon_core::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("{name}{i}"))
        .build()
        .expect("rayon pool")
}

/// A tokio runtime of `bounds.core` workers whose blocking pool is the peer.
fn tokio_pool(bounds: Elastic, name: &str) -> Pool {
    Pool::Tokio(tokio_runtime(bounds, name))
}

/// A tokio multi-thread runtime: `bounds.core` async workers (what the internal-spawn rows'
/// `tokio::spawn` runs on), up to `bounds.max` blocking threads named `name`.
///
/// # Panics
///
/// If the runtime cannot be built.
pub fn tokio_runtime(bounds: Elastic, name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(bounds.core)
        .max_blocking_threads(bounds.max)
        .thread_keep_alive(bounds.keep_alive)
        .thread_name(name)
        .build()
        .expect("tokio runtime")
}

fn rusty_pool(bounds: Elastic, name: &str) -> Pool {
    Pool::Rusty(RustyPool(Some(
        rusty_pool::Builder::new()
            .core_size(bounds.core)
            .max_size(bounds.max)
            .keep_alive(bounds.keep_alive)
            .name(name.to_string())
            .build(),
    )))
}

/// Every peer as a pool-core executor: a job handed to a peer is never refused (the peers have
/// no refusal; `close` consumes the pool, so no job arrives after it).
impl Executor for Pool {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        match self {
            Pool::Ours(pool) => pool.execute(job),
            _ => {
                self.spawn(job);
                Ok(())
            }
        }
    }

    fn execute_with_priority(&self, job: Job, priority: Priority) -> Result<(), Rejected<Job>> {
        match self {
            Pool::Ours(pool) => pool.execute_with_priority(job, priority),
            _ => self.execute(job),
        }
    }

    fn honors_priority(&self) -> bool {
        match self {
            Pool::Ours(pool) => pool.honors_priority(),
            _ => false,
        }
    }
}
