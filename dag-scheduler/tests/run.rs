//! Running graphs: each node exactly once after all its dependencies, failures skipping exactly
//! the transitive dependents, opt-outs, marks, cancellation, reruns, typed outputs, refusals.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Duration;

use dag_scheduler::{Graph, GraphBuilder, Outcome, Report, RunOptions};
use pool_core::{Executor, InlineExecutor, Job, Priority, Rejected, ThreadPool};
use test_kit::{Budget, Dropping, Latch, Recording, PATIENCE};

/// Records, per node, how many times it ran and the global sequence numbers of its start/end.
#[derive(Default)]
struct Log {
    seq: AtomicUsize,
    events: Mutex<Vec<(String, usize, usize)>>,
}

impl Log {
    fn record<'a>(
        self: &Arc<Self>,
        name: &'a str,
    ) -> impl Fn(&dag_scheduler::Context<'_>) + 'static {
        let log = Arc::clone(self);
        let name = name.to_owned();
        move |_| {
            let start = log.seq.fetch_add(1, Ordering::SeqCst);
            let end = log.seq.fetch_add(1, Ordering::SeqCst);
            log.events.lock().unwrap().push((name.clone(), start, end));
        }
    }

    /// Every node in `names` ran exactly once, and after every one of its dependencies ended.
    fn check(&self, graph: &Graph) {
        let events = self.events.lock().unwrap();
        for name in graph.names() {
            let runs: Vec<_> = events.iter().filter(|(n, _, _)| n == name).collect();
            assert_eq!(runs.len(), 1, "node {name} ran {} times", runs.len());
            let start = runs[0].1;
            for dep in graph.dependencies(name).unwrap() {
                let dep_end = events.iter().find(|(n, _, _)| n == dep).unwrap().2;
                assert!(
                    dep_end < start,
                    "{name} started before its dependency {dep} ended"
                );
            }
        }
        assert_eq!(events.len(), graph.len());
    }
}

fn diamond(log: &Arc<Log>) -> Graph {
    let mut b = Graph::builder();
    b.node("top", log.record("top"));
    b.node("left", log.record("left")).after("top");
    b.node("right", log.record("right")).after("top");
    b.node("bottom", log.record("bottom"))
        .after("left")
        .after("right");
    b.build().unwrap()
}

#[test]
fn diamond_runs_each_node_once_after_its_dependencies() {
    for threads in [1, 2, 4] {
        let pool = ThreadPool::new(threads).unwrap();
        for _ in 0..50 {
            let log = Arc::new(Log::default());
            let graph = diamond(&log);
            let report = graph.run(&pool);
            assert!(report.is_success(), "{report}");
            log.check(&graph);
        }
    }
}

/// A clock that counts its reads and, of two reads at once on two threads, returns the first
/// one last: each read waits up to a millisecond for another, and the read that saw one come
/// after it takes 3 ms more (a thread preempted right after it read the time).
fn first_read_returns_last() -> impl Fn() -> Duration + Send + Sync + 'static {
    let reads = Arc::new((Mutex::new(0u64), Condvar::new()));
    move || {
        let (count, read) = &*reads;
        let mut count = count.lock().unwrap();
        let now = *count;
        *count += 1;
        read.notify_all();
        let (count, _) = read
            .wait_timeout_while(count, Duration::from_millis(1), |count| *count == now + 1)
            .unwrap();
        let another_came = *count > now + 1;
        drop(count);
        if another_came {
            std::thread::sleep(Duration::from_millis(3));
        }
        Duration::from_micros(now)
    }
}

