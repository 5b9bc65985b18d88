//! A fixed workload for `valgrind --tool=callgrind`: instruction counts per push+pop of the
//! priority pool against the FIFO pool, which stay repeatable on a busy machine (timings don't).
//!
//! ```text
//! cargo build --release -p policy-priority --example profile_queue
//! valgrind --tool=callgrind --callgrind-out-file=cg.out \
//!     target/release/examples/profile_queue pool-priority 200000
//! callgrind_annotate cg.out | head -40
//! ```
//!
//! Workloads: `pool-priority` and `pool-fifo` (N empty fire-and-forget tasks from this thread to a
//! 2-worker pool, then wait until idle: the `compare` throughput row; under valgrind the threads
//! take turns, so the queue builds up a backlog), `queue` (N pushes, then N pops, on one thread:
//! the backlog regime; `queue-mixed` spreads them over the five levels), `drain` and
//! `drain-injector` (N times push, pop, pop-nothing, on one thread: the regime of the throughput
//! row on real cores, where the workers keep up; a `LevelQueue` at one level against the bare
//! crossbeam injector it is built from).

use std::time::{Duration, Instant};

use policy_priority::{priority_pool, Aging, LevelQueue};
use pool_core::{Priority, ThreadPool};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage =
        "usage: profile_queue pool-priority|pool-fifo|queue|queue-mixed|drain|drain-injector N";
    let (Some(what), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse().ok())) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let n: usize = n;
    let began = Instant::now();
    match what.as_str() {
        "pool-priority" => pool(priority_pool(2).expect("valid").0, n),
        "pool-fifo" => pool(ThreadPool::new(2).expect("valid"), n),
        "queue" => {
            let queue = level_queue();
            for i in 0..n {
                push(&queue, i, Priority::Normal);
            }
            let mut sum = 0usize;
            while let Some((i, _)) = pop(&queue) {
                sum = sum.wrapping_add(i);
            }
            assert_eq!(sum, n * n.saturating_sub(1) / 2);
        }
        "queue-mixed" => {
            // The backlog regime with all five levels busy: every pop is a candidate for the
            // aging check.
            let queue = level_queue();
            for i in 0..n {
                push(&queue, i, Priority::from_index(i % 5).expect("below 5"));
            }
            let mut popped = 0;
            while pop(&queue).is_some() {
                popped += 1;
            }
            assert_eq!(popped, n);
        }
        "drain" => {
            // The regime of the throughput row on real cores: the workers keep up, so every
            // push finds its level empty and every task is followed by a pop that finds none.
            let queue = level_queue();
            for i in 0..n {
                push(&queue, i, Priority::Normal);
                assert_eq!(pop(&queue), Some((i, Priority::Normal)));
                assert_eq!(pop(&queue), None);
            }
        }
        "drain-injector" => {
            let injector = crossbeam_deque::Injector::new();
            for i in 0..n {
                injector.push(i);
                assert_eq!(injector.steal().success(), Some(i));
                assert!(injector.steal().is_empty());
            }
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
    let secs = began.elapsed().as_secs_f64();
    println!("{what} {n}: {:.2} Mtasks/s", n as f64 / secs / 1e6);
}

/// The queue as the single-thread modes use it: aging on, with a bound no run reaches (so
/// every aging check runs and finds nothing overdue, and the counts do not depend on timing).
fn level_queue() -> LevelQueue<usize> {
    LevelQueue::with_aging(Aging::after(Duration::from_secs(3600)).expect("valid"))
}

// One call per operation, never inlined into the loop: the pool reaches the queue through
// `dyn QueuePolicy`, so the counts should include a call's cost as it does.
#[inline(never)]
fn push(queue: &LevelQueue<usize>, item: usize, priority: Priority) {
    queue.push(item, priority);
}

#[inline(never)]
fn pop(queue: &LevelQueue<usize>) -> Option<(usize, Priority)> {
    queue.pop()
}

fn pool(pool: ThreadPool, n: usize) {
    for _ in 0..n {
        pool.spawn(|| ()).expect("running");
    }
    assert!(pool.wait_idle(Duration::from_secs(600)), "went idle");
    pool.shutdown();
}
