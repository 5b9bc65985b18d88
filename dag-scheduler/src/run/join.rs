//! A driver's loop over a node and what it makes ready (src/README.md, "Join counters and the
//! in-place successor", "Failure, opt-out, marks"): the node's outcome decided and its closure
//! run, then its successors' join counters released, the first ready one run in place.

use pool_core::catch_panic;
use pool_core::sync::Ordering;

use super::{Batch, Kind, Run, THREAD_ID};
use crate::context::Context;
use crate::inner::GraphInner;
use crate::state::{Decision, NodeState, Output, PackedTiming, NONE};

impl Run {
    /// Processes node `index` and every node it makes ready first, in place; hands the others
    /// over. The caller holds a token and is this run's driver on this thread.
    ///
    /// # Safety
    ///
    /// `index` is a node of the run's graph (a root, or the node of a job, which `submit`
    /// made for a root or a successor).
    #[inline]
    pub(super) unsafe fn drive_from(
        &self,
        mut index: u32,
        mut kind: Kind,
        last_end: &mut Option<u64>,
        batch: &mut Batch,
    ) {
        let run = self;
        let graph: &GraphInner = &run.graph;
        loop {
            // SAFETY: `index` is a node: the caller's contract on the first pass, an entry of
            // `succs` on the next ones (every one is a node: `GraphInner::successors`).
            let poison = unsafe { run.process(index, kind, last_end) };
            kind = Kind::Run;
            let mut next = None;
            // SAFETY: as above.
            for &s in unsafe { graph.successors(index) } {
                // SAFETY: `s` is an entry of `succs`, so a node.
                let (state, in_degree) = unsafe { (run.state(s), graph.in_degree(s)) };
                #[cfg(loom_broken_dag_poison)] // planted bug (loom-tests, `.ci/loom-planted`)
                let ready = in_degree == 1 || state.release();
                if let Some(cause) = poison {
                    // First failure wins; published by the release below (or the submission).
                    state.poison(cause);
                }
                // A node with one dependency is released by that dependency alone: no
                // read-modify-write needed. Otherwise exactly one decrement sees 1 -> 0, and
                // AcqRel makes every dependency's slot visible to the thread that sees it.
                #[cfg(not(loom_broken_dag_poison))]
                let ready = in_degree == 1 || state.release();
                if ready {
                    match next {
                        None => next = Some(s),
                        // The most urgent ready node runs in place: a critical one, if any.
                        Some(n) if !run.is_critical(n) && run.is_critical(s) => {
                            batch.add(run, n);
                            next = Some(s);
                        }
                        Some(_) => batch.add(run, s),
                    }
                }
            }
            batch.flush(run);
            match next {
                Some(s) => {
                    // The last end is this node's start only if its one input is the node this
                    // thread just ran. With more inputs, another may have read its end after
                    // ours and released its count before us: read the start after the release
                    // (which saw theirs), or the report shows a node starting before an input
                    // ended (pool-remote's diamond of remote nodes did, in CI).
                    // SAFETY: `s` is an entry of `succs`, so a node.
                    if last_end.is_some() && unsafe { graph.in_degree(s) } > 1 {
                        *last_end = None;
                    }
                    index = s;
                }
                None => break,
            }
        }
    }

    /// Decides and records node `index`'s outcome, running it if it should run. Returns the
    /// failed node that poisons its dependents, if any.
    ///
    /// # Safety
    ///
    /// `index` is a node of the run's graph.
    #[inline(always)]
    unsafe fn process(&self, index: u32, kind: Kind, last_end: &mut Option<u64>) -> Option<u32> {
        // SAFETY: the caller's contract.
        let state = unsafe { self.state(index) };
        let cause = state.blocked_by();
        // The common case first, in one test: a job the executor started (or a node run in
        // place), no poison, no cancel. It runs, and its output goes straight to the slot.
        if kind == Kind::Run && cause == NONE && !self.cancelled.load(Ordering::Relaxed) {
            match self.execute(index, last_end) {
                // SAFETY: only this thread writes this slot, once (it took the counter to
                // zero, or the node is a root it was handed), and nobody reads it before the
                // releases that follow.
                Ok(output) => unsafe { state.put_output(output) },
                Err(message) => return self.settle(index, Decision::Failed(message)),
            }
            return None;
        }
        self.process_unusual(index, kind, cause, last_end)
    }

