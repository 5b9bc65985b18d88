//! The one error type of the crate.

use std::fmt;

use thiserror::Error;

/// What went wrong with a remote task, named so a caller can act on it.
///
/// Submitting returns `Backend`/`Unreachable`/`BadArgs` when nothing was enqueued; joining a
/// handle returns the task's outcome when it is not a value.
///
/// # Examples
///
/// ```
/// use pool_remote::RemoteError;
///
/// let e = RemoteError::UnknownTask { name: "resize".into() };
/// assert_eq!(e.to_string(), "no worker has a task registered as `resize`");
/// ```
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemoteError {
    /// The backend could not be reached (connect, migrate): nothing was sent.
    #[error("the job backend at `{url}` is unreachable: {message}")]
    Unreachable {
        /// The URL that was tried.
        url: String,
        /// The database driver's reason.
        message: String,
    },
    /// A query against a reachable backend failed (the operation did not happen).
    #[error("the job backend failed during {during}: {message}")]
    Backend {
        /// What was being done (`enqueue`, `cancel`, `poll results`, ...).
        during: &'static str,
        /// The database driver's reason.
        message: String,
    },
    /// The worker that took the task has no task registered under this name. Not retried.
    #[error("no worker has a task registered as `{name}`")]
    UnknownTask {
        /// The task name that was sent.
        name: String,
    },
    /// The arguments could not be encoded (submitter) or decoded (worker): serde refused them,
    /// or their `Serialize` or `Deserialize` panicked (the message says which). Not retried.
    #[error("the arguments of task `{task}` cannot be decoded: {message}")]
    BadArgs {
        /// The task name.
        task: String,
        /// The serde error.
        message: String,
    },
    /// The output could not be encoded (worker) or decoded (submitter), as for `BadArgs`. Not
    /// retried.
    #[error("the output of task `{task}` cannot be decoded: {message}")]
    BadOutput {
        /// The task name.
        task: String,
        /// The serde error.
        message: String,
    },
    /// The task panicked on every attempt it was given.
    #[error("task `{task}` panicked ({attempts} attempt(s)): {message}")]
    Panicked {
        /// The task name.
        task: String,
        /// The panic message of the last attempt.
        message: String,
        /// How many attempts the engine made.
        attempts: usize,
    },
    /// The task returned an error on every attempt it was given.
    #[error("task `{task}` failed ({attempts} attempt(s)): {message}")]
    Failed {
        /// The task name.
        task: String,
        /// The error of the last attempt.
        message: String,
        /// How many attempts the engine made.
        attempts: usize,
    },
    /// The task was cancelled before any worker started it.
    #[error("task `{task}` was cancelled before it started")]
    Cancelled {
        /// The task name.
        task: String,
    },
    /// The executor was dropped or shut down before the outcome arrived (the task itself may still
    /// run: it is in the backend).
    #[error("the executor shut down before the outcome of task `{task}` arrived")]
    Detached {
        /// The task name.
        task: String,
    },
    /// `join_timeout` elapsed first. The task is unaffected; join again later.
    #[error("the outcome of task `{task}` did not arrive in time")]
    JoinTimeout {
        /// The task name.
        task: String,
    },
    /// A thread of a worker (its pool's, at `build`, or its engine's, at `run_until`) was not
    /// started: this process's pools, with the threads that run beside them, already hold as
    /// many threads as they may together
    /// ([`ThreadPool::process_thread_limit`](pool_core::ThreadPool::process_thread_limit)).
    /// Nothing was claimed from the backend.
    #[error(
        "could not start a thread for the worker: this process's pools already hold {limit} \
         threads, the most they may hold together (ThreadPool::process_thread_limit)"
    )]
    ProcessLimit {
        /// The process's limit.
        limit: usize,
    },
    /// A builder setting was out of range.
    #[error("bad setting `{setting}`: {message}")]
    Build {
        /// The setting's name.
        setting: &'static str,
        /// Why it was refused.
        message: String,
    },
}

impl RemoteError {
    /// Refuses a builder setting unless `ok`: the one check both builders use.
    pub(crate) fn check(
        ok: bool,
        setting: &'static str,
        message: impl fmt::Display,
    ) -> Result<(), RemoteError> {
        if ok {
            Ok(())
        } else {
            Err(RemoteError::Build {
                setting,
                message: message.to_string(),
            })
        }
    }

    /// Whether the task was cancelled before it started.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, RemoteError::Cancelled { .. })
    }

    /// Whether this is a failed outcome of a task that ran (it panicked or returned an error)
    /// or was refused by the worker (unknown name, bad arguments or output).
    pub fn is_task_failure(&self) -> bool {
        matches!(
            self,
            RemoteError::Panicked { .. }
                | RemoteError::Failed { .. }
                | RemoteError::UnknownTask { .. }
                | RemoteError::BadArgs { .. }
                | RemoteError::BadOutput { .. }
        )
    }
}
