//! policy-priority: an editor's queue, where input beats previews beats auto-save beats indexing,
//! and indexing still gets its turn under a steady stream of previews.

use policy_priority::{priority_pool, Aging, PriorityQueue, PrioritySubmit};
use pool_core::{Priority, ThreadPool};
use std::sync::mpsc;
use std::time::Duration;

use crate::section;

pub fn run() {
    section("policy-priority: an editor's backlog on one worker");
    let (pool, queue) = priority_pool(1).expect("one thread is a valid pool");
    let (release, gate) = mpsc::channel::<()>();
    pool.submit(move || gate.recv().unwrap()).unwrap(); // the worker is busy typing...
    let (log, order) = mpsc::channel();
    let mut handles = Vec::new();
    let work = [
        (Priority::Idle, "index file 1"),
        (Priority::Idle, "index file 2"),
        (Priority::Low, "auto-save"),
        (Priority::High, "render preview"),
        (Priority::Normal, "spell-check"),
        (Priority::Critical, "handle keystroke"),
    ];
    for (level, name) in work {
        let log = log.clone();
        handles.push(
            pool.submit_at(level, move || log.send(name).unwrap())
                .unwrap(),
        );
    }
    // The user hits save: raise the queued auto-save above the preview (never lowers).
    let raised = pool.raise_priority(&handles[2], Priority::Critical);
    println!("  queued 6 tasks; auto-save raised to Critical: {raised}");
    release.send(()).unwrap();
    for h in handles {
        h.join().unwrap();
    }
    let ran: Vec<&str> = order.try_iter().collect();
    println!("  ran in order: {}", ran.join(" -> "));
    pool.shutdown();
    print!("{}", indent(&queue.stats().to_string()));

    section("policy-priority: the starvation guard under a steady stream of previews");
    let queue = PriorityQueue::with_aging(Aging::after(Duration::from_millis(20)).unwrap());
    let pool = ThreadPool::builder()
        .threads(1)
        .queue_policy(queue.clone())
        .build()
        .unwrap();
    let (tick, ticks) = mpsc::channel::<u32>();
    let indexer = pool.submit_at(Priority::Idle, || "indexed").unwrap();
    // 400 High previews of ~0.5 ms each keep the single worker busy for ~200 ms.
    for i in 0..400u32 {
        let tick = tick.clone();
        pool.submit_at(Priority::High, move || {
            busy_for(Duration::from_micros(500));
            let _ = tick.send(i);
        })
        .unwrap();
    }
    let result = indexer.join().unwrap();
    let previews_before = ticks.try_iter().count();
    println!(
        "  the Idle task ran ({result}) after {previews_before} of 400 previews: served by aging, \
         not after the whole stream"
    );
    pool.shutdown();
    println!("  tasks served early by aging: {}", queue.stats().aged);
}

fn busy_for(d: Duration) {
    let start = std::time::Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}
