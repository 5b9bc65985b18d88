//! Hostile figures. `decide` and `grows_on_demand` are public and pure: a custom `Signals` (or
//! a test of the user's) may hand them any snapshot, in any order, under any valid config; and a
//! custom `Signals` hands the controller any snapshot too. Seeded random sequences of hostile
//! snapshots (counts at `u64::MAX`, durations at `Duration::MAX`, NaN and infinite CPU figures,
//! zero cores) must never panic, in a debug build too (overflow checks on), every decision must
//! stay within `min..=max`, and a pool fed such figures must keep ticking and lose no task.
//!
//! Hostile code: a source and a scaling hook that panic with payloads whose own `Drop` panics,
//! and whose own `Drop` panics too, must never stop the controller.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use policy_adaptive::{
    decide, grows_on_demand, AdaptiveBuildError, AdaptivePool, Config, ControllerState, Memory,
    PoolSignals, Signals, Snapshot, WorkerStates, WorkerThreads,
};
use pool_core::ThreadPool;
use test_kit::{eventually, Bomb, Fuse, PATIENCE};

fn pick<T: Copy>(rng: &mut fastrand::Rng, values: &[T]) -> T {
    values[rng.usize(..values.len())]
}

fn duration(rng: &mut fastrand::Rng) -> Duration {
    match rng.u8(..6) {
        0 => Duration::ZERO,
        1 => Duration::MAX,
        2 => Duration::from_nanos(rng.u64(..)),
        3 => Duration::from_millis(rng.u64(..1000)),
        4 => Duration::from_nanos(1),
        _ => Duration::from_millis(100),
    }
}

fn figure(rng: &mut fastrand::Rng) -> Option<f64> {
    match rng.u8(..9) {
        0 => None,
        1 => Some(f64::NAN),
        2 => Some(f64::INFINITY),
        3 => Some(f64::NEG_INFINITY),
        4 => Some(-1.0),
        5 => Some(1e300),
        6 => Some(0.0),
        _ => Some(rng.f64() * 300.0),
    }
}

fn tasks(rng: &mut fastrand::Rng) -> u64 {
    match rng.u8(..5) {
        0 => 0,
        1 => u64::MAX,
        2 => rng.u64(..),
        _ => rng.u64(..300),
    }
}

fn size(rng: &mut fastrand::Rng, config: &Config) -> usize {
    match rng.u8(..6) {
        0 => 0,
        1 => usize::MAX,
        2 => config.min,
        3 => config.max,
        _ => rng.usize(..300),
    }
}

/// A valid config with its fields at their extremes.
fn config(rng: &mut fastrand::Rng) -> Config {
    let mut config = Config::default();
    config.min = pick(rng, &[1, 1, 2, 64]);
    config.max = config
        .min
        .max(pick(rng, &[1, 4, 128, ThreadPool::MAX_THREADS]));
    config.interval = pick(
        rng,
        &[
            Config::INTERVAL_RANGE.0,
            Duration::from_millis(100),
            Config::INTERVAL_RANGE.1,
        ],
    );
    config.keep_alive = pick(
        rng,
        &[
            Duration::MAX,
            Duration::from_nanos(1),
            Duration::from_secs(2),
        ],
    );
    config.starvation_after = pick(
        rng,
        &[
            Duration::MAX,
            Duration::from_nanos(1),
            Duration::from_secs(1),
        ],
    );
    config.climb_window = pick(rng, &[1, 5, u32::MAX]);
    config.cpu_threads_per_core = pick(rng, &[1.0, 2.0, 64.0]);
    config.spare_cpu = pick(rng, &[0.0, 0.75, 1.0]);
    config.saturated_cpu = pick(rng, &[0.0, 0.9, 1.0]);
    config.memory_low = pick(rng, &[0.0, 0.1, 1.0]);
    config.host_cpu_guard = pick(rng, &[0.0, 0.9, 1.0]);
    config.climb_tolerance = pick(rng, &[0.0, 0.05, 1.0]);
    assert_eq!(config.validate(), Ok(()));
    config
}

