//! Typed errors: every refusal names what was wrong.

use std::fmt;

/// Why a task did not produce a value.
///
/// # Examples
///
/// ```
/// use pool_core::{TaskError, ThreadPool};
///
/// let pool = ThreadPool::new(1).unwrap();
/// let handle = pool.submit(|| -> u32 { panic!("bad input") }).unwrap();
/// match handle.join() {
///     Err(TaskError::Panicked(message)) => assert_eq!(message, "bad input"),
///     other => panic!("unexpected {other:?}"),
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The task never started.
    #[error("the task was cancelled before it started ({0})")]
    Cancelled(CancelReason),
    /// The task panicked; the message is the panic payload when it was a string.
    #[error("the task panicked: {0}")]
    Panicked(String),
}

impl TaskError {
    /// Whether the task was cancelled before it started.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, TaskError::Cancelled(_))
    }

    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, TaskError::Panicked(_))
    }
}

/// Who or what cancelled a task before it started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CancelReason {
    /// [`TaskHandle::cancel`](crate::TaskHandle::cancel) was called.
    Requested,
    /// [`ThreadPool::cancel_all`](crate::ThreadPool::cancel_all) discarded it.
    CancelAll,
    /// [`ThreadPool::shutdown_now`](crate::ThreadPool::shutdown_now) discarded it.
    Shutdown,
    /// Its start deadline passed before a worker reached it.
    DeadlineExpired,
    /// The executor it was handed to dropped it without running it.
    Dropped,
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CancelReason::Requested => "cancel requested through its handle",
            CancelReason::CancelAll => "cancel_all discarded the queue",
            CancelReason::Shutdown => "shutdown_now discarded the queue",
            CancelReason::DeadlineExpired => "its start deadline passed",
            CancelReason::Dropped => "the executor dropped it without running it",
        })
    }
}

/// [`TaskHandle::join_timeout`](crate::TaskHandle::join_timeout) did not get a value.
#[derive(thiserror::Error)]
pub enum JoinTimeoutError<T> {
    /// The task had not finished in time; the handle is given back so the caller can wait again.
    #[error("the task did not finish within the timeout")]
    TimedOut(crate::TaskHandle<T>),
    /// The task finished without a value.
    #[error(transparent)]
    Failed(TaskError),
}

impl<T> fmt::Debug for JoinTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinTimeoutError::TimedOut(h) => f.debug_tuple("TimedOut").field(&h.id()).finish(),
            JoinTimeoutError::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
        }
    }
}

/// A [`ThreadPoolBuilder`](crate::ThreadPoolBuilder) setting was rejected, or a thread could not
/// be started.
///
/// Branch on it with the `is_*` accessors; its message names the setting.
///
/// # Examples
///
/// ```
/// use pool_core::ThreadPool;
///
/// let err = ThreadPool::builder().threads(0).build().unwrap_err();
/// assert!(err.is_zero_threads());
/// assert_eq!(err.to_string(), "invalid thread pool setting `threads`: must be at least 1, got 0");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct PoolBuildError {
    kind: BuildErrorKind,
}

#[derive(Debug, thiserror::Error)]
enum BuildErrorKind {
    #[error("invalid thread pool setting `threads`: must be at least 1, got 0")]
    ZeroThreads,
    #[error(
        "invalid thread pool setting `threads`: {0} is more than a pool holds \
         (ThreadPool::MAX_THREADS, {max})",
        max = crate::ThreadPool::MAX_THREADS
    )]
    TooManyThreads(usize),
    #[error("invalid thread pool setting `stack_size`: must be at least 1 byte, got 0")]
    ZeroStackSize,
    #[error("invalid thread pool setting `thread_name`: contains a NUL byte")]
    NameHasNul,
    #[error("the queue policy refused to serve this pool: {0}")]
    PolicyRefused(PolicyRefused),
    #[error("could not start worker thread {index}: {source}")]
    Spawn {
        index: usize,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "could not start worker thread {index}: this process's pools already hold {limit} \
         threads, the most they may hold together (ThreadPool::process_thread_limit)"
    )]
    ProcessLimit { index: usize, limit: usize },
}

