//! The starvation guard's setting and its typed error.

use std::fmt;
use std::time::Duration;

/// The starvation guard: how long a queued task may wait before it is served ahead of newer,
/// higher-priority work.
///
/// A task that has waited longer than the bound is *overdue*. When a worker takes the next task
/// and some entry below the highest non-empty level is overdue, the oldest overdue entry is served
/// instead of the highest-priority one; such pops alternate with plain priority pops, so even a
/// large overdue backlog delays a newly queued `Critical` task by at most one task per worker.
///
/// The default bound is [`Aging::DEFAULT_BOUND`], one second. It is long compared to a burst of
/// user-facing work (a frame is 16 ms, a preview render tens of milliseconds), so in normal
/// operation priority order holds exactly; and short compared to what a user reads as "never"
/// (an auto-save that should have happened, a status line that should have updated), so background
/// work still makes progress while the foreground is saturated.
///
/// # Examples
///
/// ```
/// use policy_priority::Aging;
/// use std::time::Duration;
///
/// assert_eq!(Aging::default().bound(), Some(Duration::from_secs(1)));
/// assert_eq!(Aging::after(Duration::from_millis(200))?.bound(), Some(Duration::from_millis(200)));
/// assert_eq!(Aging::off().bound(), None);
///
/// let err = Aging::after(Duration::ZERO).unwrap_err();
/// assert!(err.is_zero_aging_bound());
/// # Ok::<(), policy_priority::ConfigError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aging {
    bound: Option<Duration>,
}

impl Aging {
    /// The default bound: one second (see the type's docs for why).
    pub const DEFAULT_BOUND: Duration = Duration::from_secs(1);

    /// The largest accepted bound, one hour: a task left waiting longer than that is starved by
    /// any useful definition, so a larger bound is a unit mistake (seconds passed as millis).
    pub const MAX_BOUND: Duration = Duration::from_secs(3600);

    /// Serve a task ahead of newer higher-priority work once it has waited longer than `bound`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming `aging_bound` if `bound` is zero (every task would be overdue at
    /// once: that is FIFO, not priority) or longer than [`MAX_BOUND`](Self::MAX_BOUND). Use
    /// [`Aging::off`] to turn the guard off.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::Aging;
    /// use std::time::Duration;
    ///
    /// assert!(Aging::after(Duration::from_millis(250)).is_ok());
    /// let err = Aging::after(Duration::from_secs(7200)).unwrap_err();
    /// assert!(err.is_aging_bound_too_long());
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid priority queue setting `aging_bound`: must be at most 3600s, got 7200s"
    /// );
    /// ```
    pub fn after(bound: Duration) -> Result<Aging, ConfigError> {
        if bound.is_zero() {
            return Err(ConfigError {
                kind: ConfigErrorKind::ZeroAgingBound,
            });
        }
        if bound > Self::MAX_BOUND {
            return Err(ConfigError {
                kind: ConfigErrorKind::AgingBoundTooLong { got: bound },
            });
        }
        Ok(Aging { bound: Some(bound) })
    }

    /// No starvation guard: strict priority order. A steady stream of higher-priority work then
    /// keeps lower levels waiting indefinitely.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::{Aging, PriorityQueue};
    ///
    /// let strict = PriorityQueue::with_aging(Aging::off());
    /// assert_eq!(strict.aging(), Aging::off());
    /// ```
    pub const fn off() -> Aging {
        Aging { bound: None }
    }

    /// The bound, or `None` when aging is off.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::Aging;
    ///
    /// assert!(Aging::off().bound().is_none());
    /// ```
    pub fn bound(self) -> Option<Duration> {
        self.bound
    }

    /// The bound in nanoseconds, saturating (the bound is at most an hour, so it never does).
    pub(crate) fn bound_nanos(self) -> Option<u64> {
        self.bound
            .map(|b| u64::try_from(b.as_nanos()).unwrap_or(u64::MAX))
    }
}

impl Default for Aging {
    fn default() -> Self {
        Aging {
            bound: Some(Self::DEFAULT_BOUND),
        }
    }
}

impl fmt::Debug for Aging {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.bound {
            Some(bound) => f.debug_tuple("Aging::after").field(&bound).finish(),
            None => f.write_str("Aging::off"),
        }
    }
}

/// A priority-queue setting was rejected; the message names the setting and the value.
///
/// # Examples
///
/// ```
/// use policy_priority::Aging;
/// use std::time::Duration;
///
/// let err = Aging::after(Duration::ZERO).unwrap_err();
/// assert!(err.is_zero_aging_bound());
/// assert_eq!(
///     err.to_string(),
///     "invalid priority queue setting `aging_bound`: must be more than zero \
///      (use `Aging::off()` to turn aging off), got 0ns"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct ConfigError {
    kind: ConfigErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
enum ConfigErrorKind {
    #[error(
        "invalid priority queue setting `aging_bound`: must be more than zero \
         (use `Aging::off()` to turn aging off), got 0ns"
    )]
    ZeroAgingBound,
    #[error(
        "invalid priority queue setting `aging_bound`: must be at most {}s, got {got:?}",
        Aging::MAX_BOUND.as_secs()
    )]
    AgingBoundTooLong { got: Duration },
}

impl ConfigError {
    /// The aging bound was zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::Aging;
    ///
    /// assert!(Aging::after(std::time::Duration::ZERO).unwrap_err().is_zero_aging_bound());
    /// ```
    pub fn is_zero_aging_bound(&self) -> bool {
        matches!(self.kind, ConfigErrorKind::ZeroAgingBound)
    }

    /// The aging bound was longer than [`Aging::MAX_BOUND`].
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::Aging;
    /// use std::time::Duration;
    ///
    /// let err = Aging::after(Duration::from_secs(3601)).unwrap_err();
    /// assert!(err.is_aging_bound_too_long());
    /// ```
    pub fn is_aging_bound_too_long(&self) -> bool {
        matches!(self.kind, ConfigErrorKind::AgingBoundTooLong { .. })
    }
}
