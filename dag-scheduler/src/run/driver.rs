//! The thread-local driver stack (src/README.md, "Inline executors: the driver stack"): which run
//! this thread drives, the jobs deferred to it, and `drive`, what a job's driver does with its
//! work and its token.

use std::mem::ManuallyDrop;

use pool_core::sync::Share;
use pool_core::OnExit;

use super::batch::LAUNCH;
use super::tokens::release_token;
use super::{Batch, Driver, Kind, Run, Work, DRIVER};

pub(super) struct Deferred {
    run: *const Run,
    work: Work,
    kind: Kind,
    share: Share,
}

/// A driver level: the run this thread drove before, and the deferred jobs that are not ours.
#[derive(Clone, Copy)]
struct Level {
    previous: *const Run,
    base: usize,
}

impl Drop for Driver {
    /// The thread is tearing down its thread-locals while jobs are still deferred here: a driver
    /// level is still on the stack and will find this state gone when it exits (its drain loop
    /// gets an access error), so nobody else would ever drive them. Std runs thread-local
    /// destructors one after another, so a level entered in one of them has exited before this
    /// one runs; what leaves a level on the stack is a thread that never returns to it:
    /// `std::process::exit` called from a node runs this thread's destructors from inside the
    /// node's closure. The jobs hold tokens (a run waited for elsewhere, or from another
    /// thread-local's destructor, would hang), so they are driven here, at once. No access to
    /// `DRIVER` succeeds any more (std marks it destroyed before dropping it, loom takes it out
    /// first), so what they hand over is driven in place (`dispatch`'s recursion), never
    /// deferred to this dead state.
    fn drop(&mut self) {
        let deferred = std::mem::take(self.deferred.get_mut());
        // Last deferred first, as the level's own drain does.
        for job in deferred.into_iter().rev() {
            // SAFETY: a deferred job holds its token.
            unsafe { Driver::drive(job.run, job.work, job.kind, job.share) };
        }
    }
}

/// Runs a job of `run` that holds a token (`share`), unless this thread is already driving `run` (an
/// executor that runs jobs inline), in which case the driver picks it up after its node.
// Inlined into `NodeJob::start`: out of line (as the compiler chose once `Work` was added) it
// cost 14 instructions per job.
#[inline(always)]
pub(super) fn dispatch(run: *const Run, work: Work, kind: Kind, share: Share) {
    // One thread-local access per job decides both: defer it, or make this thread its driver.
    // The share is not moved into the access: if the thread-locals are gone, the closure is
    // dropped uncalled, and a share inside it would be lost (the run would never end). The
    // closure moves it out only when it defers the job, and says so by returning `None`.
    // (An `Option<Share>` taken in the closure did the same, but cost the access its inlining:
    // 36 more instructions per job.)
    let share = ManuallyDrop::new(share);
    let level = DRIVER.try_with(|d| {
        if d.current.get() == run {
            // SAFETY: moved out once: the closure runs at most once, and after it returns
            // `None` nothing reads `share` again.
            let share = unsafe { std::ptr::read(&*share) };
            d.deferred.borrow_mut().push(Deferred {
                run,
                work,
                kind,
                share,
            });
            None
        } else {
            Some(d.enter(run))
        }
    });
    match level {
        // Deferred: the share went with the job.
        Ok(None) => {}
        // SAFETY: the job's token is handed to `drive` (the closure did not move it out).
        Ok(Some(level)) => Driver::led(level, || unsafe {
            Driver::drive(run, work, kind, ManuallyDrop::into_inner(share))
        }),
        // The thread is shutting down its thread-locals: no deferral, `drive` recurses.
        // SAFETY: as above (the closure never ran).
        Err(_) => unsafe { Driver::drive(run, work, kind, ManuallyDrop::into_inner(share)) },
    }
}

impl Driver {
    /// Makes this thread the driver of `run`: the level to go back to afterwards.
    fn enter(&self, run: *const Run) -> Level {
        Level {
            previous: self.current.replace(run),
            base: self.deferred.borrow().len(),
        }
    }

    /// Makes this thread the driver of `run` for `body`, then runs what was deferred meanwhile.
    pub(super) fn lead(run: *const Run, body: impl FnOnce()) {
        match DRIVER.try_with(|d| d.enter(run)) {
            Ok(level) => Self::led(level, body),
            // The thread is shutting down its thread-locals: no deferral, `drive` recurses.
            Err(_) => body(),
        }
    }

