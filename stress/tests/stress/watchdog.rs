//! Fails the test, with a dump of what it is watching, when progress stops.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// No progress for this long means a hang (generous: the machine is shared and may be slow).
const STALL: Duration = Duration::from_secs(60);

pub struct Watchdog {
    progress: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    /// Watches `progress`; on a stall prints `dump()` and exits the process with failure.
    pub fn start(seed: u64, dump: impl Fn() -> String + Send + 'static) -> Watchdog {
        let progress = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let (p, d) = (progress.clone(), done.clone());
        let thread = std::thread::spawn(move || {
            let mut last = (p.load(Ordering::SeqCst), Instant::now());
            while !d.load(Ordering::SeqCst) {
                std::thread::park_timeout(Duration::from_millis(200));
                let now = p.load(Ordering::SeqCst);
                if now != last.0 {
                    last = (now, Instant::now());
                } else if last.1.elapsed() > STALL {
                    eprintln!(
                        "WATCHDOG: no progress for {STALL:?} (seed {seed}, replay with \
                         STRESS_SEED={seed}); state:\n{}",
                        dump()
                    );
                    std::process::exit(3);
                }
            }
        });
        Watchdog {
            progress,
            done,
            thread: Some(thread),
        }
    }

    pub fn tick(&self) {
        self.progress.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}
