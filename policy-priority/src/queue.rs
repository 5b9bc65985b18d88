//! [`PriorityQueue`]: the queue policy that plugs [`LevelQueue`](crate::LevelQueue) into a `ThreadPool`.

use std::fmt;

use pool_core::sync::{Arc, AtomicBool, AtomicU64, CachePadded, Ordering};
use pool_core::{PolicyRefused, Priority, QueuePolicy, QueuedTask};

use crate::config::Aging;
use crate::level_queue::Levels;
use crate::levels::{my_stripe, Slot, LEVELS, STRIPES};
use crate::stats::{LevelStats, PerLevel, PriorityStats};

/// A priority order for a [`ThreadPool`](pool_core::ThreadPool): five levels, FIFO within a
/// level, with a starvation guard.
///
/// Plug it in with [`ThreadPoolBuilder::queue_policy`](pool_core::ThreadPoolBuilder::queue_policy)
/// (or use [`priority_pool`](crate::priority_pool)); the pool, its handles, cancellation, stats,
/// resize and shutdown stay the same. Cloning is cheap (an `Arc` inside): keep a clone to read
/// [`stats`](Self::stats) after handing one to the builder.
///
/// - **One global structure.** [`local_queues`](QueuePolicy::local_queues) is `false`: tasks
///   submitted from inside a worker go through this queue too (instead of that worker's own
///   deque), because a per-worker deque would let a worker's own `Idle` task start before another
///   thread's `Critical` one. Workers do not steal from each other with this policy.
/// - **Order.** Higher levels first, FIFO within a level, except that an entry that has waited
///   longer than the [`Aging`] bound (one second by default) is served ahead of newer
///   higher-priority work, oldest overdue first, at most every other pop.
/// - **Raising a priority.** [`ThreadPool::raise_priority`](pool_core::ThreadPool::raise_priority)
///   works on this policy (it [honors priorities](QueuePolicy::honors_priority)): the pool pushes
///   a second entry at the higher level; whichever entry a worker reaches first runs the task and
///   the other is a stale entry that the pool discards when it pops it. This queue never drops or
///   reorders entries itself. A raise never lowers a priority.
/// - **Cost.** `push` and `pop` take no lock and are O(1) in the number of queued tasks: one
///   lock-free FIFO per level, a bitmap of the non-empty levels, and aging stamps from a coarse
///   tick rather than a clock read per push (see [`LevelQueue`](crate::LevelQueue)).
///
/// # Examples
///
/// ```
/// use policy_priority::{PriorityQueue, PrioritySubmit};
/// use pool_core::{Priority, ThreadPool};
///
/// let queue = PriorityQueue::new();
/// let pool = ThreadPool::builder().threads(2).queue_policy(queue.clone()).build()?;
/// let render = pool.submit_at(Priority::High, || "preview").unwrap();
/// let save = pool.submit_at(Priority::Low, || "saved").unwrap();
/// assert_eq!(render.join().unwrap(), "preview");
/// assert_eq!(save.join().unwrap(), "saved");
/// pool.shutdown();
/// assert_eq!(queue.stats().completed(), 2);
/// # Ok::<(), pool_core::PoolBuildError>(())
/// ```
///
/// One queue serves one pool at a time: a clone handed to a second pool's builder while the
/// first pool lives is refused ([`PoolBuildError::is_policy_refused`]), since each pool would
/// run the other's tasks. Once the first pool is dropped, the queue may serve another. While
/// it serves a pool, its [`QueuePolicy`] methods that move entries are the pool's: a `push` or
/// `pop` through a clone you kept would move a task into or out of that pool's books (read
/// [`stats`](Self::stats) or `len` instead). Not checked: a check on every push and pop cost
/// the pool's path 7 instructions a task (callgrind), for a misuse that takes importing the
/// trait and building entries by hand.
///
/// ```
/// use policy_priority::PriorityQueue;
/// use pool_core::ThreadPool;
///
/// let queue = PriorityQueue::new();
/// let first = ThreadPool::builder().threads(1).queue_policy(queue.clone()).build()?;
/// let refused = ThreadPool::builder().threads(1).queue_policy(queue.clone()).build();
/// assert!(refused.unwrap_err().is_policy_refused());
/// drop(first);
/// let second = ThreadPool::builder().threads(1).queue_policy(queue.clone()).build()?;
/// # drop(second);
/// # Ok::<(), pool_core::PoolBuildError>(())
/// ```
///
/// [`PoolBuildError::is_policy_refused`]: pool_core::PoolBuildError::is_policy_refused
pub struct PriorityQueue {
    inner: Arc<Inner>,
    /// Whether this value is the one a pool attached ([`QueuePolicy::attach`]): its drop, when
    /// that pool goes, frees the queue for another. Every clone starts without it.
    serves: AtomicBool,
}

