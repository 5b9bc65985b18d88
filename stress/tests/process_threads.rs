//! Pools together against the process's thread limit (`ThreadPool::process_thread_limit`): the
//! worker that would pass it is refused with a typed error, the pools keep working, a lowered
//! limit keeps the workers already held, and a shutdown gives its threads' shares back.
//!
//! Its own test binary, with one test: the count and the limit are process-wide, so no other
//! test may start threads beside it. The limit is lowered to a few dozen threads: at the default
//! limit (12 285 here) the pools' own growth, a search over every worker per start, takes minutes
//! in a debug build. The full-scale run (a pool of 8 192 and a second grown towards 8 192:
//! refused at the limit, where the build before aborted) is in
//! `pool-core/src/pool/README.md`, "The process's thread limit".

use std::num::NonZeroUsize;
use std::time::Duration;

use pool_core::{ResizeError, ThreadPool};

/// The limit this test sets.
const LIMIT: usize = 48;

/// Generous: a join waits for one trivial task.
const PATIENCE: Duration = Duration::from_secs(60);

fn pool(threads: usize) -> Result<ThreadPool, pool_core::PoolBuildError> {
    ThreadPool::builder()
        .threads(threads)
        .thread_name("limit")
        .build()
}

fn answers(pool: &ThreadPool) -> bool {
    let answer = pool.submit(|| 6 * 7).unwrap().join_timeout(PATIENCE);
    answer.ok() == Some(42)
}

fn limit(threads: usize) -> NonZeroUsize {
    NonZeroUsize::new(threads).unwrap()
}

#[test]
fn pools_past_the_process_limit_are_refused_with_a_typed_error_and_keep_working() {
    assert_eq!(ThreadPool::process_threads(), 0, "no pool runs yet");
    assert!(ThreadPool::process_thread_limit() > ThreadPool::MAX_THREADS);
    ThreadPool::set_process_thread_limit(limit(LIMIT));
    assert_eq!(ThreadPool::process_thread_limit(), LIMIT);

    // A pool larger than the limit is refused whole, and nothing it started stays counted.
    let whole = pool(LIMIT + 1).expect_err("more than the limit");
    assert!(whole.is_process_limit(), "{whole}");
    assert!(
        whole.to_string().contains("process_thread_limit"),
        "{whole}"
    );
    assert_eq!(ThreadPool::process_threads(), 0);

    let first = pool(30).expect("within the limit");
    let second = pool(1).expect("within the limit");
    assert_eq!(ThreadPool::process_threads(), 31);

    // The second pool grows in steps past what the process may hold.
    let mut refused = None;
    for size in (8..=64).step_by(8) {
        if let Err(error) = second.set_threads(size) {
            refused = Some((size, error));
            break;
        }
    }
    let (asked, error) = refused.expect("the second pool's growth was refused");
    assert!(
        matches!(error, ResizeError::ProcessLimit { requested, limit: LIMIT } if requested == asked),
        "{error}"
    );
    // The second pool kept the workers it started, up to the limit exactly, and says so.
    assert_eq!(second.threads(), LIMIT - 30);
    assert_eq!(ThreadPool::process_threads(), LIMIT);
    let third = pool(1).expect_err("no room for a third pool");
    assert!(third.is_process_limit(), "{third}");
    assert!(answers(&first) && answers(&second));

    // A lowered limit: the workers held keep running, and no pool grows.
    ThreadPool::set_process_thread_limit(limit(20));
    assert!(answers(&first) && answers(&second));
    assert!(matches!(
        first.set_threads(31),
        Err(ResizeError::ProcessLimit { limit: 20, .. })
    ));
    assert_eq!(ThreadPool::process_threads(), LIMIT);

    // The first pool's shutdown joins its workers: their shares go back, and the second pool
    // grows into them, up to the lowered limit.
    first.shutdown();
    assert_eq!(ThreadPool::process_threads(), LIMIT - 30);
    second
        .set_threads(20)
        .expect("room after the first pool shut down");
    assert!(matches!(
        second.set_threads(21),
        Err(ResizeError::ProcessLimit { limit: 20, .. })
    ));
    assert!(answers(&second));

    // A worker that retires still counts until its thread is joined; the shutdown joins them all.
    second.set_threads(2).unwrap();
    assert!(ThreadPool::process_threads() >= 2);
    second.shutdown();
    assert_eq!(ThreadPool::process_threads(), 0);
}
