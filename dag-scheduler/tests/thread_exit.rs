//! Runs started or continued while a thread tears down its thread-locals: from a `thread_local!`
//! value's destructor, before or after the scheduler's own thread-local driver state is gone. A
//! run must still give every node an outcome and end (SPEC section 10: never a hang).
//!
//! Each case runs on a thread of its own that ends, and is joined with a generous timeout, so a
//! run that would hang fails the test instead of hanging it.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use dag_scheduler::{Graph, Outcome, RunHandle};
use pool_core::{Executor, InlineExecutor, Job, Priority, Rejected, ThreadPool};
use test_kit::PATIENCE;

/// Nodes of [`fan_graph`].
const FAN_NODES: usize = 1 + 8 + 1 + 16;

/// A root, eight nodes after it (handed over as a batch: deferred by an inline executor), a sink
/// after them, and a chain of 16 after the sink; every node counts itself in `ran`.
fn fan_graph(ran: &Arc<AtomicUsize>) -> Graph {
    let mut b = Graph::builder();
    let count = |ran: &Arc<AtomicUsize>| {
        let ran = Arc::clone(ran);
        move |_: &dag_scheduler::Context<'_>| {
            ran.fetch_add(1, Ordering::SeqCst);
        }
    };
    b.node("root", count(ran));
    for i in 0..8 {
        b.node(format!("mid{i}"), count(ran)).after("root");
    }
    b.node("sink", count(ran))
        .after_all((0..8).map(|i| format!("mid{i}")));
    let mut previous = "sink".to_string();
    for i in 0..16 {
        let name = format!("chain{i}");
        b.node(name.clone(), count(ran)).after(previous.as_str());
        previous = name;
    }
    b.build().unwrap()
}

/// Where the graph in a thread-local's destructor runs.
#[derive(Clone, Copy, Debug)]
enum On {
    Inline,
    Pool,
}

/// When the thread first used the scheduler, relative to the thread-local whose destructor runs
/// a graph. Destructors run in the reverse order of first use: `Before` leaves the scheduler's
/// thread-locals alive in that destructor, `After` has them gone, `Never` makes the destructor
/// their first use.
#[derive(Clone, Copy, Debug)]
enum SchedulerUsed {
    Before,
    After,
    Never,
}

/// Runs a graph when dropped and sends how many nodes ran and whether the run succeeded.
struct RunsOnDrop {
    on: On,
    done: Option<mpsc::Sender<(usize, bool)>>,
}

impl Drop for RunsOnDrop {
    fn drop(&mut self) {
        let Some(done) = self.done.take() else {
            return;
        };
        let ran = Arc::new(AtomicUsize::new(0));
        let graph = fan_graph(&ran);
        let report = match self.on {
            On::Inline => graph.run(&InlineExecutor),
            On::Pool => {
                let pool = ThreadPool::new(2).unwrap();
                graph.run(&pool)
            }
        };
        let _ = done.send((ran.load(Ordering::SeqCst), report.is_success()));
    }
}

thread_local! {
    static RUNS_ON_DROP: RefCell<Option<RunsOnDrop>> = const { RefCell::new(None) };
}

/// Uses the scheduler on this thread (its thread-locals come to life).
fn use_scheduler() {
    let ran = Arc::new(AtomicUsize::new(0));
    assert!(fan_graph(&ran).run(&InlineExecutor).is_success());
    assert_eq!(ran.load(Ordering::SeqCst), FAN_NODES);
}

/// Defect: a run started from a thread-local's destructor, once the scheduler's own thread-locals
/// may be gone, must still run every node and end, inline or on a pool.
#[test]
fn a_run_started_from_a_thread_local_destructor_ends() {
    for on in [On::Inline, On::Pool] {
        for used in [
            SchedulerUsed::Before,
            SchedulerUsed::After,
            SchedulerUsed::Never,
        ] {
            let (done, result) = mpsc::channel();
            let thread = std::thread::spawn(move || {
                if let SchedulerUsed::Before = used {
                    use_scheduler();
                }
                RUNS_ON_DROP.with(|slot| {
                    *slot.borrow_mut() = Some(RunsOnDrop {
                        on,
                        done: Some(done),
                    })
                });
                if let SchedulerUsed::After = used {
                    use_scheduler();
                }
            });
            match result.recv_timeout(PATIENCE) {
                Ok((ran, success)) => {
                    assert_eq!(ran, FAN_NODES, "{on:?}, scheduler used {used:?}");
                    assert!(success, "{on:?}, scheduler used {used:?}");
                }
                Err(_) => panic!("the run in a destructor hung: {on:?}, scheduler used {used:?}"),
            }
            thread.join().unwrap();
        }
    }
}

/// The jobs an [`ExitQueue`] executor holds on each thread, run (`run_on_exit`) or dropped when
/// the thread ends.
struct Parked {
    jobs: Vec<Job>,
    run_on_exit: bool,
}

impl Drop for Parked {
    fn drop(&mut self) {
        // Runs or drops them one by one: a job may park more on a live queue (then the loop
        // takes them), or find the queue gone (then `execute` refuses it).
        while let Some(job) = self.jobs.pop() {
            if self.run_on_exit {
                job();
            } else {
                drop(job);
            }
        }
    }
}

thread_local! {
    static PARKED: RefCell<Parked> = const {
        RefCell::new(Parked { jobs: Vec::new(), run_on_exit: false })
    };
}

