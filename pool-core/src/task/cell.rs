//! The task cell: one allocation holding the state word, the closure and the result slot.

use std::fmt;
use std::task::Waker;
use std::time::Instant;

use crate::error::{CancelReason, TaskError};
use crate::executor::Priority;
use crate::sync::{AtomicU8, Condvar, ErasedArc as Arc, Mutex, Ordering, UnsafeCell};
use crate::unwind::{catch_panic, drop_quietly, wake_quietly};

use super::entry::{EntryVTable, TaskRef};

const PHASE_MASK: u8 = 0b11;
const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const FINISHED: u8 = 2;
const CANCELLED: u8 = 3;
const CANCEL_REQUESTED: u8 = 0b100;
const ACCOUNTED: u8 = 0b1000;
// The two flags below live in the state word rather than in the slot, where they would cost a
// padded word per task (the cell is 88 bytes with them here, 96 in the slot). Both are only
// written and read with the slot's mutex held, so the mutex orders them; the state word's
// compare-and-swap loops keep flag bits as they are.
/// The handle's owner is blocked in `join`: completion must notify the condvar. (Only the
/// handle's owner joins, and `join` consumes the handle, so one flag is enough.)
const JOINER_BLOCKED: u8 = 0b1_0000;
/// The outcome was taken by the handle.
const OUTCOME_TAKEN: u8 = 0b10_0000;

/// A task's identity, unique in the process.
///
/// # Examples
///
/// ```
/// use pool_core::ThreadPool;
///
/// let pool = ThreadPool::new(1).unwrap();
/// let a = pool.submit(|| 1).unwrap();
/// let b = pool.submit(|| 2).unwrap();
/// assert_ne!(a.id(), b.id());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(u64);

impl TaskId {
    /// A fresh id, never handed out before in this process.
    pub fn next() -> TaskId {
        TaskId(crate::sync::next_unique_id())
    }

    /// The id as a number (for logs and traces).
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task#{}", self.0)
    }
}

/// Lets a running task see that a cancel was requested, so it can stop early.
///
/// Handed to closures submitted with
/// [`ThreadPool::submit_cancellable`](crate::ThreadPool::submit_cancellable).
///
/// # Examples
///
/// ```
/// use pool_core::ThreadPool;
/// use std::sync::mpsc;
///
/// let pool = ThreadPool::new(1).unwrap();
/// let (started_tx, started_rx) = mpsc::channel();
/// let handle = pool
///     .submit_cancellable(move |token| {
///         started_tx.send(()).unwrap();
///         let mut steps = 0u64;
///         while !token.is_cancelled() {
///             steps += 1;
///             std::thread::yield_now();
///         }
///         steps
///     })
///     .unwrap();
/// started_rx.recv().unwrap();
/// assert!(!handle.cancel()); // too late to prevent the start, but the task sees the request
/// assert!(handle.join().is_ok());
/// ```
pub struct CancelToken<'a> {
    header: &'a Header,
}

impl CancelToken<'_> {
    /// Whether someone asked this task to stop.
    pub fn is_cancelled(&self) -> bool {
        self.header.state.load(Ordering::Acquire) & CANCEL_REQUESTED != 0
    }
}

impl fmt::Debug for CancelToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("task", &self.header.id)
            .field("cancel_requested", &self.is_cancelled())
            .finish()
    }
}

/// The part of a task that does not depend on its types.
pub(crate) struct Header {
    id: TaskId,
    state: AtomicU8,
    /// The highest priority any queue entry of this task carries (raised, never lowered).
    priority: AtomicU8,
    /// The pool whose queue holds the task ([`PoolId`]), or [`PoolId::NONE`] for a task made
    /// for some other executor: only that pool may queue a second entry for it (a raise). In
    /// the padding after the two bytes above, so the header stays 32 bytes.
    home: PoolId,
    /// The start deadline, packed into 8 bytes (an `Option<Instant>` takes 16, and every queued
    /// task with a handle carries this field).
    deadline: Deadline,
    /// How the queue's thin reference reaches the typed cell (see [`TaskRef`]).
    pub(super) vtable: &'static EntryVTable,
}

