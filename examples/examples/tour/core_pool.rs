//! pool-core: a thumbnail batch, stale work cancelled, a crash isolated, a resize, the books.

use pool_core::{TaskError, ThreadPool};
use std::sync::mpsc;
use std::time::Duration;

use crate::section;

pub fn run() {
    let pool = ThreadPool::builder()
        .threads(4)
        .thread_name("tour")
        .build()
        .expect("4 threads is a valid pool");

    section("pool-core: thumbnail batch with progress");
    let mut last_reported = 0;
    let sizes = pool.map_batch((0..240u64).map(|i| 64 + i % 7), thumbnail_checksum, |p| {
        if p.done * 4 / p.total > last_reported * 4 / p.total || p.done == p.total {
            println!("  progress {:>3}/{}", p.done, p.total);
        }
        last_reported = p.done;
    });
    let ok = sizes.iter().filter(|r| r.is_ok()).count();
    println!("  {ok} thumbnails rendered, results in input order");

    section("pool-core: the user navigated away, stale previews are cancelled");
    let (release, gate) = mpsc::channel::<()>();
    let gate = std::sync::Arc::new(std::sync::Mutex::new(gate));
    let busy: Vec<_> = (0..4)
        .map(|_| {
            let gate = gate.clone();
            pool.submit(move || {
                let _ = gate.lock().unwrap().recv();
            })
            .unwrap()
        })
        .collect();
    let previews: Vec<_> = (0..10)
        .map(|page| {
            pool.submit(move || format!("preview of page {page}"))
                .unwrap()
        })
        .collect();
    let cancelled = previews[..7].iter().filter(|h| h.cancel()).count();
    println!("  10 previews queued, {cancelled} cancelled before they started");
    for _ in 0..4 {
        release.send(()).unwrap();
    }
    for handle in busy {
        handle.join().unwrap();
    }
    let mut previews = previews;
    let awaited = previews.pop().unwrap();
    println!("  awaited: {}", pollster::block_on(awaited).unwrap());
    for handle in previews {
        match handle.join() {
            Ok(text) => println!("  joined: {text}"),
            Err(TaskError::Cancelled(why)) => {
                let _ = why;
            }
            Err(other) => println!("  failed: {other}"),
        }
    }

    section("pool-core: a plugin crashes, the worker survives");
    let crash = pool
        .submit(|| -> u32 { panic!("plugin divided by zero") })
        .unwrap();
    match crash.join() {
        Err(TaskError::Panicked(message)) => println!("  the handle reports: {message:?}"),
        other => println!("  unexpected: {other:?}"),
    }
    println!(
        "  next task on the same pool: {}",
        pool.submit(|| 6 * 7).unwrap().join().unwrap()
    );

    section("pool-core: resize at run time");
    pool.set_threads(8).unwrap();
    println!("  grown to {} threads", pool.stats().live_threads);
    pool.set_threads(2).unwrap();
    pool.wait_idle(Duration::from_secs(30));
    println!(
        "  asked for 2; live now {} (surplus retires between tasks)",
        pool.stats().live_threads
    );

    pool.shutdown();
    let stats = pool.stats();
    println!("  after shutdown: {stats}");
    println!("  books balance: {}", stats.is_balanced());
}

/// A stand-in for decoding and scaling an image: some arithmetic over `side * side` pixels.
fn thumbnail_checksum(side: u64) -> u64 {
    (0..side * side).fold(0u64, |acc, px| acc.wrapping_mul(31).wrapping_add(px ^ side))
}
