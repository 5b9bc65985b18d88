//! Ready nodes a driver hands over together (`Batch`), and the roots: the launcher job that
//! hands them over from a thread of the executor, in chunks when there are thousands
//! (src/README.md, "Completion once: tokens", "Roots").

use std::mem::MaybeUninit;

use pool_core::sync::Ordering;

use super::{Batch, Kind, Run, Work, BATCH};

/// The index of the launcher job: hands the roots of a run with more than one over from a
/// thread of the executor (`Run::submit_roots`). Never a node's index: a graph has at most
/// `u32::MAX - 1` nodes (indices below `u32::MAX - 1`).
pub(super) const LAUNCH: u32 = u32::MAX;

impl Default for Batch {
    fn default() -> Self {
        Batch {
            // SAFETY: an array of `MaybeUninit` needs no initialisation. (The repeat expression
            // `[MaybeUninit::uninit(); BATCH]` compiled to zeroing stores.)
            nodes: unsafe { MaybeUninit::<[MaybeUninit<u32>; BATCH]>::uninit().assume_init() },
            len: 0,
        }
    }
}

impl Batch {
    /// Queues node `s` (ready, not yet submitted); critical nodes go at once, at High priority.
    /// The caller holds a token and is this run's driver on this thread.
    pub(super) fn add(&mut self, run: &Run, s: u32) {
        if run.is_critical(s) {
            run.submit(s);
            return;
        }
        if self.len == BATCH {
            self.flush(run);
        }
        self.nodes[self.len] = MaybeUninit::new(s);
        self.len += 1;
    }

    pub(super) fn flush(&mut self, run: &Run) {
        let added = &self.nodes[..self.len];
        // SAFETY: the first `len` entries were written by `add` (`MaybeUninit<u32>` and `u32`
        // have one layout).
        let added = unsafe { &*(added as *const [MaybeUninit<u32>] as *const [u32]) };
        match added {
            [] => {}
            &[s] => run.submit(s),
            nodes => run.submit_batch(nodes),
        }
        self.len = 0;
    }
}

/// See [`Run::root_grain`]. Under loom, 2: a model with four roots runs them as two chunks.
const ROOT_JOBS: usize = if cfg!(loom) { 2 } else { 1024 };
const MAX_ROOT_GRAIN: usize = 16;

impl Run {
    /// Roots per job: one each unless a run starts with so many roots that chunks of them still
    /// make at least `ROOT_JOBS` jobs; then up to `MAX_ROOT_GRAIN` per job (a quarter of the random
    /// DAG's million nodes are roots: a job each cost a box, a hand-over, a steal or pop and a
    /// driver's set-up per root, about a third of that shape's run). A chunk runs its roots one
    /// after another on one thread, so it is made only where the jobs left outnumber any pool's
    /// threads many times over.
    fn root_grain(roots: usize) -> usize {
        (roots / ROOT_JOBS).clamp(1, MAX_ROOT_GRAIN)
    }

    /// The launcher's job (`LAUNCH`): hands every root over, in batches. If the executor
    /// dropped the launcher unrun (`Kind::Dropped`), the run is cancelled, and `submit` decides
    /// the roots on this thread instead (each `Cancelled`, and their dependents with them).
    /// The caller holds a token and is this run's driver on this thread.
    pub(super) fn submit_roots(&self, kind: Kind) {
        if kind == Kind::Dropped {
            self.refused.store(true, Ordering::Relaxed);
            self.cancelled.store(true, Ordering::Relaxed);
        }
        let roots = &self.graph.roots;
        let grain = Self::root_grain(roots.len());
        if grain == 1 {
            let mut batch = Batch::default();
            for &root in roots {
                batch.add(self, root);
            }
            batch.flush(self);
            return;
        }
        // Chunks of `grain` roots, `BATCH` chunks per hand-over: the same number of hand-overs
        // (and wake-up checks) per job as single roots, `grain` times fewer jobs.
        let per_batch = BATCH * grain;
        for start in (0..roots.len()).step_by(per_batch) {
            let end = (start + per_batch).min(roots.len());
            let chunks = (start..end).step_by(grain).map(|first| Work {
                // Fit: `first < roots.len() < u32::MAX`, and `grain <= MAX_ROOT_GRAIN`.
                index: first as u32,
                roots: (end - first).min(grain) as u8,
            });
            self.submit_works(chunks);
        }
    }
}
