//! pool-core under random submits, cancels, `cancel_all`, resizes, panics, tasks spawning tasks,
//! expired deadlines, and a final shutdown racing late submitters.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pool_core::{TaskError, TaskHandle, TaskOptions, ThreadPool};

use crate::watchdog::Watchdog;

const PATIENCE: Duration = Duration::from_secs(60);

/// What the drivers did, counted on their side of the API, to compare with the pool's own stats.
#[derive(Default)]
struct Ledger {
    attempts: AtomicU64,
    rejected: AtomicU64,
    /// Fire-and-forget jobs accepted (outside and inner), started, and of those, panicked.
    ff_accepted: AtomicU64,
    ff_started: AtomicU64,
    ff_panicked: AtomicU64,
    /// Runs per handle task, indexed by the task's number: must end at 0 or 1.
    runs: Vec<AtomicU32>,
}

struct Held {
    index: usize,
    handle: TaskHandle<usize>,
    cancel_won: bool,
    will_panic: bool,
}

impl Held {
    /// A task just submitted: no cancel has won yet.
    fn new(index: usize, handle: TaskHandle<usize>, will_panic: bool) -> Held {
        Held {
            index,
            handle,
            cancel_won: false,
            will_panic,
        }
    }
}

#[derive(Default, Debug)]
struct Tally {
    ok: u64,
    cancelled: u64,
    panicked: u64,
    handles: u64,
    cancel_all: u64,
}

