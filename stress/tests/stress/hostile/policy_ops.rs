//! The hostile operations of the policy crates on the round's pool: coalesced submissions (with
//! hostile keys and executor) and DAG runs (with hostile nodes and executor).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::Poll;

use dag_scheduler::{Graph, Outcome, Report, RunHandle};
use policy_coalesce::{CoalescedHandle, Mode, SubmitOptions};
use pool_core::Priority;

use super::kit::{poll_with_hostile_waker, tolerate, Bomb, Ending, Key};
use super::{patience, Round};

pub struct HeldCoalesced {
    pub handle: CoalescedHandle<Bomb>,
}

/// Submits a coalesced closure: maybe under a key that panics in `Hash`/`Eq`/`Clone`, with a
/// hostile closure, capture and output, through an executor that may panic or drop the job.
pub fn coalesced(round: &Round, rng: &mut fastrand::Rng, index: u64) -> Option<HeldCoalesced> {
    let hostile = round.parts.coalesce;
    let fuse = (round.parts.coalesce_keys && rng.u32(..100) < 15).then(|| rng.i32(1..=8));
    let key = Key::new(rng.u8(..4), fuse);
    let mode = [Mode::Latest, Mode::Replace, Mode::Keep][rng.usize(..3)];
    let options = SubmitOptions::new()
        .mode(mode)
        .priority(Priority::ALL[rng.usize(..5)]);
    let ending = Ending::pick(rng, hostile);
    let capture = Bomb::new(index, hostile && rng.u32(..100) < 15, &round.census);
    let output_armed = hostile && rng.u32(..100) < 20;
    let census = round.census.clone();
    let closure = move || {
        ending.act(&census, "a coalesced closure");
        let output = Bomb::new(index, output_armed, &census);
        drop(capture);
        output
    };
    if rng.u32(..100) < 20 {
        // Fire and forget. A refusal (after shutdown) hands the closure back.
        if let Some(Err(refused)) = tolerate(|| round.coalescer.spawn(key, options, closure)) {
            tolerate(move || drop(refused));
        }
        return None;
    }
    let submitted = tolerate(|| {
        round
            .coalescer
            .submit_cancellable_with(key, options, move |flag| {
                let mut spins = 0;
                while !flag.is_cancelled() && spins < 200 {
                    spins += 1;
                    std::hint::spin_loop();
                }
                closure()
            })
    });
    let mut handle = match submitted {
        // A hostile key or executor panicked on this thread: the panic reaching the caller is
        // allowed; the books must still balance at the end.
        None => return None,
        Some(Err(refused)) => {
            tolerate(move || drop(refused));
            return None;
        }
        Some(Ok(handle)) => handle,
    };
    if hostile && rng.u32(..100) < 20 {
        if let Poll::Ready(outcome) = poll_with_hostile_waker(&mut handle, rng) {
            tolerate(move || drop(outcome));
            return None;
        }
    }
    Some(HeldCoalesced { handle })
}

pub fn resolve_coalesced(round: &Round, held: HeldCoalesced) {
    // Any outcome (a value, a panic, a cancel, a refusal) is fine; it must arrive.
    match held.handle.join_timeout(patience()) {
        Err(policy_coalesce::CoalesceJoinTimeoutError::TimedOut(h)) => panic!(
            "{}: coalesced handle {:?} did not resolve within {:?}; state:\n{}",
            round.ctx(),
            h.id(),
            patience(),
            round.dump()
        ),
        outcome => {
            tolerate(move || drop(outcome));
        }
    }
}

/// Per node of a random graph: its dependencies, whether it fails (returns `Err` or panics),
/// and how many times it ran.
type Shape = Vec<(Vec<usize>, bool, Arc<AtomicU32>)>;

/// A random DAG whose nodes return `Err`, panic (with a string or a hostile payload), capture and
/// return values whose `Drop` panics, when `hostile`.
fn random_graph(
    round: &Round,
    rng: &mut fastrand::Rng,
    index: u64,
    hostile: bool,
) -> (Graph, Shape) {
    let n = 2 + rng.usize(..8);
    let mut b = Graph::builder();
    let mut shape = Vec::new();
    for i in 0..n {
        let deps: Vec<usize> = (0..i).filter(|_| rng.u32(..100) < 30).collect();
        let returns_err = rng.u32(..100) < 10;
        let ending = Ending::pick(rng, hostile);
        let capture = Bomb::new(index, hostile && rng.u32(..100) < 10, &round.census);
        let output_armed = hostile && rng.u32(..100) < 20;
        let runs = Arc::new(AtomicU32::new(0));
        let (r, census) = (runs.clone(), round.census.clone());
        let mut node = b.try_node(format!("n{i}"), move |_| {
            r.fetch_add(1, Ordering::SeqCst);
            let _ = &capture;
            ending.act(&census, "a DAG node");
            if returns_err {
                Err("deliberate failure")
            } else {
                Ok(Bomb::new(index, output_armed, &census))
            }
        });
        for d in &deps {
            node = node.after(format!("n{d}").as_str());
        }
        shape.push((deps, returns_err || ending.panics(), runs));
    }
    (b.build().expect("random graphs here are acyclic"), shape)
}

