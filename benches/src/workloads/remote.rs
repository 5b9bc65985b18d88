//! Workload rows for `remote`: the price of crossing a process boundary. pool-remote's round trip
//! and throughput through the apalis engine on SQLite (a temp file) and, when
//! `POOL_REMOTE_PG_URL` is set and benches is built with `--features postgres`, on PostgreSQL,
//! beside the same work on a local pool-core `ThreadPool`.
//!
//! | row | what is timed |
//! |---|---|
//! | remote round trip p50 / p99 | submit one task, wait for its output; sequentially, N samples |
//! | remote throughput | submit a batch of 2,000 tasks (one transaction), until the last output is back |
//!
//! The worker runs in this process (a [`pool_remote::Worker`] on its own threads, 2 pool
//! threads) and talks to the submitter only through the backend, as a worker process would:
//! the figures hold the engine's queries and polling, not process start-up. Poll intervals stay
//! at their defaults (10 ms for the idle worker, 10 ms for the submitter's result watcher), so a
//! round trip costs about one tick of each. Every system is ours, so the rows carry no ratio;
//! the note states remote ÷ local.
//!
//! Not in the default `compare` run (it takes about a minute): `compare --only remote`.

use std::time::Instant;

use pool_core::{Priority, ThreadPool};
use pool_remote::{BoxError, Registry, RemoteExecutor, RemoteTask, Worker};

use crate::peers::TIMEOUT;
use crate::samples::p50_p99;
use crate::{Config, Row};

/// The remote task: as cheap as a task gets, so the rows show the engine's cost alone.
struct Square;

impl RemoteTask for Square {
    const NAME: &'static str = "bench-square";
    type Args = u64;
    type Output = u64;
    fn run(&self, x: u64) -> Result<u64, BoxError> {
        Ok(x.wrapping_mul(x))
    }
}

/// Threads of the worker's pool and of the local reference pool.
const THREADS: usize = 2;

/// One round's figures: round-trip p50 and p99 in µs, throughput in tasks/s.
#[derive(Clone, Copy, Debug)]
struct Figures {
    p50: f64,
    p99: f64,
    throughput: f64,
}

