//! The public face of a validated graph: what a user asks of it (its shape, DOT, runs).

use std::fmt;

use pool_core::sync::ErasedArc;
use pool_core::{Executor, OnExit};

use crate::dot;
use crate::error::RunError;
use crate::handle::RunHandle;
use crate::inner::GraphInner;
use crate::options::RunOptions;
use crate::report::Report;
use crate::run::{ExecutorRef, Run};

/// A validated dependency graph of named nodes, ready to run on any [`Executor`], many times.
///
/// Cloning is cheap (the graph is shared). See the [crate docs](crate) for the run protocol.
///
/// # Examples
///
/// ```
/// use dag_scheduler::{Graph, Outcome};
/// use pool_core::ThreadPool;
///
/// let mut builder = Graph::builder();
/// builder.node("fetch", |_| ());
/// builder.try_node("compile", |_| Err::<(), _>("syntax error")).after("fetch");
/// builder.node("link", |_| ()).after("compile");
/// builder.node("docs", |_| ()).after("fetch");
/// let graph = builder.build()?;
///
/// let pool = ThreadPool::new(2)?;
/// let report = graph.run(&pool);
/// assert_eq!(report.outcome("compile"), Some(Outcome::Failed("syntax error".into())));
/// assert_eq!(report.outcome("link"), Some(Outcome::Skipped { because: "compile".into() }));
/// assert_eq!(report.outcome("docs"), Some(Outcome::Succeeded));
/// // The same graph runs again.
/// assert_eq!(graph.run(&pool).summary().skipped, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Graph {
    pub(crate) inner: ErasedArc<GraphInner>,
}

impl fmt::Debug for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Graph")
            .field("nodes", &self.len())
            .field("edges", &self.inner.succs.len())
            .finish()
    }
}

impl Graph {
    pub(crate) fn from_inner(inner: GraphInner) -> Graph {
        Graph {
            inner: ErasedArc::new(inner),
        }
    }

