//! A validated graph as data: flat arrays indexed by `u32` (successors in CSR form, the
//! dependency lists in `Topology`) built once by `GraphInner::new` and shared by every run; the
//! longest chains (heights, critical flags) are worked out the first time something asks.

use std::collections::HashMap;

use pool_core::sync::{ErasedArc, Mutex};
use pool_core::QuietDrop;

use crate::context::NodeFn;
use crate::error::GraphBuildError;
use crate::names::{NameIndex, Names};
use crate::state::NodeState;
use crate::topology::{Topology, WIDE};

/// What a worker reads to run node `i` and release its successors: half a line of memory.
pub(crate) struct HotNode {
    /// User code, and so is whatever it captured: dropped quietly wherever the node goes (with
    /// a builder dropped or failed, or with the graph, whose last reference may be a finished
    /// run's, dropped on a worker), one at a time (a `Vec` meeting a second panicking `Drop`
    /// while unwinding from the first would abort).
    pub(crate) run: QuietDrop<NodeFn>,
    /// `succs[succ_start..succ_end]`, in index order.
    pub(crate) succ_start: u32,
    pub(crate) succ_end: u32,
    /// Number of dependencies.
    pub(crate) in_degree: u32,
    pub(crate) run_even_if_failed: bool,
}

impl HotNode {
    /// A node as added; `build` and `GraphInner::new` fill in the rest.
    pub(crate) fn new(run: NodeFn) -> Self {
        HotNode {
            run: QuietDrop::new(run),
            succ_start: 0,
            succ_end: 0,
            in_degree: 0,
            run_even_if_failed: false,
        }
    }
}

/// The longest chains of a graph: what critical-path priority, `critical_path()` and DOT's bold
/// nodes need, and nothing else does, so it is made on first use instead of by every build.
pub(crate) struct Critical {
    /// Longest chain (in nodes) from each node to a sink, the node included.
    height: Box<[u32]>,
    /// On a longest chain of the graph: submitted at High priority.
    on_path: Box<[bool]>,
}

impl Critical {
    /// Whether node `i` is on a longest chain (`false` for an index past the nodes: the run's
    /// launcher job).
    pub(crate) fn contains(&self, i: usize) -> bool {
        self.on_path.get(i).copied().unwrap_or(false)
    }
}

pub(crate) struct GraphInner {
    pub(crate) hot: Vec<HotNode>,
    pub(crate) succs: Vec<u32>,
    /// Names and dependencies: what a running node may look up.
    pub(crate) topology: Topology,
    pub(crate) roots: Vec<u32>,
    /// No dependency points forward: insertion order is a topological order.
    insertion_ordered: bool,
    /// Made by the first caller of [`critical`](Self::critical). Immutable data behind a
    /// once-taken lock, not protocol state: std's `Arc`.
    critical: Mutex<Option<ErasedArc<Critical>>>,
    /// The per-run state array of a finished run, kept for the next run.
    pub(crate) spare: Mutex<Option<Box<[NodeState]>>>,
}

/// A validated graph's edges, as `build` hands them over: each node's dependencies (sorted,
/// distinct, none the node itself) in CSR form, and, when the builder kept them in step (its
/// flat path), the node each entry belongs to.
pub(crate) struct Edges {
    pub(crate) preds: Vec<u32>,
    /// `preds[offsets[v]..offsets[v + 1]]` are node `v`'s dependencies.
    pub(crate) offsets: Vec<u32>,
    /// `owners[j]`: the node whose dependency `preds[j]` is (non-decreasing), if known.
    pub(crate) owners: Option<Vec<u32>>,
    /// `succ_counts[i]`: the number of lists node `i` appears in (its successors). A dense
    /// array of its own, not a field of `HotNode`: it is bumped at random on the random DAG,
    /// once per edge to count and once more to fill, and 4 bytes a node stay in cache where the
    /// 32-byte `HotNode`s of a 1M-node graph (32 MiB) do not.
    pub(crate) succ_counts: Vec<u32>,
}

