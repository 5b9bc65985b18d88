//! The controller on a real pool: it grows under a blocking backlog, shrinks back after the
//! keep-alive, unblocks nested blocking, survives panicking callbacks and stops cleanly.
//! Every wait is for an event (a count reached, a channel message) with a generous timeout.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use policy_adaptive::{AdaptivePool, Config, ConfigError, Reason, Signals, Snapshot};
use pool_core::ThreadPool;
use test_kit::PATIENCE;

/// Polls `condition` on the controller's own schedule (its tick) until it holds or `PATIENCE`
/// passes. The controller changes the count only on ticks, so there is no event to wait on; the
/// assertion is on the count, never on the time taken.
fn eventually(pool: &AdaptivePool, mut condition: impl FnMut(&AdaptivePool) -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if condition(pool) {
            return true;
        }
        std::thread::sleep(pool.config().interval);
    }
    condition(pool)
}

/// Spawns `tasks` tasks that each block until the returned sender is dropped (or sends).
fn spawn_gated(pool: &AdaptivePool, tasks: usize) -> mpsc::Sender<()> {
    let (release, gate) = mpsc::channel::<()>();
    let gate = Arc::new(std::sync::Mutex::new(gate));
    for _ in 0..tasks {
        let gate = gate.clone();
        pool.spawn(move || {
            let _ = gate.lock().map(|rx| rx.recv());
        })
        .unwrap();
    }
    release
}

fn fast_pool(min: usize, max: usize, keep_alive: Duration) -> AdaptivePool {
    AdaptivePool::builder()
        .min(min)
        .max(max)
        .interval(Duration::from_millis(20))
        .keep_alive(keep_alive)
        .build()
        .unwrap()
}

#[test]
fn grows_under_a_blocking_backlog_and_every_task_completes() {
    let pool = fast_pool(1, 16, Duration::from_secs(30));
    let (release, gate) = mpsc::channel::<()>();
    let gate = Arc::new(std::sync::Mutex::new(gate));
    // 32 tasks that block until released: the workers are busy, blocked, and work is queued.
    let handles: Vec<_> = (0..32)
        .map(|i| {
            let gate = gate.clone();
            pool.submit(move || {
                let _ = gate.lock().unwrap().recv_timeout(PATIENCE);
                i
            })
            .unwrap()
        })
        .collect();
    // Wait for the event asserted below (a recorded growth), not for `threads()`: the controller
    // records its history just after `set_threads`, so a test that saw the new target first could
    // read an empty history under load.
    assert!(
        eventually(&pool, |p| p.history().iter().any(|e| e.to > e.from)),
        "the pool never grew: {:?}",
        p_last(&pool)
    );
    for _ in 0..32 {
        release.send(()).unwrap();
    }
    let sum: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, (0..32).sum());
    let history = pool.history();
    assert!(history.iter().any(|e| e.to > e.from), "{history:?}");
    assert!(history.iter().all(|e| (1..=16).contains(&e.to)));
    pool.shutdown();
    let stats = pool.stats();
    assert!(stats.is_balanced(), "{stats}");
    assert_eq!(stats.completed, 32);
}

fn p_last(pool: &AdaptivePool) -> String {
    match pool.last_decision() {
        Some((snapshot, decision)) => format!("{snapshot} -> {decision:?}"),
        None => "no tick yet".to_owned(),
    }
}

#[test]
fn shrinks_back_to_min_after_keep_alive_when_idle() {
    let pool = fast_pool(2, 8, Duration::from_millis(200));
    // Forced from outside (what `pool()` allows, and fights the controller): the controller
    // must bring it back.
    pool.pool().set_threads(8).unwrap();
    // Wait for the recorded shrink itself (see above for why not `threads()`).
    assert!(
        eventually(&pool, |p| p.history().last().is_some_and(|e| e.to == 2)),
        "still {} threads: {}",
        pool.threads(),
        p_last(&pool)
    );
    let shrink = pool.history().into_iter().last().unwrap();
    assert_eq!((shrink.from, shrink.to), (8, 2));
    assert_eq!(pool.threads(), 2);
    assert!(eventually(&pool, |p| p.stats().live_threads == 2));
}

