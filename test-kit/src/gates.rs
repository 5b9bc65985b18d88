//! Gates: a one-shot latch tasks wait at, and a gate that holds a pool's workers busy so that
//! later tasks stay queued in a known order.

use std::sync::mpsc::{self, Sender};
use std::sync::{Condvar, Mutex};

use pool_core::{Priority, ThreadPool};

use crate::PATIENCE;

/// A one-shot latch: [`wait`](Self::wait) returns once [`open`](Self::open) was called, or after
/// [`PATIENCE`] so that a failing test ends instead of hanging.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use test_kit::Latch;
///
/// let latch = Arc::new(Latch::default());
/// let l = latch.clone();
/// let waiter = std::thread::spawn(move || l.wait());
/// latch.open();
/// assert!(waiter.join().unwrap());
/// ```
#[derive(Debug, Default)]
pub struct Latch {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Latch {
    /// Opens the latch and wakes every waiter; later waits return at once.
    pub fn open(&self) {
        *self.open.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.opened.notify_all();
    }

    /// Waits until the latch is open; false if [`PATIENCE`] passed first.
    pub fn wait(&self) -> bool {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (open, _) = self
            .opened
            .wait_timeout_while(open, PATIENCE, |open| !*open)
            .unwrap_or_else(|e| e.into_inner());
        *open
    }

    /// Whether [`open`](Self::open) was called.
    pub fn is_open(&self) -> bool {
        *self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Holds `n` workers of a pool busy until opened (or dropped), so that every task submitted
/// meanwhile waits in the queue and the test controls the order they meet the workers in.
///
/// # Examples
///
/// ```
/// use pool_core::{Priority, ThreadPool};
/// use test_kit::WorkerGate;
///
/// let pool = ThreadPool::new(2).unwrap();
/// let gate = WorkerGate::occupy(&pool, 2);
/// let queued = pool.submit(|| 1).unwrap();
/// assert!(!queued.is_finished());
/// gate.open();
/// assert_eq!(queued.join(), Ok(1));
/// ```
#[derive(Debug)]
pub struct WorkerGate {
    release: Vec<Sender<()>>,
}

impl WorkerGate {
    /// Occupies `n` workers and returns once all `n` are actually running (so later tasks queue).
    ///
    /// # Panics
    ///
    /// If the pool refuses a gate task, or the `n` tasks do not all start within [`PATIENCE`].
    pub fn occupy(pool: &ThreadPool, n: usize) -> WorkerGate {
        WorkerGate::hold(n, |task| pool.spawn(task).is_ok())
    }

    /// Like [`occupy`](Self::occupy), with the gate's tasks submitted at `priority` (a test of a
    /// priority policy counts them in that level's books).
    ///
    /// # Panics
    ///
    /// As [`occupy`](Self::occupy).
    pub fn occupy_at(pool: &ThreadPool, n: usize, priority: Priority) -> WorkerGate {
        WorkerGate::hold(n, |task| pool.spawn_with_priority(priority, task).is_ok())
    }

    /// Like [`occupy`](Self::occupy), with the gate's tasks handed to `submit`, which returns
    /// whether it accepted one: for a pool wrapped in something with its own submission path
    /// (an adaptive pool's, which may ask its controller for a look), where `occupy` on the
    /// inner pool would bypass it.
    ///
    /// # Panics
    ///
    /// As [`occupy`](Self::occupy).
    pub fn occupy_through(
        n: usize,
        submit: impl Fn(Box<dyn FnOnce() + Send>) -> bool,
    ) -> WorkerGate {
        WorkerGate::hold(n, submit)
    }

    fn hold(n: usize, submit: impl Fn(Box<dyn FnOnce() + Send>) -> bool) -> WorkerGate {
        let (started_tx, started_rx) = mpsc::channel();
        let mut release = Vec::with_capacity(n);
        for _ in 0..n {
            let (tx, rx) = mpsc::channel::<()>();
            let started = started_tx.clone();
            let accepted = submit(Box::new(move || {
                let _ = started.send(());
                // Released by `open`, or by the gate's drop (the sender goes away).
                let _ = rx.recv_timeout(PATIENCE);
            }));
            assert!(accepted, "the pool refused a gate task");
            release.push(tx);
        }
        for _ in 0..n {
            started_rx
                .recv_timeout(PATIENCE)
                .expect("a gate task never started");
        }
        WorkerGate { release }
    }

    /// Releases the held workers.
    pub fn open(self) {
        for tx in self.release {
            let _ = tx.send(());
        }
    }
}
