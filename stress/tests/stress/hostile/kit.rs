//! The hostile pieces of user code: values whose `Drop` panics, panic payloads whose `Drop` panics,
//! wakers that panic, coalescing keys whose `Hash`/`Eq`/`Clone` panic, and an `Executor` that
//! panics or drops jobs. Every panic they raise carries a marker ([`is_marker`]) so the harness
//! can keep them out of the output and tell them from real failures.

use std::any::Any;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use pool_core::{drop_quietly, Executor, Job, Priority, Rejected, ThreadPool};

/// Every string panic the harness raises on purpose starts with this.
pub const MARK: &str = "deliberate hostile panic";

/// Whether a panic payload is one the harness raised on purpose.
pub fn is_marker(payload: &(dyn Any + Send)) -> bool {
    if payload.is::<Payload>() {
        return true;
    }
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("");
    text.starts_with(MARK)
}

/// Seeded dice shared by threads: roll `n` is a pure function of the seed and `n`, so a run
/// replays as far as the threads' interleaving does.
pub struct Dice {
    seed: u64,
    rolls: AtomicU64,
}

impl Dice {
    pub fn new(seed: u64) -> Dice {
        Dice {
            seed,
            rolls: AtomicU64::new(0),
        }
    }

    /// True with probability `percent` / 100.
    pub fn roll(&self, percent: u32) -> bool {
        if percent == 0 {
            return false;
        }
        let n = self.rolls.fetch_add(1, Ordering::Relaxed);
        fastrand::Rng::with_seed(self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)).u32(..100)
            < percent
    }
}

/// Counts the hostile values alive in one round: at the end, after everything was dropped, it
/// must be zero (nothing leaked, nothing dropped twice).
#[derive(Clone, Default)]
pub struct Census(Arc<AtomicI64>);

impl Census {
    pub fn live(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Counts a hostile value made outside this module (its `Drop` calls `count_drop`).
    pub fn count_new(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    pub fn count_drop(&self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A value (captured, returned or stored as an output) whose `Drop` panics when `armed`.
///
/// It never panics while its thread is already unwinding: that would abort the process (Rust's
/// rule for a panic during a panic), which no library can prevent.
pub struct Bomb {
    pub id: u64,
    armed: bool,
    census: Census,
}

impl Bomb {
    pub fn new(id: u64, armed: bool, census: &Census) -> Bomb {
        census.count_new();
        Bomb {
            id,
            armed,
            census: census.clone(),
        }
    }

    pub fn is_armed(&self) -> bool {
        self.armed
    }
}

impl Drop for Bomb {
    fn drop(&mut self) {
        self.census.count_drop();
        if self.armed && !std::thread::panicking() {
            panic!("{MARK}: Drop of value {}", self.id);
        }
    }
}

/// A panic payload (`std::panic::panic_any(Payload)`) whose own `Drop` panics: dropped outside
/// its `catch_unwind`, it unwinds into whatever dropped it.
pub struct Payload {
    census: Census,
}

impl Payload {
    pub fn new(census: &Census) -> Payload {
        census.count_new();
        Payload {
            census: census.clone(),
        }
    }
}

impl Drop for Payload {
    fn drop(&mut self) {
        self.census.count_drop();
        if !std::thread::panicking() {
            panic!("{MARK}: Drop of a panic payload");
        }
    }
}

/// How a piece of hostile user code ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Returns,
    /// Panics with a string.
    Panics,
    /// Panics with a [`Payload`] whose `Drop` panics.
    PanicsWithPayload,
}

impl Ending {
    pub fn pick(rng: &mut fastrand::Rng, hostile: bool) -> Ending {
        match (hostile, rng.u32(..100)) {
            (false, _) | (true, 0..=69) => Ending::Returns,
            (true, 70..=84) => Ending::Panics,
            (true, _) => Ending::PanicsWithPayload,
        }
    }

    pub fn panics(self) -> bool {
        self != Ending::Returns
    }

    /// Ends the way it says; call it last in the closure.
    pub fn act(self, census: &Census, what: &str) {
        match self {
            Ending::Returns => {}
            Ending::Panics => panic!("{MARK}: panic in {what}"),
            Ending::PanicsWithPayload => panic::panic_any(Payload::new(census)),
        }
    }
}

/// A waker that may panic in `wake`/`wake_by_ref` and in its `Drop`.
struct HostileWaker {
    panic_on_wake: bool,
    panic_on_drop: bool,
}

impl Wake for HostileWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.panic_on_wake {
            panic!("{MARK}: wake");
        }
    }
}

impl Drop for HostileWaker {
    fn drop(&mut self) {
        if self.panic_on_drop && !std::thread::panicking() {
            panic!("{MARK}: Drop of a waker");
        }
    }
}

/// Polls `future` once with a waker that panics when woken (and sometimes when dropped), so the
/// library registers it and must survive calling it later.
pub fn poll_with_hostile_waker<F: Future + Unpin>(
    future: &mut F,
    rng: &mut fastrand::Rng,
) -> Poll<F::Output> {
    let waker = Waker::from(Arc::new(HostileWaker {
        panic_on_wake: true,
        panic_on_drop: rng.bool(),
    }));
    let result = Pin::new(future).poll(&mut Context::from_waker(&waker));
    // The library may have dropped its clone already: then ours is the last one, and its `Drop`
    // may panic here, on the harness's own thread, which is fine.
    drop_quietly(waker);
    result
}

/// A coalescing key whose `Hash`, `Eq` and `Clone` panic on the `fuse`-th call among all copies
/// of it (if it has a fuse).
#[derive(Debug)]
pub struct Key {
    pub id: u8,
    fuse: Option<Arc<AtomicI32>>,
}

impl Key {
    pub fn new(id: u8, fuse: Option<i32>) -> Key {
        Key {
            id,
            fuse: fuse.map(|n| Arc::new(AtomicI32::new(n))),
        }
    }

