//! Hand-made executors: what a test needs an `Executor` to do with a job that a real pool would
//! not do on demand (refuse it, drop it, panic, keep it for later, record its priority).

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use pool_core::{Executor, Job, Priority, Rejected};

// The executors' own locks must survive a job or a test panicking while one is held.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Refuses every job, handing it back.
///
/// # Examples
///
/// ```
/// use pool_core::{ExecutorExt, Rejected};
///
/// let Err(Rejected(f)) = test_kit::Refusing.submit(|| 5) else { unreachable!() };
/// assert_eq!(f(), 5);
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct Refusing;

impl Executor for Refusing {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        Err(Rejected(job))
    }
}

/// Accepts every job and drops it unrun, as a queue discarded by `shutdown_now` would.
///
/// # Examples
///
/// ```
/// use pool_core::{CancelReason, ExecutorExt, TaskError};
///
/// let handle = test_kit::Dropping.submit(|| 1).unwrap();
/// assert_eq!(handle.join(), Err(TaskError::Cancelled(CancelReason::Dropped)));
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct Dropping;

impl Executor for Dropping {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        drop(job);
        Ok(())
    }
}

/// Panics in `execute` with the message `"hostile executor"`, holding the job (which is dropped
/// while the panic unwinds).
///
/// # Examples
///
/// ```
/// use pool_core::Executor;
///
/// test_kit::quiet_panics(|message| message.starts_with("hostile"));
/// let caught = std::panic::catch_unwind(|| test_kit::Panicking.execute(Box::new(|| ())));
/// assert!(caught.is_err());
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct Panicking;

impl Executor for Panicking {
    fn execute(&self, _job: Job) -> Result<(), Rejected<Job>> {
        panic!("hostile executor");
    }
}

/// Keeps jobs (with the priority each came with) until the test runs or drops them: the test
/// decides when and in which order queued work runs. Once [`close`](Self::close)d it refuses new
/// jobs, like a pool after shutdown.
///
/// # Examples
///
/// ```
/// use pool_core::{ExecutorExt, Priority};
///
/// let deferred = test_kit::Deferred::default();
/// let low = deferred.submit_at(Priority::Low, || "low").unwrap();
/// let high = deferred.submit_at(Priority::High, || "high").unwrap();
/// assert_eq!(deferred.priorities(), [Priority::Low, Priority::High]);
/// assert!(deferred.run_at(1)); // the High job first
/// assert_eq!(high.join(), Ok("high"));
/// assert_eq!(deferred.run_all(), 1);
/// assert_eq!(low.join(), Ok("low"));
/// deferred.close();
/// assert!(deferred.submit(|| ()).is_err());
/// ```
#[derive(Default)]
pub struct Deferred {
    jobs: Mutex<VecDeque<(Job, Priority)>>,
    closed: AtomicBool,
}

impl fmt::Debug for Deferred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deferred")
            .field("queued", &self.len())
            .field("closed", &self.closed.load(Ordering::SeqCst))
            .finish()
    }
}

impl Deferred {
    /// Refuses every later job (handing it back).
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// How many jobs are waiting.
    pub fn len(&self) -> usize {
        lock(&self.jobs).len()
    }

    /// Whether no job is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The priorities of the waiting jobs, oldest first.
    pub fn priorities(&self) -> Vec<Priority> {
        lock(&self.jobs).iter().map(|(_, p)| *p).collect()
    }

    /// Runs the job at `index` (removing it first, so that it may queue more); false if there
    /// is none.
    pub fn run_at(&self, index: usize) -> bool {
        let job = lock(&self.jobs).remove(index);
        match job {
            Some((job, _)) => {
                job();
                true
            }
            None => false,
        }
    }

    /// Runs the oldest job; false if there is none.
    pub fn run_next(&self) -> bool {
        self.run_at(0)
    }

    /// Runs jobs (including ones queued while running) until none is left; returns how many.
    pub fn run_all(&self) -> usize {
        let mut n = 0;
        while self.run_next() {
            n += 1;
        }
        n
    }

    /// Takes every waiting job out, with its priority, for the test to run or drop.
    pub fn take_all(&self) -> Vec<(Job, Priority)> {
        lock(&self.jobs).drain(..).collect()
    }

