//! The hostile pool-core operations, the driver loop that mixes in the policies' operations, and
//! the final shutdown racing late hostile work.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::Poll;

use policy_priority::{PriorityQueue, PrioritySubmit};
use pool_core::{drop_quietly, Priority, QueuePolicy, TaskError, TaskHandle, ThreadPool};

use super::kit::{poll_with_hostile_waker, tolerate, Bomb, Census, Dice, Ending};
use super::policy_ops::{self, HeldCoalesced, HeldRun};
use super::queue_policy::HostileQueue;
use super::{patience, Hooks, Parts, Round};

/// The round's pool: two workers, the priority queue, and start/stop/park/unpark hooks and a
/// panic handler that panic at random when the `core` part is on; the start and stop hooks then
/// also hold values whose `Drop` panics (dropped with the pool, at the round's end). A refused
/// build with such hooks comes first: its typed error, nothing unwinding. With the `policy`
/// part, the queue comes through a policy whose methods panic (`queue_policy.rs`), after a
/// build refused by that policy's panicking `attach`.
pub fn build_pool(
    seed: u64,
    parts: Parts,
    hooks: &Arc<Hooks>,
    queue: &PriorityQueue,
    census: &Census,
) -> ThreadPool {
    let armed = |id| Bomb::new(id, parts.core, census);
    let (start, stop) = (armed(u64::MAX - 4), armed(u64::MAX - 5));
    let refused = ThreadPool::builder()
        .threads(0)
        .on_thread_start(move |_| {
            let _ = &start;
        })
        .on_thread_stop(move |_| {
            let _ = &stop;
        })
        .build();
    assert!(
        refused.is_err_and(|error| error.is_zero_threads()),
        "seed {seed}: a refused build"
    );
    let policy: Box<dyn QueuePolicy> = if parts.policy {
        let refusing = HostileQueue::new(queue, seed, census, true);
        let refused = ThreadPool::builder()
            .threads(2)
            .boxed_queue_policy(Box::new(refusing))
            .build();
        assert!(
            refused.is_err_and(|error| error.is_policy_refused()),
            "seed {seed}: a build whose policy's attach panics"
        );
        Box::new(HostileQueue::new(queue, seed, census, false))
    } else {
        Box::new(queue.clone())
    };
    let percent = if parts.core { 20 } else { 0 };
    let dice = Arc::new(Dice::new(seed ^ 0x400C));
    let (started, stopped, handled) = (hooks.clone(), hooks.clone(), hooks.clone());
    let start = trap(&dice, percent, "start hook");
    let stop = trap(&dice, percent, "stop hook");
    let (start_held, stop_held) = (armed(u64::MAX - 2), armed(u64::MAX - 3));
    ThreadPool::builder()
        .threads(2)
        .thread_name("hostile")
        .boxed_queue_policy(policy)
        .on_thread_start(move |index| {
            let _ = &start_held;
            started.started.fetch_add(1, Ordering::SeqCst);
            start(index);
        })
        .on_thread_stop(move |index| {
            let _ = &stop_held;
            stopped.stopped.fetch_add(1, Ordering::SeqCst);
            stop(index);
        })
        .on_thread_park(trap(&dice, percent, "park hook"))
        .on_thread_unpark(trap(&dice, percent, "unpark hook"))
        .panic_handler(move |_message| {
            handled.panic_handler.fetch_add(1, Ordering::SeqCst);
            if dice.roll(percent) {
                panic!("{}: panic handler", super::kit::MARK);
            }
        })
        .build()
        .expect("valid pool")
}

/// A worker hook that panics on a roll of `dice` at `percent`, naming itself and the worker.
fn trap(dice: &Arc<Dice>, percent: u32, hook: &'static str) -> impl Fn(usize) + Send + Sync {
    let dice = dice.clone();
    move |index| {
        if dice.roll(percent) {
            panic!("{}: {hook} of worker {index}", super::kit::MARK);
        }
    }
}

/// A held pool task (the round's pool's or its adaptive pool's) and what it was planned to do.
pub struct HeldTask {
    handle: TaskHandle<Bomb>,
    index: u64,
    /// It panics when run: its closure panics or the value it captured panics when dropped.
    panics: bool,
    runs: Arc<AtomicU32>,
    /// `cancel()` returned true.
    cancel_won: bool,
}

impl HeldTask {
    pub fn new(handle: TaskHandle<Bomb>, index: u64, panics: bool, runs: Arc<AtomicU32>) -> Self {
        HeldTask {
            handle,
            index,
            panics,
            runs,
            cancel_won: false,
        }
    }
}

