//! The pool's worker threads: starting them (`start_worker`, `replace_lost_worker`), and the
//! hand-off by which each worker that leaves joins the ones that left before it and have
//! finished (`leave`), so that no caller of `set_threads` ever waits for a thread to exit and
//! `shutdown` still joins every one. Each worker holds a share of the process's thread budget
//! (`budget`) from before its thread starts until its handle is joined or dropped.

use super::budget::{CountedThread, ProcessThreadShare};
use super::shared::Shared;
use super::stats::Counters;
use super::worker;
use crate::sync::{thread, Arc, CachePadded, Ordering};

/// The handles of the pool's threads, under `Shared::threads`.
pub(crate) struct Threads {
    /// Workers that have not left yet (each takes its own handle out as it leaves).
    pub(crate) handles: Vec<(usize, CountedThread<()>)>,
    /// Workers that have left and are not joined yet: joined by a later one to leave once
    /// finished, or by `shutdown` (`leave`).
    pub(crate) left: Vec<CountedThread<()>>,
    pub(crate) next_index: usize,
}

impl Threads {
    pub(crate) fn new() -> Self {
        Threads {
            handles: Vec::new(),
            left: Vec::new(),
            next_index: 0,
        }
    }

    /// Every handle still held, for `shutdown` to join: the workers that have not left and
    /// those that left and are not joined yet (each of which joins what it took before it
    /// exits).
    pub(crate) fn take_all(&mut self) -> Vec<CountedThread<()>> {
        let mut all: Vec<_> = self.handles.drain(..).map(|(_, handle)| handle).collect();
        all.append(&mut self.left);
        all
    }
}

/// Why a worker did not start.
#[derive(Debug)]
pub(crate) enum StartRefused {
    /// The process's pools already hold as many workers as they may together (the limit).
    ProcessLimit(usize),
    /// The operating system refused the thread.
    Os(std::io::Error),
}

/// Starts one worker thread, counted live before it starts; the caller holds the `threads` lock.
pub(crate) fn start_worker(
    shared: &Arc<Shared>,
    threads: &mut Threads,
) -> Result<(), (usize, StartRefused)> {
    let index = threads.next_index;
    // From here the share is given back on every path: with the handle, or dropped on a refusal.
    let share = ProcessThreadShare::reserve()
        .map_err(|refused| (index, StartRefused::ProcessLimit(refused.limit())))?;
    threads.next_index += 1;
    shared.size.add_live();
    let for_worker = Arc::clone(shared);
    // The worker's counter block is allocated here, on the thread that starts workers, not by
    // the worker itself: the blocks then come from one allocator arena, close together, so a
    // reader of every worker's counters (`stats_with_workers`, policy-adaptive's controller on
    // every tick) touches a few pages rather than one per worker's arena. At 256 workers that
    // read is most of the controller's tick (policy-adaptive/src/config.rs).
    let counters = Arc::new(CachePadded::new(Counters::default()));
    let mut builder = thread::Builder::new().name(format!("{}-{}", shared.hooks.name, index));
    if let Some(bytes) = shared.hooks.stack_size {
        builder = builder.stack_size(bytes);
    }
    // A refused thread (a `spawn` that panicked included) leaves the live count here, or it
    // would keep a worker that never started.
    match share.spawn(builder, move || worker::run(for_worker, index, counters)) {
        Ok(handle) => {
            threads.handles.push((index, handle));
            Ok(())
        }
        Err(error) => {
            shared.size.remove_live();
            Err((index, StartRefused::Os(error)))
        }
    }
}

/// A worker left its loop by a panic (a bug in pool code: user code is always caught). It has
/// already left the live count and handed its deque back; start a replacement so the pool stays
/// at its target, unless it is shutting down. (A free function: loom's `Arc` cannot be a method
/// receiver.)
pub(crate) fn replace_lost_worker(shared: &Arc<Shared>) {
    shared.lost_workers.fetch_add(1, Ordering::Relaxed);
    let mut threads = shared.threads.lock();
    if shared.is_shutting_down() {
        return;
    }
    let missing = shared.size.target().saturating_sub(shared.size.live());
    for _ in 0..missing {
        // A refused thread leaves the pool below its target; the next `set_threads` retries.
        let _ = start_worker(shared, &mut threads);
    }
}

/// A worker's last act, for whatever reason it leaves (retirement, shutdown, a lost loop): it
/// moves its own handle from the list to `left`, takes out of `left` the threads that have
/// finished (`finished`), and joins them. Each thread that left is thus joined by a later one to
/// leave, or by `shutdown`, which joins every handle still held, so `shutdown` still returns
/// after every thread: a joiner is itself in `left` (or already taken by `shutdown`) until it
/// has joined what it took. (A worker whose handle `shutdown` already took adds nothing and
/// joins the same.)
///
/// Why not join the finished threads in `set_threads`, as it once did: a thread whose work is
/// done still needs a CPU to exit, and beside a few hundred CPU-bound threads on 2 cores it
/// waited seconds for one. policy-adaptive's controller, trimming 192 spinning workers, blocked
/// 2-10 s in that join (in about one `large_switch` run in three), with no decision meanwhile.
/// Here only a thread that is leaving anyway waits. Why only the finished ones, not simply the
/// last to leave: a thread whose stop hook never returns would then hold its joiner, that
/// joiner the next, and so every later thread to leave; now it holds no one, and one whose
/// thread-local `Drop` never returns (finished, not exited) holds at most its one joiner. The
/// cost: threads that had not finished when the last one left keep their stacks (not a CPU)
/// until the next one leaves or the pool shuts down.
pub(crate) fn leave(shared: &Shared, index: usize) {
    let finished: Vec<_> = {
        let mut threads = shared.threads.lock();
        let own = threads
            .handles
            .iter()
            .position(|&(at, _)| at == index)
            .map(|at| threads.handles.swap_remove(at).1);
        let done = threads
            .left
            .extract_if(.., |handle| finished(handle))
            .collect();
        threads.left.extend(own);
        done
    };
    // `--cfg loom_broken_leave_join` only (loom-tests checks that a model catches it): detach
    // them instead of joining them.
    #[cfg(loom_broken_leave_join)]
    let finished: Vec<CountedThread<()>> = {
        drop(finished);
        Vec::new()
    };
    for handle in finished {
        // A worker catches even a panic of its own loop, so a join error carries nothing.
        let _ = handle.join();
    }
}

/// Whether a thread that left has returned from its closure, so that joining it waits only for
/// its exit. Under loom, whose handles cannot tell, every thread that left before counts as
/// finished: each one leaving joins them all, the order the real pool takes when they are, and
/// the model still checks that the joins end in `shutdown` (`loom-tests`, `core.rs`).
fn finished(handle: &CountedThread<()>) -> bool {
    #[cfg(not(loom))]
    {
        handle.is_finished()
    }
    #[cfg(loom)]
    {
        let _ = handle;
        true
    }
}