impl PoolBuildError {
    pub(crate) fn zero_threads() -> Self {
        PoolBuildError {
            kind: BuildErrorKind::ZeroThreads,
        }
    }
    pub(crate) fn too_many_threads(requested: usize) -> Self {
        PoolBuildError {
            kind: BuildErrorKind::TooManyThreads(requested),
        }
    }
    pub(crate) fn zero_stack_size() -> Self {
        PoolBuildError {
            kind: BuildErrorKind::ZeroStackSize,
        }
    }
    pub(crate) fn name_has_nul() -> Self {
        PoolBuildError {
            kind: BuildErrorKind::NameHasNul,
        }
    }
    pub(crate) fn policy_refused(refused: PolicyRefused) -> Self {
        PoolBuildError {
            kind: BuildErrorKind::PolicyRefused(refused),
        }
    }
    pub(crate) fn spawn(index: usize, source: std::io::Error) -> Self {
        PoolBuildError {
            kind: BuildErrorKind::Spawn { index, source },
        }
    }
    pub(crate) fn process_limit(index: usize, limit: usize) -> Self {
        PoolBuildError {
            kind: BuildErrorKind::ProcessLimit { index, limit },
        }
    }

    /// The thread count was zero.
    pub fn is_zero_threads(&self) -> bool {
        matches!(self.kind, BuildErrorKind::ZeroThreads)
    }

    /// The thread count was above [`ThreadPool::MAX_THREADS`](crate::ThreadPool::MAX_THREADS).
    pub fn is_too_many_threads(&self) -> bool {
        matches!(self.kind, BuildErrorKind::TooManyThreads(_))
    }

    /// The stack size was zero.
    pub fn is_zero_stack_size(&self) -> bool {
        matches!(self.kind, BuildErrorKind::ZeroStackSize)
    }

    /// The thread name prefix contained a NUL byte.
    pub fn is_invalid_name(&self) -> bool {
        matches!(self.kind, BuildErrorKind::NameHasNul)
    }

    /// The queue policy refused to serve the pool
    /// ([`QueuePolicy::attach`](crate::QueuePolicy::attach)).
    pub fn is_policy_refused(&self) -> bool {
        matches!(self.kind, BuildErrorKind::PolicyRefused(_))
    }

    /// The queue policy's refusal, with its reason, if that is what this is.
    pub fn policy_refusal(&self) -> Option<&PolicyRefused> {
        match &self.kind {
            BuildErrorKind::PolicyRefused(refused) => Some(refused),
            _ => None,
        }
    }

    /// The operating system refused to start a thread.
    pub fn is_spawn_failure(&self) -> bool {
        matches!(self.kind, BuildErrorKind::Spawn { .. })
    }

    /// A worker would have taken the process's pools past the most threads they may
    /// hold together ([`ThreadPool::process_thread_limit`](crate::ThreadPool::process_thread_limit)).
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::ThreadPool;
    ///
    /// match ThreadPool::new(4) {
    ///     Ok(pool) => pool.spawn(|| ()).unwrap(),
    ///     // Other pools of this process hold nearly all the threads it may start: wait for
    ///     // one to shut down, or run this work on one of them.
    ///     Err(e) if e.is_process_limit() => eprintln!("{e}"),
    ///     Err(e) => panic!("{e}"),
    /// }
    /// ```
    pub fn is_process_limit(&self) -> bool {
        matches!(self.kind, BuildErrorKind::ProcessLimit { .. })
    }
}

