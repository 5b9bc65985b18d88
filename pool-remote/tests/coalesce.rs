//! Coalescing on the submitting side: a `policy_coalesce::Coalescer` in front of the remote
//! enqueue merges submissions by key before anything is sent; the latest wins.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{registry, sqlite_url, LocalWorker, Square};
use policy_coalesce::Coalescer;
use pool_core::sync::Arc;
use pool_core::ThreadPool;
use pool_remote::{RemoteError, RemoteExecutor, Worker};

#[test]
fn ten_pending_submissions_send_one_job_with_the_latest_arguments() {
    let (_dir, url) = sqlite_url("coalesce");
    let remote = Arc::new(RemoteExecutor::builder(&url).build().unwrap());
    // One local thread sends (and waits for) the remote job, so the coalescer sees it pending.
    let coalescer: Coalescer<&str, Result<u64, RemoteError>, ThreadPool> =
        Coalescer::builder(ThreadPool::builder().threads(1).build().unwrap())
            .build()
            .unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let blocker = coalescer
        .submit("gate", move || {
            let _ = gate.recv_timeout(Duration::from_secs(60));
            Ok(0)
        })
        .unwrap();
    let handles: Vec<_> = (0..10u64)
        .map(|x| {
            let remote = Arc::clone(&remote);
            coalescer
                .submit("render", move || remote.submit::<Square>(x)?.join())
                .unwrap()
        })
        .collect();
    release.send(()).unwrap();
    let worker = LocalWorker::start(
        Worker::builder(&url, registry())
            .threads(1)
            .heartbeat(Duration::from_secs(1))
            .build()
            .unwrap(),
    );
    blocker.join().unwrap();
    for h in handles {
        let value = h.join().unwrap();
        assert_eq!(
            *value,
            Ok(81),
            "every submitter gets the tenth closure's outcome"
        );
    }
    let report = worker.stop();
    assert_eq!(report.succeeded, 1, "one remote job ran");
    assert_eq!(remote.stats().submitted, 1, "one remote job was sent");
}
