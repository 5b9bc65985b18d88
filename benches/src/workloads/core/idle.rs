//! Idle CPU: a pool of 16 workers, warmed up so every thread exists, then left alone; the CPU
//! time its threads use (found by thread name, so nothing else in the process counts).

use std::thread;
use std::time::Duration;

use crate::latch::Latch;
use crate::peers::{Kind, Pool, TIMEOUT};
use crate::procfs::threads_cpu_ns;
use crate::{Config, Row};

const WORKERS: usize = 16;

static WARM: Latch = Latch::new();

/// One idle window; (CPU ms per 10 s, threads seen), or `None` without `/proc`.
fn round(kind: Kind, window: Duration) -> Option<(f64, usize)> {
    let name = format!("idle-{}", kind.tag());
    let pool = Pool::build(kind, WORKERS, &name);
    // Tasks that overlap in time, so that pools that start threads on demand start them all.
    WARM.reset(4 * WORKERS);
    for _ in 0..4 * WORKERS {
        pool.spawn(|| {
            thread::sleep(Duration::from_millis(5));
            WARM.count_down();
        });
    }
    WARM.wait_or_panic(TIMEOUT, "idle warm-up");
    // Let the pool settle (spinning searchers give up, workers park).
    thread::sleep(Duration::from_millis(100));
    let before = threads_cpu_ns(&name);
    thread::sleep(window);
    let after = threads_cpu_ns(&name);
    pool.close();
    let ((before, _), (after, threads)) = (before?, after?);
    let ms = after.saturating_sub(before) as f64 / 1e6;
    Some((ms * 10.0 / window.as_secs_f64(), threads))
}

/// The idle-CPU row.
pub(crate) fn rows(config: &Config) -> Vec<Row> {
    let window = config.pick(Duration::from_secs(2), Duration::from_millis(250));
    let rounds = config.rounds.min(3);
    let mut values = vec![Vec::new(); Kind::ALL.len()];
    let mut seen = vec![0; Kind::ALL.len()];
    for _ in 0..rounds {
        for (i, kind) in Kind::ALL.into_iter().enumerate() {
            if let Some((ms, threads)) = round(kind, window) {
                values[i].push(ms);
                seen[i] = threads;
            }
        }
    }
    let threads: Vec<String> = Kind::ALL
        .iter()
        .zip(&seen)
        .map(|(kind, n)| format!("{} {n}", kind.tag()))
        .collect();
    let mut row = Row::new(
        format!("idle CPU: pool of {WORKERS} workers"),
        "ms/10s",
        false,
    )
    .with_note(format!(
        "CPU time of the pool's own threads over {} ms windows, scaled to 10 s (threads seen: {}); \
         target < 1 ms",
        window.as_millis(),
        threads.join(", ")
    ));
    for (kind, values) in Kind::ALL.iter().zip(&values) {
        row.push(kind.name(), kind.is_ours(), values);
    }
    vec![row]
}
