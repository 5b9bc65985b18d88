//! Hostile mode: every piece of user code panics at random (seeded), across all crates at once
//! on one priority pool (user code is hostile: no UB, no dead worker, no lost task, no hang).
//!
//! Hostile pieces (see `kit.rs`): task closures; the values they capture and return and their
//! `Drop`; panic payloads whose own `Drop` panics; wakers that panic when woken or dropped (handles
//! are polled once with one); coalescing keys whose `Hash`, `Eq` or `Clone` panic; an `Executor`
//! wrapping the pool that panics in `execute_with_priority` or drops the job unrun; start, stop,
//! park and unpark hooks and the panic handler; `map_batch` functions, inputs and progress
//! callbacks; DAG node closures, their captures and outputs; an adaptive pool's signal source
//! and scaling hook, and the values they hold (`adaptive_ops.rs`: that pool runs beside the
//! round's, on a priority queue of its own); remote jobs' arguments and outputs (`Serialize`,
//! `Deserialize`, `Drop`, on the submitter and on the worker), the remote task, and a worker's
//! stop future (`remote_ops.rs`: an executor and a worker over a SQLite file, after the round).
//!
//! After the round: the books balance (pool, coalescer, every DAG report has one outcome per
//! node), every handle resolves within `patience()` (a timeout fails with a dump), every thread
//! joins (threads = running = queued = 0 after shutdown, as many stop hooks as start hooks), no
//! task runs twice, and every hostile value is dropped exactly once (the census is back to 0).
//!
//! Each part can be switched on separately with `STRESS_HOSTILE=<part>,<part>` (or `all`), so a
//! crate whose fix has not landed yet does not hide the others; `DEFAULT_PARTS` is what the test
//! suite runs. A part switched off still runs its crate, with well-behaved user code.

mod adaptive_ops;
mod kit;
mod policy_ops;
mod pool_ops;
mod queue_policy;
mod remote_ops;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use policy_coalesce::Coalescer;
use policy_priority::PriorityQueue;
use pool_core::ThreadPool;

use crate::watchdog::Watchdog;

pub use kit::is_marker;
use kit::{Bomb, Census, HostileExecutor, Key};

/// How long a handle may take to resolve: generous, the machine is shared
/// (`STRESS_PATIENCE_SECS` shortens it to triage hangs).
fn patience() -> Duration {
    std::env::var("STRESS_PATIENCE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(60), Duration::from_secs)
}

/// The parts the test suite runs: every part. Each once failed, for a defect since fixed: the DAG
/// runs (`dag`, `dag-exec`, `nested`), the coalescer's keys, values and executors (`coalesce`,
/// `coalesce-keys`, `coalesce-exec`), a batch whose inputs `cancel_all` discards
/// (`batch-cancel`), and the adaptive controller's source and hook (`adaptive`: a payload whose
/// `Drop` panics stopped the controller, or aborted the process), and remote jobs (`remote`: an
/// argument whose `Deserialize` panicked stopped the worker taking jobs).
pub const DEFAULT_PARTS: &str = "all";

/// Which crates get hostile user code.
#[derive(Clone, Copy, Debug, Default)]
pub struct Parts {
    /// `core`: pool-core tasks, spawned jobs, wakers, hooks, panic handler, `map_batch`.
    pub core: bool,
    /// `coalesce`: coalesced closures, captures, outputs, payloads, wakers (issue 11 defect 4).
    pub coalesce: bool,
    /// `coalesce-keys`: keys whose `Hash`/`Eq`/`Clone` panic (issue 11 defect 5).
    pub coalesce_keys: bool,
    /// `coalesce-exec`: the coalescer's executor panics or drops jobs.
    pub coalesce_exec: bool,
    /// `dag`: node closures, captures, outputs, payloads, wakers (issue 11 defect 6).
    pub dag: bool,
    /// `dag-exec`: the DAG's executor panics or drops jobs, for borrowed runs too (defect 1).
    pub dag_exec: bool,
    /// `nested`: tasks that run a DAG, a batch or join a handle on their own pool (defect 7).
    pub nested: bool,
    /// `batch-cancel`: `cancel_all` in the same round as `map_batch`. Off, a round does one or
    /// the other (by seed parity): `map_batch` never returns when `cancel_all` discards one of
    /// its queued inputs (found by this harness; not yet an issue-11 item).
    pub batch_cancel: bool,
    /// `adaptive`: the adaptive pool's signal source and scaling hook panic (payloads whose
    /// `Drop` panics included) and hold values whose `Drop` panics.
    pub adaptive: bool,
    /// `remote`: remote jobs' serde code, values, task and the worker's stop future panic.
    pub remote: bool,
    /// `policy`: the pool's queue policy panics in every method the pool calls, dropping
    /// entries on the way (`queue_policy.rs`). With it, the priority queue's per-level books
    /// are not checked (a panicking report loses its counts, as documented).
    pub policy: bool,
}

impl Parts {
    /// `STRESS_HOSTILE`, or [`DEFAULT_PARTS`].
    pub fn from_env() -> Parts {
        let spec = std::env::var("STRESS_HOSTILE").unwrap_or_else(|_| DEFAULT_PARTS.to_string());
        Parts::parse(&spec)
    }

    pub fn parse(spec: &str) -> Parts {
        let mut parts = Parts::default();
        for name in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match name {
                "core" => parts.core = true,
                "coalesce" => parts.coalesce = true,
                "coalesce-keys" => parts.coalesce_keys = true,
                "coalesce-exec" => parts.coalesce_exec = true,
                "dag" => parts.dag = true,
                "dag-exec" => parts.dag_exec = true,
                "nested" => parts.nested = true,
                "batch-cancel" => parts.batch_cancel = true,
                "adaptive" => parts.adaptive = true,
                "remote" => parts.remote = true,
                "policy" => parts.policy = true,
                "all" => {
                    parts = Parts {
                        core: true,
                        coalesce: true,
                        coalesce_keys: true,
                        coalesce_exec: true,
                        dag: true,
                        dag_exec: true,
                        nested: true,
                        batch_cancel: true,
                        adaptive: true,
                        remote: true,
                        policy: true,
                    }
                }
                other => panic!(
                    "STRESS_HOSTILE: unknown part {other:?} (core, coalesce, coalesce-keys, \
                     coalesce-exec, dag, dag-exec, nested, batch-cancel, adaptive, remote, policy, \
                     all)"
                ),
            }
        }
        parts
    }
}

