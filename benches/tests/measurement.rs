//! The measuring instruments themselves: a figure built on a broken instrument is worse than none.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use benches::{heap, latch::Latch, procfs, render_json, Row};

#[test]
fn thread_cpu_time_sees_a_busy_thread_and_not_a_parked_one() {
    let (tx, rx) = mpsc::channel::<()>();
    let parked = std::thread::Builder::new()
        .name("meas-parked".into())
        .spawn(move || rx.recv_timeout(Duration::from_secs(30)))
        .unwrap();
    let busy = std::thread::Builder::new()
        .name("meas-busy".into())
        .spawn(|| {
            // Spin until the reader sees 50 ms of this thread's CPU time (more than a 100 Hz
            // clock tick even without schedstat), or the patience runs out: on a loaded machine
            // 200 ms of wall time can hold only a few ms of CPU, so wall time proves nothing.
            let patience = Instant::now() + Duration::from_secs(120);
            let mut x = 0u64;
            loop {
                for _ in 0..1_000_000 {
                    x = x.wrapping_mul(31).wrapping_add(1);
                }
                let seen = procfs::threads_cpu_ns("meas-busy");
                let enough = seen.is_none_or(|(ns, _)| ns >= 50_000_000);
                if enough || Instant::now() > patience {
                    return (std::hint::black_box(x), seen);
                }
            }
        })
        .unwrap();
    let (_, seen) = busy.join().unwrap();
    let parked_seen = procfs::threads_cpu_ns("meas-parked");
    tx.send(()).unwrap();
    parked.join().unwrap().unwrap();
    if let (Some((busy_ns, busy_n)), Some((parked_ns, parked_n))) = (seen, parked_seen) {
        assert_eq!(
            (busy_n, parked_n),
            (1, 1),
            "each name matches exactly one thread"
        );
        assert!(
            busy_ns >= 50_000_000,
            "a thread that spun until 50 ms of CPU or 120 s went by used {busy_ns} ns"
        );
        assert!(
            parked_ns < busy_ns / 10,
            "parked {parked_ns} ns vs busy {busy_ns} ns"
        );
    }
}

#[test]
fn heap_counter_counts_one_boxed_value_per_item() {
    let (bytes, boxes) = heap::measure(|| {
        let mut v = Vec::with_capacity(1000);
        for i in 0..1000u64 {
            v.push(Box::new([i; 8]));
        }
        v
    });
    let expected = 1000 * 64 + 1000 * std::mem::size_of::<Box<[u64; 8]>>();
    // Other test threads of this binary may allocate meanwhile: allow a little slack.
    assert!(
        (bytes - expected as isize).abs() < 16 * 1024,
        "{bytes} B counted, {expected} B expected"
    );
    drop(boxes);
}

#[test]
fn latch_opens_exactly_when_the_last_count_arrives() {
    static LATCH: Latch = Latch::new();
    LATCH.reset(1000);
    let threads: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(|| (0..250).for_each(|_| LATCH.count_down())))
        .collect();
    assert!(LATCH.wait(Duration::from_secs(30)));
    assert_eq!(LATCH.remaining(), 0);
    threads.into_iter().for_each(|t| t.join().unwrap());
}

#[test]
fn ratio_is_oriented_so_that_above_one_means_ahead_and_json_stays_valid() {
    let mut throughput = Row::new("t", "Mtasks/s", true);
    throughput.push("ours", true, &[6.0]);
    throughput.push("ours slow", true, &[1.0]);
    throughput.push("peer", false, &[3.0]);
    throughput.push("peer slow", false, &[2.0]);
    assert_eq!(throughput.ratio_to_best_peer(), Some(2.0));

    let mut idle = Row::new("idle", "ms/10s", false);
    idle.push("ours", true, &[0.0]);
    idle.push("peer", false, &[1.0]);
    assert_eq!(idle.ratio_to_best_peer(), Some(f64::INFINITY));
    let json = render_json(2, &[throughput, idle]);
    assert!(json.contains("\"ratio_to_best_peer\": null"), "{json}");
    assert!(!json.contains("inf"), "{json}");
    assert_eq!(json.matches('{').count(), json.matches('}').count());
}
