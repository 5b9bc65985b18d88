//! Per-run settings.

use std::fmt;
use std::time::Duration;

use pool_core::QuietDrop;

/// A user clock for per-node timing: the time since some fixed origin. User code, its captures
/// too: dropped quietly wherever the last copy goes (a run's may go on a worker).
pub(crate) type ClockFn = QuietDrop<std::sync::Arc<dyn Fn() -> Duration + Send + Sync>>;

/// Settings for one run: timing, priorities, nodes marked failed before the run.
///
/// # Examples
///
/// ```
/// use dag_scheduler::RunOptions;
///
/// let options = RunOptions::new()
///     .timing(false)                      // fastest: no clock reads
///     .critical_path_priority(true)       // the default
///     .mark_failed("flaky-test", "quarantined");
/// # let _ = options;
/// ```
#[must_use = "options do nothing until passed to `run_with` or `start_with`"]
#[derive(Clone)]
pub struct RunOptions {
    pub(crate) timing: bool,
    pub(crate) clock: Option<ClockFn>,
    pub(crate) priority: bool,
    marks: Vec<(String, String)>,
}

impl fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunOptions")
            .field("timing", &self.timing)
            .field("custom_clock", &self.clock.is_some())
            .field("critical_path_priority", &self.priority)
            .field("marked_failed", &self.marks)
            .finish()
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            timing: true,
            clock: None,
            priority: true,
            marks: Vec::new(),
        }
    }
}

impl RunOptions {
    /// Timing on, critical-path priority on, nothing marked failed.
    ///
    /// # Examples
    ///
    /// ```
    /// let options = dag_scheduler::RunOptions::new();
    /// # let _ = options;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Record each node's start and end time and thread (on by default): the report's times,
    /// its timed critical path and its Chrome trace need it. Off, a run reads no clock at all
    /// (two clock reads per node cost about as much as running an empty node).
    ///
    /// # Examples
    ///
    /// ```
    /// use dag_scheduler::{Graph, RunOptions};
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = Graph::builder();
    /// builder.node("a", |_| ());
    /// let graph = builder.build().unwrap();
    /// let report = graph.run_with(&InlineExecutor, RunOptions::new().timing(false)).unwrap();
    /// assert_eq!(report.node("a").unwrap().start, None);
    /// ```
    pub fn timing(mut self, on: bool) -> Self {
        self.timing = on;
        self
    }

    /// Time nodes with `clock` (the time since any fixed origin) instead of the system's
    /// monotonic clock; turns timing on. Tests use a fake clock to get deterministic traces.
    ///
    /// # Examples
    ///
    /// ```
    /// use dag_scheduler::{Graph, RunOptions};
    /// use pool_core::InlineExecutor;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::time::Duration;
    ///
    /// let ticks = AtomicU64::new(0);
    /// let clock = move || Duration::from_micros(ticks.fetch_add(10, Ordering::Relaxed));
    /// let mut builder = Graph::builder();
    /// builder.node("a", |_| ());
    /// let graph = builder.build().unwrap();
    /// let report = graph.run_with(&InlineExecutor, RunOptions::new().clock(clock)).unwrap();
    /// let a = report.node("a").unwrap();
    /// assert_eq!(a.end.unwrap() - a.start.unwrap(), Duration::from_micros(10));
    /// ```
    pub fn clock<C>(mut self, clock: C) -> Self
    where
        C: Fn() -> Duration + Send + Sync + 'static,
    {
        self.timing = true;
        self.clock = Some(QuietDrop::new(std::sync::Arc::new(clock)));
        self
    }

    /// Submit nodes on a longest remaining chain at [`Priority::High`](pool_core::Priority)
    /// and the others at `Normal` (on by default), and run a critical node in place before
    /// another ready one. Only on an executor that [honors priorities](pool_core::Executor::honors_priority)
    /// (others ignore them): the graph's longest chains are worked out on its first such run.
    ///
    /// # Examples
    ///
    /// ```
    /// let options = dag_scheduler::RunOptions::new().critical_path_priority(false);
    /// # let _ = options;
    /// ```
    pub fn critical_path_priority(mut self, on: bool) -> Self {
        self.priority = on;
        self
    }

    /// Mark `node` failed before the run starts: it does not run, its outcome is
    /// `Failed(message)`, and its dependents are skipped as if it had failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use dag_scheduler::{Graph, Outcome, RunOptions};
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = Graph::builder();
    /// builder.node("a", |_| panic!("never runs"));
    /// let graph = builder.build().unwrap();
    /// let report = graph.run_with(&InlineExecutor, RunOptions::new().mark_failed("a", "broken")).unwrap();
    /// assert_eq!(report.outcome("a"), Some(Outcome::Failed("broken".into())));
    /// ```
    pub fn mark_failed(mut self, node: impl Into<String>, message: impl Into<String>) -> Self {
        self.marks.push((node.into(), message.into()));
        self
    }

    pub(crate) fn marks(&self) -> &[(String, String)] {
        &self.marks
    }
}
