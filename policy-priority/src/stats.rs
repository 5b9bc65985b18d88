//! Per-level statistics of a [`PriorityQueue`](crate::PriorityQueue).

use std::fmt;

use pool_core::Priority;

use crate::levels::LEVELS;

/// One level's counters.
///
/// # Examples
///
/// ```
/// use policy_priority::PriorityQueue;
/// use pool_core::Priority;
///
/// let low = PriorityQueue::new().stats().level(Priority::Low);
/// assert_eq!((low.queued, low.pushed, low.completed, low.discarded), (0, 0, 0, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LevelStats {
    /// Entries waiting at this level now (a task whose priority was raised has an entry at each
    /// level it was queued at until a worker reaches the stale one).
    pub queued: usize,
    /// Entries ever pushed at this level: counted as the entries taken from it (each popping
    /// thread counts its own, so that a push does no locked add for a statistic) plus those
    /// still [`queued`](Self::queued), read in that order. While pops run the figure can lag
    /// by the pops between the two reads (never count one twice), so a figure read while pops
    /// run can even be below an earlier one; once the pool is idle or shut down it is exact.
    pub pushed: u64,
    /// Tasks that ran to the end (completed or panicked) after being taken from this level.
    /// Workers report these in batches (pool-core's `QueuePolicy::on_finished_many`): while
    /// tasks run the figure lags by at most 64 tasks per worker; once the pool is idle or shut
    /// down it is exact.
    pub completed: u64,
    /// Entries taken from this level that did not run: their task had been cancelled (by its
    /// handle, its deadline, `cancel_all` or `shutdown_now`), or the entry was stale (the task
    /// was [raised](pool_core::ThreadPool::raise_priority) and ran from its entry at the higher
    /// level, counted there). Once the pool is idle or shut down a level's books balance:
    /// `pushed == completed + discarded + queued`.
    pub discarded: u64,
}

/// A snapshot of a [`PriorityQueue`](crate::PriorityQueue)'s counters: per level, and how many
/// pops the starvation guard served.
///
/// The counters are read one after the other while the pool runs, so they are a consistent
/// picture only once the pool is idle or shut down.
///
/// # Examples
///
/// ```
/// use policy_priority::{priority_pool, PrioritySubmit};
/// use pool_core::Priority;
///
/// let (pool, queue) = priority_pool(1)?;
/// pool.submit_at(Priority::High, || ()).unwrap().join().unwrap();
/// pool.shutdown();
/// let stats = queue.stats();
/// assert_eq!(stats.level(Priority::High).completed, 1);
/// assert_eq!(stats.completed(), 1);
/// assert_eq!(stats.queued(), 0);
/// println!("{stats}");
/// # Ok::<(), pool_core::PoolBuildError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PriorityStats {
    levels: [LevelStats; LEVELS],
    /// Pops that served an overdue entry ahead of higher-priority work (the starvation guard).
    pub aged: u64,
}

impl PriorityStats {
    pub(crate) fn new(levels: [LevelStats; LEVELS], aged: u64) -> Self {
        PriorityStats { levels, aged }
    }

    /// The counters of one level.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::PriorityQueue;
    /// use pool_core::Priority;
    ///
    /// assert_eq!(PriorityQueue::new().stats().level(Priority::Idle).queued, 0);
    /// ```
    pub fn level(&self, priority: Priority) -> LevelStats {
        self.levels[priority.index()]
    }