#[test]
fn a_nodes_reported_start_is_never_before_an_inputs_reported_end() {
    // Two inputs that end together on two threads: the thread that releases the dependent may
    // be the one whose input's end was read first. The dependent's start was that thread's last
    // end (one clock read saved per node run in place), so it read before the other input's end
    // (pool-remote's diamond of remote nodes failed so in CI: its two remote waits end on the
    // same poll). Now a node with more than one input reads its start after its release.
    let pool = ThreadPool::new(2).unwrap();
    for round in 0..50 {
        let (left_done, right_done) = (Arc::new(Latch::default()), Arc::new(Latch::default()));
        let mut b = Graph::builder();
        b.node("top", |_| ());
        let (open, wait) = (Arc::clone(&left_done), Arc::clone(&right_done));
        b.node("left", move |_| {
            open.open();
            assert!(wait.wait(), "right never started beside left");
        })
        .after("top");
        let (open, wait) = (Arc::clone(&right_done), Arc::clone(&left_done));
        b.node("right", move |_| {
            open.open();
            assert!(wait.wait(), "left never started beside right");
        })
        .after("top");
        b.node("bottom", |_| ()).after("left").after("right");
        let graph = b.build().unwrap();
        let report = graph
            .run_with(&pool, RunOptions::new().clock(first_read_returns_last()))
            .unwrap();
        assert!(report.is_success(), "{report}");
        let node = |name| report.node(name).unwrap();
        let bottom = node("bottom").start.unwrap();
        for input in ["left", "right"] {
            let end = node(input).end.unwrap();
            assert!(
                end <= bottom,
                "round {round}: {input} ended at {end:?}, bottom started at {bottom:?}"
            );
        }
    }
}

#[test]
fn wide_graph_runs_each_node_once() {
    let log = Arc::new(Log::default());
    let mut b = Graph::builder();
    b.node("source", log.record("source"));
    let mids: Vec<String> = (0..200).map(|i| format!("mid{i}")).collect();
    for m in &mids {
        b.node(m.as_str(), log.record(m)).after("source");
    }
    b.node("sink", log.record("sink")).after_all(&mids);
    let graph = b.build().unwrap();
    let pool = ThreadPool::new(4).unwrap();
    let report = graph.run(&pool);
    assert_eq!(report.summary().succeeded, 202);
    log.check(&graph);
    assert_eq!(report.critical_path().first(), Some(&"source"));
    assert_eq!(report.critical_path().last(), Some(&"sink"));
}

/// a -> b -> d, a -> c, e -> d ; x -> y (independent). `b` fails.
fn failing_graph(b_fails_by_panic: bool) -> (GraphBuilder, Arc<AtomicUsize>) {
    let ran = Arc::new(AtomicUsize::new(0));
    let count = |ran: &Arc<AtomicUsize>| {
        let ran = Arc::clone(ran);
        move |_: &dag_scheduler::Context<'_>| {
            ran.fetch_add(1, Ordering::SeqCst);
        }
    };
    let mut g = Graph::builder();
    g.node("a", count(&ran));
    if b_fails_by_panic {
        g.node("b", |_| -> () { panic!("boom") }).after("a");
    } else {
        g.try_node("b", |_| Err::<(), _>("exit code 1")).after("a");
    }
    g.node("c", count(&ran)).after("a");
    g.node("e", count(&ran));
    g.node("d", count(&ran)).after("b").after("e");
    g.node("f", count(&ran)).after("d");
    g.node("x", count(&ran));
    g.node("y", count(&ran)).after("x");
    (g, ran)
}

#[test]
fn failure_skips_exactly_the_transitive_dependents() {
    for panics in [false, true] {
        let (g, ran) = failing_graph(panics);
        let graph = g.build().unwrap();
        let report = graph.run(&ThreadPool::new(2).unwrap());
        let expected_failure = if panics {
            "panicked: boom"
        } else {
            "exit code 1"
        };
        assert_eq!(
            report.outcome("b"),
            Some(Outcome::Failed(expected_failure.into()))
        );
        for skipped in ["d", "f"] {
            assert_eq!(
                report.outcome(skipped),
                Some(Outcome::Skipped {
                    because: "b".into()
                }),
                "{skipped}"
            );
        }
        for ok in ["a", "c", "e", "x", "y"] {
            assert_eq!(report.outcome(ok), Some(Outcome::Succeeded), "{ok}");
        }
        assert_eq!(ran.load(Ordering::SeqCst), 5);
        let s = report.summary();
        assert_eq!(
            (s.succeeded, s.failed, s.skipped, s.cancelled),
            (5, 1, 2, 0)
        );
        assert!(!report.is_success());
    }
}

