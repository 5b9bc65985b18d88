//! The report of a run: outcomes, times, the critical path, DOT and Chrome trace exports.

use std::collections::HashMap;
use std::fmt;
use std::fmt::Write as _;
use std::time::Duration;

use pool_core::sync::{ErasedArc, Ordering};

use crate::dot;
use crate::inner::GraphInner;
use crate::key::NodeKey;
use crate::run::Run;
use crate::state::{Slot, Timing};

/// What became of one node in a run.
///
/// # Examples
///
/// ```
/// use dag_scheduler::Outcome;
///
/// let skipped = Outcome::Skipped { because: "compile".into() };
/// assert_eq!(skipped.to_string(), "skipped because `compile` failed");
/// assert!(!skipped.is_success());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The node ran and returned a value.
    Succeeded,
    /// The node returned an error (its message), panicked (`"panicked: <message>"`), or was
    /// marked failed before the run.
    Failed(String),
    /// The node did not run because a node it depends on (directly or not) failed.
    Skipped {
        /// The failed node at the root of the chain.
        because: String,
    },
    /// The node did not run: the run was cancelled, or the executor refused its job.
    Cancelled,
}

impl Outcome {
    /// Whether the node succeeded.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(dag_scheduler::Outcome::Succeeded.is_success());
    /// ```
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Succeeded)
    }

    fn kind(&self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed(_) => "failed",
            Outcome::Skipped { .. } => "skipped",
            Outcome::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Succeeded => f.write_str("succeeded"),
            Outcome::Failed(message) => write!(f, "failed: {message}"),
            Outcome::Skipped { because } => write!(f, "skipped because `{because}` failed"),
            Outcome::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// One node's line in a [`Report`]. Times are measured from the start of the run, and present
/// only for nodes that ran in a timed run.
///
/// # Examples
///
/// ```
/// use dag_scheduler::{Graph, Outcome};
/// use pool_core::InlineExecutor;
///
/// let mut builder = Graph::builder();
/// builder.node("a", |_| ());
/// let report = builder.build().unwrap().run(&InlineExecutor);
/// let a = report.node("a").unwrap();
/// assert_eq!((a.name, a.outcome), ("a", Outcome::Succeeded));
/// assert!(a.start.unwrap() <= a.end.unwrap());
/// assert_eq!(a.thread, Some(1));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeReport<'a> {
    /// The node's name.
    pub name: &'a str,
    /// What became of it.
    pub outcome: Outcome,
    /// When it started.
    pub start: Option<Duration>,
    /// When it ended.
    pub end: Option<Duration>,
    /// The thread it ran on, numbered from 1 in the order threads first started a node.
    pub thread: Option<usize>,
}

/// How many nodes ended each way.
///
/// # Examples
///
/// ```
/// use dag_scheduler::Graph;
/// use pool_core::InlineExecutor;
///
/// let mut builder = Graph::builder();
/// builder.node("a", |_| ());
/// let summary = builder.build().unwrap().run(&InlineExecutor).summary();
/// assert_eq!((summary.succeeded, summary.failed, summary.skipped, summary.cancelled), (1, 0, 0, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Nodes that ran and returned a value.
    pub succeeded: usize,
    /// Nodes that failed, panicked or were marked failed.
    pub failed: usize,
    /// Nodes skipped because of a failure.
    pub skipped: usize,
    /// Nodes cancelled.
    pub cancelled: usize,
}

/// The result of a run: every node's outcome and output, times, the critical path, and
/// exports for Graphviz and Perfetto.
///
/// # Examples
///
/// ```
/// use dag_scheduler::Graph;
/// use pool_core::ThreadPool;
///
/// let mut builder = Graph::builder();
/// builder.node("fetch", |_| ());
/// builder.node("build", |_| ()).after("fetch");
/// builder.node("lint", |_| ()).after("fetch");
/// let report = builder.build().unwrap().run(&ThreadPool::new(2).unwrap());
/// assert!(report.is_success());
/// assert_eq!(report.critical_path()[0], "fetch");
/// assert!(report.to_chrome_trace().starts_with("{\"traceEvents\":["));
/// println!("{report}");
/// ```
pub struct Report {
    run: ErasedArc<Run>,
    elapsed: Option<Duration>,
    /// Unique thread id -> 1-based number, in the order threads first started a node.
    threads: HashMap<u64, usize>,
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Report")
            .field("summary", &self.summary())
            .field("elapsed", &self.elapsed)
            .finish()
    }
}

