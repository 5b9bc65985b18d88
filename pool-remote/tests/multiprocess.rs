//! A submitter and three worker processes sharing one backend; 10k prioritized jobs; one worker
//! is SIGKILLed midway. The books must balance: submitted = completed + failed + cancelled, each
//! completed job returns its own value and the backend agrees. At-least-once is checked job by
//! job: every job the killed worker held at its death finished once, run by a survivor, and no
//! live worker's job was taken from it and run twice.
//!
//! The worker processes are this test binary, re-run with `POOL_REMOTE_ROLE=worker` on the
//! `worker_process` entry (a no-op in a normal run).

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::engine::EngineTable;
use common::{join, registry, sqlite_url, Explode, Linger, Nap};
use pool_core::Priority;
use pool_remote::{RemoteError, RemoteExecutor, Worker};

const JOBS: u64 = 10_000;
const PANICKY: u64 = 20;
const TO_CANCEL: u64 = 100;
/// The job the victim is made to hold when it dies (its argument id).
const LINGER_ID: u64 = 99_999;
/// A dead worker's jobs go back to the queue after `HEARTBEAT × MISSED_HEARTBEATS`. On a shared
/// 2-core machine at load 20-35, live workers' heartbeats were seen 8-16 s apart (each heartbeat
/// is a write and waits for SQLite's one write lock), and with 8 s their claimed jobs were
/// re-enqueued and run twice. 30 s keeps live workers' jobs theirs (the test asserts it), at
/// the price of the victim's jobs waiting 30 s for a survivor.
const HEARTBEAT: Duration = Duration::from_secs(1);
const MISSED_HEARTBEATS: usize = 30;