#[test]
fn opt_out_node_runs_and_sees_missing_inputs() {
    let mut g = Graph::builder();
    let good = g.node("good", |_| 5).key();
    let bad = g.try_node("bad", |_| Err::<u32, _>("no")).key();
    let mid = g.node("mid", |_| 1).after(bad).key();
    let summary = g
        .node("summary", move |cx| {
            let missing: Vec<String> = cx.missing_inputs().map(str::to_owned).collect();
            (
                cx.get(good).copied(),
                cx.get(bad).copied(),
                cx.get(mid).copied(),
                missing,
            )
        })
        .after(good)
        .after(bad)
        .after(mid)
        .run_even_if_failed()
        .key();
    g.node("after-summary", |_| ()).after(summary);
    let graph = g.build().unwrap();
    let report = graph.run(&ThreadPool::new(2).unwrap());
    assert_eq!(
        report.output(summary),
        Some(&(
            Some(5),
            None,
            None,
            vec!["bad".to_owned(), "mid".to_owned()]
        ))
    );
    assert_eq!(
        report.outcome("mid"),
        Some(Outcome::Skipped {
            because: "bad".into()
        })
    );
    // The opt-out node succeeded, so its own dependents run.
    assert_eq!(report.outcome("after-summary"), Some(Outcome::Succeeded));
}

#[test]
fn marked_failed_nodes_do_not_run_and_propagate() {
    let (g, ran) = failing_graph(false);
    let graph = g.build().unwrap();
    let options = RunOptions::new().mark_failed("x", "cached failure");
    let report = graph.run_with(&InlineExecutor, options).unwrap();
    assert_eq!(
        report.outcome("x"),
        Some(Outcome::Failed("cached failure".into()))
    );
    assert_eq!(
        report.outcome("y"),
        Some(Outcome::Skipped {
            because: "x".into()
        })
    );
    // a, c, e ran; x and y did not.
    assert_eq!(ran.load(Ordering::SeqCst), 3);
    // Marks are per run: the next run runs x again.
    let again = graph.run(&InlineExecutor);
    assert_eq!(again.outcome("x"), Some(Outcome::Succeeded));
}