/// A small well-behaved graph (for nested runs).
pub fn benign_graph(rng: &mut fastrand::Rng) -> Graph {
    let mut b = Graph::builder();
    let n = 1 + rng.usize(..4);
    for i in 0..n {
        let node = b.node(format!("n{i}"), |_| ());
        if i > 0 {
            node.after(format!("n{}", i - 1).as_str());
        }
    }
    b.build().expect("a chain is acyclic")
}

pub struct HeldRun {
    handle: RunHandle,
    graph: Graph,
    shape: Shape,
}

impl HeldRun {
    pub fn cancel(&self) -> bool {
        self.handle.cancel()
    }
}

/// Runs a random graph: borrowed on the pool, borrowed on the hostile executor (blocking), or
/// started on the hostile executor and held (sometimes polled once with a hostile waker).
pub fn dag(round: &Round, rng: &mut fastrand::Rng, index: u64) -> Option<HeldRun> {
    let (graph, shape) = random_graph(round, rng, index, round.parts.dag);
    match rng.u32(..3) {
        0 => {
            let report = tolerate(|| graph.run(&*round.pool));
            finish_run(round, graph, &shape, report);
            None
        }
        1 => {
            let report = tolerate(|| graph.run(&*round.dag_exec));
            finish_run(round, graph, &shape, report);
            None
        }
        _ => {
            let mut handle = tolerate(|| graph.start(round.dag_exec.clone()))?;
            if round.parts.dag && rng.u32(..100) < 20 {
                if let Poll::Ready(report) = poll_with_hostile_waker(&mut handle, rng) {
                    finish_run(round, graph, &shape, Some(report));
                    return None;
                }
            }
            Some(HeldRun {
                handle,
                graph,
                shape,
            })
        }
    }
}

pub fn resolve_run(round: &Round, held: HeldRun) {
    match held.handle.wait_timeout(patience()) {
        Ok(report) => finish_run(round, held.graph, &held.shape, Some(report)),
        Err(_) => panic!(
            "{}: DAG run of {} nodes did not finish within {:?}; state:\n{}",
            round.ctx(),
            held.graph.len(),
            patience(),
            round.dump()
        ),
    }
}

/// Checks a report against the graph's shape, then drops both (their hostile values may panic
/// here, on the harness's thread). `None`: the run let a hostile panic out to its caller (a
/// panicking executor); nothing to check then but that the graph drops.
fn finish_run(round: &Round, graph: Graph, shape: &Shape, report: Option<Report>) {
    if let Some(report) = &report {
        check_report(round, &graph, shape, report);
    }
    tolerate(move || drop(report));
    tolerate(move || drop(graph));
}

fn check_report(round: &Round, graph: &Graph, shape: &Shape, report: &Report) {
    let ctx = round.ctx();
    assert_eq!(report.len(), graph.len(), "{ctx}: report length");
    let s = report.summary();
    assert_eq!(
        s.succeeded + s.failed + s.skipped + s.cancelled,
        graph.len(),
        "{ctx}: report counts {s:?}"
    );
    let mut outcomes: Vec<Outcome> = Vec::new();
    for (i, (deps, fails, runs)) in shape.iter().enumerate() {
        let outcome = report
            .outcome(&format!("n{i}"))
            .expect("every node is reported");
        let ran = runs.load(Ordering::SeqCst);
        let what =
            format!("{ctx}: node n{i} (deps {deps:?}, fails {fails}) ran {ran} times, {outcome:?}");
        match &outcome {
            Outcome::Succeeded => assert!(ran == 1 && !fails, "{what}"),
            Outcome::Failed(_) => assert!(ran == 1 && *fails, "{what}"),
            Outcome::Skipped { .. } => {
                assert_eq!(ran, 0, "{what}");
                assert!(
                    deps.iter().any(|&d| !outcomes[d].is_success()),
                    "{what}: skipped though every dependency succeeded"
                );
            }
            Outcome::Cancelled => assert_eq!(ran, 0, "{what}"),
            other => panic!("{what}: an outcome this harness does not know: {other:?}"),
        }
        outcomes.push(outcome);
    }
}
