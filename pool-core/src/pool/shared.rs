//! The state the workers and the pool handle share: the shared queue, the hooks, the worker
//! threads, and how a submission gets in (`submit`).

use super::panic_streak::PanicStreak;
use super::shutdown::{SubmitGates, DISCARD, DRAINABLE, SHUTDOWN};
use super::size::Size;
use super::sleep::Sleep;
use super::stats::{add_shared, bump_owned, Totals};
use super::threads::Threads;
use super::worker::{self, Registry};
use crate::deque::{steal_retrying, WorkInjector};
use crate::executor::Priority;
use crate::policy::{QueuePolicy, QueuedTask, Work};
use crate::sync::{AtomicU64, AtomicUsize, Mutex, Ordering};
use crate::task::PoolId;
use crate::unwind::{call_quietly, drop_quietly};

/// The settings a builder gathers and its pool keeps.
pub(crate) struct Hooks {
    pub(crate) name: String,
    pub(crate) stack_size: Option<usize>,
    pub(crate) on_start: Vec<IndexHook>,
    pub(crate) on_stop: Vec<IndexHook>,
    pub(crate) on_park: Vec<IndexHook>,
    pub(crate) on_unpark: Vec<IndexHook>,
    pub(crate) panic_handler: Option<PanicHandler>,
}

/// A hook called with a worker's index (start, stop, park, unpark).
// Immutable configuration, not protocol state: std's `Arc` (loom's cannot hold a `dyn Fn`).
pub(crate) type IndexHook = std::sync::Arc<dyn Fn(usize) + Send + Sync>;

/// The builder's `panic_handler`.
// Immutable configuration, not protocol state: std's `Arc` (loom's cannot hold a `dyn Fn`).
pub(crate) type PanicHandler = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

impl Hooks {
    // User callbacks must never take a worker down: each is called quietly (its panic, and
    // that panic's payload, are caught).
    pub(crate) fn call_start(&self, index: usize) {
        for hook in &self.on_start {
            call_quietly(|| hook(index));
        }
    }

    pub(crate) fn call_stop(&self, index: usize) {
        for hook in &self.on_stop {
            call_quietly(|| hook(index));
        }
    }

    pub(crate) fn call_park(&self, index: usize) {
        for hook in &self.on_park {
            call_quietly(|| hook(index));
        }
    }

    pub(crate) fn call_unpark(&self, index: usize) {
        for hook in &self.on_unpark {
            call_quietly(|| hook(index));
        }
    }

    pub(crate) fn call_panic_handler(&self, message: &str) {
        if let Some(handler) = &self.panic_handler {
            call_quietly(|| handler(message));
        }
    }
}

impl Drop for Hooks {
    /// The hooks are user code, and so are the values they captured: each is dropped quietly,
    /// one at a time (a slice drop that met a second panicking `Drop` would abort), on whichever
    /// thread lets them go: the one dropping a builder (a failed `build` included) or the pool,
    /// or the last worker to exit.
    fn drop(&mut self) {
        for hooks in [
            &mut self.on_start,
            &mut self.on_stop,
            &mut self.on_park,
            &mut self.on_unpark,
        ] {
            for hook in hooks.drain(..) {
                drop_quietly(hook);
            }
        }
        if let Some(handler) = self.panic_handler.take() {
            drop_quietly(handler);
        }
    }
}

/// The shared queue: the built-in FIFO injector, or a plugged-in policy.
///
/// Why two arms and not the FIFO default behind `QueuePolicy` too (`FifoQueue` is the same
/// order as a policy): a policy receives a `QueuedTask`, the work plus its priority (24 bytes),
/// because ordering by priority is what policies are for; the FIFO arm stores the bare 16-byte
/// `Work`. One path through the trait would put the priority into every entry of the default pool
/// too: 32 instead of 24 bytes per queued fire-and-forget task (the injector adds 8 per slot),
/// measured by `compare`'s memory row, besides a virtual call and a pointer chase per push and pop.
// One per pool and never moved, so the injector's inline size costs nothing; boxing it would add
// a pointer chase to every push and pop.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Global {
    Fifo(WorkInjector),
    /// A plain `Box` (the builder holds it in a `QuietDrop`; here `Drop for Global` drops it
    /// quietly). Wrapped here, the outside submission compiled differently (the policy's
    /// pointer loaded inside the submit gate's lock); `compare`'s priority rows could not tell
    /// the two apart, so the hot path keeps the form it had.
    Policy(Box<dyn QueuePolicy>),
}

