//! One process: the executor and a worker on a thread, over a throwaway SQLite file.

mod common;

use std::time::Duration;

use common::{join, registry, sqlite_url, Explode, LocalWorker, Nap, Sequence, Square};
use pool_core::Priority;
use pool_remote::{RemoteError, RemoteExecutor, RemoteWorkerBuilder, Worker};

fn worker(url: &str) -> Worker {
    common::quick_worker(url, registry())
}

#[test]
fn round_trip_returns_values_and_the_books_balance() {
    let (_dir, url) = sqlite_url("round-trip");
    let remote = RemoteExecutor::builder(&url).build().unwrap();
    let handles = remote
        .submit_batch::<Square>((0..200).map(|x| (Priority::Normal, x)))
        .unwrap();
    let worker = LocalWorker::start(worker(&url));
    for (x, h) in handles.into_iter().enumerate() {
        let x = x as u64;
        assert_eq!(join(h).unwrap(), x * x);
    }
    let report = worker.stop();
    assert_eq!(report.succeeded, 200);
    let stats = remote.stats();
    assert_eq!(
        (stats.submitted, stats.completed, stats.outstanding),
        (200, 200, 0)
    );
    assert_eq!(
        remote.backend_counts().unwrap(),
        vec![("Done".to_owned(), 200)]
    );
}

#[test]
fn higher_priorities_start_first() {
    let (_dir, url) = sqlite_url("priority");
    let remote = RemoteExecutor::builder(&url).build().unwrap();
    // Everything is queued before the worker exists, lowest level first.
    let mut handles = Vec::new();
    for level in [
        Priority::Idle,
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Critical,
    ] {
        for i in 0..5 {
            let h = remote
                .submit_at::<Sequence>(level, format!("{level:?}-{i}"))
                .unwrap();
            handles.push((level, i, h));
        }
    }
    // One thread and one job per claim: the start order is the engine's serving order.
    let worker = LocalWorker::start(
        Worker::builder(&url, registry())
            .threads(1)
            .batch(1)
            .heartbeat(Duration::from_secs(1))
            .poll_interval(Duration::from_millis(2))
            .build()
            .unwrap(),
    );
    let mut started: Vec<(u64, Priority, usize)> = handles
        .into_iter()
        .map(|(level, i, h)| (join(h).unwrap(), level, i))
        .collect();
    worker.stop();
    started.sort();
    let order: Vec<(Priority, usize)> = started.iter().map(|&(_, l, i)| (l, i)).collect();
    let mut expected = Vec::new();
    for level in Priority::ALL {
        for i in 0..5 {
            expected.push((level, i));
        }
    }
    assert_eq!(order, expected, "most urgent first, FIFO within a level");
}

#[test]
fn a_panicking_task_fails_after_its_bounded_attempts() {
    let (_dir, url) = sqlite_url("panic");
    let remote = RemoteExecutor::builder(&url)
        .max_attempts(2)
        .build()
        .unwrap();
    let boom = remote.submit::<Explode>("kaboom".into()).unwrap();
    let fine = remote.submit::<Square>(3).unwrap();
    let worker = LocalWorker::start(worker(&url));
    match join(boom).unwrap_err() {
        RemoteError::Panicked {
            task,
            message,
            attempts,
        } => {
            assert_eq!(task, "explode");
            assert!(message.contains("kaboom"), "{message}");
            assert_eq!(attempts, 2);
        }
        other => panic!("expected a panic outcome, got {other:?}"),
    }
    assert_eq!(join(fine).unwrap(), 9);
    let report = worker.stop();
    assert_eq!(
        (report.failed, report.succeeded),
        (2, 1),
        "two attempts, no more"
    );
    let stats = remote.stats();
    assert_eq!((stats.completed, stats.failed), (1, 1));
}

#[test]
fn unknown_names_and_bad_arguments_are_typed_errors_without_retries() {
    let (_dir, url) = sqlite_url("bad-input");
    let remote = RemoteExecutor::builder(&url)
        .max_attempts(5)
        .build()
        .unwrap();
    let unknown = remote
        .submit_json("no-such-task", Priority::Normal, serde_json::json!(1))
        .unwrap();
    let bad_args = remote
        .submit_json(
            "square",
            Priority::Normal,
            serde_json::json!("not a number"),
        )
        .unwrap();
    let worker = LocalWorker::start(worker(&url));
    assert_eq!(
        join(unknown).unwrap_err(),
        RemoteError::UnknownTask {
            name: "no-such-task".into()
        }
    );
    match join(bad_args).unwrap_err() {
        RemoteError::BadArgs { task, .. } => assert_eq!(task, "square"),
        other => panic!("expected BadArgs, got {other:?}"),
    }
    let report = worker.stop();
    assert_eq!(report.refused, 2, "refused once each: not retried");
    // Nothing lost: both are in the backend with their final status.
    assert_eq!(
        remote.backend_counts().unwrap(),
        vec![("Killed".to_owned(), 2)]
    );
}

