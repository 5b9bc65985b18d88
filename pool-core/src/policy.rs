//! The queue-policy plug point: the pool's ready queue is a trait object, with per-task metadata.
//! (`deque.rs` is something else: the work-stealing deques and injector the FIFO default uses.)

use std::fmt;
use std::mem::ManuallyDrop;
use std::time::Instant;

use crate::deque::{steal_retrying, Injector};
use crate::error::CancelReason;
use crate::executor::{Job, Priority};
use crate::task::{Discarded, TaskId, TaskRef};

/// A task waiting in a policy's queue: opaque work plus the metadata a policy orders by.
///
/// Policies store these and hand them back from [`QueuePolicy::pop`]; only the pool runs or
/// discards the ones it pushed. A task with a handle may have more than one entry (raising its
/// priority pushes a second, higher one); whichever is reached first runs it and the others are
/// [stale](QueuedTask::is_stale), so the policy need not search its queue to move an entry.
///
/// The pool's default FIFO path does not use this type: its injector and deques hold the
/// bare work (16 bytes), and the priority exists only for the policy, which receives it here.
///
/// The entry carries no enqueue time: [`QueuePolicy::push`] runs at the moment of enqueueing, so a
/// policy that orders by arrival (per-tenant fairness, aging) stamps its own there (a clock read,
/// or a coarse tick as the priority policy uses), and policies that do not need one pay nothing.
///
/// Dropping an entry (a policy that throws it away, or a panic unwinding over it) cancels its
/// task ([`CancelReason::Dropped`]: a handle resolves) or drops a fire-and-forget job quietly,
/// and counts it on the dropping thread. After every call into a policy the pool takes that count
/// on the calling thread and enters it in the books as cancelled, whether the call returned or
/// panicked. (A policy that drops entries on a thread of its own, outside any call from the pool,
/// leaves them out of the books: they show as queued.)
///
/// # Examples
///
/// A policy can be tested without a pool: [`QueuedTask::new`] wraps a closure, and
/// [`run`](QueuedTask::run) runs a popped entry on the calling thread.
///
/// ```
/// use pool_core::{FifoQueue, Priority, QueuePolicy, QueuedTask};
/// use std::sync::{Arc, Mutex};
///
/// let order = Arc::new(Mutex::new(Vec::new()));
/// let queue = FifoQueue::new();
/// for i in 0..3 {
///     let order = order.clone();
///     queue.push(QueuedTask::new(Priority::Normal, move || order.lock().unwrap().push(i)));
/// }
/// while let Some(task) = queue.pop() {
///     assert_eq!(task.priority(), Priority::Normal);
///     task.run();
/// }
/// assert_eq!(*order.lock().unwrap(), [0, 1, 2]);
/// ```
pub struct QueuedTask {
    priority: Priority,
    /// Whether the entry is in a pool's books (a pool made it), so that dropping it counts; an
    /// entry made by [`QueuedTask::new`] for a test is in no pool's books. (It fits in the
    /// padding after `priority`: the entry stays 24 bytes.)
    in_books: bool,
    /// The policy's own word ([`tag`](Self::tag)); also in what was padding.
    tag: u32,
    /// Taken out by the pool (`take`); dropped by [`Drop`] only when a policy threw it away.
    work: ManuallyDrop<Work>,
}

impl Drop for QueuedTask {
    fn drop(&mut self) {
        // SAFETY: `work` is initialised until it is taken, and `take` wraps `self` in
        // `ManuallyDrop` first, so this `drop` never runs after a take; here it is taken exactly
        // once and `self.work` is never used again.
        let work = unsafe { ManuallyDrop::take(&mut self.work) };
        // A job's destructor may panic, and this may run while a policy's panic unwinds:
        // `discard` drops it quietly, so that a second panic cannot abort the process.
        if work.discard(CancelReason::Dropped).count && self.in_books {
            DROPPED.with(|dropped| dropped.set(dropped.get().wrapping_add(1)));
        }
    }
}

