//! The round's adaptive pool: an `AdaptivePool` beside the round's pool, on a priority queue of
//! its own, whose signal source and scaling hook panic at random (with a string, or with a
//! payload whose `Drop` panics) and hold values whose `Drop` panics. Hostile tasks, jobs that
//! block (so it grows, and shrinks after) and DAG runs go through it.
//!
//! After the round it grows and shrinks a few more times, then: every panic the source and the
//! hook threw was caught and counted by the controller (`callback_panics`, exactly: `decide`
//! never panics, so any other count is a defect), the controller ticked, its books balance with
//! no thread left, as many workers stopped as started, and dropping it lets no panic out (its
//! hook's captured value is dropped quietly).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use policy_adaptive::{AdaptivePool, PoolSignals, Signals, Snapshot, WorkerThreads};
use policy_priority::PriorityQueue;
use pool_core::{drop_quietly, Priority, TaskOptions, ThreadPool};

use super::kit::{tolerate, Bomb, Census, Dice, Ending};
use super::pool_ops::{hostile_task, Held, HeldTask};
use super::{patience, policy_ops, Parts, Round};

/// How often the source and the hook panic when the part is on, in percent of their calls.
const STRIKE_PERCENT: u32 = 20;

/// The adaptive pool of a round and what its checks need.
pub struct Adaptive {
    pub pool: AdaptivePool,
    queue: PriorityQueue,
    /// Panics thrown by the source and the hook.
    thrown: Arc<AtomicU64>,
    started: Arc<AtomicU64>,
    stopped: Arc<AtomicU64>,
}

/// Panics on a roll of the dice, half the time with a payload whose `Drop` panics, counting it
/// in `thrown` first.
#[derive(Clone)]
struct Striker {
    dice: Arc<Dice>,
    percent: u32,
    thrown: Arc<AtomicU64>,
    census: Census,
}

impl Striker {
    fn strike(&self, what: &str) {
        if self.dice.roll(self.percent) {
            self.thrown.fetch_add(1, Ordering::SeqCst);
            let ending = if self.dice.roll(50) {
                Ending::Panics
            } else {
                Ending::PanicsWithPayload
            };
            ending.act(&self.census, what);
        }
    }
}

/// The pool's own signals, striking before each call, holding a value whose `Drop` panics.
struct HostileSource {
    inner: PoolSignals,
    striker: Striker,
    _armed: Bomb,
}

impl Signals for HostileSource {
    fn sample(&mut self, pool: &ThreadPool, elapsed: Duration) -> Snapshot {
        self.striker.strike("a signal source's sample");
        self.inner.sample(pool, elapsed)
    }

    fn process_cpu_since_sample(&mut self) -> Option<f64> {
        self.striker.strike("a signal source's midway figure");
        self.inner.process_cpu_since_sample()
    }
}

/// The round's adaptive pool: 1 to 6 workers, a 1 ms tick and a 10 ms keep-alive, so a short
/// round sees it grow and shrink.
pub fn build(seed: u64, parts: Parts, census: &Census) -> Adaptive {
    let percent = if parts.adaptive { STRIKE_PERCENT } else { 0 };
    let armed = parts.adaptive;
    let thrown = Arc::new(AtomicU64::new(0));
    let striker = Striker {
        dice: Arc::new(Dice::new(seed ^ 0xADA9)),
        percent,
        thrown: Arc::clone(&thrown),
        census: census.clone(),
    };
    let (started, stopped) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let workers = WorkerThreads::new();
    let (count_start, count_stop) = (Arc::clone(&started), Arc::clone(&stopped));
    let queue = PriorityQueue::new();
    let hook_striker = striker.clone();
    let hook_armed = Bomb::new(u64::MAX, armed, census);
    let pool = AdaptivePool::builder()
        .pool(
            workers.recording(
                ThreadPool::builder()
                    .thread_name("hostile-adaptive")
                    .queue_policy(queue.clone())
                    .on_thread_start(move |_| {
                        count_start.fetch_add(1, Ordering::SeqCst);
                    })
                    .on_thread_stop(move |_| {
                        count_stop.fetch_add(1, Ordering::SeqCst);
                    }),
            ),
        )
        .min(1)
        .max(6)
        .interval(Duration::from_millis(1))
        .keep_alive(Duration::from_millis(10))
        .signals(HostileSource {
            inner: PoolSignals::new(workers),
            striker,
            _armed: Bomb::new(u64::MAX - 1, armed, census),
        })
        .on_scale(move |_event| {
            let _ = &hook_armed;
            hook_striker.strike("a scaling hook");
        })
        .build()
        .expect("valid adaptive pool");
    Adaptive {
        pool,
        queue,
        thrown,
        started,
        stopped,
    }
}