    /// The number of nodes.
    ///
    /// # Examples
    ///
    /// ```
    /// let graph = dag_scheduler::Graph::builder().build().unwrap();
    /// assert_eq!(graph.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the graph has no nodes (running it finishes at once).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(dag_scheduler::Graph::builder().build().unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The node names in insertion order.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut builder = dag_scheduler::Graph::builder();
    /// builder.node("b", |_| ());
    /// builder.node("a", |_| ());
    /// assert_eq!(builder.build().unwrap().names().collect::<Vec<_>>(), ["b", "a"]);
    /// ```
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.inner.names()
    }

    /// The names of a node's dependencies, in insertion order of the dependencies; `None` for an
    /// unknown node.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut builder = dag_scheduler::Graph::builder();
    /// builder.node("a", |_| ());
    /// builder.node("b", |_| ()).after("a");
    /// let graph = builder.build().unwrap();
    /// assert_eq!(graph.dependencies("b").unwrap(), ["a"]);
    /// ```
    pub fn dependencies(&self, node: &str) -> Option<Vec<&str>> {
        let i = self.inner.index_of(node)?;
        Some(
            self.inner
                .preds_of(i as usize)
                .iter()
                .map(|&p| self.inner.name(p as usize))
                .collect(),
        )
    }

    /// One longest chain of the graph (by node count), root first: the nodes that get High
    /// priority by default.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut builder = dag_scheduler::Graph::builder();
    /// builder.node("a", |_| ());
    /// builder.node("b", |_| ()).after("a");
    /// builder.node("c", |_| ());
    /// assert_eq!(builder.build().unwrap().critical_path(), ["a", "b"]);
    /// ```
    pub fn critical_path(&self) -> Vec<&str> {
        self.inner
            .longest_chain()
            .into_iter()
            .map(|i| self.inner.name(i as usize))
            .collect()
    }

    /// The graph in Graphviz DOT: one edge per dependency, pointing from the dependency to the
    /// dependent; nodes on a longest chain are drawn bold. Deterministic (insertion order).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut builder = dag_scheduler::Graph::builder();
    /// builder.node("a", |_| ());
    /// builder.node("b", |_| ()).after("a");
    /// let dot = builder.build().unwrap().to_dot();
    /// assert!(dot.contains("\"a\" -> \"b\";"));
    /// ```
    pub fn to_dot(&self) -> String {
        dot::to_dot(&self.inner, |_| None)
    }

    /// Runs the graph on `executor` and blocks until every node has an outcome.
    ///
    /// Per-node timing is on (see [`RunOptions::timing`]). The executor is only borrowed:
    /// this returns after the last job of the run has let go of it, and so does every other
    /// exit: an executor that panics cancels the run (the report says
    /// [`executor_refused`](Report::executor_refused)). The executor must run or drop every job
    /// it accepts without waiting for this call to return, or the call blocks.
    ///
    /// Called on a worker of a [`ThreadPool`](pool_core::ThreadPool), the wait runs that pool's
    /// queued tasks meanwhile (see [`RunHandle::wait`] for what it cannot help with).
    ///
    /// # Examples
    ///
    /// ```
    /// use dag_scheduler::Graph;
    /// use pool_core::ThreadPool;
    ///
    /// let mut builder = Graph::builder();
    /// builder.node("a", |_| ());
    /// let pool = ThreadPool::new(2).unwrap();
    /// assert!(builder.build().unwrap().run(&pool).is_success());
    /// ```
    pub fn run<E>(&self, executor: &E) -> Report
    where
        E: Executor + ?Sized,
    {
        self.run_resolved(executor, &RunOptions::new(), Vec::new())
    }

    /// [`run`](Self::run) with options.
    ///
    /// # Errors
    ///
    /// [`RunError::UnknownNode`] if `options` mark an unknown node as failed; nothing runs.
    ///
    /// # Examples
    ///
    /// ```
    /// use dag_scheduler::{Graph, Outcome, RunOptions};
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = Graph::builder();
    /// builder.node("a", |_| ());
    /// builder.node("b", |_| ()).after("a");
    /// let graph = builder.build().unwrap();
    /// let options = RunOptions::new().timing(false).mark_failed("a", "known broken");
    /// let report = graph.run_with(&InlineExecutor, options).unwrap();
    /// assert_eq!(report.outcome("b"), Some(Outcome::Skipped { because: "a".into() }));
    /// ```
    pub fn run_with<E>(&self, executor: &E, options: RunOptions) -> Result<Report, RunError>
    where
        E: Executor + ?Sized,
    {
        let premarked = self.resolve_marks(&options)?;
        Ok(self.run_resolved(executor, &options, premarked))
    }

    fn run_resolved<E>(
        &self,
        executor: &E,
        options: &RunOptions,
        premarked: Vec<(u32, Box<str>)>,
    ) -> Report
    where
        E: Executor + ?Sized,
    {
        // `&E` is a sized executor even when `E` is not; it lives on this frame.
        let executor: &dyn Executor = &executor;
        let erased: *const (dyn Executor + '_) = executor;
        // SAFETY: only the lifetime bound is erased (same fat pointer). The run dereferences
        // it only in `Run::hand_over`, whose caller holds a token, and the last token's release
        // fires the completion (README: "completion once"); it is released after every call
        // into the executor returned, including one that panicked, since those are caught.
        // This frame ends only after that completion on every path: normally through `wait`
        // below, and if anything unwinds through `launch` or `wait`, through `finish`, which
        // cancels the run and waits for it (`launch` releases the starter's token on unwind,
        // so the wait ends once the jobs handed out so far are run or dropped; an executor that
        // leaks a job makes it block forever: a hang, never a use after this frame). So no job
        // can reach `executor` after its borrow ends.
        let erased: *const (dyn Executor + 'static) = unsafe { std::mem::transmute(erased) };
        // SAFETY: see above: the pointer stays valid until the run completes.
        let (run, starter) = unsafe {
            Run::new(
                &self.inner,
                ExecutorRef::Borrowed(erased),
                options,
                premarked,
            )
        };
        let finish = OnExit::new(|| {
            run.cancel();
            run.wait_finished(None);
        });
        Run::launch(&run, starter);
        run.wait_finished(None);
        finish.defuse();
        Report::new(run)
    }

    /// Starts a run on an owned executor (an `Arc<ThreadPool>`, say) and returns its handle
    /// at once: [`RunHandle::wait`], [`RunHandle::cancel`], or `.await` it.
    ///
    /// # Examples
    ///
    /// ```
    /// use dag_scheduler::Graph;
    /// use pool_core::ThreadPool;
    /// use std::sync::Arc;
    ///
    /// let mut builder = Graph::builder();
    /// let two = builder.node("two", |_| 2).key();
    /// let graph = builder.build().unwrap();
    /// let pool = Arc::new(ThreadPool::new(2).unwrap());
    /// let handle = graph.start(Arc::clone(&pool));
    /// assert_eq!(handle.wait().output(two), Some(&2));
    /// ```
    #[must_use = "dropping the handle detaches the run; wait on it (or keep it) to see the report"]
    pub fn start<E>(&self, executor: E) -> RunHandle
    where
        E: Executor + 'static,
    {
        self.start_resolved(executor, &RunOptions::new(), Vec::new())
    }

    /// [`start`](Self::start) with options.
    ///
    /// # Errors
    ///
    /// [`RunError::UnknownNode`] if `options` mark an unknown node as failed; nothing runs.
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
    /// let handle = graph.start_with(InlineExecutor, RunOptions::new().timing(false)).unwrap();
    /// assert!(handle.wait().is_success());
    /// ```
    pub fn start_with<E>(&self, executor: E, options: RunOptions) -> Result<RunHandle, RunError>
    where
        E: Executor + 'static,
    {
        let premarked = self.resolve_marks(&options)?;
        Ok(self.start_resolved(executor, &options, premarked))
    }

    fn start_resolved<E>(
        &self,
        executor: E,
        options: &RunOptions,
        premarked: Vec<(u32, Box<str>)>,
    ) -> RunHandle
    where
        E: Executor + 'static,
    {
        // SAFETY: an owned executor lives inside the run for as long as any job can use it.
        let (run, starter) = unsafe {
            Run::new(
                &self.inner,
                ExecutorRef::Owned(Box::new(executor)),
                options,
                premarked,
            )
        };
        Run::launch(&run, starter);
        RunHandle::new(run)
    }

    fn resolve_marks(&self, options: &RunOptions) -> Result<Vec<(u32, Box<str>)>, RunError> {
        options
            .marks()
            .iter()
            .map(|(name, message)| {
                self.inner
                    .index_of(name)
                    .map(|i| (i, message.as_str().into()))
                    .ok_or_else(|| RunError::UnknownNode(name.clone()))
            })
            .collect()
    }
}