impl Drop for Global {
    /// A plugged-in policy is user code, its `Drop` too: dropped quietly wherever the pool goes
    /// (the thread dropping it, or a worker whose task held the last handle).
    fn drop(&mut self) {
        if let Global::Policy(policy) = self {
            drop_quietly(std::mem::replace(policy, Box::new(Gone)));
        }
    }
}

/// What stands in for a policy being dropped: empty, and a zero-sized box (no allocation).
#[derive(Debug)]
struct Gone;

impl QueuePolicy for Gone {
    fn push(&self, task: QueuedTask) {
        drop(task);
    }

    fn pop(&self) -> Option<QueuedTask> {
        None
    }

    fn len(&self) -> usize {
        0
    }
}

/// Everything the workers and the pool handle share.
pub(crate) struct Shared {
    /// This pool's number, in the header of every task it makes (see `raise_priority`).
    pub(crate) id: PoolId,
    pub(crate) global: Global,
    /// Whether submissions from inside a worker go to its own deque.
    pub(crate) local_queues: bool,
    pub(crate) honors_priority: bool,
    pub(crate) lifecycle: AtomicUsize,
    pub(crate) sleep: Sleep,
    pub(crate) registry: Registry,
    pub(crate) size: Size,
    pub(crate) external: SubmitGates,
    pub(crate) hooks: Hooks,
    pub(crate) threads: Mutex<Threads>,
    /// Held by a shutdown while it joins the workers, so that a second, concurrent shutdown
    /// returns only once every thread is joined (the `threads` lock cannot be held for that: a
    /// lost worker takes it on its way out).
    pub(crate) joining: Mutex<()>,
    /// Workers that left their loop by a panic (see `worker::run`); reported in the stats.
    pub(crate) lost_workers: AtomicU64,
    /// Calls of the policy's `pop` that panicked in a row (`global_emptiness`, `worker::help`).
    pub(crate) pop_panics: PanicStreak,
    /// Calls of the policy's `is_empty` that panicked in a row (`global_emptiness`).
    pub(crate) empty_panics: PanicStreak,
    /// Workers on their way out that are moving their deque back to the shared queue. An entry
    /// between its pop from the deque and its push to the shared queue is in neither, so
    /// `is_idle` reads this last and is false while it is not zero.
    pub(crate) handing_back: AtomicUsize,
    /// Unit tests only: makes the next worker that reaches the top of its loop panic there.
    #[cfg(all(test, not(loom)))]
    pub(crate) inject_fault: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// The priority reaches the policy only: the FIFO injector stores the bare work.
    // The FIFO arm inline, the policy's out of line: the default pool's push stays as small as
    // it was before calls into a policy were contained.
    #[inline]
    pub(crate) fn push_global(&self, work: Work, priority: Priority) {
        match &self.global {
            Global::Fifo(injector) => injector.push(work),
            Global::Policy(policy) => self.push_policy(&**policy, work, priority),
        }
    }

    /// A panicking push either kept the entry (it runs later) or dropped it while unwinding
    /// (its task is cancelled and counted: see `call_policy`).
    #[inline(never)]
    fn push_policy(&self, policy: &dyn QueuePolicy, work: Work, priority: Priority) {
        self.push_policy_inline(policy, work, priority);
    }

    /// `push_policy` in the caller's frame (the outside submitter's path): `call_policy`'s
    /// steps, each forced inline (`call_policy` itself, as a call, was a frame of its own again).
    /// `catch_panic` handles a panic's payload out of line; its message is not wanted here.
    #[inline(always)]
    fn push_policy_inline(&self, policy: &dyn QueuePolicy, work: Work, priority: Priority) {
        let _ = crate::unwind::catch_panic(|| policy.push(QueuedTask::from_work(work, priority)));
        self.count_dropped_after_call();
    }