fn snapshot(rng: &mut fastrand::Rng, config: &Config, target: usize) -> Snapshot {
    Snapshot {
        elapsed: duration(rng),
        cores: pick(rng, &[0, 1, 2, 64, usize::MAX]),
        threads: size(rng, config),
        // Mostly the last decision's target, as the controller hands it on.
        target: if rng.bool() {
            target
        } else {
            size(rng, config)
        },
        queued: tasks(rng),
        running: tasks(rng),
        completed: tasks(rng),
        blocked: figure(rng),
        worker_cpu: figure(rng),
        worker_demand: figure(rng),
        memory: rng.bool().then(|| Memory {
            available: tasks(rng),
            limit: tasks(rng),
        }),
        host_cpu: figure(rng),
        process_cpu: figure(rng),
        oldest_wait: duration(rng),
        states: rng.bool().then(|| WorkerStates {
            runnable: pick(rng, &[0, 1, 4, u32::MAX]),
            blocked: pick(rng, &[0, 3, 8, u32::MAX]),
        }),
    }
}

/// A config built by hand and never validated: every field anywhere, `min` above `max`, zero
/// and NaN included.
fn unvalidated_config(rng: &mut fastrand::Rng) -> Config {
    let mut config = Config::default();
    config.min = pick(rng, &[0, 1, 3, 64, ThreadPool::MAX_THREADS + 1, usize::MAX]);
    config.max = pick(
        rng,
        &[0, 1, 2, 128, ThreadPool::MAX_THREADS + 1, usize::MAX],
    );
    config.interval = duration(rng);
    config.keep_alive = duration(rng);
    config.starvation_after = duration(rng);
    config.climb_window = pick(rng, &[0, 1, u32::MAX]);
    config.climb_hold = pick(rng, &[0, 2, u32::MAX]);
    config.climb = rng.bool();
    let mut threshold = || figure(rng).unwrap_or(f64::NAN);
    config.cpu_threads_per_core = threshold();
    config.spare_cpu = threshold();
    config.saturated_cpu = threshold();
    config.memory_low = threshold();
    config.host_cpu_guard = threshold();
    config.climb_tolerance = threshold();
    config
}

/// Runs 40 decisions on hostile snapshots under `config` (seeded by `seed`): none may panic
/// `decide` or `grows_on_demand`, and every target must be within `bounds`.
fn decide_on_hostile_snapshots(
    seed: u64,
    rng: &mut fastrand::Rng,
    config: &Config,
    bounds: std::ops::RangeInclusive<usize>,
) {
    let mut state = ControllerState::new();
    let mut target = *bounds.start();
    for step in 0..40 {
        let s = snapshot(rng, config, target);
        let decided = catch_unwind(AssertUnwindSafe(|| {
            let _ = grows_on_demand(&s, config);
            let _ = (s.throughput(), s.to_string(), s.states.map(|w| w.read()));
            decide(&s, &mut state, config)
        }));
        let decision = decided.unwrap_or_else(|_| {
            panic!("seed {seed}, step {step}: panicked on {s:?} under {config:?}")
        });
        assert!(
            bounds.contains(&decision.target),
            "seed {seed}, step {step}: {decision:?} on {s:?} under {config:?}"
        );
        target = decision.target;
    }
}

/// Invariant: no snapshot makes `decide` or `grows_on_demand` panic, and every decision is
/// within `min..=max`. Fails without `Snapshot::bounded` (a count times a factor overflows)
/// or with the tick timers' plain `+=` (`Duration::MAX` ticks).
#[test]
fn no_snapshot_panics_the_decision_or_takes_it_out_of_bounds() {
    for seed in 0..5_000 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let config = config(&mut rng);
        decide_on_hostile_snapshots(seed, &mut rng, &config, config.min..=config.max);
    }
}

/// Invariant: `decide` and `grows_on_demand` are public, so a config that never went through
/// `validate` reaches them too: none panics them, and every decision is within the nearest
/// valid bounds (`min` into `1..=MAX_THREADS`, `max` into `min..=MAX_THREADS`). Fails without
/// `Config::bounded`: `min` above `max` panicked a clamp.
#[test]
fn an_unvalidated_config_never_panics_the_decision() {
    let mut invalid = 0;
    for seed in 0..5_000 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let config = unvalidated_config(&mut rng);
        invalid += usize::from(config.validate().is_err());
        let low = config.min.clamp(1, ThreadPool::MAX_THREADS);
        let high = config.max.clamp(low, ThreadPool::MAX_THREADS);
        decide_on_hostile_snapshots(seed, &mut rng, &config, low..=high);
    }
    assert!(
        invalid > 4_000,
        "only {invalid} of the configs were invalid"
    );
}

