//! User code that panics: wakers, panic payloads and their `Drop`, keys'
//! `Hash`/`Eq`/`Clone`/`Drop`, closures' captures and outputs, executors. None of it may unwind
//! out of a coalescer job (that kills the thread of an executor that does not catch it), leave a
//! handle unresolved, leave a key dead, or unbalance the books.

mod common;

use common::{assert_books, failed};
use policy_coalesce::{
    CoalesceCancelReason, CoalesceError, CoalescedHandle, Coalescer, Mode, SubmitOptions,
};
use pool_core::{Priority, ThreadPool};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, panic_any, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use test_kit::{Deferred, PanicsOn, PATIENCE};

/// Runs every queued job (and the ones they queue), asserting that nothing unwinds out of any.
fn run_all_quietly(exec: &Deferred) -> usize {
    let mut ran = 0;
    loop {
        match catch_unwind(AssertUnwindSafe(|| exec.run_next())) {
            Ok(true) => ran += 1,
            Ok(false) => return ran,
            Err(_) => panic!("a panic unwound out of a coalescer job"),
        }
    }
}

/// A coalescer over a [`Deferred`] executor: its jobs wait until the test runs them (with
/// [`run_all_quietly`]), so every test decides when the coalescer's work happens.
fn on_deferred<K, V>() -> (Arc<Deferred>, Coalescer<K, V, Arc<Deferred>>)
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    let exec = Arc::new(Deferred::default());
    (exec.clone(), Coalescer::new(exec))
}

/// Asserts that `key` works again after a hostile event: a new submission under it is the one
/// job on `exec`, runs quietly and resolves to `value`.
#[track_caller]
fn runs_again<K, V, E>(coalescer: &Coalescer<K, V, E>, exec: &Deferred, key: K, value: V)
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + PartialEq + std::fmt::Debug + Send + Sync + 'static,
    E: pool_core::Executor + 'static,
{
    let expected = value.clone();
    let later = coalescer.submit(key, move || value).unwrap();
    assert_eq!(run_all_quietly(exec), 1);
    assert_eq!(*later.join_timeout(PATIENCE).unwrap(), expected);
}

/// A value whose destructor panics (unless the thread is already unwinding).
struct Loud;

impl Drop for Loud {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("hostile destructor");
        }
    }
}

struct PanickyWake;

impl Wake for PanickyWake {
    fn wake(self: Arc<Self>) {
        panic!("hostile waker");
    }
}

#[derive(Default)]
struct CountingWake(AtomicUsize);

