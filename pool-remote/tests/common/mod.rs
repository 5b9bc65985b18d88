//! One test kit for the crate's tests: tasks, a throwaway database, an in-process worker.
#![allow(dead_code)]

pub mod engine;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use pool_remote::{BoxError, Registry, RemoteError, RemoteTask, Worker, WorkerReport};

/// `x * x`.
pub struct Square;
impl RemoteTask for Square {
    const NAME: &'static str = "square";
    type Args = u64;
    type Output = u64;
    fn run(&self, x: u64) -> Result<u64, BoxError> {
        Ok(x * x)
    }
}

/// Sleeps `ms` milliseconds then returns `id`: a task long enough to be killed in the middle.
pub struct Nap;
impl RemoteTask for Nap {
    const NAME: &'static str = "nap";
    type Args = (u64, u64);
    type Output = u64;
    fn run(&self, (id, ms): (u64, u64)) -> Result<u64, BoxError> {
        std::thread::sleep(Duration::from_millis(ms));
        Ok(id)
    }
}

/// Waits until the file `marker` exists (at most two minutes), then returns `id`: a job that is
/// certainly unfinished, whoever holds it, until the test creates the marker.
pub struct Linger;
impl RemoteTask for Linger {
    const NAME: &'static str = "linger";
    type Args = (u64, PathBuf);
    type Output = u64;
    fn run(&self, (id, marker): (u64, PathBuf)) -> Result<u64, BoxError> {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        // A file is what another process can see; the wait stands for a long piece of work.
        while !marker.exists() {
            if std::time::Instant::now() > deadline {
                return Err(format!("{} never appeared", marker.display()).into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(id)
    }
}

/// Always panics.
pub struct Explode;
impl RemoteTask for Explode {
    const NAME: &'static str = "explode";
    type Args = String;
    type Output = ();
    fn run(&self, why: String) -> Result<(), BoxError> {
        panic!("{why}")
    }
}

/// Returns the order in which this worker process started it (0, 1, 2, ...).
pub struct Sequence(pub AtomicU64);
impl RemoteTask for Sequence {
    const NAME: &'static str = "sequence";
    type Args = String;
    type Output = u64;
    fn run(&self, _label: String) -> Result<u64, BoxError> {
        Ok(self.0.fetch_add(1, Ordering::SeqCst))
    }
}

pub fn registry() -> Registry {
    Registry::new()
        .register(Square)
        .register(Nap)
        .register(Explode)
        .register(Linger)
        .register(Sequence(AtomicU64::new(0)))
}

/// A worker of `registry` made for tests: 2 threads, the shortest heartbeat (1 s), a 2 ms
/// poll, so jobs start at once.
pub fn quick_worker(url: &str, registry: Registry) -> Worker {
    Worker::builder(url, registry)
        .threads(2)
        .heartbeat(Duration::from_secs(1))
        .poll_interval(Duration::from_millis(2))
        .build()
        .unwrap()
}

/// A fresh SQLite database in the target's temp dir, and its URL.
pub fn sqlite_url(test: &str) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!(
        "pool-remote-{test}-{}-{}",
        std::process::id(),
        ulid_like()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("jobs.db");
    let url = format!("sqlite://{}", db.display());
    (dir, url)
}

fn ulid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A worker running on a thread of this process until `stop`.
pub struct LocalWorker {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<Result<WorkerReport, RemoteError>>,
}

impl LocalWorker {
    pub fn start(worker: Worker) -> LocalWorker {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            worker.run_until(async move {
                let _ = tokio::task::spawn_blocking(move || stopped.recv()).await;
            })
        });
        LocalWorker { stop, thread }
    }

    pub fn stop(self) -> WorkerReport {
        let _ = self.stop.send(());
        self.thread.join().unwrap().unwrap()
    }
}

/// Joins with a generous timeout; a timeout fails the test (it is a hang, not an outcome).
pub fn join<T: serde::de::DeserializeOwned>(
    h: pool_remote::RemoteHandle<T>,
) -> Result<T, RemoteError> {
    match h.join_timeout(Duration::from_secs(120)) {
        Ok(v) => Ok(v),
        Err(Ok(h)) => panic!("no outcome for {h:?} within 120 s"),
        Err(Err(e)) => Err(e),
    }
}