/// Which pool a task belongs to: a number each pool takes when it is built, never 0 (that is
/// [`PoolId::NONE`], a task made for another executor). 32 bits, to fit the header's padding:
/// the numbers wrap only after 2^32 pools built in one process (a stale handle of the first
/// could then be raised on the last, while both are alive: a task run on the wrong pool, never
/// unsound).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PoolId(u32);

impl PoolId {
    pub(crate) const NONE: PoolId = PoolId(0);

    /// A number for a new pool. A plain process-wide counter, not part of any protocol that
    /// loom checks (as `next_unique_id`).
    pub(crate) fn next() -> PoolId {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        loop {
            let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if id != PoolId::NONE.0 {
                return PoolId(id);
            }
        }
    }
}

/// An optional instant as nanoseconds after a process-wide epoch, plus one; 0 means none.
#[derive(Clone, Copy)]
struct Deadline(u64);

impl Deadline {
    fn new(deadline: Option<Instant>) -> Deadline {
        match deadline {
            None => Deadline(0),
            // A deadline before the epoch has passed already: 1 ns after the epoch is as good.
            Some(at) => {
                let nanos = at
                    .saturating_duration_since(crate::clock::epoch())
                    .as_nanos();
                Deadline(u64::try_from(nanos).unwrap_or(u64::MAX - 1) + 1)
            }
        }
    }

    fn instant(self) -> Option<Instant> {
        match self.0 {
            0 => None,
            nanos => crate::clock::epoch().checked_add(std::time::Duration::from_nanos(nanos - 1)),
        }
    }

    fn has_passed(self) -> bool {
        self.0 != 0 && {
            let now = Instant::now()
                .saturating_duration_since(crate::clock::epoch())
                .as_nanos();
            u128::from(self.0 - 1) < now
        }
    }
}

impl Header {
    pub(crate) fn phase(&self) -> u8 {
        self.state.load(Ordering::Acquire) & PHASE_MASK
    }

    pub(crate) fn is_queued(&self) -> bool {
        self.phase() == QUEUED
    }

    pub(crate) fn is_running(&self) -> bool {
        self.phase() == RUNNING
    }

    pub(crate) fn is_finished(&self) -> bool {
        matches!(self.phase(), FINISHED | CANCELLED)
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.phase() == CANCELLED
    }

