//! The harness under every adaptive row: the work a task does, the closed loop that drives a
//! system through a scenario's phases (`drive`), what a run measured (`Run`), the outside CPU
//! hog, and one runner per system (a fixed pool, ours, tokio, rusty_pool).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use policy_adaptive::AdaptivePool;
use pool_core::{Executor, Job};

use super::closed_loop::{ClosedLoop, POLL};
use crate::peers::{Elastic, Kind, Pool};

const BUCKET: Duration = Duration::from_millis(100);
/// A parent waiting longer than this for its child counts as stuck (a deadlocked fixed pool).
const NESTED_PATIENCE: Duration = Duration::from_secs(1);

/// What one task does.
#[derive(Clone, Copy, Debug)]
pub(super) enum Work {
    Sleep(Duration),
    Cpu,
    CpuThenSleep(Duration),
    Nested(Duration),
    /// Nothing submitted: the tasks in flight finish and are not replaced.
    Idle,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Phase {
    pub(super) work: Work,
    pub(super) length: Duration,
}

/// ~1 ms of arithmetic: a fixed number of xorshift rounds, calibrated once per process.
///
/// The calibration takes the fastest of `CALIBRATION_RUNS` timed runs: one run timed by the
/// wall clock counts any preemption in it as work, and a run slowed twofold made every task of
/// that `compare` run half as long (a fixed 2-thread pool ran the "1 ms" tasks at 1675 tasks/s
/// in one run and at 4583 in another, on the same VM, on the same day). W3's blocking ratio,
/// and so the size its rows need, moved with it.
fn cpu_work() {
    const CALIBRATION_RUNS: usize = 9;
    const CALIBRATION_ROUNDS: u64 = 200_000;
    static ITERATIONS: OnceLock<u64> = OnceLock::new();
    let iterations = *ITERATIONS.get_or_init(|| {
        let fastest = (0..CALIBRATION_RUNS)
            .map(|_| {
                let start = Instant::now();
                spin(CALIBRATION_ROUNDS);
                start.elapsed()
            })
            .min()
            .unwrap_or(Duration::from_millis(1));
        let per_iteration = fastest.as_secs_f64().max(1e-9) / CALIBRATION_ROUNDS as f64;
        ((1e-3 / per_iteration) as u64).max(1)
    });
    spin(iterations);
}

fn spin(iterations: u64) -> u64 {
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    for _ in 0..black_box(iterations) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    black_box(x)
}

fn live_threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |dir| dir.count())
}

/// One system's run over all phases.
#[derive(Debug, Default)]
pub(super) struct Run {
    /// Completions per 100 ms bucket, per phase.
    pub(super) buckets: Vec<Vec<u64>>,
    pub(super) thread_seconds: f64,
    pub(super) peak_threads: usize,
    pub(super) stuck: u64,
}

impl Run {
    pub(super) fn rate(&self, phase: usize, length: Duration) -> f64 {
        self.buckets[phase].iter().sum::<u64>() as f64 / length.as_secs_f64()
    }

    /// Completions per second over the phases that submit work (all but idle gaps).
    pub(super) fn busy_rate(&self, phases: &[Phase]) -> f64 {
        let busy = || {
            phases
                .iter()
                .enumerate()
                .filter(|(_, p)| !matches!(p.work, Work::Idle))
        };
        let done: u64 = busy()
            .map(|(i, _)| self.buckets[i].iter().sum::<u64>())
            .sum();
        done as f64 / busy().map(|(_, p)| p.length.as_secs_f64()).sum::<f64>()
    }

    pub(super) fn total_rate(&self, phases: &[Phase]) -> f64 {
        let done: u64 = self.buckets.iter().flatten().sum();
        done as f64 / phases.iter().map(|p| p.length.as_secs_f64()).sum::<f64>()
    }

    /// Seconds from the phase start until a 3-bucket window first reaches `target` per second.
    pub(super) fn time_to_reach(&self, phase: usize, target: f64) -> Option<f64> {
        let buckets = &self.buckets[phase];
        let per_bucket = target * BUCKET.as_secs_f64();
        (2..buckets.len())
            .find(|&i| (buckets[i - 2] + buckets[i - 1] + buckets[i]) as f64 >= 3.0 * per_bucket)
            .map(|i| (i + 1) as f64 * BUCKET.as_secs_f64())
    }
}