/// A `Signals` that reports hostile figures, seeded: every snapshot from `snapshot` above, and
/// the midway look's figure from `figure`.
struct HostileSignals {
    rng: fastrand::Rng,
    config: Config,
}

impl Signals for HostileSignals {
    fn sample(&mut self, pool: &ThreadPool, _elapsed: Duration) -> Snapshot {
        snapshot(&mut self.rng, &self.config, pool.threads())
    }

    fn process_cpu_since_sample(&mut self) -> Option<f64> {
        figure(&mut self.rng)
    }
}

/// Invariant: a controller fed hostile figures keeps ticking (early looks and midway looks
/// included: tasks keep coming), never resizes outside `min..=max`, and catches no panic of its
/// own (the source here never panics, so any caught panic would be the controller's); every
/// task completes and the books balance.
#[test]
fn a_pool_fed_hostile_figures_keeps_ticking_within_its_bounds() {
    let mut config = Config::default();
    config.min = 2;
    config.max = 12;
    config.interval = Config::INTERVAL_RANGE.0;
    config.keep_alive = Duration::from_millis(20);
    let out_of_bounds = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&out_of_bounds);
    let pool = AdaptivePool::builder()
        .config(config.clone())
        .signals(HostileSignals {
            rng: fastrand::Rng::with_seed(13),
            config: config.clone(),
        })
        .on_scale(move |event| {
            if !(2..=12).contains(&event.to) {
                seen.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build()
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    let mut submitted = 0u64;
    // 500 decisions, with tasks arriving in between (a submission asks for early looks).
    while pool.ticks() < 500 && Instant::now() < deadline {
        for _ in 0..4 {
            pool.spawn(|| std::thread::sleep(Duration::from_micros(200)))
                .unwrap();
            submitted += 1;
        }
        assert!((2..=12).contains(&pool.threads()), "{}", pool.threads());
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        pool.ticks() >= 500,
        "the controller stopped at {} ticks",
        pool.ticks()
    );
    assert_eq!(pool.callback_panics(), 0);
    assert_eq!(
        out_of_bounds.load(Ordering::SeqCst),
        0,
        "{:?}",
        pool.history()
    );
    pool.shutdown();
    let stats = pool.stats();
    assert!(stats.is_balanced(), "{stats}");
    assert_eq!(stats.completed, submitted, "{stats}");
}

/// The pool's own signals, but every fourth sample and every midway figure panics with a
/// `Bomb(2)` (its payload's `Drop` panics, and that payload's too).
struct BombingSignals {
    inner: PoolSignals,
    samples: u64,
    _fuse: Fuse,
}

impl Signals for BombingSignals {
    fn sample(&mut self, pool: &ThreadPool, elapsed: Duration) -> Snapshot {
        self.samples += 1;
        if self.samples.is_multiple_of(4) {
            std::panic::panic_any(Bomb(2));
        }
        self.inner.sample(pool, elapsed)
    }

    fn process_cpu_since_sample(&mut self) -> Option<f64> {
        std::panic::panic_any(Bomb(2))
    }
}

/// Invariant: a panic of user code on the controller thread (the source, the hook), whose
/// payload's `Drop` panics, is caught with its payload: the controller lives on, grows and
/// shrinks the pool again after each such panic, and the source's and the hook's own `Drop`s
/// (which panic too) run once each, quietly, when the pool is dropped. Before the payloads
/// were dropped quietly, the first scaling event's hook panic ended the controller thread: the
/// pool kept its size for good.
#[test]
fn panics_whose_payloads_panic_on_drop_never_stop_the_controller() {
    test_kit::quiet_panics(|_| false);
    let dropped = Arc::new(AtomicUsize::new(0));
    let hook_calls = Arc::new(AtomicUsize::new(0));
    let (calls, fuse) = (Arc::clone(&hook_calls), Fuse::new(&dropped));
    // The pool's own source, on a pool whose hooks record its workers for it.
    let workers = WorkerThreads::new();
    let pool = AdaptivePool::builder()
        .pool(workers.recording(ThreadPool::builder()))
        .min(1)
        .max(4)
        .interval(Duration::from_millis(10))
        .keep_alive(Duration::from_millis(20))
        .signals(BombingSignals {
            inner: PoolSignals::new(workers),
            samples: 0,
            _fuse: Fuse::new(&dropped),
        })
        .on_scale(move |_| {
            let _ = &fuse;
            calls.fetch_add(1, Ordering::SeqCst);
            std::panic::panic_any(Bomb(2));
        })
        .build()
        .unwrap();
    // Three rounds of 4 blocked tasks: each grows the pool to 4 (the hook panics), and once
    // released, shrinks it back to 1 (the hook panics again).
    for round in 1..=3 {
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        for _ in 0..4 {
            let gate = Arc::clone(&gate);
            pool.spawn(move || {
                let _ = gate.lock().map(|rx| rx.recv());
            })
            .unwrap();
        }
        assert!(
            eventually(|| pool.threads() == 4),
            "round {round}: no growth; {} ticks, {:?}, last {:?}, {}",
            pool.ticks(),
            pool.history(),
            pool.last_decision(),
            pool.stats()
        );
        drop(release);
        assert!(
            // The retired workers gone too: one still finishing its exit would take the next
            // round's tasks, and leave no backlog to grow for.
            eventually(|| pool.threads() == 1 && pool.stats().live_threads == 1),
            "round {round}: no shrink; {} ticks, {:?}",
            pool.ticks(),
            pool.history()
        );
    }
    // The last shrink's hook runs just after the count the loop waited for: wait for the
    // calls themselves (the CI run of stop 68 read 5 of 6 here).
    let grown_and_shrunk = eventually(|| {
        hook_calls.load(Ordering::SeqCst) >= 6
            && pool.history().len() == hook_calls.load(Ordering::SeqCst)
    });
    let calls = hook_calls.load(Ordering::SeqCst);
    assert!(
        grown_and_shrunk,
        "{calls} hook calls, history {:?}",
        pool.history()
    );
    assert!(
        pool.callback_panics() >= calls as u64,
        "{} caught panics, {calls} hook calls",
        pool.callback_panics()
    );
    assert_eq!(
        pool.history().len(),
        calls,
        "each scaling event called the hook"
    );
    drop(pool); // the source's and the hook's `Drop`s panic here, quietly
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        2,
        "the source and the hook, once each"
    );
}

/// An adaptive builder whose source, hook and pool builder (a start hook) each hold a [`Fuse`]
/// counting into `dropped`.
fn fused_builder(dropped: &Arc<AtomicUsize>) -> policy_adaptive::AdaptivePoolBuilder {
    let (start, scale) = (Fuse::new(dropped), Fuse::new(dropped));
    let workers = WorkerThreads::new();
    let pool = ThreadPool::builder().on_thread_start(move |_| {
        let _ = &start;
    });
    AdaptivePool::builder()
        .pool(workers.recording(pool))
        .signals(BombingSignals {
            inner: PoolSignals::new(workers),
            samples: 0,
            _fuse: Fuse::new(dropped),
        })
        .on_scale(move |_| {
            let _ = &scale;
        })
}

/// Invariant: a build that fails returns its typed error, naming the setting, and what the
/// builder held (the source, the hook and the user's pool builder, all user code) is dropped
/// quietly on the way, once each: a panicking `Drop` turns neither the error into a panic nor,
/// two at a time, the process into an abort. The same for a builder dropped without building.
#[test]
fn a_failed_build_drops_its_source_hook_and_pool_builder_quietly() {
    test_kit::quiet_panics(|_| false);
    let dropped = Arc::new(AtomicUsize::new(0));
    type IsExpected = fn(&AdaptiveBuildError) -> bool;
    let checks: [(policy_adaptive::AdaptivePoolBuilder, IsExpected); 3] = [
        (fused_builder(&dropped).min(3).max(2), |e| {
            matches!(e, AdaptiveBuildError::Config(_))
        }),
        (
            fused_builder(&dropped).thread_name("a\0b"),
            |e| matches!(e, AdaptiveBuildError::Pool(p) if p.is_invalid_name()),
        ),
        // More stack than the address space holds: the OS refuses the first worker.
        (
            fused_builder(&dropped).stack_size(1 << 62),
            |e| matches!(e, AdaptiveBuildError::Pool(p) if p.is_spawn_failure()),
        ),
    ];
    for (round, (builder, is_expected)) in checks.into_iter().enumerate() {
        let error = builder.build().expect_err("a bad setting");
        assert!(is_expected(&error), "round {round}: {error}");
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            3 * (round + 1),
            "round {round}"
        );
    }
    drop(fused_builder(&dropped)); // would abort here
    assert_eq!(dropped.load(Ordering::SeqCst), 3 * 4);
}