    /// The start deadline the task was submitted with.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline.instant()
    }

    pub(crate) fn id(&self) -> TaskId {
        self.id
    }

    /// The pool the task was submitted to, if a pool made it.
    pub(crate) fn home(&self) -> PoolId {
        self.home
    }

    pub(crate) fn priority(&self) -> Priority {
        Priority::from_index(self.priority.load(Ordering::Relaxed) as usize)
            .unwrap_or(Priority::Normal)
    }

    /// Raises the recorded priority; returns whether `to` is higher than what was recorded.
    pub(crate) fn raise_priority(&self, to: Priority) -> bool {
        let before = self.priority.fetch_max(to as u8, Ordering::AcqRel);
        before < to as u8
    }

    /// Moves `QUEUED -> to`; the one caller that succeeds owns the closure.
    fn claim(&self, to: u8) -> bool {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            if current & PHASE_MASK != QUEUED {
                return false;
            }
            let next = (current & !PHASE_MASK) | to;
            match self.state.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// `RUNNING -> FINISHED`, keeping the flag bits.
    fn finish(&self) {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            let next = (current & !PHASE_MASK) | FINISHED;
            match self.state.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// Reads a flag that is only written under the slot's mutex (the caller holds it).
    fn has_flag(&self, flag: u8) -> bool {
        self.state.load(Ordering::Relaxed) & flag != 0
    }

    /// Writes a flag; the caller holds the slot's mutex (see `JOINER_BLOCKED`).
    fn set_flag(&self, flag: u8, on: bool) {
        if on {
            self.state.fetch_or(flag, Ordering::Relaxed);
        } else {
            self.state.fetch_and(!flag, Ordering::Relaxed);
        }
    }

    fn request_cancel(&self) {
        self.state.fetch_or(CANCEL_REQUESTED, Ordering::AcqRel);
    }

    /// The first caller after a cancellation gets `true` and counts it in the stats.
    pub(crate) fn claim_accounting(&self) -> bool {
        self.state.fetch_or(ACCOUNTED, Ordering::AcqRel) & ACCOUNTED == 0
    }
}

/// Where the outcome waits for its reader.
struct Slot<T> {
    outcome: Option<Result<T, TaskError>>,
    waker: Option<Waker>,
}

// `repr(C)` puts the header at offset 0, so a pointer to the cell is a pointer to its header:
// what lets the queue hold a thin `TaskRef` (see there).
#[repr(C)]
// (`repr(C)` also keeps the declared order: the slot before the closure, so that an empty
// closure's one-byte `Option` tag packs after the condvar instead of padding a word.)
pub(crate) struct TaskCell<F, T> {
    header: Header,
    slot: Mutex<Slot<T>>,
    done: Condvar,
    /// Owned by whoever wins the `QUEUED ->` transition (see the README).
    func: UnsafeCell<Option<F>>,
}

// SAFETY: `func` is only accessed by the single winner of the `QUEUED ->` compare-and-swap (see
// `Header::claim`), so sharing the cell between threads never shares `F`; `F: Send` lets the
// winner be any thread. Everything else in the cell is already `Sync` (atomics, a mutex).
unsafe impl<F: Send, T: Send> Sync for TaskCell<F, T> {}

impl<F, T> TaskCell<F, T> {
    fn complete(&self, outcome: Result<T, TaskError>) {
        // Planted bug (loom-tests `core::blocking_join_sees_completion`, `.ci/loom-planted`): the
        // joiner flag read before the lock, where a joiner may still be on its way to waiting.
        #[cfg(loom_broken_join_flag)]
        let flag_read_early = self.header.has_flag(JOINER_BLOCKED);
        let (waker, notify) = {
            let mut slot = self.slot.lock();
            slot.outcome = Some(outcome);
            (slot.waker.take(), self.header.has_flag(JOINER_BLOCKED))
        };
        #[cfg(loom_broken_join_flag)]
        let notify = flag_read_early && notify;
        if notify {
            self.done.notify_all();
        }
        if let Some(waker) = waker {
            // A waker is user code: a panicking `wake` must not unwind into the worker.
            wake_quietly(waker);
        }
    }

    /// Takes the closure back from a task no worker has reached (its job was refused): moves it
    /// `QUEUED -> CANCELLED` without an outcome, so call it only when nobody holds the handle.
    pub(crate) fn reclaim(&self) -> Option<F> {
        if self.header.claim(CANCELLED) {
            self.take_func()
        } else {
            None
        }
    }

    fn take_func(&self) -> Option<F> {
        // SAFETY: only called by the winner of `Header::claim`, which is unique (see README).
        self.func.with_mut(|func| unsafe { (*func).take() })
    }
}

/// What happened when a worker reached a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RunOutcome {
    Completed,
    Panicked,
    /// It had been cancelled; `count` is true for the one discarder that counts it.
    Cancelled {
        count: bool,
    },
    /// Another entry for the same task already ran it (priority raise duplicates).
    Stale,
}

/// The queue's view of a task, with its types erased.
pub(crate) trait RawTask: Send + Sync {
    fn header(&self) -> &Header;
    /// Runs the task if it is still queued, calling `on_start` just before the closure.
    fn run(&self, on_start: &dyn Fn()) -> RunOutcome;
    fn cancel(&self, reason: CancelReason) -> bool;
}