#[test]
fn an_unreachable_backend_is_a_typed_error() {
    let err = RemoteExecutor::builder("sqlite:///nonexistent-dir-for-pool-remote/x/jobs.db")
        .build()
        .unwrap_err();
    match err {
        RemoteError::Unreachable { url, .. } => assert!(url.contains("nonexistent")),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    let err = Worker::builder(
        "sqlite:///nonexistent-dir-for-pool-remote/x/jobs.db",
        registry(),
    )
    .build()
    .unwrap_err();
    assert!(matches!(err, RemoteError::Unreachable { .. }), "{err:?}");
}

#[test]
fn cancel_before_start_wins_exactly_once() {
    let (_dir, url) = sqlite_url("cancel");
    let remote = RemoteExecutor::builder(&url).build().unwrap();
    let kept = remote.submit::<Nap>((1, 0)).unwrap();
    let dropped = remote.submit::<Nap>((2, 0)).unwrap();
    assert!(dropped.cancel().unwrap(), "no worker yet: the cancel wins");
    assert!(
        !dropped.cancel().unwrap(),
        "a second cancel changes nothing"
    );
    let worker = LocalWorker::start(worker(&url));
    assert_eq!(join(kept).unwrap(), 1);
    assert!(join(dropped).unwrap_err().is_cancelled());
    let report = worker.stop();
    assert_eq!(report.succeeded, 1, "the cancelled task never ran");
    let stats = remote.stats();
    assert_eq!(
        (stats.submitted, stats.completed, stats.cancelled),
        (2, 1, 1)
    );
}

#[test]
fn handles_can_be_awaited() {
    let (_dir, url) = sqlite_url("await");
    let remote = RemoteExecutor::builder(&url).build().unwrap();
    let h = remote.submit::<Square>(12).unwrap();
    let worker = LocalWorker::start(worker(&url));
    assert_eq!(pollster::block_on(h).unwrap(), 144);
    worker.stop();
}

/// Invariant: every setting out of its range is a typed error naming it, the extremes a
/// user may reach for (`MAX`) included. Before, an executor took `poll_interval(Duration::MAX)`
/// and its handles never resolved, a worker took `batch(usize::MAX)` and stopped on an
/// overflow in the engine, `heartbeat(Duration::MAX)` read as negative seconds there, and
/// `max_attempts(usize::MAX)` as "retry for ever".
#[test]
fn bad_settings_are_refused() {
    let executor = |attempts, poll| {
        RemoteExecutor::builder("sqlite::memory:")
            .max_attempts(attempts)
            .poll_interval(poll)
            .build()
            .map(drop)
    };
    let ms = Duration::from_millis;
    for (attempts, poll, setting) in [
        (0, ms(10), "max_attempts"),
        (pool_remote::MAX_ATTEMPTS + 1, ms(10), "max_attempts"),
        (usize::MAX, ms(10), "max_attempts"),
        (3, Duration::ZERO, "poll_interval"),
        (3, Duration::from_secs(61), "poll_interval"),
        (3, Duration::MAX, "poll_interval"),
    ] {
        match executor(attempts, poll) {
            Err(RemoteError::Build { setting: got, .. }) => assert_eq!(got, setting),
            other => panic!("{attempts} attempts, {poll:?}: {other:?}"),
        }
    }
    assert!(executor(pool_remote::MAX_ATTEMPTS, Duration::from_secs(60)).is_ok());

    type Set = fn(RemoteWorkerBuilder) -> RemoteWorkerBuilder;
    let worker = |set: Set| set(Worker::builder("sqlite::memory:", registry())).build();
    let refused: [(Set, &str); 9] = [
        (|b| b.heartbeat(Duration::from_millis(10)), "heartbeat"),
        (|b| b.heartbeat(Duration::from_secs(86_401)), "heartbeat"),
        (|b| b.heartbeat(Duration::MAX), "heartbeat"),
        (|b| b.missed_heartbeats(0), "missed_heartbeats"),
        (|b| b.missed_heartbeats(usize::MAX), "missed_heartbeats"),
        (|b| b.batch(0), "batch"),
        (|b| b.batch(usize::MAX), "batch"),
        (|b| b.poll_interval(Duration::MAX), "poll_interval"),
        (|b| b.threads(0), "threads"),
    ];
    for (set, setting) in refused {
        match worker(set) {
            Err(RemoteError::Build { setting: got, .. }) => assert_eq!(got, setting),
            other => panic!("{setting}: {other:?}"),
        }
    }
    let edges = worker(|b| {
        b.heartbeat(Duration::from_secs(86_400))
            .missed_heartbeats(1000)
            .batch(1000)
    });
    assert!(edges.is_ok(), "{edges:?}");
}

/// Invariant: the blocking API works on a thread that drives an async runtime (inside
/// `#[tokio::main]`): building an executor or a worker, a build refused by an unreachable
/// backend, dropping a worker never run, and `run_until`, each of which blocks that thread like
/// any blocking call. Before, each panicked there: "Cannot start a runtime from within a
/// runtime" (a nested `block_on`), or "Cannot drop a runtime in a context where blocking is not
/// allowed".
#[test]
fn the_blocking_api_works_on_a_thread_that_drives_an_async_runtime() {
    let (_dir, url) = sqlite_url("inside-async");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (joined_tx, joined) = std::sync::mpsc::channel();
    let report = runtime.block_on(async move {
        let unreachable = RemoteExecutor::builder("sqlite:///no/such/dir/jobs.db").build();
        assert!(
            matches!(unreachable, Err(RemoteError::Unreachable { .. })),
            "{unreachable:?}"
        );
        drop(worker(&url));
        let remote = RemoteExecutor::builder(&url).build().unwrap();
        let handle = remote.submit::<Square>(5).unwrap();
        // The stop: once the outcome is in (joined on a blocking thread of the worker's own
        // runtime; the value goes out, since the stop future's panics are swallowed).
        worker(&url).run_until(async move {
            let outcome = tokio::task::spawn_blocking(move || join(handle)).await;
            let _ = joined_tx.send(outcome.ok().and_then(Result::ok));
        })
    });
    assert_eq!(joined.recv().unwrap(), Some(25));
    assert_eq!(report.unwrap().succeeded, 1);
}

/// A timeout past the clock's range waits for the outcome (it panicked on the overflow).
#[test]
fn a_join_timeout_of_duration_max_waits_for_the_outcome() {
    let (_dir, url) = sqlite_url("join-max");
    let remote = RemoteExecutor::builder(&url).build().unwrap();
    let handle = remote.submit::<Square>(6).unwrap();
    let worker = LocalWorker::start(worker(&url));
    let joined = test_kit::within_patience(move || handle.join_timeout(Duration::MAX).ok());
    assert_eq!(joined.expect("an outcome within the patience"), Some(36));
    worker.stop();
}

/// A task that holds a value whose `Drop` panics.
struct Fused<const N: u8>(#[allow(dead_code)] test_kit::Fuse);

impl<const N: u8> pool_remote::RemoteTask for Fused<N> {
    const NAME: &'static str = if N == 0 { "fused-0" } else { "fused-1" };
    type Args = ();
    type Output = ();
    fn run(&self, (): ()) -> Result<(), pool_remote::BoxError> {
        Ok(())
    }
}

/// Invariant: a registered task is user code, its `Drop` too: dropped once, quietly, wherever
/// its last copy goes. A task replaced under its name, a worker build refused on a bad setting
/// (its typed error comes back; two panicking `Drop`s in the registry's map aborted the process)
/// and a registry dropped unused each let no panic out.
#[test]
fn registered_tasks_whose_drop_panics_are_dropped_quietly() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use test_kit::{no_unwind, Fuse};

    test_kit::quiet_panics(|_| false);
    let dropped = Arc::new(AtomicUsize::new(0));
    let fused = || {
        pool_remote::Registry::new()
            .register(Fused::<0>(Fuse::new(&dropped)))
            .register(Fused::<1>(Fuse::new(&dropped)))
    };
    let replaced = no_unwind(|| fused().register(Fused::<0>(Fuse::new(&dropped))));
    let registry = replaced.expect("no unwind");
    assert_eq!(dropped.load(Ordering::SeqCst), 1, "the replaced task");
    assert!(no_unwind(move || drop(registry)).is_some());
    assert_eq!(dropped.load(Ordering::SeqCst), 3);

    let refused = no_unwind(|| {
        Worker::builder("sqlite::memory:", fused())
            .heartbeat(Duration::from_millis(10))
            .build()
    });
    let error = refused.expect("no unwind").unwrap_err();
    assert!(
        matches!(
            error,
            RemoteError::Build {
                setting: "heartbeat",
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(dropped.load(Ordering::SeqCst), 5);
}