impl Adaptive {
    /// Its state, for a dump.
    pub fn dump(&self) -> String {
        format!(
            "adaptive pool: {} (target {}, {} ticks, {} panics caught of {} thrown)\n\
             its priority levels:\n{}",
            self.pool.stats(),
            self.pool.threads(),
            self.pool.ticks(),
            self.pool.callback_panics(),
            self.thrown.load(Ordering::SeqCst),
            self.queue.stats()
        )
    }
}

/// One operation on the round's adaptive pool: a hostile task (held), a job that blocks for a
/// moment before a hostile task (the backlog it grows for), or a small DAG run through it as an
/// executor.
pub fn op(round: &Round, rng: &mut fastrand::Rng, index: u64) -> Option<Held> {
    let adaptive = &round.adaptive.pool;
    let (task, panics, runs) = hostile_task(round, rng, index, round.parts.core);
    match rng.u32(..10) {
        0..=4 => {
            let level = Priority::ALL[rng.usize(..5)];
            let options = TaskOptions::new().priority(level);
            let Ok(handle) = adaptive.submit_with(options, task) else {
                panic!("{}: a running adaptive pool refused a task", round.ctx());
            };
            Some(Held::Task(HeldTask::new(handle, index, panics, runs)))
        }
        5..=8 => {
            let pause = Duration::from_micros(200 + rng.u64(..1800));
            let job = move || {
                std::thread::sleep(pause);
                tolerate(move || drop(task()));
            };
            if let Err(refused) = adaptive.spawn(job) {
                drop_quietly(refused);
                panic!("{}: a running adaptive pool refused a job", round.ctx());
            }
            None
        }
        _ => {
            tolerate(move || drop(task));
            let graph = policy_ops::benign_graph(rng);
            let report = graph.run(adaptive);
            assert_eq!(
                report.len(),
                graph.len(),
                "{}: a run on the adaptive pool lost nodes",
                round.ctx()
            );
            None
        }
    }
}

/// How many times the round ends by growing the adaptive pool and letting it shrink back.
const CYCLES: usize = 3;

/// Grows the adaptive pool and lets it shrink back to one worker, `CYCLES` times, so every round
/// calls the source and the hook many times (a round's operations alone take a few ticks).
/// A controller that a panic stopped would never grow the pool again: this fails with a dump
/// within `patience()`.
fn grow_and_shrink(ctx: &str, adaptive: &Adaptive) {
    let pool = &adaptive.pool;
    let dump = || adaptive.dump();
    let until = |what: &str, done: &dyn Fn() -> bool, step: &dyn Fn()| {
        let deadline = Instant::now() + patience();
        while !done() {
            assert!(Instant::now() < deadline, "{ctx}: {what}\n{}", dump());
            step();
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    for cycle in 0..CYCLES {
        // Jobs that block for 2 ms, a few at a time until it grows (the first may run before
        // the controller looks).
        until(
            &format!("cycle {cycle}: the adaptive pool never grew"),
            &|| pool.threads() > 1,
            &|| {
                if pool.pool().queue_len() < 8 {
                    for _ in 0..4 {
                        let _ = pool.spawn(|| std::thread::sleep(Duration::from_millis(2)));
                    }
                }
            },
        );
        until(
            &format!("cycle {cycle}: the adaptive pool never shrank back"),
            &|| pool.threads() == 1 && pool.stats().live_threads == 1,
            &|| {},
        );
    }
}

/// Grows and shrinks the adaptive pool (`grow_and_shrink`), shuts it down and checks it (see
/// the module's doc); then drops it, where no panic may come out.
pub fn finish(ctx: &str, dump: &str, adaptive: Adaptive) {
    grow_and_shrink(ctx, &adaptive);
    adaptive.pool.shutdown();
    let stats = adaptive.pool.stats();
    assert!(stats.is_balanced(), "{ctx}: adaptive books\n{dump}");
    assert_eq!(
        (stats.queued, stats.running, stats.live_threads),
        (0, 0, 0),
        "{ctx}: the adaptive pool left work or threads\n{dump}"
    );
    assert_eq!(
        adaptive.started.load(Ordering::SeqCst),
        adaptive.stopped.load(Ordering::SeqCst),
        "{ctx}: every adaptive worker that started stopped\n{dump}"
    );
    assert!(adaptive.pool.ticks() > 0, "{ctx}: no tick\n{dump}");
    assert_eq!(
        adaptive.pool.callback_panics(),
        adaptive.thrown.load(Ordering::SeqCst),
        "{ctx}: the controller caught a panic that was not thrown, or missed one\n{dump}"
    );
    drop(adaptive);
}
