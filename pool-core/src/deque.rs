//! Work-stealing deques: crossbeam-deque normally, a locked equivalent under loom.
//!
//! crossbeam-deque's Chase-Lev deque and injector are verified by that crate's own tests; loom's
//! job here is our protocol around them (wake-ups, shutdown, resize, cancellation). So under
//! `cfg(loom)` the same interface is backed by `Mutex<VecDeque>`, which loom can model, with the
//! same linearizable behaviour the protocol relies on, and never more: what the stand-in models,
//! and what it does not, is documented on `mod locked` below.
//!
//! A worker's own deque holds each `Work` as two plain machine words (`mod packed`), so that a
//! push and a pop move it in registers; see there for why.

#[cfg(not(loom))]
pub(crate) use crossbeam_deque::{Injector, Steal};
#[cfg(not(loom))]
pub(crate) use packed::{Stealer, WorkInjector, Worker};

/// The FIFO pool's shared queue of `Work` (packed as a worker's deque is, outside loom).
#[cfg(loom)]
pub(crate) type WorkInjector = locked::Injector<crate::policy::Work>;

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

#[cfg(not(loom))]
mod packed {
    //! crossbeam's Chase-Lev deque and injector, holding a `Work` as two pointer-sized words.
    //!
    //! Why: `Work` (a boxed closure, or a task pointer in the closure's vtable niche) has no
    //! register-pair ABI, so the compiler passes it through memory. A push then stored it on the
    //! stack as two 8-byte words and read it back as one 16-byte load for crossbeam's volatile
    //! slot write, and a load that spans two earlier stores cannot be forwarded from them: the
    //! CPU stalls until both reach the cache. `perf` put 57% of the push's samples on that load
    //! (scope tree, 2 workers). `Words` is a pair of scalars, so it travels in two registers and
    //! lands in the slot as two 8-byte stores, as rayon's two-word job reference does. The
    //! injector's push had the same stall (25% of its samples, external submits).
    //!
    //! The words are `MaybeUninit`, so any bytes of a `Work` (padding included) are valid in
    //! them; a `Words` is made only by `pack` and read back only by `unpack`, once: it is neither
    //! `Clone` nor `Copy`, and the deque hands each element out exactly once (pop or steal).

    use std::marker::PhantomData;
    use std::mem::{self, MaybeUninit};

    use cb::Steal;
    use crossbeam_deque as cb;

    use crate::policy::Work;
    use crate::unwind::drop_quietly;