#[cfg(not(loom))]
std::thread_local! {
    static DROPPED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}
#[cfg(loom)]
crate::sync::thread_local! {
    static DROPPED: std::cell::Cell<u64> = std::cell::Cell::new(0);
}

#[cfg(not(loom))]
std::thread_local! {
    static DISCARD_REASON: std::cell::Cell<Option<CancelReason>> = const { std::cell::Cell::new(None) };
}
#[cfg(loom)]
crate::sync::thread_local! {
    static DISCARD_REASON: std::cell::Cell<Option<CancelReason>> = std::cell::Cell::new(None);
}

/// Why the job being dropped on this thread was discarded, while `Work::discard` drops it:
/// `cancel_all` and `shutdown_now` say so, and a queue policy that drops an entry gives
/// [`CancelReason::Dropped`]. `None` for a job dropped any other way (a refused submission).
pub(crate) fn discard_reason() -> Option<CancelReason> {
    DISCARD_REASON.with(std::cell::Cell::get)
}

/// Takes the count of entries dropped on this thread since the last take (see
/// `impl Drop for QueuedTask`). After every call into a policy the pool tests
/// [`dropped_on_this_thread`] on the same thread and, when it is set, takes the count: what that
/// call destroyed (by a panic or on purpose) is counted as cancelled.
#[inline]
pub(crate) fn take_dropped_on_this_thread() -> u64 {
    DROPPED.with(|dropped| {
        let count = dropped.get();
        if count != 0 {
            dropped.set(0);
        }
        count
    })
}

/// Whether entries were dropped on this thread since the last take (one thread-local load):
/// the test before a take that is kept out of the caller's path.
#[inline]
pub(crate) fn dropped_on_this_thread() -> bool {
    DROPPED.with(|dropped| dropped.get() != 0)
}

/// What a queue entry holds, without its priority: 16 bytes (a boxed closure's fat pointer, or a
/// task's thin [`TaskRef`]: the enum packs its tag into the closure pointer's null niche), the unit
/// of the default FIFO path (the injector and the workers' deques).
pub(crate) enum Work {
    /// Fire-and-forget: no handle, no id, just the closure.
    Job(Job),
    /// A task with a handle.
    Task(TaskRef),
}

impl Work {
    fn task_id(&self) -> Option<TaskId> {
        match self {
            Work::Job(_) => None,
            Work::Task(task) => Some(task.header().id()),
        }
    }

    fn is_stale(&self) -> bool {
        match self {
            Work::Job(_) => false,
            Work::Task(task) => !task.header().is_queued(),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self {
            Work::Job(_) => None,
            Work::Task(task) => task.header().deadline(),
        }
    }

    /// Discards the entry without running it. A job's closure is dropped with `reason` readable
    /// on this thread ([`discard_reason`]), for what it reports as it goes (a batch input).
    pub(crate) fn discard(self, reason: CancelReason) -> Discarded {
        match self {
            Work::Job(job) => {
                let outer = DISCARD_REASON.with(|r| r.replace(Some(reason)));
                // `drop_quietly` lets no panic out, so the reason is always restored.
                crate::unwind::drop_quietly(job);
                DISCARD_REASON.with(|r| r.set(outer));
                Discarded {
                    cancelled_now: true,
                    count: true,
                }
            }
            Work::Task(task) => task.discard(reason),
        }
    }
}

impl QueuedTask {
    pub(crate) fn from_work(work: Work, priority: Priority) -> Self {
        QueuedTask {
            priority,
            in_books: true,
            tag: 0,
            work: ManuallyDrop::new(work),
        }
    }

    /// Moves the work out without running `Drop` (which would discard it).
    pub(crate) fn into_parts(self) -> (Work, Priority) {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped (`ManuallyDrop`), so `QueuedTask::drop` cannot take the
        // work a second time; `this.work` is initialised (only `drop` and this take it) and is
        // not used after this line.
        let work = unsafe { ManuallyDrop::take(&mut this.work) };
        (work, this.priority)
    }