impl GraphInner {
    /// The graph of validated parts. `forward`: some dependency has a larger index than its node, so
    /// insertion order is not known to be a topological order (there may be a cycle).
    pub(crate) fn new(
        names: Names,
        name_index: Option<NameIndex>,
        mut hot: Vec<HotNode>,
        edges: Edges,
        forward: bool,
        builder_id: u64,
    ) -> Result<GraphInner, GraphBuildError> {
        let Edges {
            preds,
            offsets: pred_offsets,
            owners,
            succ_counts: mut cursors,
        } = edges;
        let n = hot.len();
        let preds_of = |v: usize| &preds[pred_offsets[v] as usize..pred_offsets[v + 1] as usize];
        // Successor counts to ranges (prefix sums; each count becomes its list's fill cursor),
        // the in-degrees, and the roots and wide nodes on the way. Branch-free but for the rare wide
        // node and the regrowth: whether a node is a root is data (a quarter of the random
        // DAG's nodes, at random), and a mispredicted branch per root cost more than the store.
        let mut roots: Vec<u32> = Vec::new();
        let mut root_count = 0;
        let mut wide = HashMap::new();
        let mut sum = 0;
        for (i, node) in hot.iter_mut().enumerate() {
            let count = cursors[i];
            node.succ_start = sum;
            node.succ_end = sum + count;
            cursors[i] = sum;
            sum += count;
            let in_degree = pred_offsets[i + 1] - pred_offsets[i];
            node.in_degree = in_degree;
            if root_count == roots.len() {
                roots.resize(2 * roots.len() + 16, 0);
            }
            roots[root_count] = i as u32;
            root_count += usize::from(in_degree == 0);
            if in_degree as usize > WIDE {
                wide.insert(i as u32, preds_of(i).iter().copied().collect());
            }
        }
        roots.truncate(root_count);
        roots.shrink_to_fit();
        // Fill each list in node order: every list ends sorted by index, its cursor at its end.
        let mut succs = vec![0u32; preds.len()];
        let mut place = |p: u32, v: u32| {
            let cursor = &mut cursors[p as usize];
            succs[*cursor as usize] = v;
            *cursor += 1;
        };
        match &owners {
            // One flat pass over the edges.
            Some(owners) => {
                for (&p, &v) in preds.iter().zip(owners) {
                    place(p, v);
                }
            }
            None => {
                for v in 0..n {
                    for &p in preds_of(v) {
                        place(p, v as u32);
                    }
                }
            }
        }
        drop(owners);
        drop(cursors);
        // Only a dependency that points forward can close a cycle: only then does Kahn's
        // algorithm run, naming the cycle if it finds one.
        if forward {
            topological_order(&hot, &succs, &pred_offsets, &preds).map_err(|cycle| {
                GraphBuildError::new_cycle(
                    cycle
                        .iter()
                        .map(|&i| names.get(i as usize).to_owned())
                        .collect(),
                )
            })?;
        }
        // The builder's array grew by doubling; give the slack back.
        hot.shrink_to_fit();
        Ok(GraphInner {
            hot,
            succs,
            topology: Topology::new(names, name_index, pred_offsets, preds, wide, builder_id),
            roots,
            insertion_ordered: !forward,
            critical: Mutex::new(None),
            spare: Mutex::new(None),
        })
    }

    /// The graph's longest chains, made on the first call.
    pub(crate) fn critical(&self) -> ErasedArc<Critical> {
        let mut slot = self.critical.lock();
        ErasedArc::clone(slot.get_or_insert_with(|| ErasedArc::new(self.find_critical())))
    }

    fn find_critical(&self) -> Critical {
        let n = self.len();
        let topology = &self.topology;
        // A topological order: insertion order when every dependency was added before its node
        // (always, with keys); else Kahn's (the graph was validated: it has no cycle).
        let order = if self.insertion_ordered {
            None
        } else {
            topological_order(
                &self.hot,
                &self.succs,
                topology.pred_offsets(),
                topology.preds(),
            )
            .ok()
        };
        let in_order = |i: usize| order.as_ref().map_or(i, |o| o[i] as usize);
        // Remaining chain length (height): a node is on a longest chain when it is a root as
        // high as the graph, or one below a node on a longest chain.
        let mut height = vec![1u32; n];
        for k in (0..n).rev() {
            let u = in_order(k);
            let mut h = 1;
            for &s in self.succs_of(u) {
                h = h.max(height[s as usize] + 1);
            }
            height[u] = h;
        }
        let longest = height.iter().copied().max().unwrap_or(0);
        let mut on_path = vec![false; n];
        for k in 0..n {
            let u = in_order(k);
            let mine = topology.preds_of(u);
            on_path[u] = if mine.is_empty() {
                height[u] == longest
            } else {
                mine.iter()
                    .any(|&p| on_path[p as usize] && height[p as usize] == height[u] + 1)
            };
        }
        Critical {
            height: height.into_boxed_slice(),
            on_path: on_path.into_boxed_slice(),
        }
    }

