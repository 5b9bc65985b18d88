//! The pools under comparison behind one enum, so that each workload is written once.
//!
//! Every pool gets the same number of threads and a thread-name prefix (the idle-CPU row finds
//! a pool's threads by name). Dispatch is a `match` per submission: a perfectly predicted
//! branch, the same for every system.

use std::time::Duration;

use pool_core::{TaskHandle, ThreadPool};

/// How long a round may take before the benchmark gives up on it (lost tasks, a hang).
pub(crate) const TIMEOUT: Duration = Duration::from_secs(120);

/// A system offering "run this closure, no result wanted".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
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
    pub(crate) const ALL: [Kind; 5] = [
        Kind::Ours,
        Kind::Rayon,
        Kind::Threadpool,
        Kind::TokioBlocking,
        Kind::RustyPool,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Ours => "pool-core spawn",
            Kind::Rayon => "rayon-core spawn",
            Kind::Threadpool => "threadpool execute",
            Kind::TokioBlocking => "tokio spawn_blocking",
            Kind::RustyPool => "rusty_pool execute",
        }
    }

    pub(crate) fn is_ours(self) -> bool {
        self == Kind::Ours
    }

    /// A short tag for thread names (the kernel keeps 15 bytes of a thread's name).
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Kind::Ours => "ours",
            Kind::Rayon => "rayon",
            Kind::Threadpool => "tpool",
            Kind::TokioBlocking => "tokio",
            Kind::RustyPool => "rusty",
        }
    }
}

/// A running pool of one of the [`Kind`]s.
pub(crate) enum Pool {
    Ours(ThreadPool),
    Rayon(rayon_core::ThreadPool),
    Threadpool(threadpool::ThreadPool),
    Tokio(tokio::runtime::Runtime),
    Rusty(rusty_pool::ThreadPool),
}

impl Pool {
    /// A pool of `kind` with `threads` threads named `name…`.
    ///
    /// # Panics
    ///
    /// If the pool cannot be built (out of threads): the benchmark cannot go on.
    pub(crate) fn build(kind: Kind, threads: usize, name: &str) -> Pool {
        let name = name.to_string();
        match kind {
            Kind::Ours => Pool::Ours(
                ThreadPool::builder()
                    .threads(threads)
                    .thread_name(name)
                    .build()
                    .expect("pool-core pool"),
            ),
            Kind::Rayon => Pool::Rayon(
                rayon_core::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(move |i| format!("{name}{i}"))
                    .build()
                    .expect("rayon pool"),
            ),
            Kind::Threadpool => Pool::Threadpool(
                threadpool::Builder::new()
                    .num_threads(threads)
                    .thread_name(name)
                    .build(),
            ),
            Kind::TokioBlocking => Pool::Tokio(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(threads)
                    .max_blocking_threads(threads)
                    .thread_name(name)
                    .build()
                    .expect("tokio runtime"),
            ),
            Kind::RustyPool => Pool::Rusty(
                rusty_pool::Builder::new()
                    .core_size(threads)
                    .max_size(threads)
                    .name(name)
                    .build(),
            ),
        }
    }

    /// Hands `f` to the pool, fire-and-forget.
    #[inline]
    pub(crate) fn spawn<F>(&self, f: F)
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

    /// `pool_core::ThreadPool::submit`, keeping the handle.
    ///
    /// # Panics
    ///
    /// If this is not our pool.
    #[inline]
    pub(crate) fn submit<F>(&self, f: F) -> TaskHandle<()>
    where
        F: FnOnce() + Send + 'static,
    {
        match self {
            Pool::Ours(pool) => pool.submit(f).expect("pool-core refused a job"),
            _ => unreachable!("submit with a handle is pool-core's"),
        }
    }

    /// Shuts the pool down and joins its threads where the crate offers it (rayon's threads
    /// exit on their own after the drop).
    pub(crate) fn close(self) {
        match self {
            Pool::Ours(pool) => pool.shutdown(),
            Pool::Rayon(pool) => drop(pool),
            Pool::Threadpool(pool) => pool.join(),
            Pool::Tokio(runtime) => runtime.shutdown_timeout(TIMEOUT),
            Pool::Rusty(pool) => pool.shutdown_join(),
        }
    }
}
