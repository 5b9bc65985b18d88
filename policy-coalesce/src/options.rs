//! Per-submission choices: what a submission does to an execution already pending or running for
//! its key, and at which priority it asks to run.

use pool_core::Priority;

/// What a submission does when its key already has an execution pending or running.
///
/// In every mode an idle key simply gets a new execution, and a pending execution keeps its
/// place in the executor's queue (it is never resubmitted). Set a default with
/// [`CoalescerBuilder::mode`](crate::CoalescerBuilder::mode) and override it per submission with
/// [`SubmitOptions::mode`].
///
/// # Examples
///
/// ```
/// use policy_coalesce::{Coalescer, Mode, SubmitOptions};
/// use pool_core::InlineExecutor;
///
/// let saves = Coalescer::<&str, u32, _>::builder(InlineExecutor).mode(Mode::Keep).build()?;
/// let handle = saves.submit("notes.txt", || 1).unwrap();
/// assert_eq!(*handle.join().unwrap(), 1);
/// let latest = SubmitOptions::new().mode(Mode::Latest);
/// assert_eq!(*saves.submit_with("notes.txt", latest, || 2).unwrap().join().unwrap(), 2);
/// # Ok::<(), policy_coalesce::CoalesceBuildError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// Latest wins (the default). Pending: the new closure replaces the pending one and the
    /// submitter shares that execution. Running: one follow-up is queued behind the running
    /// execution, carrying the latest closure; the running one finishes undisturbed.
    #[default]
    Latest,
    /// Like [`Latest`](Mode::Latest), and the running execution of the key (if any) is asked to
    /// stop through its [`CoalesceCancelToken`](crate::CoalesceCancelToken), so the follow-up starts sooner.
    Replace,
    /// The existing work wins. Pending: the submitter shares the pending execution and its own
    /// closure is dropped. Running (nothing pending): the submitter shares the running
    /// execution's outcome and its closure is dropped. The handle reports this with
    /// [`CoalescedHandle::kept_existing`](crate::CoalescedHandle::kept_existing).
    Keep,
}

/// Options of one submission: its [`Mode`] and its priority.
///
/// # Examples
///
/// ```
/// use policy_coalesce::{Mode, SubmitOptions};
/// use pool_core::Priority;
///
/// let options = SubmitOptions::new().mode(Mode::Replace).priority(Priority::High);
/// assert_eq!(options.get_mode(), Some(Mode::Replace));
/// assert_eq!(options.get_priority(), Priority::High);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubmitOptions {
    mode: Option<Mode>,
    priority: Priority,
}

impl SubmitOptions {
    /// The coalescer's default mode, [`Priority::Normal`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Overrides the coalescer's default mode for this submission.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// The priority this submitter asks for. An execution runs at the highest priority of the
    /// submitters that joined it, never lower, on executors that honour priorities.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// The mode override, if any.
    pub fn get_mode(&self) -> Option<Mode> {
        self.mode
    }

    /// The requested priority.
    pub fn get_priority(&self) -> Priority {
        self.priority
    }
}
