//! Start and stop: a pool of many workers built, one blocking task run on every worker at once
//! (so that pools that start threads on demand start them all), then closed, until the
//! process's thread count is back where it was. Peers whose close does not join their threads
//! (rayon, rusty_pool) are timed until those threads are gone all the same.
//!
//! What it is for: a classic pool of a thousand threads for blocking I/O, whose start and stop
//! once grew worse than quadratically with its workers (pool-core's `pool/README.md`,
//! "Searching a large pool").

use std::time::{Duration, Instant};

use crate::latch::Latch;
use crate::peers::{Kind, Pool, TIMEOUT};
use crate::procfs::os_threads;
use crate::{Config, Row};

static STARTED: Latch = Latch::new();
static RELEASE: Latch = Latch::new();

/// One round: milliseconds from the build to the last thread gone, or `None` without `/proc`
/// or when the threads did not go within [`TIMEOUT`].
fn round(kind: Kind, workers: usize) -> Option<f64> {
    let baseline = os_threads()?;
    let name = format!("life-{}", kind.tag());
    let start = Instant::now();
    let pool = Pool::build(kind, workers, &name);
    STARTED.reset(workers);
    RELEASE.reset(1);
    for _ in 0..workers {
        pool.spawn(|| {
            STARTED.count_down();
            // Held until every worker holds one: a task per worker at once.
            RELEASE.wait(TIMEOUT);
        });
    }
    STARTED.wait_or_panic(TIMEOUT, "start and stop: a task on every worker");
    RELEASE.count_down();
    pool.close();
    let deadline = Instant::now() + TIMEOUT;
    while os_threads()? > baseline {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    Some(start.elapsed().as_secs_f64() * 1e3)
}

/// The start-and-stop row.
pub(crate) fn rows(config: &Config) -> Vec<Row> {
    let workers = config.pick(2_000, 250);
    let rounds = config.rounds.min(3);
    let mut values = vec![Vec::new(); Kind::ALL.len()];
    for _ in 0..rounds {
        for (i, kind) in Kind::ALL.into_iter().enumerate() {
            values[i].extend(round(kind, workers));
        }
    }
    let mut row = Row::new(
        format!("start and stop: pool of {workers} workers"),
        "ms",
        false,
    )
    .with_note(format!(
        "build, one blocking task on each of the {workers} workers at once, close; until the \
         process's thread count is back (peers that do not join their threads are waited for)"
    ));
    for (kind, values) in Kind::ALL.iter().zip(&values) {
        row.push(kind.name(), kind.is_ours(), values);
    }
    vec![row]
}
