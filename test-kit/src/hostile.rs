//! Hostile values and quiet planned panics.

/// A value whose destructor panics with another `Bomb`, counting down to zero: dropping the
/// payload of that panic panics again, `n` levels deep.
///
/// # Examples
///
/// ```
/// use test_kit::Bomb;
///
/// test_kit::quiet_panics(|_| false);
/// let caught = std::panic::catch_unwind(|| drop(Bomb(1))).unwrap_err();
/// assert!(caught.downcast_ref::<Bomb>().is_some_and(|b| b.0 == 0));
/// drop(caught); // `Bomb(0)` is a dud.
/// ```
#[derive(Debug)]
pub struct Bomb(pub u32);

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.0 > 0 {
            std::panic::panic_any(Bomb(self.0 - 1));
        }
    }
}

/// A value whose destructor counts itself, then panics with a [`Bomb`]`(1)` (whose own drop
/// panics again): what a hostile hook, signal source or queue policy captures, in a test that
/// also checks the value was dropped exactly once.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// test_kit::quiet_panics(|_| false);
/// let dropped = Arc::new(AtomicUsize::new(0));
/// pool_core::drop_quietly(test_kit::Fuse::new(&dropped));
/// assert_eq!(dropped.load(Ordering::SeqCst), 1);
/// ```
#[derive(Debug)]
pub struct Fuse(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Fuse {
    /// A fuse that counts its drop in `dropped`.
    pub fn new(dropped: &std::sync::Arc<std::sync::atomic::AtomicUsize>) -> Fuse {
        Fuse(std::sync::Arc::clone(dropped))
    }
}

impl Drop for Fuse {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::panic::panic_any(Bomb(1));
    }
}

/// Runs `f`, a step of a hostile test that must not unwind, and returns its value, or `None` if
/// it unwound. The panic's payload is leaked, not dropped: a hostile payload's `Drop` panics, and
/// the test harness, dropping it as the test's failure, would hang instead of failing the test.
///
/// # Examples
///
/// ```
/// test_kit::quiet_panics(|_| false);
/// assert_eq!(test_kit::no_unwind(|| 4), Some(4));
/// assert_eq!(test_kit::no_unwind(|| -> u8 { std::panic::panic_any(test_kit::Bomb(2)) }), None);
/// ```
pub fn no_unwind<R>(f: impl FnOnce() -> R) -> Option<R> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(payload) => {
            std::mem::forget(payload);
            None
        }
    }
}

/// Silences the panics a test binary provokes on purpose (they are expected, and noisy): string
/// messages `is_expected` accepts, and every payload that is not a string (a [`Bomb`], a value
/// raised with `panic_any`: only a test raises those, on purpose, while a failed assertion's
/// payload is always a string). Other panics still print through the previous hook. Installed
/// once per test binary (the first call's `is_expected` wins).
///
/// # Examples
///
/// ```
/// test_kit::quiet_panics(|message| message.starts_with("hostile"));
/// assert!(std::panic::catch_unwind(|| panic!("hostile closure")).is_err()); // prints nothing
/// ```
pub fn quiet_panics(is_expected: fn(&str) -> bool) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            let expected = message.is_none_or(is_expected);
            if !expected {
                previous(info);
            }
        }));
    });
}