#[test]
fn marking_an_unknown_node_is_an_error_and_runs_nothing() {
    let ran = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&ran);
    let mut g = Graph::builder();
    g.node("a", move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    let graph = g.build().unwrap();
    let err = graph
        .run_with(&InlineExecutor, RunOptions::new().mark_failed("ghost", "x"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot mark unknown node `ghost` as failed"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn cancel_mid_run_cancels_unstarted_nodes_and_flags_running_ones() {
    let (entered_tx, entered) = mpsc::channel::<()>();
    let (open, gate) = mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    let entered_tx = Mutex::new(entered_tx);
    let mut g = Graph::builder();
    let saw_cancel = g
        .node("gated", move |cx| {
            entered_tx.lock().unwrap().send(()).unwrap();
            gate.lock().unwrap().recv_timeout(PATIENCE).unwrap();
            cx.is_cancelled()
        })
        .key();
    g.node("next", |_| ()).after(saw_cancel);
    g.node("last", |_| ()).after("next");
    let graph = g.build().unwrap();
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let handle = graph.start(Arc::clone(&pool));
    entered.recv_timeout(PATIENCE).unwrap();
    assert!(!handle.is_finished());
    assert!(handle.cancel());
    open.send(()).unwrap();
    let report = handle.wait_timeout(PATIENCE).expect("run finishes");
    assert_eq!(report.output(saw_cancel), Some(&true));
    assert_eq!(report.outcome("next"), Some(Outcome::Cancelled));
    assert_eq!(report.outcome("last"), Some(Outcome::Cancelled));
    assert!(report.was_cancelled());
    assert!(!report.executor_refused());
    open.send(()).unwrap(); // the gate of the next run
    let again = graph.run(&*pool);
    assert!(
        again.is_success(),
        "a cancelled run does not affect the next"
    );
}

#[test]
fn reruns_reset_counters_and_outputs() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let mut g = Graph::builder();
    let counter = g
        .node("counter", move |_| c.fetch_add(1, Ordering::SeqCst))
        .key();
    let doubled = g
        .node("doubled", move |cx| cx.get(counter).unwrap() * 2)
        .after(counter)
        .key();
    let graph = g.build().unwrap();
    let pool = ThreadPool::new(2).unwrap();
    for i in 0..20 {
        let report = graph.run(&pool);
        assert_eq!(report.output(counter), Some(&i));
        assert_eq!(report.output(doubled), Some(&(i * 2)));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 20);
}

#[test]
fn concurrent_runs_of_one_graph_are_independent() {
    let mut g = Graph::builder();
    let seed = g.node("seed", |_| 3u64).key();
    let sq = g
        .node("square", move |cx| cx.get(seed).unwrap().pow(2))
        .after(seed)
        .key();
    let graph = g.build().unwrap();
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let handles: Vec<_> = (0..16).map(|_| graph.start(Arc::clone(&pool))).collect();
    for h in handles {
        assert_eq!(h.wait_timeout(PATIENCE).unwrap().output(sq), Some(&9));
    }
}

#[test]
fn typed_outputs_flow_between_nodes() {
    let mut g = Graph::builder();
    let words = g.node("words", |_| vec!["a", "bb", "ccc"]).key();
    let lens = g
        .node("lens", move |cx| {
            cx.get(words)
                .unwrap()
                .iter()
                .map(|w| w.len())
                .collect::<Vec<_>>()
        })
        .after(words)
        .key();
    let total = g
        .node("total", move |cx| {
            cx.get(lens).unwrap().iter().sum::<usize>()
        })
        .after(lens)
        .key();
    let text = g
        .node("text", move |cx| format!("{}", cx.get(total).unwrap()))
        .after(total)
        .key();
    // Reading a node that is not a dependency gives None rather than racing.
    let not_dep = g.node("not-dep", move |cx| cx.get(words).is_none()).key();
    let graph = g.build().unwrap();
    let report = graph.run(&ThreadPool::new(2).unwrap());
    assert_eq!(report.output(total), Some(&6));
    assert_eq!(report.output(text).map(String::as_str), Some("6"));
    assert_eq!(report.output(not_dep), Some(&true));
}

#[test]
fn a_long_chain_on_the_inline_executor_uses_constant_stack() {
    // Each node's dependents are handed to the inline executor, which runs them at once: the
    // driver defers them instead of recursing.
    let mut g = Graph::builder();
    let ran = Arc::new(AtomicUsize::new(0));
    for i in 0..100_000 {
        let r = Arc::clone(&ran);
        let node = g.node(format!("n{i}"), move |_| {
            r.fetch_add(1, Ordering::Relaxed);
        });
        if i > 0 {
            node.after(format!("n{}", i - 1));
        }
    }
    // And a wide fan-out, whose extra successors all go through `execute`.
    for i in 0..10_000 {
        g.node(format!("w{i}"), |_| ()).after("n0");
    }
    let graph = g.build().unwrap();
    let report = graph
        .run_with(&InlineExecutor, RunOptions::new().timing(false))
        .unwrap();
    assert_eq!(report.summary().succeeded, 110_000);
    assert_eq!(ran.load(Ordering::Relaxed), 100_000);
}

/// Two empty nodes, `b` after `a`: the smallest graph with a hand-off between jobs.
fn a_then_b() -> Graph {
    let mut g = Graph::builder();
    g.node("a", |_| ());
    g.node("b", |_| ()).after("a");
    g.build().unwrap()
}

#[test]
fn a_shut_down_pool_cancels_the_run_instead_of_hanging() {
    let graph = a_then_b();
    let pool = ThreadPool::new(1).unwrap();
    pool.shutdown();
    let report = graph.run(&pool);
    assert!(report.executor_refused());
    assert_eq!(report.outcome("a"), Some(Outcome::Cancelled));
    assert_eq!(report.outcome("b"), Some(Outcome::Cancelled));
}

/// A graph with several roots hands them over through one launcher job: refused itself
/// (budget 0) or refusing the roots it hands over (budget 1), the executor cancels every node,
/// each exactly once, and the run finishes.
#[test]
fn a_refused_launcher_or_refused_roots_cancel_every_node() {
    for budget in [0, 1] {
        let mut g = Graph::builder();
        for i in 0..20 {
            let root = g.node(format!("root{i}"), |_| ()).key();
            g.unnamed_node(|_| ()).after(root);
        }
        let graph = g.build().unwrap();
        let exec = Budget::new(ThreadPool::new(2).unwrap(), budget);
        let report = graph.start_with(exec, RunOptions::new()).unwrap();
        let report = report.wait_timeout(PATIENCE).expect("the run finishes");
        assert!(report.executor_refused(), "budget {budget}");
        let s = report.summary();
        assert_eq!(
            (s.succeeded, s.cancelled),
            (0, 40),
            "budget {budget}\n{report}"
        );
    }
}

/// Round 1 of a two-round test runs `graph` on `pool`, round 2 on the inline executor (each node
/// has then run `round` times).
fn run_round(graph: &Graph, pool: &ThreadPool, round: usize) -> Report {
    if round == 1 {
        graph.run(pool)
    } else {
        graph.run(&InlineExecutor)
    }
}

/// A graph with many roots (more than 1024 per 2, so the launcher hands them over in chunks of
/// several roots per job, the last chunk shorter): every root and every dependent runs exactly
/// once on a pool and on the inline executor; a chunk the executor refuses or drops cancels
/// every one of its roots, and the run still finishes with every node decided once.
#[test]
fn many_roots_in_chunks_run_once_or_are_cancelled_once() {
    // 20_001 roots: chunks of 16 and one of 1; 3_000: chunks of 2 and one of 1 (odd).
    for roots in [20_001usize, 3_001] {
        let runs: Arc<Vec<AtomicUsize>> =
            Arc::new((0..2 * roots).map(|_| AtomicUsize::new(0)).collect());
        let mut g = Graph::builder();
        for i in 0..roots {
            let r = Arc::clone(&runs);
            let root = g
                .unnamed_node(move |_| r[2 * i].fetch_add(1, Ordering::Relaxed))
                .key();
            let r = Arc::clone(&runs);
            g.unnamed_node(move |_| r[2 * i + 1].fetch_add(1, Ordering::Relaxed))
                .after(root);
        }
        let graph = g.build().unwrap();
        let pool = ThreadPool::new(2).unwrap();
        for round in 1..=2 {
            let report = run_round(&graph, &pool, round);
            assert_eq!(report.summary().succeeded, 2 * roots, "{roots} roots");
            assert!(
                runs.iter().all(|n| n.load(Ordering::Relaxed) == round),
                "{roots} roots: every node ran once per run"
            );
        }
        // Refused after a few jobs: the launcher's hand-over stops part-way, and the chunks
        // not taken are dropped (each cancels all its roots).
        for budget in [0, 1, 3, 40] {
            let exec = Budget::new(ThreadPool::new(2).unwrap(), budget);
            let report = graph.start_with(exec, RunOptions::new()).unwrap();
            let report = report.wait_timeout(PATIENCE).expect("the run finishes");
            assert!(report.executor_refused(), "budget {budget}");
            let s = report.summary();
            assert_eq!(
                (s.succeeded + s.cancelled, s.failed, s.skipped),
                (2 * roots, 0, 0),
                "{roots} roots, budget {budget}"
            );
            assert!(s.cancelled > 0, "{roots} roots, budget {budget}");
        }
        let report = graph.start(Dropping).wait_timeout(PATIENCE).unwrap();
        assert_eq!(report.summary().cancelled, 2 * roots);
    }
}

/// Roots that panic inside a chunk (thousands of roots, so several run one after another in one
/// job): each panic fails its own root and skips only that root's dependent; the roots after it
/// in the same chunk still run, once, on a pool and on the inline executor.
#[test]
fn a_panicking_root_in_a_chunk_fails_only_its_own_dependent() {
    let roots = 5_000;
    let panics = |i: usize| i % 7 == 3;
    let runs: Arc<Vec<AtomicUsize>> =
        Arc::new((0..2 * roots).map(|_| AtomicUsize::new(0)).collect());
    let mut g = Graph::builder();
    for i in 0..roots {
        let r = Arc::clone(&runs);
        g.node(format!("root{i}"), move |_| {
            r[2 * i].fetch_add(1, Ordering::Relaxed);
            if panics(i) {
                panic!("root {i} fails");
            }
        });
        let r = Arc::clone(&runs);
        g.node(format!("leaf{i}"), move |_| {
            r[2 * i + 1].fetch_add(1, Ordering::Relaxed);
        })
        .after(format!("root{i}"));
    }
    let graph = g.build().unwrap();
    let failing = (0..roots).filter(|&i| panics(i)).count();
    let pool = ThreadPool::new(2).unwrap();
    for round in 1..=2 {
        let report = run_round(&graph, &pool, round);
        let s = report.summary();
        assert_eq!(
            (s.succeeded, s.failed, s.skipped, s.cancelled),
            (2 * roots - 2 * failing, failing, failing, 0)
        );
        for i in [3, 4, 10, 11, roots - 1] {
            let (root, leaf) = (format!("root{i}"), format!("leaf{i}"));
            if panics(i) {
                assert_eq!(
                    report.outcome(&root),
                    Some(Outcome::Failed(format!("panicked: root {i} fails")))
                );
                assert_eq!(
                    report.outcome(&leaf),
                    Some(Outcome::Skipped { because: root })
                );
            } else {
                assert_eq!(report.outcome(&root), Some(Outcome::Succeeded), "{root}");
                assert_eq!(report.outcome(&leaf), Some(Outcome::Succeeded), "{leaf}");
            }
        }
        for i in 0..roots {
            assert_eq!(runs[2 * i].load(Ordering::Relaxed), round, "root {i}");
            let leaf_runs = if panics(i) { 0 } else { round };
            assert_eq!(
                runs[2 * i + 1].load(Ordering::Relaxed),
                leaf_runs,
                "leaf {i}"
            );
        }
    }
    assert!(pool.wait_idle(PATIENCE));
    let stats = pool.stats();
    assert_eq!(
        stats.panicked, 0,
        "a node's panic is the run's, not the pool's"
    );
}

#[test]
fn a_refusal_mid_run_cancels_the_rest() {
    let mut g = Graph::builder();
    g.node("root", |_| ());
    for i in 0..50 {
        g.node(format!("leaf{i}"), |_| ()).after("root");
    }
    let graph = g.build().unwrap();
    // Refuses every job after the first five.
    let exec = Budget::new(ThreadPool::new(2).unwrap(), 5);
    let report = graph.run(&exec);
    assert!(report.executor_refused());
    let s = report.summary();
    assert_eq!(s.succeeded + s.cancelled, 51);
    assert!(s.cancelled >= 1);
    assert_eq!(report.outcome("root"), Some(Outcome::Succeeded));
}

#[test]
fn dropped_jobs_cancel_their_nodes() {
    let graph = a_then_b();
    let report = graph.start(Dropping).wait_timeout(PATIENCE).unwrap();
    assert_eq!(report.summary().cancelled, 2);
    assert!(report.executor_refused());
}

#[test]
fn awaiting_the_handle_gives_the_report() {
    use std::future::Future;
    use std::task::{Context, Poll, Wake, Waker};

    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let (open, gate) = mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    let mut g = Graph::builder();
    let v = g
        .node("v", move |_| {
            gate.lock().unwrap().recv_timeout(PATIENCE).unwrap();
            7
        })
        .key();
    let graph = g.build().unwrap();
    let mut handle = graph.start(Arc::new(ThreadPool::new(1).unwrap()));
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    assert!(std::pin::Pin::new(&mut handle).poll(&mut cx).is_pending());
    open.send(()).unwrap();
    let report = loop {
        if let Poll::Ready(r) = std::pin::Pin::new(&mut handle).poll(&mut cx) {
            break r;
        }
        std::thread::park_timeout(PATIENCE);
    };
    assert_eq!(report.output(v), Some(&7));
}

#[test]
fn nested_runs_on_the_inline_executor_do_not_deadlock() {
    let mut inner = Graph::builder();
    let x = inner.node("x", |_| 20).key();
    let inner = inner.build().unwrap();
    let mut outer = Graph::builder();
    let y = outer
        .node("y", move |_| inner.run(&InlineExecutor).output(x).copied())
        .key();
    outer.node("z", |_| ()).after(y);
    let report = outer.build().unwrap().run(&InlineExecutor);
    assert_eq!(report.output(y), Some(&Some(20)));
}

/// An executor that orders by priority (as far as the run can tell): records what it is given.
#[derive(Default)]
struct Ranked(Recording);

impl Executor for Ranked {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        self.0.execute(job)
    }
    fn execute_with_priority(&self, job: Job, priority: Priority) -> Result<(), Rejected<Job>> {
        self.0.execute_with_priority(job, priority)
    }
    fn honors_priority(&self) -> bool {
        true
    }
}