impl Wake for CountingWake {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn poll_once<T>(
    handle: &mut CoalescedHandle<T>,
    waker: &Waker,
) -> Poll<Result<Arc<T>, CoalesceError>> {
    Pin::new(handle).poll(&mut Context::from_waker(waker))
}

#[test]
fn a_panicking_waker_neither_escapes_the_job_nor_kills_the_key() {
    let (exec, coalescer) = on_deferred::<&str, u32>();
    let (follow_tx, follow_rx) = mpsc::channel();
    let again = coalescer.clone();
    let mut first = coalescer
        .submit("k", move || {
            // Submitted while "k" runs: a follow-up that only the finish of this run dispatches.
            follow_tx.send(again.submit("k", || 2).unwrap()).unwrap();
            1
        })
        .unwrap();
    let keep = SubmitOptions::new().mode(Mode::Keep);
    let mut sharer = coalescer.submit_with("k", keep, || 0).unwrap();
    let hostile = Waker::from(Arc::new(PanickyWake));
    let counting = Arc::new(CountingWake::default());
    assert!(poll_once(&mut first, &hostile).is_pending());
    assert!(poll_once(&mut sharer, &Waker::from(counting.clone())).is_pending());

    assert_eq!(run_all_quietly(&exec), 2, "the run and its follow-up");
    assert_eq!(
        counting.0.load(Ordering::SeqCst),
        1,
        "the waker after the hostile one is woken"
    );
    let follow_up = follow_rx.recv_timeout(PATIENCE).unwrap();
    assert!(matches!(poll_once(&mut first, &hostile), Poll::Ready(Ok(v)) if *v == 1));
    assert_eq!(*sharer.join_timeout(PATIENCE).unwrap(), 1);
    assert_eq!(*follow_up.join_timeout(PATIENCE).unwrap(), 2);
    assert_books(&coalescer, |s| (s.executed, s.completed, s.keys), (2, 2, 0));
}

#[test]
fn a_panic_payload_whose_drop_panics_resolves_every_sharer() {
    let (exec, coalescer) = on_deferred::<&str, u32>();
    let superseded = coalescer.submit("k", || 0).unwrap();
    let installed = coalescer
        .submit("k", || -> u32 { panic_any(Loud) })
        .unwrap();
    assert_eq!(run_all_quietly(&exec), 1);
    for handle in [superseded, installed] {
        assert_eq!(
            failed(handle),
            CoalesceError::Panicked("a panic with a non-string payload".into())
        );
    }
    runs_again(&coalescer, &exec, "k", 7);
    assert_books(
        &coalescer,
        |s| (s.executed, s.panicked, s.completed, s.keys),
        (2, 1, 1, 0),
    );
}

/// On a real pool (which catches a job's panic itself), the same payload used to leave the key
/// running forever: later submissions queued behind a run that never finished.
#[test]
fn on_a_pool_the_key_of_a_hostile_panic_keeps_working() {
    let pool = ThreadPool::new(1).unwrap();
    let coalescer = Coalescer::<&str, u32, _>::new(pool);
    let panicked = coalescer
        .submit("k", || -> u32 { panic_any(Loud) })
        .unwrap();
    assert!(failed(panicked).is_panic());
    let later = coalescer.submit("k", || 7).unwrap();
    assert_eq!(*later.join_timeout(PATIENCE).unwrap(), 7);
    assert!(coalescer.executor().wait_idle(PATIENCE));
    assert_books(&coalescer, |s| (s.pending, s.running, s.keys), (0, 0, 0));
}

/// Which operations of a [`Key`] panic.
#[derive(Default)]
struct Traps {
    hash: AtomicBool,
    eq: AtomicBool,
    clone: AtomicBool,
    drop: AtomicBool,
}

impl Traps {
    fn arm(&self, on: bool) {
        for trap in [&self.hash, &self.eq, &self.clone, &self.drop] {
            trap.store(on, Ordering::SeqCst);
        }
    }
}

/// A key whose `Hash`, `Eq`, `Clone` and `Drop` panic when their trap is armed.
struct Key {
    id: u8,
    traps: Arc<Traps>,
}

impl Key {
    fn new(id: u8, traps: &Arc<Traps>) -> Self {
        Key {
            id,
            traps: traps.clone(),
        }
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        assert!(!self.traps.hash.load(Ordering::SeqCst), "hostile Hash");
        self.id.hash(state);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        assert!(!self.traps.eq.load(Ordering::SeqCst), "hostile Eq");
        self.id == other.id
    }
}

impl Eq for Key {}

impl Clone for Key {
    fn clone(&self) -> Self {
        assert!(!self.traps.clone.load(Ordering::SeqCst), "hostile Clone");
        Key::new(self.id, &self.traps)
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        if self.traps.drop.load(Ordering::SeqCst) && !std::thread::panicking() {
            panic!("hostile key Drop");
        }
    }
}

/// A closure capture that counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn submitter_side_key_panic(trap: fn(&Traps) -> &AtomicBool, shards: usize) {
    let exec = Arc::new(Deferred::default());
    let coalescer = Coalescer::<Key, u8, _>::builder(exec.clone())
        .shards(shards)
        .build()
        .unwrap();
    let traps = Arc::new(Traps::default());
    let first = coalescer.submit(Key::new(1, &traps), || 1).unwrap();
    let before = coalescer.stats();
    trap(&traps).store(true, Ordering::SeqCst);
    let drops = Arc::new(AtomicUsize::new(0));
    let capture = Counted(drops.clone());
    let refused = catch_unwind(AssertUnwindSafe(|| {
        coalescer.submit(Key::new(1, &traps), move || {
            drop(capture);
            2
        })
    }));
    assert!(
        refused.is_err(),
        "the caller's own key panicked: the panic reaches the caller"
    );
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the refused closure was dropped"
    );
    assert_eq!(
        coalescer.stats(),
        before,
        "a refused submission leaves the books alone"
    );
    // The same key in `cancel_key` and `key_stats`: the panic is the caller's, nothing changed,
    // and the shard is not left locked.
    let probe = Key::new(1, &traps);
    assert!(catch_unwind(AssertUnwindSafe(|| coalescer.cancel_key(&probe))).is_err());
    assert!(catch_unwind(AssertUnwindSafe(|| coalescer.key_stats(&probe))).is_err());
    assert_eq!(coalescer.stats(), before);
    traps.arm(false);
    assert_eq!(run_all_quietly(&exec), 1);
    assert_eq!(*first.join_timeout(PATIENCE).unwrap(), 1);
    assert_books(&coalescer, |s| (s.submitted, s.executed, s.keys), (1, 1, 0));
}