/// The process's pools already hold the most threads they may hold together
/// ([`ThreadPool::process_thread_limit`](crate::ThreadPool::process_thread_limit)): a
/// [`ProcessThreadShare`](crate::ProcessThreadShare) was refused, and no thread should start.
///
/// # Examples
///
/// ```
/// use pool_core::{ProcessThreadShare, ThreadPool};
/// use std::num::NonZeroUsize;
///
/// ThreadPool::set_process_thread_limit(NonZeroUsize::MIN);
/// let _held = ProcessThreadShare::reserve().unwrap();
/// let refused = ProcessThreadShare::reserve().unwrap_err();
/// assert_eq!(refused.limit(), 1);
/// assert_eq!(
///     refused.to_string(),
///     "this process's pools already hold 1 threads, the most they may hold together \
///      (ThreadPool::process_thread_limit)"
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "this process's pools already hold {limit} threads, the most they may hold together \
     (ThreadPool::process_thread_limit)"
)]
pub struct ProcessLimitError {
    limit: usize,
}

impl ProcessLimitError {
    pub(crate) fn new(limit: usize) -> Self {
        ProcessLimitError { limit }
    }

    /// The process's limit when the share was refused.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// Why a queue policy will not serve a pool (see [`QueuePolicy::attach`](crate::QueuePolicy::attach)).
///
/// # Examples
///
/// ```
/// use pool_core::PolicyRefused;
///
/// let refused = PolicyRefused::new("it already serves a pool");
/// assert_eq!(refused.reason(), "it already serves a pool");
/// assert_eq!(refused.to_string(), "it already serves a pool");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct PolicyRefused {
    reason: String,
}

impl PolicyRefused {
    /// A refusal with its reason (the build error's message quotes it).
    pub fn new(reason: impl Into<String>) -> Self {
        PolicyRefused {
            reason: reason.into(),
        }
    }

    /// The reason the policy gave.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// [`ThreadPool::set_threads`](crate::ThreadPool::set_threads) could not resize the pool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResizeError {
    /// A pool needs at least one worker.
    #[error("cannot resize the pool to 0 threads: a pool needs at least 1")]
    ZeroThreads,
    /// More threads than a pool holds
    /// ([`ThreadPool::MAX_THREADS`](crate::ThreadPool::MAX_THREADS)); the pool is left as it was.
    #[error(
        "cannot resize the pool to {requested} threads: more than a pool holds \
         (ThreadPool::MAX_THREADS, {max})",
        max = crate::ThreadPool::MAX_THREADS
    )]
    TooManyThreads {
        /// The size asked for.
        requested: usize,
    },
    /// The pool is shutting down or shut down.
    #[error("cannot resize the pool: it is shut down")]
    ShutDown,
    /// The process's pools already hold the most threads they may hold together
    /// ([`ThreadPool::process_thread_limit`](crate::ThreadPool::process_thread_limit)); the pool
    /// kept the workers it had started, and its target
    /// ([`ThreadPool::threads`](crate::ThreadPool::threads)) is their number.
    #[error(
        "could not start a worker thread while growing to {requested}: this process's pools \
         already hold {limit} threads, the most they may hold together \
         (ThreadPool::process_thread_limit)"
    )]
    ProcessLimit {
        /// The size asked for.
        requested: usize,
        /// The process's limit.
        limit: usize,
    },
    /// [`ThreadPool::compare_set_threads`](crate::ThreadPool::compare_set_threads) found the
    /// pool at another size than the one the resize was decided from (someone resized it
    /// since); the pool is left as it was.
    #[error(
        "did not resize the pool to {requested}: its size is {found}, not the {expected} the \
         resize was decided from (it was resized since)"
    )]
    SizeChanged {
        /// The size asked for.
        requested: usize,
        /// The size the caller expected the pool to have.
        expected: usize,
        /// The pool's size when the resize was refused.
        found: usize,
    },
    /// The operating system refused to start a thread; the pool kept the workers it had started,
    /// and its target ([`ThreadPool::threads`](crate::ThreadPool::threads)) is their number.
    #[error("could not start a worker thread while growing to {requested}: {source}")]
    Spawn {
        /// The size asked for.
        requested: usize,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}