/// The handle's view of a task, with the closure's type erased.
pub(crate) trait TaskOps<T>: Send + Sync {
    fn header(&self) -> &Header;
    fn cancel(&self, reason: CancelReason) -> bool;
    fn request_cancel(&self);
    /// Takes the outcome if it is there; otherwise registers `waker` (if any).
    fn poll_outcome(&self, waker: Option<&Waker>) -> Option<Result<T, TaskError>>;
    /// Blocks until the outcome is there (or `deadline` passes) and takes it.
    fn wait_outcome(&self, deadline: Option<Instant>) -> Option<Result<T, TaskError>>;
    fn outcome_taken(&self) -> bool;
}

impl<F, T> RawTask for TaskCell<F, T>
where
    F: TaskFn<T>,
    T: Send,
{
    fn header(&self) -> &Header {
        &self.header
    }

    fn run(&self, on_start: &dyn Fn()) -> RunOutcome {
        if self.header.deadline.has_passed() && RawTask::cancel(self, CancelReason::DeadlineExpired)
        {
            let count = self.header.claim_accounting();
            return RunOutcome::Cancelled { count };
        }
        if !self.header.claim(RUNNING) {
            return if self.header.is_cancelled() {
                RunOutcome::Cancelled {
                    count: self.header.claim_accounting(),
                }
            } else {
                RunOutcome::Stale
            };
        }
        on_start();
        let Some(func) = self.take_func() else {
            // Unreachable by the claim protocol; report rather than panic inside a worker.
            self.header.finish();
            self.complete(Err(TaskError::Panicked(
                "pool-core bug: a started task had no closure".into(),
            )));
            return RunOutcome::Panicked;
        };
        let token = CancelToken {
            header: &self.header,
        };
        // The payload of a panic is user code too (its `Drop` may panic): `catch_panic` keeps
        // only the message and drops the payload quietly.
        let result = catch_panic(|| func.call(&token));
        self.header.finish();
        match result {
            Ok(value) => {
                self.complete(Ok(value));
                RunOutcome::Completed
            }
            Err(message) => {
                self.complete(Err(TaskError::Panicked(message)));
                RunOutcome::Panicked
            }
        }
    }

    fn cancel(&self, reason: CancelReason) -> bool {
        if !self.header.claim(CANCELLED) {
            return false;
        }
        // Drop the closure now: its captures may hold resources the caller wants back. A
        // panicking destructor must not unwind into whoever cancelled (often a worker).
        drop_quietly(self.take_func());
        self.complete(Err(TaskError::Cancelled(reason)));
        true
    }
}

impl<F, T> TaskOps<T> for TaskCell<F, T>
where
    F: TaskFn<T>,
    T: Send,
{
    fn header(&self) -> &Header {
        &self.header
    }

    fn cancel(&self, reason: CancelReason) -> bool {
        RawTask::cancel(self, reason)
    }

    fn request_cancel(&self) {
        self.header.request_cancel();
    }

    fn poll_outcome(&self, waker: Option<&Waker>) -> Option<Result<T, TaskError>> {
        let mut slot = self.slot.lock();
        if let Some(outcome) = slot.outcome.take() {
            self.header.set_flag(OUTCOME_TAKEN, true);
            return Some(outcome);
        }
        if let Some(waker) = waker {
            match &slot.waker {
                Some(existing) if existing.will_wake(waker) => {}
                _ => slot.waker = Some(waker.clone()),
            }
        }
        None
    }

    fn wait_outcome(&self, deadline: Option<Instant>) -> Option<Result<T, TaskError>> {
        let mut slot = self.slot.lock();
        loop {
            if let Some(outcome) = slot.outcome.take() {
                self.header.set_flag(OUTCOME_TAKEN, true);
                return Some(outcome);
            }
            self.header.set_flag(JOINER_BLOCKED, true);
            let (guard, timed_out) = self.done.wait_deadline(slot, deadline);
            slot = guard;
            self.header.set_flag(JOINER_BLOCKED, false);
            if timed_out && slot.outcome.is_none() {
                return None;
            }
        }
    }

    fn outcome_taken(&self) -> bool {
        let _slot = self.slot.lock();
        self.header.has_flag(OUTCOME_TAKEN)
    }
}