#[test]
fn critical_path_priority_is_passed_to_an_executor_that_honors_it() {
    // Roots: "long" heads a 3-chain (critical), "short" is alone.
    let mut g = Graph::builder();
    g.node("short", |_| ());
    g.node("long", |_| ());
    g.node("l2", |_| ()).after("long");
    g.node("l3", |_| ()).after("l2");
    let graph = g.build().unwrap();
    let rec = Ranked::default();
    graph.run(&rec);
    let seen = rec.0.priorities();
    // Roots are submitted in insertion order; the chain runs in place after "long".
    assert_eq!(seen, [Priority::Normal, Priority::High]);
    let rec = Ranked::default();
    graph
        .run_with(&rec, RunOptions::new().critical_path_priority(false))
        .unwrap();
    // Without priorities, the two roots are handed over by a launcher job: three jobs.
    assert_eq!(rec.0.priorities(), [Priority::Normal; 3]);
    // An executor that ignores priorities is given none.
    let rec = Recording::default();
    graph.run(&rec);
    assert_eq!(rec.priorities(), [Priority::Normal; 3]);
}

#[test]
fn a_critical_successor_runs_in_place_before_an_earlier_ready_one() {
    // "root" releases "side" (a sink) and "c1" (heads the longest chain) at once: on a ranked
    // executor "c1" runs in place and "side" is submitted, whatever their insertion order.
    let mut g = Graph::builder();
    let root = g.node("root", |_| ()).key();
    g.node("side", |_| ()).after(root);
    g.node("c1", |_| ()).after(root);
    g.node("c2", |_| ()).after("c1");
    let graph = g.build().unwrap();
    let rec = Ranked::default();
    assert!(graph.run(&rec).is_success());
    // The root (High: it heads the longest chain), then "side" (Normal); the chain ran in place.
    assert_eq!(rec.0.priorities(), [Priority::High, Priority::Normal]);
}

