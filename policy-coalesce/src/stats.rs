//! The coalescer's books: what happened to every submission.

use std::fmt;

use pool_core::{Priority, TaskId};

/// Counters of one shard, kept under the shard's lock.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counts {
    pub(crate) submitted: u64,
    pub(crate) coalesced: u64,
    pub(crate) superseded: u64,
    pub(crate) kept: u64,
    pub(crate) replaced: u64,
    pub(crate) executed: u64,
    pub(crate) completed: u64,
    pub(crate) panicked: u64,
    pub(crate) cancelled: u64,
    pub(crate) rejected: u64,
}

impl Counts {
    pub(crate) fn add(&mut self, other: &Counts) {
        self.submitted += other.submitted;
        self.coalesced += other.coalesced;
        self.superseded += other.superseded;
        self.kept += other.kept;
        self.replaced += other.replaced;
        self.executed += other.executed;
        self.completed += other.completed;
        self.panicked += other.panicked;
        self.cancelled += other.cancelled;
        self.rejected += other.rejected;
    }
}

/// A snapshot of a [`Coalescer`](crate::Coalescer)'s counters.
///
/// Every submitted closure ends in exactly one place, so at every moment
/// `submitted = executed + superseded + kept + cancelled + rejected + pending`
/// ([`is_balanced`](Self::is_balanced)), and `executed = completed + panicked + running`.
///
/// # Examples
///
/// ```
/// use policy_coalesce::Coalescer;
/// use pool_core::InlineExecutor;
///
/// let coalescer = Coalescer::<u32, u32, _>::new(InlineExecutor);
/// for i in 0..3 {
///     coalescer.submit(i % 2, move || i).unwrap();
/// }
/// let stats = coalescer.stats();
/// assert_eq!((stats.submitted, stats.executed, stats.keys), (3, 3, 0));
/// assert!(stats.is_balanced());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CoalesceStats {
    /// Submissions, accepted or not. A submission whose key panicked in `Hash` or `Eq` is not
    /// one: the panic reached its caller and nothing was counted.
    pub submitted: u64,
    /// Closures a worker started (one per execution that ran).
    pub executed: u64,
    /// Of those, closures that returned.
    pub completed: u64,
    /// Of those, closures that panicked.
    pub panicked: u64,
    /// Submissions that joined an existing execution instead of creating one.
    pub coalesced: u64,
    /// Closures replaced by a later submission's closure before they ran.
    pub superseded: u64,
    /// Closures dropped because [`Mode::Keep`](crate::Mode::Keep) kept the existing execution.
    pub kept: u64,
    /// Running executions asked to stop by a [`Mode::Replace`](crate::Mode::Replace) submission.
    pub replaced: u64,
    /// Executions cancelled before they started (every handle cancelled, `cancel_key`, or the
    /// executor dropped the job).
    pub cancelled: u64,
    /// Executions the executor refused.
    pub rejected: u64,
    /// Executions waiting to start now.
    pub pending: u64,
    /// Executions running now.
    pub running: u64,
    /// Keys in the map now (those with an execution pending or running).
    pub keys: usize,
}

impl CoalesceStats {
    /// Whether `submitted = executed + superseded + kept + cancelled + rejected + pending` and
    /// `executed = completed + panicked + running`.
    pub fn is_balanced(&self) -> bool {
        self.submitted
            == self.executed
                + self.superseded
                + self.kept
                + self.cancelled
                + self.rejected
                + self.pending
            && self.executed == self.completed + self.panicked + self.running
    }

    /// Submissions per execution that started: how much work coalescing saved (1.0 = none).
    pub fn merge_ratio(&self) -> f64 {
        if self.executed == 0 {
            return 0.0;
        }
        self.submitted as f64 / self.executed as f64
    }

    pub(crate) fn from_counts(c: Counts, keys: usize, pending: u64, running: u64) -> Self {
        CoalesceStats {
            submitted: c.submitted,
            executed: c.executed,
            completed: c.completed,
            panicked: c.panicked,
            coalesced: c.coalesced,
            superseded: c.superseded,
            kept: c.kept,
            replaced: c.replaced,
            cancelled: c.cancelled,
            rejected: c.rejected,
            pending,
            running,
            keys,
        }
    }
}

impl fmt::Display for CoalesceStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "submitted {} = executed {} + superseded {} + kept {} + cancelled {} + rejected {} + pending {}; coalesced {}, running {}, keys {}",
            self.submitted,
            self.executed,
            self.superseded,
            self.kept,
            self.cancelled,
            self.rejected,
            self.pending,
            self.coalesced,
            self.running,
            self.keys
        )
    }
}

/// What one key has in flight ([`Coalescer::key_stats`](crate::Coalescer::key_stats)).
///
/// # Examples
///
/// ```
/// use policy_coalesce::Coalescer;
/// use pool_core::InlineExecutor;
///
/// let coalescer = Coalescer::<&str, (), _>::new(InlineExecutor);
/// coalescer.submit("idle", || ()).unwrap();
/// assert!(coalescer.key_stats(&"idle").is_none()); // finished keys leave the map
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyStats {
    /// The pending execution's id and priority, if one waits.
    pub pending: Option<(TaskId, Priority)>,
    /// The running execution's id, if one runs.
    pub running: Option<TaskId>,
    /// Handles of those executions that have not cancelled.
    pub live_handles: usize,
}