/// The worker side: runs only in the child processes.
#[test]
fn worker_process() {
    if std::env::var("POOL_REMOTE_ROLE").as_deref() != Ok("worker") {
        return;
    }
    let url = std::env::var("POOL_REMOTE_URL").unwrap();
    let name = std::env::var("POOL_REMOTE_NAME").unwrap();
    let queue = std::env::var("POOL_REMOTE_QUEUE").unwrap();
    let worker = Worker::builder(&url, registry())
        .name(&name)
        .queue(queue)
        .threads(2)
        .heartbeat(HEARTBEAT)
        .missed_heartbeats(MISSED_HEARTBEATS)
        .batch(32)
        .poll_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    // On stdout, which the test reads: a worker whose engine loop failed says why.
    let report = match worker.run_until_signal() {
        Ok(report) => report,
        Err(e) => {
            println!("WORKER FAILED {name}: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "REPORT {name} succeeded={} failed={} refused={}",
        report.succeeded, report.failed, report.refused
    );
}

/// A worker process that is killed if the test fails before stopping it, so that a failed run
/// leaves no workers behind.
struct WorkerProcess(Child);

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        // Errors only say it has already exited and been reaped.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_worker(url: &str, queue: &str, name: &str) -> WorkerProcess {
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "worker_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("POOL_REMOTE_ROLE", "worker")
        .env("POOL_REMOTE_URL", url)
        .env("POOL_REMOTE_NAME", name)
        .env("POOL_REMOTE_QUEUE", queue)
        .stdout(Stdio::piped())
        .stderr(Stdio::null()) // the planned panics' messages
        .spawn()
        .unwrap();
    WorkerProcess(child)
}

/// SIGTERM (a graceful stop), then wait for the exit with a generous deadline.
fn stop_gracefully(mut worker: WorkerProcess) -> String {
    let child = &mut worker.0;
    let pid = child.id().to_string();
    // A worker that already ended is reported by its exit status below.
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "worker {pid} did not stop within 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(status.success(), "worker {pid} exited with {status}: {out}");
    out
}

/// Runs the whole scenario against `url`; `scratch` is a directory of its own.
fn books_balance_with_a_killed_worker(url: &str, scratch: &Path) {
    let start = Instant::now();
    let at = |what: &str| println!("[{:>6.2?}] {what}", start.elapsed());
    // A queue of its own, so a shared server's earlier runs do not count.
    let queue = format!(
        "multiprocess-{}-{}",
        std::process::id(),
        start.elapsed().as_nanos()
    );
    let remote = RemoteExecutor::builder(url)
        .queue(&queue)
        .max_attempts(4)
        .poll_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    let mut names: Vec<String> = (0..3)
        .map(|i| format!("w{i}-{}", std::process::id()))
        .collect();
    let mut workers: Vec<WorkerProcess> = names
        .iter()
        .map(|name| spawn_worker(url, &queue, name))
        .collect();

    // 10k jobs in batches, every level; one in 50 naps long enough to be cut by the kill.
    let mut handles = Vec::new();
    for chunk in 0..10 {
        let batch = (chunk * JOBS / 10..(chunk + 1) * JOBS / 10).map(|id| {
            let level = Priority::ALL[(id % 5) as usize];
            let ms = if id % 50 == 0 { 30 } else { 1 };
            (level, (id, ms))
        });
        handles.extend(remote.submit_batch::<Nap>(batch).unwrap());
    }
    let panicky: Vec<_> = (0..PANICKY)
        .map(|i| remote.submit::<Explode>(format!("planned {i}")).unwrap())
        .collect();
    // Idle-level jobs submitted last: most are still unclaimed when cancelled (a claimed one
    // runs, and its cancel says so).
    let cancellable = remote
        .submit_batch::<Nap>((0..TO_CANCEL).map(|i| (Priority::Idle, (JOBS + i, 1))))
        .unwrap();
    at("submitted");
    let mut cancelled_ids = HashSet::new();
    for h in &cancellable {
        if h.cancel().unwrap() {
            cancelled_ids.insert(h.id());
        }
    }
    assert!(!cancelled_ids.is_empty(), "some idle jobs were unclaimed");

    // SIGKILL one worker once the backend counts 3000 jobs done, with 7000 to go, while it
    // certainly holds a job: a `Linger` job, submitted at the top level, waits for a marker file
    // that only appears after the kill; whichever worker claims it is the victim.
    let table = EngineTable::open(url);
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let counts = remote.backend_counts().unwrap();
        let done = counts
            .iter()
            .find(|(status, _)| status == "Done")
            .map_or(0, |(_, n)| *n);
        if done >= 3000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "3000 jobs were not done within 600 s: {counts:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let marker = scratch.join(format!("{queue}.released"));
    let linger = remote
        .submit_at::<Linger>(Priority::Critical, (LINGER_ID, marker.clone()))
        .unwrap();
    let victim_name = loop {
        let row = table.jobs(&queue).remove(&linger.id());
        if let Some(name) = row.filter(|r| r.is_claimed()).and_then(|r| r.lock_by) {
            break name;
        }
        assert!(
            Instant::now() < deadline,
            "no worker claimed the linger job within 600 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let at_victim = names.iter().position(|n| *n == victim_name).unwrap();
    names.remove(at_victim);
    let mut victim = workers.remove(at_victim);
    victim.0.kill().unwrap(); // SIGKILL: no goodbye, its claimed jobs stay claimed
    victim.0.wait().unwrap();
    // Read after the death: exactly what it held, since a dead worker changes nothing and the
    // engine re-enqueues its jobs only after MISSED_HEARTBEATS heartbeats.
    let held = table.claimed_by(&queue, &victim_name);
    at(&format!(
        "killed {victim_name}, which held {} job(s)",
        held.len()
    ));
    assert!(
        held.contains(&linger.id()),
        "the victim holds the linger job at its death (not vacuous): {held:?}"
    );
    std::fs::write(&marker, b"").unwrap();

    // The engine's id of each Nap job, for the job-by-job check below.
    let mut engine_ids: HashMap<String, u64> = HashMap::new();
    let mut completed = HashSet::new();
    for h in handles {
        let engine_id = h.id();
        let id = join(h).expect("a Nap job completes");
        assert!(completed.insert(id), "job {id} delivered twice");
        engine_ids.insert(engine_id, id);
    }
    assert_eq!(join(linger).unwrap(), LINGER_ID);
    at("every job joined");
    assert_eq!(completed.len() as u64, JOBS);
    assert_eq!(completed, (0..JOBS).collect::<HashSet<_>>());

    let mut failed = 0;
    for h in panicky {
        match join(h) {
            Err(RemoteError::Panicked { attempts, .. }) => {
                assert_eq!(attempts, 4, "bounded by max_attempts");
                failed += 1;
            }
            other => panic!("expected a panic outcome, got {other:?}"),
        }
    }
    let mut late = 0;
    for h in cancellable {
        let id = h.id();
        match join(h) {
            Err(e) if e.is_cancelled() => assert!(cancelled_ids.contains(&id)),
            Ok(_) => {
                assert!(!cancelled_ids.contains(&id), "a cancelled job ran");
                late += 1;
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }

    let stats = remote.stats();
    let cancelled = cancelled_ids.len() as u64;
    assert_eq!(stats.outstanding, 0);
    assert_eq!(stats.submitted, JOBS + PANICKY + TO_CANCEL + 1);
    assert_eq!(stats.completed, JOBS + late + 1);
    assert_eq!((stats.failed, stats.cancelled), (failed, cancelled));
    assert_eq!(
        stats.submitted,
        stats.completed + stats.failed + stats.cancelled,
        "the books balance: {stats:?}"
    );
    // The backend agrees, across processes.
    let counts = remote.backend_counts().unwrap();
    let count = |s: &str| counts.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
    assert_eq!(count("Done"), stats.completed, "{counts:?}");
    assert_eq!(count("Failed"), stats.failed, "{counts:?}");
    assert_eq!(count("Killed"), stats.cancelled, "{counts:?}");
    assert_eq!(counts.iter().map(|(_, n)| n).sum::<u64>(), stats.submitted);
    // At-least-once, job by job: each job the victim held at its death finished exactly once
    // (one outcome above, from its own arguments; one Done row), recorded by a survivor (the
    // engine accepts an outcome only from the worker in `lock_by`), after a re-enqueue (which
    // adds an attempt). And no other job ran twice: a job taken from a live worker would also
    // show a second attempt.
    let jobs = table.jobs(&queue);
    for id in &held {
        let row = &jobs[id];
        // Done, or Failed for a panicking job that used up its attempts.
        assert!(
            row.status == "Done" || row.status == "Failed",
            "held job {id} finished: {row:?}"
        );
        let by = row.lock_by.as_deref().unwrap_or_default();
        assert!(
            names.iter().any(|n| n == by),
            "held job {id} was finished by a survivor, not {by:?}: {row:?}"
        );
        assert!(row.attempts >= 2, "held job {id} was re-enqueued: {row:?}");
        if let Some(nap) = engine_ids.get(id) {
            assert!(completed.contains(nap), "held job {id} delivered once");
        }
    }
    let mut twice: Vec<_> = jobs
        .iter()
        .filter(|(id, row)| row.status == "Done" && row.attempts > 1 && !held.contains(id))
        .map(|(id, row)| (id, row.attempts, row.lock_by.as_deref()))
        .collect();
    twice.sort();
    assert!(
        twice.is_empty(),
        "jobs taken from a live worker and run again (heartbeats more than {} s apart?): {twice:?}",
        HEARTBEAT.as_secs() * MISSED_HEARTBEATS as u64
    );

    at("books checked");
    let mut reports = String::new();
    for w in workers {
        reports.push_str(&stop_gracefully(w));
    }
    at("workers stopped");
    assert_eq!(reports.matches("REPORT").count(), 2, "{reports}");
    println!(
        "{stats:?}\n{counts:?}\nheld by the victim and re-run by a survivor: {}\n{reports}",
        held.len()
    );
}

#[test]
fn three_worker_processes_on_sqlite_one_killed() {
    let (dir, url) = sqlite_url("multiprocess");
    books_balance_with_a_killed_worker(&url, &dir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same against PostgreSQL (the multi-machine backend) when `POOL_REMOTE_PG_URL` is set;
/// `pool-remote/ci/with-postgres.sh` starts a throwaway server and sets it.
#[cfg(feature = "postgres")]
#[test]
fn three_worker_processes_on_postgres_one_killed() {
    match std::env::var("POOL_REMOTE_PG_URL") {
        Ok(url) => {
            let (dir, _) = sqlite_url("multiprocess-pg");
            books_balance_with_a_killed_worker(&url, &dir);
            let _ = std::fs::remove_dir_all(&dir);
        }
        Err(_) => println!("skipped: set POOL_REMOTE_PG_URL to run against PostgreSQL"),
    }
}
