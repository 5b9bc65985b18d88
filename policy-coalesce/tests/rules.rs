//! One test per coalescing rule: latest wins while pending, one follow-up while running, the
//! `Replace` and `Keep` modes, per-handle and per-key cancel, shared outcomes, priority raises.

mod common;

use common::{assert_books, failed, gated_pool};
use policy_coalesce::{CoalesceCancelReason, CoalesceError, Coalescer, Mode, SubmitOptions};
use pool_core::{Priority, ThreadPool};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use test_kit::{Deferred, PATIENCE};

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

#[test]
fn ten_submits_while_pending_run_once_with_the_tenth_closure() {
    let (pool, release) = gated_pool();
    let renders = Coalescer::builder(pool).build().unwrap();
    let runs = counter();
    let handles: Vec<_> = (1..=10)
        .map(|n| {
            let runs = runs.clone();
            renders
                .submit("render", move || {
                    runs.fetch_add(1, Ordering::SeqCst);
                    n
                })
                .unwrap()
        })
        .collect();
    let id = handles[0].id();
    assert!(handles.iter().all(|h| h.id() == id));
    assert!(handles[..9].iter().all(|h| h.superseded()));
    assert!(!handles[9].superseded());
    release.open();
    let flags: Vec<_> = handles
        .into_iter()
        .map(|h| {
            let ran = h.ran_my_closure();
            (ran, *h.join_timeout(PATIENCE).unwrap())
        })
        .collect();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(flags.iter().all(|(_, v)| *v == 10));
    // `ran_my_closure` is read before join; only the tenth may report it.
    assert!(flags[..9].iter().all(|(ran, _)| !ran));
    assert_books(
        &renders,
        |s| (s.submitted, s.executed, s.coalesced, s.superseded, s.keys),
        (10, 1, 9, 9, 0),
    );
}

#[test]
fn the_pending_execution_keeps_its_queue_position() {
    let exec = Arc::new(Deferred::default());
    let coalescer = Coalescer::<&str, u32, _>::new(exec.clone());
    let a = coalescer.submit("a", || 1).unwrap();
    let b = coalescer.submit("b", || 2).unwrap();
    let a2 = coalescer.submit("a", || 3).unwrap();
    assert_eq!(
        exec.len(),
        2,
        "coalescing into a pending execution does not resubmit"
    );
    exec.run_all();
    assert_eq!(*a.join().unwrap(), 3);
    assert_eq!(*a2.join().unwrap(), 3);
    assert_eq!(*b.join().unwrap(), 2);
}

