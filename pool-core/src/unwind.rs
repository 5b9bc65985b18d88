//! Calling hostile user code: one small helper per concern, used by every crate of the workspace.
//!
//! Any piece of user code may panic: a closure, the `Drop` of a value it captured, returned or
//! panicked with, a waker, a hook. These helpers are how pool code calls such code without letting
//! the panic unwind into its own bookkeeping (where it would kill a worker, strand a handle or
//! leave a counter unbalanced).

use std::any::Any;
use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::panic::{self, AssertUnwindSafe};
use std::task::Waker;

/// Drops `value` (user code: a closure, a task's value, a panic payload) without letting a
/// panicking destructor unwind into the caller.
///
/// A destructor that panics is caught; the panic's own payload is then dropped the same way, and
/// so on for a chain of up to 16 such panics; only a payload past that depth is leaked (one whose
/// drop always panics with another such payload would otherwise keep this going forever). Leaking
/// is safe; unwinding into a worker's bookkeeping is not.
///
/// # Examples
///
/// ```
/// struct Hostile;
/// impl Drop for Hostile {
///     fn drop(&mut self) {
///         panic!("hostile destructor");
///     }
/// }
///
/// pool_core::drop_quietly(Hostile); // returns normally
/// ```
pub fn drop_quietly<T>(value: T) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || drop(value))) {
        drop_payload(payload);
    }
}

/// Owns a piece of user code (a hook, a queue policy, a signal source) and drops it quietly
/// ([`drop_quietly`]) wherever it goes: with the pool, with a builder that was dropped or whose
/// `build` failed, or beside others like it in a `Vec` (whose own drop, meeting a second
/// panicking `Drop` while unwinding from the first, would abort the process). Reads through to
/// the value at no cost (`Deref`, `DerefMut`).
///
/// # Examples
///
/// ```
/// use pool_core::QuietDrop;
///
/// struct Hostile(u32);
/// impl Drop for Hostile {
///     fn drop(&mut self) {
///         panic!("hostile destructor");
///     }
/// }
///
/// let values = vec![QuietDrop::new(Hostile(1)), QuietDrop::new(Hostile(2))];
/// assert_eq!(values[1].0, 2);
/// drop(values); // returns normally: each `Drop` panics, and each panic is caught
/// ```
#[derive(Clone)]
pub struct QuietDrop<T>(ManuallyDrop<T>);

impl<T> QuietDrop<T> {
    /// Wraps `value`, to be dropped quietly.
    pub fn new(value: T) -> Self {
        QuietDrop(ManuallyDrop::new(value))
    }

    /// Takes the value out, to be dropped as any other (an associated function, as
    /// `ManuallyDrop::into_inner` is, so that it never shadows a method of the value).
    ///
    /// # Examples
    ///
    /// ```
    /// let kept = pool_core::QuietDrop::new(String::from("hook"));
    /// assert_eq!(pool_core::QuietDrop::into_inner(kept), "hook");
    /// ```
    pub fn into_inner(this: Self) -> T {
        let mut this = ManuallyDrop::new(this);
        // SAFETY: `this` is never dropped (it is in a `ManuallyDrop`), so `QuietDrop::drop`
        // never runs for it, and the value is taken out of the inner `ManuallyDrop` once, here.
        unsafe { ManuallyDrop::take(&mut this.0) }
    }
}

impl<T> Deref for QuietDrop<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for QuietDrop<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> Drop for QuietDrop<T> {
    fn drop(&mut self) {
        // SAFETY: the value is taken out of its `ManuallyDrop` once: `drop` runs at most once,
        // nothing reads `self.0` after it (the wrapper is going away), and the only other place
        // that takes it, `into_inner`, keeps its wrapper from ever being dropped.
        let value = unsafe { ManuallyDrop::take(&mut self.0) };
        drop_quietly(value);
    }
}

impl<T: fmt::Debug> fmt::Debug for QuietDrop<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

/// How many panics in a row, each raised by dropping the previous one's payload, are dropped
/// before the next payload is leaked instead. A chain a few levels deep is freed; a payload whose
/// drop panics with another such payload forever cannot hang the caller.
const PAYLOAD_DROP_DEPTH: usize = 16;

/// Drops a panic payload whose `Drop` may itself panic (see [`drop_quietly`]).
fn drop_payload(payload: Box<dyn Any + Send>) {
    let mut payload = payload;
    for _ in 0..PAYLOAD_DROP_DEPTH {
        match panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            Ok(()) => return,
            Err(next) => payload = next,
        }
    }
    std::mem::forget(payload);
}

/// Wakes `waker` (user code: its `wake` may panic) without letting a panic unwind into the
/// caller. Returns whether the wake returned normally.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::task::{Wake, Waker};
///
/// struct Hostile;
/// impl Wake for Hostile {
///     fn wake(self: Arc<Self>) {
///         panic!("hostile waker");
///     }
/// }
///
/// assert!(!pool_core::wake_quietly(Waker::from(Arc::new(Hostile))));
/// ```
pub fn wake_quietly(waker: Waker) -> bool {
    match panic::catch_unwind(AssertUnwindSafe(move || waker.wake())) {
        Ok(()) => true,
        Err(payload) => {
            drop_payload(payload);
            false
        }
    }
}