/// One round; returns the number of operations performed.
pub fn run(seed: u64, drivers: usize, ops_per_driver: usize) -> u64 {
    let started_threads = Arc::new(AtomicU64::new(0));
    let stopped_threads = Arc::new(AtomicU64::new(0));
    let (s, t) = (started_threads.clone(), stopped_threads.clone());
    let pool = Arc::new(
        ThreadPool::builder()
            .threads(2)
            .thread_name("stress")
            .on_thread_start(move |_| {
                s.fetch_add(1, Ordering::SeqCst);
            })
            .on_thread_stop(move |_| {
                t.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .expect("valid pool"),
    );
    let ledger = Arc::new(Ledger {
        runs: (0..drivers * ops_per_driver)
            .map(|_| AtomicU32::new(0))
            .collect(),
        ..Ledger::default()
    });
    let watchdog = Arc::new(Watchdog::start(seed, {
        let pool = pool.clone();
        move || format!("{}\nshared queue length {}", pool.stats(), pool.queue_len())
    }));

    let drivers: Vec<_> = (0..drivers)
        .map(|d| {
            let (pool, ledger, watchdog) = (pool.clone(), ledger.clone(), watchdog.clone());
            std::thread::spawn(move || drive(seed, d, ops_per_driver, &pool, &ledger, &watchdog))
        })
        .collect();
    let mut tally = Tally::default();
    for driver in drivers {
        let t = driver.join().expect("a driver panicked");
        tally.ok += t.ok;
        tally.cancelled += t.cancelled;
        tally.panicked += t.panicked;
        tally.handles += t.handles;
        tally.cancel_all += t.cancel_all;
    }

    // Shutdown racing late submitters: each late job either runs or comes back rejected.
    let late: Vec<_> = (0..2)
        .map(|_| {
            let (pool, ledger) = (pool.clone(), ledger.clone());
            std::thread::spawn(move || loop {
                ledger.attempts.fetch_add(1, Ordering::SeqCst);
                let l = ledger.clone();
                let job = move || {
                    l.ff_started.fetch_add(1, Ordering::SeqCst);
                };
                if pool.spawn(job).is_err() {
                    ledger.rejected.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                ledger.ff_accepted.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    pool.shutdown();
    for l in late {
        l.join().expect("a late submitter panicked");
    }
    drop(watchdog);

    let stats = pool.stats();
    let ctx = format!("seed {seed} (replay with STRESS_SEED={seed}); {stats}; {tally:?}");
    let l = &ledger;
    let double = l
        .runs
        .iter()
        .filter(|r| r.load(Ordering::SeqCst) > 1)
        .count();
    assert_eq!(double, 0, "{ctx}: {double} tasks ran twice");
    assert!(stats.is_balanced(), "{ctx}: books do not balance");
    assert_eq!(
        stats.queued + stats.running,
        0,
        "{ctx}: work left after shutdown"
    );
    assert_eq!(stats.live_threads, 0, "{ctx}");
    assert_eq!(
        stats.submitted,
        l.attempts.load(Ordering::SeqCst),
        "{ctx}: submitted"
    );
    assert_eq!(
        stats.rejected,
        l.rejected.load(Ordering::SeqCst),
        "{ctx}: rejected"
    );
    let ff_started = l.ff_started.load(Ordering::SeqCst);
    let ff_panicked = l.ff_panicked.load(Ordering::SeqCst);
    let ff_cancelled = l.ff_accepted.load(Ordering::SeqCst) - ff_started;
    assert_eq!(
        stats.completed,
        tally.ok + ff_started - ff_panicked,
        "{ctx}: completed"
    );
    assert_eq!(
        stats.panicked,
        tally.panicked + ff_panicked,
        "{ctx}: panicked"
    );
    assert_eq!(
        stats.cancelled,
        tally.cancelled + ff_cancelled,
        "{ctx}: cancelled"
    );
    assert_eq!(
        tally.ok + tally.cancelled + tally.panicked,
        tally.handles,
        "{ctx}: every handle resolved exactly once"
    );
    assert_eq!(
        started_threads.load(Ordering::SeqCst),
        stopped_threads.load(Ordering::SeqCst),
        "{ctx}: every started thread stopped (none leaked)"
    );
    l.attempts.load(Ordering::SeqCst)
}

fn drive(
    seed: u64,
    driver: usize,
    ops: usize,
    pool: &Arc<ThreadPool>,
    ledger: &Arc<Ledger>,
    watchdog: &Watchdog,
) -> Tally {
    let mut rng = fastrand::Rng::with_seed(seed.wrapping_mul(31).wrapping_add(driver as u64));
    let mut held: Vec<Held> = Vec::new();
    let mut tally = Tally::default();
    for op in 0..ops {
        watchdog.tick();
        let index = driver * ops + op;
        match rng.u64(..100) {
            0..=34 => {
                let will_panic = rng.u64(..100) < 10;
                let l = ledger.clone();
                ledger.attempts.fetch_add(1, Ordering::SeqCst);
                let task = move || {
                    l.runs[index].fetch_add(1, Ordering::SeqCst);
                    if will_panic {
                        panic!("deliberate panic in task {index}");
                    }
                    index
                };
                match pool.submit(task) {
                    Ok(handle) => held.push(Held::new(index, handle, will_panic)),
                    Err(_) => {
                        ledger.rejected.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
            35..=54 => spawn_ff(pool, ledger, rng.u64(..100) < 5, rng.u64(..100) < 20),
            55..=69 => {
                if !held.is_empty() {
                    let i = rng.u64(..(held.len() as u64).max(1)) as usize;
                    if held[i].handle.cancel() {
                        held[i].cancel_won = true;
                    }
                }
            }
            70..=74 => {
                ledger.attempts.fetch_add(1, Ordering::SeqCst);
                let l = ledger.clone();
                let handle = pool.submit_cancellable(move |token| {
                    l.runs[index].fetch_add(1, Ordering::SeqCst);
                    let mut spins = 0;
                    while !token.is_cancelled() && spins < 2_000 {
                        spins += 1;
                        std::hint::spin_loop();
                    }
                    index
                });
                held.push(Held::new(
                    index,
                    handle.expect("the pool is running"),
                    false,
                ));
            }
            75..=77 => {
                ledger.attempts.fetch_add(1, Ordering::SeqCst);
                let l = ledger.clone();
                let passed = Instant::now() - Duration::from_millis(1);
                let handle =
                    pool.submit_with(TaskOptions::new().start_deadline(passed), move || {
                        l.runs[index].fetch_add(1, Ordering::SeqCst);
                        index
                    });
                held.push(Held::new(
                    index,
                    handle.expect("the pool is running"),
                    false,
                ));
            }
            78..=79 => tally.cancel_all += pool.cancel_all() as u64,
            80..=82 => {
                let n = 1 + rng.u64(..4) as usize;
                pool.set_threads(n).expect("resize of a running pool");
            }
            _ => {
                if !held.is_empty() {
                    let i = rng.u64(..(held.len() as u64).max(1)) as usize;
                    resolve(held.swap_remove(i), ledger, &mut tally, seed);
                }
            }
        }
    }
    for h in held {
        resolve(h, ledger, &mut tally, seed);
    }
    tally
}

fn spawn_ff(pool: &Arc<ThreadPool>, ledger: &Arc<Ledger>, panics: bool, spawns_child: bool) {
    ledger.attempts.fetch_add(1, Ordering::SeqCst);
    let (l, p) = (ledger.clone(), pool.clone());
    let job = move || {
        l.ff_started.fetch_add(1, Ordering::SeqCst);
        if spawns_child {
            // An inner submission: goes to this worker's own deque.
            l.attempts.fetch_add(1, Ordering::SeqCst);
            let l2 = l.clone();
            match p.spawn(move || {
                l2.ff_started.fetch_add(1, Ordering::SeqCst);
            }) {
                Ok(()) => l.ff_accepted.fetch_add(1, Ordering::SeqCst),
                Err(_) => l.rejected.fetch_add(1, Ordering::SeqCst),
            };
        }
        if panics {
            l.ff_panicked.fetch_add(1, Ordering::SeqCst);
            panic!("deliberate panic in a fire-and-forget job");
        }
    };
    match pool.spawn(job) {
        Ok(()) => ledger.ff_accepted.fetch_add(1, Ordering::SeqCst),
        Err(_) => ledger.rejected.fetch_add(1, Ordering::SeqCst),
    };
}

fn resolve(held: Held, ledger: &Ledger, tally: &mut Tally, seed: u64) {
    tally.handles += 1;
    let outcome = held.handle.join_timeout(PATIENCE);
    let runs = ledger.runs[held.index].load(Ordering::SeqCst);
    match outcome {
        Ok(value) => {
            assert_eq!(value, held.index, "seed {seed}");
            assert!(!held.cancel_won, "seed {seed}: cancel won but the task ran");
            assert_eq!(runs, 1, "seed {seed}");
            tally.ok += 1;
        }
        Err(pool_core::JoinTimeoutError::Failed(TaskError::Cancelled(_))) => {
            assert_eq!(runs, 0, "seed {seed}: a cancelled task ran");
            tally.cancelled += 1;
        }
        Err(pool_core::JoinTimeoutError::Failed(TaskError::Panicked(_))) => {
            assert!(held.will_panic, "seed {seed}: unexpected panic");
            assert_eq!(runs, 1, "seed {seed}");
            tally.panicked += 1;
        }
        Err(other) => panic!(
            "seed {seed}: handle {} did not resolve: {other:?}",
            held.index
        ),
    }
}
