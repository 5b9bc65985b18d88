//! A validated graph as data: flat arrays indexed by `u32` (successors in CSR form, heights,
//! the critical flags) built once by `GraphInner::new` and shared by every run.

use std::collections::HashMap;

use pool_core::drop_quietly;
use pool_core::sync::Mutex;

use crate::context::NodeFn;
use crate::error::GraphBuildError;
use crate::names::{NameIndex, Names};
use crate::state::NodeState;
use crate::topology::{Topology, WIDE};

/// What a worker reads to run node `i` and release its successors: half a line of memory.
pub(crate) struct HotNode {
    pub(crate) run: NodeFn,
    /// `succs[succ_start..succ_end]`, sorted by remaining chain length, longest first, so the
    /// first successor made ready (the one run in place) is the most critical one.
    pub(crate) succ_start: u32,
    pub(crate) succ_end: u32,
    /// Number of dependencies.
    pub(crate) in_degree: u32,
    pub(crate) run_even_if_failed: bool,
    /// On a longest chain of the graph: submitted at High priority.
    pub(crate) critical: bool,
}

impl HotNode {
    /// A node as added; `GraphInner::new` fills in the rest.
    pub(crate) fn new(run: NodeFn) -> Self {
        HotNode {
            run,
            succ_start: 0,
            succ_end: 0,
            in_degree: 0,
            run_even_if_failed: false,
            critical: false,
        }
    }
}

pub(crate) struct GraphInner {
    pub(crate) hot: Vec<HotNode>,
    pub(crate) succs: Vec<u32>,
    /// Names and dependencies: what a running node may look up.
    pub(crate) topology: Topology,
    pub(crate) roots: Vec<u32>,
    /// Longest chain (in nodes) from each node to a sink, the node included.
    pub(crate) height: Vec<u32>,
    /// The per-run state array of a finished run, kept for the next run.
    pub(crate) spare: Mutex<Option<Box<[NodeState]>>>,
}

impl GraphInner {
    /// The graph of validated parts: `preds` lists each node's dependencies (sorted, distinct,
    /// none the node itself) in CSR form. `forward`: some dependency has a larger index than its
    /// node, so insertion order is not known to be a topological order (there may be a cycle).
    pub(crate) fn new(
        names: Names,
        name_index: NameIndex,
        mut hot: Vec<HotNode>,
        pred_offsets: Vec<u32>,
        preds: Vec<u32>,
        forward: bool,
        builder_id: u64,
    ) -> Result<GraphInner, GraphBuildError> {
        let n = hot.len();
        let preds_of = |v: usize| &preds[pred_offsets[v] as usize..pred_offsets[v + 1] as usize];
        // Successors (CSR): count, prefix sums (each list's end), then fill each list from its
        // end, nodes in reverse order, so each list ends sorted by index and each offset ends at
        // its list's start.
        let mut succ_offsets = vec![0u32; n + 1];
        for &p in &preds {
            succ_offsets[p as usize + 1] += 1;
        }
        for v in 0..n {
            succ_offsets[v + 1] += succ_offsets[v];
        }
        for v in 0..n {
            succ_offsets[v] = succ_offsets[v + 1];
        }
        let mut succs = vec![0u32; preds.len()];
        for v in (0..n).rev() {
            for &p in preds_of(v) {
                succ_offsets[p as usize] -= 1;
                succs[succ_offsets[p as usize] as usize] = v as u32;
            }
        }
        // A topological order: insertion order when every dependency was added before its node
        // (always, with keys); else Kahn's, which finds a cycle if there is one.
        let order = if forward {
            Some(
                topological_order(&pred_offsets, &preds, &succ_offsets, &succs).map_err(
                    |cycle| {
                        GraphBuildError::new_cycle(
                            cycle
                                .iter()
                                .map(|&i| names.get(i as usize).to_owned())
                                .collect(),
                        )
                    },
                )?,
            )
        } else {
            None
        };
        let in_order = |i: usize| order.as_ref().map_or(i, |o| o[i] as usize);
        // Remaining chain length (height) and chain length from a root (depth): a node is on a
        // longest chain when the two add up to the longest chain.
        let mut height = vec![1u32; n];
        for k in (0..n).rev() {
            let u = in_order(k);
            let mut h = 1;
            for &s in &succs[succ_offsets[u] as usize..succ_offsets[u + 1] as usize] {
                h = h.max(height[s as usize] + 1);
            }
            height[u] = h;
        }
        // On a longest chain: a root as high as the graph, or a node one below a critical
        // dependency (in topological order, so every dependency is decided first).
        let longest = height.iter().copied().max().unwrap_or(0);
        for k in 0..n {
            let u = in_order(k);
            let mine = preds_of(u);
            hot[u].critical = if mine.is_empty() {
                height[u] == longest
            } else {
                mine.iter()
                    .any(|&p| hot[p as usize].critical && height[p as usize] == height[u] + 1)
            };
        }
        drop(order);
        for v in 0..n {
            let list = &mut succs[succ_offsets[v] as usize..succ_offsets[v + 1] as usize];
            if list.len() > 1 {
                // Stable: equal heights stay in index order.
                list.sort_by_key(|&s| std::cmp::Reverse(height[s as usize]));
            }
        }
        let mut roots = Vec::new();
        let mut wide = HashMap::new();
        for (i, node) in hot.iter_mut().enumerate() {
            let mine = preds_of(i);
            if mine.is_empty() {
                roots.push(i as u32);
            } else if mine.len() > WIDE {
                wide.insert(i as u32, mine.iter().copied().collect());
            }
            node.succ_start = succ_offsets[i];
            node.succ_end = succ_offsets[i + 1];
            node.in_degree = mine.len() as u32;
        }
        drop(succ_offsets);
        // The builder's array grew by doubling; give the slack back.
        hot.shrink_to_fit();
        Ok(GraphInner {
            hot,
            succs,
            topology: Topology::new(names, name_index, pred_offsets, preds, wide, builder_id),
            roots,
            height,
            spare: Mutex::new(None),
        })
    }