    /// A `Work`'s bytes, unchanged, as two words.
    #[expect(
        dead_code,
        reason = "only moved, never read: `unpack` turns them back into a `Work`"
    )]
    struct Words {
        low: MaybeUninit<*const ()>,
        high: MaybeUninit<*const ()>,
    }

    // SAFETY: a `Words` only ever holds a packed `Work`, which is `Send`; it is moved between
    // threads exactly as the `Work` would be, and never read as anything but that `Work`.
    unsafe impl Send for Words {}

    fn pack(work: Work) -> Words {
        // SAFETY: `transmute` checks at compile time that both types have the same size, and
        // every byte pattern (uninitialised padding included) is a valid `MaybeUninit`; bytes
        // and pointer provenance are kept as they are.
        unsafe { mem::transmute::<Work, Words>(work) }
    }

    /// # Safety
    ///
    /// `words` was made by `pack` (so its bytes are a valid `Work`), and is unpacked once.
    unsafe fn unpack(words: Words) -> Work {
        // SAFETY: the caller guarantees the bytes are those of a `Work` that `pack` consumed and
        // that no other `Work` was made from them, so this moves that `Work` back out.
        unsafe { mem::transmute::<Words, Work>(words) }
    }

    /// A steal's outcome with the stolen words turned back into their `Work`.
    ///
    /// # Safety
    ///
    /// As for `unpack`: the queue stolen from holds only words made by `pack`.
    unsafe fn unpack_stolen(stolen: Steal<Words>) -> Steal<Work> {
        match stolen {
            // SAFETY: the caller's guarantee, for the one element this steal handed out.
            Steal::Success(words) => Steal::Success(unsafe { unpack(words) }),
            Steal::Empty => Steal::Empty,
            Steal::Retry => Steal::Retry,
        }
    }

    /// The owner pushes and pops at the back (LIFO); thieves steal from the front.
    pub(crate) struct Worker<T> {
        deque: cb::Worker<Words>,
        holds: PhantomData<fn() -> T>,
    }

    impl Worker<Work> {
        pub(crate) fn new_lifo() -> Self {
            Worker {
                deque: cb::Worker::new_lifo(),
                holds: PhantomData,
            }
        }

        #[inline]
        pub(crate) fn push(&self, work: Work) {
            self.deque.push(pack(work));
        }

        #[inline]
        pub(crate) fn pop(&self) -> Option<Work> {
            // SAFETY: every element was packed by `push`, and the deque hands it out once.
            self.deque.pop().map(|words| unsafe { unpack(words) })
        }

        pub(crate) fn is_empty(&self) -> bool {
            self.deque.is_empty()
        }

        pub(crate) fn stealer(&self) -> Stealer<Work> {
            Stealer {
                deque: self.deque.stealer(),
                holds: PhantomData,
            }
        }
    }

    impl<T> Drop for Worker<T> {
        /// `Words` has no `Drop`, so an element left behind would leak its `Work` (and a scope
        /// waiting for that job's share would wait forever). The pool drains a worker's deque
        /// before the worker ends, so this finds nothing; it is the net under that rule.
        fn drop(&mut self) {
            while let Some(words) = self.deque.pop() {
                // SAFETY: as in `pop`.
                drop_quietly(unsafe { unpack(words) });
            }
        }
    }

    /// The FIFO pool's shared queue: pushed from any thread, stolen by the workers.
    pub(crate) struct WorkInjector {
        queue: cb::Injector<Words>,
    }

    impl WorkInjector {
        pub(crate) fn new() -> Self {
            WorkInjector {
                queue: cb::Injector::new(),
            }
        }

        #[inline]
        pub(crate) fn push(&self, work: Work) {
            self.queue.push(pack(work));
        }

        pub(crate) fn steal(&self) -> Steal<Work> {
            // SAFETY: every element was packed by `push`, and the injector hands it out once.
            unsafe { unpack_stolen(self.queue.steal()) }
        }

        pub(crate) fn is_empty(&self) -> bool {
            self.queue.is_empty()
        }

        pub(crate) fn len(&self) -> usize {
            self.queue.len()
        }
    }

    impl Drop for WorkInjector {
        /// As for `Worker`: an element left behind is dropped, not leaked. The pool empties its
        /// shared queue (runs or cancels every entry) before the queue goes.
        fn drop(&mut self) {
            while let Some(words) = super::steal_retrying(|| self.queue.steal()) {
                // SAFETY: as in `steal`.
                drop_quietly(unsafe { unpack(words) });
            }
        }
    }

    /// Steals from the front of one worker's deque.
    pub(crate) struct Stealer<T> {
        deque: cb::Stealer<Words>,
        holds: PhantomData<fn() -> T>,
    }

    impl<T> Clone for Stealer<T> {
        fn clone(&self) -> Self {
            Stealer {
                deque: self.deque.clone(),
                holds: PhantomData,
            }
        }
    }

    impl Stealer<Work> {
        pub(crate) fn steal(&self) -> Steal<Work> {
            // SAFETY: as in `Worker::pop`.
            unsafe { unpack_stolen(self.deque.steal()) }
        }

        pub(crate) fn is_empty(&self) -> bool {
            self.deque.is_empty()
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

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::{steal_retrying, WorkInjector, Worker};
    use crate::policy::Work;

    /// A job that counts, in `ran` or `dropped`, whether it ran or was dropped unrun.
    fn counted_job(ran: &Arc<AtomicUsize>, dropped: &Arc<AtomicUsize>) -> Work {
        /// Counts a drop while armed; running the job disarms it (no `forget`: nothing leaks).
        struct OnDrop {
            dropped: Arc<AtomicUsize>,
            armed: bool,
        }
        impl Drop for OnDrop {
            fn drop(&mut self) {
                if self.armed {
                    self.dropped.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        let ran = Arc::clone(ran);
        let guard = OnDrop {
            dropped: Arc::clone(dropped),
            armed: true,
        };
        Work::Job(Box::new(move || {
            let mut guard = guard;
            guard.armed = false;
            ran.fetch_add(1, Ordering::SeqCst);
        }))
    }

    fn run(work: Work) {
        match work {
            Work::Job(job) => job(),
            Work::Task(_) => panic!("only jobs are pushed here"),
        }
    }

    #[test]
    fn packed_work_comes_back_whole_by_pop_and_by_steal() {
        let (ran, dropped) = (Arc::default(), Arc::default());
        let deque = Worker::new_lifo();
        let stealer = deque.stealer();
        for _ in 0..3 {
            deque.push(counted_job(&ran, &dropped));
        }
        run(deque.pop().expect("the last push"));
        run(steal_retrying(|| stealer.steal()).expect("the first push"));
        run(deque.pop().expect("the middle push"));
        assert!(deque.pop().is_none() && deque.is_empty() && stealer.is_empty());

        let injector = WorkInjector::new();
        injector.push(counted_job(&ran, &dropped));
        assert_eq!(injector.len(), 1);
        run(steal_retrying(|| injector.steal()).expect("the push"));
        assert!(injector.is_empty());
        assert_eq!(
            (ran.load(Ordering::SeqCst), dropped.load(Ordering::SeqCst)),
            (4, 0)
        );
    }

    #[test]
    fn work_left_in_a_dropped_queue_is_dropped_not_leaked() {
        let (ran, dropped) = (Arc::default(), Arc::default());
        let deque = Worker::new_lifo();
        let stealer = deque.stealer();
        deque.push(counted_job(&ran, &dropped));
        deque.push(counted_job(&ran, &dropped));
        drop(deque);
        assert!(steal_retrying(|| stealer.steal()).is_none());
        let injector = WorkInjector::new();
        injector.push(counted_job(&ran, &dropped));
        drop(injector);
        assert_eq!(
            (ran.load(Ordering::SeqCst), dropped.load(Ordering::SeqCst)),
            (0, 3)
        );
    }
}