impl Report {
    /// Only for a run that has completed.
    pub(crate) fn new(run: ErasedArc<Run>) -> Report {
        let elapsed = run.done.lock().elapsed;
        let mut report = Report {
            run,
            elapsed,
            threads: HashMap::new(),
        };
        if report.run.is_timed() {
            let mut ran: Vec<(u64, usize, u64)> = (0..report.len())
                .filter_map(|i| report.timing(i).map(|t| (t.start, i, t.thread)))
                .collect();
            ran.sort_unstable();
            for (_, _, thread) in ran {
                let next = report.threads.len() + 1;
                report.threads.entry(thread).or_insert(next);
            }
        }
        report
    }

    fn graph(&self) -> &GraphInner {
        &self.run.graph
    }

    fn slot(&self, i: usize) -> Slot<'_> {
        // SAFETY: a report exists only for a completed run: every slot was written before the
        // completion, which the report's creator acquired through the completion lock.
        unsafe { self.run.slot(i) }
    }

    fn timing(&self, i: usize) -> Option<Timing> {
        // SAFETY: as in `slot`.
        unsafe { self.run.timing(i) }
    }

    fn outcome_at(&self, i: usize) -> Outcome {
        match self.slot(i) {
            Slot::Output(_) => Outcome::Succeeded,
            Slot::Failed(message) => Outcome::Failed(message.to_string()),
            Slot::Skipped(root) => Outcome::Skipped {
                because: self.graph().name(root as usize).to_owned(),
            },
            // Empty cannot happen in a completed run; report it as cancelled rather than panic.
            Slot::Cancelled | Slot::Empty => Outcome::Cancelled,
        }
    }

    fn node_at(&self, i: usize) -> NodeReport<'_> {
        let timing = self.timing(i);
        let origin = self.run.start_time();
        NodeReport {
            name: self.graph().name(i),
            outcome: self.outcome_at(i),
            start: timing.map(|t| Duration::from_nanos(t.start.saturating_sub(origin))),
            end: timing.map(|t| Duration::from_nanos(t.end.saturating_sub(origin))),
            thread: timing.and_then(|t| self.threads.get(&t.thread).copied()),
        }
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.graph().index_of(name).map(|i| i as usize)
    }

    /// The number of nodes.
    ///
    /// # Examples
    ///
    /// ```
    /// use dag_scheduler::{Graph, Outcome};
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = Graph::builder();
    /// let a = builder.node("a", |_| 1).key();
    /// builder.try_node("b", |_| Err::<(), _>("broken")).after(a);
    /// builder.node("c", |_| ()).after("b");
    /// let report = builder.build().unwrap().run(&InlineExecutor);
    /// assert_eq!(report.len(), 3);
    /// ```
    pub fn len(&self) -> usize {
        self.graph().len()
    }

    /// Whether the graph had no nodes.
    ///
    /// # Examples
    ///
    /// ```
    /// use dag_scheduler::{Graph, Outcome};
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = Graph::builder();
    /// let a = builder.node("a", |_| 1).key();
    /// builder.try_node("b", |_| Err::<(), _>("broken")).after(a);
    /// builder.node("c", |_| ()).after("b");
    /// let report = builder.build().unwrap().run(&InlineExecutor);
    /// assert!(!report.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every node succeeded.
    ///
    /// # Examples
    ///
    /// ```
    /// use dag_scheduler::{Graph, Outcome};
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = Graph::builder();
    /// let a = builder.node("a", |_| 1).key();
    /// builder.try_node("b", |_| Err::<(), _>("broken")).after(a);
    /// builder.node("c", |_| ()).after("b");
    /// let report = builder.build().unwrap().run(&InlineExecutor);
    /// assert!(!report.is_success());
    /// ```
    pub fn is_success(&self) -> bool {
        // Counted by the run as it decided the nodes (O(1) here); a report exists only for a
        // completed run, whose every decision the report's creator acquired.
        let counted = self.run.unsuccessful.load(Ordering::Relaxed) == 0;
        debug_assert_eq!(
            counted,
            (0..self.len()).all(|i| matches!(self.slot(i), Slot::Output(_)))
        );
        counted
    }

    /// The outcome of the node called `name`, if there is one.
    ///
    /// # Examples
    ///
    /// ```
    /// use dag_scheduler::{Graph, Outcome};
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = Graph::builder();
    /// let a = builder.node("a", |_| 1).key();
    /// builder.try_node("b", |_| Err::<(), _>("broken")).after(a);
    /// builder.node("c", |_| ()).after("b");
    /// let report = builder.build().unwrap().run(&InlineExecutor);
    /// assert_eq!(report.outcome("c"), Some(Outcome::Skipped { because: "b".into() }));
    /// assert_eq!(report.outcome("nope"), None);
    /// ```
    pub fn outcome(&self, name: &str) -> Option<Outcome> {
        self.index_of(name).map(|i| self.outcome_at(i))
    }

    /// The line of the node called `name`, if there is one.
    ///
    /// # Examples
    ///
    /// ```
    /// use dag_scheduler::{Graph, Outcome};
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = Graph::builder();
    /// let a = builder.node("a", |_| 1).key();
    /// builder.try_node("b", |_| Err::<(), _>("broken")).after(a);
    /// builder.node("c", |_| ()).after("b");
    /// let report = builder.build().unwrap().run(&InlineExecutor);
    /// assert_eq!(report.node("b").unwrap().outcome, Outcome::Failed("broken".into()));
    /// ```
    pub fn node(&self, name: &str) -> Option<NodeReport<'_>> {
        self.index_of(name).map(|i| self.node_at(i))
    }

    /// Every node's line, in insertion order.
    ///
    /// # Examples
    ///
    /// ```
    /// use dag_scheduler::{Graph, Outcome};
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = Graph::builder();
    /// let a = builder.node("a", |_| 1).key();
    /// builder.try_node("b", |_| Err::<(), _>("broken")).after(a);
    /// builder.node("c", |_| ()).after("b");
    /// let report = builder.build().unwrap().run(&InlineExecutor);
    /// let names: Vec<&str> = report.nodes().map(|n| n.name).collect();
    /// assert_eq!(names, ["a", "b", "c"]);
    /// ```
    pub fn nodes(&self) -> impl Iterator<Item = NodeReport<'_>> + '_ {
        (0..self.len()).map(move |i| self.node_at(i))
    }

    /// The output of node `key` in this run: `None` if it did not succeed (or `key` belongs to
    /// another graph).
    ///
    /// # Examples
    ///
    /// ```
    /// use dag_scheduler::{Graph, Outcome};
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = Graph::builder();
    /// let a = builder.node("a", |_| 1).key();
    /// builder.try_node("b", |_| Err::<(), _>("broken")).after(a);
    /// builder.node("c", |_| ()).after("b");
    /// let report = builder.build().unwrap().run(&InlineExecutor);
    /// assert_eq!(report.output(a), Some(&1));
    /// ```
    pub fn output<T: 'static>(&self, key: NodeKey<T>) -> Option<&T> {
        if key.builder != self.graph().builder_id() || key.index() >= self.len() {
            return None;
        }
        match self.slot(key.index()) {
            Slot::Output(value) => value.downcast_ref::<T>(),
            _ => None,
        }
    }

    /// Counts of each outcome.
    ///
    /// # Examples
    ///
    /// ```
    /// use dag_scheduler::{Graph, Outcome};
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = Graph::builder();
    /// let a = builder.node("a", |_| 1).key();
    /// builder.try_node("b", |_| Err::<(), _>("broken")).after(a);
    /// builder.node("c", |_| ()).after("b");
    /// let report = builder.build().unwrap().run(&InlineExecutor);
    /// assert_eq!(report.summary().skipped, 1);
    /// ```
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for i in 0..self.len() {
            match self.slot(i) {
                Slot::Output(_) => summary.succeeded += 1,
                Slot::Failed(_) => summary.failed += 1,
                Slot::Skipped(_) => summary.skipped += 1,
                Slot::Cancelled | Slot::Empty => summary.cancelled += 1,
            }
        }
        summary
    }

    /// The run's wall time, from start to the last node's end (timed runs only).
    ///
    /// # Examples
    ///
    /// ```
    /// use dag_scheduler::{Graph, Outcome};
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = Graph::builder();
    /// let a = builder.node("a", |_| 1).key();
    /// builder.try_node("b", |_| Err::<(), _>("broken")).after(a);
    /// builder.node("c", |_| ()).after("b");
    /// let report = builder.build().unwrap().run(&InlineExecutor);
    /// assert!(report.elapsed().is_some()); // timing is on by default
    /// ```
    pub fn elapsed(&self) -> Option<Duration> {
        self.elapsed
    }

    /// Whether the run was cancelled (by [`RunHandle::cancel`](crate::RunHandle::cancel), or
    /// because the executor refused a job).
    ///
    /// # Examples
    ///
    /// ```
    /// use dag_scheduler::{Graph, Outcome};
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = Graph::builder();
    /// let a = builder.node("a", |_| 1).key();
    /// builder.try_node("b", |_| Err::<(), _>("broken")).after(a);
    /// builder.node("c", |_| ()).after("b");
    /// let report = builder.build().unwrap().run(&InlineExecutor);
    /// assert!(!report.was_cancelled());
    /// ```
    pub fn was_cancelled(&self) -> bool {
        self.run.cancelled.load(Ordering::Relaxed)
    }

    /// Whether the executor refused or dropped a job of this run (it was shut down, say); the
    /// nodes not run because of it are `Cancelled`.
    ///
    /// # Examples
    ///
    /// ```
    /// use dag_scheduler::{Graph, Outcome};
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = Graph::builder();
    /// let a = builder.node("a", |_| 1).key();
    /// builder.try_node("b", |_| Err::<(), _>("broken")).after(a);
    /// builder.node("c", |_| ()).after("b");
    /// let report = builder.build().unwrap().run(&InlineExecutor);
    /// assert!(!report.executor_refused());
    /// ```
    pub fn executor_refused(&self) -> bool {
        self.run.refused.load(Ordering::Relaxed)
    }

    /// The chain of nodes that determined the run's length, first to last.
    ///
    /// In a timed run: from the node that ended last, back through the dependency that ended
    /// last each time. Untimed: one longest chain of the graph by node count.
    ///
    /// # Examples
    ///
    /// ```
    /// use dag_scheduler::{Graph, Outcome};
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = Graph::builder();
    /// let a = builder.node("a", |_| 1).key();
    /// builder.try_node("b", |_| Err::<(), _>("broken")).after(a);
    /// builder.node("c", |_| ()).after("b");
    /// let report = builder.build().unwrap().run(&InlineExecutor);
    /// assert_eq!(report.critical_path(), ["a", "b"]); // c never ran
    /// ```
    pub fn critical_path(&self) -> Vec<&str> {
        let inner = self.graph();
        if !self.run.is_timed() {
            return inner
                .longest_chain()
                .into_iter()
                .map(|i| inner.name(i as usize))
                .collect();
        }
        let ended = |i: usize| self.timing(i).map(|t| t.end);
        let Some(mut u) = (0..self.len())
            .filter(|&i| ended(i).is_some())
            .max_by_key(|&i| (ended(i), std::cmp::Reverse(i)))
        else {
            return Vec::new();
        };
        let mut path = vec![u];
        while let Some(p) = inner
            .preds_of(u)
            .iter()
            .map(|&p| p as usize)
            .filter(|&p| ended(p).is_some())
            .max_by_key(|&p| (ended(p), std::cmp::Reverse(p)))
        {
            path.push(p);
            u = p;
        }
        path.reverse();
        path.into_iter().map(|i| inner.name(i)).collect()
    }

    /// The graph in DOT, each node coloured by its outcome (green succeeded, red failed, grey
    /// skipped, orange cancelled) and labelled with it. No times: the same outcomes give the
    /// same text.
    ///
    /// # Examples
    ///
    /// ```
    /// use dag_scheduler::{Graph, Outcome};
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = Graph::builder();
    /// let a = builder.node("a", |_| 1).key();
    /// builder.try_node("b", |_| Err::<(), _>("broken")).after(a);
    /// builder.node("c", |_| ()).after("b");
    /// let report = builder.build().unwrap().run(&InlineExecutor);
    /// assert!(report.to_dot().contains("fillcolor=salmon"));
    /// ```
    pub fn to_dot(&self) -> String {
        dot::to_dot(self.graph(), |i| {
            Some(match self.slot(i) {
                Slot::Output(_) => ("palegreen", "succeeded"),
                Slot::Failed(_) => ("salmon", "failed"),
                Slot::Skipped(_) => ("lightgrey", "skipped"),
                Slot::Cancelled | Slot::Empty => ("orange", "cancelled"),
            })
        })
    }

    /// The run as Chrome trace JSON (open it in Perfetto or `chrome://tracing`): one complete
    /// event (`"ph":"X"`) per node that ran, on the thread that ran it, in start order, with
    /// the outcome in `args`. Empty (`{"traceEvents":[]}`) for an untimed run.
    ///
    /// # Examples
    ///
    /// ```
    /// use dag_scheduler::{Graph, Outcome};
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = Graph::builder();
    /// let a = builder.node("a", |_| 1).key();
    /// builder.try_node("b", |_| Err::<(), _>("broken")).after(a);
    /// builder.node("c", |_| ()).after("b");
    /// let report = builder.build().unwrap().run(&InlineExecutor);
    /// let trace = report.to_chrome_trace();
    /// assert_eq!(trace.matches("\"ph\":\"X\"").count(), 2); // a and b ran
    /// ```
    pub fn to_chrome_trace(&self) -> String {
        let origin = self.run.start_time();
        let mut events: Vec<(u64, usize, Timing)> = (0..self.len())
            .filter_map(|i| self.timing(i).map(|t| (t.start, i, t)))
            .collect();
        events.sort_unstable_by_key(|&(start, i, _)| (start, i));
        let mut out = String::from("{\"traceEvents\":[");
        for (n, (_, i, t)) in events.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            let outcome = self.outcome_at(*i);
            let _ = write!(
                out,
                "\n{{\"name\":\"{}\",\"cat\":\"{}\",\"ph\":\"X\",\"ts\":{},\"dur\":{},\"pid\":1,\"tid\":{},\"args\":{{\"outcome\":\"{}\"}}}}",
                json_escape(self.graph().name(*i)),
                outcome.kind(),
                micros(t.start.saturating_sub(origin)),
                micros(t.end.saturating_sub(t.start)),
                self.threads.get(&t.thread).copied().unwrap_or(0),
                json_escape(&outcome.to_string()),
            );
        }
        out.push_str("\n],\"displayTimeUnit\":\"ms\"}\n");
        out
    }
}

