//! [`LevelQueue`]: the five-level queue behind one mutex, generic over what it holds.

use std::fmt;
use std::time::Instant;

use pool_core::sync::{AtomicUsize, Mutex, Ordering};
use pool_core::Priority;

use crate::config::Aging;
use crate::levels::{Counts, Levels};
use crate::stats::PerLevel;

/// A thread-safe five-level priority queue with a starvation guard, generic over its entries.
///
/// This is the structure inside [`PriorityQueue`](crate::PriorityQueue), usable on its own (for
/// example to order work for another executor). Entries of a level come out first in, first out;
/// higher levels come out first, except that an entry that has waited longer than the
/// [`Aging`] bound is served ahead of newer higher-priority entries (oldest overdue first, at
/// most every other pop). `push` and `pop` are O(1) in the number of queued entries.
///
/// One mutex guards the whole structure, so every operation is linearizable: once `push`
/// returns, any `pop`, `len` or `is_empty` that starts afterwards sees the entry. The critical
/// sections are a few dozen instructions: no allocation except when a level's ring buffer grows,
/// and no clock read inside the lock except on a pop where aging could change the answer (with
/// aging on, a push reads the clock before it takes the lock).
///
/// # Examples
///
/// ```
/// use policy_priority::{Aging, LevelQueue};
/// use pool_core::Priority;
///
/// let queue = LevelQueue::with_aging(Aging::off());
/// queue.push("index files", Priority::Idle);
/// queue.push("render preview", Priority::High);
/// queue.push("render minimap", Priority::High);
/// assert_eq!(queue.len(), 3);
/// assert_eq!(queue.pop(), Some(("render preview", Priority::High)));
/// assert_eq!(queue.pop(), Some(("render minimap", Priority::High)));
/// assert_eq!(queue.pop(), Some(("index files", Priority::Idle)));
/// assert!(queue.is_empty());
/// ```
pub struct LevelQueue<T> {
    levels: Mutex<Levels<T>>,
    /// A copy of `levels.len()`, written only under the lock in the same critical section that
    /// changes the levels, so that `len`, `is_empty` and a pop of an empty queue need no lock:
    /// idle workers that poll the queue before they park do not contend with submitters.
    len: AtomicUsize,
    /// Stamps are nanoseconds since this instant.
    epoch: Instant,
    aging: Aging,
}

impl<T> LevelQueue<T> {
    /// An empty queue with the default starvation guard ([`Aging::default`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::{Aging, LevelQueue};
    ///
    /// let queue = LevelQueue::<u32>::new();
    /// assert_eq!(queue.aging(), Aging::default());
    /// ```
    pub fn new() -> Self {
        Self::with_aging(Aging::default())
    }

    /// An empty queue with the given starvation guard.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::{Aging, LevelQueue};
    /// use std::time::Duration;
    ///
    /// let queue = LevelQueue::<u32>::with_aging(Aging::after(Duration::from_millis(100))?);
    /// assert_eq!(queue.aging().bound(), Some(Duration::from_millis(100)));
    /// # Ok::<(), policy_priority::ConfigError>(())
    /// ```
    pub fn with_aging(aging: Aging) -> Self {
        LevelQueue {
            levels: Mutex::new(Levels::new(aging.bound_nanos())),
            len: AtomicUsize::new(0),
            epoch: Instant::now(),
            aging,
        }
    }

    /// The starvation guard this queue was built with.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::{Aging, LevelQueue};
    ///
    /// assert_eq!(LevelQueue::<()>::with_aging(Aging::off()).aging(), Aging::off());
    /// ```
    pub fn aging(&self) -> Aging {
        self.aging
    }

    /// Appends `item` at the back of `priority`'s level.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::LevelQueue;
    /// use pool_core::Priority;
    ///
    /// let queue = LevelQueue::new();
    /// queue.push(1, Priority::Low);
    /// assert_eq!(queue.queued_at(Priority::Low), 1);
    /// ```
    pub fn push(&self, item: T, priority: Priority) {
        // Read the clock before taking the lock, to keep the critical section short; `Levels`
        // keeps stamps monotonic in lock order even when pushers race here.
        let now = self.aging.bound().map(|_| self.now());
        let mut levels = self.levels.lock();
        levels.push(item, priority, || now.unwrap_or_default());
        // SeqCst, before the unlock: once `push` returns, a later `len`/`pop` (after the pool's
        // SeqCst fence) reads this store or a later one, so it cannot report empty.
        self.len.store(levels.len(), Ordering::SeqCst);
    }

    /// Takes the next entry and the level it was queued at (see the type's docs for the order).
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::LevelQueue;
    /// use pool_core::Priority;
    ///
    /// let queue = LevelQueue::new();
    /// assert_eq!(queue.pop(), None::<(u8, Priority)>);
    /// queue.push(7, Priority::Critical);
    /// assert_eq!(queue.pop(), Some((7, Priority::Critical)));
    /// ```
    pub fn pop(&self) -> Option<(T, Priority)> {
        if self.len.load(Ordering::SeqCst) == 0 {
            // Linearizes at this load: the queue was empty then (see the `len` field).
            return None;
        }
        let mut levels = self.levels.lock();
        let popped = levels.pop(|| self.now());
        self.len.store(levels.len(), Ordering::SeqCst);
        popped
    }

    /// How many entries are queued.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::LevelQueue;
    /// use pool_core::Priority;
    ///
    /// let queue = LevelQueue::new();
    /// queue.push('a', Priority::Idle);
    /// queue.push('b', Priority::High);
    /// assert_eq!(queue.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.len.load(Ordering::SeqCst)
    }

    /// Whether nothing is queued.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::LevelQueue;
    ///
    /// assert!(LevelQueue::<u8>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many entries are queued at `priority`.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::LevelQueue;
    /// use pool_core::Priority;
    ///
    /// let queue = LevelQueue::new();
    /// queue.push((), Priority::Normal);
    /// assert_eq!(queue.queued_at(Priority::Normal), 1);
    /// assert_eq!(queue.queued_at(Priority::High), 0);
    /// ```
    pub fn queued_at(&self, priority: Priority) -> usize {
        self.counts().queued[priority.index()]
    }

    pub(crate) fn counts(&self) -> Counts {
        self.levels.lock().counts()
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

impl<T> Default for LevelQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for LevelQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts = self.counts();
        f.debug_struct("LevelQueue")
            .field("queued", &PerLevel(&counts.queued))
            .field("aging", &self.aging)
            .finish()
    }
}