#[test]
fn a_wide_node_reads_every_input_and_nothing_else() {
    // More dependencies than the scan threshold: `get` uses the node's dependency set.
    let mut g = Graph::builder();
    let inputs: Vec<_> = (0..100u32)
        .map(|i| g.node(format!("in{i}"), move |_| i).key())
        .collect();
    let outsider = g.node("outsider", |_| 1000u32).key();
    let keys = inputs.clone();
    let sum = g
        .node("sum", move |cx| {
            assert_eq!(cx.get(outsider), None, "not a dependency");
            keys.iter()
                .map(|&k| cx.get(k).copied().unwrap())
                .sum::<u32>()
        })
        .after_all(inputs.iter().rev())
        .key();
    let report = g.build().unwrap().run(&InlineExecutor);
    assert_eq!(report.output(sum), Some(&4950));
}

/// `Report::is_success` reads a count the run keeps of nodes decided as anything but an output:
/// every kind of such decision counts (failed, panicked, marked, skipped, cancelled), a node that
/// ran despite a failed dependency does not undo it, and the count is per run (a rerun of the
/// same graph, on the recycled state array, starts from zero).
#[test]
fn is_success_counts_every_unsuccessful_decision_per_run() {
    let mut b = Graph::builder();
    let a = b.node("a", |_| 1).key();
    b.node("independent", |_| ());
    b.node("cleanup", |cx| cx.missing_inputs().count())
        .after(a)
        .run_even_if_failed();
    let graph = b.build().unwrap();
    assert!(graph.run(&InlineExecutor).is_success());
    let marked = graph
        .run_with(
            &InlineExecutor,
            RunOptions::new().mark_failed("a", "broken"),
        )
        .unwrap();
    assert!(!marked.is_success(), "{marked}");
    assert_eq!(marked.outcome("cleanup"), Some(Outcome::Succeeded));
    drop(marked);
    assert!(
        graph.run(&InlineExecutor).is_success(),
        "a rerun starts from zero"
    );
    let refused = graph.run(&test_kit::Refusing);
    assert!(!refused.is_success(), "{refused}");

    let mut b = Graph::builder();
    let p = b.node("panics", |_| -> u8 { panic!("boom") }).key();
    b.node("skipped", |_| ()).after(p);
    let report = b.build().unwrap().run(&ThreadPool::new(2).unwrap());
    assert!(!report.is_success());
    assert_eq!(
        report.outcome("skipped"),
        Some(Outcome::Skipped {
            because: "panics".into()
        })
    );
}