    /// The next entry of the shared queue, with the priority a policy popped it at.
    #[inline]
    pub(crate) fn pop_global(&self) -> Option<Ready> {
        match &self.global {
            Global::Fifo(injector) => steal_retrying(|| injector.steal()).map(Ready::unranked),
            Global::Policy(policy) => {
                let mut ready = None;
                self.pop_policy(&**policy, &mut ready);
                ready
            }
        }
    }

    /// `call_policy`'s steps for the policy's `pop`, each inline as in `push_policy_inline`.
    /// The contained call stores what it popped, unpacked (`into_parts` cannot panic),
    /// straight into `ready` (the caller's `None`: it must be), and `catch_panic` hands back
    /// only whether it panicked: with the entry
    /// wrapped in `call_quietly`'s `Option`, unwrapped and returned, the 24 bytes were copied
    /// through four stack slots on the path of every task, and `call_quietly`'s inlined loop of
    /// payload drops made this frame save every callee-saved register (`catch_panic` drops a
    /// payload out of line). The dropped count's rare add is out of line too.
    #[inline(never)]
    fn pop_policy(&self, policy: &dyn QueuePolicy, ready: &mut Option<Ready>) {
        debug_assert!(ready.is_none(), "a found task would be forgotten");
        let returned = crate::unwind::catch_panic(|| {
            let popped = policy.pop().map(|task| {
                let (work, priority) = task.into_parts();
                Ready {
                    work,
                    popped_at: Some(priority),
                }
            });
            // `ready` is the caller's `None`: nothing to drop (an assignment would compile
            // the drop of an old value into this path).
            std::mem::forget(std::mem::replace(ready, popped));
        })
        .is_ok();
        self.count_dropped_after_call();
        if returned {
            self.pop_panics.returned();
        } else {
            self.pop_panics.panicked();
        }
    }

    /// After any call into the policy, on the calling thread: enters the entries that call
    /// dropped as cancelled (see `call_policy`). One thread-local test inline; the take and the
    /// count out of line, as they are rare.
    #[inline(always)]
    fn count_dropped_after_call(&self) {
        if crate::policy::dropped_on_this_thread() {
            self.count_dropped_on_this_thread();
        }
    }

    /// Takes the count of entries dropped on this thread and enters it as cancelled (see
    /// `call_policy`); out of line.
    #[cold]
    #[inline(never)]
    fn count_dropped_on_this_thread(&self) {
        let dropped = crate::policy::take_dropped_on_this_thread();
        if dropped != 0 {
            self.count_dropped(dropped);
        }
    }

    /// Whether the shared queue is empty, or `None` when the policy's `is_empty` panicked: the
    /// caller looks again rather than guess. A worker that took one such panic for "empty" could
    /// exit a graceful shutdown with tasks still queued (the stress harness's `policy` part left
    /// 6 counted as queued); one that took it for "not empty" could park with nothing left to
    /// wake it. A policy whose `pop` or `is_empty` has panicked
    /// [`PANICS_BEFORE_GIVING_UP`](super::panic_streak::PANICS_BEFORE_GIVING_UP) times in a row
    /// reads as empty: otherwise a worker would search it forever and shutdown
    /// would never find the pool quiescent (what such a policy still holds stays counted as
    /// queued in the stats).
    pub(crate) fn global_emptiness(&self) -> Option<bool> {
        match &self.global {
            Global::Fifo(injector) => Some(injector.is_empty()),
            Global::Policy(policy) => {
                if self.pop_panics.given_up() {
                    return Some(true);
                }
                match self.call_policy(|| policy.is_empty()) {
                    Some(empty) => {
                        self.empty_panics.returned();
                        Some(empty)
                    }
                    // Planted bug (loom-tests, `.ci/loom-planted`): take a panic for "empty", as
                    // before `bed54d3`, so a parking worker's re-check can miss a queued task.
                    None if cfg!(loom_broken_emptiness_guess) => Some(true),
                    None => self.empty_panics.panicked().then_some(true),
                }
            }
        }
    }

    /// Entries in the shared queue (0 when the policy's `len` panics).
    pub(crate) fn global_len(&self) -> usize {
        match &self.global {
            Global::Fifo(injector) => injector.len(),
            Global::Policy(policy) => self.call_policy(|| policy.len()).unwrap_or(0),
        }
    }

