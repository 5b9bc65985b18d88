//! Workload rows for `adaptive`: policy-adaptive's `AdaptivePool` against every fixed pool size,
//! tokio's `spawn_blocking` and rusty_pool, on closed-loop scenarios (SPEC section 9).
//!
//! | scenario | each task |
//! |---|---|
//! | W1 | sleeps 5 ms (blocking I/O) |
//! | W2 | ~1 ms of fixed CPU work (an iteration count calibrated once, not a clock spin) |
//! | W3 | ~1 ms of CPU, then sleeps 4 ms |
//! | W4 | phases W1 -> W2 -> W3 -> W1 |
//! | W6 | a parent submits a child (sleeps 2 ms) to the same pool and waits for it |
//!
//! Closed loop: 64 tasks in flight (W6: 8 parents), each completion submits the next task,
//! for a short window per run (full mode 1.5 s, W4 1 s per phase; quick mode 0.2 s, too short
//! for the 100 ms controller to adapt: quick mode is a smoke test of the harness only). One round
//! per system (the sweep alone is 12 runs per scenario); the figures are single runs on a
//! shared machine, so read differences under ~10% as noise.
//!
//! Systems: ours is `AdaptivePool` (min 1, max 128, default 100 ms tick, 2 s keep-alive),
//! starting from 1 thread each run. The fixed pools are pool-core `ThreadPool`s of each size
//! of the sweep (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128; quick mode 2, 16, 64); the rows
//! show the best one. tokio `spawn_blocking` on a 1-worker runtime (blocking pool up to 512);
//! rusty_pool with core 1, max 128 and a 2 s keep-alive (the same bounds as ours). The fixed
//! pools are marked as peers so that the ratio is adaptive / best of (best fixed, tokio,
//! rusty_pool).
//!
//! Thread-seconds: the process's extra threads (`/proc/self/task` minus those before the
//! system was built), sampled every 20 ms and integrated over the window. Time to adapt: from
//! the start of a phase until a 300 ms moving window first reaches 90% of the best fixed
//! size's throughput in that phase.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use policy_adaptive::AdaptivePool;
use pool_core::ThreadPool;

use crate::{Config, Row};

type Job = Box<dyn FnOnce() + Send + 'static>;

const BUCKET: Duration = Duration::from_millis(100);
const FULL_SWEEP: [usize; 12] = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128];
const QUICK_SWEEP: [usize; 3] = [2, 16, 64];
/// A parent waiting longer than this for its child counts as stuck (a deadlocked fixed pool).
const NESTED_PATIENCE: Duration = Duration::from_secs(1);

/// What one task does.
#[derive(Clone, Copy, Debug)]
enum Work {
    Sleep(Duration),
    Cpu,
    CpuThenSleep(Duration),
    Nested(Duration),
}

#[derive(Clone, Copy, Debug)]
struct Phase {
    work: Work,
    length: Duration,
}

/// Anything that runs boxed jobs.
trait Spawner: Send + Sync {
    fn spawn(&self, job: Job);
}

struct Adaptive(Arc<AdaptivePool>);
struct Fixed(ThreadPool);
struct TokioBlocking(tokio::runtime::Runtime);
/// `Option` so that `Drop` can call rusty_pool's consuming `shutdown_join`.
struct Rusty(Option<rusty_pool::ThreadPool>);

impl Spawner for Adaptive {
    fn spawn(&self, job: Job) {
        let _ = self.0.spawn(job);
    }
}

impl Spawner for Fixed {
    fn spawn(&self, job: Job) {
        let _ = self.0.spawn(job);
    }
}

impl Spawner for TokioBlocking {
    fn spawn(&self, job: Job) {
        drop(self.0.spawn_blocking(job));
    }
}

impl Spawner for Rusty {
    fn spawn(&self, job: Job) {
        if let Some(pool) = &self.0 {
            pool.execute(job);
        }
    }
}

