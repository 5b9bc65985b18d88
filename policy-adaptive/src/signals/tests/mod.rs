use super::clocks::*;
#[cfg(feature = "sysinfo")]
use super::host::HOST_CPU_EVERY;
use super::run_queue::*;
use super::split::*;
use super::still::*;
use super::*;
use crate::decide::LIGHT_TASKS;
use std::sync::Arc;

mod still;

/// Sets its flag when dropped: the stop of spinning tasks, held by a test that declares it
/// after its pool, so that a failed assertion stops them before the pool's drop joins its
/// workers (which would wait for the spinners forever).
struct StopOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A pool of `threads` workers whose thread ids (and CPU clocks) `WorkerThreads` records (and
/// forgets when a worker stops).
fn recorded_pool(threads: usize) -> (ThreadPool, WorkerThreads) {
    let workers = WorkerThreads::new();
    let pool = workers
        .recording(ThreadPool::builder().threads(threads))
        .build()
        .unwrap();
    (pool, workers)
}

/// A pool of `threads` workers whose thread ids `WorkerThreads` records (and forgets when a
/// worker stops), running `tasks` tasks that block at one gate, once `started` of them have
/// started. Each `send` on the returned sender lets one task finish (the one holding the
/// gate's lock); dropping it lets every task finish.
fn pool_blocked_at_a_gate(
    threads: usize,
    tasks: usize,
    started: usize,
) -> (ThreadPool, WorkerThreads, std::sync::mpsc::Sender<()>) {
    let workers = WorkerThreads::new();
    let pool = workers
        .recording(ThreadPool::builder().threads(threads))
        .build()
        .unwrap();
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let gate = Arc::new(std::sync::Mutex::new(gate));
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    for _ in 0..tasks {
        let (gate, started_tx) = (gate.clone(), started_tx.clone());
        pool.spawn(move || {
            let _ = started_tx.send(());
            let _ = gate.lock().map(|rx| rx.recv());
        })
        .unwrap();
    }
    for _ in 0..started {
        started_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    }
    (pool, workers, release)
}

/// CPU-bound workers that outnumber the cores, with a host CPU reading that says "free"
/// (it is refreshed once a second, so right after our own workers start spinning it still
/// shows the quiet host before them): their run-queue wait must not be called blocked, or
/// the controller grows CPU-bound work (W4's third phase). Every sample either says nothing
/// of the split yet or calls at most a quarter of the busy workers blocked (the decision's
/// CPU-bound line), and the split is eventually measured.
#[cfg(all(target_os = "linux", feature = "sysinfo"))]
#[test]
fn a_stale_free_host_reading_does_not_make_run_queue_wait_blocked() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let spinners = 4 * cores;
    let (pool, workers) = recorded_pool(spinners);
    let stop = Arc::new(AtomicBool::new(false));
    // Declared after the pool, so dropped before it: a failed assertion stops the spinners
    // before the pool's drop waits for them.
    let _stop = StopOnDrop(stop.clone());
    // As many again queued behind the spinners: a backlog, as in the controller's case.
    for _ in 0..2 * spinners {
        let stop = stop.clone();
        pool.spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        })
        .unwrap();
    }
    let mut signals = PoolSignals::new(workers);
    // A host reading of 5%, not due for a refresh during the test: stale and "free".
    signals.host_cpu = Some(0.05);
    signals.cpu_refreshes = 2;
    signals.last_cpu_refresh = Some(Instant::now() + Duration::from_secs(3600));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = Instant::now();
    let (mut measured, mut blocked, mut running) = (0, 0.0, 0.0);
    let mut seen = Vec::new();
    while measured < 5 {
        assert!(
            Instant::now() < deadline,
            "the split was never measured: {seen:?}"
        );
        // The sampling interval (the controller's tick), not a wait for an event.
        std::thread::sleep(Duration::from_millis(100));
        let now = Instant::now();
        let s = signals.sample(&pool, now - last);
        last = now;
        seen.push((s.running, s.blocked, s.worker_cpu));
        if let Some(b) = s.blocked.filter(|_| s.running > 0) {
            measured += 1;
            blocked += b;
            running += s.running as f64;
        }
    }
    // Spinners are never blocked. Read as blocked, their run-queue wait is most of their
    // busy time (7 of 8 spinners at 0.9 cores on 2 cores, on the old rule); the split
    // measured from `schedstat` misses a wait still in progress at a reading, so on a
    // crowded host a part of it still reads blocked: less than half, summed over the
    // samples (the decision's room rule treats workers less than half blocked as wanting
    // the cores).
    assert!(
        blocked * 2.0 < running,
        "spinning workers called blocked: {seen:?}"
    );
    stop.store(true, Ordering::Relaxed);
    pool.shutdown();
}

