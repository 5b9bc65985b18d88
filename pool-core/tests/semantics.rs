//! The classic pools' semantics, on real pools: shrinking takes effect while work is queued,
//! outside submissions start in submission order, jobs that must run together never deadlock a
//! pool that has room for them, and every waiter present at an idle moment sees it. Counts and
//! orders only: every wait is for an event, with generous patience.

use pool_core::ThreadPool;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Instant;
use test_kit::{Log, WorkerGate, PATIENCE};

/// A barrier that gives up after `PATIENCE` instead of hanging the test: `arrive` returns whether
/// every party arrived.
struct Rendezvous {
    arrived: Mutex<usize>,
    all_here: Condvar,
    parties: usize,
}

impl Rendezvous {
    fn new(parties: usize) -> Arc<Self> {
        Arc::new(Rendezvous {
            arrived: Mutex::new(0),
            all_here: Condvar::new(),
            parties,
        })
    }

    fn arrive(&self) -> bool {
        let mut arrived = self.arrived.lock().unwrap();
        *arrived += 1;
        self.all_here.notify_all();
        let (arrived, _) = self
            .all_here
            .wait_timeout_while(arrived, PATIENCE, |n| *n < self.parties)
            .unwrap();
        *arrived >= self.parties
    }
}

#[test]
fn shrinking_takes_effect_while_work_is_queued() {
    let (stopped_tx, stopped) = mpsc::channel();
    let stopped_tx = Mutex::new(stopped_tx);
    let pool = ThreadPool::builder()
        .threads(4)
        .on_thread_stop(move |_| {
            let _ = stopped_tx.lock().unwrap().send(());
        })
        .build()
        .unwrap();
    let first = WorkerGate::occupy(&pool, 4);
    let (release_rest, rest_gate) = mpsc::channel::<()>();
    let rest_gate = Arc::new(Mutex::new(rest_gate));
    let threads_seen = Arc::new(Mutex::new(HashSet::new()));
    let queued: Vec<_> = (0..96)
        .map(|_| {
            let (gate, seen) = (Arc::clone(&rest_gate), Arc::clone(&threads_seen));
            pool.submit(move || {
                seen.lock().unwrap().insert(std::thread::current().id());
                let _ = gate.lock().unwrap().recv_timeout(PATIENCE);
            })
            .unwrap()
        })
        .collect();
    pool.set_threads(1).unwrap();
    first.open();
    // Three surplus workers finish their task and retire, although 96 tasks are queued.
    for _ in 0..3 {
        stopped
            .recv_timeout(PATIENCE)
            .expect("a surplus worker kept taking queued work instead of retiring");
    }
    assert_eq!(pool.stats().live_threads, 1);
    assert!(pool.stats().queued >= 95, "{}", pool.stats());
    for _ in 0..96 {
        release_rest.send(()).unwrap();
    }
    for handle in queued {
        handle
            .join_timeout(PATIENCE)
            .expect("a queued task was lost");
    }
    assert_eq!(
        threads_seen.lock().unwrap().len(),
        1,
        "queued tasks ran on several threads"
    );
    pool.shutdown();
    assert!(pool.stats().is_balanced());
}

#[test]
fn one_worker_starts_outside_submissions_in_strict_fifo_order() {
    let pool = ThreadPool::new(1).unwrap();
    let gate = WorkerGate::occupy(&pool, 1);
    let log = Log::default();
    for i in 0..100 {
        let log = log.clone();
        pool.spawn(move || log.push(i)).unwrap();
    }
    gate.open();
    assert!(pool.wait_idle(PATIENCE));
    assert_eq!(log.take(), (0..100).collect::<Vec<_>>());
}

#[test]
fn freed_workers_start_the_earliest_queued_submissions_first() {
    let pool = ThreadPool::new(4).unwrap();
    let gate = WorkerGate::occupy(&pool, 4);
    let (started_tx, started) = mpsc::channel();
    let (release, hold) = mpsc::channel::<()>();
    let hold = Arc::new(Mutex::new(hold));
    for i in 0..12u32 {
        let (started_tx, hold) = (started_tx.clone(), Arc::clone(&hold));
        pool.spawn(move || {
            started_tx.send(i).unwrap();
            let _ = hold.lock().unwrap().recv_timeout(PATIENCE);
        })
        .unwrap();
    }
    gate.open();
    let mut first_four: Vec<u32> = (0..4)
        .map(|_| started.recv_timeout(PATIENCE).unwrap())
        .collect();
    first_four.sort_unstable();
    assert_eq!(first_four, [0, 1, 2, 3]);
    for _ in 0..12 {
        release.send(()).unwrap();
    }
    assert!(pool.wait_idle(PATIENCE));
}

/// threadpool's `test_shrink` scenario: 6 jobs meet the test thread at a 7-party barrier, then 4
/// later jobs meet it at a 5-party barrier. Both barriers must fill.
#[test]
fn jobs_that_must_run_together_fill_their_barriers_on_six_workers() {
    let pool = ThreadPool::new(6).unwrap();
    let (first, second) = (Rendezvous::new(7), Rendezvous::new(5));
    let missed = Arc::new(AtomicUsize::new(0));
    for _ in 0..6 {
        let (first, missed) = (Arc::clone(&first), Arc::clone(&missed));
        pool.spawn(move || {
            if !first.arrive() {
                missed.fetch_add(1, Ordering::SeqCst);
            }
        })
        .unwrap();
    }
    for _ in 0..4 {
        let (second, missed) = (Arc::clone(&second), Arc::clone(&missed));
        pool.spawn(move || {
            if !second.arrive() {
                missed.fetch_add(1, Ordering::SeqCst);
            }
        })
        .unwrap();
    }
    assert!(first.arrive(), "the first barrier never filled");
    assert!(second.arrive(), "the second barrier never filled");
    assert!(pool.wait_idle(PATIENCE));
    assert_eq!(missed.load(Ordering::SeqCst), 0);
}