/// An executor that parks every job in a thread-local of the calling thread, to be run or
/// dropped only when that thread ends: the run is continued from a thread-local's destructor.
struct ExitQueue {
    run_on_exit: bool,
    parked: Arc<AtomicUsize>,
}

impl Executor for ExitQueue {
    fn execute(&self, job: Job) -> Result<(), Rejected<Job>> {
        self.execute_with_priority(job, Priority::Normal)
    }

    fn execute_with_priority(&self, job: Job, _priority: Priority) -> Result<(), Rejected<Job>> {
        let run_on_exit = self.run_on_exit;
        let job = Mutex::new(Some(job));
        let parked = PARKED.try_with(|parked| {
            let mut parked = parked.borrow_mut();
            parked.run_on_exit = run_on_exit;
            parked.jobs.push(job.lock().unwrap().take().unwrap());
        });
        match parked {
            Ok(()) => {
                self.parked.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            // The thread's queue is gone: refuse (the job comes back, and is cancelled).
            Err(_) => Err(Rejected(job.lock().unwrap().take().unwrap())),
        }
    }
}

/// Defect: a run whose jobs are run or dropped from a thread-local's destructor, as its thread
/// ends, must still decide every node and end.
#[test]
fn a_run_continued_from_a_thread_local_destructor_ends() {
    for run_on_exit in [true, false] {
        for used in [SchedulerUsed::Before, SchedulerUsed::After] {
            let (handed, handle) = mpsc::channel::<(RunHandle, Arc<AtomicUsize>)>();
            let parked = Arc::new(AtomicUsize::new(0));
            let executor_parked = Arc::clone(&parked);
            let thread = std::thread::spawn(move || {
                if let SchedulerUsed::Before = used {
                    use_scheduler();
                }
                // Brings the queue to life before the run, so that `After` drops the
                // scheduler's thread-locals first.
                PARKED.with(|_| {});
                let ran = Arc::new(AtomicUsize::new(0));
                let graph = fan_graph(&ran);
                let run = graph.start(ExitQueue {
                    run_on_exit,
                    parked: executor_parked,
                });
                if let SchedulerUsed::After = used {
                    use_scheduler();
                }
                handed.send((run, ran)).unwrap();
            });
            let (run, ran) = handle.recv_timeout(PATIENCE).expect("started");
            let Ok(report) = run.wait_timeout(PATIENCE) else {
                panic!("a run continued at thread exit hung: run_on_exit {run_on_exit}, {used:?}");
            };
            thread.join().unwrap();
            assert!(parked.load(Ordering::SeqCst) >= 1);
            // Every node decided, and exactly the nodes that ran succeeded.
            let summary = report.summary();
            let decided = summary.succeeded + summary.failed + summary.skipped + summary.cancelled;
            assert_eq!(decided, FAN_NODES, "{used:?}");
            assert_eq!(summary.succeeded, ran.load(Ordering::SeqCst), "{used:?}");
            if run_on_exit {
                // The root ran from the queue's destructor; what it handed over then found the
                // queue gone and was refused, so the rest is cancelled.
                assert_eq!(report.outcome("root"), Some(Outcome::Succeeded), "{used:?}");
            } else {
                assert_eq!(ran.load(Ordering::SeqCst), 0, "{used:?}");
                assert_eq!(report.outcome("root"), Some(Outcome::Cancelled));
            }
            assert_eq!(
                report.outcome("chain15"),
                Some(Outcome::Cancelled),
                "{used:?}"
            );
        }
    }
}

/// Set in the child process of
/// [`a_job_deferred_when_a_node_exits_the_process_is_still_driven`].
const EXIT_CHILD: &str = "DAG_THREAD_EXIT_CHILD";
/// What the deferred node writes to stderr when it runs.
const DEFERRED_RAN: &str = "deferred node ran";

/// Defect: a node that calls `std::process::exit` makes its thread run its thread-local
/// destructors from inside the node's closure, with the driver level that holds the run's
/// deferred jobs still on the stack (it is never returned to). The scheduler's thread-local state
/// was dropped with those jobs in it: their tokens were lost and the nodes never decided, so
/// anything that waited for the run from another thread-local's destructor hung the exit. Its
/// destructor now drives them.
///
/// The child process runs `root -> {exits, deferred}` on an `InlineExecutor`: `exits` runs in
/// place after `root` and `deferred` is deferred to the driver level; `exits` calls
/// `process::exit(0)`.
#[test]
fn a_job_deferred_when_a_node_exits_the_process_is_still_driven() {
    if std::env::var_os(EXIT_CHILD).is_some() {
        let mut b = Graph::builder();
        b.node("root", |_| ());
        b.node("exits", |_| std::process::exit(0)).after("root");
        b.node("deferred", |_| {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "{DEFERRED_RAN}");
        })
        .after("root");
        let _ = b.build().unwrap().run(&InlineExecutor);
        unreachable!("`exits` ended the process");
    }
    let child = test_kit::run_alone(
        "a_job_deferred_when_a_node_exits_the_process_is_still_driven",
        EXIT_CHILD,
    );
    let stderr = String::from_utf8_lossy(&child.stderr);
    assert!(
        child.status.success(),
        "child: {:?}\n{stderr}",
        child.status
    );
    assert!(
        stderr.contains(DEFERRED_RAN),
        "the deferred node never ran; child stderr:\n{stderr}"
    );
}
