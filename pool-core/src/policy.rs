//! The queue-policy plug point: the pool's ready queue is a trait object, with per-task metadata.
//! (`deque.rs` is something else: the work-stealing deques and injector the FIFO default uses.)

use std::fmt;

use crate::deque::{steal_retrying, Injector};
use crate::error::CancelReason;
use crate::executor::{Job, Priority};
use crate::task::{Discarded, TaskId, TaskRef};

/// A task waiting in a queue: opaque work plus the metadata a policy orders by.
///
/// Policies store these and hand them back from [`QueuePolicy::pop`]; only the pool can run or
/// discard one. A task with a handle may have more than one entry (raising its priority pushes a
/// second, higher one); whichever is reached first runs it and the others are
/// [stale](QueuedTask::is_stale), so the policy need not search its queue to move an entry.
pub struct QueuedTask {
    priority: Priority,
    work: Work,
}

pub(crate) enum Work {
    /// Fire-and-forget: no handle, no id, just the closure.
    Job(Job),
    /// A task with a handle.
    Task(TaskRef),
}

impl QueuedTask {
    pub(crate) fn job(job: Job, priority: Priority) -> Self {
        QueuedTask {
            priority,
            work: Work::Job(job),
        }
    }

    pub(crate) fn task(task: TaskRef, priority: Priority) -> Self {
        QueuedTask {
            priority,
            work: Work::Task(task),
        }
    }

    pub(crate) fn into_work(self) -> Work {
        self.work
    }

    /// The level this entry was queued at.
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// The task's id, for tasks submitted with a handle.
    pub fn task_id(&self) -> Option<TaskId> {
        match &self.work {
            Work::Job(_) => None,
            Work::Task(task) => Some(task.header().id()),
        }
    }

    /// Whether the task was already started, finished or cancelled through another path, so that
    /// reaching this entry will do nothing. A policy may use it to skip entries early.
    pub fn is_stale(&self) -> bool {
        match &self.work {
            Work::Job(_) => false,
            Work::Task(task) => !task.header().is_queued(),
        }
    }

    /// Discards the entry without running it.
    pub(crate) fn discard(self, reason: CancelReason) -> Discarded {
        match self.work {
            Work::Job(job) => {
                crate::unwind::drop_quietly(job);
                Discarded {
                    cancelled_now: true,
                    count: true,
                }
            }
            Work::Task(task) => task.discard(reason),
        }
    }
}

impl fmt::Debug for QueuedTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueuedTask")
            .field("priority", &self.priority)
            .field("task_id", &self.task_id())
            .finish()
    }
}

/// The pool's shared ready queue, replaceable to change the order in which tasks start.
///
/// The pool calls [`push`](Self::push) for every submission from outside the pool (and for every
/// submission when [`local_queues`](Self::local_queues) is false), and [`pop`](Self::pop) from
/// workers looking for work. It never loses an entry: every pushed entry is popped again (and run
/// or discarded) before the pool shuts down.
///
/// # Contract
///
/// `push` and `pop` are called from many threads at once. The pool's wake-up protocol needs the
/// queue to be linearizable: once `push` has returned, any `pop` or `is_empty` that starts after
/// it (ordered by a `SeqCst` fence, as the pool does) must see the entry. A queue behind one mutex
/// or built from crossbeam's injectors qualifies.
///
/// # Examples
///
/// A LIFO policy (newest first) in a dozen lines:
///
/// ```
/// use pool_core::{QueuePolicy, QueuedTask, ThreadPool};
/// use std::sync::Mutex;
///
/// #[derive(Debug, Default)]
/// struct Lifo(Mutex<Vec<QueuedTask>>);
///
/// impl QueuePolicy for Lifo {
///     fn push(&self, task: QueuedTask) { self.0.lock().unwrap().push(task) }
///     fn pop(&self) -> Option<QueuedTask> { self.0.lock().unwrap().pop() }
///     fn len(&self) -> usize { self.0.lock().unwrap().len() }
/// }
///
/// let pool = ThreadPool::builder().threads(1).queue_policy(Lifo::default()).build().unwrap();
/// assert_eq!(pool.submit(|| 1).unwrap().join().unwrap(), 1);
/// ```
pub trait QueuePolicy: Send + Sync + fmt::Debug + 'static {
    /// Adds a task.
    fn push(&self, task: QueuedTask);

    /// Takes the task that should start next, if any.
    fn pop(&self) -> Option<QueuedTask>;

    /// How many entries are queued (stale entries included).
    fn len(&self) -> usize;

    /// Whether no entry is queued.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether tasks submitted from inside a worker may go to that worker's own deque (where
    /// they bypass this policy and idle workers steal them). `false` (the default) keeps every
    /// task in this queue, which a priority order needs.
    fn local_queues(&self) -> bool {
        false
    }

    /// Whether the order depends on [`QueuedTask::priority`]; the pool only pushes a raised
    /// duplicate entry when it does.
    fn honors_priority(&self) -> bool {
        false
    }

    /// Called after a worker finished running a task that was popped at `priority` (completed or
    /// panicked), so a policy can keep per-level statistics.
    fn on_finished(&self, priority: Priority) {
        let _ = priority;
    }
}

/// First in, first out: the default policy, a lock-free injector.
///
/// A pool built without [`queue_policy`](crate::ThreadPoolBuilder::queue_policy) uses the same
/// structure with per-worker deques and work stealing; this type is the same order as a plugable
/// policy, for composition and tests.
///
/// # Examples
///
/// ```
/// use pool_core::{FifoQueue, ThreadPool};
///
/// let pool = ThreadPool::builder().threads(2).queue_policy(FifoQueue::new()).build().unwrap();
/// assert_eq!(pool.submit(|| "fifo").unwrap().join().unwrap(), "fifo");
/// ```
#[derive(Default)]
pub struct FifoQueue {
    injector: Injector<QueuedTask>,
}

impl FifoQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }
}

impl fmt::Debug for FifoQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FifoQueue")
            .field("len", &self.len())
            .finish()
    }
}

impl QueuePolicy for FifoQueue {
    fn push(&self, task: QueuedTask) {
        self.injector.push(task);
    }

    fn pop(&self) -> Option<QueuedTask> {
        steal_retrying(|| self.injector.steal())
    }

    fn len(&self) -> usize {
        self.injector.len()
    }

    fn is_empty(&self) -> bool {
        self.injector.is_empty()
    }
}