    /// Runs `body` as the driver of the level this thread has just entered, then drives what was
    /// deferred to the level and leaves it.
    fn led(level: Level, body: impl FnOnce()) {
        let Level { previous, base } = level;
        // On every exit, unwinding included: the jobs deferred to this level hold tokens (dropping
        // them would hang the run), so they are driven; then the thread goes back to the previous
        // driver, so `current` never names a run this thread no longer drives (a freed run's
        // address is reused by the next run, whose jobs would then be deferred and never driven).
        let _restore = OnExit::new(move || {
            // One thread-local access per deferred job, and one to leave: the last look finds
            // nothing left and restores `current` in the same access. An access error ends the
            // loop: the state was destroyed under this level, and its destructor drove what was
            // deferred here (`Driver`'s `Drop`).
            while let Ok(Some(job)) = DRIVER.try_with(|d| {
                let mut deferred = d.deferred.borrow_mut();
                if deferred.len() > base {
                    deferred.pop()
                } else {
                    d.current.set(previous);
                    None
                }
            }) {
                // SAFETY: a deferred job holds its token.
                unsafe { Self::drive(job.run, job.work, job.kind, job.share) };
            }
        });
        body();
    }

    /// Runs `f` with this thread driving no run: a thread that waits for a run (helping its pool
    /// meanwhile) must not defer a job it helps with to a driver level that is blocked in the wait.
    pub(super) fn not_driving<R>(f: impl FnOnce() -> R) -> R {
        let Ok(previous) = DRIVER.try_with(|d| d.current.replace(std::ptr::null())) else {
            return f();
        };
        let _restore = OnExit::new(move || {
            let _ = DRIVER.try_with(|d| d.current.set(previous));
        });
        f()
    }

    /// Stops the process: the run's own bookkeeping unwound, which no user code can cause (every
    /// call into user code is caught), so an invariant is broken. Unwinding on would strand the
    /// run's tokens, and with them a caller waiting to release a borrowed executor.
    fn abort_broken_run() {
        eprintln!("dag-scheduler: a run's bookkeeping unwound (a bug); aborting");
        std::process::abort();
    }

    /// Processes the job's work (a node, a chunk of roots, or the launcher's hand-over) and every
    /// node it makes ready first, in place; submits the others; then releases the token it was
    /// given (`share`).
    ///
    /// # Safety
    ///
    /// `share` is a token of `run` (which keeps `run` alive), handed over by the caller.
    unsafe fn drive(run_ptr: *const Run, work: Work, kind: Kind, share: Share) {
        let bookkeeping = OnExit::new(Self::abort_broken_run);
        {
            // SAFETY: we hold a token, so the run side's reference is alive.
            let run = unsafe { &*run_ptr };
            // The end time of the node this thread just ran: the start of the next one run in
            // place (only our bookkeeping lies between), which saves one clock read per node; not
            // for a node with more than one input (`drive_from`).
            let mut last_end = None;
            // The other ready successors of a node, handed to the executor together after its walk
            // (made once per job: `flush` empties it).
            let mut batch = Batch::default();
            if work.index == LAUNCH {
                run.submit_roots(kind);
            } else {
                // Planted bug (loom-tests, `.ci/loom-planted`): a dropped job releases its token
                // before its node is decided.
                #[cfg(loom_broken_dag_drop_release)]
                if matches!(kind, Kind::Dropped) && work.roots == 0 {
                    // SAFETY: none: the bug planted.
                    unsafe { release_token(run_ptr, share) };
                    // SAFETY: none: the bug planted (the run may be gone).
                    unsafe { run.drive_from(work.index, kind, &mut last_end, &mut batch) };
                    bookkeeping.defuse();
                    return;
                }
                // A node, or a chunk's roots one after another, each with what it makes ready in
                // place (a dropped chunk cancels every one of them: the first sets `cancelled`).
                // One call site, and no slice made for a single node: with two call sites (a node,
                // a chunk) the compiler kept `drive_from` out of line, which cost a tree's run 33
                // instructions per node; a one-element slice for a node still cost it 11.
                let first = if work.roots == 0 {
                    Some((work.index, &[][..]))
                } else {
                    let at = work.index as usize;
                    let chunk = run.graph.roots.get(at..at + usize::from(work.roots));
                    debug_assert!(chunk.is_some(), "a chunk within the roots");
                    chunk
                        .and_then(<[u32]>::split_first)
                        .map(|(&root, rest)| (root, rest))
                };
                if let Some((mut start, mut rest)) = first {
                    loop {
                        // Planted bug (loom-tests, `.ci/loom-planted`): a chunk releases its token
                        // before its last root.
                        #[cfg(loom_broken_dag_chunk_release)]
                        if rest.is_empty() && work.roots > 1 {
                            // SAFETY: none: the bug planted.
                            unsafe { release_token(run_ptr, share) };
                            // SAFETY: none: the bug planted (the run may be gone).
                            unsafe { run.drive_from(start, kind, &mut last_end, &mut batch) };
                            bookkeeping.defuse();
                            return;
                        }
                        // SAFETY: `start` is a root, or the node of this job (not the launcher,
                        // handled above: `Work::node` is otherwise made for a root or a successor).
                        unsafe { run.drive_from(start, kind, &mut last_end, &mut batch) };
                        match rest.split_first() {
                            Some((&root, tail)) => (start, rest) = (root, tail),
                            None => break,
                        }
                    }
                }
            }
        }
        // SAFETY: we hold the token we release, and touch the run no more.
        unsafe { release_token(run_ptr, share) };
        bookkeeping.defuse();
    }
}
