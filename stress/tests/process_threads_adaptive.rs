//! Adaptive pools against the process's thread limit (`ThreadPool::process_thread_limit`): each
//! pool's controller thread holds a share beside its workers, a pool with no share left for its
//! controller or a worker is refused whole with a typed error, and a shutdown gives every share
//! back.
//!
//! Its own test binary, with one test: the count and the limit are process-wide, so no other
//! test may start threads beside it (`process_threads.rs` is the plain pools' binary).

use std::num::NonZeroUsize;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use policy_adaptive::AdaptivePool;
use pool_core::ThreadPool;
use test_kit::{eventually, PATIENCE};

/// The limit this test sets: room for two pools of two workers and a controller each, a pool
/// of one worker and a controller, and one share left over.
const LIMIT: usize = 9;

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

    // The last handle dropped on the controller thread itself (its `on_scale` hook took it): the
    // controller cannot join itself, so its handle is let go and its share goes back with it;
    // the thread then ends on its own, and so does the count.
    let slot: Arc<Mutex<Option<Arc<AdaptivePool>>>> = Arc::default();
    let (hooked_tx, hooked) = mpsc::channel::<()>();
    let (handed_over, handover) = mpsc::channel::<()>();
    let hook_slot = Arc::clone(&slot);
    let (hooked_tx, handover) = (Mutex::new(hooked_tx), Mutex::new(handover));
    let pool = Arc::new(
        AdaptivePool::builder()
            .min(1)
            .max(2)
            .interval(Duration::from_millis(10))
            .on_scale(move |_| {
                // Once the test has let go of its own handle, the slot's is the last.
                let _ = handover.lock().unwrap().recv_timeout(PATIENCE);
                let last = hook_slot.lock().unwrap().take();
                let _ = hooked_tx.lock().unwrap().send(());
                drop(last); // the last handle: shuts the pool down, on this thread
            })
            .build()
            .expect("within the limit"),
    );
    *slot.lock().unwrap() = Some(Arc::clone(&pool));
    assert_eq!(ThreadPool::process_threads(), 2);
    // Blocked tasks: the pool grows, and the hook runs.
    let (release, gate) = mpsc::channel::<()>();
    let gate = Arc::new(Mutex::new(gate));
    for _ in 0..4 {
        let gate = Arc::clone(&gate);
        pool.spawn(move || {
            let _ = gate.lock().map(|rx| rx.recv_timeout(PATIENCE));
        })
        .unwrap();
    }
    drop(pool);
    handed_over.send(()).unwrap();
    hooked.recv_timeout(PATIENCE).expect("the pool never grew");
    // The shutdown the hook's drop started waits for the tasks: release them.
    drop(release);
    assert!(
        eventually(|| ThreadPool::process_threads() == 0),
        "{} shares still held",
        ThreadPool::process_threads()
    );
}
