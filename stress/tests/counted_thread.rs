//! `ProcessThreadShare::spawn` and `CountedThread`: a thread started holding a share of the
//! process's thread budget holds it while it runs, and gives it back when it is joined (with its
//! result or its panic) or when its handle is dropped, while the thread runs on.
//!
//! Its own test binary, with one test: the count is process-wide, so no other test may start
//! threads beside it.

use std::num::NonZeroUsize;
use std::sync::mpsc;

use pool_core::{ProcessThreadShare, ThreadPool};
use test_kit::PATIENCE;

fn named(name: &str) -> std::thread::Builder {
    std::thread::Builder::new().name(name.into())
}

#[test]
fn a_counted_thread_holds_its_share_until_joined_or_let_go() {
    assert_eq!(ThreadPool::process_threads(), 0, "no thread counted yet");
    ThreadPool::set_process_thread_limit(NonZeroUsize::new(2).unwrap());

    // Held while it runs; back once joined, with its result.
    let (go, wait) = mpsc::channel::<u32>();
    let helper = ProcessThreadShare::reserve()
        .unwrap()
        .spawn(named("helper"), move || {
            wait.recv_timeout(PATIENCE).map(|n| n * 2)
        })
        .unwrap();
    assert_eq!(helper.thread().name(), Some("helper"));
    assert_eq!(ThreadPool::process_threads(), 1);
    go.send(21).unwrap();
    assert_eq!(helper.join().unwrap(), Ok(42));
    assert_eq!(ThreadPool::process_threads(), 0);

    // A thread that panics: its join gives the payload, and the share back.
    let panicking = ProcessThreadShare::reserve()
        .unwrap()
        .spawn(named("panicking"), || panic!("a helper's bug"))
        .unwrap();
    let payload = panicking.join().unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"a helper's bug"));
    assert_eq!(ThreadPool::process_threads(), 0);

    // The limit counts counted threads like workers: two held, a third share refused.
    let (release, parked) = mpsc::channel::<()>();
    let parked = std::sync::Arc::new(std::sync::Mutex::new(parked));
    let spawn_parked = |name: &str| {
        let parked = parked.clone();
        ProcessThreadShare::reserve()
            .unwrap()
            .spawn(named(name), move || {
                let _ = parked.lock().unwrap().recv_timeout(PATIENCE);
            })
    };
    let first = spawn_parked("first").unwrap();
    let second = spawn_parked("second").unwrap();
    let refused = ProcessThreadShare::reserve().unwrap_err();
    assert_eq!(refused.limit(), 2);
    assert!(ThreadPool::new(1).unwrap_err().is_process_limit());

    // A handle let go gives its share back at once, while its thread still runs.
    assert!(!first.is_finished());
    drop(first);
    assert_eq!(ThreadPool::process_threads(), 1);
    let pool = ThreadPool::new(1).expect("the let-go share is free again");
    assert_eq!(ThreadPool::process_threads(), 2);
    release.send(()).unwrap();
    release.send(()).unwrap();
    second.join().unwrap();
    pool.shutdown();
    assert_eq!(ThreadPool::process_threads(), 0);
}