/// The state sample reads busy workers outside the `schedstat` sample (8 states a reading
/// in all), finds sleeping ones blocked, rotates its oldest worker out once per
/// `SCHED_ROTATE`, and lets workers go once they park.
#[test]
fn the_state_sample_reads_more_busy_workers_and_lets_parked_ones_go() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let busy = 2 * cores + 8;
    let (pool, workers, release) = pool_blocked_at_a_gate(busy, busy, busy);
    let mut signals = PoolSignals::new(workers);
    let mut stats = Vec::new();
    pool.stats_with_workers(&mut stats);
    let running = busy as u64;
    // A reading without states (light workers on a free host) opens no `stat`.
    signals.read_sample(&stats, running, Instant::now(), false);
    assert!(signals.states.is_empty());
    assert_eq!(signals.states_now, None);
    // Every worker is asleep at the gate, or about to be: wait for the states to say so.
    let all_asleep_in_the_state_sample = WorkerStates {
        runnable: 0,
        blocked: STATE_SAMPLE as u32,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let states = loop {
        let now = Instant::now();
        signals.read_sample(&stats, running, now, true);
        let states = signals.read_states(&stats, running, now);
        if states == all_asleep_in_the_state_sample {
            break states;
        }
        assert!(now < deadline, "sleepers still read {states:?}");
        std::thread::yield_now();
    };
    assert_eq!(states, all_asleep_in_the_state_sample);
    // A reading with states hands them to the snapshot: both samples' workers, asleep.
    let all_asleep = WorkerStates {
        runnable: 0,
        blocked: (SCHED_SAMPLE + STATE_SAMPLE) as u32,
    };
    while signals.states_now != Some(all_asleep) {
        assert!(Instant::now() < deadline, "{:?}", signals.states_now);
        std::thread::yield_now();
        signals.read_sample(&stats, running, Instant::now(), true);
    }
    // Between readings, the same states with no `schedstat` read (a second look's).
    let sched_reads: Vec<u32> = signals.sched.iter().map(|s| s.reads).collect();
    assert_eq!(
        signals.states_between_readings(&stats, running, Instant::now()),
        Some(all_asleep)
    );
    assert_eq!(
        signals.sched.iter().map(|s| s.reads).collect::<Vec<_>>(),
        sched_reads
    );
    // And through `wait_share`, 10 ms after a reading (not due for the next), as a sample.
    signals.states_now = None;
    signals.sched_at = Some(Instant::now());
    signals.wait_share(&stats, running, 0.0, Split::Measure, Instant::now());
    assert_eq!(signals.states_now, Some(all_asleep));
    let sampled: Vec<usize> = signals.states.iter().map(|s| s.index).collect();
    assert_eq!(sampled.len(), STATE_SAMPLE);
    assert_eq!(signals.sched.len(), SCHED_SAMPLE);
    for index in &sampled {
        assert!(
            !signals.sched.iter().any(|s| s.index == *index),
            "worker {index} in both samples"
        );
        assert_eq!(sampled.iter().filter(|i| *i == index).count(), 1);
    }
    // Once a `SCHED_ROTATE` has passed, the oldest makes room for a worker left out.
    signals.states_rotated_at = Some(Instant::now() - SCHED_ROTATE);
    signals.read_states(&stats, running, Instant::now());
    let rotated: Vec<usize> = signals.states.iter().map(|s| s.index).collect();
    assert_eq!(rotated.len(), STATE_SAMPLE);
    assert!(!rotated.contains(&sampled[0]), "{sampled:?} -> {rotated:?}");
    assert_eq!(rotated[..STATE_SAMPLE - 1], sampled[1..]);
    // Released, the workers finish and park: the sample lets them all go.
    drop(release);
    assert!(pool.wait_idle(Duration::from_secs(30)));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        pool.stats_with_workers(&mut stats);
        if stats.len() == busy && stats.iter().all(|w| w.parked) {
            break;
        }
        assert!(Instant::now() < deadline, "workers never parked: {stats:?}");
        std::thread::yield_now();
    }
    assert_eq!(
        signals.read_states(&stats, 0, Instant::now()),
        WorkerStates::default()
    );
    assert!(signals.states.is_empty());
    pool.shutdown();
}

