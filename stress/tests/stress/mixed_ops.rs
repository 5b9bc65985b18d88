//! Every crate on one priority pool at once: prioritized submits and raises, coalesced submits in
//! every mode, DAG runs with random failures and panics, cancels, `cancel_all`, resizes, and a
//! final shutdown racing late submitters and a late DAG run.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dag_scheduler::{Graph, Outcome};
use policy_coalesce::{CoalescedHandle, Coalescer, Mode, SubmitOptions};
use policy_priority::{priority_pool, PrioritySubmit};
use pool_core::{Priority, TaskError, TaskHandle, ThreadPool};

use crate::watchdog::Watchdog;

const PATIENCE: Duration = Duration::from_secs(60);

/// One round; returns the number of operations performed.
pub fn run(seed: u64, drivers: usize, ops_per_driver: usize) -> u64 {
    let (pool, queue) = priority_pool(2).expect("valid pool");
    let pool = Arc::new(pool);
    let coalescer = Arc::new(
        Coalescer::<u8, u64, _>::builder(pool.clone())
            .build()
            .expect("valid coalescer"),
    );
    let watchdog = Arc::new(Watchdog::start(seed, {
        let (pool, coalescer, queue) = (pool.clone(), coalescer.clone(), queue.clone());
        move || {
            format!(
                "pool: {}\ncoalescer: {:?}\npriority levels:\n{}",
                pool.stats(),
                coalescer.stats(),
                queue.stats()
            )
        }
    }));
    let ops = Arc::new(AtomicU64::new(0));

    let threads: Vec<_> = (0..drivers)
        .map(|d| {
            let (pool, coalescer, watchdog, ops) = (
                pool.clone(),
                coalescer.clone(),
                watchdog.clone(),
                ops.clone(),
            );
            std::thread::spawn(move || {
                drive(seed, d, ops_per_driver, &pool, &coalescer, &watchdog, &ops)
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a driver panicked");
    }

    // Shutdown racing late submitters and a late DAG run: everything resolves, nothing hangs.
    let late_dag = {
        let pool = pool.clone();
        std::thread::spawn(move || {
            let (graph, _) = random_graph(&mut fastrand::Rng::with_seed(seed ^ 0xDA6));
            let report = graph.run(&*pool);
            assert_eq!(
                report.len(),
                graph.len(),
                "seed {seed}: a late run lost nodes"
            );
        })
    };
    let late = {
        let pool = pool.clone();
        std::thread::spawn(move || {
            let mut accepted = Vec::new();
            while let Ok(h) = pool.submit_at(Priority::Low, || 1u64) {
                accepted.push(h);
            }
            for h in accepted {
                // Accepted before the shutdown: graceful shutdown runs it.
                assert_eq!(h.join_timeout(PATIENCE).ok(), Some(1), "seed {seed}");
            }
        })
    };
    pool.shutdown();
    late.join().expect("late submitter");
    late_dag.join().expect("late DAG run");
    drop(watchdog);

    let stats = pool.stats();
    let cstats = coalescer.stats();
    let ctx = format!("seed {seed} (replay with STRESS_SEED={seed}); pool {stats}; {cstats:?}");
    crate::assert_books_closed(&ctx, "", &stats, &cstats, &queue.stats(), true);
    ops.load(Ordering::SeqCst)
}

enum Held {
    Plain(TaskHandle<u64>, Arc<AtomicU32>, bool),
    Coalesced(CoalescedHandle<u64>),
}

fn drive(
    seed: u64,
    driver: usize,
    ops: usize,
    pool: &Arc<ThreadPool>,
    coalescer: &Arc<Coalescer<u8, u64, Arc<ThreadPool>>>,
    watchdog: &Watchdog,
    counted: &AtomicU64,
) {
    let mut rng = fastrand::Rng::with_seed(seed.wrapping_mul(131).wrapping_add(driver as u64));
    let mut held: Vec<Held> = Vec::new();
    for _ in 0..ops {
        watchdog.tick();
        counted.fetch_add(1, Ordering::SeqCst);
        match rng.u64(..100) {
            0..=29 => {
                let level = Priority::from_index(rng.u64(..5) as usize).unwrap();
                let runs = Arc::new(AtomicU32::new(0));
                let r = runs.clone();
                let handle = pool
                    .submit_at(level, move || u64::from(r.fetch_add(1, Ordering::SeqCst)))
                    .expect("running pool");
                held.push(Held::Plain(handle, runs, false));
            }
            30..=54 => {
                let key = rng.u64(..6) as u8;
                let mode = [Mode::Latest, Mode::Replace, Mode::Keep][rng.u64(..3) as usize];
                let level = Priority::from_index(rng.u64(..5) as usize).unwrap();
                let options = SubmitOptions::new().mode(mode).priority(level);
                let panics = rng.u64(..100) < 5;
                let value = rng.u64(..);
                let handle = coalescer
                    .submit_cancellable_with(key, options, move |stop| {
                        if panics {
                            panic!("deliberate panic in a coalesced closure");
                        }
                        let mut spins = 0;
                        while !stop.is_cancelled() && spins < 500 {
                            spins += 1;
                            std::hint::spin_loop();
                        }
                        value
                    })
                    .expect("running pool");
                held.push(Held::Coalesced(handle));
            }
            55..=64 => {
                if !held.is_empty() {
                    let i = rng.u64(..(held.len() as u64).max(1)) as usize;
                    match &mut held[i] {
                        Held::Plain(h, _, won) => *won |= h.cancel(),
                        Held::Coalesced(h) => {
                            h.cancel();
                        }
                    }
                }
            }
            65..=69 => {
                if let Some(Held::Plain(h, _, _)) = held.last() {
                    let to = Priority::from_index(rng.u64(..5) as usize).unwrap();
                    let before = h.priority();
                    let raised = pool.raise_priority(h, to);
                    assert!(
                        h.priority() >= before,
                        "seed {seed}: a raise lowered a priority"
                    );
                    assert!(
                        !raised || to > before,
                        "seed {seed}: raised without going up"
                    );
                }
            }
            70..=74 => check_dag_run(seed, &mut rng, pool),
            75..=76 => {
                pool.cancel_all();
            }
            77..=79 => {
                let key = rng.u64(..6) as u8;
                coalescer.cancel_key(&key);
            }
            80..=82 => pool.set_threads(1 + rng.u64(..4) as usize).expect("resize"),
            _ => {
                if !held.is_empty() {
                    let i = rng.u64(..(held.len() as u64).max(1)) as usize;
                    resolve(held.swap_remove(i), seed);
                }
            }
        }
    }
    for h in held {
        resolve(h, seed);
    }
}

fn resolve(held: Held, seed: u64) {
    match held {
        Held::Plain(handle, runs, cancel_won) => {
            let outcome = handle.join_timeout(PATIENCE);
            let runs = runs.load(Ordering::SeqCst);
            match outcome {
                Ok(previous_runs) => {
                    assert_eq!(previous_runs, 0, "seed {seed}: a task ran twice");
                    assert!(!cancel_won, "seed {seed}: cancel won but the task ran");
                    assert_eq!(runs, 1, "seed {seed}");
                }
                Err(pool_core::JoinTimeoutError::Failed(TaskError::Cancelled(_))) => {
                    assert_eq!(runs, 0, "seed {seed}: a cancelled task ran");
                }
                Err(other) => panic!("seed {seed}: unexpected outcome {other:?}"),
            }
        }
        Held::Coalesced(handle) => {
            // Any outcome (value, panic, cancel) is fine; it must arrive.
            if let Err(policy_coalesce::CoalesceJoinTimeoutError::TimedOut(h)) =
                handle.join_timeout(PATIENCE)
            {
                panic!("seed {seed}: coalesced handle {:?} never completed", h.id());
            }
        }
    }
}

/// A random DAG: node `i` depends on some nodes below it; some nodes fail or panic.
/// Per node: its dependencies, whether it fails, and how many times it ran.
type Shape = Vec<(Vec<usize>, bool, Arc<AtomicU32>)>;

fn random_graph(rng: &mut fastrand::Rng) -> (Graph, Shape) {
    let n = 2 + rng.u64(..10) as usize;
    let mut b = Graph::builder();
    let mut shape = Vec::new();
    for i in 0..n {
        let deps: Vec<usize> = (0..i).filter(|_| rng.u64(..100) < 30).collect();
        let fails = rng.u64(..100) < 15;
        let panics = fails && rng.u64(..100) < 30;
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        let mut node = b.try_node(format!("n{i}"), move |_| {
            r.fetch_add(1, Ordering::SeqCst);
            if panics {
                panic!("deliberate panic in a DAG node");
            }
            if fails {
                Err("deliberate failure")
            } else {
                Ok(())
            }
        });
        for d in &deps {
            node = node.after(format!("n{d}").as_str());
        }
        shape.push((deps, fails, runs));
    }
    (b.build().expect("random graphs here are acyclic"), shape)
}

/// Runs a random graph and checks every outcome against the one its shape implies.
fn check_dag_run(seed: u64, rng: &mut fastrand::Rng, pool: &Arc<ThreadPool>) {
    let (graph, shape) = random_graph(rng);
    let report = graph.run(&**pool);
    // A concurrent `cancel_all` may cancel some nodes; then dependents are cancelled too.
    if report.summary().cancelled > 0 {
        return;
    }
    let mut expected: Vec<&str> = Vec::new();
    for (i, (deps, fails, runs)) in shape.iter().enumerate() {
        let blocked = deps.iter().any(|&d| expected[d] != "succeeded");
        let want = if blocked {
            "skipped"
        } else if *fails {
            "failed"
        } else {
            "succeeded"
        };
        expected.push(want);
        let got = report
            .outcome(&format!("n{i}"))
            .expect("every node is reported");
        let got_kind = match got {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed(_) => "failed",
            Outcome::Skipped { .. } => "skipped",
            Outcome::Cancelled => "cancelled",
            _ => "an outcome this harness does not know",
        };
        assert_eq!(
            got_kind, want,
            "seed {seed}: node n{i} of a graph with shape {:?}",
            deps
        );
        let ran = runs.load(Ordering::SeqCst);
        assert_eq!(
            ran,
            u32::from(want != "skipped"),
            "seed {seed}: node n{i} ran {ran} times"
        );
    }
}
