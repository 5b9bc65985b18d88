//! Bounded waits: tests wait for events, never for time, and give up after [`PATIENCE`].

use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Long enough for any event on a loaded 2-core machine shared with other builds; a test that
/// waits this long has found a hang, not a slow machine.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Runs `f` on a new thread and gives its result, or `None` if it did not return within
/// [`PATIENCE`] (the thread is leaked: it is stuck in the hang under test). For calls that would
/// hang the test itself if a regression made them block forever.
///
/// # Examples
///
/// ```
/// assert_eq!(test_kit::within_patience(|| 2 + 2), Some(4));
/// ```
pub fn within_patience<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(PATIENCE).ok()
}

/// Polls `condition` every millisecond until it holds (true) or [`PATIENCE`] passes (false). Only
/// for states that no event announces (a stats counter, a worker count a controller changes on
/// its own ticks); where there is an event, wait for it instead.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// let done = Arc::new(AtomicBool::new(false));
/// let d = done.clone();
/// std::thread::spawn(move || d.store(true, Ordering::SeqCst));
/// assert!(test_kit::eventually(|| done.load(Ordering::SeqCst)));
/// ```
pub fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    condition()
}