pub enum Held {
    Task(HeldTask),
    Coalesced(HeldCoalesced),
    Run(HeldRun),
}

pub fn drive(round: &Arc<Round>, driver: u64, ops: usize) {
    let mut rng = fastrand::Rng::with_seed(round.seed.wrapping_mul(0x1_0000_01B3) ^ driver);
    let mut held: Vec<Held> = Vec::new();
    let batches = round.parts.batch_cancel || round.seed.is_multiple_of(2);
    let cancel_all = round.parts.batch_cancel || !round.seed.is_multiple_of(2);
    for op in 0..ops as u64 {
        round.watchdog.tick();
        round.ops.fetch_add(1, Ordering::SeqCst);
        let index = (driver << 32) | op;
        match rng.u32(..100) {
            0..=24 => {
                if let Some(h) = submit_task(round, &mut rng, index) {
                    held.push(h);
                }
            }
            25..=34 => {
                let child = rng.u32(..100) < 25;
                spawn_job(round, &mut rng, index, child)
            }
            35..=41 => {
                if !held.is_empty() {
                    let i = rng.usize(..held.len());
                    cancel(&mut held[i]);
                }
            }
            42..=45 if batches => map_batch(round, &mut rng, index),
            46 if cancel_all => {
                tolerate(|| round.pool.cancel_all());
            }
            47..=48 => round
                .pool
                .set_threads(1 + rng.usize(..3))
                .expect("resize of a running pool"),
            49..=70 => {
                if let Some(h) = policy_ops::coalesced(round, &mut rng, index) {
                    held.push(Held::Coalesced(h));
                }
            }
            71..=72 => {
                let key = super::kit::Key::new(rng.u8(..4), None);
                tolerate(|| round.coalescer.cancel_key(&key));
            }
            73..=82 => {
                if let Some(h) = policy_ops::dag(round, &mut rng, index) {
                    held.push(Held::Run(h));
                }
            }
            83..=85 if round.parts.nested => {
                if let Some(h) = nested(round, &mut rng, index, batches) {
                    held.push(h);
                }
            }
            86..=90 => {
                if let Some(h) = super::adaptive_ops::op(round, &mut rng, index) {
                    held.push(h);
                }
            }
            _ => {
                if !held.is_empty() {
                    let i = rng.usize(..held.len());
                    resolve(round, held.swap_remove(i));
                }
            }
        }
    }
    for h in held {
        resolve(round, h);
    }
}

fn cancel(held: &mut Held) {
    match held {
        Held::Task(t) => {
            // A cancel drops the closure here, and its captured value may panic on this thread.
            if let Some(true) = tolerate(|| t.handle.cancel()) {
                t.cancel_won = true;
            }
        }
        Held::Coalesced(c) => {
            tolerate(|| c.handle.cancel());
        }
        Held::Run(r) => {
            tolerate(|| r.cancel());
        }
    }
}

pub fn resolve(round: &Round, held: Held) {
    match held {
        Held::Task(t) => resolve_task(round, t),
        Held::Coalesced(c) => policy_ops::resolve_coalesced(round, c),
        Held::Run(r) => policy_ops::resolve_run(round, r),
    }
}

/// A hostile closure for a pool task: it captures a value (armed or not), returns one (armed or
/// not), and ends as `ending` says.
pub fn hostile_task(
    round: &Round,
    rng: &mut fastrand::Rng,
    index: u64,
    hostile: bool,
) -> (impl FnOnce() -> Bomb + Send + 'static, bool, Arc<AtomicU32>) {
    let ending = Ending::pick(rng, hostile);
    let capture_armed = hostile && rng.u32(..100) < 15;
    let output_armed = hostile && rng.u32(..100) < 20;
    let capture = Bomb::new(index, capture_armed, &round.census);
    let census = round.census.clone();
    let runs = Arc::new(AtomicU32::new(0));
    let r = runs.clone();
    let task = move || {
        r.fetch_add(1, Ordering::SeqCst);
        ending.act(&census, "a pool task");
        let output = Bomb::new(index, output_armed, &census);
        drop(capture);
        output
    };
    (task, ending.panics() || capture_armed, runs)
}