    /// A fire-and-forget entry holding `job`, for testing a policy without a pool.
    pub fn new<F>(priority: Priority, job: F) -> Self
    where
        F: FnOnce() + Send + 'static,
    {
        QueuedTask {
            priority,
            in_books: false,
            tag: 0,
            work: ManuallyDrop::new(Work::Job(Box::new(job))),
        }
    }

    /// Runs the entry's work on the calling thread, as a worker would (a task with a handle that
    /// already started or was cancelled does nothing). A panic in the work is caught; the
    /// returned message says what it was.
    ///
    /// # Errors
    ///
    /// The panic message of a fire-and-forget job that panicked (a task with a handle reports
    /// its panic through the handle instead).
    pub fn run(self) -> Result<(), String> {
        match self.into_parts().0 {
            Work::Job(job) => crate::unwind::catch_panic(job),
            Work::Task(task) => {
                task.run(&|| ());
                Ok(())
            }
        }
    }

    /// The level this entry was queued at.
    #[inline]
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// A 32-bit word the policy keeps on the entry for its own ordering: an enqueue stamp, a
    /// sequence number, a tenant. 0 on every entry the pool hands to [`QueuePolicy::push`]; the
    /// pool never reads it.
    ///
    /// It lives in what would otherwise be padding, so it costs no memory: a policy that needs
    /// one such value per entry can queue the 24-byte `QueuedTask` itself, where a pair of its
    /// own value and the entry would take 32 bytes (a lock-free queue's slot, 40 with its state
    /// word; the priority policy stores its aging stamp here).
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::{Priority, QueuedTask};
    ///
    /// let mut task = QueuedTask::new(Priority::Low, || ());
    /// assert_eq!(task.tag(), 0);
    /// task.set_tag(41);
    /// assert_eq!(task.tag(), 41);
    /// ```
    #[inline]
    pub fn tag(&self) -> u32 {
        self.tag
    }

    /// Sets the policy's word on the entry (see [`tag`](Self::tag)).
    #[inline]
    pub fn set_tag(&mut self, tag: u32) {
        self.tag = tag;
    }

    /// The task's id, for tasks submitted with a handle.
    pub fn task_id(&self) -> Option<TaskId> {
        self.work.task_id()
    }

    /// The latest start the task's submitter allows (see
    /// [`TaskOptions::start_deadline`](crate::TaskOptions::start_deadline)): a task still queued then is
    /// cancelled instead of started. `None` for tasks without one and for fire-and-forget jobs.
    /// An earliest-deadline-first policy orders by it (`tests/user_policies.rs` in this crate's
    /// repository writes one in about forty lines, its arrival order kept in [`tag`](Self::tag)).
    pub fn deadline(&self) -> Option<Instant> {
        self.work.deadline()
    }