/// Builds a task; returns the queue entry and the handle's view of it.
pub(crate) fn new_task<F, T>(
    func: F,
    priority: Priority,
    deadline: Option<Instant>,
    home: PoolId,
) -> (TaskRef, Arc<dyn TaskOps<T>>, Arc<dyn RawTask>)
where
    F: TaskFn<T> + 'static,
    T: Send + 'static,
{
    let (entry, ops, raw, _) = new_reclaimable_task(func, priority, deadline, home);
    (entry, ops, raw)
}

/// [`new_task`], also returning the typed cell so the creator can take the closure back with
/// [`TaskCell::reclaim`] when an executor refuses the job.
#[allow(clippy::type_complexity)] // the four views of one allocation, named where they are used
pub(crate) fn new_reclaimable_task<F, T>(
    func: F,
    priority: Priority,
    deadline: Option<Instant>,
    home: PoolId,
) -> (
    TaskRef,
    Arc<dyn TaskOps<T>>,
    Arc<dyn RawTask>,
    Arc<TaskCell<F, T>>,
)
where
    F: TaskFn<T> + 'static,
    T: Send + 'static,
{
    // One allocation for the queue entry, the handle and its raise ticket (see `ErasedArc`).
    let cell = Arc::new(TaskCell {
        header: Header {
            id: TaskId::next(),
            state: AtomicU8::new(QUEUED),
            priority: AtomicU8::new(priority as u8),
            home,
            deadline: Deadline::new(deadline),
            vtable: EntryVTable::of::<F, T>(),
        },
        func: UnsafeCell::new(Some(func)),
        slot: Mutex::new(Slot {
            outcome: None,
            waker: None,
        }),
        done: Condvar::new(),
    });
    let raw: Arc<dyn RawTask> = cell.clone();
    let ops: Arc<dyn TaskOps<T>> = cell.clone();
    (TaskRef::from_cell(cell.clone()), ops, raw, cell)
}

/// A task's closure: plain, or given the task's [`CancelToken`].
pub(crate) trait TaskFn<T>: Send {
    fn call(self, token: &CancelToken<'_>) -> T;
}

/// A closure that does not look at its cancel token.
pub(crate) struct Plain<F>(pub(crate) F);

impl<F, T> TaskFn<T> for Plain<F>
where
    F: FnOnce() -> T + Send,
{
    fn call(self, _token: &CancelToken<'_>) -> T {
        (self.0)()
    }
}

/// A closure that checks its cancel token.
pub(crate) struct WithToken<F>(pub(crate) F);

impl<F, T> TaskFn<T> for WithToken<F>
where
    F: for<'a> FnOnce(&CancelToken<'a>) -> T + Send,
{
    fn call(self, token: &CancelToken<'_>) -> T {
        (self.0)(token)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Memory per queued task with a handle is a published target (at most 128 bytes with
    /// the queue entry); this pins the cell's share of it for an empty closure.
    #[test]
    fn an_empty_task_cell_stays_small() {
        fn size_of_cell<F, T>(_: &F) -> usize
        where
            F: FnOnce() -> T,
        {
            std::mem::size_of::<TaskCell<Plain<F>, T>>()
        }
        let f = || ();
        let size = size_of_cell(&f);
        println!("TaskCell for an empty task: {size} bytes");
        assert!(size <= 88, "TaskCell for an empty task is {size} bytes");
    }

    /// The pool number sits in the padding after the state and priority bytes.
    #[test]
    fn the_header_stays_32_bytes() {
        assert_eq!(std::mem::size_of::<Header>(), 32);
    }

    #[test]
    fn deadlines_pack_into_eight_bytes_and_compare_right() {
        assert_eq!(std::mem::size_of::<Deadline>(), 8);
        assert!(!Deadline::new(None).has_passed());
        let past = Instant::now() - std::time::Duration::from_millis(5);
        assert!(Deadline::new(Some(past)).has_passed());
        let future = Instant::now() + std::time::Duration::from_secs(3600);
        assert!(!Deadline::new(Some(future)).has_passed());
    }
}
