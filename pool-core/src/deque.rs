//! Work-stealing deques: crossbeam-deque normally, a locked equivalent under loom.
//!
//! crossbeam-deque's Chase-Lev deque and injector are verified by that crate's own tests; loom's
//! job here is our protocol around them (wake-ups, shutdown, resize, cancellation). So under
//! `cfg(loom)` the same interface is backed by `Mutex<VecDeque>`, which loom can model, with the
//! same linearizable behaviour the protocol relies on.

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
    use crate::sync::{Arc, Mutex};
    use std::collections::VecDeque;

    pub(crate) enum Steal<T> {
        Empty,
        Success(T),
        #[allow(dead_code)]
        Retry,
    }

    pub(crate) struct Injector<T>(Mutex<VecDeque<T>>);

    impl<T> Default for Injector<T> {
        fn default() -> Self {
            Injector(Mutex::new(VecDeque::new()))
        }
    }

    impl<T> Injector<T> {
        pub(crate) fn new() -> Self {
            Self::default()
        }
        pub(crate) fn push(&self, task: T) {
            self.0.lock().push_back(task);
        }
        pub(crate) fn steal(&self) -> Steal<T> {
            match self.0.lock().pop_front() {
                Some(t) => Steal::Success(t),
                None => Steal::Empty,
            }
        }
        pub(crate) fn steal_batch_and_pop(&self, _dest: &Worker<T>) -> Steal<T> {
            self.steal()
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.0.lock().is_empty()
        }
        pub(crate) fn len(&self) -> usize {
            self.0.lock().len()
        }
    }

    /// The owner pushes and pops at the back (LIFO); thieves steal from the front (oldest).
    pub(crate) struct Worker<T>(Arc<Mutex<VecDeque<T>>>);

    impl<T> Worker<T> {
        pub(crate) fn new_lifo() -> Self {
            Worker(Arc::new(Mutex::new(VecDeque::new())))
        }
        pub(crate) fn push(&self, task: T) {
            self.0.lock().push_back(task);
        }
        pub(crate) fn pop(&self) -> Option<T> {
            self.0.lock().pop_back()
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.0.lock().is_empty()
        }
        pub(crate) fn stealer(&self) -> Stealer<T> {
            Stealer(self.0.clone())
        }
    }

    pub(crate) struct Stealer<T>(Arc<Mutex<VecDeque<T>>>);

    impl<T> Clone for Stealer<T> {
        fn clone(&self) -> Self {
            Stealer(self.0.clone())
        }
    }

    impl<T> Stealer<T> {
        pub(crate) fn steal(&self) -> Steal<T> {
            match self.0.lock().pop_front() {
                Some(t) => Steal::Success(t),
                None => Steal::Empty,
            }
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.0.lock().is_empty()
        }
    }
}