    /// Every level with its counters, most urgent first.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::PriorityQueue;
    /// use pool_core::Priority;
    ///
    /// let stats = PriorityQueue::new().stats();
    /// let levels: Vec<Priority> = stats.iter().map(|(level, _)| level).collect();
    /// assert_eq!(levels, Priority::ALL);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (Priority, LevelStats)> + '_ {
        Priority::ALL.into_iter().map(|p| (p, self.level(p)))
    }

    /// Entries waiting at all levels.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::PriorityQueue;
    ///
    /// assert_eq!(PriorityQueue::new().stats().queued(), 0);
    /// ```
    pub fn queued(&self) -> usize {
        self.levels.iter().map(|l| l.queued).sum()
    }

    /// Tasks run to the end, all levels together.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::PriorityQueue;
    ///
    /// assert_eq!(PriorityQueue::new().stats().completed(), 0);
    /// ```
    pub fn completed(&self) -> u64 {
        self.levels.iter().map(|l| l.completed).sum()
    }

    /// Entries taken that did not run (cancelled or stale), all levels together.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::{priority_pool, PrioritySubmit};
    /// use pool_core::Priority;
    /// use std::sync::mpsc;
    ///
    /// let (pool, queue) = priority_pool(1)?;
    /// let (release, gate) = mpsc::channel::<()>();
    /// let (started, running) = mpsc::channel();
    /// pool.spawn_at(Priority::High, move || {
    ///     started.send(()).unwrap();
    ///     let _ = gate.recv();
    /// })
    /// .unwrap();
    /// running.recv().unwrap();
    /// // Queued behind the blocker: raised (a second entry at High), and one cancelled.
    /// let save = pool.submit_at(Priority::Low, || "saved").unwrap();
    /// let stale = pool.submit_at(Priority::Idle, || "never").unwrap();
    /// assert!(pool.raise_priority(&save, Priority::High));
    /// assert!(stale.cancel());
    /// drop(release);
    /// assert_eq!(save.join().unwrap(), "saved");
    /// pool.shutdown();
    /// let stats = queue.stats();
    /// // The save ran from its High entry; its Low entry and the cancelled Idle one did not run.
    /// assert_eq!(stats.level(Priority::High).completed, 2);
    /// assert_eq!(stats.level(Priority::Low).discarded, 1);
    /// assert_eq!(stats.level(Priority::Idle).discarded, 1);
    /// assert_eq!(stats.discarded(), 2);
    /// # Ok::<(), pool_core::PoolBuildError>(())
    /// ```
    pub fn discarded(&self) -> u64 {
        self.levels.iter().map(|l| l.discarded).sum()
    }

    /// Whether every level's books balance: `pushed == completed + discarded + queued`. True
    /// once the pool is idle or shut down (while tasks run, the figures are read one after the
    /// other and lag as their docs say), unless the policy's reports were lost to a panic.
    ///
    /// # Examples
    ///
    /// ```
    /// use policy_priority::{priority_pool, PrioritySubmit};
    /// use pool_core::Priority;
    ///
    /// let (pool, queue) = priority_pool(2)?;
    /// for level in Priority::ALL {
    ///     pool.spawn_at(level, || ()).unwrap();
    /// }
    /// pool.shutdown();
    /// assert!(queue.stats().is_balanced());
    /// # Ok::<(), pool_core::PoolBuildError>(())
    /// ```
    pub fn is_balanced(&self) -> bool {
        self.levels
            .iter()
            .all(|l| l.pushed == l.completed + l.discarded + l.queued as u64)
    }
}

impl fmt::Display for PriorityStats {
    /// A small table, one line per level, most urgent first.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<9} {:>8} {:>8} {:>10} {:>10}",
            "level", "queued", "pushed", "completed", "discarded"
        )?;
        for (level, s) in self.iter() {
            let name = format!("{level:?}");
            writeln!(
                f,
                "{name:<9} {:>8} {:>8} {:>10} {:>10}",
                s.queued, s.pushed, s.completed, s.discarded
            )?;
        }
        write!(f, "served by aging: {}", self.aged)
    }
}

/// Debug-formats a per-level array (indexed by `Priority::index`) as a map, most urgent first.
pub(crate) struct PerLevel<'a, V>(pub(crate) &'a [V; LEVELS]);

impl<V: fmt::Debug> fmt::Debug for PerLevel<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(Priority::ALL.iter().map(|p| (p, &self.0[p.index()])))
            .finish()
    }
}