fn submit_task(round: &Round, rng: &mut fastrand::Rng, index: u64) -> Option<Held> {
    let (task, panics, runs) = hostile_task(round, rng, index, round.parts.core);
    let submitted = match rng.u32(..3) {
        0 => round.pool.submit(task).map_err(drop_quietly),
        1 => {
            let level = Priority::ALL[rng.usize(..5)];
            round.pool.submit_at(level, task).map_err(drop_quietly)
        }
        _ => round
            .pool
            .submit_cancellable(move |_token| task())
            .map_err(drop_quietly),
    };
    let Ok(mut handle) = submitted else {
        panic!("seed {}: a running pool refused a task", round.seed);
    };
    if round.parts.core && rng.u32(..100) < 20 {
        if let Poll::Ready(outcome) = poll_with_hostile_waker(&mut handle, rng) {
            check_task_outcome(round, index, panics, &runs, false, outcome);
            return None;
        }
    }
    Some(Held::Task(HeldTask::new(handle, index, panics, runs)))
}

fn resolve_task(round: &Round, t: HeldTask) {
    match t.handle.join_timeout(patience()) {
        Ok(value) => check_task_outcome(round, t.index, t.panics, &t.runs, t.cancel_won, Ok(value)),
        Err(pool_core::JoinTimeoutError::Failed(e)) => {
            check_task_outcome(round, t.index, t.panics, &t.runs, t.cancel_won, Err(e))
        }
        Err(pool_core::JoinTimeoutError::TimedOut(h)) => panic!(
            "{}: task handle {:?} did not resolve within {:?}; state:\n{}",
            round.ctx(),
            h.id(),
            patience(),
            round.dump()
        ),
    }
}

fn check_task_outcome(
    round: &Round,
    index: u64,
    panics: bool,
    runs: &AtomicU32,
    cancel_won: bool,
    outcome: Result<Bomb, TaskError>,
) {
    let ctx = round.ctx();
    let runs = runs.load(Ordering::SeqCst);
    match outcome {
        Ok(value) => {
            assert!(!panics, "{ctx}: task {index:x} should have panicked");
            assert!(!cancel_won, "{ctx}: task {index:x}: cancel won but it ran");
            assert_eq!(runs, 1, "{ctx}: task {index:x} runs");
            assert_eq!(value.id, index, "{ctx}: task {index:x}: wrong output");
            tolerate(move || drop(value));
        }
        Err(TaskError::Panicked(_)) => {
            assert!(panics, "{ctx}: task {index:x} panicked unexpectedly");
            assert_eq!(runs, 1, "{ctx}: task {index:x} runs");
        }
        Err(TaskError::Cancelled(_)) => {
            assert_eq!(runs, 0, "{ctx}: task {index:x} was cancelled but ran");
        }
        Err(other) => panic!("{ctx}: task {index:x}: unknown outcome {other:?}"),
    }
}

/// A fire-and-forget job; `child` also spawns one from inside the pool (the worker's deque).
fn spawn_job(round: &Round, rng: &mut fastrand::Rng, index: u64, child: bool) {
    let (task, _, _) = hostile_task(round, rng, index, round.parts.core);
    let inner = child.then(|| hostile_task(round, rng, index, round.parts.core).0);
    let pool = round.pool.clone();
    let job = move || {
        if let Some(inner) = inner {
            // Refused only once the pool shuts down; the refused closure is dropped quietly.
            if let Err(refused) = pool.spawn(move || drop(inner())) {
                drop_quietly(refused);
            }
        }
        drop(task());
    };
    if let Err(refused) = round.pool.spawn(job) {
        drop_quietly(refused);
        panic!("seed {}: a running pool refused a job", round.seed);
    }
}

