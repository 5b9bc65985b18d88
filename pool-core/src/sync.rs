//! The one synchronisation facade of the workspace.
//!
//! Every crate's concurrent protocol imports its atomics, locks, threads and cells from here, never
//! from `std::sync` directly, so that building with `RUSTFLAGS="--cfg loom"` hands the whole protocol
//! to the loom model checker. The switch is `cfg(loom)` alone: `loom-tests` is a separate crate, and
//! `cfg(test)` is false for a dependency.
//!
//! Both back ends share one API:
//! - [`Mutex::lock`] never reports poisoning. A task's panic is caught before it can unwind through
//!   any of our critical sections, so a poisoned lock can only mean a bug in this crate, and the data
//!   it protects (counters, queues, slots) stays consistent at every step anyway.
//! - [`UnsafeCell`] exposes loom's closure API (`with`, `with_mut`) so loom can check every access.
//! - [`Backoff`] spins with crossbeam's exponential backoff, and becomes `yield_now` under loom (a
//!   spin loop would otherwise be an unbounded number of model steps); [`pause_then_yield`] is
//!   the fixed wait of a searching worker, also `yield_now` under loom.
//!
//! This module is public so that the policy crates and `loom-tests` share it; it is not meant as
//! a general-purpose API.

#[cfg(not(loom))]
mod imp {
    pub use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
    pub use std::sync::Arc;
    pub use std::thread;
    pub use std::thread_local;

    /// A condition variable over [`super::MutexGuard`].
    pub type StdCondvar = std::sync::Condvar;
    pub type StdMutex<T> = std::sync::Mutex<T>;
    pub type StdGuard<'a, T> = std::sync::MutexGuard<'a, T>;
    pub type StdWaitTimeout = std::sync::WaitTimeoutResult;
}

#[cfg(loom)]
mod imp {
    pub use loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
    pub use loom::sync::Arc;
    pub use loom::thread;
    pub use loom::thread_local;

    pub type StdCondvar = loom::sync::Condvar;
    pub type StdMutex<T> = loom::sync::Mutex<T>;
    pub type StdGuard<'a, T> = loom::sync::MutexGuard<'a, T>;
    pub type StdWaitTimeout = loom::sync::WaitTimeoutResult;
}

pub use imp::{fence, thread, thread_local, AtomicBool, AtomicU64, AtomicU8, AtomicUsize};