    /// Node `index`'s successors, for the run's hot loop: no bounds checks (with the other
    /// unchecked reads of that loop, about 10 instructions per node of a tree's run).
    ///
    /// Invariant (made by [`new`](Self::new), whose fill checks every index): each node's
    /// range lies within `succs`, and every entry of `succs` is a node (below `hot.len()`).
    ///
    /// # Safety
    ///
    /// `index` is a node of this graph (below `hot.len()`).
    #[inline(always)]
    pub(crate) unsafe fn successors(&self, index: u32) -> &[u32] {
        // SAFETY: the caller's contract.
        let node = unsafe { self.hot_node(index) };
        let (start, end) = (node.succ_start as usize, node.succ_end as usize);
        debug_assert!(start <= end && end <= self.succs.len());
        // SAFETY: the invariant above: `start..end` lies within `succs`.
        unsafe { self.succs.get_unchecked(start..end) }
    }

    /// Node `index`'s number of dependencies, unchecked (the run's hot loop).
    ///
    /// # Safety
    ///
    /// `index` is a node of this graph (below `hot.len()`).
    #[inline(always)]
    pub(crate) unsafe fn in_degree(&self, index: u32) -> u32 {
        // SAFETY: the caller's contract.
        unsafe { self.hot_node(index) }.in_degree
    }

    /// Node `index`'s record, unchecked.
    ///
    /// # Safety
    ///
    /// `index` is a node of this graph (below `hot.len()`).
    #[inline(always)]
    unsafe fn hot_node(&self, index: u32) -> &HotNode {
        debug_assert!((index as usize) < self.hot.len());
        // SAFETY: the caller's contract.
        unsafe { self.hot.get_unchecked(index as usize) }
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

    /// One longest chain by node count, from a root to a sink (the earliest added where
    /// chains tie).
    pub(crate) fn longest_chain(&self) -> Vec<u32> {
        let critical = self.critical();
        let height = |i: u32| critical.height[i as usize];
        let highest = |nodes: &[u32]| {
            nodes
                .iter()
                .copied()
                .max_by_key(|&i| (height(i), std::cmp::Reverse(i)))
        };
        let Some(mut u) = highest(&self.roots) else {
            return Vec::new();
        };
        let mut chain = vec![u];
        while let Some(s) = highest(self.succs_of(u as usize)) {
            chain.push(s);
            u = s;
        }
        chain
    }
}

impl Drop for GraphInner {
    fn drop(&mut self) {
        // The closures in `hot` drop quietly on their own (`HotNode::run`).
        if let Some(spare) = self.spare.lock().take() {
            free_emptied(spare);
        }
    }
}

/// Frees the spare state array of a dropped graph without visiting its states: a finished run
/// emptied every slot before giving the array back (`Run::drop`), so there is nothing in them
/// to drop, and the visit cost every run of a graph built for one run 6 instructions per node.
fn free_emptied(states: Box<[NodeState]>) {
    // loom tracks its atomics and cells: there, drop them as usual.
    #[cfg(loom)]
    drop(states);
    #[cfg(not(loom))]
    {
        let raw = Box::into_raw(states) as *mut [std::mem::ManuallyDrop<NodeState>];
        // SAFETY: `ManuallyDrop<T>` is `repr(transparent)` over `T`, so this is the same
        // allocation with the same layout, freed as it was made; skipping each state's drop
        // leaks nothing (every slot is empty, and the rest is plain atomics).
        drop(unsafe { Box::from_raw(raw) });
    }
}

/// Kahn's order of the graph, or the nodes of one cycle in order.
fn topological_order(
    hot: &[HotNode],
    succs: &[u32],
    pred_offsets: &[u32],
    preds: &[u32],
) -> Result<Vec<u32>, Vec<u32>> {
    let n = hot.len();
    let mut left: Vec<u32> = hot.iter().map(|node| node.in_degree).collect();
    let mut order: Vec<u32> = (0..n as u32).filter(|&i| left[i as usize] == 0).collect();
    let mut head = 0;
    while head < order.len() {
        let node = &hot[order[head] as usize];
        head += 1;
        for &s in &succs[node.succ_start as usize..node.succ_end as usize] {
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
