//! Typed errors: why a coalesced execution produced no value, and what a builder refused.

use std::fmt;

/// Why a [`CoalescedHandle`](crate::CoalescedHandle) has no value.
///
/// Every sharer of an execution receives the same outcome, so a panic or a refusal reaches all of
/// them, not only the submitter whose closure was involved.
///
/// # Examples
///
/// ```
/// use policy_coalesce::{CoalesceError, Coalescer};
/// use pool_core::InlineExecutor;
///
/// let renders = Coalescer::<&str, u32, _>::builder(InlineExecutor).build()?;
/// let handle = renders.submit("doc", || -> u32 { panic!("bad glyph") }).unwrap();
/// assert_eq!(handle.join().unwrap_err(), CoalesceError::Panicked("bad glyph".into()));
/// # Ok::<(), policy_coalesce::CoalesceBuildError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CoalesceError {
    /// The execution never started, or this handle detached from it before it started.
    #[error("the coalesced execution did not run for this handle ({0})")]
    Cancelled(CoalesceCancelReason),
    /// The executor refused the execution (it was shut down); the closure could not be handed
    /// back because it was not the submitter's own, or the refusal happened on a follow-up.
    #[error("the executor refused the coalesced execution: it is shut down")]
    Rejected,
    /// The closure that ran panicked; the message is the payload when it was a string.
    #[error("the coalesced execution panicked: {0}")]
    Panicked(String),
}

impl CoalesceError {
    /// Whether the execution was cancelled for this handle (see [`CoalesceCancelReason`]).
    pub fn is_cancelled(&self) -> bool {
        matches!(self, CoalesceError::Cancelled(_))
    }

    /// Whether the closure that ran panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, CoalesceError::Panicked(_))
    }

    /// Whether the executor refused the execution.
    pub fn is_rejected(&self) -> bool {
        matches!(self, CoalesceError::Rejected)
    }
}

/// Who or what cancelled a coalesced execution (or detached a handle from it).
///
/// # Examples
///
/// ```
/// use policy_coalesce::CoalesceCancelReason;
///
/// assert_eq!(CoalesceCancelReason::Key.to_string(), "cancel_key cancelled the key");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CoalesceCancelReason {
    /// [`CoalescedHandle::cancel`](crate::CoalescedHandle::cancel) detached this handle before the execution started (the
    /// execution itself is cancelled once every live handle has done so).
    Requested,
    /// [`Coalescer::cancel_key`](crate::Coalescer::cancel_key) cancelled the key for everyone.
    Key,
    /// The executor dropped the job without running it (e.g. `ThreadPool::shutdown_now`).
    Dropped,
}

impl fmt::Display for CoalesceCancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CoalesceCancelReason::Requested => "the handle was cancelled",
            CoalesceCancelReason::Key => "cancel_key cancelled the key",
            CoalesceCancelReason::Dropped => "the executor dropped the job without running it",
        })
    }
}

/// A [`CoalescerBuilder`](crate::CoalescerBuilder) setting was rejected.
///
/// # Examples
///
/// ```
/// use policy_coalesce::Coalescer;
/// use pool_core::InlineExecutor;
///
/// let err = Coalescer::<u32, (), _>::builder(InlineExecutor).shards(0).build().unwrap_err();
/// assert!(err.is_zero_shards());
/// assert_eq!(err.to_string(), "invalid coalescer setting `shards`: must be at least 1, got 0");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct CoalesceBuildError {
    kind: BuildErrorKind,
}

#[derive(Debug, thiserror::Error)]
enum BuildErrorKind {
    #[error("invalid coalescer setting `shards`: must be at least 1, got 0")]
    ZeroShards,
    #[error("invalid coalescer setting `shards`: must be at most {max}, got {got}")]
    TooManyShards { got: usize, max: usize },
}

impl CoalesceBuildError {
    pub(crate) fn zero_shards() -> Self {
        CoalesceBuildError {
            kind: BuildErrorKind::ZeroShards,
        }
    }

    pub(crate) fn too_many_shards(got: usize, max: usize) -> Self {
        CoalesceBuildError {
            kind: BuildErrorKind::TooManyShards { got, max },
        }
    }

    /// The shard count was zero.
    pub fn is_zero_shards(&self) -> bool {
        matches!(self.kind, BuildErrorKind::ZeroShards)
    }

    /// The shard count was above the maximum.
    pub fn is_too_many_shards(&self) -> bool {
        matches!(self.kind, BuildErrorKind::TooManyShards { .. })
    }
}