struct Inner {
    /// Whether a pool's clone of this queue is attached (see `PriorityQueue::serves`).
    attached: AtomicBool,
    /// The entries as the pool made them, the aging stamp in each one's `tag` (24 bytes where
    /// a `LevelQueue<QueuedTask>` would store 32: see `Slot`).
    queue: Levels<QueuedTask>,
    /// Tasks finished per level, counted by the worker that finished them in its own stripe
    /// (one padded line of five counters per stripe), so that two workers finishing tasks do
    /// not bounce one line between their cores on every task. `stats` sums the stripes.
    completed: [CachePadded<[AtomicU64; LEVELS]>; STRIPES],
    /// Entries taken per level that did not run (cancelled, or stale after a raise): rare, so
    /// one counter per level, on a line of their own.
    discarded: CachePadded<[AtomicU64; LEVELS]>,
}

impl PriorityQueue {
    /// A queue with the default starvation guard ([`Aging::default`]: one second).
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::{Aging, PriorityQueue};
    ///
    /// assert_eq!(PriorityQueue::new().aging(), Aging::default());
    /// ```
    pub fn new() -> Self {
        Self::with_aging(Aging::default())
    }

    /// A queue with the given starvation guard.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::{Aging, PriorityQueue};
    /// use std::time::Duration;
    ///
    /// let queue = PriorityQueue::with_aging(Aging::after(Duration::from_millis(250))?);
    /// assert_eq!(queue.aging().bound(), Some(Duration::from_millis(250)));
    /// # Ok::<(), policy_priority::ConfigError>(())
    /// ```
    pub fn with_aging(aging: Aging) -> Self {
        PriorityQueue {
            inner: Arc::new(Inner {
                attached: AtomicBool::new(false),
                queue: Levels::with_aging(aging),
                completed: std::array::from_fn(|_| {
                    CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0)))
                }),
                discarded: CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0))),
            }),
            serves: AtomicBool::new(false),
        }
    }

    /// The starvation guard.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::{Aging, PriorityQueue};
    ///
    /// assert_eq!(PriorityQueue::with_aging(Aging::off()).aging(), Aging::off());
    /// ```
    pub fn aging(&self) -> Aging {
        self.inner.queue.aging()
    }

    /// A snapshot of the per-level counters and of the pops served by aging.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::{PriorityQueue, PrioritySubmit};
    /// use pool_core::{Priority, ThreadPool};
    ///
    /// let queue = PriorityQueue::new();
    /// let pool = ThreadPool::builder().threads(1).queue_policy(queue.clone()).build()?;
    /// pool.submit_at(Priority::Idle, || ()).unwrap().join().unwrap();
    /// pool.shutdown();
    /// let idle = queue.stats().level(Priority::Idle);
    /// assert_eq!((idle.pushed, idle.completed, idle.queued), (1, 1, 0));
    /// # Ok::<(), pool_core::PoolBuildError>(())
    /// ```
    pub fn stats(&self) -> PriorityStats {
        let counts = self.inner.queue.counts();
        let levels = std::array::from_fn(|i| LevelStats {
            queued: counts.queued[i],
            pushed: counts.pushed[i],
            completed: self
                .inner
                .completed
                .iter()
                .map(|stripe| stripe[i].load(Ordering::Relaxed))
                .sum(),
            discarded: self.inner.discarded[i].load(Ordering::Relaxed),
        });
        PriorityStats::new(levels, counts.aged)
    }
}

/// A clone shares the queue (to read [`stats`](PriorityQueue::stats), or to hand one to a
/// builder); it does not inherit a pool's attachment.
impl Clone for PriorityQueue {
    fn clone(&self) -> Self {
        PriorityQueue {
            inner: Arc::clone(&self.inner),
            serves: AtomicBool::new(false),
        }
    }
}

