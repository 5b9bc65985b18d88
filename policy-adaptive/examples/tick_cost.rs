//! What one controller tick costs with the real signals (`PoolSignals`: the pool's counters and
//! per-worker busy time, the process CPU clock, a bounded `schedstat` sample, memory and host
//! CPU from sysinfo) plus the decision, at 1, 64 and 256 workers, parked (idle) and busy
//! (every worker blocked in a task and as many tasks queued: with a busy host, the case where
//! the `schedstat` sample is read) and churning (`compare`'s "workers busy, tasks finishing"
//! hold: 2N tasks each blocking 20 ms and queueing itself again, so the counters move every
//! tick and every tick measures) and few busy (4 workers blocked in a task, the rest parked,
//! nothing queued: a pool grown for a burst and not yet shrunk, where the CPU clock sample
//! walks the parked workers for its candidates), and that cost as a share of one core at the
//! default 100 ms interval.
//!
//! Run with `cargo run --release -p policy-adaptive --example tick_cost`; arguments narrow it to
//! one configuration (`tick_cost 256 busy`, `tick_cost 64 parked`, `tick_cost 256 churn`,
//! `tick_cost 256 few`), for
//! example to count the
//! instructions of that tick alone with
//! `valgrind --tool=callgrind --toggle-collect='*PoolSignals*sample*' ...`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use policy_adaptive::{decide, Config, ControllerState, PoolSignals, Signals, WorkerThreads};
use pool_core::ThreadPool;

/// 5 s of ticks at the default interval per configuration.
const TICKS: u32 = 50;

/// The calling thread's CPU time, to the nanosecond (`CLOCK_THREAD_CPUTIME_ID`): the machine
/// may be shared, so wall time would count other processes' turns on the core. (`schedstat`
/// only moves at context switches and scheduler ticks: too coarse for one tick.)
#[cfg(unix)]
fn thread_cpu() -> Option<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable `timespec` for the duration of the call.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    (status == 0).then(|| Duration::new(now.tv_sec as u64, now.tv_nsec as u32))
}

#[cfg(not(unix))]
fn thread_cpu() -> Option<Duration> {
    None
}

/// What a configuration's ticks cost.
struct Cost {
    /// Mean wall time per tick.
    wall: Duration,
    /// Mean and median CPU time per tick, where the thread CPU clock is known. The mean is the
    /// share of a core; the median shows how much of it is a few ticks preempted or slowed by
    /// the other processes of a shared machine.
    cpu: Option<(Duration, Duration)>,
}

/// How the workers are held while the ticks are measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hold {
    /// Every worker parked.
    Parked,
    /// Every worker blocked in a task, as many queued behind them.
    Busy,
    /// 2N tasks each blocking 20 ms and queueing itself again: busy workers, tasks finishing.
    Churn,
    /// `FEW` workers blocked in a task, the others parked, nothing queued.
    Few,
}

/// Workers blocked in a task in the `Few` hold.
const FEW: usize = 4;

/// A task of the churning hold: blocks 20 ms, then queues itself again until `stop`.
fn churn(pool: Arc<ThreadPool>, stop: Arc<AtomicBool>) {
    let again = Arc::clone(&pool);
    let _ = pool.spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        if !stop.load(Ordering::Relaxed) {
            churn(again, stop);
        }
    });
}