impl fmt::Display for Report {
    /// A table: one line per node with its outcome and, in a timed run, its start and duration.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.graph().names().map(str::len).max().unwrap_or(4).max(4);
        writeln!(
            f,
            "{:width$}  {:>12}  {:>12}  outcome",
            "node", "start", "duration"
        )?;
        for node in self.nodes() {
            let (start, duration) = match (node.start, node.end) {
                (Some(s), Some(e)) => (format!("{s:.1?}"), format!("{:.1?}", e - s)),
                _ => ("-".to_owned(), "-".to_owned()),
            };
            writeln!(
                f,
                "{:width$}  {start:>12}  {duration:>12}  {}",
                node.name, node.outcome
            )?;
        }
        let s = self.summary();
        write!(
            f,
            "{} succeeded, {} failed, {} skipped, {} cancelled",
            s.succeeded, s.failed, s.skipped, s.cancelled
        )?;
        if let Some(elapsed) = self.elapsed {
            write!(f, " in {elapsed:.1?}")?;
        }
        write!(f, "; critical path: {}", self.critical_path().join(" -> "))
    }
}

/// Microseconds with three decimals, as Chrome trace JSON wants them.
fn micros(nanos: u64) -> String {
    format!("{}.{:03}", nanos / 1000, nanos % 1000)
}

fn json_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}