/// With no more busy workers than the cores and fewer than 3, the states would count
/// nowhere (not in the split, not in rule 4's verdict): a sample that measures the split
/// reads none, at a reading or between readings. From 3 busy workers, or more than the
/// cores, they count.
#[test]
fn too_few_busy_workers_for_their_states_to_count_read_none() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let few = cores.min(2);
    let (pool, workers, release) = pool_blocked_at_a_gate(few, few, few);
    let mut signals = PoolSignals::new(workers);
    let mut stats = Vec::new();
    pool.stats_with_workers(&mut stats);
    let running = few as u64;
    // Two readings (the second has the first's marks, where states would be read), then
    // one between readings.
    for _ in 0..2 {
        signals.sched_at = None;
        signals.wait_share(&stats, running, 0.0, Split::Measure, Instant::now());
        assert_eq!(signals.states_now, None);
    }
    assert_eq!(signals.sched.len(), few, "the schedstat sample still reads");
    signals.sched_at = Some(Instant::now());
    signals.wait_share(&stats, running, 0.0, Split::Measure, Instant::now());
    assert_eq!(signals.states_now, None);
    assert!(signals.states.is_empty());
    assert!(!states_count(1, 1) && !states_count(2, 2) && !states_count(2, 4));
    assert!(states_count(2, 1) && states_count(3, 4) && states_count(3, 2));
    drop(release);
    pool.shutdown();
}

fn reading(busy_ms: u64, off_ms: u64, wait_ms: u64, runnable: u32, blocked: u32) -> Reading {
    Reading {
        at: Instant::now(),
        busy: Duration::from_millis(busy_ms),
        off: Duration::from_millis(off_ms),
        wait: Duration::from_millis(wait_ms),
        runnable,
        blocked,
    }
}

/// Spinning workers queued for the cores whose waits are still in progress at the
/// readings: `schedstat` shows little wait (what it shows read as blocked, W4's CPU phase
/// read 12.6 of 57 spinners blocked), but they are never found blocked, so their off-CPU
/// time is run-queue wait.
#[test]
fn waits_in_progress_count_as_run_queue_time_by_the_workers_states() {
    // `schedstat` alone: 60 of 285 ms off the CPU waiting, the rest "blocked" (three
    // quarters of the busy time). Six states, none blocked, draw that toward none.
    let spinning: std::collections::VecDeque<_> =
        (0..3).map(|_| reading(100, 95, 20, 2, 0)).collect();
    let share = run_queue_share(&spinning).unwrap();
    let prior = (285.0 - 60.0) / 300.0;
    let expected = 1.0 - 300.0 * (2.0 * prior / 8.0) / 285.0;
    assert!((share - expected).abs() < 1e-9, "{share}");
    assert!(share > 0.8, "{share}");
    // The more states, the nearer all of it.
    let longer: std::collections::VecDeque<_> =
        (0..10).map(|_| reading(100, 95, 20, 2, 0)).collect();
    assert!(run_queue_share(&longer).unwrap() > 0.9);
    // Sleepers found blocked: `schedstat`'s own (small) share stands.
    let sleeping: std::collections::VecDeque<_> =
        (0..3).map(|_| reading(100, 99, 3, 0, 2)).collect();
    let share = run_queue_share(&sleeping).unwrap();
    assert!((share - 3.0 / 99.0).abs() < 1e-9, "{share}");
    // W3-like: on a CPU a fifth of the time, found blocked half of it, waits partly seen.
    let mixed: std::collections::VecDeque<_> = [
        reading(100, 80, 10, 1, 1),
        reading(100, 80, 10, 1, 1),
        reading(100, 80, 10, 2, 0),
        reading(100, 80, 10, 0, 2),
    ]
    .into_iter()
    .collect();
    let share = run_queue_share(&mixed).unwrap();
    let expected = 1.0 - 400.0 * ((4.0 + 2.0 * 0.7) / 10.0) / 320.0;
    assert!((share - expected).abs() < 1e-9, "{share}");
    // Too few states to say: `schedstat` alone.
    let few: std::collections::VecDeque<_> = [reading(100, 95, 20, 1, 0)].into_iter().collect();
    assert_eq!(run_queue_share(&few), Some(20.0 / 95.0));
    // Too little off-CPU time to split.
    let none: std::collections::VecDeque<_> = [reading(100, 4, 0, 2, 2)].into_iter().collect();
    assert_eq!(run_queue_share(&none), None);
}

