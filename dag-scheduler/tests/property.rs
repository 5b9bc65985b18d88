//! Property tests with a seeded `fastrand` generator: random DAGs of many
//! shapes run every node exactly once, in an order consistent with the edges, on pools of 1, 2
//! and 8 workers; random malformed graphs give the right error and never panic.
//! A failing case prints its seed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dag_scheduler::{Graph, Outcome, RunOptions};
use pool_core::{InlineExecutor, ThreadPool};

/// Predecessor lists of a random DAG (every edge from a lower to a higher index), in one of
/// several shapes.
fn random_dag(rng: &mut fastrand::Rng) -> Vec<Vec<usize>> {
    let shape = rng.usize(..5);
    let n = 1 + rng.usize(
        ..match shape {
            0 => 8,
            1 => 60,
            _ => 300,
        },
    );
    (0..n)
        .map(|i| {
            if i == 0 {
                return Vec::new();
            }
            let mut preds: Vec<usize> = match shape {
                // Chains with occasional extra edges.
                2 => {
                    let mut p = vec![i - 1];
                    if rng.usize(..4) == 0 {
                        p.push(rng.usize(..(i).max(1)));
                    }
                    p
                }
                // Fan-in heavy: many dependencies each.
                3 => (0..rng.usize(..8))
                    .map(|_| rng.usize(..(i).max(1)))
                    .collect(),
                // Layered, local edges.
                4 => (0..rng.usize(..3))
                    .map(|_| i - 1 - rng.usize(..i.clamp(1, 5)))
                    .collect(),
                _ => (0..rng.usize(..4))
                    .map(|_| rng.usize(..(i).max(1)))
                    .collect(),
            };
            preds.sort_unstable();
            preds.dedup();
            preds
        })
        .collect()
}

/// Per node: (runs, start sequence number, end sequence number).
type Mark = (AtomicUsize, AtomicUsize, AtomicUsize);

/// Builds the DAG (nodes added in a shuffled order, to not rely on insertion order) with nodes
/// that record their start and end sequence numbers and how often they ran.
fn build(
    preds: &[Vec<usize>],
    rng: &mut fastrand::Rng,
    seq: &Arc<AtomicUsize>,
    fail: Option<usize>,
) -> (Graph, Vec<Arc<Mark>>) {
    let n = preds.len();
    let marks: Vec<_> = (0..n)
        .map(|_| {
            Arc::new((
                AtomicUsize::new(0),
                AtomicUsize::new(0),
                AtomicUsize::new(0),
            ))
        })
        .collect();
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.usize(..(i + 1).max(1)));
    }
    let mut b = Graph::builder();
    for &i in &order {
        let (mark, seq) = (Arc::clone(&marks[i]), Arc::clone(seq));
        let fails = fail == Some(i);
        b.try_node(format!("n{i}"), move |_| {
            mark.1
                .store(seq.fetch_add(1, Ordering::SeqCst), Ordering::SeqCst);
            mark.0.fetch_add(1, Ordering::SeqCst);
            mark.2
                .store(seq.fetch_add(1, Ordering::SeqCst), Ordering::SeqCst);
            if fails {
                Err("injected")
            } else {
                Ok(())
            }
        })
        .after_all(preds[i].iter().map(|p| format!("n{p}")));
    }
    (b.build().expect("acyclic"), marks)
}

#[test]
fn random_dags_run_each_node_once_in_edge_order() {
    let pools: Vec<ThreadPool> = [1, 2, 8]
        .iter()
        .map(|&t| ThreadPool::new(t).unwrap())
        .collect();
    for seed in 1..=120u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let preds = random_dag(&mut rng);
        let seq = Arc::new(AtomicUsize::new(0));
        let (graph, marks) = build(&preds, &mut rng, &seq, None);
        for pool in &pools {
            for m in &marks {
                m.0.store(0, Ordering::SeqCst);
            }
            let options = RunOptions::new().timing(seed % 2 == 0);
            let report = graph.run_with(pool, options).unwrap();
            assert!(report.is_success(), "seed {seed}: {report}");
            for (i, m) in marks.iter().enumerate() {
                assert_eq!(m.0.load(Ordering::SeqCst), 1, "seed {seed}: n{i} run count");
                for &p in &preds[i] {
                    assert!(
                        marks[p].2.load(Ordering::SeqCst) < m.1.load(Ordering::SeqCst),
                        "seed {seed}: n{i} started before its dependency n{p} ended"
                    );
                }
            }
        }
    }
}