/// `map_batch` with hostile inputs (their `Drop`), function and progress callback (their
/// calls, and their captures' `Drop`).
fn map_batch(round: &Round, rng: &mut fastrand::Rng, index: u64) {
    let hostile = round.parts.core;
    let total = 1 + rng.usize(..6);
    let inputs: Vec<(Bomb, Ending, bool)> = (0..total)
        .map(|i| {
            let armed = hostile && rng.u32(..100) < 15;
            let ending = Ending::pick(rng, hostile);
            let output_armed = hostile && rng.u32(..100) < 20;
            (
                Bomb::new(index + i as u64, armed, &round.census),
                ending,
                output_armed,
            )
        })
        .collect();
    let expect_panic: Vec<bool> = inputs
        .iter()
        .map(|(b, e, _)| e.panics() || b.is_armed())
        .collect();
    let census = round.census.clone();
    let progress_fuse = if hostile {
        rng.usize(..total + 1)
    } else {
        usize::MAX
    };
    let mut calls = 0;
    let id = index + total as u64;
    let f_holds = Bomb::new(id, hostile && rng.bool(), &round.census);
    let progress_holds = Bomb::new(id + 1, hostile && rng.bool(), &round.census);
    let results = tolerate(|| {
        round.pool.map_batch(
            inputs,
            move |(input, ending, output_armed)| {
                let _held = &f_holds;
                ending.act(&census, "a map_batch function");
                let output = Bomb::new(input.id, output_armed, &census);
                drop(input);
                output
            },
            move |_progress| {
                let _held = &progress_holds;
                calls += 1;
                if calls == progress_fuse {
                    panic!("{}: map_batch progress", super::kit::MARK);
                }
            },
        )
    });
    let ctx = round.ctx();
    let Some(results) = results else {
        panic!("{ctx}: map_batch let a hostile panic out (its progress callback is caught)");
    };
    assert_eq!(results.len(), total, "{ctx}: map_batch results");
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(value) => {
                assert!(
                    !expect_panic[i],
                    "{ctx}: map_batch input {i} should have panicked"
                );
                tolerate(move || drop(value));
            }
            Err(TaskError::Panicked(_)) => {
                assert!(
                    expect_panic[i],
                    "{ctx}: map_batch input {i} panicked unexpectedly"
                )
            }
            // `cancel_all` may run in the same round (see `Parts::batch_cancel`): a discarded
            // input comes back cancelled, never lost.
            Err(TaskError::Cancelled(pool_core::CancelReason::CancelAll))
                if round.parts.batch_cancel => {}
            // A hostile queue policy may drop the input's entry (see `queue_policy.rs`).
            Err(TaskError::Cancelled(pool_core::CancelReason::Dropped)) if round.parts.policy => {}
            Err(other) => panic!("{ctx}: map_batch input {i}: {other:?} on a running pool"),
        }
    }
}

/// A task that waits on its own pool: runs a DAG on it, a batch on it, or joins another task.
/// A nested batch only where `batches` (see `Parts::batch_cancel`).
fn nested(round: &Round, rng: &mut fastrand::Rng, index: u64, batches: bool) -> Option<Held> {
    let pool = round.pool.clone();
    let kind = match rng.u32(..3) {
        1 if !batches => 2,
        kind => kind,
    };
    let graph = policy_ops::benign_graph(rng);
    let runs = Arc::new(AtomicU32::new(0));
    let r = runs.clone();
    let census = round.census.clone();
    let task = move || {
        r.fetch_add(1, Ordering::SeqCst);
        match kind {
            0 => {
                let report = graph.run(&*pool);
                assert_eq!(report.len(), graph.len(), "a nested run lost nodes");
            }
            1 => {
                let results = pool.map_batch(0..4u64, |x| x + 1, |_| {});
                assert_eq!(results.len(), 4, "a nested batch lost inputs");
            }
            _ => {
                if let Ok(h) = pool.submit(|| 7u64) {
                    // Cancelled only by shutdown or cancel_all.
                    let _ = h.join();
                }
            }
        }
        Bomb::new(index, false, &census)
    };
    let handle = round.pool.submit(task).map_err(drop_quietly).ok()?;
    Some(Held::Task(HeldTask::new(handle, index, false, runs)))
}

/// Shutdown racing late hostile submissions (pool, coalescer, DAG): each either runs or comes
/// back refused, and every handle still resolves.
pub fn shutdown_racing_late_work(round: &Arc<Round>) {
    let late: Vec<_> = (0..2u64)
        .map(|t| {
            let round = round.clone();
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(round.seed ^ 0x1A7E ^ t);
                let mut held = Vec::new();
                for i in 0..10_000u64 {
                    let index = ((8 + t) << 32) | i;
                    let (task, panics, runs) =
                        hostile_task(&round, &mut rng, index, round.parts.core);
                    match round.pool.submit(task) {
                        Ok(handle) => {
                            held.push(Held::Task(HeldTask::new(handle, index, panics, runs)))
                        }
                        Err(refused) => {
                            drop_quietly(refused);
                            break;
                        }
                    }
                    if let Some(h) = policy_ops::coalesced(&round, &mut rng, index) {
                        held.push(Held::Coalesced(h));
                    }
                    if i % 16 == 0 {
                        if let Some(h) = policy_ops::dag(&round, &mut rng, index) {
                            held.push(Held::Run(h));
                        }
                    }
                }
                for h in held {
                    resolve(&round, h);
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1));
    round.pool.shutdown();
    for l in late {
        if let Err(payload) = l.join() {
            eprintln!(
                "{}: a late submitter failed; state:\n{}",
                round.ctx(),
                round.dump()
            );
            std::panic::resume_unwind(payload);
        }
    }
}
