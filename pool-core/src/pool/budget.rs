//! The process's budget of threads: how many all of this process's pools hold together,
//! and the most they may hold (`ThreadPool::process_thread_limit`). Why, with the measurement
//! of the abort it prevents, and how the shares ride on the workers' handles: `README.md`,
//! "The process's thread limit".

use std::fmt;
use std::num::NonZeroUsize;

use crate::sync::{process_static, thread, AtomicUsize, Ordering};
use crate::unwind::catch_panic;

/// Memory mappings each worker thread holds: its stack and guard page, std's signal stack and
/// its guard page (counted in `/proc/self/maps` beside 1 000 parked threads: 4.03 each).
const MAPS_PER_THREAD: usize = 4;

/// Linux's default `vm.max_map_count`, for a platform without the file.
const DEFAULT_MAX_MAP_COUNT: usize = 65_530;

process_static! {
    static PROCESS: ThreadBudget = ThreadBudget::new(default_limit());
}

/// The process's limit before any change: [`limit_from`] the mapping cap.
pub(crate) fn default_limit() -> NonZeroUsize {
    limit_from(max_map_count())
}

/// The budget every pool of this process draws its workers from.
pub(crate) fn process() -> &'static ThreadBudget {
    &PROCESS
}

/// The process's mapping cap: `/proc/sys/vm/max_map_count` where there is one.
fn max_map_count() -> usize {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(DEFAULT_MAX_MAP_COUNT)
}

/// Three quarters of the threads the mapping cap allows: the last quarter is left to the
/// process's other mappings (its libraries, heap arenas, mapped files) and its other threads.
/// At the default cap that is 12 285 workers, one and a half times `MAX_THREADS`.
fn limit_from(max_map_count: usize) -> NonZeroUsize {
    NonZeroUsize::new(max_map_count / MAPS_PER_THREAD / 4 * 3).unwrap_or(NonZeroUsize::MIN)
}

/// One share of the process's thread budget
/// ([`ThreadPool::process_thread_limit`](crate::ThreadPool::process_thread_limit)), given back on
/// drop. Every pool worker holds one from before its thread starts until it is joined; a thread
/// that a pool's policy runs beside the workers (policy-adaptive's controller) holds one the same
/// way, so that the limit counts every thread that maps a stack for the process's pools.
///
/// # Examples
///
/// ```
/// use pool_core::{ProcessThreadShare, ThreadPool};
/// use std::num::NonZeroUsize;
///
/// ThreadPool::set_process_thread_limit(NonZeroUsize::new(3).unwrap());
/// let pool = ThreadPool::new(2).unwrap();
/// // The third thread: a helper of the pool's, started once its share is held.
/// let share = ProcessThreadShare::reserve().unwrap();
/// let helper = std::thread::spawn(move || {
///     let _share = share; // given back when the helper is done
/// });
/// let refused = ProcessThreadShare::reserve().unwrap_err();
/// assert_eq!(refused.limit(), 3);
/// helper.join().unwrap();
/// assert!(pool.set_threads(3).is_ok(), "the helper's share went back");
/// ```
#[derive(Debug)]
pub struct ProcessThreadShare(());

impl ProcessThreadShare {
    /// Takes one share, or says the process's pools already hold the limit.
    ///
    /// # Errors
    ///
    /// [`ProcessLimitError`](crate::ProcessLimitError) when the limit is held: start no thread.
    ///
    /// # Examples
    ///
    /// See [`ProcessThreadShare`].
    pub fn reserve() -> Result<ProcessThreadShare, crate::ProcessLimitError> {
        let budget = process();
        if budget.reserve() {
            Ok(ProcessThreadShare(()))
        } else {
            Err(crate::ProcessLimitError::new(budget.limit()))
        }
    }

    /// Starts a thread with `builder`, holding this share for it: the share goes back once the
    /// thread is joined ([`CountedThread::join`]), or when the handle is dropped (the thread
    /// then runs on, no longer counted, as with a dropped `JoinHandle`).
    ///
    /// # Errors
    ///
    /// The operating system's error when it refuses the thread; the share goes back. A `spawn`
    /// that panics instead (`std` maps the new thread's signal stack on the calling thread, and
    /// panics if it cannot when memory is short) is such a refusal too, its message the error's.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::ProcessThreadShare;
    ///
    /// let helper = ProcessThreadShare::reserve()
    ///     .unwrap()
    ///     .spawn(std::thread::Builder::new().name("helper".into()), || 6 * 7)
    ///     .unwrap();
    /// assert_eq!(helper.thread().name(), Some("helper"));
    /// assert_eq!(helper.join().unwrap(), 42); // and the share goes back
    /// ```
    pub fn spawn<F, T>(self, builder: thread::Builder, f: F) -> std::io::Result<CountedThread<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let spawned = catch_panic(move || builder.spawn(f))
            .unwrap_or_else(|panic| Err(std::io::Error::other(panic)));
        spawned.map(|thread| CountedThread {
            thread,
            _share: self,
        })
    }
}

/// A thread that holds a [`ProcessThreadShare`] ([`ProcessThreadShare::spawn`]): the share goes
/// back once the thread is joined, or when this handle is dropped. Pool workers run on these,
/// and so do policy-adaptive's controller and pool-remote's engine thread.
///
/// # Examples
///
/// See [`ProcessThreadShare::spawn`].
pub struct CountedThread<T> {
    thread: thread::JoinHandle<T>,
    _share: ProcessThreadShare,
}