/// A share from before a growth does not speak for the grown pool once its busy workers
/// outnumber the cores (W3, grown from 4 to 19 workers on 2 cores, read nearly all blocked
/// on the 4-worker share and burst to 64).
#[test]
fn a_share_from_fewer_busy_workers_does_not_stand_once_they_outnumber_the_cores() {
    let young = Duration::from_millis(20);
    assert!(!share_stands(young, 4, 19, 2, 0.9));
    assert!(share_stands(young, 4, 5, 2, 0.9));
    assert!(share_stands(young, 4, 2, 2, 0.9));
    assert!(share_stands(young, 64, 64, 2, 0.9));
    assert!(share_stands(young, 64, 60, 2, 0.9));
    assert!(!share_stands(SHARE_VALID + young, 64, 64, 2, 0.9));
    // Sleepers using next to no CPU: they do not queue behind each other.
    assert!(share_stands(young, 8, 14, 2, 0.05));
}

/// The CPU `share_stands` judges on: the process's where lower than the clocks' and light
/// per completed task, else the clocks'. Not-a-number figures are ignored.
#[test]
fn a_share_stands_on_the_processs_cpu_where_its_tasks_are_light() {
    let tick = Duration::from_millis(10);
    // W4's sleepers at 31 workers: clocks 1.85 cores, process 0.1 over 61 tasks (16 µs).
    assert_eq!(share_cpu(1.85, Some(0.1), 61, tick), 0.1);
    assert!(share_stands(
        tick,
        20,
        31,
        2,
        share_cpu(1.85, Some(0.1), 61, tick)
    ));
    assert!(!share_stands(tick, 20, 31, 2, 1.85));
    // Starved W3: 0.15 cores over 10 tasks (150 µs), or over 7 (too few): the clocks'.
    assert_eq!(share_cpu(0.9, Some(0.15), 10, tick), 0.9);
    assert_eq!(share_cpu(0.9, Some(0.001), LIGHT_TASKS - 1, tick), 0.9);
    // The process above the clocks (other threads), or not a number: the clocks'.
    assert_eq!(share_cpu(0.05, Some(0.1), 61, tick), 0.05);
    for bad in [f64::NAN, f64::INFINITY, -0.1] {
        assert_eq!(share_cpu(1.85, Some(bad), 61, tick), 1.85);
    }
    assert_eq!(share_cpu(1.85, None, 61, tick), 1.85);
}

/// Invariant: the longest-sampled worker makes room only after `SCHED_ROTATE` *and*
/// `SCHED_ROTATE_READINGS` readings: a pool measured every tick (100 ms) still rotates once
/// a second, a still pool (measured every fourth tick) after 8 readings, not after 2-3.
#[test]
fn a_sampled_worker_makes_room_after_a_second_and_eight_readings() {
    let ms = Duration::from_millis;
    // Every tick at 100 ms: 8 readings by 0.7 s, so the second decides.
    assert!(!makes_room(ms(900), 10));
    assert!(makes_room(ms(1000), 11));
    // Every fourth tick: at 1.2 s only 4 readings; the 8th at 2.8 s, room at 3.2 s.
    assert!(!makes_room(ms(1200), 4));
    assert!(!makes_room(ms(2800), SCHED_ROTATE_READINGS - 1));
    assert!(makes_room(ms(3200), SCHED_ROTATE_READINGS));
}