    /// Drops every waiting job unrun, as a pool's `shutdown_now` would; returns how many.
    pub fn drop_all(&self) -> usize {
        // Dropped outside the lock: a job's captures may queue more work when dropped.
        let jobs = self.take_all();
        jobs.len()
    }
}

impl Executor for Deferred {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        self.execute_with_priority(job, Priority::Normal)
    }

    fn execute_with_priority(&self, job: Job, priority: Priority) -> Result<(), Rejected<Job>> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Rejected(job));
        }
        lock(&self.jobs).push_back((job, priority));
        Ok(())
    }
}

/// Runs every job inline, on the caller's thread, and records the priority it came with.
///
/// # Examples
///
/// ```
/// use pool_core::{ExecutorExt, Priority};
///
/// let recording = test_kit::Recording::default();
/// assert_eq!(recording.submit_at(Priority::High, || 1).unwrap().join(), Ok(1));
/// assert_eq!(recording.priorities(), [Priority::High]);
/// ```
#[derive(Debug, Default)]
pub struct Recording(Mutex<Vec<Priority>>);

impl Recording {
    /// The priorities of the jobs run so far, in order.
    pub fn priorities(&self) -> Vec<Priority> {
        lock(&self.0).clone()
    }
}

impl Executor for Recording {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        self.execute_with_priority(job, Priority::Normal)
    }

    fn execute_with_priority(&self, job: Job, priority: Priority) -> Result<(), Rejected<Job>> {
        lock(&self.0).push(priority);
        job();
        Ok(())
    }
}

/// Passes the first `budget` jobs to `inner` and refuses every later one (handing it back).
///
/// # Examples
///
/// ```
/// use pool_core::{ExecutorExt, InlineExecutor};
///
/// let budget = test_kit::Budget::new(InlineExecutor, 1);
/// assert!(budget.submit(|| ()).is_ok());
/// assert!(budget.submit(|| ()).is_err());
/// ```
#[derive(Debug)]
pub struct Budget<E> {
    inner: E,
    left: AtomicUsize,
}

impl<E: Executor> Budget<E> {
    /// Passes `budget` jobs to `inner`, then refuses.
    pub fn new(inner: E, budget: usize) -> Budget<E> {
        Budget {
            inner,
            left: AtomicUsize::new(budget),
        }
    }
}

impl<E: Executor> Executor for Budget<E> {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        self.execute_with_priority(job, Priority::Normal)
    }

    fn execute_with_priority(&self, job: Job, priority: Priority) -> Result<(), Rejected<Job>> {
        let spent = self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        match spent {
            Ok(_) => self.inner.execute_with_priority(job, priority),
            Err(_) => Err(Rejected(job)),
        }
    }
}

/// Passes jobs to `inner`, except on the chosen calls (1-based, counting every call), where it
/// drops the job and panics with `"hostile executor"`.
///
/// # Examples
///
/// ```
/// use pool_core::{Executor, InlineExecutor};
///
/// test_kit::quiet_panics(|message| message.starts_with("hostile"));
/// let exec = test_kit::PanicsOn::new(InlineExecutor, [2]);
/// assert!(exec.execute(Box::new(|| ())).is_ok());
/// assert!(std::panic::catch_unwind(|| exec.execute(Box::new(|| ()))).is_err());
/// assert_eq!(exec.calls(), 2);
/// ```
#[derive(Debug)]
pub struct PanicsOn<E> {
    inner: E,
    calls: AtomicUsize,
    panic_on: HashSet<usize>,
}

impl<E: Executor> PanicsOn<E> {
    /// Panics on the calls numbered in `panic_on` (the first call is 1).
    pub fn new(inner: E, panic_on: impl IntoIterator<Item = usize>) -> PanicsOn<E> {
        PanicsOn {
            inner,
            calls: AtomicUsize::new(0),
            panic_on: panic_on.into_iter().collect(),
        }
    }

    /// The executor jobs pass to.
    pub fn inner(&self) -> &E {
        &self.inner
    }

    /// How many calls were made so far, panicking ones included.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl<E: Executor> Executor for PanicsOn<E> {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        self.execute_with_priority(job, Priority::Normal)
    }

    fn execute_with_priority(&self, job: Job, priority: Priority) -> Result<(), Rejected<Job>> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.panic_on.contains(&call) {
            drop(job);
            panic!("hostile executor");
        }
        self.inner.execute_with_priority(job, priority)
    }
}
