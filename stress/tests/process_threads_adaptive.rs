//! Adaptive pools against the process's thread limit (`ThreadPool::process_thread_limit`): each
//! pool's controller thread holds a share beside its workers, a pool with no share left for its
//! controller or a worker is refused whole with a typed error, and a shutdown gives every share
//! back.
//!
//! Its own test binary, with one test: the count and the limit are process-wide, so no other
//! test may start threads beside it (`process_threads.rs` is the plain pools' binary).

use std::num::NonZeroUsize;
use std::time::Duration;

use policy_adaptive::AdaptivePool;
use pool_core::ThreadPool;

/// The limit this test sets: room for two pools of two workers and a controller each, a pool
/// of one worker and a controller, and one share left over.
const LIMIT: usize = 9;

/// Generous: a join waits for one trivial task.
const PATIENCE: Duration = Duration::from_secs(60);

/// An adaptive pool of `min` workers whose controller does not grow it during the test (its
/// first tick an hour away; nothing is queued for an early look to grow for).
fn adaptive(min: usize) -> Result<AdaptivePool, policy_adaptive::AdaptiveBuildError> {
    AdaptivePool::builder()
        .min(min)
        .max(min)
        .interval(Duration::from_secs(3600))
        .build()
}

fn answers(pool: &AdaptivePool) -> bool {
    let answer = pool.submit(|| 6 * 7).unwrap().join_timeout(PATIENCE);
    answer.ok() == Some(42)
}

#[test]
fn each_adaptive_pool_counts_its_controller_against_the_process_limit() {
    assert_eq!(ThreadPool::process_threads(), 0, "no pool runs yet");
    ThreadPool::set_process_thread_limit(NonZeroUsize::new(LIMIT).unwrap());

    // Two workers and a controller each.
    let first = adaptive(2).expect("within the limit");
    assert_eq!(ThreadPool::process_threads(), 3);
    let second = adaptive(2).expect("within the limit");
    assert_eq!(ThreadPool::process_threads(), 6);

    // Three workers and a controller would pass the limit by one: the controller's share is
    // taken, then two workers', and the third worker's is refused. The pool is refused whole,
    // and the shares it took go back.
    let refused = adaptive(3).expect_err("one share short");
    assert!(refused.is_process_limit(), "{refused}");
    assert!(
        refused.to_string().contains("process_thread_limit"),
        "{refused}"
    );
    assert_eq!(ThreadPool::process_threads(), 6);

    // One worker and its controller fit, leaving one share: enough for a worker, not for a
    // pool with a controller. That refusal is the controller's own.
    let third = adaptive(1).expect("within the limit");
    assert_eq!(ThreadPool::process_threads(), 8);
    let refused = adaptive(1).expect_err("no share for both a worker and a controller");
    assert!(
        matches!(refused, policy_adaptive::AdaptiveBuildError::Pool(_)),
        "the controller's share was taken, the worker's refused: {refused}"
    );
    assert_eq!(ThreadPool::process_threads(), 8);
    let plain = ThreadPool::new(1).expect("the last share, for a plain worker");
    assert_eq!(ThreadPool::process_threads(), LIMIT);
    let refused = adaptive(1).expect_err("no share at all");
    assert!(
        matches!(
            refused,
            policy_adaptive::AdaptiveBuildError::ProcessLimit(e) if e.limit() == LIMIT
        ),
        "the controller's share is taken first: {refused}"
    );
    assert!(answers(&first) && answers(&second) && answers(&third));

    // A shutdown joins the controller and the workers: their shares go back.
    first.shutdown();
    assert_eq!(ThreadPool::process_threads(), LIMIT - 3);
    let again = adaptive(2).expect("room after the first pool shut down");
    assert!(answers(&again));
    for pool in [second, third, again] {
        pool.shutdown();
    }
    plain.shutdown();
    assert_eq!(ThreadPool::process_threads(), 0);
}