#[test]
fn random_failures_skip_exactly_the_descendants() {
    let pool = ThreadPool::new(2).unwrap();
    for seed in 1..=100u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let preds = random_dag(&mut rng);
        let failing = rng.usize(..(preds.len()).max(1));
        let seq = Arc::new(AtomicUsize::new(0));
        let (graph, marks) = build(&preds, &mut rng, &seq, Some(failing));
        // Descendants of the failing node, by index order (edges go up in index).
        let mut tainted = vec![false; preds.len()];
        tainted[failing] = true;
        for i in failing + 1..preds.len() {
            tainted[i] = preds[i].iter().any(|&p| tainted[p]);
        }
        let report = graph.run(&pool);
        for i in 0..preds.len() {
            let outcome = report.outcome(&format!("n{i}")).unwrap();
            let expected = if i == failing {
                Outcome::Failed("injected".into())
            } else if tainted[i] {
                Outcome::Skipped {
                    because: format!("n{failing}"),
                }
            } else {
                Outcome::Succeeded
            };
            assert_eq!(outcome, expected, "seed {seed}: n{i}");
            let ran = marks[i].0.load(Ordering::SeqCst);
            assert_eq!(
                ran,
                usize::from(!tainted[i] || i == failing),
                "seed {seed}: n{i}"
            );
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Defect {
    Cycle,
    SelfLoop,
    Unknown,
    Duplicate,
}

#[test]
fn random_malformed_graphs_give_the_right_error() {
    for seed in 1..=400u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut preds: Vec<Vec<usize>> = random_dag(&mut rng);
        let n = preds.len();
        let defect = [
            Defect::Cycle,
            Defect::SelfLoop,
            Defect::Unknown,
            Defect::Duplicate,
        ][rng.usize(..4)];
        let mut names: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
        let mut unknown = None;
        match defect {
            Defect::Cycle => {
                // Append a fresh 2..5-node cycle c0 -> c1 -> ... -> c0.
                let len = 2 + rng.usize(..4);
                let base = names.len();
                for k in 0..len {
                    names.push(format!("c{k}"));
                    preds.push(vec![base + (k + len - 1) % len]);
                }
            }
            Defect::SelfLoop => {
                let i = rng.usize(..(n).max(1));
                preds[i].push(i);
            }
            Defect::Unknown => {
                let i = rng.usize(..(n).max(1));
                preds[i].push(usize::MAX);
                unknown = Some(i);
            }
            Defect::Duplicate => {
                let i = rng.usize(..(n).max(1));
                names.push(names[i].clone());
                preds.push(Vec::new());
            }
        }
        let mut b = Graph::builder();
        for (i, name) in names.iter().enumerate() {
            let deps: Vec<String> = preds[i]
                .iter()
                .map(|&p| {
                    if p == usize::MAX {
                        "ghost".to_owned()
                    } else {
                        names[p].clone()
                    }
                })
                .collect();
            b.node(name.clone(), |_| ()).after_all(deps);
        }
        let err = b
            .build()
            .expect_err(&format!("seed {seed}: {defect:?} accepted"));
        match defect {
            Defect::Cycle => {
                assert!(err.is_cycle(), "seed {seed}: {err}");
                let cycle = err.cycle().unwrap();
                assert!(
                    cycle.iter().all(|c| c.starts_with('c')),
                    "seed {seed}: {err}"
                );
                assert_eq!(cycle[0], "c0", "seed {seed}: {err}");
            }
            Defect::SelfLoop => assert!(err.is_self_dependency(), "seed {seed}: {err}"),
            Defect::Unknown => {
                assert!(err.is_unknown_dependency(), "seed {seed}: {err}");
                assert_eq!(
                    err.to_string(),
                    format!(
                        "node `n{}` depends on unknown node `ghost`",
                        unknown.unwrap()
                    )
                );
            }
            Defect::Duplicate => assert!(err.is_duplicate_name(), "seed {seed}: {err}"),
        }
    }
}

#[test]
fn random_graphs_with_hidden_cycles_name_a_real_cycle() {
    // Add one back edge to a random DAG; if it closes a cycle, the named cycle must be a real
    // cycle of the graph (each node depends on the previous one).
    for seed in 1..=300u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut preds = random_dag(&mut rng);
        let n = preds.len();
        if n < 2 {
            continue;
        }
        let (lo, hi) = (rng.usize(..(n - 1).max(1)), 0);
        let hi = hi.max(lo + 1 + rng.usize(..(n - lo - 1).max(1)));
        preds[lo].push(hi); // lo now depends on hi > lo
        let mut b = Graph::builder();
        for (i, p) in preds.iter().enumerate() {
            b.node(format!("n{i}"), |_| ())
                .after_all(p.iter().map(|q| format!("n{q}")));
        }
        match b.build() {
            Ok(graph) => assert!(graph.run(&InlineExecutor).is_success(), "seed {seed}"),
            Err(err) => {
                let cycle = err.cycle().unwrap_or_else(|| panic!("seed {seed}: {err}"));
                let idx: Vec<usize> = cycle.iter().map(|c| c[1..].parse().unwrap()).collect();
                for k in 0..idx.len() {
                    let (from, to) = (idx[k], idx[(k + 1) % idx.len()]);
                    assert!(
                        preds[to].contains(&from),
                        "seed {seed}: {err}: {to} !<- {from}"
                    );
                }
            }
        }
    }
}