/// Everything one round shares between its driver threads.
pub struct Round {
    pub seed: u64,
    pub parts: Parts,
    pub pool: Arc<ThreadPool>,
    pub queue: PriorityQueue,
    pub coalescer: Coalescer<Key, Bomb, Arc<HostileExecutor>>,
    pub coalesce_exec: Arc<HostileExecutor>,
    pub dag_exec: Arc<HostileExecutor>,
    pub adaptive: adaptive_ops::Adaptive,
    pub census: Census,
    pub hooks: Arc<Hooks>,
    pub watchdog: Watchdog,
    pub ops: AtomicU64,
}

/// Calls of the pool's hooks, counted before they (maybe) panic.
#[derive(Default)]
pub struct Hooks {
    pub started: AtomicU64,
    pub stopped: AtomicU64,
    pub panic_handler: AtomicU64,
}

impl Round {
    /// The state to print when something hangs or fails.
    pub fn dump(&self) -> String {
        let round = dump(
            &self.pool,
            &self.queue,
            &self.coalescer,
            &self.coalesce_exec,
            &self.dag_exec,
            &self.census,
        );
        format!("{round}\n{}", self.adaptive.dump())
    }

    pub fn ctx(&self) -> String {
        format!(
            "hostile seed {} (replay with STRESS_SEED={} STRESS_HOSTILE={})",
            self.seed,
            self.seed,
            parts_spec(self.parts)
        )
    }
}

