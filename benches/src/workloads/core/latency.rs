//! Wake-up latency: the pool has been idle long enough for its workers to park; one task is
//! submitted; how long until it starts running.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::peers::{Kind, Pool, TIMEOUT};
use crate::samples::p50_p99;
use crate::{Config, Row};

/// `tries` wake-ups after `idle` of quiet each; (p50, p99) in µs.
fn round(pool: &Pool, tries: usize, idle: Duration) -> (f64, f64) {
    let (tx, rx) = mpsc::channel::<Instant>();
    let mut samples = Vec::with_capacity(tries);
    for _ in 0..tries {
        thread::sleep(idle);
        let tx = tx.clone();
        let submitted = Instant::now();
        pool.spawn(move || {
            let _ = tx.send(Instant::now());
        });
        let started = rx.recv_timeout(TIMEOUT).expect("the task never started");
        samples.push(started.duration_since(submitted).as_secs_f64() * 1e6);
    }
    p50_p99(samples)
}

/// The p50 and p99 rows.
pub(crate) fn rows(config: &Config) -> Vec<Row> {
    let tries = config.pick(2_000, 200);
    let idle = config.pick(Duration::from_millis(2), Duration::from_millis(1));
    let rounds = config.rounds.min(3);
    let mut p50 = vec![Vec::new(); Kind::ALL.len()];
    let mut p99 = vec![Vec::new(); Kind::ALL.len()];
    for _ in 0..rounds {
        for (i, kind) in Kind::ALL.into_iter().enumerate() {
            let pool = Pool::build(kind, config.cores, &format!("lat-{}", kind.tag()));
            // One task first, so that lazily started threads exist.
            round(&pool, 1, Duration::ZERO);
            let (a, b) = round(&pool, tries, idle);
            p50[i].push(a);
            p99[i].push(b);
            pool.close();
        }
    }
    let note = format!(
        "{tries} tries per round, each after {} ms idle; figure = median over {rounds} rounds",
        idle.as_millis()
    );
    let mut out = Vec::new();
    for (label, values, target) in [("p50", &p50, "<= 5 µs"), ("p99", &p99, "<= 50 µs")] {
        let mut row = Row::new(format!("wake-up latency {label}"), "µs", false).with_note(format!(
            "{note}; target {target} and not behind the best peer"
        ));
        for (kind, values) in Kind::ALL.iter().zip(values.iter()) {
            row.push(kind.name(), kind.is_ours(), values);
        }
        out.push(row);
    }
    out
}