    /// Calls into the policy (user code) on this thread. A panic is caught (`None`). The entries
    /// the call dropped, on purpose or while a panic unwound (`QueuedTask`'s `Drop` cancelled
    /// their tasks and counted them on this thread), enter the books as cancelled, so nothing is
    /// lost silently. (A policy calling back into a pool from inside a call is credited to the
    /// innermost call that takes the count; it is the same pool in any sane use.)
    #[inline]
    fn call_policy<R>(&self, call: impl FnOnce() -> R) -> Option<R> {
        let result = call_quietly(call);
        self.count_dropped_after_call();
        result
    }

    #[cold]
    fn count_dropped(&self, dropped: u64) {
        add_shared(&self.external.mine().counters.cancelled, dropped);
    }

    /// Reports `count` tasks a worker finished at `priority` to the policy's
    /// `on_finished_many` (the worker batches them: `WorkerContext::note_finished`).
    #[inline(never)]
    pub(crate) fn policy_finished_many(&self, priority: Priority, count: u64) {
        self.tell_policy(|policy| policy.on_finished_many(priority, count));
    }

    /// Reports `count` entries taken from the policy at `priority` that did not run (cancelled
    /// or stale) to its `on_discarded`. Rare: no batching.
    #[cold]
    #[inline(never)]
    pub(crate) fn policy_discarded(&self, priority: Priority, count: u64) {
        self.tell_policy(|policy| policy.on_discarded(priority, count));
    }

    /// Calls one of the policy's statistics hooks, if a policy is plugged in. A policy is user
    /// code, and the books of what it is told about are already closed: a panicking hook must
    /// not take down the worker (or the caller of `cancel_all`) that tells it.
    #[inline(always)]
    fn tell_policy(&self, tell: impl FnOnce(&dyn QueuePolicy)) {
        if let Global::Policy(policy) = &self.global {
            call_quietly(|| tell(&**policy));
        }
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.lifecycle.load(Ordering::Acquire) & SHUTDOWN != 0
    }

    /// During shutdown: whether this worker may exit. No outside submitter can push any more,
    /// and nothing is left that this worker is responsible for (its deque and the shared queue).
    /// Other workers drain their own deques before they exit.
    /// `None` when that turns on a policy's `is_empty` that panicked (see `global_emptiness`).
    pub(crate) fn quiescence(&self, ctx: &worker::WorkerContext) -> Option<bool> {
        if self.drainable(ctx) {
            // Planted bug (loom-tests, `.ci/loom-planted`): take a panicking `is_empty` for
            // "empty" here, so a worker can exit a graceful shutdown with a task still queued.
            if cfg!(loom_broken_quiescence_guess) {
                return Some(self.global_emptiness().unwrap_or(true));
            }
            self.global_emptiness()
        } else {
            Some(false)
        }
    }

    /// [`quiescence`](Self::quiescence) but for the shared queue, which the caller has read.
    pub(crate) fn drainable(&self, ctx: &worker::WorkerContext) -> bool {
        self.lifecycle.load(Ordering::Acquire) & DRAINABLE != 0 && ctx.deque.is_empty()
    }

    /// Submits `job` from the calling thread: decides the route with one thread-local read,
    /// counts the submission, pushes what `into_work` makes of the job (given the pool, whose
    /// number a task's header takes), and wakes a parked worker
    /// if there is one. A refused job comes back untouched (`into_work` is not called, so a
    /// refusal allocates nothing).
    #[inline]
    pub(crate) fn submit<J, R>(
        &self,
        job: J,
        priority: Priority,
        into_work: impl FnOnce(J, &Shared) -> (Work, R),
    ) -> Result<R, J> {
        worker::on_current(
            self,
            (job, into_work),
            |ctx, (job, into_work)| {
                let made = self.push_from_worker(ctx, job, priority, into_work)?;
                self.sleep.notify_one();
                Ok(made)
            },
            |(job, into_work)| self.submit_from_outside(job, priority, into_work),
        )
    }