impl Drop for Rusty {
    fn drop(&mut self) {
        if let Some(pool) = self.0.take() {
            pool.shutdown_join();
        }
    }
}

/// ~1 ms of arithmetic: a fixed number of xorshift rounds, calibrated once per process.
fn cpu_work() {
    static ITERATIONS: OnceLock<u64> = OnceLock::new();
    let iterations = *ITERATIONS.get_or_init(|| {
        let start = Instant::now();
        spin(1_000_000);
        let per_iteration = start.elapsed().as_secs_f64() / 1e6;
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
struct Run {
    /// Completions per 100 ms bucket, per phase.
    buckets: Vec<Vec<u64>>,
    thread_seconds: f64,
    peak_threads: usize,
    stuck: u64,
}

impl Run {
    fn rate(&self, phase: usize, length: Duration) -> f64 {
        self.buckets[phase].iter().sum::<u64>() as f64 / length.as_secs_f64()
    }

    fn total_rate(&self, phases: &[Phase]) -> f64 {
        let done: u64 = self.buckets.iter().flatten().sum();
        done as f64 / phases.iter().map(|p| p.length.as_secs_f64()).sum::<f64>()
    }

    /// Seconds from the phase start until a 3-bucket window first reaches `target` per second.
    fn time_to_reach(&self, phase: usize, target: f64) -> Option<f64> {
        let buckets = &self.buckets[phase];
        let per_bucket = target * BUCKET.as_secs_f64();
        (2..buckets.len())
            .find(|&i| (buckets[i - 2] + buckets[i - 1] + buckets[i]) as f64 >= 3.0 * per_bucket)
            .map(|i| (i + 1) as f64 * BUCKET.as_secs_f64())
    }
}

fn make_job(
    work: Work,
    spawner: &Arc<dyn Spawner>,
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
            let spawner = spawner.clone();
            let stuck = stuck.clone();
            Box::new(move || {
                let (child_done, child_wait) = mpsc::channel::<()>();
                spawner.spawn(Box::new(move || {
                    std::thread::sleep(d);
                    let _ = child_done.send(());
                }));
                if child_wait.recv_timeout(NESTED_PATIENCE).is_err() {
                    stuck.fetch_add(1, Ordering::Relaxed);
                }
                let _ = done.send(());
            })
        }
    }
}

/// Drives `spawner` through `phases` with `in_flight` tasks outstanding.
fn drive(spawner: Arc<dyn Spawner>, phases: &[Phase], in_flight: usize, baseline: usize) -> Run {
    let (done_tx, done_rx) = mpsc::channel::<()>();
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
    for _ in 0..in_flight {
        spawner.spawn(make_job(phases[0].work, &spawner, &done_tx, &stuck));
    }
    let mut last_sample = start;
    let drained_at_end = loop {
        let received = done_rx.recv_timeout(Duration::from_millis(10)).is_ok();
        let now = Instant::now();
        let t = now - start;
        if t >= total {
            // That completion is not replaced: one fewer task left in flight.
            break usize::from(received);
        }
        let phase = phase_at(t);
        if received {
            let bucket = ((t - starts[phase]).as_millis() / BUCKET.as_millis()) as usize;
            let buckets = &mut run.buckets[phase];
            let last = buckets.len() - 1;
            buckets[bucket.min(last)] += 1;
            spawner.spawn(make_job(phases[phase].work, &spawner, &done_tx, &stuck));
        }
        if now - last_sample >= Duration::from_millis(20) {
            let extra = live_threads().saturating_sub(baseline);
            run.thread_seconds += extra as f64 * (now - last_sample).as_secs_f64();
            run.peak_threads = run.peak_threads.max(extra);
            last_sample = now;
        }
    };
    // Let the tasks in flight finish (not counted) so the system shuts down clean.
    let drain_until = Instant::now() + Duration::from_secs(10);
    let mut drained = drained_at_end;
    while drained < in_flight && Instant::now() < drain_until {
        if done_rx.recv_timeout(Duration::from_millis(50)).is_ok() {
            drained += 1;
        }
    }
    run.stuck = stuck.load(Ordering::Relaxed);
    run
}

fn run_fixed(threads: usize, phases: &[Phase], in_flight: usize) -> Run {
    let baseline = live_threads();
    let pool = ThreadPool::new(threads).expect("fixed pool");
    drive(Arc::new(Fixed(pool)), phases, in_flight, baseline)
}

/// Ours; also returns how long the pool took to get back to `min` once the load stopped.
fn run_adaptive(
    phases: &[Phase],
    in_flight: usize,
    idle_wait: Duration,
) -> (Run, Option<f64>, u64) {
    let baseline = live_threads();
    let pool = Arc::new(
        AdaptivePool::builder()
            .min(1)
            .max(128)
            .build()
            .expect("adaptive pool"),
    );
    let run = drive(
        Arc::new(Adaptive(pool.clone())),
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
    let reversals = pool
        .history()
        .windows(2)
        .filter(|w| (w[0].to > w[0].from) != (w[1].to > w[1].from))
        .count() as u64;
    (run, back_to_min, reversals)
}

fn run_tokio(phases: &[Phase], in_flight: usize) -> Run {
    let baseline = live_threads();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("tokio runtime");
    drive(
        Arc::new(TokioBlocking(runtime)),
        phases,
        in_flight,
        baseline,
    )
}

fn run_rusty(phases: &[Phase], in_flight: usize) -> Run {
    let baseline = live_threads();
    let pool = rusty_pool::ThreadPool::new(1, 128, Duration::from_secs(2));
    drive(Arc::new(Rusty(Some(pool))), phases, in_flight, baseline)
}

struct Scenario {
    name: &'static str,
    phases: Vec<Phase>,
    in_flight: usize,
}

/// Runs one scenario on every system and turns it into rows.
fn scenario_rows(config: &Config, scenario: &Scenario) -> Vec<Row> {
    let phases = &scenario.phases;
    let sweep: &[usize] = if config.quick {
        &QUICK_SWEEP
    } else if phases.len() > 1 {
        // W4 is four phases long: a coarser sweep keeps the family within its time budget.
        &[2, 4, 8, 16, 32, 64]
    } else {
        &FULL_SWEEP
    };
    let fixed: Vec<(usize, Run)> = sweep
        .iter()
        .map(|&n| (n, run_fixed(n, phases, scenario.in_flight)))
        .collect();
    // The keep-alive is 2 s: in quick mode the return to min is not waited for.
    let idle_wait = config.pick(Duration::from_secs(6), Duration::ZERO);
    let (ours, back_to_min, reversals) = run_adaptive(phases, scenario.in_flight, idle_wait);
    let tokio = run_tokio(phases, scenario.in_flight);
    let rusty = run_rusty(phases, scenario.in_flight);

    let mut rows = Vec::new();
    let mut adapt_times = Vec::new();
    for (index, phase) in phases.iter().enumerate() {
        let label = if phases.len() > 1 {
            format!("{} phase {} ({:?})", scenario.name, index + 1, phase.work)
        } else {
            scenario.name.to_owned()
        };
        let (best_n, best_run) = fixed
            .iter()
            .max_by(|a, b| {
                a.1.rate(index, phase.length)
                    .total_cmp(&b.1.rate(index, phase.length))
            })
            .expect("a non-empty sweep");
        let best = best_run.rate(index, phase.length);
        let adapt = ours.time_to_reach(index, 0.9 * best);
        adapt_times.push(adapt);
        let mut row = Row::new(format!("adaptive {label}: throughput"), "tasks/s", true);
        row.push("policy-adaptive", true, &[ours.rate(index, phase.length)]);
        row.push(format!("best fixed ({best_n} threads)"), false, &[best]);
        row.push(
            "tokio spawn_blocking",
            false,
            &[tokio.rate(index, phase.length)],
        );
        row.push(
            "rusty_pool 1..128",
            false,
            &[rusty.rate(index, phase.length)],
        );
        let adapt_note = match adapt {
            Some(s) => format!("reached 90% of best fixed after {s:.1} s"),
            None => "did not reach 90% of best fixed within the window".to_owned(),
        };
        let from = if index == 0 {
            "from 1 thread".to_owned()
        } else {
            "from the previous phase's size".to_owned()
        };
        rows.push(row.with_note(format!(
            "{adapt_note}; window {:.1} s {from}; target >= 90% of best fixed",
            phase.length.as_secs_f64()
        )));
    }

    let (best_n, best_run) = fixed
        .iter()
        .max_by(|a, b| a.1.total_rate(phases).total_cmp(&b.1.total_rate(phases)))
        .expect("a non-empty sweep");
    let mut threads = Row::new(
        format!("adaptive {}: thread-seconds", scenario.name),
        "thread-s",
        false,
    );
    threads.push("policy-adaptive", true, &[ours.thread_seconds]);
    threads.push(
        format!("best fixed ({best_n} threads)"),
        false,
        &[best_run.thread_seconds],
    );
    threads.push("tokio spawn_blocking", false, &[tokio.thread_seconds]);
    threads.push("rusty_pool 1..128", false, &[rusty.thread_seconds]);
    let stuck = if ours.stuck + best_run.stuck > 0 || scenario.name.starts_with("W6") {
        let deadlocked: Vec<String> = fixed
            .iter()
            .filter(|(_, r)| r.stuck > 0)
            .map(|(n, r)| format!("{n} ({})", r.stuck))
            .collect();
        format!(
            "; parents stuck > 1 s: ours {}, fixed sizes with stuck parents: [{}]",
            ours.stuck,
            deadlocked.join(", ")
        )
    } else {
        String::new()
    };
    rows.push(threads.with_note(format!(
        "peak threads: ours {}, tokio {}, rusty_pool {}; ours back to min once idle: {}; \
         {reversals} direction reversals{stuck}",
        ours.peak_threads,
        tokio.peak_threads,
        rusty.peak_threads,
        back_to_min.map_or(
            format!("not within {:.0} s", idle_wait.as_secs_f64()),
            |s| format!("after {s:.1} s")
        ),
    )));
    rows
}

/// The rows of this workload family.
pub fn rows(config: &Config) -> Vec<Row> {
    let window = config.pick(Duration::from_millis(1500), Duration::from_millis(200));
    let phase = config.pick(Duration::from_millis(1000), Duration::from_millis(200));
    let five = Duration::from_millis(5);
    let four = Duration::from_millis(4);
    let one = |work, length| vec![Phase { work, length }];
    let scenarios = [
        Scenario {
            name: "W1 sleep 5 ms",
            phases: one(Work::Sleep(five), window),
            in_flight: 64,
        },
        Scenario {
            name: "W2 CPU 1 ms",
            phases: one(Work::Cpu, window),
            in_flight: 64,
        },
        Scenario {
            name: "W3 CPU 1 ms + sleep 4 ms",
            phases: one(Work::CpuThenSleep(four), window),
            in_flight: 64,
        },
        Scenario {
            name: "W4 phases W1-W2-W3-W1",
            phases: [
                Work::Sleep(five),
                Work::Cpu,
                Work::CpuThenSleep(four),
                Work::Sleep(five),
            ]
            .into_iter()
            .map(|work| Phase {
                work,
                length: phase,
            })
            .collect(),
            in_flight: 64,
        },
        Scenario {
            name: "W6 nested blocking",
            phases: one(Work::Nested(Duration::from_millis(2)), window),
            in_flight: 8,
        },
    ];
    scenarios
        .iter()
        .filter(|s| config.wants(&format!("adaptive {}", s.name)))
        .flat_map(|s| scenario_rows(config, s))
        .collect()
}
