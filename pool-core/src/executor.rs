//! The minimal executor trait every policy and the DAG scheduler build on.

use std::fmt;
use std::sync::Arc as StdArc;

/// A unit of fire-and-forget work.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// A job the executor refused, handed back to the caller so nothing is silently dropped.
///
/// Like crossbeam's `SendError<T>`, the value is public: take it back with `.0` or
/// [`Rejected::into_inner`].
///
/// # Examples
///
/// ```
/// use pool_core::{Executor, ThreadPool};
///
/// let pool = ThreadPool::new(1).unwrap();
/// pool.shutdown();
/// let refused = pool.execute(Box::new(|| println!("never runs"))).unwrap_err();
/// let job = refused.into_inner(); // the job is ours again
/// drop(job);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the executor refused the job: it is shut down")]
pub struct Rejected<J>(pub J);

impl<J> Rejected<J> {
    /// The refused job.
    pub fn into_inner(self) -> J {
        self.0
    }
}

impl<J> fmt::Debug for Rejected<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Rejected(..)")
    }
}

/// Five scheduling levels, from most to least urgent.
///
/// Every task carries one. The FIFO pool ignores it; the `policy-priority` queue serves higher
/// levels first. It lives in pool-core so that crates that only hold an [`Executor`] (the DAG
/// scheduler, the coalescer) can pass a hint without depending on the priority policy.
///
/// # Examples
///
/// ```
/// use pool_core::Priority;
///
/// assert!(Priority::Critical > Priority::Idle);
/// assert_eq!(Priority::default(), Priority::Normal);
/// assert_eq!(Priority::ALL.len(), 5);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Priority {
    /// Only when nothing else is waiting (indexing, statistics).
    Idle = 0,
    /// Background work (auto-save).
    Low = 1,
    /// The default.
    #[default]
    Normal = 2,
    /// User-visible work (a preview render).
    High = 3,
    /// Must run next (input handling).
    Critical = 4,
}

impl Priority {
    /// Every level, most urgent first.
    pub const ALL: [Priority; 5] = [
        Priority::Critical,
        Priority::High,
        Priority::Normal,
        Priority::Low,
        Priority::Idle,
    ];

    /// The level's index, 0 for `Idle` up to 4 for `Critical`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The level with the given [`index`](Self::index), if any.
    pub fn from_index(index: usize) -> Option<Priority> {
        Some(match index {
            0 => Priority::Idle,
            1 => Priority::Low,
            2 => Priority::Normal,
            3 => Priority::High,
            4 => Priority::Critical,
            _ => return None,
        })
    }
}

/// Hands jobs to threads: the object-safe trait every policy and the DAG scheduler build on.
///
/// Implementors either accept the job (it will run, or be accounted as cancelled by the executor's
/// own rules) or give it back in [`Rejected`].
///
/// **An executor may drop an accepted job without running it** (a pool shut down with
/// `shutdown_now`, a runtime dropped with work queued); the job's destructor is then the only
/// notice. Everything built on this trait (task handles, the coalescer, the DAG scheduler) puts a
/// drop guard in the job it hands over, so a dropped job resolves its handle (as cancelled) instead
/// of leaving it waiting forever. Executors may also panic in `execute`: callers treat that like a
/// refusal, and the job is dropped, which resolves it the same way. It is implemented for [`crate::ThreadPool`], for
/// references and `Arc`s of executors, and is easy to implement as an adapter to another runtime.
///
/// # Examples
///
/// An adapter that runs each job on a new thread:
///
/// ```
/// use pool_core::{Executor, Job, Rejected};
///
/// struct ThreadPerJob;
///
/// impl Executor for ThreadPerJob {
///     fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
///         std::thread::spawn(job);
///         Ok(())
///     }
/// }
///
/// let (tx, rx) = std::sync::mpsc::channel();
/// ThreadPerJob.execute(Box::new(move || tx.send(42).unwrap())).unwrap();
/// assert_eq!(rx.recv().unwrap(), 42);
/// ```
pub trait Executor: Send + Sync {
    /// Runs `job` at some point, or hands it back.
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>>;

    /// Like [`execute`](Self::execute) with a scheduling hint; executors without priorities
    /// ignore the hint (the default).
    fn execute_with_priority(&self, job: Job, priority: Priority) -> Result<(), Rejected<Job>> {
        let _ = priority;
        self.execute(job)
    }

    /// Hands over every job `jobs` yields, in order, at one `priority`: an executor may push
    /// them together and wake its threads once for all of them (the [`crate::ThreadPool`] does,
    /// from its own workers). The default hands them to
    /// [`execute_with_priority`](Self::execute_with_priority) one by one.
    ///
    /// # Errors
    ///
    /// The first job refused, handed back; the jobs after it are not taken from `jobs` (the
    /// caller still owns them).
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::{Executor, Job, Priority, ThreadPool};
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// let (tx, rx) = mpsc::channel();
    /// let mut jobs = (0..3).map(|i| {
    ///     let tx = tx.clone();
    ///     Box::new(move || tx.send(i).unwrap()) as Job
    /// });
    /// pool.execute_batch(&mut jobs, Priority::Normal).unwrap();
    /// let mut got: Vec<i32> = rx.iter().take(3).collect();
    /// got.sort();
    /// assert_eq!(got, [0, 1, 2]);
    /// ```
    fn execute_batch(
        &self,
        jobs: &mut dyn Iterator<Item = Job>,
        priority: Priority,
    ) -> Result<(), Rejected<Job>> {
        for job in jobs {
            self.execute_with_priority(job, priority)?;
        }
        Ok(())
    }

