//! The builder: bad settings give typed errors, hooks run and cannot take a worker down.

use pool_core::ThreadPool;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use test_kit::PATIENCE;

#[test]
fn zero_threads_is_a_typed_error_naming_the_setting() {
    let err = ThreadPool::builder().threads(0).build().unwrap_err();
    assert!(err.is_zero_threads());
    assert!(err.to_string().contains("`threads`"), "{err}");
    assert!(ThreadPool::new(0).unwrap_err().is_zero_threads());
}

/// A count the process could not map is refused before any thread starts: `ThreadPool::new(100_000)`
/// aborted the whole process before the bound (std's thread start failed to map a signal stack).
#[test]
fn more_threads_than_a_pool_holds_is_a_typed_error_naming_the_bound() {
    for threads in [ThreadPool::MAX_THREADS + 1, 100_000, usize::MAX] {
        let err = ThreadPool::new(threads).unwrap_err();
        assert!(err.is_too_many_threads(), "{err}");
        assert!(!err.is_spawn_failure() && !err.is_zero_threads());
        let message = err.to_string();
        assert!(message.contains("`threads`"), "{message}");
        assert!(message.contains(&threads.to_string()), "{message}");
        assert!(
            message.contains(&ThreadPool::MAX_THREADS.to_string()),
            "{message}"
        );
    }
}

#[test]
fn zero_stack_size_is_a_typed_error() {
    let err = ThreadPool::builder().stack_size(0).build().unwrap_err();
    assert!(err.is_zero_stack_size());
    assert!(err.to_string().contains("`stack_size`"), "{err}");
}

#[test]
fn nul_in_thread_name_is_a_typed_error() {
    let err = ThreadPool::builder()
        .thread_name("a\0b")
        .build()
        .unwrap_err();
    assert!(err.is_invalid_name());
}

#[test]
fn default_thread_count_is_available_parallelism() {
    let pool = ThreadPool::builder().build().unwrap();
    let expected = std::thread::available_parallelism().unwrap().get();
    assert_eq!(pool.threads(), expected);
    assert_eq!(pool.stats().live_threads, expected);
}

#[test]
fn workers_carry_the_name_prefix_and_index() {
    let pool = ThreadPool::builder()
        .threads(2)
        .thread_name("indexer")
        .build()
        .unwrap();
    let name = pool
        .submit(|| std::thread::current().name().unwrap().to_string())
        .unwrap();
    let name = name.join().unwrap();
    assert!(name == "indexer-0" || name == "indexer-1", "{name}");
}

#[test]
fn start_and_stop_hooks_run_once_per_worker() {
    let started = Arc::new(AtomicUsize::new(0));
    let stopped = Arc::new(AtomicUsize::new(0));
    let (s, t) = (started.clone(), stopped.clone());
    let pool = ThreadPool::builder()
        .threads(3)
        .on_thread_start(move |_| {
            s.fetch_add(1, Ordering::SeqCst);
        })
        .on_thread_stop(move |_| {
            t.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    pool.shutdown();
    assert_eq!(started.load(Ordering::SeqCst), 3);
    assert_eq!(stopped.load(Ordering::SeqCst), 3);
}

#[test]
fn panicking_hooks_and_panic_handler_do_not_kill_workers() {
    let (panics_tx, panics_rx) = mpsc::channel();
    let pool = ThreadPool::builder()
        .threads(1)
        .on_thread_start(|_| panic!("start hook"))
        .on_thread_stop(|_| panic!("stop hook"))
        .panic_handler(move |message| {
            panics_tx.send(message.to_string()).unwrap();
            panic!("the handler itself panics");
        })
        .build()
        .unwrap();
    pool.spawn(|| panic!("job failed")).unwrap();
    assert_eq!(panics_rx.recv_timeout(PATIENCE).unwrap(), "job failed");
    // The single worker survived all three panics.
    assert_eq!(pool.submit(|| 5).unwrap().join().unwrap(), 5);
    pool.shutdown();
    let stats = pool.stats();
    assert_eq!((stats.panicked, stats.completed), (1, 1));
}

#[test]
fn stack_size_is_applied() {
    // A 16 MiB stack lets a task use 8 MiB of stack; the default 2 MiB would overflow.
    let pool = ThreadPool::builder()
        .threads(1)
        .stack_size(16 << 20)
        .build()
        .unwrap();
    let handle = pool
        .submit(|| {
            let big = [1u8; 8 << 20];
            std::hint::black_box(&big)
                .iter()
                .map(|&b| b as usize)
                .sum::<usize>()
        })
        .unwrap();
    assert_eq!(handle.join().unwrap(), 8 << 20);
}