/// The local reference: the same work submitted to a pool-core pool, joined through its handle.
fn local_round(tries: usize, batch: u64) -> Figures {
    let pool = ThreadPool::builder()
        .threads(THREADS)
        .thread_name("remote-ref")
        .build()
        .expect("pool-core pool");
    let square = |x: u64| x.wrapping_mul(x);
    // One task first, so that lazily started threads exist.
    let _ = pool.submit(move || square(1)).expect("submit").join();
    let samples = (0..tries as u64)
        .map(|x| {
            let start = Instant::now();
            let got = pool.submit(move || square(x)).expect("submit").join();
            assert_eq!(got, Ok(square(x)));
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    let (p50, p99) = p50_p99(samples);
    let start = Instant::now();
    let handles: Vec<_> = (0..batch)
        .map(|x| pool.submit(move || square(x)).expect("submit"))
        .collect();
    for (x, h) in (0..batch).zip(handles) {
        assert_eq!(h.join(), Ok(square(x)));
    }
    let throughput = batch as f64 / start.elapsed().as_secs_f64();
    pool.shutdown();
    Figures {
        p50,
        p99,
        throughput,
    }
}

/// One round against the backend at `url`: a fresh queue, an in-process worker, the timed work.
fn remote_round(url: &str, tries: usize, batch: u64) -> Figures {
    // A queue of its own, so that earlier rounds' jobs on a shared server do not count.
    let queue = format!("bench-{}-{}", std::process::id(), ulid_nanos());
    let worker = Worker::builder(url, Registry::new().register(Square))
        .queue(&queue)
        .threads(THREADS)
        .build()
        .expect("remote worker");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = std::thread::spawn(move || {
        worker.run_until(async move {
            let _ = stopped.await;
        })
    });
    let remote = RemoteExecutor::builder(url)
        .queue(&queue)
        .build()
        .expect("remote executor");
    let join = |h: pool_remote::RemoteHandle<u64>| match h.join_timeout(TIMEOUT) {
        Ok(v) => v,
        Err(e) => panic!("remote task: no output within {TIMEOUT:?}: {e:?}"),
    };
    // Warm up: the worker has registered and polled once, the connections are open.
    join(remote.submit::<Square>(1).expect("submit"));
    let samples = (0..tries as u64)
        .map(|x| {
            let start = Instant::now();
            let got = join(remote.submit::<Square>(x).expect("submit"));
            assert_eq!(got, x.wrapping_mul(x));
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    let (p50, p99) = p50_p99(samples);
    let start = Instant::now();
    let handles = remote
        .submit_batch::<Square>((0..batch).map(|x| (Priority::Normal, x)))
        .expect("submit batch");
    for (x, h) in (0..batch).zip(handles) {
        assert_eq!(join(h), x.wrapping_mul(x));
    }
    let throughput = batch as f64 / start.elapsed().as_secs_f64();
    drop(remote);
    let _ = stop.send(());
    running
        .join()
        .expect("worker thread")
        .expect("worker stops cleanly");
    Figures {
        p50,
        p99,
        throughput,
    }
}

/// Nanoseconds since the epoch: unique enough for a queue name within one run.
fn ulid_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// The PostgreSQL URL to measure, and why there is none.
fn postgres_url() -> Result<String, &'static str> {
    let url = std::env::var("POOL_REMOTE_PG_URL")
        .map_err(|_| "PostgreSQL not measured: POOL_REMOTE_PG_URL is not set")?;
    if cfg!(feature = "postgres") {
        Ok(url)
    } else {
        Err("PostgreSQL not measured: build benches with `--features postgres`")
    }
}

/// The rows of this workload family.
pub fn rows(config: &Config) -> Vec<Row> {
    let wanted = [
        "remote round trip p50",
        "remote round trip p99",
        "remote throughput",
    ];
    if !wanted.iter().any(|w| config.wants(w)) {
        return Vec::new();
    }
    let tries = config.pick(200, 20);
    let batch: u64 = config.pick(2_000, 200);
    let rounds = config.rounds.min(3);
    let dir = std::env::temp_dir().join(format!(
        "benches-remote-{}-{}",
        std::process::id(),
        ulid_nanos()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir for the SQLite file");
    let sqlite = format!("sqlite://{}", dir.join("jobs.db").display());
    let postgres = postgres_url();

    let mut systems: Vec<(String, Option<String>)> = vec![
        ("pool-core ThreadPool (local)".into(), None),
        ("pool-remote, SQLite file".into(), Some(sqlite)),
    ];
    if let Ok(url) = &postgres {
        systems.push(("pool-remote, PostgreSQL".into(), Some(url.clone())));
    }
    let mut figures: Vec<Vec<Figures>> = vec![Vec::new(); systems.len()];
    // Round-robin over the systems, so that load from elsewhere spreads over all of them.
    for _ in 0..rounds {
        for ((_, url), got) in systems.iter().zip(figures.iter_mut()) {
            got.push(match url {
                None => local_round(tries, batch),
                Some(url) => remote_round(url, tries, batch),
            });
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    let median = |v: &[f64]| crate::Figure::from_rounds(v).map_or(f64::NAN, |f| f.median);
    let mut base = format!(
        "worker in this process ({THREADS} pool threads, default 10 ms poll intervals), talking to \
         the submitter only through the backend; {rounds} round(s)"
    );
    if let Err(why) = postgres {
        base.push_str("; ");
        base.push_str(why);
    }
    let mut out = Vec::new();
    // (workload, unit, higher is better, the figure, what one round does)
    type Spec = (String, &'static str, bool, fn(&Figures) -> f64, String);
    let specs: [Spec; 3] = [
        (
            "remote round trip p50".into(),
            "µs",
            false,
            |f| f.p50,
            format!("{tries} sequential submit-and-wait samples per round"),
        ),
        (
            "remote round trip p99".into(),
            "µs",
            false,
            |f| f.p99,
            format!("{tries} sequential submit-and-wait samples per round"),
        ),
        (
            format!("remote throughput: {batch} tasks"),
            "tasks/s",
            true,
            |f| f.throughput,
            format!("{batch} tasks submitted as one batch, until the last output is back"),
        ),
    ];
    for (workload, unit, higher, pick, what) in specs {
        let per_system: Vec<Vec<f64>> = figures
            .iter()
            .map(|rounds| rounds.iter().map(pick).collect())
            .collect();
        let local = median(&per_system[0]);
        let price: Vec<String> = systems
            .iter()
            .zip(&per_system)
            .skip(1)
            .map(|((name, _), v)| {
                let ratio = if higher {
                    local / median(v)
                } else {
                    median(v) / local
                };
                format!("{name}: {ratio:.0}× the local pool's cost")
            })
            .collect();
        let mut row = Row::new(workload, unit, higher)
            .with_note(format!("{what}; {}; {base}", price.join(", ")));
        for ((name, _), values) in systems.iter().zip(&per_system) {
            row.push(name.clone(), true, values);
        }
        out.push(row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_round_on_sqlite_returns_every_output() {
        let dir = std::env::temp_dir().join(format!("benches-remote-test-{}", ulid_nanos()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("jobs.db").display());
        let f = remote_round(&url, 3, 20);
        assert!(f.p50 > 0.0 && f.p99 >= f.p50 && f.throughput > 0.0, "{f:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