/// The graph a build makes from keys (its flat path when every node's keys come in ascending
/// order; the general path when some node's do not, or repeat one) is the one it makes from
/// names: the same dependency lists, the same DOT (successors and roots included), and a run
/// in edge order.
#[test]
fn key_built_graphs_match_name_built_ones() {
    let pool = ThreadPool::new(2).unwrap();
    for seed in 1..=200u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let preds = random_dag(&mut rng);
        let n = preds.len();
        // Every fourth seed: one node lists its keys out of order, repeated (general path).
        let scrambled = (seed % 4 == 0).then(|| rng.usize(..n));
        let ran = Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
        let seq = Arc::new(AtomicUsize::new(0));
        let mut by_key = Graph::builder();
        let mut keys = Vec::new();
        for (i, list) in preds.iter().enumerate() {
            let mut deps: Vec<_> = list.iter().map(|&p| keys[p]).collect();
            if scrambled == Some(i) && !deps.is_empty() {
                deps.reverse();
                deps.push(deps[0]);
            }
            let (ran, seq) = (Arc::clone(&ran), Arc::clone(&seq));
            let node = by_key.node(format!("n{i}"), move |_| {
                ran[i].store(seq.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
            });
            keys.push(node.after_all(deps).key());
        }
        let by_key = by_key.build().expect("acyclic");
        let mut by_name = Graph::builder();
        for (i, list) in preds.iter().enumerate() {
            by_name
                .node(format!("n{i}"), |_| ())
                .after_all(list.iter().map(|p| format!("n{p}")));
        }
        let by_name = by_name.build().expect("acyclic");
        for i in 0..n {
            let name = format!("n{i}");
            assert_eq!(
                by_key.dependencies(&name),
                by_name.dependencies(&name),
                "seed {seed}: {name}"
            );
        }
        assert_eq!(by_key.to_dot(), by_name.to_dot(), "seed {seed}");
        assert_eq!(
            by_key.critical_path(),
            by_name.critical_path(),
            "seed {seed}"
        );
        assert!(by_key.run(&pool).is_success(), "seed {seed}");
        for (i, list) in preds.iter().enumerate() {
            let at = ran[i].load(Ordering::SeqCst);
            assert!(at > 0, "seed {seed}: n{i} did not run");
            for &p in list {
                assert!(
                    ran[p].load(Ordering::SeqCst) < at,
                    "seed {seed}: n{i} before n{p}"
                );
            }
        }
    }
}
