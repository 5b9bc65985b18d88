//! The handshake between a submission that asks the controller for an early look and the
//! controller's wait: the asker records the ask under the controller's lock, and wakes the
//! controller unless the controller promised, under that lock, to wake by the look's time on
//! its own (`src/README.md`, "Early decisions"; why the promise: `early_wait.rs`).
//!
//! Invariant: an ask is never left past its look's due time: the controller's wait ends no
//! later than that time, or the asker notifies. Modelled in `loom-tests/tests/adaptive.rs`
//! (`an_ask_is_never_left_past_its_look`), with two planted bugs.

use std::time::Instant;

use pool_core::sync::{Condvar, Mutex};

/// The ask for an early look, and the controller's promise to wake in time for it, kept under
/// the controller's lock: [`ask`](Self::ask) is the asker's half of the handshake,
/// [`before_wait`](Self::before_wait) and [`awake`](Self::awake) the controller's.
///
/// Public only so that `loom-tests` can model the handshake with the real code; an
/// [`AdaptivePool`](crate::AdaptivePool) keeps its own, and nothing in its API takes one.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// use policy_adaptive::EarlyAsk;
/// use pool_core::sync::{Condvar, Mutex};
///
/// let (control, wake) = (Mutex::new(EarlyAsk::new()), Condvar::new());
/// let now = Instant::now();
/// let look_due = now + Duration::from_millis(10);
/// // The controller waits until the look's time: an ask needs no wake-up.
/// control.lock().before_wait(look_due, look_due);
/// EarlyAsk::ask(&control, &wake);
/// // It wakes, takes the ask, and then waits for the next tick: an ask now wakes it.
/// let mut ask = control.lock();
/// ask.awake();
/// assert!(ask.take());
/// ask.before_wait(now + Duration::from_millis(100), look_due);
/// drop(ask);
/// EarlyAsk::ask(&control, &wake);
/// assert_eq!(control.lock().counts(), (2, 1), "two asks, one left to the promise");
/// ```
#[derive(Debug, Default)]
pub struct EarlyAsk {
    /// An ask waits for its look.
    asked: bool,
    /// Set while the controller waits with a deadline no later than the moment the look may
    /// come; false while it runs, or while it waits past that moment.
    wakes_in_time: bool,
    /// Asks so far, and of them those left to the promise (no notify).
    asks: u64,
    quiet_asks: u64,
}

impl AsMut<EarlyAsk> for EarlyAsk {
    fn as_mut(&mut self) -> &mut EarlyAsk {
        self
    }
}

impl EarlyAsk {
    /// No ask, no promise.
    pub fn new() -> Self {
        Self::default()
    }

    /// The asker's half: records the ask under `control`'s lock, and notifies `wake` unless
    /// the controller promised to wake in time on its own. `control` is the lock the
    /// controller waits on `wake` with.
    ///
    /// # Examples
    ///
    /// See [`EarlyAsk`].
    pub fn ask<T: AsMut<EarlyAsk>>(control: &Mutex<T>, wake: &Condvar) {
        // Planted bug (loom models only, `.ci/loom-planted`): the promise read, and the notify
        // sent, under a lock of their own before the ask is recorded (and none after): a
        // controller woken by that notify finds no ask yet, waits past the look, and the ask
        // comes without one.
        #[cfg(loom_broken_early_notify_first)]
        if !control.lock().as_mut().wakes_in_time {
            wake.notify_one();
        }
        let mut guard = control.lock();
        let ask = guard.as_mut();
        ask.asked = true;
        ask.asks += 1;
        let wakes_in_time = ask.wakes_in_time;
        ask.quiet_asks += u64::from(wakes_in_time);
        drop(guard);
        if !wakes_in_time && cfg!(not(loom_broken_early_notify_first)) {
            wake.notify_one();
        }
    }

    /// The controller's half, just before it waits until `until` (under the lock it waits
    /// with): it promises to wake in time if that wait ends no later than `look_due`, the
    /// earliest moment the look may come.
    ///
    /// # Examples
    ///
    /// See [`EarlyAsk`].
    pub fn before_wait(&mut self, until: Instant, look_due: Instant) {
        #[cfg(not(loom_broken_early_promise))]
        {
            self.wakes_in_time = until <= look_due;
        }
        // Planted bug (loom models only): the comparison the wrong way round, so a wait past
        // the look promises to wake in time, and its asker does not notify.
        #[cfg(loom_broken_early_promise)]
        {
            self.wakes_in_time = until >= look_due;
        }
    }

    /// The controller's half on waking, before it looks at anything: an asker from here on
    /// notifies.
    ///
    /// # Examples
    ///
    /// See [`EarlyAsk`].
    pub fn awake(&mut self) {
        self.wakes_in_time = false;
    }

    /// Whether an ask waits for its look.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut ask = policy_adaptive::EarlyAsk::new();
    /// assert!(!ask.is_asked());
    /// ```
    pub fn is_asked(&self) -> bool {
        self.asked
    }

    /// Takes the ask that waits for its look, if there is one (the look is taken, or a
    /// regular tick makes it moot).
    ///
    /// # Examples
    ///
    /// See [`EarlyAsk`].
    pub fn take(&mut self) -> bool {
        std::mem::take(&mut self.asked)
    }

    /// Whether the controller promised to wake in time (see [`before_wait`](Self::before_wait)).
    ///
    /// # Examples
    ///
    /// ```
    /// let ask = policy_adaptive::EarlyAsk::new();
    /// assert!(!ask.wakes_in_time(), "no wait, no promise");
    /// ```
    pub fn wakes_in_time(&self) -> bool {
        self.wakes_in_time
    }

    /// Asks so far, and of them those left to the controller's promise (no notify).
    ///
    /// # Examples
    ///
    /// See [`EarlyAsk`].
    pub fn counts(&self) -> (u64, u64) {
        (self.asks, self.quiet_asks)
    }
}