/// The clone a pool attached frees the queue as that pool drops it.
impl Drop for PriorityQueue {
    fn drop(&mut self) {
        if self.serves.load(Ordering::Relaxed) {
            self.inner.attached.store(false, Ordering::Release);
        }
    }
}

impl Default for PriorityQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for PriorityQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts = self.inner.queue.counts();
        f.debug_struct("PriorityQueue")
            .field("queued", &PerLevel(&counts.queued))
            .field("aging", &self.aging())
            .field("aged", &counts.aged)
            .finish()
    }
}

impl QueuePolicy for PriorityQueue {
    fn push(&self, task: QueuedTask) {
        let level = task.priority();
        self.inner.queue.push(task, level);
    }

    fn pop(&self) -> Option<QueuedTask> {
        // Stale entries (left behind by a raise) are returned like any other: the pool discards
        // them correctly, and dropping one here would lose the stats' count of it.
        self.inner.queue.pop()
    }

    fn len(&self) -> usize {
        self.inner.queue.len()
    }

    fn is_empty(&self) -> bool {
        self.inner.queue.is_empty()
    }

    fn local_queues(&self) -> bool {
        false
    }

    fn honors_priority(&self) -> bool {
        true
    }

    fn attach(&self) -> Result<(), PolicyRefused> {
        // One read-modify-write: of two builders racing for the queue, one takes it.
        #[cfg(not(loom_broken_priority_attach))]
        let taken = self
            .inner
            .attached
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err();
        // Planted bug (loom models only, `.ci/loom-planted`): a check, then a store, so both
        // racing builders may read it free and take it; the attach model must fail.
        #[cfg(loom_broken_priority_attach)]
        let taken = self.inner.attached.load(Ordering::Acquire) || {
            self.inner.attached.store(true, Ordering::Release);
            false
        };
        if taken {
            return Err(PolicyRefused::new(
                "this PriorityQueue already serves a live pool (its clones share one queue): \
                 give each pool its own PriorityQueue, or drop the first pool",
            ));
        }
        self.serves.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn on_finished(&self, priority: Priority) {
        // The mask only tells the compiler the stripe is in bounds (it always is): one check
        // less on a path every task takes.
        let stripe = &self.inner.completed[my_stripe() & (STRIPES - 1)];
        stripe[priority.index()].fetch_add(1, Ordering::Relaxed);
    }

    fn on_finished_many(&self, priority: Priority, count: u64) {
        // The pool reports a worker's finished tasks in batches (see `QueuePolicy`): one add
        // for the batch, not one per task.
        let stripe = &self.inner.completed[my_stripe() & (STRIPES - 1)];
        stripe[priority.index()].fetch_add(count, Ordering::Relaxed);
    }

    fn on_discarded(&self, priority: Priority, count: u64) {
        self.inner.discarded[priority.index()].fetch_add(count, Ordering::Relaxed);
    }
}

/// The entry keeps its aging stamp in the policy's word that pool-core reserves for this (in the
/// entry's padding), so a level's injector stores the 24-byte entry as it is.
impl Slot for QueuedTask {
    type Item = QueuedTask;

    #[inline]
    fn stamped(mut item: QueuedTask, stamp: u32) -> Self {
        item.set_tag(stamp);
        item
    }

    #[inline]
    fn stamp(&self) -> u32 {
        self.tag()
    }

    type Popped = QueuedTask;

    #[inline]
    fn popped(self, level: Priority) -> QueuedTask {
        debug_assert_eq!(self.priority(), level, "pushed at its own priority");
        self
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// The entry carries its stamp inside, so a level's injector slot (the entry and
    /// crossbeam's 8-byte state word) is 32 bytes and a block of 63 slots stays under 2 KiB
    /// (README.md, "Measured figures").
    #[test]
    fn a_level_stores_the_24_byte_entry_with_its_stamp_inside() {
        assert_eq!(std::mem::size_of::<QueuedTask>(), 24);
        let entry = QueuedTask::stamped(QueuedTask::new(Priority::Low, || ()), 77);
        assert_eq!((entry.stamp(), entry.priority()), (77, Priority::Low));
        assert_eq!(entry.popped(Priority::Low).run(), Ok(()));
    }
}
