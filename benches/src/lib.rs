//! Workloads shared by the `compare` program and the criterion benches.
//!
//! Every workload module exposes `pub fn rows(config: &Config) -> Vec<Row>`: it runs our system
//! and each peer that offers the workload, in this process, one after the other, for
//! `config.rounds` rounds, and returns one [`Row`] per figure.

#![deny(missing_docs)]

pub mod workloads;

/// How hard to measure.
#[derive(Clone, Debug)]
pub struct Config {
    /// Smaller sizes and fewer rounds, for CI smoke runs (the whole program well under a minute).
    pub quick: bool,
    /// Rounds per system; each figure is the median of the rounds, with min and max.
    pub rounds: usize,
    /// Cores on this machine (`std::thread::available_parallelism`).
    pub cores: usize,
}

/// The median, min and max of one system's rounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Figure {
    /// The median of the rounds.
    pub median: f64,
    /// The smallest round.
    pub min: f64,
    /// The largest round.
    pub max: f64,
}

impl Figure {
    /// Summarises rounds; `None` for no rounds.
    pub fn from_rounds(rounds: &[f64]) -> Option<Figure> {
        if rounds.is_empty() {
            return None;
        }
        let mut sorted = rounds.to_vec();
        sorted.sort_by(|a, b| a.total_cmp(b));
        Some(Figure {
            median: sorted[sorted.len() / 2],
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        })
    }
}

/// One system's figure in a row.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// The system, e.g. `pool-core`, `rayon-core`, `tokio spawn_blocking`.
    pub system: String,
    /// Whether this is one of ours (the ratio compares our best with the best peer).
    pub ours: bool,
    /// The figure.
    pub figure: Figure,
}

/// One line of the comparison table.
#[derive(Clone, Debug)]
pub struct Row {
    /// What was measured, e.g. `external submit: 1M empty tasks`.
    pub workload: String,
    /// The unit of the figures, e.g. `Mtasks/s`, `µs`, `ns/node`, `B/task`.
    pub unit: String,
    /// Whether a larger figure is better (throughput) or worse (latency, memory).
    pub higher_is_better: bool,
    /// Every system's figure.
    pub measurements: Vec<Measurement>,
    /// Anything the reader needs to interpret the row (target, caveat), may be empty.
    pub note: String,
}

impl Row {
    /// Our best figure divided by the best peer's, oriented so that > 1 means we are ahead.
    pub fn ratio_to_best_peer(&self) -> Option<f64> {
        let pick = |ours: bool| {
            self.measurements
                .iter()
                .filter(|m| m.ours == ours)
                .map(|m| m.figure.median)
                .reduce(|a, b| {
                    if self.higher_is_better == (a >= b) {
                        a
                    } else {
                        b
                    }
                })
        };
        let (ours, peer) = (pick(true)?, pick(false)?);
        if self.higher_is_better {
            Some(ours / peer)
        } else {
            Some(peer / ours)
        }
    }
}
