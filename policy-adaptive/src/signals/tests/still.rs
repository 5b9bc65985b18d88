//! The still-pool rule: what a still sample does with the split (the rule's tables) and on real
//! pools (idle, stuck, and a stuck task turning to computing).

use super::*;

/// The steady-state rule for the split: measured until the pool has been still for
/// `STILL_SAMPLES`, then reused at most `REUSE_MAX` samples in a row (the sample after them
/// checks it), measured at once when a counter moves, and never reused without a measured
/// split.
#[test]
fn a_still_pool_reuses_its_split_at_most_three_samples_in_a_row() {
    let script = [
        (true, true),
        (false, true),
        (false, true),
        (false, true),
        (false, true),
        (false, true),
        (false, true),
        (false, true),
        (false, true),
        (true, true),
        (false, true),
        (false, true),
        (false, false),
        (false, true),
    ];
    let script: Vec<_> = script.map(|(moved, known)| (moved, known, false)).into();
    insta::assert_snapshot!(stillness_table(&script, false, &[]));
}

/// Between measurements, a still pool's split is checked against the process's CPU: a steady
/// check reuses it, and after `CHECK_MAX` checks the split is measured again (every 16th
/// still sample); a check that finds the CPU moved measures, and so do the next
/// `STILL_SAMPLES` samples, as after a moved counter.
#[test]
fn a_still_pool_checks_its_split_and_measures_it_every_sixteenth_sample() {
    let mut script = vec![(true, true, false)];
    script.extend([(false, true, false); 30]);
    // Sample 26 is the second check after the measurement at 22: it finds the CPU moved.
    insta::assert_snapshot!(stillness_table(&script, false, &[26]));
}

/// Feeds `script` (moved, split known, idle) to a fresh `Stillness` and tabulates what each
/// sample did, a check at a sample listed in `cpu_moved_at` finding the process's CPU moved
/// (the others steady), checking on the way that a reuse needs a known split and a still pool,
/// that only an idle pool reuses more than `REUSE_MAX` samples in a row, and that a busy one
/// is measured at least every `(CHECK_MAX + 1) × (REUSE_MAX + 1)` still samples. The idle
/// column is printed when `show_idle` is set.
fn stillness_table(
    script: &[(bool, bool, bool)],
    show_idle: bool,
    cpu_moved_at: &[usize],
) -> String {
    let mut stillness = Stillness::default();
    let mut table = String::from(if show_idle {
        "sample | moved | split known | idle  | split\n"
    } else {
        "sample | moved | split known | split\n"
    });
    let (mut in_a_row, mut unmeasured) = (0, 0);
    for (at, &(moved, known, idle)) in script.iter().enumerate() {
        let read = stillness.next(moved, known, idle);
        let (reuse, what) = match read {
            SplitRead::Measure => (false, "measured"),
            SplitRead::Reuse => (true, "reused"),
            SplitRead::Check if cpu_moved_at.contains(&at) => {
                stillness.moved();
                (false, "checked: CPU moved, measured")
            }
            SplitRead::Check => (true, "checked: steady, reused"),
        };
        in_a_row = if read == SplitRead::Reuse {
            in_a_row + 1
        } else {
            0
        };
        unmeasured = if reuse { unmeasured + 1 } else { 0 };
        assert!(idle || in_a_row <= REUSE_MAX);
        assert!(idle || unmeasured < (CHECK_MAX + 1) * (REUSE_MAX + 1));
        assert!(!reuse || (known && !moved));
        let idle_cell = if show_idle {
            format!("{idle:<5} | ")
        } else {
            String::new()
        };
        table.push_str(&format!(
            "{at:>6} | {moved:<5} | {known:<11} | {idle_cell}{what}\n"
        ));
    }
    table
}

/// Holds the host CPU reading at `host_cpu` (no refresh for an hour), so that only the pool's
/// counters (and the process's CPU, for a check) move between samples.
fn hold_host_reading(signals: &mut PoolSignals, host_cpu: f64) {
    signals.host_cpu = Some(host_cpu);
    #[cfg(feature = "sysinfo")]
    {
        signals.cpu_refreshes = 2;
        signals.last_cpu_refresh = Some(Instant::now() + Duration::from_secs(3600));
    }
}

/// The idle case of the steady-state rule: with nothing running or queued, a still pool
/// reuses its split for as long as it stays still (no task can turn from blocked to
/// computing unseen), and a moved counter, or no measured split, still measures.
#[test]
fn an_idle_still_pool_reuses_its_split_until_a_counter_moves() {
    let mut script = vec![(true, true, true)];
    script.extend([(false, true, true); 9]);
    script.extend([
        (false, true, false),
        (false, true, false),
        (false, true, false),
        (false, true, false),
        (true, true, true),
        (false, true, true),
        (false, true, true),
        (false, false, true),
        (false, true, true),
    ]);
    insta::assert_snapshot!(stillness_table(&script, true, &[]));
}

