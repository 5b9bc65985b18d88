//! A submitter and three worker processes sharing one backend; 10k prioritized jobs; one worker
//! is SIGKILLed midway. The books must balance: submitted = completed + failed + cancelled, each
//! completed job returns its own value and the backend agrees. (How many jobs ran twice after the
//! kill is printed; see the comment at that check.)
//!
//! The worker processes are this test binary, re-run with `POOL_REMOTE_ROLE=worker` on the
//! `worker_process` entry (a no-op in a normal run).

mod common;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{join, registry, sqlite_url, Explode, Nap};
use pool_core::Priority;
use pool_remote::{RemoteError, RemoteExecutor, Worker};

const JOBS: u64 = 10_000;
const PANICKY: u64 = 20;
const TO_CANCEL: u64 = 100;

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
        .heartbeat(Duration::from_secs(1))
        .missed_heartbeats(8)
        .batch(32)
        .poll_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    let report = worker.run_until_signal().unwrap();
    println!(
        "REPORT {name} succeeded={} failed={} refused={}",
        report.succeeded, report.failed, report.refused
    );
}

fn spawn_worker(url: &str, queue: &str, name: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
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
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// SIGTERM (a graceful stop), then wait for the exit with a generous deadline.
fn stop_gracefully(mut child: Child) -> String {
    let pid = child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "worker {pid} exited with {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "worker {pid} did not stop within 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    out
}

/// Runs the whole scenario against `url`.
fn books_balance_with_a_killed_worker(url: &str) {
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
    let mut workers: Vec<Child> = (0..3)
        .map(|i| spawn_worker(url, &queue, &format!("w{i}-{}", std::process::id())))
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

    // SIGKILL one worker once the backend counts 3000 jobs done, with 7000 to go: it is busy,
    // so it holds claimed jobs when it dies. (Not after joining the 3000th handle: jobs run in
    // priority order, so by the time the joins in submission order got there, nearly every job
    // had run and the victim might hold nothing.)
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
    let mut victim = workers.remove(0);
    victim.kill().unwrap(); // SIGKILL: no goodbye, its claimed jobs stay claimed
    victim.wait().unwrap();
    at("killed one worker");
    let mut completed = HashSet::new();
    for h in handles {
        let id = join(h).expect("a Nap job completes");
        assert!(completed.insert(id), "job {id} delivered twice");
    }
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
    assert_eq!(stats.submitted, JOBS + PANICKY + TO_CANCEL);
    assert_eq!(stats.completed, JOBS + late);
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
    // Every job completed although a busy worker died: whatever it had claimed ran elsewhere
    // (the books above). How many jobs the backend ran more than once is printed, not asserted:
    // in one CI run it was 0 with the kill at 7.5 s of 55 s, so "attempts > 1" does not reliably
    // mark an orphan's re-run (or the victim held no claim at that instant). Until that is
    // understood, the test does not claim to see the re-run itself.
    let rerun = remote.backend_done_after_retry().unwrap();

    at("books checked");
    let mut reports = String::new();
    for w in workers {
        reports.push_str(&stop_gracefully(w));
    }
    at("workers stopped");
    assert_eq!(reports.matches("REPORT").count(), 2, "{reports}");
    println!("{stats:?}\n{counts:?}\nre-run after the kill: {rerun}\n{reports}");
}

#[test]
fn three_worker_processes_on_sqlite_one_killed() {
    let (_dir, url) = sqlite_url("multiprocess");
    books_balance_with_a_killed_worker(&url);
}

/// The same against PostgreSQL (the multi-machine backend) when `POOL_REMOTE_PG_URL` is set;
/// `pool-remote/ci/with-postgres.sh` starts a throwaway server and sets it.
#[cfg(feature = "postgres")]
#[test]
fn three_worker_processes_on_postgres_one_killed() {
    match std::env::var("POOL_REMOTE_PG_URL") {
        Ok(url) => books_balance_with_a_killed_worker(&url),
        Err(_) => println!("skipped: set POOL_REMOTE_PG_URL to run against PostgreSQL"),
    }
}