fn parts_spec(p: Parts) -> String {
    let names = [
        (p.core, "core"),
        (p.coalesce, "coalesce"),
        (p.coalesce_keys, "coalesce-keys"),
        (p.coalesce_exec, "coalesce-exec"),
        (p.dag, "dag"),
        (p.dag_exec, "dag-exec"),
        (p.nested, "nested"),
        (p.batch_cancel, "batch-cancel"),
        (p.adaptive, "adaptive"),
        (p.remote, "remote"),
        (p.policy, "policy"),
    ];
    names
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

fn dump(
    pool: &ThreadPool,
    queue: &PriorityQueue,
    coalescer: &Coalescer<Key, Bomb, Arc<HostileExecutor>>,
    coalesce_exec: &HostileExecutor,
    dag_exec: &HostileExecutor,
    census: &Census,
) -> String {
    format!(
        "pool: {}\ncoalescer: {:?}\npriority levels:\n{}\ncoalescer's executor: {:?}\n\
         DAG's executor: {:?}\nhostile values alive: {}",
        pool.stats(),
        coalescer.stats(),
        queue.stats(),
        coalesce_exec.tally(),
        dag_exec.tally(),
        census.live()
    )
}

/// One round with `drivers` threads of `ops` operations each; returns the operations performed.
pub fn run(seed: u64, parts: Parts, drivers: usize, ops: usize) -> u64 {
    let hooks = Arc::new(Hooks::default());
    let queue = PriorityQueue::new();
    let census = Census::default();
    let pool = Arc::new(pool_ops::build_pool(seed, parts, &hooks, &queue, &census));
    let coalesce_exec = Arc::new(HostileExecutor::new(
        pool.clone(),
        seed ^ 0xC0A1,
        parts.coalesce_exec,
    ));
    let dag_exec = Arc::new(HostileExecutor::new(
        pool.clone(),
        seed ^ 0xDA6,
        parts.dag_exec,
    ));
    let coalescer = Coalescer::<Key, Bomb, _>::builder(coalesce_exec.clone())
        .build()
        .expect("valid coalescer");
    let adaptive = adaptive_ops::build(seed, parts, &census);
    // The watchdog reads the round through weak references, so it never keeps it alive.
    let watched = Arc::new(std::sync::OnceLock::<std::sync::Weak<Round>>::new());
    let watchdog = Watchdog::start(seed, {
        let watched = watched.clone();
        move || {
            watched
                .get()
                .and_then(std::sync::Weak::upgrade)
                .map_or_else(|| "(round finished)".to_string(), |r| r.dump())
        }
    });
    let round = Arc::new(Round {
        seed,
        parts,
        pool,
        queue,
        coalescer,
        coalesce_exec,
        dag_exec,
        adaptive,
        census,
        hooks,
        watchdog,
        ops: AtomicU64::new(0),
    });
    let _ = watched.set(Arc::downgrade(&round));

    let threads: Vec<_> = (0..drivers)
        .map(|d| {
            let round = round.clone();
            std::thread::spawn(move || pool_ops::drive(&round, d as u64, ops))
        })
        .collect();
    for t in threads {
        if let Err(payload) = t.join() {
            eprintln!(
                "{}: a driver failed: {}{}; state:\n{}",
                round.ctx(),
                pool_core::panic_message(payload.as_ref()),
                if kit::is_marker(payload.as_ref()) {
                    " (a hostile panic reached the harness where none may; \
                     STRESS_HOSTILE_LOUD=1 prints where)"
                } else {
                    ""
                },
                round.dump()
            );
            std::panic::resume_unwind(payload);
        }
    }
    pool_ops::shutdown_racing_late_work(&round);
    let ctx = round.ctx();
    let ops = check_after_shutdown(round);
    ops + remote_ops::run(seed, parts.remote, &ctx)
}

fn check_after_shutdown(round: Arc<Round>) -> u64 {
    let round = match Arc::try_unwrap(round) {
        Ok(round) => round,
        Err(_) => panic!("the round is still shared after its drivers stopped"),
    };
    let ctx = round.ctx();
    let dump = round.dump();
    crate::assert_books_closed(
        &ctx,
        &dump,
        &round.pool.stats(),
        &round.coalescer.stats(),
        &round.queue.stats(),
        !round.parts.policy,
    );
    assert_eq!(
        round.hooks.started.load(Ordering::SeqCst),
        round.hooks.stopped.load(Ordering::SeqCst),
        "{ctx}: every started thread stopped\n{dump}"
    );
    let ops = round.ops.load(Ordering::SeqCst);
    let census = round.census.clone();
    // The coalescer may still hold hostile closures or values; the harness drops them here, on
    // its own thread, where their panics are allowed. The adaptive pool lets none out, nor does
    // the round's pool (its hooks hold values whose `Drop` panics): a panic marked hostile out
    // of either fails the round.
    let Round {
        coalescer,
        coalesce_exec,
        dag_exec,
        pool,
        adaptive,
        ..
    } = round;
    kit::tolerate(move || drop(coalescer));
    adaptive_ops::finish(&ctx, &dump, adaptive);
    drop((coalesce_exec, dag_exec));
    assert_eq!(
        Arc::strong_count(&pool),
        1,
        "{ctx}: the pool is still shared\n{dump}"
    );
    drop(pool);
    assert_eq!(
        census.live(),
        0,
        "{ctx}: hostile values leaked (or dropped twice)\n{dump}"
    );
    ops
}
