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
//! | W7 | bursts: 16 tasks in flight sleeping 5 ms for 0.5 s, then 0.5 s with nothing submitted, three times |
//! | W8 | W2 beside an outside CPU hog (a `sh` busy loop in a child process, one per two cores) |
//! | W8 opt-in | W8 with ours at `cpu_threads_per_core` 4 (the default is 2): what a user who wants a larger share of a shared host's CPU buys |
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
//! W7's row is the throughput over its bursts (the gaps are shorter than the keep-alive, so the
//! pool should keep its size); W8's fixed pools and peers run beside the same hog.
//!
//! Controller CPU: `AdaptivePool::controller_cpu` (the controller thread's CPU clock, its waits
//! and wake-ups included) per tick over each adaptive run, and two rows per pool size (1, 64,
//! 256 workers), per tick and per second of wall time: `min = max` (so only the signals and the
//! decision run, every interval) with the workers parked, with every worker blocked in a task
//! (a still pool: the signals may reuse their last split), and with every worker busy on tasks
//! that finish (every tick measures); and parked at `min` with room to grow, where the quiet
//! stretch lengthens the wait. Beside them, the host's floor: one thread's CPU per bare timed
//! wait of the interval (a condvar wait that times out, nothing else), which every tick pays
//! and which varies from host to host (30-37 µs on one 2-core VM, 81-148 µs on another).
//!
//! Thread-seconds: the process's extra threads (`/proc/self/task` minus those before the
//! system was built), sampled every 20 ms and integrated over the window. Time to adapt: from
//! the start of a phase until a 300 ms moving window first reaches 90% of the best fixed
//! size's throughput in that phase.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use policy_adaptive::AdaptivePool;
use pool_core::{Executor, Job};

use crate::peers::{Elastic, Kind, Pool};
use crate::{Config, Row};

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
    /// Nothing submitted: the tasks in flight finish and are not replaced.
    Idle,
}

#[derive(Clone, Copy, Debug)]
struct Phase {
    work: Work,
    length: Duration,
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

