//! Work-stealing deques: crossbeam-deque normally, a locked equivalent under loom.
//!
//! crossbeam-deque's Chase-Lev deque and injector are verified by that crate's own tests; loom's
//! job here is our protocol around them (wake-ups, shutdown, resize, cancellation). So under
//! `cfg(loom)` the same interface is backed by `Mutex<VecDeque>`, which loom can model, with the
//! same linearizable behaviour the protocol relies on, and never more: what the stand-in models,
//! and what it does not, is documented on `mod locked` below.

#[cfg(not(loom))]
pub(crate) use crossbeam_deque::{Injector, Steal, Stealer, Worker};

#[cfg(loom)]
pub(crate) use locked::{Injector, Steal, Stealer, Worker};

/// Steals with `steal` until it succeeds or finds the source empty. `Retry` (a race with another
/// thief) backs off a little more each time: the backoff lives outside the loop so it can grow.
pub(crate) fn steal_retrying<T>(mut steal: impl FnMut() -> Steal<T>) -> Option<T> {
    let backoff = crate::sync::Backoff::new();
    loop {
        match steal() {
            Steal::Success(task) => return Some(task),
            Steal::Empty => return None,
            Steal::Retry => backoff.snooze(),
        }
    }
}

#[cfg(loom)]
mod locked {
    //! What the stand-in models, and what it does not.
    //!
    //! Modelled, because our protocols depend on it:
    //! - each operation is linearizable (a push that completed before a pop, steal or emptiness
    //!   check started is seen by it): every mutation happens under one loom `Mutex`;
    //! - the emptiness and length checks are **lock-free**, as crossbeam's are (they load the
    //!   head and tail indices): each queue keeps an atomic length, written under the lock after
    //!   every mutation and read without it. So a check may see a stale length exactly where
    //!   crossbeam's may, and the models still need the fences our protocol puts around it (the
    //!   submitter's `SeqCst` fence in `Sleep::notify_one`, the worker's in `Sleep::park`). A
    //!   lock taken in `is_empty` would synchronise with the pusher's unlock and do that fence's
    //!   work; it did, and a model passed without the fence. The orderings follow crossbeam's:
    //!   `SeqCst` for the injector's indices, a release store of the deque's back index and
    //!   acquire loads (after a `SeqCst` fence for a stealer) for a worker's deque;
    //! - `Steal::Retry`: a steal that sees another removal (a steal, a batch, the owner's pop)
    //!   land between its lock-free look at the removal count and taking the lock returns
    //!   `Retry`, as crossbeam's does when its compare-and-swap of the head index loses such a
    //!   race, so loom explores the callers' retry loops. (Not on mere lock contention: a
    //!   `try_lock` spin has no bound loom can explore.)
    //! - No batch steal: the pool takes outside submissions from the injector one at a time (a
    //!   batch moved into a worker's deque could strand earlier submissions behind a blocked task;
    //!   see `pool/README.md`), so `steal_batch_and_pop` is neither used nor modelled.
    //!
    //! Not modelled: crossbeam's own memory orderings inside push and pop (its Chase-Lev and
    //! block-list algorithms are verified by its own tests), spurious `Retry`s without
    //! contention, block boundaries (which shorten a batch), and buffer growth. Where the
    //! stand-in is still stronger: a push, pop or steal synchronises through loom's mutex (which
    //! loom also makes sequentially consistent), where crossbeam orders only its indices. A
    //! protocol that relied on that beyond the linearizability above would pass here and fail
    //! for real; ours (as far as the models and `pool/README.md` show) order against the deques
    //! only through the lock-free checks, which are modelled as they are. A thief's `Retry`
    //! after an owner's pop is more frequent here (any pop, not just the last task's), which
    //! only exercises the retry loops more.

    use crate::sync::{fence, Arc, AtomicUsize, Ordering};
    use loom::sync::{Mutex, MutexGuard};
    use std::collections::VecDeque;

    pub(crate) enum Steal<T> {
        Empty,
        Success(T),
        Retry,
    }

    /// A `VecDeque` under a lock, with its length also kept in an atomic for lock-free checks.
    struct Locked<T> {
        queue: Mutex<VecDeque<T>>,
        len: AtomicUsize,
        /// Tasks removed so far (crossbeam's head index): a steal that sees it move retries.
        taken: AtomicUsize,
    }

