//! A submitter and three worker processes on one backend: a 50-node graph of remote tasks and
//! 10k prioritized jobs; one worker is SIGKILLed midway; the books must balance.
//!
//! ```text
//! cargo run -p pool-remote --example cluster                     # SQLite file in a temp dir
//! cargo run -p pool-remote --features postgres --example cluster -- postgres://user@host/db
//! bash pool-remote/ci/with-postgres.sh cargo run -p pool-remote --features postgres --example cluster
//! ```
//!
//! The binary is both roles: without arguments (or with a backend URL) it is the submitter,
//! which starts `cluster worker <url> <queue> <name>` three times. It exits non-zero when the
//! books do not balance (submitted = completed + failed + cancelled, and the backend agrees) or
//! the graph's outputs are wrong.

use std::error::Error;
use std::io::Read;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pool_core::Priority;
use pool_remote::{
    BoxError, Registry, RemoteError, RemoteExecutor, RemoteGraph, RemoteHandle, RemoteTask, Worker,
};

/// A graph node's work: its own number plus its inputs (so a wrong or lost input shows).
struct Mix;
impl RemoteTask for Mix {
    const NAME: &'static str = "mix";
    type Args = (u64, Vec<u64>);
    type Output = u64;
    fn run(&self, (node, inputs): (u64, Vec<u64>)) -> Result<u64, BoxError> {
        Ok(mix(node, &inputs))
    }
}

fn mix(node: u64, inputs: &[u64]) -> u64 {
    node + inputs.iter().sum::<u64>()
}

/// One of the 10k jobs: returns its id; one in a thousand fails on every attempt (by design,
/// so the books have a failed column).
struct Job;
impl RemoteTask for Job {
    const NAME: &'static str = "job";
    type Args = u64;
    type Output = u64;
    fn run(&self, id: u64) -> Result<u64, BoxError> {
        if id % 1000 == 999 {
            return Err(format!("job {id} fails by design").into());
        }
        Ok(id)
    }
}

const JOBS: u64 = 10_000;
const LAYERS: u64 = 5;
const WIDTH: u64 = 10;
const WORKERS: usize = 3;

fn main() -> Result<ExitCode, Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [role, url, queue, name] if role == "worker" => work(url, queue, name),
        // No argument: the server `pool-remote/ci/with-postgres.sh` started, or else a fresh
        // SQLite file.
        [] => match std::env::var("POOL_REMOTE_PG_URL") {
            Ok(url) => submit(&url),
            Err(_) => {
                let dir = std::env::temp_dir()
                    .join(format!("pool-remote-cluster-{}", std::process::id()));
                std::fs::create_dir_all(&dir)?;
                submit(&format!("sqlite://{}", dir.join("jobs.db").display()))
            }
        },
        [url] => submit(url),
        _ => Err("usage: cluster [backend-url] | cluster worker <url> <queue> <name>".into()),
    }
}

