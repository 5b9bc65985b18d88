//! The pool's worker threads: starting them (`start_worker`, `replace_lost_worker`), and the
//! hand-off by which each joins the one that left before it (`leave`), so that no caller of
//! `set_threads` ever waits for a thread to exit and `shutdown` still joins every one.

use super::shared::Shared;
use super::stats::Counters;
use super::worker;
use crate::sync::{thread, Arc, CachePadded, Ordering};

/// The handles of the pool's threads, under `Shared::threads`.
pub(crate) struct Threads {
    /// Workers that have not left yet (each takes its own handle out as it leaves).
    pub(crate) handles: Vec<(usize, thread::JoinHandle<()>)>,
    /// The last worker to leave, joined by the next one to leave or by `shutdown` (`leave`).
    pub(crate) last_to_leave: Option<thread::JoinHandle<()>>,
    pub(crate) next_index: usize,
}

impl Threads {
    pub(crate) fn new() -> Self {
        Threads {
            handles: Vec::new(),
            last_to_leave: None,
            next_index: 0,
        }
    }

    /// Every handle still held, for `shutdown` to join: the workers that have not left and the
    /// last one that did (which joins the one before it, and so on).
    pub(crate) fn take_all(&mut self) -> Vec<thread::JoinHandle<()>> {
        let mut all: Vec<_> = self.handles.drain(..).map(|(_, handle)| handle).collect();
        all.extend(self.last_to_leave.take());
        all
    }
}

/// Starts one worker thread, counted live before it starts; the caller holds the `threads` lock.
pub(crate) fn start_worker(
    shared: &Arc<Shared>,
    threads: &mut Threads,
) -> Result<(), (usize, std::io::Error)> {
    let index = threads.next_index;
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
    match builder.spawn(move || worker::run(for_worker, index, counters)) {
        Ok(handle) => {
            threads.handles.push((index, handle));
            Ok(())
        }
        Err(error) => {
            shared.size.remove_live();
            Err((index, error))
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
/// takes its own handle out of the list, leaves it as `last_to_leave`, and joins the worker that
/// was there. Each thread that left is thus joined by the next one to leave, and the last by
/// `shutdown`, which joins every handle still held: the chain ends with it, so `shutdown` still
/// returns after every thread. (A worker whose handle `shutdown` already took leaves nothing
/// and joins the one before it all the same.)
///
/// Why not join the finished threads in `set_threads`, as it once did: a thread whose work is
/// done still needs a CPU to exit, and beside a few hundred CPU-bound threads on 2 cores it
/// waited seconds for one. policy-adaptive's controller, trimming 192 spinning workers, blocked
/// 2-10 s in that join (in about one `large_switch` run in three), with no decision meanwhile.
/// Here only a thread that is leaving anyway waits. The cost: the last thread to leave keeps
/// its stack (not its CPU) until the next one leaves or the pool shuts down.
pub(crate) fn leave(shared: &Shared, index: usize) {
    let before = {
        let mut threads = shared.threads.lock();
        let own = threads
            .handles
            .iter()
            .position(|&(at, _)| at == index)
            .map(|at| threads.handles.swap_remove(at).1);
        std::mem::replace(&mut threads.last_to_leave, own)
    };
    // `--cfg loom_broken_leave_join` only (loom-tests checks that a model catches it): detach
    // the one before instead of joining it.
    #[cfg(loom_broken_leave_join)]
    let before: Option<thread::JoinHandle<()>> = before.and(None);
    if let Some(before) = before {
        // A worker catches even a panic of its own loop, so a join error carries nothing.
        let _ = before.join();
    }
}