    /// Whether the task was already started, finished or cancelled through another path, so that
    /// reaching this entry will do nothing. A policy may use it to skip entries early.
    pub fn is_stale(&self) -> bool {
        self.work.is_stale()
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
/// Every method is user code to the pool: a panic in any of them is caught on the calling thread
/// and never takes a worker or a submitter down. A panicking `push` or `pop` that drops an entry
/// cancels that task ([`CancelReason::Dropped`](crate::CancelReason::Dropped), counted in the
/// stats); a panicking `len` or `is_empty` reads as an empty queue, and a queue whose `pop` keeps
/// panicking is given up as empty after a few attempts in a row, so neither can hang a shutdown
/// (what it still holds stays counted as queued).
///
/// # Contract
///
/// `push` and `pop` are called from many threads at once. The pool's wake-up protocol needs the
/// queue to be linearizable: once `push` has returned, any `pop` or `is_empty` that starts after
/// it (ordered by a `SeqCst` fence, as the pool does) must see the entry. A queue behind one mutex
/// or built from crossbeam's injectors qualifies.
///
/// A policy serves one pool: the pool runs whatever its policy pops and keeps its books by
/// what went in through it. A queue shared by two pools (through an `Arc` or a cheap clone)
/// would run each pool's tasks on the other's workers, out of both pools' books. A policy
/// that can be shared refuses a second pool in [`attach`](Self::attach), as
/// `policy_priority::PriorityQueue` does.
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
    /// Adds a task. Called at the moment of enqueueing, on the thread that submits the task (a
    /// worker, for a task spawned from a task), so a policy may read that thread's context (a
    /// tenant, a request's class) and keep it in the entry's [`tag`](QueuedTask::tag). Two
    /// other callers: the thread that [raises](crate::ThreadPool::raise_priority) a task's
    /// priority pushes its second entry, and with [`local_queues`](Self::local_queues) a
    /// retiring worker hands its own deque back here.
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

    /// Called once by [`ThreadPoolBuilder::build`](crate::ThreadPoolBuilder::build) for the
    /// pool this policy is about to serve, before any worker starts. A policy that must not
    /// serve two pools at once (see "A policy serves one pool" above) refuses here; the build
    /// then fails with a [`PoolBuildError`](crate::PoolBuildError) that
    /// [`is_policy_refused`](crate::PoolBuildError::is_policy_refused) and carries the reason. A
    /// panic is a refusal too (its message is the reason). The default accepts.
    ///
    /// # Errors
    ///
    /// [`PolicyRefused`](crate::PolicyRefused) with the reason, which the build error's
    /// message quotes.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::{FifoQueue, PolicyRefused, QueuePolicy, QueuedTask, ThreadPool};
    /// use std::sync::atomic::{AtomicBool, Ordering};
    ///
    /// #[derive(Debug, Default)]
    /// struct OncePolicy(FifoQueue, AtomicBool);
    ///
    /// impl QueuePolicy for OncePolicy {
    ///     fn push(&self, task: QueuedTask) { self.0.push(task) }
    ///     fn pop(&self) -> Option<QueuedTask> { self.0.pop() }
    ///     fn len(&self) -> usize { self.0.len() }
    ///     fn attach(&self) -> Result<(), PolicyRefused> {
    ///         if self.1.swap(true, Ordering::AcqRel) {
    ///             return Err(PolicyRefused::new("it already serves a pool"));
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let policy = OncePolicy::default();
    /// assert!(policy.attach().is_ok()); // as a pool would: now it is taken
    /// let err = ThreadPool::builder().queue_policy(policy).build().unwrap_err();
    /// assert!(err.is_policy_refused());
    /// assert_eq!(err.policy_refusal().unwrap().reason(), "it already serves a pool");
    /// assert_eq!(
    ///     err.to_string(),
    ///     "the queue policy refused to serve this pool: it already serves a pool"
    /// );
    /// ```
    fn attach(&self) -> Result<(), crate::PolicyRefused> {
        Ok(())
    }

    /// Takes up to `max` tasks in the order [`pop`](Self::pop) would, appending them to `out`;
    /// returns how many it took. The default pops one at a time; a policy whose queue can hand
    /// over several entries for one synchronisation may override it.
    ///
    /// **The pool never calls it:** its workers pop one entry at a time, so that an entry a
    /// worker takes starts at once (a batch held by one worker would leave earlier submissions
    /// waiting behind its first task while other workers start later ones; see the order
    /// guarantee on [`ThreadPool`](crate::ThreadPool)). It is for code that empties a policy
    /// itself: draining a queue taken out of service, tests of a policy, user code.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::{FifoQueue, Priority, QueuePolicy, QueuedTask};
    ///
    /// let queue = FifoQueue::new();
    /// for _ in 0..3 {
    ///     queue.push(QueuedTask::new(Priority::Normal, || ()));
    /// }
    /// let mut drained = Vec::new();
    /// assert_eq!(queue.pop_batch(2, &mut drained), 2);
    /// assert_eq!(queue.pop_batch(2, &mut drained), 1);
    /// assert_eq!(drained.len(), 3);
    /// ```
    fn pop_batch(&self, max: usize, out: &mut Vec<QueuedTask>) -> usize {
        let mut taken = 0;
        while taken < max {
            match self.pop() {
                Some(task) => out.push(task),
                None => break,
            }
            taken += 1;
        }
        taken
    }

    /// Called after a worker finished running a task it popped from this policy at `priority`
    /// (completed or panicked), so a policy can keep per-level statistics. Not called for
    /// entries that turned out stale or cancelled, nor for tasks that went through a worker's own
    /// deque (see [`local_queues`](Self::local_queues)).
    ///
    /// The pool reports finished tasks in batches through
    /// [`on_finished_many`](Self::on_finished_many), whose default calls this once per task.
    fn on_finished(&self, priority: Priority) {
        let _ = priority;
    }

    /// Called with `count` tasks (at least 1) that one worker finished running at `priority`
    /// since its last report (see [`on_finished`](Self::on_finished)). The default calls
    /// `on_finished` `count` times; a policy that only counts should override it with one add.
    /// A panic in either is caught by the pool and kills no worker, but the tasks of that
    /// report that were not yet counted stay uncounted by the policy (the pool's own books,
    /// [`ThreadPool::stats`](crate::ThreadPool::stats), are not affected).
    ///
    /// A worker reports once 64 finished tasks are pending, and always before it parks,
    /// retires or exits. So while tasks run, the reported counts
    /// lag by at most 64 tasks per worker; once the pool is idle (every worker parked, what
    /// [`wait_idle`](crate::ThreadPool::wait_idle) waits for) or shut down they are exact.
    /// (One report per batch instead of one call per task: each call into a policy is a
    /// virtual call inside a containment frame, about a tenth of a priority pool's cost per
    /// empty task.)
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::{FifoQueue, Priority, QueuePolicy, QueuedTask, ThreadPool};
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// #[derive(Debug, Default)]
    /// struct Counting(FifoQueue, Arc<AtomicU64>);
    ///
    /// impl QueuePolicy for Counting {
    ///     fn push(&self, task: QueuedTask) { self.0.push(task) }
    ///     fn pop(&self) -> Option<QueuedTask> { self.0.pop() }
    ///     fn len(&self) -> usize { self.0.len() }
    ///     fn on_finished_many(&self, _: Priority, count: u64) {
    ///         self.1.fetch_add(count, Ordering::Relaxed);
    ///     }
    /// }
    ///
    /// let finished = Arc::new(AtomicU64::new(0));
    /// let policy = Counting(FifoQueue::new(), finished.clone());
    /// let pool = ThreadPool::builder().threads(2).queue_policy(policy).build().unwrap();
    /// for _ in 0..100 {
    ///     pool.spawn(|| ()).unwrap();
    /// }
    /// assert!(pool.wait_idle(Duration::from_secs(30)));
    /// assert_eq!(finished.load(Ordering::Relaxed), 100); // exact once idle
    /// ```
    fn on_finished_many(&self, priority: Priority, count: u64) {
        for _ in 0..count {
            self.on_finished(priority);
        }
    }

    /// Called with `count` entries (at least 1) the pool took from this policy at `priority`
    /// that did not run: their task had been cancelled (by its handle, its deadline,
    /// [`cancel_all`](crate::ThreadPool::cancel_all) or
    /// [`shutdown_now`](crate::ThreadPool::shutdown_now)), or the entry was stale (a
    /// [raise](crate::ThreadPool::raise_priority) queued a second entry for the task and the
    /// other one ran it). With [`on_finished_many`](Self::on_finished_many) it accounts for
    /// every entry the pool popped, so a policy's per-level books can balance: pushed =
    /// finished + discarded + still queued. Entries that a policy's own `push` or `pop` dropped
    /// are not reported here (the policy dropped them itself).
    ///
    /// Reported as soon as the pool discards the entries (a worker before it runs anything
    /// else; `cancel_all` and `shutdown_now` once per level before they return), so the counts
    /// are exact once the pool is idle or shut down. A panic is caught by the pool and kills no
    /// worker; that report stays uncounted by the policy (the pool's own books are not
    /// affected). The default does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::{FifoQueue, Priority, QueuePolicy, QueuedTask, ThreadPool};
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    ///
    /// #[derive(Debug, Default)]
    /// struct Counting(FifoQueue, Arc<AtomicU64>);
    ///
    /// impl QueuePolicy for Counting {
    ///     fn push(&self, task: QueuedTask) { self.0.push(task) }
    ///     fn pop(&self) -> Option<QueuedTask> { self.0.pop() }
    ///     fn len(&self) -> usize { self.0.len() }
    ///     fn on_discarded(&self, _: Priority, count: u64) {
    ///         self.1.fetch_add(count, Ordering::Relaxed);
    ///     }
    /// }
    ///
    /// let discarded = Arc::new(AtomicU64::new(0));
    /// let policy = Counting(FifoQueue::new(), discarded.clone());
    /// let pool = ThreadPool::builder().threads(1).queue_policy(policy).build().unwrap();
    /// // The one worker waits in this task, so the next three stay queued.
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// let (started, running) = std::sync::mpsc::channel();
    /// pool.spawn(move || {
    ///     started.send(()).unwrap();
    ///     let _ = gate.recv();
    /// })
    /// .unwrap();
    /// running.recv().unwrap();
    /// let queued: Vec<_> = (0..3).map(|_| pool.submit(|| ()).unwrap()).collect();
    /// assert!(queued[0].cancel()); // its entry stays queued until something takes it
    /// assert_eq!(pool.cancel_all(), 2); // cancels the other two, takes all three
    /// assert_eq!(discarded.load(Ordering::Relaxed), 3);
    /// drop(release);
    /// pool.shutdown();
    /// ```
    fn on_discarded(&self, priority: Priority, count: u64) {
        let _ = (priority, count);
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Memory per queued fire-and-forget task is a published figure: the default path stores
    /// only the work, and the priority travels beside it to a policy.
    #[test]
    fn the_default_path_stores_16_bytes_per_entry() {
        assert_eq!(std::mem::size_of::<Work>(), 16);
        // The policy's tag fits in the padding: a slot of a lock-free queue of entries (the
        // entry and an 8-byte state word) is 32 bytes, and a block of 63 of them stays under
        // 2 KiB (see policy-priority's README, "Measured figures").
        assert_eq!(std::mem::size_of::<QueuedTask>(), 24);
    }

    #[test]
    fn a_policy_sees_the_deadline_of_a_task_and_none_for_a_job() {
        let at = Instant::now() + std::time::Duration::from_secs(3600);
        let (entry, _ops, _raw) = crate::task::new_task(
            crate::task::Plain(|| 5),
            Priority::High,
            Some(at),
            crate::task::PoolId::NONE,
        );
        let task = QueuedTask::from_work(Work::Task(entry), Priority::High);
        let seen = task.deadline().expect("the task has a deadline");
        let error = seen.max(at) - seen.min(at);
        assert!(error < std::time::Duration::from_micros(1), "{error:?}");
        assert!(task.task_id().is_some());
        assert!(!task.is_stale());
        assert_eq!(task.run(), Ok(()));
        let job = QueuedTask::new(Priority::Low, || panic!("boom"));
        assert_eq!(job.deadline(), None);
        assert_eq!(job.run(), Err("boom".to_string()));
    }

    #[test]
    fn the_default_batch_pop_keeps_the_policy_order_and_its_bound() {
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let queue = FifoQueue::new();
        for i in 0..5 {
            let order = order.clone();
            queue.push(QueuedTask::new(Priority::Normal, move || {
                order.lock().unwrap().push(i)
            }));
        }
        let mut out = Vec::new();
        assert_eq!(queue.pop_batch(3, &mut out), 3);
        assert_eq!(queue.pop_batch(3, &mut out), 2);
        assert_eq!(queue.pop_batch(3, &mut out), 0);
        for task in out {
            task.run().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
    }
}
