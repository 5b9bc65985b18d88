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
