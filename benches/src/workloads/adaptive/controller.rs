//! The controller-cost rows: the controller thread's CPU per tick and per second with 1, 64 and
//! 256 workers held parked, blocked, busy on tasks that finish, idle at `min`, and busy with
//! clients outside the pool, beside the host's floor (one bare timed wait of the interval).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use policy_adaptive::AdaptivePool;

use super::closed_loop::{ClosedLoop, POLL};
use crate::{Config, Row};

/// How the controller-cost pool is held while the controller runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hold {
    /// `min = max`, every worker parked: only the signals and the decision run, every interval.
    Parked,
    /// `min = max`, every worker blocked in a task with as many queued behind them.
    Busy,
    /// `min = max`, every worker busy and as many tasks queued, but the tasks finish (each
    /// blocks 20 ms and queues itself again): the counters move every tick, so the still-pool
    /// rule (`policy-adaptive/src/signals/still.rs`) never reuses a split and every tick
    /// measures.
    Churning,
    /// Every worker parked at `min`, with room to grow (`max = 2 × min`): the quiet stretch
    /// (`policy-adaptive/src/stretch.rs`) lengthens the wait up to 4 intervals.
    Idle,
    /// `min` workers with room to grow (`max = 2 × min`), kept busy by a client thread outside
    /// the pool that answers each completion with a new task (as many in flight as workers,
    /// each blocking 20 ms): the closed loop of `compare`'s W rows, held. Each completion
    /// leaves a task queued for an instant beside the worker that just finished, so the armed
    /// pool's early looks find nothing to grow for and skip (`EARLY_BACKOFF_MAX` in
    /// `policy-adaptive/src/controller/schedule.rs`).
    Outside,
}

/// The controller's CPU per tick and per second of wall time with `workers` workers held as
/// `hold` over `ticks` ticks at the default 100 ms interval.
fn controller_cost(workers: usize, hold: Hold, ticks: u64) -> Option<(Duration, Duration)> {
    let max = if matches!(hold, Hold::Idle | Hold::Outside) {
        2 * workers
    } else {
        workers
    };
    let pool = Arc::new(
        AdaptivePool::builder()
            .min(workers)
            .max(max)
            .build()
            .expect("adaptive pool"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (release, blocked) = mpsc::channel::<()>();
    let blocked = Arc::new(std::sync::Mutex::new(blocked));
    let (started_tx, started) = mpsc::channel::<()>();
    let mut client = None;
    if hold == Hold::Busy {
        // Every worker blocked, and as many tasks again queued behind them: a backlog, so
        // the signals take their dearest path (the run-queue sample, when the host is busy).
        for _ in 0..2 * workers {
            let (blocked, started_tx) = (blocked.clone(), started_tx.clone());
            let _ = pool.spawn(move || {
                let _ = started_tx.send(());
                // One worker waits in `recv`, the others for the lock: all blocked, all busy.
                let _ = blocked.lock().map(|rx| rx.recv());
            });
        }
        for _ in 0..workers {
            started.recv_timeout(Duration::from_secs(30)).ok()?;
        }
    } else if hold == Hold::Churning {
        for _ in 0..2 * workers {
            churn(Arc::clone(&pool), Arc::clone(&stop));
        }
    } else if hold == Hold::Outside {
        client = Some(outside_client(&pool, workers, &stop));
    } else {
        pool.wait_idle(Duration::from_secs(30));
    }
    // Measure from the tick after this one: the first ticks see the workers start (and an idle
    // pool's wait stretches only after a few quiet ticks).
    let wait_ticks = |n: u64| {
        let until = Instant::now() + Duration::from_secs(60);
        while pool.ticks() < n && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_ticks(pool.ticks() + if hold == Hold::Idle { 6 } else { 2 });
    let (cpu0, ticks0, wall0) = (pool.controller_cpu()?, pool.ticks(), Instant::now());
    wait_ticks(ticks0 + ticks);
    let (cpu1, ticks1, wall) = (pool.controller_cpu()?, pool.ticks(), wall0.elapsed());
    drop(release);
    stop.store(true, Ordering::Relaxed);
    if let Some(client) = client {
        let _ = client.join();
    }
    pool.shutdown();
    let ticks = u32::try_from(ticks1 - ticks0).ok().filter(|&t| t > 0)?;
    let cpu = cpu1.saturating_sub(cpu0);
    Some((cpu / ticks, cpu.div_f64(wall.as_secs_f64().max(1e-9))))
}

/// A task of the churning hold: blocks 20 ms, then queues itself again until `stop`.
fn churn(pool: Arc<AdaptivePool>, stop: Arc<AtomicBool>) {
    let again = Arc::clone(&pool);
    let _ = pool.spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        if !stop.load(Ordering::Relaxed) {
            churn(again, stop);
        }
    });
}

/// The client of the `Outside` hold: a thread outside the pool keeping `in_flight` tasks of
/// 20 ms in flight, a new one for each completion, until `stop`.
fn outside_client(
    pool: &Arc<AdaptivePool>,
    in_flight: usize,
    stop: &Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let (pool, stop) = (Arc::clone(pool), Arc::clone(stop));
    std::thread::spawn(move || {
        let mut client = ClosedLoop::new();
        while !stop.load(Ordering::Relaxed) {
            let took = client.top_up(in_flight, |done| {
                let done = done.clone();
                pool.spawn(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    let _ = done.send(());
                })
                .is_ok()
            });
            if !took {
                return;
            }
            client.completed_within(POLL);
        }
    })
}