/// The worker role: run tasks until SIGTERM, then stop gracefully and print what it did.
///
/// A worker whose engine loop fails (the backend refused a poll: SQLite can answer "database
/// is locked" at once under heavy contention, whatever the busy timeout) is started again, as
/// a supervisor would, under a new name: the jobs the old name had claimed then go back to
/// the queue once that name misses its heartbeats, instead of staying claimed by a name that
/// is still alive.
fn work(url: &str, queue: &str, name: &str) -> Result<ExitCode, Box<dyn Error>> {
    for restart in 0.. {
        let this = if restart == 0 {
            name.to_owned()
        } else {
            format!("{name}-restart{restart}")
        };
        let worker = Worker::builder(url, Registry::new().register(Mix).register(Job))
            .name(&this)
            .queue(queue)
            .threads(2)
            // A dead worker's jobs go back to the queue after about 5 s; long enough that a
            // loaded machine's live workers are not taken for dead.
            .heartbeat(Duration::from_secs(1))
            .missed_heartbeats(5)
            // Fewer, larger claims: every claim is a write, and writers queue for SQLite's lock.
            .batch(64)
            .poll_interval(Duration::from_millis(50))
            .build()?;
        match worker.run_until_signal() {
            Ok(report) => {
                println!(
                    "{this}: succeeded {} failed {} refused {}",
                    report.succeeded, report.failed, report.refused
                );
                return Ok(ExitCode::SUCCESS);
            }
            Err(e @ RemoteError::Backend { .. }) if restart < 5 => {
                eprintln!("{this}: {e}; starting again");
            }
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the loop returns")
}

fn submit(url: &str) -> Result<ExitCode, Box<dyn Error>> {
    let start = Instant::now();
    let say = |what: &str| println!("[{:>6.2?}] {what}", start.elapsed());
    // A queue of its own: a shared server's earlier runs do not count in the books.
    let queue = format!("cluster-{}", std::process::id());
    let remote = Arc::new(
        RemoteExecutor::builder(url)
            .queue(&queue)
            .max_attempts(3)
            .poll_interval(Duration::from_millis(20))
            .build()?,
    );
    let mut workers = Workers(
        (0..WORKERS)
            .map(|i| {
                Command::new(std::env::current_exe()?)
                    .args(["worker", url, &queue, &format!("worker-{i}")])
                    .stdout(Stdio::piped())
                    .spawn()
            })
            .collect::<Result<_, _>>()?,
    );
    say(&format!("{WORKERS} workers started on {url}"));

    // The graph: 5 layers of 10 remote nodes, each after two nodes of the layer above.
    let mut builder = RemoteGraph::builder(Arc::clone(&remote));
    let mut keys = Vec::new();
    for layer in 0..LAYERS {
        for k in 0..WIDTH {
            let inputs: Vec<_> = if layer == 0 {
                Vec::new()
            } else {
                let above = (layer - 1) * WIDTH;
                vec![
                    keys[(above + k) as usize],
                    keys[(above + (k + 1) % WIDTH) as usize],
                ]
            };
            let node = layer * WIDTH + k;
            let reads = inputs.clone();
            let added = builder
                .remote::<Mix>(format!("n{layer}.{k}"), move |cx| {
                    (
                        node,
                        reads
                            .iter()
                            .map(|key| *cx.get(*key).expect("a dependency"))
                            .collect(),
                    )
                })
                .after_all(inputs)
                .key();
            keys.push(added);
        }
    }
    let graph = builder.build()?;
    let graph_run = std::thread::spawn(move || {
        let report = graph.run_timeout(Duration::from_secs(300));
        (graph, report)
    });

    // 10k jobs at every level; the last 100 are Idle, served last, and cancelled after the kill
    // (those still unclaimed then).
    let handles: Vec<RemoteHandle<u64>> = remote.submit_batch::<Job>((0..JOBS).map(|id| {
        let level = if id >= JOBS - 100 {
            Priority::Idle
        } else {
            Priority::ALL[(id % 5) as usize]
        };
        (level, id)
    }))?;
    say(&format!("{JOBS} jobs submitted"));

    // SIGKILL a busy worker once 3000 jobs are done: it holds claimed jobs, which the others
    // pick up once it has missed its heartbeats (at-least-once).
    let deadline = Instant::now() + Duration::from_secs(300);
    while done(&remote)? < 3000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut victim = workers.0.remove(0);
    let killed = victim.kill();
    victim.wait()?;
    killed?;
    say(&format!(
        "worker-0 killed (SIGKILL) with {} jobs done",
        done(&remote)?
    ));
    let cancelled = handles[(JOBS - 100) as usize..]
        .iter()
        .map(|h| h.cancel())
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|won| *won)
        .count();
    say(&format!(
        "{cancelled} Idle jobs cancelled before a worker claimed them"
    ));

    let mut wrong = 0;
    for (id, h) in (0..JOBS).zip(handles) {
        match h.join_timeout(Duration::from_secs(300)) {
            Ok(value) if value == id && id % 1000 != 999 => {}
            Err(Err(e)) if e.is_task_failure() && id % 1000 == 999 => {}
            Err(Err(e)) if e.is_cancelled() && id >= JOBS - 100 => {}
            other => {
                eprintln!("job {id}: unexpected {other:?}");
                wrong += 1;
            }
        }
    }
    say("every job has its outcome");
    let (graph, report) = graph_run.join().map_err(|_| "the graph thread panicked")?;
    say("graph finished");

    // The graph's outputs, recomputed here.
    let mut expected = Vec::new();
    for node in 0..LAYERS * WIDTH {
        let (layer, k) = (node / WIDTH, node % WIDTH);
        let inputs: Vec<u64> = if layer == 0 {
            Vec::new()
        } else {
            let above = ((layer - 1) * WIDTH) as usize;
            vec![
                expected[above + k as usize],
                expected[above + ((k + 1) % WIDTH) as usize],
            ]
        };
        expected.push(mix(node, &inputs));
    }
    let graph_ok = keys
        .iter()
        .zip(&expected)
        .all(|(key, want)| report.output(*key) == Some(want));

    let stats = remote.stats();
    let counts = remote.backend_counts()?;
    let count = |s: &str| counts.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
    let balanced = stats.outstanding == 0
        && stats.submitted == stats.completed + stats.failed + stats.cancelled
        && (count("Done"), count("Failed"), count("Killed"))
            == (stats.completed, stats.failed, stats.cancelled);
    println!("\nbooks (this submitter): submitted {} = completed {} + failed {} + cancelled {}  (outstanding {})",
        stats.submitted, stats.completed, stats.failed, stats.cancelled, stats.outstanding);
    println!(
        "backend, all processes: {counts:?}; done after a re-run: {}",
        remote.backend_done_after_retry()?
    );
    let summary = report.summary();
    println!(
        "graph: {} nodes, {} succeeded, {} failed, {} skipped, {} cancelled in {:?}; outputs {}",
        report.len(),
        summary.succeeded,
        summary.failed,
        summary.skipped,
        summary.cancelled,
        report.elapsed().unwrap_or_default(),
        if graph_ok { "correct" } else { "WRONG" },
    );
    for (node, failure) in report.failures() {
        println!("  node {node} failed: {failure}");
    }
    println!(
        "critical path: {}",
        graph.graph().critical_path().join(" -> ")
    );
    let trace = std::env::temp_dir().join(format!("{queue}.trace.json"));
    std::fs::write(&trace, report.to_chrome_trace())?;
    println!(
        "Chrome trace (open in ui.perfetto.dev): {}",
        trace.display()
    );

    let mut stopped = true;
    for worker in workers.0.drain(..) {
        stopped &= stop(worker)?;
    }
    say("workers stopped");

    let problems: Vec<&str> = [
        (!balanced, "the books do not balance"),
        (!graph_ok, "the graph's outputs are wrong"),
        (wrong > 0, "some jobs had an unexpected outcome"),
        (!stopped, "a worker did not stop gracefully"),
    ]
    .into_iter()
    .filter_map(|(bad, what)| bad.then_some(what))
    .collect();
    if problems.is_empty() {
        println!("the books balance");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("FAILED: {}", problems.join("; "));
        Ok(ExitCode::FAILURE)
    }
}

/// The worker processes: those still here when the submitter returns (an error, say) are
/// killed, so no worker outlives the example.
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for worker in &mut self.0 {
            let _ = worker.kill();
            let _ = worker.wait();
        }
    }
}

/// SIGTERM (no new claims, running jobs finish), then up to 60 s for the exit; prints the
/// worker's own count. `false` if it had to be killed or failed.
fn stop(mut worker: Child) -> Result<bool, Box<dyn Error>> {
    Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = worker.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            eprintln!("worker {} did not stop within 60 s: killed", worker.id());
            let killed = worker.kill();
            worker.wait()?;
            killed?;
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    if let Some(mut stdout) = worker.stdout.take() {
        stdout.read_to_string(&mut out)?;
    }
    print!("{out}");
    Ok(status.success())
}

/// Jobs of the queue the backend counts as done, from every process.
fn done(remote: &RemoteExecutor) -> Result<u64, Box<dyn Error>> {
    let counts = remote.backend_counts()?;
    Ok(counts
        .iter()
        .find(|(s, _)| s == "Done")
        .map_or(0, |(_, n)| *n))
}