/// A thread-local with a constant initialiser. Outside loom it is std's `const` form, which reads
/// the slot directly; the lazy form checks and may run an initialiser on every access, which is
/// measurable on the path of every submission. loom's `thread_local!` has no `const` form, so
/// under loom the same declaration is loom's lazy one (same behaviour, model-checked).
#[cfg(not(loom))]
macro_rules! const_thread_local {
    ($(#[$attr:meta])* static $name:ident: $t:ty = $init:expr;) => {
        std::thread_local! { $(#[$attr])* static $name: $t = const { $init }; }
    };
}

#[cfg(loom)]
macro_rules! const_thread_local {
    ($(#[$attr:meta])* static $name:ident: $t:ty = $init:expr;) => {
        loom::thread_local! { $(#[$attr])* static $name: $t = $init; }
    };
}

pub(crate) use const_thread_local;

/// A process-wide value built on first use. Outside loom it is std's `LazyLock`; under loom it is
/// loom's `lazy_static!`, which builds it afresh in every execution of a model, so one model's
/// count never leaks into the next.
#[cfg(not(loom))]
macro_rules! process_static {
    ($(#[$attr:meta])* static $name:ident: $t:ty = $init:expr;) => {
        $(#[$attr])* static $name: std::sync::LazyLock<$t> = std::sync::LazyLock::new(|| $init);
    };
}

#[cfg(loom)]
macro_rules! process_static {
    ($(#[$attr:meta])* static $name:ident: $t:ty = $init:expr;) => {
        loom::lazy_static! { $(#[$attr])* static ref $name: $t = $init; }
    };
}

pub use imp::{Arc, Ordering};
pub(crate) use process_static;

use std::time::Duration;

/// A mutual-exclusion lock whose `lock` cannot fail (see the module docs for why poisoning is
/// ignored).
///
/// # Examples
///
/// A panic while the lock is held does not poison it for the next holder:
///
/// ```
/// use pool_core::sync::{Arc, Mutex};
///
/// let books = Arc::new(Mutex::new(0_u32));
/// let holder = Arc::clone(&books);
/// let panicked = std::thread::spawn(move || {
///     let mut count = holder.lock();
///     *count += 1;
///     panic!("a panic while holding the lock");
/// })
/// .join();
/// assert!(panicked.is_err());
/// *books.lock() += 1;
/// let books = Arc::try_unwrap(books).expect("the thread is gone");
/// assert_eq!(books.into_inner(), 2);
/// ```
#[derive(Debug, Default)]
pub struct Mutex<T>(imp::StdMutex<T>);

/// The guard of a [`Mutex`].
pub type MutexGuard<'a, T> = imp::StdGuard<'a, T>;

impl<T> Mutex<T> {
    /// A new unlocked mutex holding `value`.
    pub fn new(value: T) -> Self {
        Mutex(imp::StdMutex::new(value))
    }

    /// Locks, ignoring poisoning.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Consumes the mutex, returning the value.
    pub fn into_inner(self) -> T {
        self.0.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

/// A lock that guards no data, with no poisoning and no parking: taking it is one
/// compare-and-swap, releasing it one plain `Release` store.
///
/// For critical sections that are short and rarely contended, such as a pool's submitter gates
/// (`pool/README.md`, "shutdown"): [`Mutex`] pays for poisoning (a look at the panic count on
/// lock and on unlock) and releases with a locked swap, because it must know whether a waiter
/// sleeps. A waiter here does not sleep: it spins, then yields its time slice ([`Backoff`]), so
/// a holder preempted or blocked for long costs the waiters yields, never a lost wake-up or a
/// hang. The guard releases the lock on every way out, unwinding included.
#[derive(Debug, Default)]
pub(crate) struct SpinLock {
    locked: AtomicBool,
}

/// Holds a [`SpinLock`] until dropped.
#[must_use = "the lock is released when the guard is dropped"]
pub(crate) struct SpinGuard<'a>(&'a SpinLock);

impl SpinLock {
    /// Takes the lock, waiting (spinning, then yielding) while another thread holds it.
    #[inline]
    pub(crate) fn lock(&self) -> SpinGuard<'_> {
        // `Acquire` on success: everything the previous holder did before its `Release` store is
        // visible inside this section (the mutual exclusion the shutdown barrier relies on).
        if self
            .locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        SpinGuard(self)
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self) {
        let backoff = Backoff::new();
        loop {
            // Spin on a load, not on the swap: the line stays shared until the holder releases.
            while self.locked.load(Ordering::Relaxed) {
                backoff.snooze();
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }
}

impl Drop for SpinGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.locked.store(false, Ordering::Release);
    }
}

/// A condition variable paired with [`Mutex`]; waits ignore poisoning like `Mutex::lock`.
///
/// # Examples
///
/// Wait in a loop on a predicate, with a deadline:
///
/// ```
/// use std::time::{Duration, Instant};
///
/// use pool_core::sync::{Arc, Condvar, Mutex};
///
/// let ready = Arc::new((Mutex::new(false), Condvar::new()));
/// let setter = Arc::clone(&ready);
/// std::thread::spawn(move || {
///     *setter.0.lock() = true;
///     setter.1.notify_all();
/// });
/// let (lock, condvar) = &*ready;
/// let deadline = Some(Instant::now() + Duration::from_secs(60));
/// let mut is_ready = lock.lock();
/// while !*is_ready {
///     let (guard, timed_out) = condvar.wait_deadline(is_ready, deadline);
///     assert!(!timed_out, "the setter never ran");
///     is_ready = guard;
/// }
/// // A deadline already past returns at once, reporting that it passed.
/// let (_guard, timed_out) = condvar.wait_deadline(is_ready, Some(Instant::now()));
/// assert!(timed_out);
/// ```
#[derive(Debug, Default)]
pub struct Condvar(imp::StdCondvar);

impl Condvar {
    /// A new condition variable.
    pub fn new() -> Self {
        Condvar(imp::StdCondvar::new())
    }

    /// Blocks until notified (or spuriously woken: callers always wait in a loop on a predicate).
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.0.wait(guard).unwrap_or_else(|p| p.into_inner())
    }

    /// Blocks until notified or `timeout` elapses. Returns the guard and whether it timed out.
    ///
    /// Used only where the public API itself takes a timeout (`join_timeout`, `wait_idle`), never
    /// as a substitute for a wake-up.
    pub fn wait_timeout<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> (MutexGuard<'a, T>, bool) {
        let (guard, result): (MutexGuard<'a, T>, imp::StdWaitTimeout) = self
            .0
            .wait_timeout(guard, timeout)
            .unwrap_or_else(|p| p.into_inner());
        (guard, result.timed_out())
    }

    /// Blocks until notified, or until `deadline` if there is one. Returns the guard and whether
    /// the deadline had passed (a deadline already in the past returns at once).
    pub fn wait_deadline<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<std::time::Instant>,
    ) -> (MutexGuard<'a, T>, bool) {
        match deadline {
            None => (self.wait(guard), false),
            Some(deadline) => match deadline.checked_duration_since(std::time::Instant::now()) {
                Some(left) if !left.is_zero() => self.wait_timeout(guard, left),
                _ => (guard, true),
            },
        }
    }

    /// Wakes one waiter.
    pub fn notify_one(&self) {
        self.0.notify_one()
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.0.notify_all()
    }
}

/// An `UnsafeCell` with loom's closure-based API, so that loom can track every access.
///
/// # Examples
///
/// ```
/// use pool_core::sync::UnsafeCell;
///
/// let cell = UnsafeCell::new(1_u32);
/// // SAFETY: `cell` is not shared: no other access overlaps these two.
/// cell.with_mut(|value| unsafe { *value += 1 });
/// // SAFETY: as above.
/// assert_eq!(cell.with(|value| unsafe { *value }), 2);
/// ```
#[cfg(not(loom))]
#[derive(Debug)]
pub struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    /// A new cell.
    pub const fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a shared raw pointer to the contents.
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with an exclusive raw pointer to the contents.
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(loom)]
pub use loom::cell::UnsafeCell;

/// Exponential backoff for short spin-waits; `yield_now` under loom.
///
/// # Examples
///
/// ```
/// use pool_core::sync::{Arc, AtomicBool, Backoff, Ordering};
///
/// let flag = Arc::new(AtomicBool::new(false));
/// let setter = Arc::clone(&flag);
/// let thread = std::thread::spawn(move || setter.store(true, Ordering::Release));
/// let backoff = Backoff::new();
/// while !flag.load(Ordering::Acquire) {
///     backoff.snooze();
/// }
/// thread.join().unwrap();
/// ```
#[derive(Debug, Default)]
pub struct Backoff {
    #[cfg(not(loom))]
    inner: crossbeam_utils::Backoff,
}

impl Backoff {
    /// A fresh backoff.
    pub fn new() -> Self {
        Self::default()
    }

    /// Spins (then yields) a little longer each call.
    pub fn snooze(&self) {
        #[cfg(not(loom))]
        self.inner.snooze();
        #[cfg(loom)]
        loom::thread::yield_now();
    }
}

/// CPU pauses between two clock readings of [`pause_then_yield`]: about 0.6 µs on the 2-core
/// machine of `pool/README.md` (10 ns a pause), so a wait of a few microseconds reads the clock
/// a few times and ends within 0.6 µs of its length. Where a pause takes 140 cycles (about 3 µs
/// for 64 at 3 GHz), the first reading ends a 2.5 µs wait, which is then about 3 µs.
#[cfg(not(loom))]
const PAUSES_PER_CLOCK_READING: u32 = 64;

/// Spins with CPU pause instructions for `wait`, touching no shared memory, then yields the time
/// slice: the wait between two looks at a queue that was empty. `yield_now` under loom.
///
/// The wait is timed, not counted in pauses: a pause takes about 10 ns on some CPUs and over
/// 40 ns on others (140 cycles on Skylake-SP), so a fixed count of pauses would make the search
/// four times longer there. It reads the monotonic clock every 64 pauses (a vDSO call, no
/// system call, where the clock source allows).
///
/// Unlike [`Backoff`], whose first rounds are a handful of pauses, the wait is the same every
/// round: a thread that looks again within a few hundred nanoseconds keeps pulling the cache lines
/// that a producer writes on every push (see `pool/README.md`, "Searching").
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let start = Instant::now();
/// pool_core::sync::pause_then_yield(Duration::from_micros(3));
/// assert!(start.elapsed() >= Duration::from_micros(3));
/// ```
pub fn pause_then_yield(wait: std::time::Duration) {
    #[cfg(not(loom))]
    {
        let start = std::time::Instant::now();
        loop {
            for _ in 0..PAUSES_PER_CLOCK_READING {
                std::hint::spin_loop();
            }
            if start.elapsed() >= wait {
                break;
            }
        }
        std::thread::yield_now();
    }
    #[cfg(loom)]
    {
        let _ = wait;
        loom::thread::yield_now();
    }
}

/// Reference counting for type-erased shared objects (`Arc<dyn Trait>`), such as task cells.
///
/// loom's `Arc` cannot be coerced to a trait object on stable Rust (and its `from_std` needs a
/// unique `Arc`, while a task has two erased views), so these allocations are counted by std's
/// `Arc` under both back ends. That is sound for model checking: the reference count is not part
/// of any protocol of ours, and everything inside the allocation that is (the state word, the
/// closure cell, the result slot) uses this facade, so loom still sees every access it must check.
pub use std::sync::Arc as ErasedArc;

/// Pads and aligns a value to a cache line, so that per-worker counters do not share lines.
pub use crossbeam_utils::CachePadded;

/// How many slots [`thread_slot`] hands out.
pub const THREAD_SLOTS: usize = 8;

const_thread_local! {
    /// This thread's slot; `usize::MAX` until its first use.
    static THREAD_SLOT: std::cell::Cell<usize> = std::cell::Cell::new(usize::MAX);
}

/// The calling thread's slot, in `0..THREAD_SLOTS`: the same index in every structure striped by
/// thread (a pool's submitter gates, a [`ShareCount`]). Threads take slots round-robin in the
/// order of their first call, so up to [`THREAD_SLOTS`] threads started one after another (a
/// pool's workers) get distinct slots. Not part of any protocol: any assignment is correct, two
/// threads on one slot only share its cache line.
#[inline]
pub fn thread_slot() -> usize {
    let slot = thread_slot_if_assigned();
    if slot < THREAD_SLOTS {
        slot
    } else {
        assign_thread_slot()
    }
}

/// The calling thread's slot, or `usize::MAX` before its first [`thread_slot`] call: one load,
/// for a caller whose bounds check already tells the two apart.
#[inline]
pub(crate) fn thread_slot_if_assigned() -> usize {
    THREAD_SLOT.with(std::cell::Cell::get)
}

#[cold]
#[inline(never)]
fn assign_thread_slot() -> usize {
    let slot = next_thread_number() % THREAD_SLOTS;
    THREAD_SLOT.with(|s| s.set(slot));
    slot
}

#[cfg(not(loom))]
fn next_thread_number() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// loom replays every iteration and needs the same accesses each time; a process-wide counter
/// would hand each iteration's threads different slots. One slot is correct, only slower (models
/// that need distinct slots pick them: [`ShareCount::add_in`]).
#[cfg(loom)]
fn next_thread_number() -> usize {
    0
}

pub use crate::pool::budget::ThreadBudget;
pub use crate::share_count::{Share, ShareCount};

/// Process-wide unique numbers (task ids).
///
/// This is not part of any protocol: it only hands out distinct values, so it uses a plain std
/// atomic even under loom (loom atomics cannot live in a `static`).
pub fn next_unique_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::SpinLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Invariant: the lock excludes. Four threads each do a non-atomic read-modify-write of a
    /// shared counter (a load and a separate store) under the lock 10,000 times; a lost update
    /// (two holders at once) would leave the total short.
    #[test]
    fn spin_lock_excludes_under_contention() {
        const THREADS: u64 = 4;
        const ROUNDS: u64 = 10_000;
        let lock = SpinLock::default();
        let count = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    for _ in 0..ROUNDS {
                        let _guard = lock.lock();
                        count.store(count.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                    }
                });
            }
        });
        assert_eq!(count.into_inner(), THREADS * ROUNDS);
    }

    /// Invariant: a guard dropped by unwinding releases the lock (a panic under a gate must not
    /// wedge its stripe).
    #[test]
    fn spin_lock_is_released_by_a_panic() {
        let lock = SpinLock::default();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = lock.lock();
            panic!("inside the lock");
        }));
        assert!(caught.is_err());
        assert!(
            !lock.locked.load(Ordering::Relaxed),
            "the panic left the lock held"
        );
    }
}
