//! Workloads shared by the `compare` program and the criterion benches.
//!
//! Every workload module exposes `pub fn rows(config: &Config) -> Vec<Row>`: it runs our system
//! and each peer that offers the workload, in this process, one after the other, for
//! `config.rounds` rounds, and returns one [`Row`] per figure. The `compare` binary prints the
//! rows as a table (see [`render_table`]) and as JSON (see [`render_json`]).
//!
//! ```
//! use benches::{Figure, Measurement, Row};
//!
//! let row = Row {
//!     workload: "external submit: 1M empty tasks".into(),
//!     unit: "Mtasks/s".into(),
//!     higher_is_better: true,
//!     measurements: vec![
//!         Measurement::new("pool-core spawn", true, Figure::from_rounds(&[6.0, 5.0, 7.0]).unwrap()),
//!         Measurement::new("threadpool", false, Figure::from_rounds(&[3.0]).unwrap()),
//!     ],
//!     note: String::new(),
//! };
//! assert_eq!(row.ratio_to_best_peer(), Some(2.0));
//! assert!(benches::render_json(1, &[row]).contains("\"ratio_to_best_peer\": 2"));
//! ```
//!
//! The crate installs a counting global allocator ([`heap`]) so that the memory rows can report
//! the heap bytes a queued task really costs; counting is off (one relaxed load per allocation)
//! except inside [`heap::measure`].

#![deny(missing_docs, missing_debug_implementations)]
#![warn(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod heap;
pub mod latch;
pub mod peers;
pub mod procfs;
mod report;
pub mod samples;
pub mod workloads;

pub use report::{render_json, render_table};

#[global_allocator]
static ALLOCATOR: heap::CountingAllocator = heap::CountingAllocator;

/// How hard to measure.
///
/// # Examples
///
/// ```
/// let config = benches::Config::new(true, None);
/// assert!(config.quick && config.rounds >= 1 && config.cores >= 1);
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    /// Smaller sizes and fewer rounds, for CI smoke runs (the whole program well under a minute).
    pub quick: bool,
    /// Rounds per system; each figure is the median of the rounds, with min and max.
    pub rounds: usize,
    /// Cores on this machine (`std::thread::available_parallelism`).
    pub cores: usize,
    /// `--only NAME` when NAME names no whole family: only workloads whose name contains it
    /// (case-insensitive) are wanted; a family may skip the others early with
    /// [`wants`](Self::wants), and `compare` drops the rest of its rows.
    pub only: Option<String>,
}

impl Config {
    /// A configuration for this machine: `rounds` defaults to 1 when `quick`, else 5.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(benches::Config::new(false, Some(3)).rounds, 3);
    /// assert_eq!(benches::Config::new(false, None).rounds, 5);
    /// ```
    pub fn new(quick: bool, rounds: Option<usize>) -> Config {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let rounds = rounds.unwrap_or(if quick { 1 } else { 5 }).max(1);
        Config {
            quick,
            rounds,
            cores,
            only: None,
        }
    }

    /// Whether the workload named `workload` is wanted under [`only`](Self::only).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut config = benches::Config::new(true, None);
    /// assert!(config.wants("wake-up latency p50"));
    /// config.only = Some("Wake-Up".into());
    /// assert!(config.wants("wake-up latency p50"));
    /// assert!(!config.wants("idle CPU"));
    /// ```
    pub fn wants(&self, workload: &str) -> bool {
        match &self.only {
            None => true,
            Some(only) => workload.to_lowercase().contains(&only.to_lowercase()),
        }
    }

    /// `full` normally, `quick` under `--quick`: the size of a workload.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(benches::Config::new(true, None).pick(1_000_000, 100_000), 100_000);
    /// ```
    pub fn pick<T>(&self, full: T, quick: T) -> T {
        if self.quick {
            quick
        } else {
            full
        }
    }
}

/// The median, min and max of one system's rounds.
///
/// # Examples
///
/// ```
/// let f = benches::Figure::from_rounds(&[3.0, 1.0, 2.0]).unwrap();
/// assert_eq!((f.median, f.min, f.max), (2.0, 1.0, 3.0));
/// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(benches::Figure::from_rounds(&[]).is_none());
    /// ```
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
///
/// # Examples
///
/// ```
/// use benches::{Figure, Measurement};
///
/// let m = Measurement::new("rayon-core", false, Figure::from_rounds(&[1.0]).unwrap());
/// assert!(!m.ours);
/// ```
#[derive(Clone, Debug)]
pub struct Measurement {
    /// The system, e.g. `pool-core`, `rayon-core`, `tokio spawn_blocking`.
    pub system: String,
    /// Whether this is one of ours (the ratio compares our best with the best peer).
    pub ours: bool,
    /// The figure.
    pub figure: Figure,
}

impl Measurement {
    /// A measurement of `system`.
    ///
    /// # Examples
    ///
    /// ```
    /// use benches::{Figure, Measurement};
    ///
    /// let m = Measurement::new("pool-core", true, Figure::from_rounds(&[2.0]).unwrap());
    /// assert_eq!(m.system, "pool-core");
    /// ```
    pub fn new(system: impl Into<String>, ours: bool, figure: Figure) -> Measurement {
        Measurement {
            system: system.into(),
            ours,
            figure,
        }
    }
}

/// One line of the comparison table.
///
/// # Examples
///
/// ```
/// use benches::{Figure, Measurement, Row};
///
/// let mut row = Row::new("wake-up latency p50", "µs", false);
/// row.push("pool-core", true, &[4.0, 5.0, 6.0]);
/// row.push("rayon-core", false, &[10.0]);
/// row.push("nobody", false, &[]); // no rounds: left out
/// assert_eq!(row.measurements.len(), 2);
/// assert_eq!(row.ratio_to_best_peer(), Some(2.0));
/// ```
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
    /// An empty row; add figures with [`push`](Self::push).
    ///
    /// # Examples
    ///
    /// ```
    /// let row = benches::Row::new("idle CPU", "ms/10s", false).with_note("target < 1 ms");
    /// assert!(row.measurements.is_empty());
    /// assert_eq!(row.note, "target < 1 ms");
    /// ```
    pub fn new(
        workload: impl Into<String>,
        unit: impl Into<String>,
        higher_is_better: bool,
    ) -> Row {
        Row {
            workload: workload.into(),
            unit: unit.into(),
            higher_is_better,
            measurements: Vec::new(),
            note: String::new(),
        }
    }

    /// Sets the note.
    ///
    /// # Examples
    ///
    /// ```
    /// let row = benches::Row::new("x", "µs", false).with_note("noisy");
    /// assert_eq!(row.note, "noisy");
    /// ```
    pub fn with_note(mut self, note: impl Into<String>) -> Row {
        self.note = note.into();
        self
    }

    /// Adds `system`'s rounds as a [`Figure`]; a system with no rounds is left out.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut row = benches::Row::new("x", "µs", false);
    /// row.push("pool-core", true, &[1.0, 3.0, 2.0]);
    /// assert_eq!(row.measurements[0].figure.median, 2.0);
    /// ```
    pub fn push(&mut self, system: impl Into<String>, ours: bool, rounds: &[f64]) {
        if let Some(figure) = Figure::from_rounds(rounds) {
            self.measurements
                .push(Measurement::new(system, ours, figure));
        }
    }

    /// Our best figure divided by the best peer's, oriented so that > 1 means we are ahead.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut row = benches::Row::new("memory", "B/task", false);
    /// row.push("pool-core", true, &[50.0]);
    /// row.push("threadpool", false, &[100.0]);
    /// assert_eq!(row.ratio_to_best_peer(), Some(2.0));
    /// ```
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