/// Invariant: on a real pool whose workers are all parked, once the split is measured
/// still, every later still sample reuses it (past `REUSE_MAX`) without reading the
/// process's CPU clock, whether the host has a CPU free (the split says no worker is
/// blocked) or not (the split is unknown, as a measurement would leave it); a task run in
/// between makes the next sample measure.
#[test]
fn an_idle_pool_reuses_its_split_until_a_task_runs() {
    an_idle_pool_reuses_its_split_on_a_host_at(0.05, Some(0.0));
    an_idle_pool_reuses_its_split_on_a_host_at(0.95, None);
}

fn an_idle_pool_reuses_its_split_on_a_host_at(host_cpu: f64, blocked: Option<f64>) {
    let (pool, workers) = recorded_pool(4);
    assert!(pool.wait_idle(Duration::from_secs(30)));
    let mut signals = PoolSignals::new(workers);
    hold_host_reading(&mut signals, host_cpu);
    let tick = Duration::from_millis(100);
    let samples = STILL_SAMPLES + 3 * (REUSE_MAX + 1);
    for _ in 0..samples {
        let snapshot = signals.sample(&pool, tick);
        assert_eq!(snapshot.blocked, blocked, "{snapshot:?}");
    }
    // The first sample measures (it has no counters to compare) and so do the next
    // `STILL_SAMPLES`; every later one reuses.
    assert_eq!(
        signals.reused_samples,
        u64::from(samples - STILL_SAMPLES - 1)
    );
    assert!(signals.reused_samples > u64::from(REUSE_MAX));
    let reused = signals.reused_samples;
    let snapshot = signals.sample(&pool, tick);
    assert_eq!(signals.reused_samples, reused + 1);
    assert_eq!(snapshot.process_cpu, None, "{snapshot:?}");
    // A task runs and finishes: the counters moved, the next sample measures.
    pool.submit(|| ()).unwrap().join().unwrap();
    assert!(pool.wait_idle(Duration::from_secs(30)));
    let snapshot = signals.sample(&pool, tick);
    assert_eq!(signals.reused_samples, reused + 1, "{snapshot:?}");
    assert_eq!(snapshot.completed, 1);
    assert!(signals.last_split.is_some());
    pool.shutdown();
}

