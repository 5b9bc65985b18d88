//! The carried process figure (`carry`): the rule's table, and a real pool of 128 blocked
//! workers whose tasks finish at a steady pace.

use super::*;
use crate::signals::carry::{carries, Reading, CARRY_FROM_THREADS};

fn counters(threads: usize, running: u64) -> Counters {
    Counters {
        queued: 100,
        running,
        threads,
        target: threads,
        host_free: Some(true),
    }
}

/// The rule's table: one row per case, the last reading's figure and pace against a sample's
/// counters and pace, on 2 cores. Only a large pool with the same workers busy, a light figure
/// and the same pace carries; a moved queue alone does not stop it.
#[test]
fn a_sample_carries_the_figure_only_for_a_large_steady_light_pool() {
    let reading = |cpu: f64, pace: f64, counters: Counters| Reading {
        cpu,
        counters,
        pace,
    };
    let large = counters(256, 256);
    let moved_queue = Counters { queued: 7, ..large };
    let busier_host = Counters {
        host_free: Some(false),
        ..large
    };
    let grown = Counters {
        target: 300,
        ..large
    };
    let small = counters(CARRY_FROM_THREADS - 1, CARRY_FROM_THREADS as u64 - 1);
    let steady = Some(reading(0.1, 12_800.0, large));
    let cases: [(&str, Option<Reading>, Counters, f64); 12] = [
        ("no reading to carry", None, large, 12_800.0),
        ("steady", steady, large, 12_000.0),
        ("queue moved", steady, moved_queue, 12_800.0),
        (
            "pace up a quarter",
            Some(reading(0.1, 10_000.0, large)),
            large,
            12_500.0,
        ),
        (
            "pace up more",
            Some(reading(0.1, 10_000.0, large)),
            large,
            12_600.0,
        ),
        (
            "pace down more",
            Some(reading(0.1, 10_000.0, large)),
            large,
            7_000.0,
        ),
        (
            "nothing finished",
            Some(reading(0.1, 0.0, large)),
            large,
            0.0,
        ),
        (
            "heavy figure",
            Some(reading(0.5, 12_800.0, large)),
            large,
            12_800.0,
        ),
        ("one worker less busy", steady, counters(256, 255), 12_800.0),
        ("host crossed its line", steady, busier_host, 12_800.0),
        ("target moved", steady, grown, 12_800.0),
        (
            "small pool",
            Some(reading(0.1, 6_400.0, small)),
            small,
            6_400.0,
        ),
    ];
    let mut table = String::from("case                  | carries\n");
    for (case, last, now, pace) in cases {
        let carried = carries(last.as_ref(), &now, pace, 2);
        table.push_str(&format!("{case:<21} | {carried}\n"));
    }
    insta::assert_snapshot!(table);
}

const CARRY_CHILD: &str = "POLICY_ADAPTIVE_CARRY_CHILD";

/// Invariant, on a real pool of `CARRY_FROM_THREADS` workers all blocked with a backlog, tasks
/// finishing at a steady pace: once a sample has read the process's clock, every other sample
/// carries the figure (the same as the reading's), never two in a row; a sample whose pace
/// moved reads the clock, and the next one at the new pace carries again.
///
/// Alone in a child process: the figure must be the quiet process's (tests that spin in the
/// same process would make it heavy, and nothing would carry).
#[test]
fn a_steady_large_pool_reads_the_process_clock_every_other_sample() {
    if std::env::var_os(CARRY_CHILD).is_none() {
        let name =
            "signals::tests::carry::a_steady_large_pool_reads_the_process_clock_every_other_sample";
        let child = test_kit::run_alone(name, CARRY_CHILD);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&child.stdout),
            String::from_utf8_lossy(&child.stderr),
        );
        assert!(
            child.status.success(),
            "child: {:?}\n{stdout}\n{stderr}",
            child.status
        );
        // The child ran the test (a filter that matched nothing would pass too).
        assert!(stdout.contains("1 passed"), "{stdout}");
        return;
    }
    let threads = CARRY_FROM_THREADS;
    // Each sample lets 16 tasks finish (64 at the change of pace): 11 samples, a backlog left.
    let (pool, workers, release) = pool_blocked_at_a_gate(threads, threads + 512, threads);
    let mut signals = PoolSignals::new(workers);
    hold_host_reading(&mut signals, 0.05);
    let tick = Duration::from_millis(100);
    let mut released = 0u64;
    let mut sample = |signals: &mut PoolSignals, finishing: u64| {
        // The controller's tick (the process's CPU is a rate over it), not a wait for an event.
        std::thread::sleep(tick);
        for _ in 0..finishing {
            release.send(()).unwrap();
        }
        released += finishing;
        // Every released task finished and every worker took the next one from the backlog.
        assert!(test_kit::eventually(|| {
            let stats = pool.stats();
            stats.completed == released && stats.running == threads as u64
        }));
        let carried_before = signals.carried_samples;
        let snapshot = signals.sample(&pool, tick);
        (snapshot, signals.carried_samples > carried_before)
    };
    let mut seen = Vec::new();
    for finishing in [16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 64, 64] {
        seen.push(sample(&mut signals, finishing));
    }
    let what: Vec<&str> = seen
        .iter()
        .map(|(s, carried)| match (s.process_cpu, carried) {
            (None, _) => "no figure",
            (Some(_), true) => "carried",
            (Some(_), false) => "read",
        })
        .collect();
    // Sample 0 has no reading before it. Sample 10, after a reading, finds the pace 4 times
    // that reading's: it reads, and sample 11, at the same new pace, carries.
    let mut expected = vec!["no figure"];
    expected.extend(["read", "carried"].repeat(4));
    expected.extend(["read", "read", "carried"]);
    assert_eq!(what, expected, "{seen:#?}");
    for pair in seen.windows(2) {
        if pair[1].1 {
            assert_eq!(pair[1].0.process_cpu, pair[0].0.process_cpu);
        }
    }
}
