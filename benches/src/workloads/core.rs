//! Workload rows for `core`: pool-core's `ThreadPool` against rayon-core, threadpool, tokio and
//! rusty_pool: throughput, latency, memory per queued task and idle CPU.
//!
//! | row | what is timed |
//! |---|---|
//! | external submit | one outside thread submits N empty tasks; until the last has run |
//! | internal spawn | tasks spawning tasks (binary tree; 1k-deep chains); until the last has run |
//! | wake-up latency p50 / p99 | submit after a few ms of quiet until the task starts |
//! | idle CPU | CPU time of a warmed-up, idle 16-worker pool's threads |
//! | memory per queued task | heap bytes and RSS growth per task queued behind blocked workers |
//! | start and stop | a 2 000-worker pool built, a blocking task on every worker, closed |
//!
//! Every pool has the machine's core count of threads (16 for idle CPU, 2 000 for start and
//! stop), is built and closed outside the timed region (inside it for start and stop), and every
//! round waits for all of its tasks on a latch.

mod idle;
mod latency;
mod lifecycle;
mod memory;
mod throughput;

use crate::{Config, Row};

/// The rows of this workload family.
pub fn rows(config: &Config) -> Vec<Row> {
    let mut rows = Vec::new();
    if config.wants("external submit") {
        rows.extend(throughput::external_rows(config));
    }
    if config.wants("internal spawn") {
        rows.extend(throughput::internal_rows(config));
    }
    if config.wants("wake-up latency p50") || config.wants("wake-up latency p99") {
        rows.extend(latency::rows(config));
    }
    if config.wants("idle CPU") {
        rows.extend(idle::rows(config));
    }
    if config.wants("memory per queued empty task, heap")
        || config.wants("memory per queued empty task, RSS")
    {
        rows.extend(memory::rows(config));
    }
    if config.wants("start and stop") {
        rows.extend(lifecycle::rows(config));
    }
    rows
}