/// Invariant: on a real pool whose workers are all stuck in a task with a backlog, the
/// sample reuses its split, and the reused figures are the last measured ones; a finished
/// task makes the next sample measure. A reused sample does not read the process's CPU
/// clock (dear in a large process); the measured one after it does, over the whole span.
#[test]
fn a_stuck_pool_reuses_its_split_until_a_task_finishes() {
    // Two workers blocked, two tasks queued behind them.
    let (pool, workers, release) = pool_blocked_at_a_gate(2, 4, 2);
    let mut signals = PoolSignals::new(workers);
    hold_host_reading(&mut signals, 0.05);
    let tick = Duration::from_millis(100);
    let mut snapshots = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while signals.reused_samples == 0 {
        assert!(Instant::now() < deadline, "never reused: {snapshots:?}");
        // The controller's tick, not a wait for an event.
        std::thread::sleep(tick);
        let before = signals.last_split;
        let snapshot = signals.sample(&pool, tick);
        if signals.reused_samples > 0 {
            assert_eq!(
                Some((
                    snapshot.blocked,
                    snapshot.worker_cpu,
                    snapshot.worker_demand
                )),
                before,
                "{snapshots:?}"
            );
            assert_eq!(snapshot.process_cpu, None, "{snapshots:?}");
        }
        snapshots.push(snapshot);
    }
    assert!(snapshots.len() > STILL_SAMPLES as usize, "{snapshots:?}");
    // One task finishes (the lock holder's `recv` returns): the next sample measures.
    release.send(()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while pool.stats().completed == 0 {
        assert!(Instant::now() < deadline, "no task finished");
        std::thread::yield_now();
    }
    let reused = signals.reused_samples;
    let measured = signals.sample(&pool, tick);
    assert_eq!(signals.reused_samples, reused);
    #[cfg(unix)]
    assert!(
        measured
            .process_cpu
            .is_some_and(|cores| cores.is_finite() && cores >= 0.0),
        "{measured:?}"
    );
    #[cfg(not(unix))]
    drop(measured);
    drop(release);
    pool.shutdown();
}

/// Set in the child process that runs
/// `a_check_sees_a_stuck_task_turn_from_blocked_to_computing` alone.
const CHECK_CHILD: &str = "POLICY_ADAPTIVE_CHECK_CHILD";

/// Invariant: a still pool's check reuses the split while the process's CPU stays put, and a
/// stuck task that turns from blocked to computing without finishing (the one change the
/// counters cannot show) is measured at the next check, not at the next measurement up to
/// 16 samples later. Two workers blocked at a gate with two tasks queued: every check finds
/// the process's CPU where the measurement left it; then the gate opens and both tasks spin
/// (still unfinished), and the next check measures them computing.
///
/// It runs alone in a child process: the process's CPU is what a check reads, and tests
/// running beside it in this process would move it.
#[cfg(unix)]
#[test]
fn a_check_sees_a_stuck_task_turn_from_blocked_to_computing() {
    if std::env::var_os(CHECK_CHILD).is_none() {
        let name =
            "signals::tests::still::a_check_sees_a_stuck_task_turn_from_blocked_to_computing";
        let child = test_kit::run_alone(name, CHECK_CHILD);
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
    use std::sync::atomic::{AtomicBool, Ordering};
    let (pool, workers) = recorded_pool(2);
    let (open, gate) = std::sync::mpsc::channel::<()>();
    let gate = Arc::new(std::sync::Mutex::new(gate));
    let stop = Arc::new(AtomicBool::new(false));
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    for _ in 0..2 {
        let (gate, stop, started_tx) = (gate.clone(), stop.clone(), started_tx.clone());
        pool.spawn(move || {
            let _ = started_tx.send(());
            // Blocked until the gate opens (one `send` per task), then computing until `stop`.
            let _ = gate.lock().map(|rx| rx.recv());
            while !stop.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        })
        .unwrap();
    }
    for _ in 0..2 {
        started_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    }
    // The backlog: two tasks queued behind the stuck ones.
    for _ in 0..2 {
        pool.spawn(|| ()).unwrap();
    }
    // Stops the spinning tasks however the test ends (see `StopOnDrop`).
    let _stop = StopOnDrop(stop.clone());
    let mut signals = PoolSignals::new(workers);
    hold_host_reading(&mut signals, 0.05);
    let tick = Duration::from_millis(50);
    let sample = |signals: &mut PoolSignals| {
        // The controller's tick (the process's CPU is a rate over it), not a wait for an event.
        std::thread::sleep(tick);
        signals.sample(&pool, tick)
    };
    // Samples 0-2 measure, then three reuses and a check, three times, then a measurement
    // (sample 18): every check steady, as the process is quiet.
    let cycle = (CHECK_MAX + 1) * (REUSE_MAX + 1);
    let mut snapshots = Vec::new();
    for _ in 0..=(STILL_SAMPLES + cycle) {
        snapshots.push(sample(&mut signals));
    }
    assert_eq!(
        signals.checked_samples,
        u64::from(CHECK_MAX),
        "{snapshots:#?}"
    );
    // Checked samples count as reused: all but the measurement.
    assert_eq!(signals.reused_samples, u64::from(cycle - 1));
    let blocked = snapshots.last().unwrap().blocked;
    assert!(blocked.is_some_and(|b| b > 1.5), "{snapshots:#?}");
    // The tasks turn: from here they compute, and none finishes.
    for _ in 0..2 {
        open.send(()).unwrap();
    }
    // Three reuses (the split as it was), then the check: the process's CPU moved, so the
    // sample measures, and finds the tasks computing.
    let (reused, checked) = (signals.reused_samples, signals.checked_samples);
    for _ in 0..REUSE_MAX {
        let snapshot = sample(&mut signals);
        assert_eq!(snapshot.blocked, blocked, "{snapshot:?}");
    }
    assert_eq!(signals.reused_samples, reused + u64::from(REUSE_MAX));
    // The check sees the turn only if the two spinners get more than `CHECK_SLACK_CORES`
    // between them over its window: beside 20 busy loops on 2 cores they did (3 runs of 3);
    // beside 40 they got 0.09 cores, inside the slack, and the check rightly read the pool
    // as still (this assertion then fails: a host 20 times oversubscribed is outside what
    // this test can tell apart).
    let checked_sample = sample(&mut signals);
    assert_eq!(signals.checked_samples, checked, "{checked_sample:?}");
    assert_eq!(signals.reused_samples, reused + u64::from(REUSE_MAX));
    assert!(
        checked_sample
            .process_cpu
            .is_some_and(|cores| cores > CHECK_SLACK_CORES),
        "{checked_sample:?}"
    );
    // The check measured: the split is fresh, no longer the reused one. Samples after a
    // measuring check measure too (the pool counts as moved), so the split follows what the
    // spinners compute. How much that is depends on the host, not on this crate: the test holds
    // the host reading at "free", so a spinner's wait for a CPU behind other load reads as
    // blocked (on a quiet host the split falls under 0.5; beside three busy loops and the whole
    // suite the two spinners got 0.32 cores and the split read 1.68, which an earlier bar of
    // 1.5 failed). So the test waits for a measured sample in which they compute at all, and
    // checks that its split is the running workers less that CPU, below the reused one.
    assert_ne!(checked_sample.blocked, blocked, "{checked_sample:?}");
    let computing = |s: &Snapshot| s.worker_cpu.is_some_and(|cores| cores >= 0.05);
    let mut after = vec![checked_sample];
    while !computing(after.last().unwrap()) && after.len() < 40 {
        after.push(sample(&mut signals));
    }
    let last = after.last().unwrap();
    assert!(
        computing(last),
        "no sample saw the spinners compute in {} samples: {after:#?}",
        after.len()
    );
    let (cpu, split) = (last.worker_cpu.unwrap(), last.blocked.unwrap());
    assert!(
        (split + cpu - last.running as f64).abs() < 0.01 && split < blocked.unwrap(),
        "the split is not this window's measurement: {last:#?}"
    );
    stop.store(true, Ordering::Relaxed);
    assert!(pool.wait_idle(Duration::from_secs(30)));
    pool.shutdown();
}