    /// Whether the priority passed to [`execute_with_priority`](Self::execute_with_priority)
    /// changes the order in which jobs start. Callers that spend work on priorities (the
    /// coalescer's priority raises, the DAG scheduler's critical-path priorities) skip it when
    /// this is `false`, the default.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::{Executor, InlineExecutor, ThreadPool};
    ///
    /// assert!(!InlineExecutor.honors_priority());
    /// assert!(!ThreadPool::new(1).unwrap().honors_priority()); // the FIFO default
    /// ```
    fn honors_priority(&self) -> bool {
        false
    }
}

/// Implements [`Executor`] for pointers to executors (`&E`, `Arc<E>`, `Box<E>`) by forwarding
/// every method to the pointee, so a method added to the trait is forwarded in one place and a
/// pointer never falls back to a default the pointee overrides.
macro_rules! forward_to_pointee {
    ($($pointer:ty),+ $(,)?) => {$(
        impl<E: Executor + ?Sized> Executor for $pointer {
            fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
                (**self).execute(job)
            }
            fn execute_with_priority(
                &self,
                job: Job,
                priority: Priority,
            ) -> Result<(), Rejected<Job>> {
                (**self).execute_with_priority(job, priority)
            }
            fn execute_batch(
                &self,
                jobs: &mut dyn Iterator<Item = Job>,
                priority: Priority,
            ) -> Result<(), Rejected<Job>> {
                (**self).execute_batch(jobs, priority)
            }
            fn honors_priority(&self) -> bool {
                (**self).honors_priority()
            }
        }
    )+};
}

forward_to_pointee!(&E, StdArc<E>, Box<E>);

/// Runs every job immediately on the calling thread.
///
/// Useful for tests, for deterministic single-threaded runs of a DAG, and as the simplest
/// possible [`Executor`].
///
/// # Examples
///
/// ```
/// use pool_core::{Executor, InlineExecutor};
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let runs = Arc::new(AtomicUsize::new(0));
/// let r = runs.clone();
/// InlineExecutor.execute(Box::new(move || { r.fetch_add(1, Ordering::SeqCst); })).unwrap();
/// assert_eq!(runs.load(Ordering::SeqCst), 1);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct InlineExecutor;

impl Executor for InlineExecutor {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        job();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ThreadPool;
    use std::sync::mpsc;
    use std::time::Duration;

    const PATIENCE: Duration = Duration::from_secs(60);

    /// Accepts (and runs) `budget` jobs, then refuses.
    struct Budget(std::sync::atomic::AtomicUsize);

    impl Executor for Budget {
        fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
            let left = self.0.load(std::sync::atomic::Ordering::SeqCst);
            if left == 0 {
                return Err(Rejected(job));
            }
            self.0.store(left - 1, std::sync::atomic::Ordering::SeqCst);
            job();
            Ok(())
        }
    }

    fn counting_jobs(n: usize, tx: &mpsc::Sender<usize>) -> impl Iterator<Item = Job> + '_ {
        (0..n).map(move |i| {
            let tx = tx.clone();
            Box::new(move || tx.send(i).unwrap()) as Job
        })
    }

    #[test]
    fn the_default_batch_stops_at_the_first_refusal_and_leaves_the_rest() {
        let (tx, rx) = mpsc::channel();
        let mut jobs = counting_jobs(5, &tx);
        let refused = Budget(2.into()).execute_batch(&mut jobs, Priority::Normal);
        assert!(refused.is_err());
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1]);
        // The refused job came back; the two after it were not taken.
        assert_eq!(jobs.count(), 2);
    }

    #[test]
    fn a_batch_from_a_worker_runs_every_job_once() {
        let pool = std::sync::Arc::new(ThreadPool::new(2).unwrap());
        let (tx, rx) = mpsc::channel();
        let p = std::sync::Arc::clone(&pool);
        pool.spawn(move || {
            p.execute_batch(&mut counting_jobs(1000, &tx), Priority::Normal)
                .unwrap();
        })
        .unwrap();
        let mut seen: Vec<usize> = (0..1000)
            .map(|_| rx.recv_timeout(PATIENCE).unwrap())
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        // Each job counted as submitted once (the spawning task is the 1001st).
        assert_eq!(pool.stats().submitted, 1001);
    }

    #[test]
    fn a_batch_after_shutdown_hands_back_its_first_job() {
        let pool = ThreadPool::new(1).unwrap();
        pool.shutdown();
        let (tx, rx) = mpsc::channel();
        let mut jobs = counting_jobs(3, &tx);
        let Err(Rejected(first)) = pool.execute_batch(&mut jobs, Priority::Normal) else {
            panic!("accepted after shutdown");
        };
        first();
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0]);
        assert_eq!(jobs.count(), 2);
    }
}