/// Beyond `CPU_SAMPLE` busy workers, a tick's share pools its `CPU_ROTATE` clocks with
/// the previous tick's: the share of the summed times, not of either tick alone.
#[test]
fn a_rotating_tick_pools_its_clocks_with_the_previous_ticks() {
    let ms = Duration::from_millis;
    assert_eq!(pooled_share(ms(10), ms(40), None), Some(0.25));
    // 10 of 40 ms now and 30 of 40 before: half, over the 8 workers' windows.
    assert_eq!(
        pooled_share(ms(10), ms(40), Some((ms(30), ms(40)))),
        Some(0.5)
    );
    // A tick whose clocks saw no busy time still speaks through the previous one's.
    assert_eq!(
        pooled_share(ms(0), ms(0), Some((ms(30), ms(40)))),
        Some(0.75)
    );
    assert_eq!(pooled_share(ms(0), ms(0), None), None);
    // Capped at 1 (a clock read a moment after the busy time).
    assert_eq!(pooled_share(ms(50), ms(40), None), Some(1.0));
}

/// Invariant: a measured tick reads every busy worker's CPU clock up to `CPU_SAMPLE` busy
/// workers, and `CPU_ROTATE` of them beyond (half the system calls), each worker in turn.
#[test]
fn beyond_eight_busy_workers_a_tick_reads_four_clocks() {
    for (busy, reads) in [(3, 3), (CPU_SAMPLE, CPU_SAMPLE), (12, CPU_ROTATE)] {
        let (pool, workers, release) = pool_blocked_at_a_gate(busy, busy, busy);
        let mut signals = PoolSignals::new(workers);
        let tick = Duration::from_millis(100);
        // The first samples measure (the pool is not still yet): every busy worker is
        // read once the clocks have gone round.
        let mut read = std::collections::BTreeSet::new();
        for sample in 0..3 {
            let before = signals.clock_reads;
            signals.sample(&pool, tick);
            assert_eq!(signals.clock_reads - before, reads as u64, "{busy} busy");
            read.extend(signals.marked());
            if sample == 0 && busy > CPU_SAMPLE {
                assert!(signals.cpu_carry.is_some());
            }
        }
        assert_eq!(read.len(), busy.min(3 * reads), "{busy} busy");
        drop(release);
        pool.shutdown();
    }
}

/// Invariant: the CPU clock marks sit at their workers' positions in the busy list; when a
/// worker retires, its mark goes with it and every other worker keeps its own (the next
/// clock reading of a surviving worker counts from its mark, not from zero).
#[test]
fn a_retired_workers_clock_mark_goes_and_the_others_stay_with_their_workers() {
    let (pool, workers, release) = pool_blocked_at_a_gate(3, 3, 3);
    let mut signals = PoolSignals::new(workers);
    let tick = Duration::from_millis(100);
    signals.sample(&pool, tick);
    // Three busy workers (at most `CPU_SAMPLE`): every clock read, every worker marked.
    let before: Vec<(usize, Option<CpuMark>)> = signals
        .busy
        .iter()
        .map(|b| b.0)
        .zip(signals.marks.iter().copied())
        .collect();
    assert_eq!(signals.marked().len(), 3, "{before:?}");
    // One task finishes (the lock holder's `recv` returns) and its worker retires.
    pool.set_threads(2).unwrap();
    release.send(()).unwrap();
    // The live count drops before the retiree leaves pool-core's worker list: wait for
    // the list.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stats = Vec::new();
    while {
        pool.stats_with_workers(&mut stats);
        stats.len() > 2
    } {
        assert!(Instant::now() < deadline, "no worker retired");
        std::thread::yield_now();
    }
    signals.busy_time(&stats, tick);
    assert_eq!(signals.marks.len(), 2);
    assert_eq!(signals.busy.len(), 2);
    for (b, mark) in signals.busy.iter().zip(&signals.marks) {
        let kept = before.iter().find(|(index, _)| *index == b.0).unwrap().1;
        assert_eq!(*mark, kept, "worker {}", b.0);
        assert!(mark.is_some());
    }
    let live: Vec<usize> = stats.iter().map(|w| w.index).collect();
    assert_eq!(signals.marked(), live);
    drop(release);
    pool.shutdown();
}