/// A binary tree of `nodes` nodes (node `i`'s dependency is `(i - 1) / 2`), each counting its
/// runs in `runs[i]`.
fn counted_tree(nodes: usize, runs: &Arc<Vec<AtomicUsize>>) -> Graph {
    let mut g = Graph::builder();
    let mut keys = Vec::with_capacity(nodes);
    for i in 0..nodes {
        let r = Arc::clone(runs);
        let node = g.unnamed_node(move |_| r[i].fetch_add(1, Ordering::Relaxed));
        let node = if i == 0 {
            node
        } else {
            node.after(keys[(i - 1) / 2])
        };
        keys.push(node.key());
    }
    g.build().unwrap()
}

/// Invariant: the run's token count reaches zero once, after the last node, however the jobs'
/// tokens spread over the count's per-thread slots: on a pool with more workers than
/// `pool_core::sync::THREAD_SLOTS` (threads share slots), with jobs stolen across workers (a
/// token released on another thread's slot), and with two runs of one graph at once (each
/// with its own count), every run's report counts every node as succeeded, and once both
/// waiters of a round have returned, every node has run exactly once per run.
#[test]
fn tokens_spread_over_shared_slots_complete_each_run_once() {
    let threads = pool_core::sync::THREAD_SLOTS + 4;
    let pool = Arc::new(ThreadPool::new(threads).unwrap());
    let nodes = 4095;
    let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..nodes).map(|_| AtomicUsize::new(0)).collect());
    let graph = counted_tree(nodes, &runs);
    for round in 1..=10 {
        let first = graph.start(Arc::clone(&pool));
        let second = graph.start(Arc::clone(&pool));
        for handle in [first, second] {
            let report = handle.wait_timeout(PATIENCE).expect("the run finishes");
            assert_eq!(report.summary().succeeded, nodes, "round {round}");
        }
        assert!(
            runs.iter().all(|n| n.load(Ordering::Relaxed) == 2 * round),
            "round {round}: every node ran once per run"
        );
    }
}