impl<T> CountedThread<T> {
    /// Waits for the thread to finish and gives its share back: its result, or its panic's
    /// payload (as [`std::thread::JoinHandle::join`]).
    ///
    /// # Errors
    ///
    /// The payload of the thread's panic.
    ///
    /// # Examples
    ///
    /// See [`ProcessThreadShare::spawn`].
    pub fn join(self) -> std::thread::Result<T> {
        let CountedThread { thread, _share } = self;
        thread.join()
    }

    /// The thread.
    ///
    /// # Examples
    ///
    /// See [`ProcessThreadShare::spawn`].
    pub fn thread(&self) -> &thread::Thread {
        self.thread.thread()
    }

    /// Whether the thread has finished running its closure (as
    /// [`std::thread::JoinHandle::is_finished`]; not under loom, whose handles cannot tell).
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::ProcessThreadShare;
    ///
    /// let (go, wait) = std::sync::mpsc::channel::<()>();
    /// let share = ProcessThreadShare::reserve().unwrap();
    /// let helper = share
    ///     .spawn(std::thread::Builder::new(), move || wait.recv())
    ///     .unwrap();
    /// assert!(!helper.is_finished());
    /// go.send(()).unwrap();
    /// helper.join().unwrap().unwrap();
    /// ```
    #[cfg(not(loom))]
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

impl<T> fmt::Debug for CountedThread<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountedThread")
            .field("thread", self.thread())
            .finish_non_exhaustive()
    }
}

impl Drop for ProcessThreadShare {
    fn drop(&mut self) {
        process().release();
    }
}

/// A count of threads held against a limit. The process has one (`process`); the
/// type is public (through `pool_core::sync`) only so that `loom-tests` can model its
/// reservation with a limit of its own.
///
/// # Examples
///
/// ```
/// use pool_core::sync::ThreadBudget;
/// use std::num::NonZeroUsize;
///
/// let budget = ThreadBudget::new(NonZeroUsize::MIN);
/// assert!(budget.reserve());
/// assert!(!budget.reserve(), "the limit is held");
/// budget.release();
/// assert!(budget.reserve());
/// assert_eq!((budget.held(), budget.limit()), (1, 1));
/// ```
#[derive(Debug)]
pub struct ThreadBudget {
    limit: AtomicUsize,
    held: AtomicUsize,
}

impl ThreadBudget {
    /// A budget of `limit` threads, none held.
    pub fn new(limit: NonZeroUsize) -> Self {
        ThreadBudget {
            limit: AtomicUsize::new(limit.get()),
            held: AtomicUsize::new(0),
        }
    }

    /// Takes one thread's share if fewer than the limit are held; whether it did.
    ///
    /// One read-modify-write: the check and the count are one step, so two pools starting
    /// their last workers at once never both pass the limit. Relaxed: the count publishes no
    /// data, and every change of one atomic is totally ordered whatever the ordering. A limit
    /// changed meanwhile applies from the next reservation.
    pub fn reserve(&self) -> bool {
        let limit = self.limit();
        #[cfg(not(loom_broken_thread_budget))]
        {
            self.held
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                    (held < limit).then_some(held + 1)
                })
                .is_ok()
        }
        // Planted bug (loom-tests, `.ci/loom-planted`): the check and the count as two steps.
        #[cfg(loom_broken_thread_budget)]
        {
            if self.held.load(Ordering::Relaxed) >= limit {
                return false;
            }
            self.held.fetch_add(1, Ordering::Relaxed);
            true
        }
    }

    /// Gives one share back (its thread was joined, or its handle dropped).
    pub fn release(&self) {
        let before = self.held.fetch_sub(1, Ordering::Relaxed);
        debug_assert!(before > 0, "a thread budget released more than it reserved");
    }

    /// Shares held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// The most shares it hands out at once.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Sets the limit. Shares held past a lowered limit stay held; no more are handed out until
    /// the count is under it.
    pub fn set_limit(&self, limit: NonZeroUsize) {
        self.limit.store(limit.get(), Ordering::Relaxed);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_gives_three_quarters_of_its_threads() {
        assert_eq!(limit_from(DEFAULT_MAX_MAP_COUNT).get(), 12_285);
        assert!(limit_from(DEFAULT_MAX_MAP_COUNT).get() > crate::ThreadPool::MAX_THREADS);
        // A raised cap raises the limit; a tiny one still leaves one thread.
        assert_eq!(limit_from(262_144).get(), 49_152);
        assert_eq!(limit_from(3).get(), 1);
    }

    #[test]
    fn a_budget_refuses_past_its_limit_and_takes_again_after_a_release() {
        let budget = ThreadBudget::new(NonZeroUsize::new(3).unwrap());
        assert_eq!((0..5).filter(|_| budget.reserve()).count(), 3);
        assert_eq!(budget.held(), 3);
        budget.release();
        assert_eq!(budget.held(), 2);
        assert!(budget.reserve());
        assert!(!budget.reserve());
    }

    #[test]
    fn a_lowered_limit_keeps_what_is_held_and_refuses_until_under_it() {
        let budget = ThreadBudget::new(NonZeroUsize::new(4).unwrap());
        assert_eq!((0..4).filter(|_| budget.reserve()).count(), 4);
        budget.set_limit(NonZeroUsize::new(2).unwrap());
        assert_eq!(budget.held(), 4);
        budget.release();
        budget.release();
        assert!(!budget.reserve(), "2 held, limit 2");
        budget.release();
        assert!(budget.reserve());
        budget.set_limit(NonZeroUsize::new(8).unwrap());
        assert_eq!((0..8).filter(|_| budget.reserve()).count(), 6);
    }

    #[test]
    fn the_default_limit_reads_the_mapping_cap() {
        assert_eq!(default_limit(), limit_from(max_map_count()));
    }
}