/// The host's floor under every per-tick figure: the CPU one thread spends per bare timed wait
/// of `interval` (a condvar wait that times out, as the controller's, then its wake-up), over
/// `waits` waits with nothing done between them. Any controller that wakes once an interval
/// pays at least this: on the 2-core test VM, 30-37 µs on one host and 81-148 µs on another
/// (2026-12-02), whatever the timer slack, so it is measured in the same run as the holds.
fn wake_floor(interval: Duration, waits: u32) -> Option<Duration> {
    const NAME: &str = "wake-floor";
    let waiter = std::thread::Builder::new()
        .name(NAME.into())
        .spawn(move || {
            let lock = std::sync::Mutex::new(());
            let wake = std::sync::Condvar::new();
            let (start, _) = crate::procfs::threads_cpu_ns(NAME)?;
            let mut guard = lock.lock().ok()?;
            for _ in 0..waits {
                let until = Instant::now() + interval;
                let mut now = Instant::now();
                while now < until {
                    guard = wake.wait_timeout(guard, until - now).ok()?.0;
                    now = Instant::now();
                }
            }
            drop(guard);
            let (end, _) = crate::procfs::threads_cpu_ns(NAME)?;
            Some(Duration::from_nanos(end.saturating_sub(start)) / waits.max(1))
        });
    waiter.ok()?.join().ok()?
}

/// Two rows per pool size: the controller's CPU per tick, and per second of wall time, parked,
/// busy, and idle with room to grow (the quiet stretch), each beside the host's wake-up floor.
pub(super) fn controller_rows(config: &Config) -> Vec<Row> {
    let ticks = config.pick(40, 5);
    let interval = policy_adaptive::Config::default().interval;
    let mut rows = Vec::new();
    for workers in [1, 64, 256] {
        let mut per_tick = Row::new(
            format!("adaptive controller CPU per tick, {workers} workers"),
            "µs",
            false,
        );
        let mut per_second = Row::new(
            format!("adaptive controller CPU per second, {workers} workers"),
            "µs/s",
            false,
        );
        if let Some(floor) = wake_floor(interval, u32::try_from(ticks).unwrap_or(u32::MAX)) {
            let label = "reference: a bare timed wait of the interval, no controller (the floor)";
            let share = floor.as_secs_f64() / interval.as_secs_f64();
            per_tick.push(label, false, &[floor.as_secs_f64() * 1e6]);
            per_second.push(label, false, &[share * 1e6]);
        }
        for (hold, label) in [
            (Hold::Parked, "workers parked"),
            (Hold::Busy, "workers busy"),
            (Hold::Churning, "workers busy, tasks finishing"),
            (Hold::Idle, "idle at min, room to grow"),
            (
                Hold::Outside,
                "busy, clients outside the pool, room to grow",
            ),
        ] {
            // The stretched ticks are up to 4 intervals apart: half as many keep the row short.
            let ticks = if hold == Hold::Idle { ticks / 2 } else { ticks }.max(1);
            if let Some((tick, second)) = controller_cost(workers, hold, ticks) {
                let label = format!("policy-adaptive, {label}");
                per_tick.push(label.clone(), true, &[tick.as_secs_f64() * 1e6]);
                per_second.push(label, true, &[second.as_secs_f64() * 1e6]);
            }
        }
        rows.push(per_tick.with_note(format!(
            "mean over {ticks} ticks of the controller thread's CPU clock (its wait and \
             wake-up included); target <= 100 µs = 0.1% of a core at the 100 ms interval; the \
             reference is what one bare timed wait of the interval costs a thread on this host \
             (any controller ticking every interval pays it), so the ratio column is that floor \
             over our cheapest hold"
        )));
        rows.push(per_second.with_note(
            "the same CPU over the wall time: <= 1000 µs/s is 0.1% of a core; parked and busy (both kinds) \
             use min = max (every interval); idle at min with room to grow stretches its wait \
             to up to 4 intervals (policy-adaptive/src/stretch.rs); clients outside the pool \
             keep as many 20 ms tasks in flight as workers, with max = 2 x min, so the armed \
             pool's early looks run and skip between the ticks",
        ));
    }
    rows
}