/// The controller thread carries the workers' name prefix, whoever set it: ours by default,
/// the user's pool builder's, or this builder's `thread_name` over both.
#[test]
fn the_controller_thread_is_named_after_the_workers() {
    for (pool_prefix, own_prefix, expected) in [
        (None, None, "adaptive"),
        (Some("editor"), None, "editor"),
        (Some("editor"), Some("index"), "index"),
    ] {
        let (names_tx, names) = mpsc::channel::<Option<String>>();
        let names_tx = std::sync::Mutex::new(names_tx);
        let mut builder = AdaptivePool::builder()
            .min(1)
            .max(4)
            .interval(Duration::from_millis(20))
            .on_scale(move |_| {
                let name = std::thread::current().name().map(String::from);
                let _ = names_tx.lock().unwrap().send(name);
            });
        if let Some(prefix) = pool_prefix {
            builder = builder.pool(ThreadPool::builder().thread_name(prefix));
        }
        if let Some(prefix) = own_prefix {
            builder = builder.thread_name(prefix);
        }
        let pool = builder.build().unwrap();
        assert_eq!(pool.pool().thread_name(), expected);
        // A blocked backlog: the pool grows, and the hook runs on the controller thread.
        let release = spawn_gated(&pool, 8);
        let name = names.recv_timeout(PATIENCE).expect("a scaling event");
        assert_eq!(name, Some(format!("{expected}-controller")));
        drop(release);
        let worker = pool
            .submit(|| std::thread::current().name().map(String::from))
            .unwrap()
            .join()
            .unwrap()
            .unwrap();
        assert!(worker.starts_with(&format!("{expected}-")), "{worker}");
        pool.shutdown();
    }
}

/// The pool's own signals, but the `resize_at`th sample resizes the pool to `to` from inside
/// the sample (after reading it): a resize from outside between a tick's sample and its resize.
struct ResizingSignals {
    inner: policy_adaptive::PoolSignals,
    samples: usize,
    resize_at: usize,
    to: usize,
}

impl Signals for ResizingSignals {
    fn sample(&mut self, pool: &ThreadPool, elapsed: Duration) -> Snapshot {
        let snapshot = self.inner.sample(pool, elapsed);
        self.samples += 1;
        if self.samples == self.resize_at {
            pool.set_threads(self.to).unwrap();
        }
        snapshot
    }
}

/// Invariant: a tick whose sample was taken before a resize from outside does not apply its
/// decision over that resize: the pool, idle at `min` = 1 and forced to 6 mid-tick, keeps 6
/// (the keep-alive never retires them), where the stale decision, "stay at 1", took it back to
/// 1 at once, with no idle time judged.
#[test]
fn a_decision_on_a_sample_from_before_an_outside_resize_is_not_applied() {
    let workers = policy_adaptive::WorkerThreads::new();
    let pool = AdaptivePool::builder()
        .pool(workers.recording(ThreadPool::builder()))
        .min(1)
        .max(8)
        .interval(Duration::from_millis(20))
        .keep_alive(Duration::MAX)
        .signals(ResizingSignals {
            inner: policy_adaptive::PoolSignals::new(workers),
            samples: 0,
            resize_at: 3,
            to: 6,
        })
        .build()
        .unwrap();
    // Ten ticks past the resize, each one a decision on the new size.
    assert!(
        eventually(&pool, |p| p.ticks() >= 13),
        "the controller stopped ticking: {}",
        p_last(&pool)
    );
    assert_eq!(pool.threads(), 6, "{:?}", pool.history());
    assert!(pool.history().is_empty(), "{:?}", pool.history());
}

/// `Duration::MAX` as the keep-alive reads as "never retire": the pool forced above `min` keeps
/// its workers while idle, tick after tick (the idle rule's window stays bounded meanwhile:
/// `decide/peak.rs`), and the controller keeps ticking and deciding.
#[test]
fn a_keep_alive_of_duration_max_never_retires_idle_workers() {
    let pool = fast_pool(1, 8, Duration::MAX);
    pool.pool().set_threads(6).unwrap();
    let from = pool.ticks();
    // 50 ticks of idle surplus (each one a decision), waited for on the controller's count.
    assert!(
        eventually(&pool, |p| p.ticks() >= from + 50),
        "the controller stopped ticking: {}",
        p_last(&pool)
    );
    assert_eq!(pool.threads(), 6, "{:?}", pool.history());
    assert!(
        pool.history()
            .iter()
            .all(|e| !matches!(e.reason, Reason::Idle { .. })),
        "{:?}",
        pool.history()
    );
    let (snapshot, decision) = pool.last_decision().expect("a decision");
    assert_eq!((snapshot.queued, decision.target), (0, 6), "{snapshot}");
    pool.shutdown();
    assert!(pool.stats().is_balanced(), "{}", pool.stats());
}