/// Two workers: j0 and j1 must overlap; a later j2 waits for j0. Starting j2 before j1 would
/// deadlock.
#[test]
fn a_later_job_never_starts_before_an_earlier_one_it_blocks_on_two_workers() {
    for _ in 0..20 {
        let pool = ThreadPool::new(2).unwrap();
        let meet = Rendezvous::new(2);
        let (j0_done_tx, j0_done) = mpsc::channel::<()>();
        let m0 = Arc::clone(&meet);
        let j0 = pool
            .submit(move || {
                let met = m0.arrive();
                j0_done_tx.send(()).unwrap();
                met
            })
            .unwrap();
        let m1 = Arc::clone(&meet);
        let j1 = pool.submit(move || m1.arrive()).unwrap();
        let j2 = pool
            .submit(move || j0_done.recv_timeout(PATIENCE).is_ok())
            .unwrap();
        assert_eq!(j0.join(), Ok(true), "j0 and j1 never overlapped");
        assert_eq!(j1.join(), Ok(true));
        assert_eq!(j2.join(), Ok(true));
    }
}

/// One worker: job k meets the test thread at rendezvous k, and the test thread visits them in
/// order. Starting any job before an earlier one would leave both waiting.
#[test]
fn one_worker_meets_the_caller_at_each_rendezvous_in_order() {
    let pool = ThreadPool::new(1).unwrap();
    let meetings: Vec<_> = (0..10).map(|_| Rendezvous::new(2)).collect();
    let jobs: Vec<_> = meetings
        .iter()
        .map(|meeting| {
            let meeting = Arc::clone(meeting);
            pool.submit(move || meeting.arrive()).unwrap()
        })
        .collect();
    for (k, meeting) in meetings.iter().enumerate() {
        assert!(meeting.arrive(), "job {k} never came to its rendezvous");
    }
    assert!(jobs.into_iter().all(|job| job.join() == Ok(true)));
}

/// threadpool's join generations: one worker runs a job, two threads wait; the first waiter out
/// refills the pool with a job that only ends once the second waiter has returned. The second
/// must see the idle moment it was waiting for, not wait for the next one.
#[test]
fn every_waiter_present_at_an_idle_moment_returns_true() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let (release, hold) = mpsc::channel::<()>();
    pool.spawn(move || {
        let _ = hold.recv_timeout(PATIENCE);
    })
    .unwrap();
    let (refill_release, refill_hold) = mpsc::channel::<()>();
    let refill_hold = Arc::new(Mutex::new(Some(refill_hold)));
    let (returned_tx, returned) = mpsc::channel();
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let (pool, refill_hold, returned_tx) = (
                Arc::clone(&pool),
                Arc::clone(&refill_hold),
                returned_tx.clone(),
            );
            std::thread::spawn(move || {
                let went_idle = pool.wait_idle(PATIENCE);
                // The first one out refills the pool at once.
                if let Some(hold) = refill_hold.lock().unwrap().take() {
                    pool.spawn(move || {
                        let _ = hold.recv_timeout(PATIENCE);
                    })
                    .unwrap();
                }
                returned_tx.send(()).unwrap();
                went_idle
            })
        })
        .collect();
    // Both waiters must be in place before the idle moment (the only precondition here with no
    // event to wait for: they block inside `wait_idle`).
    let deadline = Instant::now() + PATIENCE;
    while pool.idle_waiters() < 2 {
        assert!(
            Instant::now() < deadline,
            "the waiters never started waiting"
        );
        std::thread::yield_now();
    }
    release.send(()).unwrap();
    for _ in 0..2 {
        returned
            .recv_timeout(PATIENCE)
            .expect("a waiter missed the idle moment");
    }
    let _ = refill_release.send(());
    for waiter in waiters {
        assert!(
            waiter.join().unwrap(),
            "a waiter present at the idle moment returned false"
        );
    }
}

/// A task that spawns onto its own worker's deque and then waits for what it spawned must get the
/// parked worker: the push wakes it (pool/README.md, "Why the submitter pays a fence"). Rayon,
/// whose jobs must not block, may leave that worker asleep; here the rendezvous would time out.
#[test]
fn a_task_waiting_for_its_own_spawn_wakes_the_parked_worker() {
    let pool = ThreadPool::new(2).unwrap();
    for round in 0..200 {
        // Both workers parked: the only way the child starts is the spawn's own wake-up.
        assert!(
            pool.wait_idle(PATIENCE),
            "round {round}: the pool never went idle"
        );
        let meet = Rendezvous::new(2);
        let parent = pool
            .submit(move || {
                let child_side = Arc::clone(&meet);
                pool_core::spawn_here(move || {
                    child_side.arrive();
                })
                .expect("spawned from a worker");
                meet.arrive()
            })
            .unwrap();
        assert_eq!(
            parent.join(),
            Ok(true),
            "round {round}: the spawned child never ran beside its waiting parent"
        );
    }
    // The last child may still be returning from its rendezvous.
    assert!(pool.wait_idle(PATIENCE));
    let stats = pool.stats();
    assert_eq!(stats.completed, 400, "{stats:?}");
    assert!(stats.is_balanced(), "{stats:?}");
}
