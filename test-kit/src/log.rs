//! A log of events (usually the order tasks ran in), shared by clones.

use std::sync::{Arc, Mutex};

/// Records values in the order they were pushed, from any thread; clones share one log.
///
/// # Examples
///
/// ```
/// let log = test_kit::Log::default();
/// let other = log.clone();
/// log.push(1);
/// other.push(2);
/// assert_eq!(log.entries(), [1, 2]);
/// assert_eq!(log.take(), [1, 2]);
/// assert!(log.entries().is_empty());
/// ```
#[derive(Debug)]
pub struct Log<T = u32>(Arc<Mutex<Vec<T>>>);

impl<T> Default for Log<T> {
    fn default() -> Self {
        Log(Arc::default())
    }
}

impl<T> Clone for Log<T> {
    fn clone(&self) -> Self {
        Log(Arc::clone(&self.0))
    }
}

impl<T> Log<T> {
    /// Appends `value`.
    pub fn push(&self, value: T) {
        self.lock().push(value);
    }

    /// Removes and returns everything logged so far.
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.lock())
    }

    /// How many values were logged (and not taken).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing was logged (or everything was taken).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of everything logged so far.
    pub fn entries(&self) -> Vec<T>
    where
        T: Clone,
    {
        self.lock().clone()
    }

    // A test that panicked while pushing must not hide what the others logged.
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<T>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
