//! What a running node may look up about the graph: node names and each node's dependencies.
//! Plain data, built once by `GraphInner::new`, but for the name index, made on the first
//! lookup by name.

use std::collections::{HashMap, HashSet};

use pool_core::sync::{ErasedArc, Mutex};

use crate::names::{NameIndex, Names};

/// Nodes with more dependencies than this get a hash set of them, so `Context::get` checks
/// "is a dependency" in constant time; below it a scan of the (sorted) list is as quick.
pub(crate) const WIDE: usize = 16;

pub(crate) struct Topology {
    names: Names,
    /// Made by the first lookup by name (reports, marks, `dependencies`), or by `build` if a
    /// dependency was given by name: a graph nobody asks a name of never sorts its names.
    /// Immutable data behind a once-taken lock, as `GraphInner::critical`.
    name_index: Mutex<Option<ErasedArc<NameIndex>>>,
    pred_offsets: Vec<u32>,
    /// Each node's dependencies, sorted by index (CSR: `pred_offsets`).
    preds: Vec<u32>,
    /// The dependencies of the nodes that have more than `WIDE`.
    wide: HashMap<u32, HashSet<u32>>,
    /// The builder the graph came from: only its keys name this graph's nodes.
    pub(crate) builder_id: u64,
}

impl Topology {
    /// `wide`: the dependency set of every node with more than [`WIDE`] (the caller finds
    /// them in a pass over the nodes it makes anyway).
    pub(crate) fn new(
        names: Names,
        name_index: Option<NameIndex>,
        pred_offsets: Vec<u32>,
        preds: Vec<u32>,
        wide: HashMap<u32, HashSet<u32>>,
        builder_id: u64,
    ) -> Topology {
        Topology {
            names,
            name_index: Mutex::new(name_index.map(ErasedArc::new)),
            pred_offsets,
            preds,
            wide,
            builder_id,
        }
    }

    /// Every node's dependency list, back to back (CSR: `pred_offsets`).
    pub(crate) fn preds(&self) -> &[u32] {
        &self.preds
    }

    pub(crate) fn pred_offsets(&self) -> &[u32] {
        &self.pred_offsets
    }

    pub(crate) fn preds_of(&self, i: usize) -> &[u32] {
        &self.preds[self.pred_offsets[i] as usize..self.pred_offsets[i + 1] as usize]
    }

    /// Whether `p` is a dependency of `i`, in constant time.
    pub(crate) fn depends_on(&self, i: usize, p: u32) -> bool {
        let preds = self.preds_of(i);
        if preds.len() > WIDE {
            self.wide
                .get(&(i as u32))
                .is_some_and(|set| set.contains(&p))
        } else {
            preds.contains(&p)
        }
    }

    pub(crate) fn name(&self, i: usize) -> &str {
        self.names.get(i)
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.names.iter()
    }

    pub(crate) fn index_of(&self, name: &str) -> Option<u32> {
        let index = {
            let mut slot = self.name_index.lock();
            ErasedArc::clone(
                slot.get_or_insert_with(|| ErasedArc::new(NameIndex::index(&self.names))),
            )
        };
        index.find(&self.names, name)
    }
}