#[test]
fn a_key_whose_hash_panics_at_submit_leaves_the_books_alone() {
    submitter_side_key_panic(|t| &t.hash, 1);
    submitter_side_key_panic(|t| &t.hash, 16);
}

#[test]
fn a_key_whose_eq_panics_at_submit_leaves_the_books_alone() {
    submitter_side_key_panic(|t| &t.eq, 1);
    submitter_side_key_panic(|t| &t.eq, 16);
}

#[test]
fn a_key_whose_clone_panics_is_never_cloned() {
    let (exec, coalescer) = on_deferred::<Key, u8>();
    let traps = Arc::new(Traps::default());
    traps.clone.store(true, Ordering::SeqCst);
    let handle = catch_unwind(AssertUnwindSafe(|| {
        coalescer.submit(Key::new(1, &traps), || 1)
    }))
    .expect("submit does not clone the key")
    .unwrap();
    assert_eq!(run_all_quietly(&exec), 1);
    assert_eq!(*handle.join_timeout(PATIENCE).unwrap(), 1);
    assert_books(
        &coalescer,
        |s| (s.submitted, s.completed, s.keys),
        (1, 1, 0),
    );
}

/// A key that behaves at submit and panics in every operation afterwards: the worker never
/// needs it, so the execution runs, every sharer gets the outcome and the slot is freed.
#[test]
fn a_key_that_panics_on_the_worker_still_resolves_and_frees_its_slot() {
    let (exec, coalescer) = on_deferred::<Key, u8>();
    let traps = Arc::new(Traps::default());
    let (follow_tx, follow_rx) = mpsc::channel();
    let (again, again_traps) = (coalescer.clone(), traps.clone());
    let first = coalescer
        .submit(Key::new(1, &traps), move || {
            // A follow-up queued behind this run, then every key operation turns hostile.
            let follow_up = again.submit(Key::new(1, &again_traps), || 2).unwrap();
            follow_tx.send(follow_up).unwrap();
            again_traps.arm(true);
            1
        })
        .unwrap();
    let keep = SubmitOptions::new().mode(Mode::Keep);
    let sharer = coalescer
        .submit_with(Key::new(1, &traps), keep, || 0)
        .unwrap();
    assert_eq!(run_all_quietly(&exec), 2, "the run and its follow-up");
    let follow_up = follow_rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(*first.join_timeout(PATIENCE).unwrap(), 1);
    assert_eq!(*sharer.join_timeout(PATIENCE).unwrap(), 1);
    assert_eq!(*follow_up.join_timeout(PATIENCE).unwrap(), 2);
    assert_books(&coalescer, |s| (s.executed, s.completed, s.keys), (2, 2, 0));
    traps.arm(false);
    runs_again(&coalescer, &exec, Key::new(1, &traps), 3);
}

#[test]
fn a_key_whose_drop_panics_is_dropped_quietly() {
    let (exec, coalescer) = on_deferred::<Key, u8>();
    let traps = Arc::new(Traps::default());
    traps.drop.store(true, Ordering::SeqCst);
    let first = coalescer.submit(Key::new(1, &traps), || 1).unwrap();
    // Joins the pending execution: this submitter's key is dropped at once.
    let second = catch_unwind(AssertUnwindSafe(|| {
        coalescer.submit(Key::new(1, &traps), || 2)
    }))
    .expect("a joining submit drops its key quietly")
    .unwrap();
    assert_eq!(run_all_quietly(&exec), 1);
    assert_eq!(*first.join_timeout(PATIENCE).unwrap(), 2);
    assert_eq!(*second.join_timeout(PATIENCE).unwrap(), 2);
    assert_books(
        &coalescer,
        |s| (s.submitted, s.completed, s.keys),
        (2, 1, 0),
    );
}

/// A closure that holds a [`Loud`] capture: dropped unrun, its `Drop` panics; run, it does not.
fn holding_loud(value: u8) -> impl FnOnce() -> u8 + Send + 'static {
    let loud = Loud;
    move || {
        std::mem::forget(loud);
        value
    }
}

/// Calls `f`, asserting that nothing unwinds out of it.
fn quietly<R>(f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(_) => panic!("a closure's Drop unwound into the coalescer's caller"),
    }
}