    /// From a worker of this pool: onto its own deque (the shared queue if the pool has no local
    /// queues), counted. There is no shutdown race to close: the worker drains what it pushes
    /// before it exits. Work spawned by running tasks is part of finishing the queue, so graceful
    /// shutdown accepts it; only `shutdown_now` refuses it. No wake-up: the caller wakes, once
    /// per job or once for a batch.
    #[inline]
    pub(crate) fn push_from_worker<J, R>(
        &self,
        ctx: &worker::WorkerContext,
        job: J,
        priority: Priority,
        into_work: impl FnOnce(J, &Shared) -> (Work, R),
    ) -> Result<R, J> {
        bump_owned(&ctx.counters.submitted);
        if self.lifecycle.load(Ordering::Acquire) & DISCARD != 0 {
            bump_owned(&ctx.counters.rejected);
            return Err(job);
        }
        let (work, made) = into_work(job, self);
        if self.local_queues {
            ctx.deque.push(work);
        } else {
            self.push_global(work, priority);
        }
        Ok(made)
    }

    /// From any other thread: checks shutdown and pushes while holding the thread's stripe gate
    /// (see README, "shutdown"), then wakes a parked worker if there is one.
    ///
    /// One copy of the steps per kind of shared queue, chosen before the gate: the FIFO arm
    /// pushes to the injector, the policy arm calls the policy with its containment inline
    /// (`push_policy_inline`), in this frame. Through `push_global`, the policy arm paid a
    /// second call frame (`push_policy`, kept out of line there so that the FIFO arm stays
    /// small) on the path every outside submission to a policy pool takes: about 15
    /// instructions a task on the submitting thread (pool-core/src/pool/README.md).
    pub(crate) fn submit_from_outside<J, R>(
        &self,
        job: J,
        priority: Priority,
        into_work: impl FnOnce(J, &Shared) -> (Work, R),
    ) -> Result<R, J> {
        match &self.global {
            Global::Fifo(injector) => {
                self.submit_outside_with(job, into_work, |work| injector.push(work))
            }
            Global::Policy(policy) => self.submit_outside_with(job, into_work, |work| {
                self.push_policy_inline(&**policy, work, priority)
            }),
        }
    }

    /// `submit_from_outside`'s steps with the given push (one copy per arm).
    #[inline(always)]
    fn submit_outside_with<J, R>(
        &self,
        job: J,
        into_work: impl FnOnce(J, &Shared) -> (Work, R),
        push: impl FnOnce(Work),
    ) -> Result<R, J> {
        let stripe = self.external.mine();
        let gate = stripe.gate.lock();
        // Plain increments: these two counters are only written under the gate.
        bump_owned(&stripe.counters.submitted);
        if self.lifecycle.load(Ordering::Acquire) & SHUTDOWN != 0 {
            bump_owned(&stripe.counters.rejected);
            return Err(job);
        }
        let (work, made) = into_work(job, self);
        // Planted bug (loom-tests, `.ci/loom-planted`): leave the gate before the push, so the
        // shutdown barrier can pass between this submitter's check and its push.
        #[cfg(loom_broken_submit_gate)]
        let gate = drop(gate);
        push(work);
        drop(gate);
        self.sleep.notify_one();
        Ok(made)
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.sleep.idle() == self.size.live()
            // A policy's panicking `is_empty` reads as empty here, a guess: the worst it does is
            // a `wait_idle` that returns true while the policy still holds tasks (every caller
            // only reports idleness; a parking worker asks just after its own re-check read the
            // queue empty without a panic). A worker deciding to park or exit acts on the
            // answer, so it never guesses (`global_emptiness`).
            && self.global_emptiness().unwrap_or(true)
            && !worker::any_stealable(self)
            // Last: a retiree counts itself in before its first pop from its deque, so an entry
            // the reads above missed in its hands is seen here (all of them `SeqCst`).
            && self.handing_back.load(Ordering::SeqCst) == 0
    }

    pub(crate) fn totals(&self) -> Totals {
        self.registry.read_totals(&self.external)
    }
}

/// Work a worker found, and the priority its policy popped it at (`None` for the FIFO default
/// and for a worker's own deque, which know no priorities).
pub(crate) struct Ready {
    pub(crate) work: Work,
    pub(crate) popped_at: Option<Priority>,
}

impl Ready {
    pub(crate) fn unranked(work: Work) -> Ready {
        Ready {
            work,
            popped_at: None,
        }
    }
}