#[test]
fn nested_blocking_completes_from_min_one() {
    // W6: each task waits on a child queued behind it. A `join` of the child would help (the
    // waiting worker runs it), so the parent waits on a channel instead, which no pool can help:
    // a fixed pool of 1 deadlocks; the controller must add a worker.
    let pool = Arc::new(fast_pool(1, 4, Duration::from_secs(30)));
    let inner = pool.clone();
    let parent = pool
        .submit(move || {
            let (tx, rx) = mpsc::channel();
            inner.spawn(move || tx.send(21).unwrap()).unwrap();
            rx.recv_timeout(PATIENCE).map(|v| v * 2).ok()
        })
        .unwrap();
    assert_eq!(parent.join_timeout(PATIENCE).ok().flatten(), Some(42));
    assert!(pool.threads() >= 2, "{:?}", pool.history());
    drop(pool);
}

#[test]
fn a_join_of_a_queued_child_helps_without_growing() {
    let pool = Arc::new(fast_pool(1, 4, Duration::from_secs(30)));
    let inner = pool.clone();
    let parent = pool
        .submit(move || inner.submit(|| 21).unwrap().join().map(|v| v * 2))
        .unwrap();
    assert_eq!(parent.join_timeout(PATIENCE).ok(), Some(Ok(42)));
    pool.shutdown();
    assert_eq!(pool.stats().completed, 2);
}

/// Scripted signals that panic on every other call.
struct Flaky {
    calls: usize,
    panic_next: bool,
}

impl Signals for Flaky {
    fn sample(&mut self, pool: &ThreadPool, elapsed: Duration) -> Snapshot {
        self.calls += 1;
        self.panic_next = !self.panic_next;
        if !self.panic_next {
            panic!("flaky signal source");
        }
        Snapshot {
            threads: pool.stats().live_threads,
            target: pool.threads(),
            // Always claim a blocked backlog, so every good tick grows the pool.
            queued: 10,
            running: pool.threads() as u64,
            blocked: Some(pool.threads() as f64),
            worker_cpu: Some(0.0),
            ..Snapshot::new(elapsed, 2)
        }
    }
}

#[test]
fn panics_in_signals_and_hooks_never_kill_the_controller() {
    let hook_calls = Arc::new(AtomicUsize::new(0));
    let calls = hook_calls.clone();
    let pool = AdaptivePool::builder()
        .min(1)
        .max(6)
        .interval(Duration::from_millis(10))
        .signals(Flaky {
            calls: 0,
            panic_next: false,
        })
        .on_scale(move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            panic!("hook panics too");
        })
        .build()
        .unwrap();
    // A good tick may grow to 6 at once (every worker blocked: the backlog at once); the
    // controller then keeps ticking through the source's panics.
    assert!(
        eventually(&pool, |p| p.threads() == 6 && p.callback_panics() >= 2),
        "{:?}",
        pool.history()
    );
    // The hook runs just after the resize `threads()` shows: wait for the call itself.
    assert!(eventually(&pool, |_| hook_calls.load(Ordering::SeqCst) >= 1));
    assert_eq!(pool.submit(|| 3).unwrap().join().unwrap(), 3);
}