    /// [`process`](Self::process) for a dropped job, a cancelled run, a poisoned or
    /// premarked node: out of line, so the common path stays short.
    #[inline(never)]
    fn process_unusual(
        &self,
        index: u32,
        kind: Kind,
        cause: u32,
        last_end: &mut Option<u64>,
    ) -> Option<u32> {
        let hot = &self.graph.hot[index as usize];
        let decision = if kind == Kind::Dropped {
            // The executor will not run our jobs: cancel the rest of the run.
            self.refused.store(true, Ordering::Relaxed);
            self.cancelled.store(true, Ordering::Relaxed);
            Decision::Cancelled
        } else if self.cancelled.load(Ordering::Relaxed) {
            Decision::Cancelled
        } else if cause == index {
            Decision::Failed(self.premark_message(index))
        } else if cause != NONE && !hot.run_even_if_failed {
            Decision::Skipped
        } else {
            match self.execute(index, last_end) {
                Ok(output) => Decision::Output(output),
                Err(message) => Decision::Failed(message),
            }
        };
        let poison = match &decision {
            Decision::Output(_) => None,
            Decision::Failed(_) => Some(index),
            Decision::Skipped => Some(cause),
            Decision::Cancelled => None,
        };
        if matches!(decision, Decision::Output(_)) {
            // SAFETY: as in `process`: this thread alone writes this slot, once, before its
            // releases.
            unsafe { self.nodes[index as usize].decide(decision) };
            return poison;
        }
        self.settle(index, decision);
        poison
    }

    /// Records an outcome that is not an output (failed, skipped, cancelled); returns the
    /// poison of a failure (the node itself).
    #[cold]
    fn settle(&self, index: u32, decision: Decision) -> Option<u32> {
        let poison = matches!(decision, Decision::Failed(_)).then_some(index);
        // Relaxed: read only by a report, after the completion (the tokens' `AcqRel` and the
        // `done` lock order this before it).
        self.unsuccessful.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as in `process`: this thread alone writes this slot, once, before its
        // releases.
        unsafe { self.nodes[index as usize].decide(decision) };
        poison
    }

    /// Node `index`'s state in this run, unchecked (the hot loop).
    ///
    /// # Safety
    ///
    /// `index` is a node of the run's graph (`nodes` has one state per node: `Run::new`).
    #[inline(always)]
    unsafe fn state(&self, index: u32) -> &NodeState {
        debug_assert!((index as usize) < self.nodes.len());
        // SAFETY: the caller's contract.
        unsafe { self.nodes.get_unchecked(index as usize) }
    }

    /// Runs node `index`'s closure (timed if the run is): its output, or the failure message.
    #[inline(always)]
    fn execute(&self, index: u32, last_end: &mut Option<u64>) -> Result<Output, Box<str>> {
        let graph: &GraphInner = &self.graph;
        let hot = &graph.hot[index as usize];
        let cx = Context::new(&graph.topology, &self.nodes, &self.cancelled, index);
        #[cfg(feature = "tracing")]
        let _node =
            tracing::info_span!(parent: &self.span, "dag.node", node = %graph.name(index as usize))
                .entered();
        let start = last_end.take().or_else(|| self.now());
        // The payload of a panic is dropped quietly: its own `Drop` may panic too.
        let result = catch_panic(|| (hot.run)(&cx));
        if let Some(start) = start {
            self.record_time(index, start, last_end);
        }
        match result {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(message)) => Err(message.into()),
            Err(message) => Err(format!("panicked: {message}").into()),
        }
    }

    /// Notes node `index`'s start and end (now) on this thread; the end is the next in-place
    /// node's start.
    #[inline(never)]
    fn record_time(&self, index: u32, start: u64, last_end: &mut Option<u64>) {
        let end = self.now().unwrap_or(start);
        *last_end = Some(end);
        let thread = THREAD_ID.try_with(|id| *id).unwrap_or(0);
        // SAFETY: as for the slot: this thread alone writes this node's timing, once.
        self.times[index as usize].with_mut(|p| unsafe {
            *p = PackedTiming::new(start, end, thread);
        });
    }

    fn premark_message(&self, index: u32) -> Box<str> {
        self.premarked
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}
