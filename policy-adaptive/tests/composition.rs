//! Composition: priority levels (policy-priority's queue policy), an adaptive worker count,
//! coalescing (a `Coalescer` over the adaptive pool) and a DAG run, all on one pool. The seed
//! scenario is an editor: renders coalesced at High, indexing at Idle, a build graph.
//!
//! Every wait is for an event (a count reached, a gate opened) with a generous timeout; the
//! assertions are on counts and orders, never on time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dag_scheduler::{Graph, Outcome};
use policy_adaptive::AdaptivePool;
use policy_coalesce::{Coalescer, SubmitOptions};
use policy_priority::{Aging, PriorityQueue};
use pool_core::{Priority, TaskOptions, ThreadPool};
use test_kit::{eventually, Latch, PATIENCE};

const MAX: usize = 6;
const INDEXING: usize = 200;

fn editor_pool(queue: &PriorityQueue, started: &Arc<AtomicUsize>) -> AdaptivePool {
    let started = started.clone();
    AdaptivePool::builder()
        .pool(
            ThreadPool::builder()
                .queue_policy(queue.clone())
                .thread_name("editor")
                // The user's hook stays: the controller's own hooks add up with it.
                .on_thread_start(move |_| {
                    started.fetch_add(1, Ordering::SeqCst);
                }),
        )
        .min(1)
        .max(MAX)
        .interval(Duration::from_millis(20))
        .keep_alive(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[test]
fn priorities_adaptive_count_coalescing_and_a_dag_on_one_pool() {
    // Aging off: the order asserted below is the levels' alone, however slow the machine.
    let queue = PriorityQueue::with_aging(Aging::off());
    let user_hook_runs = Arc::new(AtomicUsize::new(0));
    let pool = Arc::new(editor_pool(&queue, &user_hook_runs));
    let name = pool
        .submit(|| std::thread::current().name().map(String::from))
        .unwrap()
        .join()
        .unwrap()
        .unwrap();
    assert!(
        name.starts_with("editor-"),
        "the user's thread names: {name}"
    );

    // 1. Indexing at Idle: every task waits at the gate, so the workers are busy and blocked
    //    with work queued; the controller grows the pool to `max` without waiting for ticks.
    let gate = Arc::new(Latch::default());
    let order = Arc::new(AtomicUsize::new(0));
    let runs: Arc<Vec<AtomicUsize>> =
        Arc::new((0..INDEXING).map(|_| AtomicUsize::new(0)).collect());
    let indexing: Vec<_> = (0..INDEXING)
        .map(|i| {
            let (gate, order, runs) = (gate.clone(), order.clone(), runs.clone());
            pool.submit_with(TaskOptions::new().priority(Priority::Idle), move || {
                order.fetch_add(1, Ordering::SeqCst);
                runs[i].fetch_add(1, Ordering::SeqCst);
                gate.wait();
            })
            .unwrap()
        })
        .collect();
    assert!(
        eventually(|| order.load(Ordering::SeqCst) == MAX),
        "the pool did not grow to {MAX} busy workers: {} started, history {:?}",
        order.load(Ordering::SeqCst),
        pool.history()
    );
    // The new workers may run their tasks before the controller records the growth.
    assert!(eventually(|| pool.history().iter().any(|e| e.to > e.from)));
    assert!(user_hook_runs.load(Ordering::SeqCst) >= MAX);

    // 2. A Critical task behind the queued Idle ones: every worker is blocked (the pool is at
    //    `max`), so no Idle task can start before the gate opens; then the Critical one is the
    //    first taken. Workers that finish their Idle task at the same moment may start another
    //    Idle one concurrently: at most MAX - 1 of them.
    let critical_order = {
        let order = order.clone();
        pool.submit_with(TaskOptions::new().priority(Priority::Critical), move || {
            order.fetch_add(1, Ordering::SeqCst)
        })
        .unwrap()
    };
    gate.open();
    let critical_order = critical_order.join_timeout(PATIENCE).unwrap();
    assert!(
        critical_order <= MAX + (MAX - 1),
        "the Critical task started {critical_order}th, behind queued Idle tasks"
    );
    for handle in indexing {
        handle.join_timeout(PATIENCE).unwrap();
    }
    assert!(
        runs.iter().all(|r| r.load(Ordering::SeqCst) == 1),
        "every Idle task ran once"
    );

    // 3. Renders coalesced per document at High, on the adaptive pool as the executor: the
    //    first render holds the key busy until every keystroke has been submitted, so the other
    //    renders merge into one follow-up running the latest text.
    let renders = Coalescer::<&str, String, _>::builder(pool.clone())
        .build()
        .unwrap();
    let high = SubmitOptions::new().priority(Priority::High);
    let executed = Arc::new(AtomicUsize::new(0));
    let hold = Arc::new(Latch::default());
    let first = {
        let (executed, hold) = (executed.clone(), hold.clone());
        renders
            .submit_with("main.rs", high, move || {
                executed.fetch_add(1, Ordering::SeqCst);
                hold.wait();
                "text 0".to_owned()
            })
            .unwrap()
    };
    assert!(eventually(|| executed.load(Ordering::SeqCst) == 1));
    let later: Vec<_> = (1..=50)
        .map(|i| {
            let executed = executed.clone();
            renders
                .submit_with("main.rs", high, move || {
                    executed.fetch_add(1, Ordering::SeqCst);
                    format!("text {i}")
                })
                .unwrap()
        })
        .collect();
    hold.open();
    assert_eq!(*first.join().unwrap(), "text 0");
    let mut latest = 0;
    for handle in later {
        assert_eq!(*handle.join().unwrap(), "text 50", "the latest closure ran");
        latest += 1;
    }
    assert_eq!(latest, 50);
    assert_eq!(
        executed.load(Ordering::SeqCst),
        2,
        "one follow-up for 50 keystrokes"
    );
    let stats = renders.stats();
    assert_eq!((stats.executed, stats.superseded), (2, 49), "{stats:?}");

    // 4. A build graph run on the adaptive pool.
    let mut builder = Graph::builder();
    let sources = builder.node("fetch", |_| 3usize).key();
    for unit in ["lexer", "parser", "codegen"] {
        builder
            .node(unit, move |cx| cx.get(sources).copied().unwrap_or(0))
            .after(sources);
    }
    builder
        .node("link", |_| "editor")
        .after_all(["lexer", "parser", "codegen"]);
    builder.node("test", |_| ()).after("link");
    builder.node("package", |_| ()).after("link");
    let graph = builder.build().unwrap();
    let report = graph.run(&*pool);
    assert!(report.is_success());
    assert_eq!(report.summary().succeeded, graph.len());
    for node in graph.names() {
        assert_eq!(report.outcome(node), Some(Outcome::Succeeded), "{node}");
    }

    // 5. The books balance after a graceful shutdown; nothing panicked, was cancelled or lost.
    drop(renders);
    pool.shutdown();
    let stats = pool.stats();
    assert!(stats.is_balanced(), "{stats}");
    assert_eq!(stats.submitted, stats.completed, "{stats}");
    assert_eq!(stats.queued + stats.running, 0);
    // 1 name probe + the Idle tasks + 1 Critical + 2 render executions + the graph's jobs.
    assert!(stats.completed >= (1 + INDEXING + 1 + 2) as u64, "{stats}");
    assert_eq!(stats.live_threads, 0, "every worker joined");
}

/// Invariant: the adaptive pool executes as the pool it attaches to: it reports that pool's
/// `honors_priority` (a DAG run works out its critical path only where it is true: before, the
/// trait's default made an adaptive priority pool read as FIFO), and a batch takes the pool's
/// batch path: every job runs once and the books balance.
#[test]
fn the_adaptive_pool_executes_as_its_pool_does() {
    use pool_core::{Executor, Job};

    let fifo = AdaptivePool::new(1, 2).unwrap();
    assert!(!fifo.honors_priority());
    let prioritized = AdaptivePool::builder()
        .pool(ThreadPool::builder().queue_policy(PriorityQueue::new()))
        .min(1)
        .max(2)
        .build()
        .unwrap();
    assert!(prioritized.pool().honors_priority());
    assert!(prioritized.honors_priority());
    let ran = Arc::new(AtomicUsize::new(0));
    let mut jobs = (0..50).map(|_| {
        let ran = Arc::clone(&ran);
        Box::new(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        }) as Job
    });
    prioritized
        .execute_batch(&mut jobs, Priority::High)
        .unwrap();
    assert!(prioritized.wait_idle(PATIENCE));
    assert_eq!(ran.load(Ordering::SeqCst), 50);
    prioritized.shutdown();
    let stats = prioritized.stats();
    assert!(stats.is_balanced(), "{stats}");
    assert_eq!(stats.completed, 50, "{stats}");
}

/// A priority queue serves one live pool: an adaptive pool built over a queue that another pool
/// still uses is refused with the pool's typed error (each pool would run the other's tasks),
/// and built once that pool is gone.
#[test]
fn an_adaptive_pool_is_refused_a_queue_that_serves_another_pool() {
    use policy_adaptive::AdaptiveBuildError;

    let queue = PriorityQueue::new();
    let plain = ThreadPool::builder()
        .threads(1)
        .queue_policy(queue.clone())
        .build()
        .unwrap();
    let adaptive = || {
        AdaptivePool::builder()
            .min(1)
            .max(2)
            .pool(ThreadPool::builder().queue_policy(queue.clone()))
            .build()
    };
    match adaptive() {
        Err(AdaptiveBuildError::Pool(e)) => assert!(e.is_policy_refused(), "{e}"),
        other => panic!("expected the pool's refusal, got {other:?}"),
    }
    drop(plain);
    let pool = adaptive().expect("the queue is free once the first pool is gone");
    assert_eq!(
        pool.submit(|| 3).unwrap().join_timeout(PATIENCE).unwrap(),
        3
    );
    pool.shutdown();
}