#[test]
fn shutdown_stops_the_controller_and_joins_every_thread() {
    let stopped = Arc::new(AtomicUsize::new(0));
    let pool = fast_pool(2, 4, Duration::from_secs(30));
    for _ in 0..10 {
        let stopped = stopped.clone();
        pool.spawn(move || {
            stopped.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    pool.shutdown();
    let ticks = pool.ticks();
    assert_eq!(stopped.load(Ordering::SeqCst), 10, "queued work ran");
    assert_eq!(pool.stats().live_threads, 0, "every worker joined");
    assert!(pool.submit(|| ()).is_err(), "submissions are refused");
    pool.shutdown(); // idempotent
    assert_eq!(pool.ticks(), ticks, "the controller stopped");
}

#[test]
fn the_controller_reports_its_own_cpu_time() {
    let pool = fast_pool(1, 2, Duration::from_secs(30));
    assert!(eventually(&pool, |p| p.ticks() >= 3));
    if cfg!(target_os = "linux") {
        let cpu = pool.controller_cpu().expect("Linux reports per-thread CPU");
        assert!(cpu < Duration::from_secs(5), "{cpu:?}");
    }
}

#[test]
fn bad_settings_are_typed_errors_naming_the_field() {
    let build = |config: Config| AdaptivePool::builder().config(config).build().unwrap_err();
    let mut config = Config::default();
    config.max = 0;
    assert_eq!(
        build(config).config_error(),
        Some(&ConfigError::ZeroThreads { field: "max" })
    );
    let mut config = Config::default();
    config.min = 5;
    config.max = 3;
    assert_eq!(
        build(config).config_error(),
        Some(&ConfigError::MinAboveMax { min: 5, max: 3 })
    );
    // A `max` the controller could grow the pool to, past what the process can map for threads
    // (pool-core refuses such a pool; the controller would have aborted the process trying).
    for max in [ThreadPool::MAX_THREADS + 1, usize::MAX] {
        let err = AdaptivePool::new(1, max).unwrap_err();
        assert_eq!(
            err.config_error(),
            Some(&ConfigError::MaxAbovePoolLimit {
                max,
                limit: ThreadPool::MAX_THREADS
            })
        );
        assert!(
            err.to_string()
                .contains(&ThreadPool::MAX_THREADS.to_string()),
            "{err}"
        );
    }
    let at_the_bound = AdaptivePool::new(1, ThreadPool::MAX_THREADS).unwrap();
    assert_eq!(at_the_bound.config().max, ThreadPool::MAX_THREADS);
    let mut config = Config::default();
    config.interval = Duration::ZERO;
    assert_eq!(
        build(config).config_error(),
        Some(&ConfigError::Zero { field: "interval" })
    );
    // An interval the controller cannot keep (a busy loop, or a schedule past the end of
    // `Instant`'s range: `Duration::MAX` panicked the controller thread).
    for interval in [
        Duration::from_nanos(1),
        Duration::from_secs(3601),
        Duration::MAX,
    ] {
        let mut config = Config::default();
        config.interval = interval;
        let error = build(config);
        assert_eq!(
            error.config_error(),
            Some(&ConfigError::DurationOutOfRange {
                field: "interval",
                value: interval,
                low: Duration::from_millis(1),
                high: Duration::from_secs(3600),
            })
        );
        assert!(error.to_string().contains("interval"), "{error}");
    }
    let mut config = Config::default();
    config.memory_low = 1.5;
    assert!(matches!(
        build(config).config_error(),
        Some(ConfigError::OutOfRange {
            field: "memory_low",
            ..
        })
    ));
    let mut config = Config::default();
    config.host_cpu_guard = f64::NAN;
    let error = build(config);
    assert!(error.to_string().contains("host_cpu_guard"), "{error}");
}

/// A pool whose regular tick is a minute away: any decision within the test's generous
/// timeout is an early one, asked for by a submission.
fn slow_ticking_pool(max: usize) -> AdaptivePool {
    let mut config = Config::default();
    config.max = max;
    config.interval = Duration::from_secs(60);
    // Starvation needs no completion for this long: out of the way, so only the early path
    // can grow the pool here.
    config.starvation_after = Duration::from_secs(60);
    AdaptivePool::builder().config(config).build().unwrap()
}

#[test]
fn growth_does_not_wait_for_the_tick_when_every_worker_is_blocked() {
    let pool = slow_ticking_pool(8);
    let gate = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
    let started = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let (gate, started) = (gate.clone(), started.clone());
            pool.submit(move || {
                started.fetch_add(1, Ordering::SeqCst);
                let (open, opened) = &*gate;
                let open = open.lock().unwrap();
                let _ = opened.wait_timeout_while(open, PATIENCE, |open| !*open);
            })
            .unwrap()
        })
        .collect();
    // The regular tick is 60 s away and this waits at most 30 s: growth seen here came from
    // the early path. One early decision grows by one at least; the controller looks again
    // after each growth, so it keeps growing without further submissions.
    let deadline = Instant::now() + PATIENCE;
    while started.load(Ordering::SeqCst) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let (seen, history, early, last) = (
        started.load(Ordering::SeqCst),
        pool.history(),
        pool.early_ticks(),
        p_last(&pool),
    );
    // Open the gate before asserting, so a failure does not wait for every task's timeout.
    {
        let (open, opened) = &*gate;
        *open.lock().unwrap() = true;
        opened.notify_all();
    }
    assert!(
        seen >= 3,
        "{seen} started; {early} early; history {history:?}; {last}"
    );
    // Every busy worker blocked with CPU to spare: the first early decision may grow to the
    // backlog (bounded by `max` = 8) at once.
    assert!(early >= 1, "{early}");
    assert!(history.iter().all(|e| e.to > e.from && e.to <= 8));
    for handle in handles {
        handle.join_timeout(PATIENCE).unwrap();
    }
    pool.shutdown();
    assert_eq!(pool.stats().completed, 16);
}

#[cfg(target_os = "linux")]
#[test]
fn cpu_bound_work_does_not_grow_on_demand() {
    let pool = slow_ticking_pool(8);
    let spin = || {
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(20) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        x
    };
    let handles: Vec<_> = (0..20).map(|_| pool.submit(spin).unwrap()).collect();
    for handle in handles {
        handle.join_timeout(PATIENCE).unwrap();
    }
    // Every early look found the workers running (not blocked) with work queued: at least one
    // early decision was taken. Below the CPU cap it may go to the cap (2 per core, what the
    // saturation rule keeps, rule 5), never past it: no backlog growth for CPU-bound work.
    assert!(pool.early_ticks() >= 1, "no early decision was asked for");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let history = pool.history();
    for event in &history {
        assert_eq!(
            event.reason,
            Reason::BelowCpuCap,
            "{history:#?}\n{}",
            p_last(&pool)
        );
        assert!(event.to <= 2 * cores, "{history:#?}\n{}", p_last(&pool));
    }
    assert!(pool.threads() <= 2 * cores.max(1), "{}", p_last(&pool));
}

/// A scripted sample's counts taken from the real pool (threads, target, queued, running) on
/// 2 cores; the signals are the script's.
fn counts_of(pool: &ThreadPool, elapsed: Duration) -> Snapshot {
    let stats = pool.stats();
    Snapshot {
        threads: stats.live_threads,
        target: pool.threads(),
        queued: stats.queued,
        running: stats.running,
        ..Snapshot::new(elapsed, 2)
    }
}

/// A signal source that reports an idle pool and records the `elapsed` of every sample.
struct Quiet {
    elapsed: Arc<std::sync::Mutex<Vec<Duration>>>,
}

impl Signals for Quiet {
    fn sample(&mut self, pool: &ThreadPool, elapsed: Duration) -> Snapshot {
        self.elapsed.lock().unwrap().push(elapsed);
        Snapshot {
            blocked: Some(0.0),
            worker_cpu: Some(0.0),
            worker_demand: Some(0.0),
            ..counts_of(pool, elapsed)
        }
    }
}

/// Invariant (the quiet stretch, `src/stretch.rs`): an idle pool at `min` is sampled less
/// often than every interval (the controller never ticks before its wait is over, so a
/// stretched wait shows as a sample over two intervals or more), the decision still sees at most
/// one interval, and a backlog of blocked work after the stretch still grows the pool.
#[test]
fn an_idle_pool_at_min_stretches_its_wait_and_still_grows_on_a_burst() {
    let interval = Duration::from_millis(10);
    let elapsed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let pool = AdaptivePool::builder()
        .min(1)
        .max(8)
        .interval(interval)
        .signals(Quiet {
            elapsed: elapsed.clone(),
        })
        .build()
        .unwrap();
    let stretched = |p: &AdaptivePool| {
        p.ticks() > 6 && elapsed.lock().unwrap().iter().any(|&e| e >= 2 * interval)
    };
    assert!(
        eventually(&pool, stretched),
        "{:?}",
        elapsed.lock().unwrap()
    );
    let (snapshot, decision) = pool.last_decision().expect("a decision");
    assert!(snapshot.elapsed <= interval, "{snapshot:?}");
    assert_eq!(decision.reason, Reason::Hold);
    // A burst of blocked work: the submissions that queue ask for an early decision, and the
    // quiet source reports them blocked, so the pool grows (to the backlog) as without a stretch.
    let release = spawn_gated(&pool, 8);
    assert!(
        eventually(&pool, |p| p.threads() > 1),
        "{:?}",
        pool.history()
    );
    drop(release);
    pool.shutdown();
    assert!(pool.stats().is_balanced());
}

/// A CPU-bound pool whose tasks start blocking mid-tick, as W4's switch from CPU-bound tasks to
/// W3's: full ticks read 1.95 cores, then a tick that straddles the switch 1.3 (a dip by a
/// quarter), then every sample 0.5 (the new load). The split says run-queue wait throughout.
/// Records every sample's `elapsed` (tick `n` of the history is sample `n`).
struct Switching {
    interval: Duration,
    full_samples: usize,
    elapsed: Arc<std::sync::Mutex<Vec<Duration>>>,
}

impl Signals for Switching {
    fn sample(&mut self, pool: &ThreadPool, elapsed: Duration) -> Snapshot {
        self.elapsed.lock().unwrap().push(elapsed);
        if elapsed >= self.interval {
            self.full_samples += 1;
        }
        let cpu = match self.full_samples {
            0 | 1 => 1.95,
            2 if elapsed >= self.interval => 1.3,
            _ => 0.5,
        };
        let counts = counts_of(pool, elapsed);
        Snapshot {
            completed: 100,
            blocked: Some(0.1),
            worker_cpu: Some(cpu),
            worker_demand: Some(counts.running as f64 - 0.1),
            ..counts
        }
    }
}

/// Invariant (rule 4's second look, `src/README.md`): a regular tick whose workers' CPU dipped
/// by a quarter makes the controller decide again a quarter interval later, before the next
/// regular tick, and that decision grows on the fall (to 4 × the CPU cap: 3 -> 16) once.
#[test]
fn a_cpu_dip_mid_tick_is_looked_at_again_before_the_next_tick() {
    // A long interval, so the look (at a quarter of it) cannot be mistaken for a late tick.
    let interval = Duration::from_millis(400);
    let elapsed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut config = Config::default();
    config.min = 3;
    config.max = 64;
    config.interval = interval;
    config.climb = false;
    let pool = AdaptivePool::builder()
        .config(config)
        .signals(Switching {
            interval,
            full_samples: 0,
            elapsed: elapsed.clone(),
        })
        .build()
        .unwrap();
    let release = spawn_gated(&pool, 20);
    let grew = |p: &AdaptivePool| {
        p.history()
            .iter()
            .any(|e| matches!(e.reason, Reason::CpuFell { .. }))
    };
    assert!(
        eventually(&pool, grew),
        "{:?}\n{}",
        pool.history(),
        p_last(&pool)
    );
    let history = pool.history();
    let fell: Vec<_> = history
        .iter()
        .filter(|e| matches!(e.reason, Reason::CpuFell { .. }))
        .collect();
    assert_eq!(fell.len(), 1, "{history:?}");
    assert_eq!((fell[0].from, fell[0].to), (3, 16), "{history:?}");
    let samples = elapsed.lock().unwrap().clone();
    let on = usize::try_from(fell[0].tick).unwrap() - 1;
    // Grown on a sample shorter than the interval: the look, not the next regular tick.
    assert!(samples[on] < interval, "{samples:?}\n{history:?}");
    assert!(
        on >= 2 && samples[on - 1] >= interval,
        "{samples:?}\n{history:?}"
    );
    drop(release);
    pool.shutdown();
    assert!(pool.stats().is_balanced());
}

/// What `HeldThenBlocking` has seen: every sample's `elapsed`, and the midway looks' reads of
/// the process's CPU.
#[derive(Default)]
struct Seen {
    samples: Vec<Duration>,
    glances: usize,
}

/// W4's CPU-and-sleep phase held at 20 workers (figures from a traced run on 2 cores: 7.9 of
/// 20 busy workers blocked, the cores full, a backlog the rules hold and would grow on
/// demand), until the `switch_at`-th early sample: from there on the tasks sleep (nearly every
/// busy worker blocked, the process at 0.1 cores). The switch happens inside the script, right
/// after an early look, whatever the test thread's pace. The first midway read panics (with a
/// payload whose `Drop` panics). With
/// `mixed_first`, the first sample after the switch reads the old load's last tasks beside the
/// new (the process at 0.4 cores, 140 µs of CPU a task, the split still the old load's): a
/// window the rules hold on.
struct HeldThenBlocking {
    interval: Duration,
    switch_at: usize,
    mixed_first: bool,
    early_samples: usize,
    samples_after_switch: usize,
    seen: Arc<std::sync::Mutex<Seen>>,
}

impl HeldThenBlocking {
    fn switched(&self) -> bool {
        self.early_samples >= self.switch_at
    }
}

impl Signals for HeldThenBlocking {
    fn sample(&mut self, pool: &ThreadPool, elapsed: Duration) -> Snapshot {
        let counts = counts_of(pool, elapsed);
        let busy = counts.running as f64;
        let share = elapsed.as_secs_f64() / self.interval.as_secs_f64();
        let mixed = self.switched() && self.mixed_first && self.samples_after_switch == 0;
        if self.switched() {
            self.samples_after_switch += 1;
        }
        // Completions per second, blocked share of the busy workers, the workers' CPU, the
        // process's CPU.
        let (per_second, blocked_share, worker_cpu, process_cpu) = if mixed {
            (2800.0, 0.45, 1.7, 0.4)
        } else if self.switched() {
            (3800.0, 1.0 - 1.0 / busy.max(1.0), 0.3, 0.1)
        } else {
            (1900.0, 0.4, 1.99, 1.99)
        };
        let snapshot = Snapshot {
            completed: (per_second * share) as u64,
            blocked: Some(busy * blocked_share),
            worker_cpu: Some(worker_cpu),
            worker_demand: Some(busy * (1.0 - blocked_share)),
            process_cpu: Some(process_cpu),
            ..counts
        };
        if elapsed < self.interval / 4 {
            self.early_samples += 1;
        }
        self.seen.lock().unwrap().samples.push(elapsed);
        snapshot
    }

    fn process_cpu_since_sample(&mut self) -> Option<f64> {
        let glances = {
            let mut seen = self.seen.lock().unwrap();
            seen.glances += 1;
            seen.glances
        };
        if glances == 1 {
            // With a payload whose `Drop` panics too (and that payload's: two levels).
            std::panic::panic_any(test_kit::Bomb(2));
        }
        Some(if self.switched() { 0.1 } else { 1.99 })
    }
}

/// Invariant (the midway look, `src/README.md`): after an early look that held a backlog on a
/// pool the rules would still grow, the controller reads the process's CPU halfway to the next
/// tick and samples there only if it fell by a quarter: a steady load costs no sample (and a
/// panicking read none either), a switch to blocking tasks just after the early look grows the
/// pool halfway, not a tick later.
#[test]
fn a_held_backlog_that_turns_to_blocking_grows_midway_to_the_tick() {
    let (history, samples, glances, pool) = run_held_then_blocking(false);
    let interval = pool.config().interval;
    let midway = |e: &Duration| *e >= interval / 4 && *e < interval;
    assert_eq!(history.len(), 1, "{history:?}\n{samples:?}");
    let on = usize::try_from(history[0].tick).unwrap() - 1;
    assert!(history[0].to > 20, "{history:?}");
    // Grown on the midway sample right after the early look that saw the switch.
    assert!(midway(&samples[on]), "{samples:?}\n{history:?}");
    assert!(samples[on - 1] < interval / 4, "{samples:?}\n{history:?}");
    // Before it, two midway reads (one panicked, one steady) and no midway sample.
    assert_eq!(glances, 3, "{samples:?}");
    assert!(!samples[..on].iter().any(midway), "{samples:?}");
    assert_eq!(pool.callback_panics(), 1);
    pool.shutdown();
    assert!(pool.stats().is_balanced());
}

/// Invariant (the midway look's follow-up): a midway sample that holds (its window still held
/// the old load's tasks) looks again after the early gap, not a tick later.
#[test]
fn a_midway_sample_that_holds_looks_again_after_the_gap() {
    let (history, samples, _, pool) = run_held_then_blocking(true);
    let interval = pool.config().interval;
    assert_eq!(history.len(), 1, "{history:?}\n{samples:?}");
    let on = usize::try_from(history[0].tick).unwrap() - 1;
    assert!(history[0].to > 20, "{history:?}");
    // Grown on an early sample right after the midway one that held.
    assert!(samples[on] < interval / 4, "{samples:?}\n{history:?}");
    assert!(
        samples[on - 1] >= interval / 4 && samples[on - 1] < interval,
        "{samples:?}\n{history:?}"
    );
    pool.shutdown();
    assert!(pool.stats().is_balanced());
}

/// Runs `HeldThenBlocking` on a 20-worker pool, submitting until it grows; returns the
/// history, every sample's `elapsed`, the midway reads and the pool.
fn run_held_then_blocking(
    mixed_first: bool,
) -> (
    Vec<policy_adaptive::ScalingEvent>,
    Vec<Duration>,
    usize,
    AdaptivePool,
) {
    // A long interval, so the midway sample (half of it) cannot be mistaken for an early look
    // (10 ms) or a tick, and the tick comes half an interval after it.
    let interval = Duration::from_secs(1);
    let seen = Arc::new(std::sync::Mutex::new(Seen::default()));
    let mut config = Config::default();
    config.min = 20;
    config.max = 64;
    config.interval = interval;
    config.climb = false;
    config.starvation_after = Duration::from_secs(60);
    let pool = AdaptivePool::builder()
        .config(config)
        .signals(HeldThenBlocking {
            interval,
            // Early look 1 comes before any tick (no midway look: no tick's CPU to fall
            // from); looks 2 and 3 are followed by a panicking and a steady midway read.
            switch_at: 4,
            mixed_first,
            early_samples: 0,
            samples_after_switch: 0,
            seen: seen.clone(),
        })
        .build()
        .unwrap();
    let release = spawn_gated(&pool, 60);
    // A submission that finds work queued asks for the early look; keep submitting (gated
    // tasks, queued behind the 20 running) until the pool grows.
    let (more, gate) = mpsc::channel::<()>();
    let gate = Arc::new(std::sync::Mutex::new(gate));
    let deadline = Instant::now() + PATIENCE;
    while pool.history().is_empty() && Instant::now() < deadline {
        let gate = gate.clone();
        pool.spawn(move || {
            let _ = gate.lock().map(|rx| rx.recv());
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let history = pool.history();
    let (samples, glances) = {
        let seen = seen.lock().unwrap();
        (seen.samples.clone(), seen.glances)
    };
    drop((release, more));
    (history, samples, glances, pool)
}

/// Sleepers (nearly every busy worker blocked, hardly any CPU) with `queued` tasks queued
/// whatever the pool holds: every sample reads the same backlog, so only the controller's
/// cheap look, which reads the pool's own queue, can tell that it was gone in between.
struct AlwaysQueued {
    queued: u64,
}

impl Signals for AlwaysQueued {
    fn sample(&mut self, pool: &ThreadPool, elapsed: Duration) -> Snapshot {
        let counts = counts_of(pool, elapsed);
        Snapshot {
            queued: self.queued,
            completed: 10,
            blocked: Some(counts.running as f64 * 0.97),
            worker_cpu: Some(0.01),
            worker_demand: Some(0.02),
            ..counts
        }
    }
}

/// Invariant (rule 4's burst, `src/README.md`): a burst grows by at most the backlog the last
/// sample read too, and a look between samples that finds the queue empty (or covered by
/// workers not running a task) ends that backlog: the next sample's backlog is new, and grows
/// the pool by one, however large it reads. Without the second half, a closed loop's instant
/// backlogs, each read once with empty queues between, would add up to bursts.
#[test]
fn a_look_that_finds_the_queue_empty_makes_the_next_backlog_new() {
    let mut config = Config::default();
    config.min = 2;
    config.max = 16;
    // No regular tick and no starvation within the test: every decision is an early look.
    config.interval = Duration::from_secs(60);
    config.starvation_after = Duration::from_secs(60);
    let pool = AdaptivePool::builder()
        .config(config)
        .signals(AlwaysQueued { queued: 20 })
        .build()
        .unwrap();
    // Both workers held by tasks submitted to the pool itself (no early look asked).
    let gate = test_kit::WorkerGate::occupy(pool.pool(), 2);
    assert_eq!(pool.skipped_looks(), 0);
    // One task through the adaptive pool, held once it starts (which needs a worker more).
    let hold_one = || test_kit::WorkerGate::occupy_through(1, |task| pool.spawn(task).is_ok());
    // A third task queues and asks for a look: a sample (20 queued, none read before): 2 -> 3.
    let third = hold_one();
    // The look after the growth finds the new worker took it (or is taking it): no sample.
    assert!(test_kit::eventually(|| pool.skipped_looks() >= 1));
    // A fourth task queues behind three busy workers: the sample reads 20 again, a backlog
    // the look in between saw gone, so one worker more, not 3 -> 16.
    let fourth = hold_one();
    // The new worker may start it before the controller has recorded the step.
    assert!(test_kit::eventually(|| pool.history().len() >= 2));
    let history = pool.history();
    let steps: Vec<_> = history.iter().map(|e| (e.from, e.to, e.reason)).collect();
    assert_eq!(
        steps,
        [
            (2, 3, Reason::NewBacklog { queued: 20 }),
            (3, 4, Reason::NewBacklog { queued: 20 }),
        ]
    );
    for held in [gate, third, fourth] {
        held.open();
    }
    pool.shutdown();
    let stats = pool.stats();
    assert_eq!(stats.completed, 4, "{stats}");
    assert!(stats.is_balanced(), "{stats}");
}