    impl<T> Locked<T> {
        fn new() -> Self {
            Locked {
                queue: Mutex::new(VecDeque::new()),
                len: AtomicUsize::new(0),
                taken: AtomicUsize::new(0),
            }
        }

        fn lock(&self) -> MutexGuard<'_, VecDeque<T>> {
            self.queue.lock().unwrap_or_else(|p| p.into_inner())
        }

        /// The lock for a steal, or `None` when a removal by another thread raced this one (the
        /// caller returns `Retry`), like crossbeam's compare-and-swap of the head index failing:
        /// the count of removals is read without the lock, then compared under it.
        fn lock_to_steal(&self) -> Option<MutexGuard<'_, VecDeque<T>>> {
            let seen = self.taken.load(Ordering::Acquire);
            let queue = self.lock();
            (self.taken.load(Ordering::Relaxed) == seen).then_some(queue)
        }

        /// Counts a removal; called with the lock held.
        fn count_taken(&self, n: usize) {
            if n > 0 {
                self.taken.fetch_add(n, Ordering::Release);
            }
        }

        /// Publishes the length after a mutation; called with the lock held.
        fn publish(&self, queue: &VecDeque<T>, order: Ordering) {
            self.len.store(queue.len(), order);
        }
    }

    pub(crate) struct Injector<T>(Locked<T>);

    impl<T> Default for Injector<T> {
        fn default() -> Self {
            Injector(Locked::new())
        }
    }

    impl<T> Injector<T> {
        pub(crate) fn new() -> Self {
            Self::default()
        }
        pub(crate) fn push(&self, task: T) {
            let mut queue = self.0.lock();
            queue.push_back(task);
            // crossbeam moves the tail index with a `SeqCst` compare-and-swap.
            self.0.publish(&queue, Ordering::SeqCst);
        }
        pub(crate) fn steal(&self) -> Steal<T> {
            let Some(mut queue) = self.0.lock_to_steal() else {
                return Steal::Retry;
            };
            let task = queue.pop_front();
            self.0.count_taken(usize::from(task.is_some()));
            self.0.publish(&queue, Ordering::SeqCst);
            match task {
                Some(t) => Steal::Success(t),
                None => Steal::Empty,
            }
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.0.len.load(Ordering::SeqCst) == 0
        }
        pub(crate) fn len(&self) -> usize {
            self.0.len.load(Ordering::SeqCst)
        }
    }

    /// The owner pushes and pops at the back (LIFO); thieves steal from the front (oldest).
    pub(crate) struct Worker<T>(Arc<Locked<T>>);

    impl<T> Worker<T> {
        pub(crate) fn new_lifo() -> Self {
            Worker(Arc::new(Locked::new()))
        }
        pub(crate) fn push(&self, task: T) {
            let mut deque = self.0.lock();
            deque.push_back(task);
            // crossbeam: a release fence, then a relaxed store of the back index.
            self.0.publish(&deque, Ordering::Release);
        }
        pub(crate) fn pop(&self) -> Option<T> {
            let mut deque = self.0.lock();
            let task = deque.pop_back();
            self.0.count_taken(usize::from(task.is_some()));
            self.0.publish(&deque, Ordering::Release);
            task
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.0.len.load(Ordering::Acquire) == 0
        }
        pub(crate) fn stealer(&self) -> Stealer<T> {
            Stealer(self.0.clone())
        }
    }

    pub(crate) struct Stealer<T>(Arc<Locked<T>>);

    impl<T> Clone for Stealer<T> {
        fn clone(&self) -> Self {
            Stealer(self.0.clone())
        }
    }

    impl<T> Stealer<T> {
        pub(crate) fn steal(&self) -> Steal<T> {
            let Some(mut deque) = self.0.lock_to_steal() else {
                return Steal::Retry;
            };
            let task = deque.pop_front();
            self.0.count_taken(usize::from(task.is_some()));
            self.0.publish(&deque, Ordering::Release);
            match task {
                Some(t) => Steal::Success(t),
                None => Steal::Empty,
            }
        }
        pub(crate) fn is_empty(&self) -> bool {
            // crossbeam: front (acquire), a `SeqCst` fence, back (acquire).
            fence(Ordering::SeqCst);
            self.0.len.load(Ordering::Acquire) == 0
        }
    }
}