    fn tick(&self, what: &str) {
        if let Some(fuse) = &self.fuse {
            if fuse.fetch_sub(1, Ordering::SeqCst) == 1 && !std::thread::panicking() {
                panic!("{MARK}: key {} {what}", self.id);
            }
        }
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.tick("Hash");
        self.id.hash(state);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.tick("Eq");
        self.id == other.id
    }
}

impl Eq for Key {}

impl Clone for Key {
    fn clone(&self) -> Key {
        self.tick("Clone");
        Key {
            id: self.id,
            fuse: self.fuse.clone(),
        }
    }
}

/// What [`HostileExecutor`] did with the jobs it was given.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExecutorTally {
    pub forwarded: u64,
    pub dropped: u64,
    pub panicked: u64,
}

/// Wraps the real pool; at random panics in `execute`/`execute_with_priority` (with the job
/// alive or dropped first) or drops the job without running it.
pub struct HostileExecutor {
    pool: Arc<ThreadPool>,
    dice: Dice,
    percent_panic: u32,
    percent_drop: u32,
    tally: Mutex<ExecutorTally>,
}

impl HostileExecutor {
    pub fn new(pool: Arc<ThreadPool>, seed: u64, hostile: bool) -> HostileExecutor {
        HostileExecutor {
            pool,
            dice: Dice::new(seed),
            percent_panic: if hostile { 4 } else { 0 },
            percent_drop: if hostile { 4 } else { 0 },
            tally: Mutex::new(ExecutorTally::default()),
        }
    }

    pub fn tally(&self) -> ExecutorTally {
        *self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count(&self, f: impl FnOnce(&mut ExecutorTally)) {
        f(&mut self.tally.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

impl Executor for HostileExecutor {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        self.execute_with_priority(job, Priority::Normal)
    }

    fn execute_with_priority(&self, job: Job, priority: Priority) -> Result<(), Rejected<Job>> {
        if self.dice.roll(self.percent_panic) {
            self.count(|t| t.panicked += 1);
            if self.dice.roll(50) {
                // Dropping the job runs user `Drop`s, which may panic first: either way this
                // call panics.
                let dropped = panic::catch_unwind(AssertUnwindSafe(move || drop(job)));
                if let Err(payload) = dropped {
                    panic::resume_unwind(payload);
                }
            }
            panic!("{MARK}: Executor::execute_with_priority");
        }
        if self.dice.roll(self.percent_drop) {
            self.count(|t| t.dropped += 1);
            drop(job);
            return Ok(());
        }
        self.count(|t| t.forwarded += 1);
        self.pool.execute_with_priority(job, priority)
    }
}

/// Runs `f`, which calls the library with hostile pieces: a panic carrying a harness marker may
/// surface on this (the caller's) thread and is tolerated (`None`); any other panic is a real
/// failure and goes on unwinding.
pub fn tolerate<R>(f: impl FnOnce() -> R) -> Option<R> {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(payload) if is_marker(payload.as_ref()) => {
            drop_quietly(payload);
            None
        }
        Err(payload) => panic::resume_unwind(payload),
    }
}