#[test]
fn submit_while_running_queues_exactly_one_follow_up() {
    let pool = ThreadPool::new(2).unwrap();
    let coalescer = Coalescer::builder(pool).build().unwrap();
    let (started_tx, started) = mpsc::channel();
    let (release, gate) = mpsc::channel::<()>();
    let runs = counter();
    let r = runs.clone();
    let first = coalescer
        .submit("k", move || {
            r.fetch_add(1, Ordering::SeqCst);
            started_tx.send(()).unwrap();
            gate.recv().unwrap();
            "first"
        })
        .unwrap();
    started.recv_timeout(PATIENCE).unwrap();
    let follow_ups: Vec<_> = (0..5)
        .map(|i| {
            let runs = runs.clone();
            coalescer
                .submit("k", move || {
                    runs.fetch_add(1, Ordering::SeqCst);
                    if i == 4 {
                        "latest"
                    } else {
                        "stale"
                    }
                })
                .unwrap()
        })
        .collect();
    let key = coalescer.key_stats(&"k").unwrap();
    assert_eq!(key.running, Some(first.id()));
    assert!(key.pending.is_some());
    assert_eq!(key.live_handles, 6);
    assert_ne!(follow_ups[0].id(), first.id());
    release.send(()).unwrap();
    assert_eq!(*first.join_timeout(PATIENCE).unwrap(), "first");
    for h in follow_ups {
        assert_eq!(*h.join_timeout(PATIENCE).unwrap(), "latest");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_books(
        &coalescer,
        |s| (s.executed, s.coalesced, s.superseded),
        (2, 4, 4),
    );
}

#[test]
fn a_key_never_runs_twice_at_once() {
    let pool = ThreadPool::new(2).unwrap();
    let coalescer = Coalescer::builder(pool).build().unwrap();
    let inside = counter();
    let overlaps = counter();
    let mut handles = Vec::new();
    for _ in 0..200 {
        let (inside, overlaps) = (inside.clone(), overlaps.clone());
        handles.push(
            coalescer
                .submit(0u8, move || {
                    if inside.fetch_add(1, Ordering::SeqCst) != 0 {
                        overlaps.fetch_add(1, Ordering::SeqCst);
                    }
                    std::thread::yield_now();
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
                .unwrap(),
        );
    }
    for h in handles {
        h.join_timeout(PATIENCE).unwrap();
    }
    assert_eq!(overlaps.load(Ordering::SeqCst), 0);
    assert!(coalescer.stats().is_balanced());
}

#[test]
fn keep_mode_shares_the_pending_execution_and_drops_the_newcomer() {
    let (pool, release) = gated_pool();
    let saves = Coalescer::builder(pool).mode(Mode::Keep).build().unwrap();
    let first = saves.submit("doc", || "first").unwrap();
    let second = saves.submit("doc", || "second").unwrap();
    assert!(second.kept_existing());
    assert!(!first.kept_existing());
    assert_eq!(first.id(), second.id());
    release.open();
    assert_eq!(*second.join_timeout(PATIENCE).unwrap(), "first");
    assert!(first.ran_my_closure());
    assert_eq!(*first.join().unwrap(), "first");
    assert_books(&saves, |s| (s.executed, s.kept, s.superseded), (1, 1, 0));
}

#[test]
fn keep_mode_while_running_shares_the_running_outcome() {
    let pool = ThreadPool::new(1).unwrap();
    let saves = Coalescer::builder(pool).mode(Mode::Keep).build().unwrap();
    let (started_tx, started) = mpsc::channel();
    let (release, gate) = mpsc::channel::<()>();
    let first = saves
        .submit("doc", move || {
            started_tx.send(()).unwrap();
            gate.recv().unwrap();
            1
        })
        .unwrap();
    started.recv_timeout(PATIENCE).unwrap();
    let runs = counter();
    let r = runs.clone();
    let second = saves
        .submit("doc", move || {
            r.fetch_add(1, Ordering::SeqCst);
            2
        })
        .unwrap();
    assert!(second.kept_existing());
    assert_eq!(second.id(), first.id());
    release.send(()).unwrap();
    assert_eq!(*second.join_timeout(PATIENCE).unwrap(), 1);
    assert_eq!(*first.join().unwrap(), 1);
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_books(&saves, |s| (s.executed, s.kept, s.keys), (1, 1, 0));
}

#[test]
fn replace_mode_asks_the_running_one_to_stop_then_runs_the_new_one() {
    let pool = ThreadPool::new(1).unwrap();
    let search = Coalescer::builder(pool)
        .mode(Mode::Replace)
        .build()
        .unwrap();
    let (started_tx, started) = mpsc::channel();
    let first = search
        .submit_cancellable("query", move |flag| {
            started_tx.send(()).unwrap();
            while !flag.is_cancelled() {
                std::thread::yield_now();
            }
            "interrupted"
        })
        .unwrap();
    started.recv_timeout(PATIENCE).unwrap();
    let second = search.submit("query", || "fresh").unwrap();
    assert_eq!(*first.join_timeout(PATIENCE).unwrap(), "interrupted");
    assert_eq!(*second.join_timeout(PATIENCE).unwrap(), "fresh");
    assert_books(&search, |s| (s.executed, s.replaced), (2, 1));
}

#[test]
fn latest_mode_does_not_disturb_the_running_one() {
    let exec = Arc::new(Deferred::default());
    let coalescer = Coalescer::<u8, bool, _>::new(exec.clone());
    let c = coalescer.clone();
    let inner = Arc::new(std::sync::Mutex::new(None));
    let slot = inner.clone();
    let first = coalescer
        .submit_cancellable(1, move |flag| {
            // Submitted from inside the running closure: a follow-up.
            *slot.lock().unwrap() = Some(c.submit(1, || false).unwrap());
            flag.is_cancelled()
        })
        .unwrap();
    exec.run_all();
    assert!(!*first.join().unwrap());
    let follow_up = inner.lock().unwrap().take().unwrap();
    assert!(!*follow_up.join().unwrap());
    assert_eq!(coalescer.stats().executed, 2);
}

#[test]
fn a_panic_reaches_every_sharer() {
    let (pool, release) = gated_pool();
    let coalescer = Coalescer::<&str, u32, _>::builder(pool).build().unwrap();
    let handles: Vec<_> = (0..3)
        .map(|i| {
            coalescer
                .submit("k", move || {
                    if i == 2 {
                        panic!("render failed at {i}");
                    }
                    i
                })
                .unwrap()
        })
        .collect();
    release.open();
    for h in handles {
        assert_eq!(
            failed(h).to_string(),
            "the coalesced execution panicked: render failed at 2"
        );
    }
    assert_books(
        &coalescer,
        |s| (s.executed, s.panicked, s.completed),
        (1, 1, 0),
    );
}

#[test]
fn cancel_by_one_of_two_sharers_does_not_cancel_the_run() {
    let (pool, release) = gated_pool();
    let coalescer = Coalescer::builder(pool).build().unwrap();
    let a = coalescer.submit("k", || 1).unwrap();
    let b = coalescer.submit("k", || 2).unwrap();
    assert!(a.cancel());
    assert!(!a.cancel(), "a second cancel is a no-op");
    assert!(a.is_cancelled() && a.is_finished());
    release.open();
    assert_eq!(*b.join_timeout(PATIENCE).unwrap(), 2);
    assert_eq!(
        a.join().unwrap_err(),
        CoalesceError::Cancelled(CoalesceCancelReason::Requested)
    );
    let stats = coalescer.stats();
    assert_eq!((stats.executed, stats.cancelled), (1, 0));
}

#[test]
fn cancel_by_every_sharer_cancels_the_execution() {
    let (pool, release) = gated_pool();
    let coalescer = Coalescer::builder(pool).build().unwrap();
    let runs = counter();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let runs = runs.clone();
            coalescer
                .submit("k", move || runs.fetch_add(1, Ordering::SeqCst))
                .unwrap()
        })
        .collect();
    assert!(handles.iter().all(|h| h.cancel()));
    assert_eq!(
        coalescer.stats().keys,
        0,
        "a cancelled key leaves the map at once"
    );
    release.open();
    assert!(coalescer.executor().wait_idle(PATIENCE));
    for h in handles {
        assert!(h.join().unwrap_err().is_cancelled());
    }
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_books(
        &coalescer,
        |s| (s.executed, s.cancelled, s.superseded),
        (0, 1, 2),
    );
}

#[test]
fn cancel_after_start_raises_the_flag_only_when_every_handle_cancelled() {
    let pool = ThreadPool::new(1).unwrap();
    let coalescer = Coalescer::builder(pool).mode(Mode::Keep).build().unwrap();
    let (step_tx, step) = mpsc::channel();
    let (release, gate) = mpsc::channel::<()>();
    let a = coalescer
        .submit_cancellable("k", move |flag| {
            step_tx.send(()).unwrap(); // started
            gate.recv().unwrap();
            let after_one = flag.is_cancelled();
            step_tx.send(()).unwrap(); // checked after the first cancel
            gate.recv().unwrap();
            (after_one, flag.is_cancelled())
        })
        .unwrap();
    step.recv_timeout(PATIENCE).unwrap();
    let b = coalescer.submit_cancellable("k", |_| (true, true)).unwrap(); // Keep: shares `a`
    assert!(!a.cancel(), "too late to prevent the start");
    release.send(()).unwrap();
    step.recv_timeout(PATIENCE).unwrap();
    assert!(!b.cancel());
    release.send(()).unwrap();
    assert_eq!(*a.join_timeout(PATIENCE).unwrap(), (false, true));
    assert_eq!(*b.join().unwrap(), (false, true));
}

#[test]
fn cancel_key_cancels_for_everyone() {
    let (pool, release) = gated_pool();
    let coalescer = Coalescer::builder(pool).build().unwrap();
    let handles: Vec<_> = (0..4)
        .map(|i| coalescer.submit("k", move || i).unwrap())
        .collect();
    let other = coalescer.submit("other", || 9).unwrap();
    assert!(coalescer.cancel_key(&"k"));
    assert!(!coalescer.cancel_key(&"k"), "nothing left to cancel");
    assert!(coalescer.key_stats(&"k").is_none());
    release.open();
    for h in handles {
        assert_eq!(
            failed(h),
            CoalesceError::Cancelled(CoalesceCancelReason::Key)
        );
    }
    assert_eq!(*other.join_timeout(PATIENCE).unwrap(), 9);
    assert!(coalescer.stats().is_balanced());
}

#[test]
fn cancel_key_stops_a_running_execution_cooperatively() {
    let pool = ThreadPool::new(1).unwrap();
    let coalescer = Coalescer::builder(pool).build().unwrap();
    let (started_tx, started) = mpsc::channel();
    let h = coalescer
        .submit_cancellable(7u32, move |flag| {
            started_tx.send(()).unwrap();
            let mut spins = 0u64;
            while !flag.is_cancelled() {
                spins += 1;
                std::thread::yield_now();
            }
            spins
        })
        .unwrap();
    started.recv_timeout(PATIENCE).unwrap();
    assert!(coalescer.cancel_key(&7));
    assert!(h.join_timeout(PATIENCE).is_ok());
}

#[test]
fn the_map_empties_when_work_is_done() {
    let pool = ThreadPool::new(2).unwrap();
    let coalescer = Coalescer::builder(pool).build().unwrap();
    let handles: Vec<_> = (0..1000u32)
        .map(|i| coalescer.submit(i % 97, move || i).unwrap())
        .collect();
    for h in handles {
        h.join_timeout(PATIENCE).unwrap();
    }
    assert_books(&coalescer, |s| (s.keys, s.pending, s.running), (0, 0, 0));
}

#[test]
fn a_shut_down_executor_hands_the_closure_back() {
    let pool = ThreadPool::new(1).unwrap();
    pool.shutdown();
    let coalescer = Coalescer::builder(pool).build().unwrap();
    let refused = coalescer.submit("k", || 41).unwrap_err();
    assert_eq!((refused.into_inner())(), 41);
    let refused = coalescer.submit_cancellable("k", |_| 5).unwrap_err();
    let _closure_is_ours_again = refused.into_inner();
    assert_books(&coalescer, |s| (s.submitted, s.rejected, s.keys), (2, 2, 0));
}

#[test]
fn a_refused_follow_up_resolves_every_sharer() {
    let exec = Arc::new(Deferred::default());
    let coalescer = Coalescer::<u8, u8, _>::new(exec.clone());
    let c = coalescer.clone();
    let e = exec.clone();
    let follow_up = Arc::new(std::sync::Mutex::new(Vec::new()));
    let f = follow_up.clone();
    let first = coalescer
        .submit(1, move || {
            f.lock().unwrap().push(c.submit(1, || 2).unwrap());
            f.lock().unwrap().push(c.submit(1, || 3).unwrap());
            e.close(); // the follow-up's dispatch at the end of this run is refused
            1
        })
        .unwrap();
    exec.run_all();
    assert_eq!(*first.join().unwrap(), 1);
    for h in follow_up.lock().unwrap().drain(..) {
        assert_eq!(failed(h), CoalesceError::Rejected);
    }
    assert_books(&coalescer, |s| (s.rejected, s.keys), (1, 0));
}

#[test]
fn a_job_the_executor_drops_resolves_every_sharer() {
    let exec = Arc::new(Deferred::default());
    let coalescer = Coalescer::<u8, u8, _>::new(exec.clone());
    let a = coalescer.submit(1, || 1).unwrap();
    let b = coalescer.submit(1, || 2).unwrap();
    assert_eq!(exec.drop_all(), 1);
    for h in [a, b] {
        assert_eq!(
            h.join().unwrap_err(),
            CoalesceError::Cancelled(CoalesceCancelReason::Dropped)
        );
    }
    assert_books(&coalescer, |s| (s.cancelled, s.keys), (1, 0));
}

#[test]
fn shutdown_now_on_the_pool_resolves_queued_executions() {
    let (pool, release) = gated_pool();
    let pool = Arc::new(pool);
    let coalescer = Coalescer::builder(pool.clone()).build().unwrap();
    let handles: Vec<_> = (0..3u32)
        .map(|i| coalescer.submit(i, move || i).unwrap())
        .collect();
    std::thread::spawn(move || release.open());
    pool.shutdown_now();
    for h in handles {
        // Each either ran (the worker reached it first) or was discarded; none hangs.
        match h.join_timeout(PATIENCE) {
            Ok(_)
            | Err(policy_coalesce::CoalesceJoinTimeoutError::Failed(CoalesceError::Cancelled(_))) =>
                {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_books(&coalescer, |s| s.keys, 0);
}

#[test]
fn priority_is_the_max_of_the_submitters_and_never_lowered() {
    let exec = Arc::new(Deferred::default());
    let coalescer = Coalescer::<&str, u32, _>::new(exec.clone());
    let low = SubmitOptions::new().priority(Priority::Low);
    let high = SubmitOptions::new().priority(Priority::High);
    let a = coalescer.submit_with("k", low, || 1).unwrap();
    let b = coalescer.submit_with("k", high, || 2).unwrap();
    let c = coalescer.submit_with("k", low, || 3).unwrap();
    assert_eq!(exec.priorities(), vec![Priority::Low, Priority::High]);
    assert_eq!(
        coalescer.key_stats(&"k").unwrap().pending.unwrap().1,
        Priority::High
    );
    // The high-priority job is reached first and runs the execution; the low one is stale.
    assert!(exec.run_at(1));
    assert_eq!(coalescer.stats().executed, 1);
    assert!(exec.run_next());
    for h in [a, b, c] {
        assert_eq!(*h.join().unwrap(), 3);
    }
    assert_books(&coalescer, |s| s.executed, 1);
}

#[test]
fn a_follow_up_is_dispatched_at_the_max_priority() {
    let exec = Arc::new(Deferred::default());
    let coalescer = Coalescer::<u8, u8, _>::new(exec.clone());
    let c = coalescer.clone();
    let first = coalescer
        .submit(1, move || {
            let options = SubmitOptions::new().priority(Priority::Critical);
            drop(c.submit(1, || 2).unwrap());
            drop(c.submit_with(1, options, || 3).unwrap());
            1
        })
        .unwrap();
    assert!(exec.run_next());
    assert_eq!(exec.priorities(), vec![Priority::Critical]);
    exec.run_all();
    assert_eq!(*first.join().unwrap(), 1);
    assert_eq!(coalescer.stats().executed, 2);
}

#[test]
fn priority_raises_can_be_turned_off() {
    let exec = Arc::new(Deferred::default());
    let coalescer = Coalescer::<u8, u8, _>::builder(exec.clone())
        .priority_raises(false)
        .build()
        .unwrap();
    let _a = coalescer.submit(1, || 1).unwrap();
    let high = SubmitOptions::new().priority(Priority::Critical);
    let _b = coalescer.submit_with(1, high, || 2).unwrap();
    assert_eq!(exec.len(), 1);
    exec.run_all();
}

#[test]
fn handles_can_be_awaited() {
    let (pool, release) = gated_pool();
    let coalescer = Coalescer::builder(pool).build().unwrap();
    let a = coalescer.submit("k", || "x").unwrap();
    let b = coalescer.submit("k", || "y").unwrap();
    std::thread::spawn(move || release.open());
    let (va, vb) = pollster::block_on(async move { (a.await, b.await) });
    assert_eq!((*va.unwrap(), *vb.unwrap()), ("y", "y"));
}

#[test]
fn join_cloned_returns_an_owned_value() {
    let coalescer = Coalescer::<u8, Vec<u8>, _>::new(pool_core::InlineExecutor);
    let v = coalescer
        .submit(1, || vec![1, 2])
        .unwrap()
        .join_cloned()
        .unwrap();
    assert_eq!(v, vec![1, 2]);
}

#[test]
fn builder_rejects_bad_shard_counts() {
    let err = Coalescer::<u8, u8, _>::builder(pool_core::InlineExecutor)
        .shards(1 << 20)
        .build()
        .unwrap_err();
    assert!(err.is_too_many_shards());
    assert!(err.to_string().contains("`shards`"));
    assert!(Coalescer::<u8, u8, _>::builder(pool_core::InlineExecutor)
        .shards(3)
        .build()
        .is_ok());
}

#[test]
fn spawned_submissions_coalesce_and_keep_the_execution_alive() {
    let exec = Arc::new(Deferred::default());
    let coalescer = Coalescer::<u8, u8, _>::new(exec.clone());
    let runs = counter();
    for i in 0..5u8 {
        let runs = runs.clone();
        coalescer
            .spawn(1, SubmitOptions::new(), move || {
                runs.fetch_add(1, Ordering::SeqCst);
                i
            })
            .unwrap();
    }
    let handle = coalescer.submit(1, || 9).unwrap();
    assert!(handle.cancel(), "the handle detaches");
    assert_eq!(coalescer.key_stats(&1).unwrap().live_handles, 5);
    assert_eq!(exec.run_all(), 1);
    // The spawned submitters never cancelled, so the execution ran (with the latest closure,
    // the handle's, which was installed before it detached).
    assert_eq!(coalescer.stats().executed, 1);
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_books(
        &coalescer,
        |s| (s.submitted, s.superseded, s.keys),
        (6, 5, 0),
    );
}

#[test]
fn the_public_types_can_cross_threads() {
    fn send_sync<X: Send + Sync>() {}
    send_sync::<Coalescer<String, Vec<u8>, ThreadPool>>();
    send_sync::<policy_coalesce::CoalescedHandle<Vec<u8>>>();
    send_sync::<policy_coalesce::CoalesceStats>();
    send_sync::<CoalesceError>();
    let coalescer = Coalescer::<u8, u8, _>::new(pool_core::InlineExecutor);
    let handle = std::thread::spawn(move || coalescer.submit(1, || 5).unwrap())
        .join()
        .unwrap();
    assert_eq!(*handle.join().unwrap(), 5);
}