/// The name index is made by the first lookup by name: threads that all look names up at
/// once, on a graph and on its report, each find every node, and an unknown name is none.
#[test]
fn names_are_found_by_threads_that_look_them_up_first_at_once() {
    let mut b = Graph::builder();
    let mut previous = None;
    for i in 0..2000 {
        let node = b.node(format!("step-{i}"), |_| ());
        previous = Some(match previous {
            Some(key) => node.after(key).key(),
            None => node.key(),
        });
    }
    b.unnamed_node(|_| ()).after("step-1999");
    let graph = Arc::new(b.build().unwrap());
    let report = Arc::new(graph.run(&InlineExecutor));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (graph, report) = (Arc::clone(&graph), Arc::clone(&report));
            std::thread::spawn(move || {
                for i in (0..2000).map(|i| (i * 7 + t * 500) % 2000) {
                    let name = format!("step-{i}");
                    assert_eq!(report.outcome(&name), Some(Outcome::Succeeded), "{name}");
                    let deps = graph.dependencies(&name).unwrap();
                    let expected: Vec<String> = (i > 0)
                        .then(|| format!("step-{}", i - 1))
                        .into_iter()
                        .collect();
                    assert_eq!(deps, expected, "{name}");
                }
                assert_eq!(graph.dependencies("#2000").unwrap(), ["step-1999"]);
                assert_eq!(report.outcome("step-2000"), None);
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}