/// Invariant: the snapshot dates the queue by the samples themselves (pool-core's
/// `OldestWait`): the first sample has nothing to date the queued tasks by, a later one
/// reads at least the time since the first (the tasks queued then are still queued), and
/// the figure shows in the snapshot's line; with nothing queued it is zero again.
#[test]
fn the_snapshot_carries_how_long_the_oldest_queued_task_has_waited() {
    // One worker blocked at the gate, two tasks queued behind it.
    let (pool, workers, release) = pool_blocked_at_a_gate(1, 3, 1);
    let mut signals = PoolSignals::new(workers);
    let first = signals.sample(&pool, Duration::from_millis(100));
    assert_eq!((first.queued, first.oldest_wait), (2, Duration::ZERO));
    let after_first = Instant::now();
    // The event asserted is time passing: spin on the clock until 2 ms have.
    while after_first.elapsed() < Duration::from_millis(2) {
        std::hint::spin_loop();
    }
    let second = signals.sample(&pool, Duration::from_millis(100));
    let since_first = after_first.elapsed();
    assert_eq!(second.queued, 2);
    assert!(
        second.oldest_wait >= Duration::from_millis(2),
        "{:?}",
        second.oldest_wait
    );
    assert!(second.oldest_wait <= since_first + Duration::from_secs(1));
    assert!(second.to_string().contains(" wait "), "{second}");
    drop(release);
    assert!(pool.wait_idle(Duration::from_secs(30)));
    let drained = signals.sample(&pool, Duration::from_millis(100));
    assert_eq!(drained.oldest_wait, Duration::ZERO);
    assert!(!drained.to_string().contains(" wait "), "{drained}");
    pool.shutdown();
}

