//! Helpers shared by the integration tests.

#![allow(dead_code)]

use pool_core::ThreadPool;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Long enough for any event on a loaded 2-core machine; tests wait for events, never for time.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Holds `n` workers of a pool busy until released, so that later tasks stay queued.
pub struct Gate {
    release: Vec<Sender<()>>,
}

impl Gate {
    /// Occupies `n` workers and waits until all `n` are actually running.
    pub fn occupy(pool: &ThreadPool, n: usize) -> Gate {
        let (started_tx, started_rx) = mpsc::channel();
        let mut release = Vec::new();
        for _ in 0..n {
            let (tx, rx) = mpsc::channel::<()>();
            let started = started_tx.clone();
            pool.spawn(move || {
                started.send(()).unwrap();
                let _ = rx.recv_timeout(PATIENCE);
            })
            .unwrap();
            release.push(tx);
        }
        for _ in 0..n {
            started_rx
                .recv_timeout(PATIENCE)
                .expect("gate task never started");
        }
        Gate { release }
    }

    pub fn open(self) {
        for tx in self.release {
            let _ = tx.send(());
        }
    }
}

/// Records the order in which tasks ran.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<u32>>>);

impl Log {
    pub fn push(&self, v: u32) {
        self.0.lock().unwrap().push(v);
    }
    pub fn take(&self) -> Vec<u32> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// A channel whose receiver waits with patience.
pub fn events<T>() -> (Sender<T>, Receiver<T>) {
    mpsc::channel()
}

/// A value whose destructor panics with another `Bomb`, down to zero: dropping the payload of
/// that panic panics again.
pub struct Bomb(pub u32);

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.0 > 0 {
            std::panic::panic_any(Bomb(self.0 - 1));
        }
    }
}

/// Silences the panics a test binary provokes on purpose (they are expected, and noisy): `Bomb`
/// payloads and messages `is_expected` accepts. Other panics still print. Installed once per
/// test binary.
pub fn quiet_panics(is_expected: fn(&str) -> bool) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            let expected =
                payload.downcast_ref::<Bomb>().is_some() || message.is_some_and(is_expected);
            if !expected {
                default(info);
            }
        }));
    });
}