/// A closure capture whose `Drop` panics, on every path that drops a closure unrun.
#[test]
fn closures_dropped_unrun_are_dropped_quietly() {
    let (exec, coalescer) = on_deferred::<&str, u8>();
    // Superseded by a later submit, and kept out by `Keep`.
    let superseded = coalescer.submit("a", holding_loud(1)).unwrap();
    let keep = SubmitOptions::new().mode(Mode::Keep);
    let kept = quietly(|| coalescer.submit_with("a", keep, holding_loud(9)).unwrap());
    let installed = quietly(|| coalescer.submit("a", || 2).unwrap());
    // Cancelled by its last handle, and by `cancel_key`.
    let lonely = coalescer.submit("b", holding_loud(3)).unwrap();
    assert!(quietly(|| lonely.cancel()));
    let keyed = coalescer.submit("c", holding_loud(4)).unwrap();
    assert!(quietly(|| coalescer.cancel_key(&"c")));
    // Dropped by the executor unrun.
    let dropped = coalescer.submit("d", holding_loud(5)).unwrap();
    assert_eq!(exec.len(), 4, "a, b, c and d were dispatched");
    assert!(quietly(|| exec.run_next()), "runs a");
    quietly(|| exec.drop_all());
    for handle in [superseded, kept, installed] {
        assert_eq!(*handle.join_timeout(PATIENCE).unwrap(), 2);
    }
    assert_eq!(
        failed(lonely),
        CoalesceError::Cancelled(CoalesceCancelReason::Requested)
    );
    assert_eq!(
        failed(keyed),
        CoalesceError::Cancelled(CoalesceCancelReason::Key)
    );
    assert_eq!(
        failed(dropped),
        CoalesceError::Cancelled(CoalesceCancelReason::Dropped)
    );
    assert_books(
        &coalescer,
        |s| {
            (
                s.submitted,
                s.executed,
                s.cancelled,
                s.superseded,
                s.kept,
                s.keys,
            )
        },
        (6, 1, 3, 1, 1, 0),
    );
}

/// The superseded closure is dropped after the shard lock is released, so its `Drop` may use
/// the coalescer (here: read the stats of its own key) without deadlocking.
#[test]
fn a_superseded_closure_may_reenter_the_coalescer_from_its_drop() {
    struct Reenters(
        Coalescer<&'static str, u8, Arc<Deferred>>,
        mpsc::Sender<usize>,
    );
    impl Drop for Reenters {
        fn drop(&mut self) {
            let live = self.0.key_stats(&"k").map_or(0, |k| k.live_handles);
            let _ = self.1.send(live);
            panic!("and then panics");
        }
    }
    let (exec, coalescer) = on_deferred::<&str, u8>();
    let (seen_tx, seen) = mpsc::channel();
    let reenters = Reenters(coalescer.clone(), seen_tx);
    let first = coalescer
        .submit("k", move || {
            let _ = &reenters;
            1
        })
        .unwrap();
    let submitter = coalescer.clone();
    let second = std::thread::spawn(move || submitter.submit("k", || 2).map_err(|_| ()));
    assert_eq!(
        seen.recv_timeout(PATIENCE),
        Ok(2),
        "Drop ran, outside the lock"
    );
    let second = second
        .join()
        .expect("the submit returned normally")
        .unwrap();
    assert_eq!(run_all_quietly(&exec), 1);
    assert_eq!(*first.join_timeout(PATIENCE).unwrap(), 2);
    assert_eq!(*second.join_timeout(PATIENCE).unwrap(), 2);
}

#[test]
fn an_output_whose_drop_panics_is_dropped_quietly() {
    let (exec, coalescer) = on_deferred::<&str, Loud>();
    // No handle: the execution's last reference, with the value in it, is the job's.
    coalescer.spawn("k", SubmitOptions::new(), || Loud).unwrap();
    let handle = coalescer.submit("j", || Loud).unwrap();
    drop(handle);
    assert_eq!(run_all_quietly(&exec), 2);
    assert_books(&coalescer, |s| (s.completed, s.keys), (2, 0));
}

/// A coalescer over an executor that panics on the chosen calls (dropping the job), and
/// otherwise defers jobs until the test runs them.
#[allow(clippy::type_complexity)] // the pair `on_deferred` returns, over `PanicsOn`
fn on_panicky(
    calls: &[usize],
) -> (
    Arc<PanicsOn<Deferred>>,
    Coalescer<&'static str, u8, Arc<PanicsOn<Deferred>>>,
) {
    let exec = Arc::new(PanicsOn::new(Deferred::default(), calls.iter().copied()));
    (exec.clone(), Coalescer::new(exec))
}