fn make_job(
    work: Work,
    executor: &Arc<dyn Executor>,
    done: &mpsc::Sender<()>,
    stuck: &Arc<AtomicU64>,
) -> Job {
    let done = done.clone();
    match work {
        Work::Sleep(d) => Box::new(move || {
            std::thread::sleep(d);
            let _ = done.send(());
        }),
        Work::Cpu => Box::new(move || {
            cpu_work();
            let _ = done.send(());
        }),
        Work::CpuThenSleep(d) => Box::new(move || {
            cpu_work();
            std::thread::sleep(d);
            let _ = done.send(());
        }),
        Work::Nested(d) => {
            // Weak: the driver holds the only strong reference once the run is drained, so
            // the system is dropped (and its threads joined) by the driver, never on a worker.
            let executor: Weak<dyn Executor> = Arc::downgrade(executor);
            let stuck = stuck.clone();
            Box::new(move || {
                let (child_done, child_wait) = mpsc::channel::<()>();
                if let Some(executor) = executor.upgrade() {
                    // A refused child never reports: its parent counts as stuck.
                    let _ = executor.execute(Box::new(move || {
                        std::thread::sleep(d);
                        let _ = child_done.send(());
                    }));
                }
                if child_wait.recv_timeout(NESTED_PATIENCE).is_err() {
                    stuck.fetch_add(1, Ordering::Relaxed);
                }
                let _ = done.send(());
            })
        }
        Work::Idle => unreachable!("an idle phase submits nothing"),
    }
}

/// Busy loops in child processes (`sh -c 'while :; do :; done'`), killed on drop: CPU use
/// outside this process, which the controller must not mistake for its own workers'.
pub(super) struct CpuHog(Vec<std::process::Child>);

impl CpuHog {
    pub(super) fn start(processes: usize) -> CpuHog {
        CpuHog(
            (0..processes)
                .filter_map(|_| {
                    std::process::Command::new("sh")
                        .args(["-c", "while :; do :; done"])
                        .spawn()
                        .ok()
                })
                .collect(),
        )
    }
}