    pub(crate) fn succs_of(&self, i: usize) -> &[u32] {
        let node = &self.hot[i];
        &self.succs[node.succ_start as usize..node.succ_end as usize]
    }

    pub(crate) fn preds_of(&self, i: usize) -> &[u32] {
        self.topology.preds_of(i)
    }

    pub(crate) fn len(&self) -> usize {
        self.hot.len()
    }

    pub(crate) fn name(&self, i: usize) -> &str {
        self.topology.name(i)
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.topology.names()
    }

    pub(crate) fn index_of(&self, name: &str) -> Option<u32> {
        self.topology.index_of(name)
    }

    pub(crate) fn builder_id(&self) -> u64 {
        self.topology.builder_id
    }

    /// One longest chain by node count, from a root to a sink.
    pub(crate) fn longest_chain(&self) -> Vec<u32> {
        let Some(mut u) = self
            .roots
            .iter()
            .copied()
            .max_by_key(|&r| (self.height[r as usize], std::cmp::Reverse(r)))
        else {
            return Vec::new();
        };
        let mut chain = vec![u];
        // Successors are sorted longest chain first.
        while let Some(&s) = self.succs_of(u as usize).first() {
            chain.push(s);
            u = s;
        }
        chain
    }
}

impl Drop for GraphInner {
    fn drop(&mut self) {
        // The closures are user code: a captured value's `Drop` may panic, and the last
        // reference to a graph may be a finished run's, dropped on a worker.
        for node in self.hot.drain(..) {
            drop_quietly(node.run);
        }
    }
}

/// Kahn's order of the graph given by predecessor lists, or the nodes of one cycle in order.
fn topological_order(
    pred_offsets: &[u32],
    preds: &[u32],
    succ_offsets: &[u32],
    succs: &[u32],
) -> Result<Vec<u32>, Vec<u32>> {
    let n = pred_offsets.len() - 1;
    let mut left: Vec<u32> = (0..n)
        .map(|i| pred_offsets[i + 1] - pred_offsets[i])
        .collect();
    let mut order: Vec<u32> = (0..n as u32).filter(|&i| left[i as usize] == 0).collect();
    let mut head = 0;
    while head < order.len() {
        let u = order[head] as usize;
        head += 1;
        for &s in &succs[succ_offsets[u] as usize..succ_offsets[u + 1] as usize] {
            left[s as usize] -= 1;
            if left[s as usize] == 0 {
                order.push(s);
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // Every node left over has a predecessor that is also left over, so walking predecessors
    // from any of them must revisit a node: the walk between the two visits is a cycle.
    let Some(start) = (0..n).find(|&i| left[i] > 0) else {
        return Ok(order); // unreachable: fewer ordered nodes means some are left
    };
    let mut seen_at = vec![usize::MAX; n];
    let mut walk: Vec<u32> = Vec::new();
    let mut u = start;
    while seen_at[u] == usize::MAX {
        seen_at[u] = walk.len();
        walk.push(u as u32);
        let Some(&p) = preds[pred_offsets[u] as usize..pred_offsets[u + 1] as usize]
            .iter()
            .find(|&&p| left[p as usize] > 0)
        else {
            break; // unreachable, see above
        };
        u = p as usize;
    }
    let from = if seen_at[u] == usize::MAX {
        0
    } else {
        seen_at[u]
    };
    let mut cycle = walk.split_off(from);
    // The walk went against the edges; turn it into dependency order, starting with the node
    // added first so the message does not depend on where the walk began.
    cycle.reverse();
    if let Some(min_at) = cycle
        .iter()
        .enumerate()
        .min_by_key(|(_, &v)| v)
        .map(|(i, _)| i)
    {
        cycle.rotate_left(min_at);
    }
    Err(cycle)
}
