//! Threads the operating system refuses. The test lowers the process's address-space limit
//! (`RLIMIT_AS`) until a new worker's stack cannot be mapped, so `pthread_create` fails with
//! `EAGAIN` as it does on a host out of threads or memory. The limit is process-wide: the test
//! runs alone in a child process.
//!
//! Its first half is pool-core's (`ThreadPool::set_threads`), yet it lives here: pool-core's
//! tests also run under AddressSanitizer and valgrind (`.ci/asan`, `.ci/memcheck`), whose own
//! allocators and shadow memory would meet the lowered limit too, and this crate has `libc`.

#![cfg(target_os = "linux")]

use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use policy_adaptive::{AdaptiveBuildError, AdaptivePool};
use pool_core::{ResizeError, ThreadPool};
use test_kit::PATIENCE;

const CHILD: &str = "POLICY_ADAPTIVE_REFUSED_THREADS_CHILD";

/// Each worker's stack: large, so that the limit below leaves room for the process's small
/// allocations but not for one more stack.
const STACK: usize = 64 << 20;

/// Room left under the limit for everything but workers' stacks: the process's small
/// allocations, and a thread with the default stack (the controller's).
const SLACK: u64 = 16 << 20;

/// Room for the process's small allocations, not for a thread with the default stack.
const TIGHT: u64 = 1 << 20;

/// The process's mapped address space now, in bytes.
fn mapped() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmSize:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .expect("VmSize");
    kib << 10
}

/// Sets the soft address-space limit (the hard one stays, so [`lift`] can restore it).
fn set_soft_limit(bytes: libc::rlim_t) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable `rlimit` for both calls.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_AS, &mut limit), 0);
        limit.rlim_cur = bytes.min(limit.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &limit), 0);
    }
}

/// From now on, at most `stacks` more worker stacks fit, and `slack` bytes besides.
fn limit_to(stacks: u64, slack: u64) {
    set_soft_limit(mapped() + stacks * STACK as u64 + slack);
}

fn lift() {
    set_soft_limit(libc::RLIM_INFINITY);
}

/// Invariant: a resize the OS refuses leaves the pool at the workers it started, and its size
/// says so, so that a later resize, or the adaptive controller's next decision, asks again.
/// Before, `threads()` kept the refused size: the pool reported workers it never had, and the
/// controller, reading that as its current size, never asked for them again.
#[test]
fn a_refused_thread_leaves_a_true_size_that_a_resize_and_the_controller_retry() {
    if std::env::var_os(CHILD).is_none() {
        let child = test_kit::run_alone(
            "a_refused_thread_leaves_a_true_size_that_a_resize_and_the_controller_retry",
            CHILD,
        );
        assert!(
            child.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&child.stdout),
            String::from_utf8_lossy(&child.stderr)
        );
        return;
    }

    // pool-core: the size after a refused resize is the one that runs.
    let pool = ThreadPool::builder()
        .threads(1)
        .stack_size(STACK)
        .build()
        .unwrap();
    limit_to(2, SLACK);
    let refused = pool.set_threads(64);
    lift();
    assert!(
        matches!(refused, Err(ResizeError::Spawn { requested: 64, .. })),
        "{refused:?}"
    );
    let kept = pool.threads();
    assert!((1..64).contains(&kept), "{kept}");
    assert_eq!(pool.stats().live_threads, kept);
    assert_eq!(
        pool.submit(|| 7).unwrap().join_timeout(PATIENCE).ok(),
        Some(7)
    );
    pool.set_threads(kept + 2).unwrap();
    assert_eq!(pool.threads(), kept + 2);
    pool.shutdown();
    assert_eq!(pool.stats().live_threads, 0);

    // policy-adaptive: growth refused while the limit holds, made once it is lifted. `max` is
    // 2, so the refused size is the most the controller asks for: it must ask for it again.
    let adaptive = AdaptivePool::builder()
        .min(1)
        .max(2)
        .stack_size(STACK)
        .interval(Duration::from_millis(20))
        .build()
        .unwrap();
    limit_to(0, SLACK);
    let (release, gate) = mpsc::channel::<()>();
    let gate = Arc::new(Mutex::new(gate));
    for _ in 0..16 {
        let gate = Arc::clone(&gate);
        adaptive
            .spawn(move || {
                let _ = gate.lock().map(|rx| rx.recv_timeout(PATIENCE));
            })
            .unwrap();
    }
    // Ticks with every worker blocked and work queued: each wants to grow and is refused
    // (`EAGAIN`); once the limit is lifted, the next one grows.
    let ticks = adaptive.ticks();
    let deadline = Instant::now() + PATIENCE;
    while adaptive.ticks() < ticks + 10 && Instant::now() < deadline {
        std::thread::sleep(adaptive.config().interval);
    }
    lift();
    assert!(
        adaptive.ticks() >= ticks + 10,
        "the controller stopped ticking"
    );
    // No look at the size meanwhile: during each refused attempt it reads the size asked for,
    // until the refusal sets it back. Left at the size asked for, refused growth would read as
    // made, and the controller would never ask again.
    let grew = test_kit::eventually(|| adaptive.stats().live_threads > 1);
    drop(release);
    assert!(
        grew,
        "the controller never asked again: {:?}",
        adaptive.history()
    );
    adaptive.shutdown();
    assert_eq!(adaptive.stats().completed, 16);

    // policy-adaptive: a controller thread the OS refuses is the build's typed error.
    limit_to(1, TIGHT);
    let built = AdaptivePool::builder()
        .min(1)
        .max(2)
        .stack_size(STACK)
        .build();
    lift();
    assert!(
        matches!(built, Err(AdaptiveBuildError::Controller(_))),
        "{built:?}"
    );
}
