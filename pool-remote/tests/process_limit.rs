//! The worker's engine thread counts against the process's thread limit, as its pool's workers
//! do. Its own test binary: the limit and the count are process-wide.

mod common;

use std::future::Future;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use common::{registry, sqlite_url};
use pool_core::ThreadPool;
use pool_remote::{RemoteError, Worker};

fn worker(url: &str) -> Worker {
    Worker::builder(url, registry())
        .threads(2)
        .heartbeat(Duration::from_secs(1))
        .build()
        .unwrap()
}

/// A stop future, ready at once, whose `Drop` panics.
struct HostileStop;

impl Future for HostileStop {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
}

impl Drop for HostileStop {
    fn drop(&mut self) {
        panic!("a stop future's hostile Drop");
    }
}

/// A worker whose engine thread finds no share left is refused with the limit (on a thread that
/// drives an async runtime, its stop future hostile), its pool shut down and its shares back; a
/// worker whose pool finds none is refused at `build`; with a share free, a worker runs, and
/// every share is back once it stops.
#[test]
fn an_engine_thread_past_the_process_limit_is_refused_with_it() {
    let (_dir, url) = sqlite_url("process-limit");
    let refused = worker(&url);
    // The worker's two pool threads hold the only shares of this process.
    let held = ThreadPool::process_threads();
    assert_eq!(held, 2);
    ThreadPool::set_process_thread_limit(NonZeroUsize::new(held).unwrap());
    // Refused on a thread that drives an async runtime, where dropping the engine's runtime
    // would panic, and with a stop future whose `Drop` panics: the error comes back all the same.
    let outer = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let error = outer
        .block_on(async move { refused.run_until(HostileStop) })
        .unwrap_err();
    assert_eq!(error, RemoteError::ProcessLimit { limit: held });
    let message = error.to_string();
    assert!(
        message.contains("thread for the worker") && message.contains("process_thread_limit"),
        "{message}"
    );
    assert_eq!(
        ThreadPool::process_threads(),
        0,
        "the pool's shares are back"
    );

    // A worker whose pool finds no share is refused at `build` with the same error.
    ThreadPool::set_process_thread_limit(NonZeroUsize::new(1).unwrap());
    let error = Worker::builder(&url, registry())
        .threads(2)
        .build()
        .map(|_| ())
        .unwrap_err();
    assert_eq!(error, RemoteError::ProcessLimit { limit: 1 });
    assert_eq!(
        ThreadPool::process_threads(),
        0,
        "the refused pool's share is back"
    );

    ThreadPool::set_process_thread_limit(NonZeroUsize::new(held + 1).unwrap());
    // Its stop future, hostile too, runs and is dropped on the engine thread, quietly.
    let report = worker(&url).run_until(HostileStop).unwrap();
    assert_eq!(report.succeeded + report.failed + report.refused, 0);
    assert_eq!(
        ThreadPool::process_threads(),
        0,
        "the engine thread's share is back"
    );
}