impl Drop for CpuHog {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Drives `executor` through `phases` with `in_flight` tasks outstanding; `baseline` is the
/// process's thread count before the system was built.
fn drive(executor: &Arc<dyn Executor>, phases: &[Phase], in_flight: usize, baseline: usize) -> Run {
    let mut client = ClosedLoop::new();
    let stuck = Arc::new(AtomicU64::new(0));
    let mut run = Run {
        buckets: phases
            .iter()
            .map(|p| vec![0; (p.length.as_millis() / BUCKET.as_millis()).max(1) as usize])
            .collect(),
        ..Run::default()
    };
    let starts: Vec<Duration> = phases
        .iter()
        .scan(Duration::ZERO, |at, p| {
            let start = *at;
            *at += p.length;
            Some(start)
        })
        .collect();
    let total: Duration = phases.iter().map(|p| p.length).sum();
    let phase_at = |t: Duration| starts.iter().rposition(|&s| s <= t).unwrap_or(0);

    let start = Instant::now();
    let mut last_sample = start;
    loop {
        let t = start.elapsed();
        if t >= total {
            break;
        }
        let phase = phase_at(t);
        // Top up to `in_flight` (at the start, and after an idle phase). A refused task is
        // offered again after the next wait.
        let work = phases[phase].work;
        if !matches!(work, Work::Idle) {
            client.top_up(in_flight, |done| {
                executor
                    .execute(make_job(work, executor, done, &stuck))
                    .is_ok()
            });
        }
        let received = client.completed_within(POLL);
        let now = Instant::now();
        let t = now - start;
        if t >= total {
            break;
        }
        let phase = phase_at(t);
        if received {
            let bucket = ((t - starts[phase]).as_millis() / BUCKET.as_millis()) as usize;
            let buckets = &mut run.buckets[phase];
            let last = buckets.len() - 1;
            buckets[bucket.min(last)] += 1;
        }
        if now - last_sample >= Duration::from_millis(20) {
            let extra = live_threads().saturating_sub(baseline);
            run.thread_seconds += extra as f64 * (now - last_sample).as_secs_f64();
            run.peak_threads = run.peak_threads.max(extra);
            last_sample = now;
        }
    }
    // Let the tasks in flight finish (not counted) so the system shuts down clean.
    let drain_until = Instant::now() + Duration::from_secs(10);
    while client.outstanding() > 0 && Instant::now() < drain_until {
        client.completed_within(Duration::from_millis(50));
    }
    run.stuck = stuck.load(Ordering::Relaxed);
    run
}

/// Waits (up to 10 s) until no thread named `prefix…` is left. A system's threads must be gone
/// before the next system's baseline is counted, and its drop does not promise that: rusty_pool's
/// `shutdown_join` waits for the work, not for the threads (62 of W1's were still there when W2's
/// first system counted its baseline, which then read 0 thread-seconds: every thread it had
/// fell under the baseline as W1's left), and a thread whose join has returned can still be
/// listed in `/proc` for a moment (one of a fixed 16-thread pool's was, after its shutdown).
fn await_exit(prefix: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    while crate::procfs::thread_count(prefix).is_some_and(|n| n > 0) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Builds a peer with `build`, given its thread-name prefix `name`, drives it, drops it and
/// waits for its threads to be gone.
fn run_peer(
    name: &str,
    build: impl FnOnce(&str) -> Pool,
    phases: &[Phase],
    in_flight: usize,
) -> Run {
    let baseline = live_threads();
    let pool: Arc<dyn Executor> = Arc::new(build(name));
    let run = drive(&pool, phases, in_flight, baseline);
    drop(pool);
    await_exit(name);
    run
}

pub(super) fn run_fixed(threads: usize, phases: &[Phase], in_flight: usize) -> Run {
    run_peer(
        "adapt-fixed-",
        |name| Pool::build(Kind::Ours, threads, name),
        phases,
        in_flight,
    )
}

/// Our run and what only ours reports.
pub(super) struct Ours {
    pub(super) run: Run,
    /// Seconds from the end of the load until the pool was back to `min`.
    pub(super) back_to_min: Option<f64>,
    /// The most workers the controller asked for (the thread peak also counts the controller).
    pub(super) peak_workers: usize,
    pub(super) reversals: u64,
    /// The controller's CPU per tick and as a share of one core over the run (load and idle).
    pub(super) controller: Option<(Duration, f64)>,
}

/// Ours; also measures how long the pool took to get back to `min` once the load stopped.
pub(super) fn run_adaptive(
    phases: &[Phase],
    in_flight: usize,
    idle_wait: Duration,
    threads_per_core: Option<f64>,
) -> Ours {
    // The workers and the controller (`adapt-ours--controller`).
    const NAME: &str = "adapt-ours-";
    let baseline = live_threads();
    let mut config = policy_adaptive::Config::default();
    if let Some(threads) = threads_per_core {
        config.cpu_threads_per_core = threads;
    }
    let pool = Arc::new(
        AdaptivePool::builder()
            .config(config)
            .min(1)
            .max(128)
            .thread_name(NAME)
            .build()
            .expect("adaptive pool"),
    );
    let started = Instant::now();
    let run = drive(
        &(pool.clone() as Arc<dyn Executor>),
        phases,
        in_flight,
        baseline,
    );
    let idle_from = Instant::now();
    let mut back_to_min = None;
    while idle_from.elapsed() < idle_wait {
        if pool.stats().live_threads == 1 {
            back_to_min = Some(idle_from.elapsed().as_secs_f64());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let history = pool.history();
    if std::env::var_os("ADAPTIVE_TRACE").is_some() {
        // The scaling history, for reading a row's sizes over time (`compare` prints the table
        // on stdout; this goes to stderr).
        for e in &history {
            eprintln!(
                "adaptive trace: {:>7.3} s tick {:>3}: {:>3} -> {:<3} {}",
                e.at.as_secs_f64(),
                e.tick,
                e.from,
                e.to,
                e.reason
            );
        }
        eprintln!("adaptive trace: end");
    }
    let peak_workers = history.iter().map(|e| e.to).max().unwrap_or(1).max(1);
    let reversals = history
        .windows(2)
        .filter(|w| (w[0].to > w[0].from) != (w[1].to > w[1].from))
        .count() as u64;
    let controller = pool.controller_cpu().and_then(|cpu| {
        let ticks = u32::try_from(pool.ticks()).ok().filter(|&t| t > 0)?;
        Some((
            cpu / ticks,
            cpu.as_secs_f64() / started.elapsed().as_secs_f64(),
        ))
    });
    drop(pool);
    await_exit(NAME);
    Ours {
        run,
        back_to_min,
        peak_workers,
        reversals,
        controller,
    }
}

/// tokio's default blocking pool (up to 512 threads) beside a 1-worker runtime.
pub(super) fn run_tokio(phases: &[Phase], in_flight: usize) -> Run {
    run_peer(
        "adapt-tokio-",
        |name| Pool::tokio_elastic(Elastic::tokio_default(1), name),
        phases,
        in_flight,
    )
}

/// rusty_pool with the same bounds as ours: 1 to 128 threads, 2 s keep-alive.
pub(super) fn run_rusty(phases: &[Phase], in_flight: usize) -> Run {
    let bounds = Elastic {
        core: 1,
        max: 128,
        keep_alive: Duration::from_secs(2),
    };
    run_peer(
        "adapt-rusty-",
        |name| Pool::rusty_elastic(bounds, name),
        phases,
        in_flight,
    )
}