/// Calls `f` (user code: a hook, a callback) and catches a panic. Returns `f`'s value, or `None`
/// if it panicked; the panic payload is dropped quietly.
///
/// # Examples
///
/// ```
/// assert_eq!(pool_core::call_quietly(|| 2 + 2), Some(4));
/// assert_eq!(pool_core::call_quietly(|| -> u8 { panic!("hostile hook") }), None);
/// ```
pub fn call_quietly<R>(f: impl FnOnce() -> R) -> Option<R> {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(payload) => {
            drop_payload(payload);
            None
        }
    }
}

/// Runs `f` under `catch_unwind`; a panic becomes `Err(message)`, and its payload is dropped
/// quietly. The one way pool code turns a panic of user code into a reportable failure.
///
/// # Examples
///
/// ```
/// assert_eq!(pool_core::catch_panic(|| 7), Ok(7));
/// assert_eq!(pool_core::catch_panic(|| -> u8 { panic!("bad input {}", 3) }), Err("bad input 3".into()));
/// ```
// Inline, with the panic's handling out of line: a worker runs every fire-and-forget job through
// this, and as a call it cost a register save and restore per task on top of the frame itself.
#[inline(always)]
pub fn catch_panic<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Ok(value),
        Err(payload) => Err(message_of_dropped(payload)),
    }
}

/// The message of a caught panic, whose payload is then dropped quietly (`catch_panic`'s cold
/// path).
#[cold]
#[inline(never)]
fn message_of_dropped(payload: Box<dyn Any + Send>) -> String {
    let message = panic_message(payload.as_ref());
    drop_payload(payload);
    message
}

/// The text of a panic payload, as `std` prints it: the `&str` or `String` a `panic!` carries,
/// or a fixed placeholder for any other payload. Reads the payload; never drops it.
///
/// # Examples
///
/// ```
/// let payload = std::panic::catch_unwind(|| panic!("out of {}", "cheese")).unwrap_err();
/// assert_eq!(pool_core::panic_message(payload.as_ref()), "out of cheese");
/// ```
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

/// Runs a closure when dropped: on a normal exit and while unwinding alike. The helper for state
/// that must be restored whatever user code does in between (a thread-local, a flag, a count).
///
/// Call [`OnExit::defuse`] to skip the closure on the path where it is not needed.
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
///
/// thread_local!(static DEPTH: Cell<u32> = const { Cell::new(0) });
///
/// let result = std::panic::catch_unwind(|| {
///     DEPTH.with(|d| d.set(d.get() + 1));
///     let _restore = pool_core::OnExit::new(|| DEPTH.with(|d| d.set(d.get() - 1)));
///     panic!("user code");
/// });
/// assert!(result.is_err());
/// assert_eq!(DEPTH.with(Cell::get), 0); // restored while unwinding
/// ```
#[must_use = "the closure runs when the guard is dropped; bind it to a named variable"]
pub struct OnExit<F: FnOnce()> {
    action: Option<F>,
}

impl<F: FnOnce()> OnExit<F> {
    /// A guard that runs `action` when it is dropped.
    pub fn new(action: F) -> Self {
        OnExit {
            action: Some(action),
        }
    }

    /// Drops the guard without running its closure.
    pub fn defuse(mut self) {
        self.action = None;
    }
}

impl<F: FnOnce()> Drop for OnExit<F> {
    fn drop(&mut self) {
        if let Some(action) = self.action.take() {
            action();
        }
    }
}

impl<F: FnOnce()> fmt::Debug for OnExit<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnExit")
            .field("armed", &self.action.is_some())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A payload whose destructor panics with another payload whose destructor panics.
    struct Nested(u32);
    impl Drop for Nested {
        fn drop(&mut self) {
            if self.0 > 0 {
                std::panic::panic_any(Nested(self.0 - 1));
            }
        }
    }

    #[test]
    fn a_chain_of_panicking_destructors_stops() {
        drop_quietly(Nested(5));
        let payload = panic::catch_unwind(|| std::panic::panic_any(Nested(3))).unwrap_err();
        drop_payload(payload);
    }

    #[test]
    fn catch_panic_drops_a_hostile_payload_quietly() {
        let result = catch_panic(|| -> () { std::panic::panic_any(Nested(2)) });
        assert_eq!(result, Err("a panic with a non-string payload".to_string()));
    }

    #[test]
    fn on_exit_runs_once_unless_defused() {
        let runs = AtomicUsize::new(0);
        {
            let _guard = OnExit::new(|| {
                runs.fetch_add(1, Ordering::SeqCst);
            });
        }
        OnExit::new(|| {
            runs.fetch_add(10, Ordering::SeqCst);
        })
        .defuse();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}