/// Invariant: the host CPU refresh is timed by the clock reading the sample hands it (the
/// sample's one reading), not by a reading of its own: due exactly `HOST_CPU_EVERY` after
/// the last refresh by that clock.
#[cfg(feature = "sysinfo")]
#[test]
fn the_host_refresh_is_timed_by_the_samples_one_clock_reading() {
    let mut signals = PoolSignals::new(WorkerThreads::new());
    let every = HOST_CPU_EVERY.max(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
    let t0 = Instant::now();
    signals.cpu_refreshes = 2;
    signals.last_cpu_refresh = Some(t0);
    signals.refresh_system(t0 + every - Duration::from_nanos(1));
    assert_eq!(signals.cpu_refreshes, 2);
    assert_eq!(signals.last_cpu_refresh, Some(t0));
    signals.refresh_system(t0 + every);
    assert_eq!(signals.cpu_refreshes, 3);
    assert_eq!(signals.last_cpu_refresh, Some(t0 + every));
    // A reading from before the last refresh (none is, but the clock is the caller's) is
    // not due: the age saturates at zero.
    signals.refresh_system(t0);
    assert_eq!(signals.cpu_refreshes, 3);
}

/// The process's CPU at the cores asks for the split when the workers' old clocks do not
/// (W4's CPU phase at 64 threads: 0.3 cores from them, 1.9 from the process).
#[test]
fn the_processs_cpu_at_the_cores_asks_for_the_split() {
    assert!(!saturating(0.3, None, 2));
    assert!(!saturating(0.3, Some(0.6), 2));
    assert!(saturating(0.3, Some(1.9), 2));
    assert!(saturating(1.6, None, 2));
}

/// The sampled workers' states (a `stat` re-read each) are taken only where they may
/// correct the run-queue share: not for light workers on a host with a CPU free.
#[test]
fn light_workers_on_a_free_host_are_sampled_without_their_states_every_other_tick() {
    assert!(Split::Measure.states());
    assert!(!Split::MeasureElseBlocked.states());
    assert!(!Split::Unknown.states());
    assert!(!Split::Blocked.states());
    // Spinners (over a quarter of the cores) on a host whose stale reading says "free":
    // measured with their states (W4's guard).
    assert!(off_cpu_split(Some(0.3), 64, 2, 1.9, None, true).states());
    assert!(!off_cpu_split(Some(0.3), 64, 2, 0.1, None, true).states());
    // Their `schedstat` pair spans at least 150 ms (every other tick at 100 ms), others'
    // 50 ms (every tick); the share stands between readings.
    assert_eq!(
        off_cpu_split(Some(0.3), 64, 2, 0.1, None, true).pair_min(),
        SCHED_PAIR_LIGHT
    );
    assert_eq!(
        off_cpu_split(Some(0.3), 64, 2, 1.9, None, true).pair_min(),
        SCHED_PAIR_MIN
    );
    assert_eq!(
        off_cpu_split(Some(0.95), 64, 2, 0.1, None, true).pair_min(),
        SCHED_PAIR_MIN
    );
    assert!(SCHED_PAIR_LIGHT < SHARE_VALID);
    assert!(SCHED_PAIR_LIGHT + SCHED_PAIR_LIGHT / 2 <= SHARE_SPAN);
}

#[test]
fn mostly_asleep_states_stand_for_the_split_before_the_first_share() {
    let ms = Duration::from_millis;
    let states = |runnable, blocked| WorkerStates { runnable, blocked };
    // W3's ramp at its second tick: 4 workers busy 10 ms each, 8.5 ms of it on a CPU, 4 of
    // 4 asleep: all their off-CPU time is blocked.
    let w3 = states_wait_share(states(0, 4), ms(40), Duration::from_micros(8500));
    assert_eq!(w3, Some(0.0));
    // 6 of 8 asleep, on a CPU a tenth of their busy time: 75 of 90 ms off the CPU blocked,
    // the other 15 ms queued.
    let share = states_wait_share(states(2, 6), ms(100), ms(10)).unwrap();
    assert!((share - 15.0 / 90.0).abs() < 1e-9, "{share}");
    // Not mostly asleep, too few states, or no off-CPU time: no share (wait for the pair).
    assert_eq!(states_wait_share(states(1, 2), ms(40), ms(8)), None);
    assert_eq!(states_wait_share(states(0, 2), ms(40), ms(8)), None);
    assert_eq!(states_wait_share(states(0, 4), ms(40), ms(40)), None);
    assert_eq!(states_wait_share(states(0, 4), ms(40), ms(50)), None);
}

/// Off-CPU time is blocked without a measurement only while a CPU is surely free: the
/// host reading below 90% and no more of our workers busy than cores. A free reading with
/// our workers outnumbering the cores is measured, needed or not (it may be stale); until
/// the first pair, light workers count as blocked.
#[test]
fn off_cpu_time_is_blocked_only_while_a_cpu_is_surely_free() {
    // (host, busy, cores used by the clocks, the process's CPU, needed) on 2 cores.
    let cases = [
        ((Some(0.3), 2, 1.9, None, true), Split::Blocked),
        ((Some(0.3), 2, 1.9, None, false), Split::Blocked),
        ((Some(0.3), 3, 1.9, None, true), Split::Measure),
        ((Some(0.3), 3, 1.9, None, false), Split::Measure),
        ((Some(0.3), 64, 0.1, None, true), Split::MeasureElseBlocked),
        ((Some(0.95), 64, 0.1, None, true), Split::Measure),
        // Light by the clocks while the process fills the cores (the clocks stale after
        // a trim, the host reading a second old): measured, not presumed blocked.
        ((Some(0.36), 12, 0.48, Some(1.96), true), Split::Measure),
        // A sleep phase's process (its submitting thread among it) below the cores, or
        // a figure that is no number: light.
        (
            (Some(0.36), 12, 0.1, Some(1.04), true),
            Split::MeasureElseBlocked,
        ),
        (
            (Some(0.36), 12, 0.1, Some(f64::NAN), true),
            Split::MeasureElseBlocked,
        ),
        ((Some(0.95), 1, 0.0, None, false), Split::Unknown),
        ((None, 64, 0.1, None, false), Split::Unknown),
        ((None, 64, 0.1, None, true), Split::Measure),
    ];
    for ((host, busy, used, process, needed), split) in cases {
        assert_eq!(
            off_cpu_split(host, busy, 2, used, process, needed),
            split,
            "host {host:?}, {busy} busy, {used} cores used, process {process:?}, needed {needed}"
        );
    }
}
