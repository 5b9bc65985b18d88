//! A count-down latch that can live in a `static`, so that "empty" benchmark tasks can count
//! themselves without capturing anything (their closures stay zero-sized, and boxing them does
//! not allocate, as for a truly empty task).
//!
//! This is measurement scaffolding, not a protocol under test, so it uses `std::sync` directly
//! (it must be `const`-constructible and is never model-checked).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Counts down from `n`; [`wait`](Self::wait) returns once every count has arrived.
///
/// # Examples
///
/// ```
/// use benches::latch::Latch;
/// use std::time::Duration;
///
/// static DONE: Latch = Latch::new();
/// DONE.reset(2);
/// let t = std::thread::spawn(|| { DONE.count_down(); DONE.count_down(); });
/// assert!(DONE.wait(Duration::from_secs(10)));
/// t.join().unwrap();
/// ```
#[derive(Debug)]
pub struct Latch {
    remaining: AtomicUsize,
    done: Mutex<bool>,
    finished: Condvar,
}

impl Default for Latch {
    fn default() -> Self {
        Latch::new()
    }
}

impl Latch {
    /// A latch with nothing to wait for; arm it with [`reset`](Self::reset).
    ///
    /// # Examples
    ///
    /// ```
    /// let latch = benches::latch::Latch::new();
    /// assert!(latch.wait(std::time::Duration::ZERO));
    /// ```
    pub const fn new() -> Latch {
        Latch {
            remaining: AtomicUsize::new(0),
            done: Mutex::new(true),
            finished: Condvar::new(),
        }
    }

    /// Arms the latch for `n` counts (`n = 0` is already open). Call only while no task of an
    /// earlier round can still count down.
    ///
    /// # Examples
    ///
    /// ```
    /// let latch = benches::latch::Latch::new();
    /// latch.reset(1);
    /// assert!(!latch.wait(std::time::Duration::ZERO));
    /// latch.count_down();
    /// assert!(latch.wait(std::time::Duration::ZERO));
    /// ```
    pub fn reset(&self, n: usize) {
        *self.lock() = n == 0;
        self.remaining.store(n, Ordering::SeqCst);
    }

    /// One count arrived; the last one opens the latch.
    ///
    /// # Examples
    ///
    /// ```
    /// let latch = benches::latch::Latch::new();
    /// latch.reset(1);
    /// latch.count_down();
    /// assert_eq!(latch.remaining(), 0);
    /// ```
    #[inline]
    pub fn count_down(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            *self.lock() = true;
            self.finished.notify_all();
        }
    }

    /// Counts still missing.
    ///
    /// # Examples
    ///
    /// ```
    /// let latch = benches::latch::Latch::new();
    /// latch.reset(3);
    /// assert_eq!(latch.remaining(), 3);
    /// ```
    pub fn remaining(&self) -> usize {
        self.remaining.load(Ordering::Acquire)
    }

    /// Waits until every count arrived or `timeout` passed; returns whether it is open.
    ///
    /// # Examples
    ///
    /// ```
    /// let latch = benches::latch::Latch::new();
    /// latch.reset(1);
    /// assert!(!latch.wait(std::time::Duration::from_millis(1)));
    /// ```
    pub fn wait(&self, timeout: Duration) -> bool {
        let guard = self.lock();
        let (guard, _) = self
            .finished
            .wait_timeout_while(guard, timeout, |done| !*done)
            .unwrap_or_else(|e| e.into_inner());
        *guard
    }

    /// Waits as [`wait`](Self::wait) does, and panics naming `what` if the latch did not open:
    /// a benchmark that lost tasks must not report a figure.
    ///
    /// # Panics
    ///
    /// If `timeout` passes first.
    ///
    /// # Examples
    ///
    /// ```
    /// let latch = benches::latch::Latch::new();
    /// latch.wait_or_panic(std::time::Duration::ZERO, "nothing");
    /// ```
    pub fn wait_or_panic(&self, timeout: Duration, what: &str) {
        assert!(
            self.wait(timeout),
            "{what}: {} tasks still missing after {timeout:?}",
            self.remaining()
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, bool> {
        self.done.lock().unwrap_or_else(|e| e.into_inner())
    }
}
