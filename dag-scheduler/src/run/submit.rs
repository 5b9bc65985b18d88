//! Handing work to the executor (src/README.md, "Refused and dropped jobs"): the job, which
//! holds one token; `submit` one by one (critical nodes at High priority) or in a batch; and
//! what a refusal, a dropped job or a panicking executor leaves the run to do.

use std::mem::ManuallyDrop;

use pool_core::sync::Ordering;
use pool_core::{drop_quietly, Job, Priority, Rejected};

use super::driver::dispatch;
use super::{Kind, NodeJob, Run, Work};

impl NodeJob {
    fn start(self) {
        // Started: its `Drop` (which cancels an unrun job) must not run. `ManuallyDrop` skips
        // it outright (the fields are plain data), where clearing `armed` left a call to it.
        let mut job = ManuallyDrop::new(self);
        // SAFETY: `job` is never dropped nor used again, so its share is moved out once.
        let share = unsafe { ManuallyDrop::take(&mut job.share) };
        dispatch(job.run, job.work, Kind::Run, share);
    }
}

impl Drop for NodeJob {
    fn drop(&mut self) {
        // The executor dropped the job without running it (refused, or discarded its queue):
        // the node is cancelled and the token still released, so the run cannot hang.
        if self.armed {
            self.armed = false;
            // SAFETY: `armed` was set, so the share is still here; clearing it first makes
            // this the only move out.
            let share = unsafe { ManuallyDrop::take(&mut self.share) };
            dispatch(self.run, self.work, Kind::Dropped, share);
        }
    }
}

impl Run {
    /// Whether node `index` is submitted at High priority.
    pub(super) fn is_critical(&self, index: u32) -> bool {
        self.critical
            .as_ref()
            .is_some_and(|critical| critical.contains(index as usize))
    }

    /// Hands `job` to the executor. The caller holds a token of this run.
    fn hand_over(&self, job: Job, priority: Priority) -> Option<Result<(), Rejected<Job>>> {
        // SAFETY: the caller holds a token.
        unsafe {
            self.exec
                .call(|exec| exec.execute_with_priority(job, priority))
        }
    }

    /// Hands node `index` to the executor with a new token. The caller holds a token and is
    /// this run's driver on this thread.
    pub(super) fn submit(&self, index: u32) {
        let job = self.job(Work::node(index));
        if self.cancelled.load(Ordering::Relaxed) {
            // Nothing is left to run: the node is decided on this thread (deferred to our driver
            // loop) without a round trip through an executor that may be why the run stopped.
            job.start();
            return;
        }
        let priority = if self.is_critical(index) {
            Priority::High
        } else {
            Priority::Normal
        };
        let job: Job = Box::new(move || job.start());
        self.settle_hand_over(self.hand_over(job, priority));
    }

    /// What a hand-over to the executor (`None`: it panicked) leaves this run to do.
    #[inline(always)]
    fn settle_hand_over(&self, handed: Option<Result<(), Rejected<Job>>>) {
        match handed {
            Some(Ok(())) => {}
            Some(Err(Rejected(refused))) => {
                self.refused.store(true, Ordering::Relaxed);
                // Ours, it cancels the node when dropped (NodeJob's Drop, deferred to our driver
                // loop). A hostile executor may hand back another job: dropped quietly too.
                drop_quietly(refused);
            }
            None => {
                // The executor panicked. It dropped the job (its Drop cancelled the node), kept
                // it (it runs or is dropped later, and releases its token then) or ran it: in
                // every case the job's token is accounted for. Trust it with nothing more.
                self.refused.store(true, Ordering::Relaxed);
                self.cancelled.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Hands nodes `indices` (none critical) to the executor together, each with a new token.
    /// The caller holds a token and is this run's driver on this thread.
    pub(super) fn submit_batch(&self, indices: &[u32]) {
        self.submit_works(indices.iter().map(|&index| Work::node(index)));
    }

    /// A job for `work`, holding a new token. The caller holds a token.
    #[inline(always)]
    fn job(&self, work: Work) -> NodeJob {
        NodeJob {
            run: self as *const Run,
            work,
            armed: true,
            // The caller's token keeps the count above zero. The share is in this thread's
            // slot: a job this thread runs itself releases it on this thread's line. The job
            // that releases it starts after this point, through the executor's own
            // synchronisation (or on this thread).
            share: ManuallyDrop::new(self.tokens.add()),
        }
    }

    /// Hands jobs for `works` (none critical) to the executor together, each with a new token.
    /// The caller holds a token and is this run's driver on this thread.
    pub(super) fn submit_works(&self, works: impl Iterator<Item = Work>) {
        if self.cancelled.load(Ordering::Relaxed) {
            // As in `submit`: decided here, deferred to our driver loop.
            works.for_each(|work| self.job(work).start());
            return;
        }
        // Each job takes its token as the executor pulls it from the iterator: one add in this
        // thread's slot (an uncontended read-modify-write on its own line) per job, where one
        // `fetch_add(count)` on the shared line did for the whole batch.
        let mut jobs = works.map(|work| {
            let job = self.job(work);
            Box::new(move || job.start()) as Job
        });
        // SAFETY: the caller holds a token.
        let handed = unsafe {
            self.exec
                .call(|exec| exec.execute_batch(&mut jobs, Priority::Normal))
        };
        // Panicked (`None`): the jobs it took are handed out, kept or dropped, as in `submit`.
        self.settle_hand_over(handed);
        // Every job not taken (after a refusal or a panic, or left by an executor that stopped
        // early) holds a token too: dropped, it cancels its node, and the run with it.
        jobs.for_each(drop_quietly);
    }
}