/// What ticks cost with `workers` workers held as `hold`.
fn tick_cost(workers: usize, hold: Hold) -> Result<Cost, Box<dyn std::error::Error>> {
    let busy = hold == Hold::Busy;
    let few = hold == Hold::Few;
    let registry = WorkerThreads::new();
    let pool = Arc::new(
        registry
            .recording(ThreadPool::builder().threads(workers))
            .build()?,
    );
    let stop = Arc::new(AtomicBool::new(false));
    // Every worker has recorded its thread id once the pool has run as many tasks as workers
    // and gone idle: wait for that event, with a generous timeout.
    for _ in 0..workers {
        pool.spawn(|| ())?;
    }
    pool.wait_idle(Duration::from_secs(30));
    // Busy: each worker blocks on the channel until the measurement ends (dropping the sender).
    let (release, blocked) = std::sync::mpsc::channel::<()>();
    let blocked = std::sync::Arc::new(std::sync::Mutex::new(blocked));
    let (started_tx, started) = std::sync::mpsc::channel::<()>();
    if busy || few {
        // Every worker blocked, and as many tasks again queued behind them: a backlog, so
        // the signals take their dearest path (the run-queue sample, when the host is busy).
        // Or only `FEW` blocked, nothing queued.
        let tasks = if few { FEW.min(workers) } else { 2 * workers };
        for _ in 0..tasks {
            let (blocked, started_tx) = (blocked.clone(), started_tx.clone());
            pool.spawn(move || {
                let _ = started_tx.send(());
                // One worker holds the lock in `recv`, the others wait for the lock: all blocked.
                let _ = blocked.lock().map(|rx| rx.recv());
            })?;
        }
        for _ in 0..if few { FEW.min(workers) } else { workers } {
            started.recv_timeout(Duration::from_secs(30))?;
        }
    }
    if hold == Hold::Churn {
        for _ in 0..2 * workers {
            churn(Arc::clone(&pool), Arc::clone(&stop));
        }
    }
    let config = Config::default();
    let mut signals = PoolSignals::new(registry);
    let mut state = ControllerState::new();
    // One warm-up tick: the first sample opens the files sysinfo keeps.
    let _ = signals.sample(&pool, config.interval);
    let mut wall = Duration::ZERO;
    let mut cpu = Some(Vec::new());
    for _ in 0..TICKS {
        // At the real pace: sysinfo refreshes memory and host CPU every few ticks, so
        // back-to-back ticks would leave that cost out, and a tick after a sleep runs with cold
        // caches, as the controller's do. The sleep's own cost (a timer and a wake-up, the same
        // whatever the signals) is not counted.
        std::thread::sleep(config.interval);
        let cpu_start = thread_cpu();
        let tick = Instant::now();
        let snapshot = signals.sample(&pool, config.interval);
        std::hint::black_box(decide(&snapshot, &mut state, &config));
        wall += tick.elapsed();
        cpu = cpu
            .zip(thread_cpu().zip(cpu_start))
            .map(|(mut each, (end, start))| {
                each.push(end.saturating_sub(start));
                each
            });
        if std::env::var_os("TICK_COST_EACH").is_some() {
            eprint!(
                "{:?} ",
                thread_cpu()
                    .zip(cpu_start)
                    .map(|(e, s)| e - s)
                    .unwrap_or_default()
            );
        }
    }
    let cpu = cpu.map(|mut each| {
        each.sort();
        (each.iter().sum::<Duration>() / TICKS, each[each.len() / 2])
    });
    drop(release);
    stop.store(true, Ordering::Relaxed);
    pool.shutdown();
    Ok(Cost {
        wall: wall / TICKS,
        cpu,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let interval = Config::default().interval;
    let mut args = std::env::args().skip(1);
    let only_workers: Option<usize> = args.next().map(|n| n.parse()).transpose()?;
    let only_hold = match args.next().as_deref() {
        None => None,
        Some("busy") => Some(Hold::Busy),
        Some("parked") => Some(Hold::Parked),
        Some("churn") => Some(Hold::Churn),
        Some("few") => Some(Hold::Few),
        Some(other) => {
            return Err(
                format!("expected `busy`, `parked`, `churn` or `few`, not {other:?}").into(),
            )
        }
    };
    let sizes = only_workers.map_or(vec![1, 64, 256], |n| vec![n]);
    for hold in [Hold::Parked, Hold::Busy, Hold::Churn, Hold::Few] {
        if only_hold.is_some_and(|h| h != hold) {
            continue;
        }
        for &workers in &sizes {
            let Cost { wall, cpu } = tick_cost(workers, hold)?;
            let (mean, median) = cpu.unwrap_or((wall, wall));
            println!(
                "{workers:>4} workers {:>15}: {mean:>8.1?} CPU per tick (median {median:.1?}, {wall:.1?} wall) = {:.3}% of a core at a {interval:?} interval",
                match hold {
                    Hold::Parked => "parked",
                    Hold::Busy => "blocked+backlog",
                    Hold::Churn => "churning",
                    Hold::Few => "4 busy, rest parked",
                },
                mean.as_secs_f64() / interval.as_secs_f64() * 100.0
            );
        }
    }
    Ok(())
}
