//! The per-level FIFO: crossbeam-deque's lock-free `Injector` normally, a locked stand-in under
//! loom.
//!
//! crossbeam-deque's injector is verified by that crate's own tests; the loom models in
//! `loom-tests/tests/priority.rs` verify our protocol around five of them (the non-empty bitmap,
//! see `README.md`). So under `cfg(loom)` the same interface is backed by a `Mutex<VecDeque>`
//! that loom can model.
//!
//! The stand-in is never stronger than crossbeam where the protocol depends on it: crossbeam's
//! `is_empty` and `len` are lock-free (two `SeqCst` loads of the head and tail indices), so the
//! stand-in's are too: an atomic length, stored (`SeqCst`) under the lock in the same critical
//! section that changes the queue, and read without the lock. A check that ran while a push or a
//! steal was in its critical section sees the value from before it, as with crossbeam. (The
//! stand-in never returns `Steal::Retry`; the protocol treats `Retry` as "try again", so a
//! stand-in without spurious retries hides nothing the protocol relies on.)
//!
//! `LevelQueue::push` also relies on crossbeam's push taking its place with a `SeqCst` CAS of the
//! tail index: its bitmap check after the push is a `SeqCst` load with no fence in between
//! (README.md, "push vs retire"). The stand-in's `SeqCst` store of the length plays that CAS.
//! Loom lets a `SeqCst` load read no `SeqCst` store older than the newest one to that location,
//! so the models see the pair ordered; with the check relaxed they fail (README.md, "Under
//! loom").

#[cfg(not(loom))]
pub(crate) use crossbeam_deque::{Injector, Steal};

#[cfg(loom)]
pub(crate) use locked::{Injector, Steal};

#[cfg(loom)]
mod locked {
    use std::collections::VecDeque;

    use pool_core::sync::{AtomicUsize, Mutex, Ordering};

    pub(crate) enum Steal<T> {
        Empty,
        Success(T),
        #[allow(dead_code)] // crossbeam's spurious retry; the stand-in never needs one
        Retry,
    }

    impl<T> Steal<T> {
        /// crossbeam's `Steal::success`: the entry, if the steal took one.
        pub(crate) fn success(self) -> Option<T> {
            match self {
                Steal::Success(item) => Some(item),
                _ => None,
            }
        }
    }

    pub(crate) struct Injector<T> {
        queue: Mutex<VecDeque<T>>,
        /// `queue.len()`, stored under the lock, read without it (see the module docs).
        len: AtomicUsize,
    }

    impl<T> Injector<T> {
        pub(crate) fn new() -> Self {
            Injector {
                queue: Mutex::new(VecDeque::new()),
                len: AtomicUsize::new(0),
            }
        }

        pub(crate) fn push(&self, item: T) {
            let mut queue = self.queue.lock();
            queue.push_back(item);
            self.len.store(queue.len(), Ordering::SeqCst);
        }

        pub(crate) fn steal(&self) -> Steal<T> {
            let mut queue = self.queue.lock();
            let item = queue.pop_front();
            self.len.store(queue.len(), Ordering::SeqCst);
            match item {
                Some(item) => Steal::Success(item),
                None => Steal::Empty,
            }
        }

        pub(crate) fn is_empty(&self) -> bool {
            self.len() == 0
        }

        pub(crate) fn len(&self) -> usize {
            self.len.load(Ordering::SeqCst)
        }
    }
}