#[test]
fn an_executor_that_panics_at_submit_cancels_the_execution() {
    let (exec, coalescer) = on_panicky(&[1]);
    let handle = catch_unwind(AssertUnwindSafe(|| coalescer.submit("k", || 1)))
        .expect("the executor's panic is the executor's: the job was dropped, and said so")
        .unwrap();
    assert_eq!(
        failed(handle),
        CoalesceError::Cancelled(CoalesceCancelReason::Dropped)
    );
    runs_again(&coalescer, exec.inner(), "k", 2);
    assert_books(
        &coalescer,
        |s| (s.cancelled, s.completed, s.keys),
        (1, 1, 0),
    );
}

#[test]
fn an_executor_that_panics_on_a_follow_up_cancels_the_follow_up() {
    let (exec, coalescer) = on_panicky(&[2]);
    let (follow_tx, follow_rx) = mpsc::channel();
    let again = coalescer.clone();
    let first = coalescer
        .submit("k", move || {
            follow_tx.send(again.submit("k", || 2).unwrap()).unwrap();
            1
        })
        .unwrap();
    assert_eq!(run_all_quietly(exec.inner()), 1);
    assert_eq!(*first.join_timeout(PATIENCE).unwrap(), 1);
    let follow_up = follow_rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(
        failed(follow_up),
        CoalesceError::Cancelled(CoalesceCancelReason::Dropped)
    );
    runs_again(&coalescer, exec.inner(), "k", 3);
    assert_books(
        &coalescer,
        |s| (s.cancelled, s.completed, s.keys),
        (1, 2, 0),
    );
}

#[test]
fn an_executor_that_panics_on_a_priority_raise_still_runs_the_execution() {
    let (exec, coalescer) = on_panicky(&[2]);
    let low = SubmitOptions::new().priority(Priority::Low);
    let high = SubmitOptions::new().priority(Priority::High);
    let first = coalescer.submit_with("k", low, || 1).unwrap();
    let raised = catch_unwind(AssertUnwindSafe(|| coalescer.submit_with("k", high, || 2)))
        .expect("the raise's job was dropped, and said so")
        .unwrap();
    assert_eq!(run_all_quietly(exec.inner()), 1);
    assert_eq!(*first.join_timeout(PATIENCE).unwrap(), 2);
    assert_eq!(*raised.join_timeout(PATIENCE).unwrap(), 2);
    assert_books(&coalescer, |s| (s.executed, s.keys), (1, 0));
}

/// A pool's executor that holds a value whose `Drop` panics.
struct FusedPool(Arc<ThreadPool>, #[allow(dead_code)] test_kit::Fuse);

impl pool_core::Executor for FusedPool {
    fn execute(&self, job: pool_core::Job) -> Result<(), pool_core::Rejected<pool_core::Job>> {
        self.0.execute(job)
    }
}

/// Invariant: the executor is user code, its `Drop` too: dropped quietly, once, wherever it
/// goes. A refused build returns its typed error (the executor's `Drop` does not turn it into a
/// panic); a coalescer dropped while its job runs leaves the executor to that job's worker, which
/// drops it quietly: the job completes, nothing counts as a panic, the books balance.
#[test]
fn an_executor_whose_drop_panics_is_dropped_quietly_wherever_it_goes() {
    test_kit::quiet_panics(|_| false);
    let dropped = Arc::new(AtomicUsize::new(0));
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let fused = || FusedPool(Arc::clone(&pool), test_kit::Fuse::new(&dropped));
    let refused =
        test_kit::no_unwind(|| Coalescer::<u32, u32, _>::builder(fused()).shards(0).build());
    let error = refused.expect("no unwind").expect_err("zero shards");
    assert!(error.is_zero_shards(), "{error}");
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    assert!(test_kit::no_unwind(|| drop(Coalescer::<u32, u32, _>::builder(fused()))).is_some());
    assert_eq!(dropped.load(Ordering::SeqCst), 2);

    let coalescer = Coalescer::<u32, u32, _>::new(fused());
    let (release, gate) = mpsc::channel::<()>();
    let handle = coalescer
        .submit(1, move || {
            let _ = gate.recv();
            5
        })
        .unwrap();
    assert!(test_kit::no_unwind(move || drop(coalescer)).is_some());
    drop(release);
    assert_eq!(handle.join().map(|v| *v).ok(), Some(5));
    assert!(pool.wait_idle(PATIENCE));
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        3,
        "the job's worker dropped the executor"
    );
    let stats = pool.stats();
    assert_eq!((stats.completed, stats.panicked), (1, 0), "{stats}");
    assert!(stats.is_balanced(), "{stats}");
}