    /// Completions per second over the phases that submit work (all but idle gaps).
    fn busy_rate(&self, phases: &[Phase]) -> f64 {
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

/// Hands `job` to `executor`; a refused job is dropped (it then never reports done, and the
/// drain at the end of the run gives up on it).
fn spawn(executor: &dyn Executor, job: Job) {
    let _ = executor.execute(job);
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
                    spawn(
                        &*executor,
                        Box::new(move || {
                            std::thread::sleep(d);
                            let _ = child_done.send(());
                        }),
                    );
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
struct CpuHog(Vec<std::process::Child>);

impl CpuHog {
    fn start(processes: usize) -> CpuHog {
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
    // Tasks submitted and not yet seen to complete.
    let mut outstanding = 0;
    let mut last_sample = start;
    loop {
        let t = start.elapsed();
        if t >= total {
            break;
        }
        let phase = phase_at(t);
        // Top up to `in_flight` (at the start, and after an idle phase).
        if !matches!(phases[phase].work, Work::Idle) {
            while outstanding < in_flight {
                spawn(
                    &**executor,
                    make_job(phases[phase].work, executor, &done_tx, &stuck),
                );
                outstanding += 1;
            }
        }
        let received = done_rx.recv_timeout(Duration::from_millis(10)).is_ok();
        let now = Instant::now();
        let t = now - start;
        if received {
            outstanding -= 1;
        }
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
    while outstanding > 0 && Instant::now() < drain_until {
        if done_rx.recv_timeout(Duration::from_millis(50)).is_ok() {
            outstanding -= 1;
        }
    }
    run.stuck = stuck.load(Ordering::Relaxed);
    run
}

/// Builds a peer with `build` and drives it; the peer is dropped (its threads joined) before
/// the next system's baseline is counted.
fn run_peer(build: impl FnOnce() -> Pool, phases: &[Phase], in_flight: usize) -> Run {
    let baseline = live_threads();
    let pool: Arc<dyn Executor> = Arc::new(build());
    drive(&pool, phases, in_flight, baseline)
}

fn run_fixed(threads: usize, phases: &[Phase], in_flight: usize) -> Run {
    run_peer(
        || Pool::build(Kind::Ours, threads, "adapt-fixed-"),
        phases,
        in_flight,
    )
}

/// Our run and what only ours reports.
struct Ours {
    run: Run,
    /// Seconds from the end of the load until the pool was back to `min`.
    back_to_min: Option<f64>,
    /// The most workers the controller asked for (the thread peak also counts the controller).
    peak_workers: usize,
    reversals: u64,
    /// The controller's CPU per tick and as a share of one core over the run (load and idle).
    controller: Option<(Duration, f64)>,
}

/// Ours; also measures how long the pool took to get back to `min` once the load stopped.
fn run_adaptive(
    phases: &[Phase],
    in_flight: usize,
    idle_wait: Duration,
    threads_per_core: Option<f64>,
) -> Ours {
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
    Ours {
        run,
        back_to_min,
        peak_workers,
        reversals,
        controller,
    }
}

/// tokio's default blocking pool (up to 512 threads) beside a 1-worker runtime.
fn run_tokio(phases: &[Phase], in_flight: usize) -> Run {
    run_peer(
        || Pool::tokio_elastic(Elastic::tokio_default(1), "adapt-tokio-"),
        phases,
        in_flight,
    )
}

/// rusty_pool with the same bounds as ours: 1 to 128 threads, 2 s keep-alive.
fn run_rusty(phases: &[Phase], in_flight: usize) -> Run {
    let bounds = Elastic {
        core: 1,
        max: 128,
        keep_alive: Duration::from_secs(2),
    };
    run_peer(
        || Pool::rusty_elastic(bounds, "adapt-rusty-"),
        phases,
        in_flight,
    )
}

struct Scenario {
    name: &'static str,
    phases: Vec<Phase>,
    in_flight: usize,
    /// Outside CPU-hog processes running beside every system's run.
    hogs: usize,
    /// Ours' `Config::cpu_threads_per_core`, where not the default (the opt-in W8 row).
    threads_per_core: Option<f64>,
}

/// The fixed size of the sweep with the highest `rate`, and its run.
fn best_fixed(fixed: &[(usize, Run)], rate: impl Fn(&Run) -> f64) -> (usize, &Run) {
    let (n, run) = fixed
        .iter()
        .max_by(|a, b| rate(&a.1).total_cmp(&rate(&b.1)))
        .expect("a non-empty sweep");
    (*n, run)
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
    let _hog = CpuHog::start(scenario.hogs);
    let fixed: Vec<(usize, Run)> = sweep
        .iter()
        .map(|&n| (n, run_fixed(n, phases, scenario.in_flight)))
        .collect();
    // The keep-alive is 2 s: in quick mode the return to min is not waited for.
    let idle_wait = config.pick(Duration::from_secs(6), Duration::ZERO);
    let Ours {
        run: ours,
        back_to_min,
        peak_workers,
        reversals,
        controller,
    } = run_adaptive(
        phases,
        scenario.in_flight,
        idle_wait,
        scenario.threads_per_core,
    );
    let tokio = run_tokio(phases, scenario.in_flight);
    let rusty = run_rusty(phases, scenario.in_flight);

    let mut rows = Vec::new();
    let mut adapt_times = Vec::new();
    let bursts = phases.iter().any(|p| matches!(p.work, Work::Idle));
    if bursts {
        // Bursts with gaps: one row over the bursts.
        let (best_n, best_run) = best_fixed(&fixed, |run| run.busy_rate(phases));
        let mut row = Row::new(
            format!("adaptive {}: throughput", scenario.name),
            "tasks/s",
            true,
        );
        row.push("policy-adaptive", true, &[ours.busy_rate(phases)]);
        row.push(
            format!("best fixed ({best_n} threads)"),
            false,
            &[best_run.busy_rate(phases)],
        );
        row.push("tokio spawn_blocking", false, &[tokio.busy_rate(phases)]);
        row.push("rusty_pool 1..128", false, &[rusty.busy_rate(phases)]);
        rows.push(row.with_note(format!(
            "over the bursts only; {} bursts; target >= 90% of best fixed",
            phases
                .iter()
                .filter(|p| !matches!(p.work, Work::Idle))
                .count()
        )));
    }
    for (index, phase) in phases.iter().enumerate() {
        if bursts {
            // Bursts with gaps have their one row above.
            break;
        }
        let label = if phases.len() > 1 {
            format!("{} phase {} ({:?})", scenario.name, index + 1, phase.work)
        } else {
            scenario.name.to_owned()
        };
        let (best_n, best_run) = best_fixed(&fixed, |run| run.rate(index, phase.length));
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
        let sweep_rates: Vec<String> = fixed
            .iter()
            .map(|(n, run)| format!("{n}: {:.0}", run.rate(index, phase.length)))
            .collect();
        rows.push(row.with_note(format!(
            "{adapt_note}; window {:.1} s {from}; target >= 90% of best fixed; fixed sizes \
             (threads: tasks/s) {}",
            phase.length.as_secs_f64(),
            sweep_rates.join(", ")
        )));
    }

    let (best_n, best_run) = best_fixed(&fixed, |run| run.total_rate(phases));
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
    let controller = controller.map_or("unknown".to_owned(), |(per_tick, share)| {
        format!(
            "{:.1} µs per tick, {:.3}% of a core",
            per_tick.as_secs_f64() * 1e6,
            share * 100.0
        )
    });
    rows.push(threads.with_note(format!(
        "peak threads: ours {} ({peak_workers} workers at most, the controller aside; target \
         <= 2 x {} cores on CPU-bound work), best fixed {best_n}, \
         tokio {}, rusty_pool {}; thread-seconds ours / best fixed {:.2} (target <= 1.5); \
         ours back to min once idle: {} (target keep-alive 2 s + 1 s); controller CPU: \
         {controller}; {reversals} direction reversals{stuck}",
        ours.peak_threads,
        cores(),
        tokio.peak_threads,
        rusty.peak_threads,
        ours.thread_seconds / best_run.thread_seconds.max(f64::MIN_POSITIVE),
        back_to_min.map_or(
            format!("not within {:.0} s", idle_wait.as_secs_f64()),
            |s| format!("after {s:.1} s")
        ),
    )));
    rows
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

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
}

/// The controller's CPU per tick and per second of wall time with `workers` workers held as
/// `hold` over `ticks` ticks at the default 100 ms interval.
fn controller_cost(workers: usize, hold: Hold, ticks: u64) -> Option<(Duration, Duration)> {
    let max = if hold == Hold::Idle {
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
fn controller_rows(config: &Config) -> Vec<Row> {
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
             to up to 4 intervals (policy-adaptive/src/stretch.rs)",
        ));
    }
    rows
}

/// The rows of this workload family.
pub fn rows(config: &Config) -> Vec<Row> {
    let window = config.pick(Duration::from_millis(1500), Duration::from_millis(200));
    let phase = config.pick(Duration::from_millis(1000), Duration::from_millis(200));
    let five = Duration::from_millis(5);
    let four = Duration::from_millis(4);
    let burst = config.pick(Duration::from_millis(500), Duration::from_millis(100));
    let one = |work, length| vec![Phase { work, length }];
    let scenarios = [
        Scenario {
            name: "W1 sleep 5 ms",
            phases: one(Work::Sleep(five), window),
            in_flight: 64,
            hogs: 0,
            threads_per_core: None,
        },
        Scenario {
            name: "W2 CPU 1 ms",
            phases: one(Work::Cpu, window),
            in_flight: 64,
            hogs: 0,
            threads_per_core: None,
        },
        Scenario {
            name: "W3 CPU 1 ms + sleep 4 ms",
            phases: one(Work::CpuThenSleep(four), window),
            in_flight: 64,
            hogs: 0,
            threads_per_core: None,
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
            hogs: 0,
            threads_per_core: None,
        },
        Scenario {
            name: "W6 nested blocking",
            phases: one(Work::Nested(Duration::from_millis(2)), window),
            in_flight: 8,
            hogs: 0,
            threads_per_core: None,
        },
        Scenario {
            name: "W7 bursts of sleep 5 ms with idle gaps",
            phases: (0..3)
                .flat_map(|_| {
                    [
                        Phase {
                            work: Work::Sleep(five),
                            length: burst,
                        },
                        Phase {
                            work: Work::Idle,
                            length: burst,
                        },
                    ]
                })
                .collect(),
            in_flight: 16,
            hogs: 0,
            threads_per_core: None,
        },
        Scenario {
            name: "W8 CPU 1 ms beside a CPU hog",
            phases: one(Work::Cpu, window),
            in_flight: 64,
            hogs: (cores() / 2).max(1),
            threads_per_core: None,
        },
        // The scheduler shares the cores by thread, so beside the hog the best fixed size is
        // the largest (32 threads on 2 cores), and the default CPU cap (2 threads per core)
        // gets at most 4 / (4 + 1) of 2 cores against 32 / 33. A user who wants a larger share
        // of a shared host's CPU raises the cap; this row measures what that buys.
        Scenario {
            name: "W8 opt-in: cpu_threads_per_core 4 beside a CPU hog",
            phases: one(Work::Cpu, window),
            in_flight: 64,
            hogs: (cores() / 2).max(1),
            threads_per_core: Some(4.0),
        },
    ];
    let mut rows: Vec<Row> = scenarios
        .iter()
        .filter(|s| config.wants(&format!("adaptive {}", s.name)))
        .flat_map(|s| scenario_rows(config, s))
        .collect();
    if config.wants("adaptive controller CPU per tick") {
        rows.extend(controller_rows(config));
    }
    rows
}
