//! A validated graph: flat arrays indexed by `u32`, ready to run many times.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fmt::Write as _;

use pool_core::sync::{ErasedArc, Mutex};
use pool_core::{drop_quietly, Executor, OnExit};

use crate::builder::{topological_order, GraphBuilder};
use crate::context::Context;
use crate::error::{GraphBuildError, RunError};
use crate::handle::RunHandle;
use crate::names::{NameIndex, Names};
use crate::options::RunOptions;
use crate::report::{dot_escape, Report};
use crate::run::{ExecutorRef, Run};
use crate::state::NodeState;

/// A node's closure, type-erased: its output boxed as `Any` (no allocation for `()`), or the
/// failure message.
pub(crate) type NodeFn =
    Box<dyn Fn(&Context<'_>) -> Result<Box<dyn Any + Send + Sync>, String> + Send + Sync>;

/// What a worker reads to run node `i` and release its successors: half a line of memory.
pub(crate) struct HotNode {
    pub(crate) run: NodeFn,
    /// `succs[succ_start..succ_end]`, sorted by remaining chain length, longest first, so the
    /// first successor made ready (the one run in place) is the most critical one.
    pub(crate) succ_start: u32,
    pub(crate) succ_end: u32,
    /// Number of dependencies.
    pub(crate) in_degree: u32,
    pub(crate) run_even_if_failed: bool,
    /// On a longest chain of the graph: submitted at High priority.
    pub(crate) critical: bool,
}

impl HotNode {
    /// A node as added; `GraphInner::new` fills in the rest.
    pub(crate) fn new(run: NodeFn) -> Self {
        HotNode {
            run,
            succ_start: 0,
            succ_end: 0,
            in_degree: 0,
            run_even_if_failed: false,
            critical: false,
        }
    }
}

/// Nodes with more dependencies than this get a hash set of them, so `Context::get` checks
/// "is a dependency" in constant time; below it a scan of the (sorted) list is as quick.
const WIDE: usize = 16;

pub(crate) struct GraphInner {
    pub(crate) hot: Vec<HotNode>,
    pub(crate) succs: Vec<u32>,
    pub(crate) pred_offsets: Vec<u32>,
    /// Each node's dependencies, sorted by index.
    pub(crate) preds: Vec<u32>,
    /// The dependencies of the nodes that have more than `WIDE`.
    wide: HashMap<u32, HashSet<u32>>,
    names: Names,
    name_index: NameIndex,
    pub(crate) roots: Vec<u32>,
    /// Longest chain (in nodes) from each node to a sink, the node included.
    pub(crate) height: Vec<u32>,
    pub(crate) builder_id: u64,
    /// The per-run state array of a finished run, kept for the next run.
    pub(crate) spare: Mutex<Option<Box<[NodeState]>>>,
}

impl GraphInner {
    /// The graph of validated parts: `preds` lists each node's dependencies (sorted, distinct,
    /// none the node itself) in CSR form. `forward`: some dependency has a larger index than its
    /// node, so insertion order is not known to be a topological order (there may be a cycle).
    pub(crate) fn new(
        names: Names,
        name_index: NameIndex,
        mut hot: Vec<HotNode>,
        pred_offsets: Vec<u32>,
        preds: Vec<u32>,
        forward: bool,
    ) -> Result<GraphInner, GraphBuildError> {
        let n = hot.len();
        let preds_of = |v: usize| &preds[pred_offsets[v] as usize..pred_offsets[v + 1] as usize];
        // Successors (CSR): count, prefix sums (each list's end), then fill each list from its
        // end, nodes in reverse order, so each list ends sorted by index and each offset ends at
        // its list's start.
        let mut succ_offsets = vec![0u32; n + 1];
        for &p in &preds {
            succ_offsets[p as usize + 1] += 1;
        }
        for v in 0..n {
            succ_offsets[v + 1] += succ_offsets[v];
        }
        for v in 0..n {
            succ_offsets[v] = succ_offsets[v + 1];
        }
        let mut succs = vec![0u32; preds.len()];
        for v in (0..n).rev() {
            for &p in preds_of(v) {
                succ_offsets[p as usize] -= 1;
                succs[succ_offsets[p as usize] as usize] = v as u32;
            }
        }
        // A topological order: insertion order when every dependency was added before its node
        // (always, with keys); else Kahn's, which finds a cycle if there is one.
        let order = if forward {
            Some(
                topological_order(&pred_offsets, &preds, &succ_offsets, &succs).map_err(
                    |cycle| {
                        GraphBuildError::new_cycle(
                            cycle
                                .iter()
                                .map(|&i| names.get(i as usize).to_owned())
                                .collect(),
                        )
                    },
                )?,
            )
        } else {
            None
        };
        let in_order = |i: usize| order.as_ref().map_or(i, |o| o[i] as usize);
        // Remaining chain length (height) and chain length from a root (depth): a node is on a
        // longest chain when the two add up to the longest chain.
        let mut height = vec![1u32; n];
        for k in (0..n).rev() {
            let u = in_order(k);
            let mut h = 1;
            for &s in &succs[succ_offsets[u] as usize..succ_offsets[u + 1] as usize] {
                h = h.max(height[s as usize] + 1);
            }
            height[u] = h;
        }
        // On a longest chain: a root as high as the graph, or a node one below a critical
        // dependency (in topological order, so every dependency is decided first).
        let longest = height.iter().copied().max().unwrap_or(0);
        for k in 0..n {
            let u = in_order(k);
            let mine = preds_of(u);
            hot[u].critical = if mine.is_empty() {
                height[u] == longest
            } else {
                mine.iter()
                    .any(|&p| hot[p as usize].critical && height[p as usize] == height[u] + 1)
            };
        }
        drop(order);
        for v in 0..n {
            let list = &mut succs[succ_offsets[v] as usize..succ_offsets[v + 1] as usize];
            if list.len() > 1 {
                // Stable: equal heights stay in index order.
                list.sort_by_key(|&s| std::cmp::Reverse(height[s as usize]));
            }
        }
        let mut roots = Vec::new();
        let mut wide = HashMap::new();
        for (i, node) in hot.iter_mut().enumerate() {
            let mine = preds_of(i);
            if mine.is_empty() {
                roots.push(i as u32);
            } else if mine.len() > WIDE {
                wide.insert(i as u32, mine.iter().copied().collect());
            }
            node.succ_start = succ_offsets[i];
            node.succ_end = succ_offsets[i + 1];
            node.in_degree = mine.len() as u32;
        }
        drop(succ_offsets);
        // The builder's array grew by doubling; give the slack back.
        hot.shrink_to_fit();
        Ok(GraphInner {
            hot,
            succs,
            pred_offsets,
            preds,
            wide,
            names,
            name_index,
            roots,
            height,
            builder_id: 0,
            spare: Mutex::new(None),
        })
    }

    pub(crate) fn succs_of(&self, i: usize) -> &[u32] {
        let node = &self.hot[i];
        &self.succs[node.succ_start as usize..node.succ_end as usize]
    }

    pub(crate) fn preds_of(&self, i: usize) -> &[u32] {
        &self.preds[self.pred_offsets[i] as usize..self.pred_offsets[i + 1] as usize]
    }

    /// Whether `p` is a dependency of `i`, in constant time.
    pub(crate) fn depends_on(&self, i: usize, p: u32) -> bool {
        let preds = self.preds_of(i);
        if preds.len() > WIDE {
            self.wide
                .get(&(i as u32))
                .is_some_and(|set| set.contains(&p))
        } else {
            preds.contains(&p)
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.hot.len()
    }

    pub(crate) fn name(&self, i: usize) -> &str {
        self.names.get(i)
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.names.iter()
    }

    pub(crate) fn index_of(&self, name: &str) -> Option<u32> {
        self.name_index.find(&self.names, name)
    }

    /// One longest chain by node count, from a root to a sink.
    pub(crate) fn longest_chain(&self) -> Vec<u32> {
        let Some(mut u) = self
            .roots
            .iter()
            .copied()
            .max_by_key(|&r| (self.height[r as usize], std::cmp::Reverse(r)))
        else {
            return Vec::new();
        };
        let mut chain = vec![u];
        // Successors are sorted longest chain first.
        while let Some(&s) = self.succs_of(u as usize).first() {
            chain.push(s);
            u = s;
        }
        chain
    }
}

impl Drop for GraphInner {
    fn drop(&mut self) {
        // The closures are user code: a captured value's `Drop` may panic, and the last
        // reference to a graph may be a finished run's, dropped on a worker.
        for node in self.hot.drain(..) {
            drop_quietly(node.run);
        }
    }
}

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
    /// A new [`GraphBuilder`].
    ///
    /// # Examples
    ///
    /// ```
    /// let mut builder = dag_scheduler::Graph::builder();
    /// builder.node("only", |_| ());
    /// assert_eq!(builder.build().unwrap().len(), 1);
    /// ```
    pub fn builder() -> GraphBuilder {
        GraphBuilder::new()
    }

    pub(crate) fn from_inner(inner: GraphInner) -> Graph {
        Graph {
            inner: ErasedArc::new(inner),
        }
    }

    pub(crate) fn with_builder_id(mut inner: GraphInner, id: u64) -> Graph {
        inner.builder_id = id;
        Graph::from_inner(inner)
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
        self.dot_with(|_| None)
    }

    /// DOT text; `fill(i)` gives a node's fill colour and outcome label, if any.
    pub(crate) fn dot_with(
        &self,
        fill: impl Fn(usize) -> Option<(&'static str, &'static str)>,
    ) -> String {
        let inner = &*self.inner;
        let mut out = String::from("digraph dag {\n  rankdir=LR;\n  node [shape=box];\n");
        for (i, name) in inner.names().enumerate() {
            let name = dot_escape(name);
            let bold = inner.hot[i].critical;
            let _ = match (fill(i), bold) {
                (None, false) => writeln!(out, "  \"{name}\";"),
                (None, true) => writeln!(out, "  \"{name}\" [style=bold];"),
                (Some((color, label)), bold) => writeln!(
                    out,
                    "  \"{name}\" [style=\"{}filled\", fillcolor={color}, label=\"{name}\\n{label}\"];",
                    if bold { "bold," } else { "" }
                ),
            };
        }
        for (i, name) in inner.names().enumerate() {
            for &p in inner.preds_of(i) {
                let _ = writeln!(
                    out,
                    "  \"{}\" -> \"{}\";",
                    dot_escape(inner.name(p as usize)),
                    dot_escape(name)
                );
            }
        }
        out.push_str("}\n");
        out
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
        let run = unsafe { Run::new(self, ExecutorRef::Borrowed(erased), options, premarked) };
        let finish = OnExit::new(|| {
            run.cancel();
            run.wait_finished(None);
        });
        Run::launch(&run);
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
        let run = unsafe {
            Run::new(
                self,
                ExecutorRef::Owned(Box::new(executor)),
                options,
                premarked,
            )
        };
        Run::launch(&run);
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
