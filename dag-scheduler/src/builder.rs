//! Adding nodes and dependencies, and the validation that turns a builder into a [`Graph`].

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;

use pool_core::drop_quietly;

use crate::context::{Context, NodeFn};
use crate::error::GraphBuildError;
use crate::graph::Graph;
use crate::inner::{Edges, GraphInner, HotNode};
use crate::key::{DepKind, Dependency, NodeKey, NodeName};
use crate::names::{NameIndex, Names};

/// A dependency that `after` could not turn into a node index: resolved (or refused) by `build`.
enum Unresolved {
    Name(String),
    /// A key of another builder.
    Foreign(u32),
}

/// The entry in `GraphBuilder::deps` of an [`Unresolved`] dependency.
const UNRESOLVED: u32 = u32::MAX;

/// Collects named nodes and their dependencies; [`build`](Self::build) validates them into a
/// [`Graph`].
///
/// Adding never fails: every mistake (a duplicate name, an unknown or self dependency, a cycle)
/// is reported by `build`, naming the nodes.
///
/// # Examples
///
/// ```
/// use dag_scheduler::Graph;
/// use pool_core::ThreadPool;
///
/// let mut builder = Graph::builder();
/// let left = builder.node("left", |_| 2).key();
/// let right = builder.node("right", |_| 3).key();
/// let product = builder
///     .node("product", move |cx| cx.get(left).unwrap() * cx.get(right).unwrap())
///     .after(left)
///     .after(right)
///     .key();
/// let graph = builder.build()?;
/// let pool = ThreadPool::new(2)?;
/// assert_eq!(graph.run(&pool).output(product), Some(&6));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct GraphBuilder {
    id: u64,
    // One entry per node in each of these (no per-node allocation: see `names.rs`).
    names: Names,
    /// The run-time records, filled in by `build` (closures and flags are known now): the
    /// graph takes this array over instead of copying the closures into a new one.
    hot: Vec<HotNode>,
    /// Every node's dependencies, node after node, in the order they were added (a node's
    /// dependencies are all added through its `NodeBuilder`, before the next node exists).
    /// A key of this builder is its index at once; anything else is `UNRESOLVED`, with an entry
    /// in `unresolved`.
    deps: Vec<u32>,
    /// `deps_start[i]`: where node `i`'s dependencies start in `deps`, noted when the node is
    /// added; `build` appends the end of the last list, which makes it the offsets of the
    /// predecessor lists (CSR) as they stand. Nothing is written per edge. (Past `u32::MAX`
    /// dependencies in all, `build` refuses the graph before reading these.)
    deps_start: Vec<u32>,
    /// `owners[j]`: the node whose dependency `deps[j]` is. With `ordered`, `build` fills the
    /// successor lists in one flat pass over the pairs: a loop per node over its few
    /// dependencies mispredicts its exit whenever the count varies (the random DAG: 0-3 per
    /// node, two or three mispredicted branches per node, about a third of its build time).
    owners: Vec<u32>,
    /// Every dependency so far is a key of this builder naming an earlier node, each node's in
    /// strictly ascending order (what keys give): `build` has nothing to resolve, check, sort
    /// or deduplicate, and takes its flat path. Kept up to date branch-free as edges are added.
    ordered: bool,
    /// The smallest index the current node's next dependency may have and stay `ordered`.
    floor: u32,
    /// Position in `deps`, and the dependency, in the order they were added.
    unresolved: Vec<(usize, Unresolved)>,
    /// At most this many nodes are stored (see [`node_limit`](Self::node_limit)).
    limit: usize,
    /// Nodes added past `limit`: counted for the error, not stored.
    refused: usize,
    /// Dependencies added past what a `u32` can index: counted for the error, not stored.
    refused_deps: usize,
    /// The first node whose name could not be formatted, and why: `build` refuses the graph.
    bad_name: Option<(u32, String)>,
}

/// The most nodes a graph can have: every node has a `u32` index, and `u32::MAX` is reserved.
const MAX_NODES: usize = u32::MAX as usize - 1;

impl fmt::Debug for GraphBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphBuilder")
            .field("nodes", &self.len())
            .finish()
    }
}

impl Default for GraphBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// Sets a node's dependencies and options; returned by [`GraphBuilder::node`] and
/// [`GraphBuilder::try_node`].
///
/// # Examples
///
/// ```
/// use dag_scheduler::Graph;
///
/// let mut builder = Graph::builder();
/// builder.node("fetch", |_| ());
/// builder.node("report", |cx| cx.missing_inputs().count())
///     .after("fetch")
///     .run_even_if_failed();
/// assert_eq!(builder.build().unwrap().len(), 2);
/// ```
pub struct NodeBuilder<'b, T> {
    builder: &'b mut GraphBuilder,
    index: u32,
    /// False for a node past the builder's limit: nothing of it is stored.
    stored: bool,
    _output: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for NodeBuilder<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = &self.builder.names;
        f.debug_struct("NodeBuilder")
            .field("name", &self.stored.then(|| names.get(names.len() - 1)))
            .finish()
    }
}

impl<T> NodeBuilder<'_, T> {
    // Inlined: with a key, `after` is a few stores, once per edge.
    #[inline]
    fn add(&mut self, dependency: Dependency) {
        // This node is the builder's last one: it holds the builder until it is dropped.
        let b = &mut *self.builder;
        if !self.stored {
            return;
        }
        if b.deps.len() >= MAX_NODES {
            // `build` refuses the graph; storing more would only run out of memory first.
            b.refused_deps += 1;
            return;
        }
        match dependency.0 {
            DepKind::Key { builder, index } if builder == b.id => {
                // `&`, not `&&`: no branch on the data.
                b.ordered &= (index >= b.floor) & (index < self.index);
                b.floor = index.wrapping_add(1);
                b.deps.push(index);
            }
            DepKind::Key { index, .. } => {
                b.ordered = false;
                b.unresolved
                    .push((b.deps.len(), Unresolved::Foreign(index)));
                b.deps.push(UNRESOLVED);
            }
            DepKind::Name(name) => {
                b.ordered = false;
                b.unresolved.push((b.deps.len(), Unresolved::Name(name)));
                b.deps.push(UNRESOLVED);
            }
        }
        b.owners.push(self.index);
    }

    /// This node runs after `dependency` (a node name or a [`NodeKey`]) has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut builder = dag_scheduler::Graph::builder();
    /// let a = builder.node("a", |_| ()).key();
    /// builder.node("b", |_| ());
    /// builder.node("c", |_| ()).after(a).after("b");
    /// assert_eq!(builder.build().unwrap().dependencies("c").unwrap(), ["a", "b"]);
    /// ```
    #[inline]
    pub fn after(mut self, dependency: impl Into<Dependency>) -> Self {
        self.add(dependency.into());
        self
    }

    /// This node runs after every one of `dependencies`.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut builder = dag_scheduler::Graph::builder();
    /// for unit in ["x", "y"] {
    ///     builder.node(unit, |_| ());
    /// }
    /// builder.node("link", |_| ()).after_all(["x", "y"]);
    /// assert_eq!(builder.build().unwrap().dependencies("link").unwrap(), ["x", "y"]);
    /// ```
    // Inlined: a generator's one call per node; out of line it cost as much as the edges.
    #[inline]
    pub fn after_all<D: Into<Dependency>>(
        mut self,
        dependencies: impl IntoIterator<Item = D>,
    ) -> Self {
        for dependency in dependencies {
            self.add(dependency.into());
        }
        self
    }

    /// Run this node even when a dependency failed, panicked or was skipped (by default it is
    /// skipped). It sees the missing inputs with [`Context::missing_inputs`], and
    /// [`Context::get`] returns `None` for them.
    ///
    /// # Examples
    ///
    /// ```
    /// use dag_scheduler::{Graph, Outcome};
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = Graph::builder();
    /// builder.try_node("tests", |_| Err::<(), _>("2 failed"));
    /// builder.node("upload logs", |cx| cx.missing_inputs().count()).after("tests").run_even_if_failed();
    /// let report = builder.build().unwrap().run(&InlineExecutor);
    /// assert_eq!(report.outcome("upload logs"), Some(Outcome::Succeeded));
    /// ```
    pub fn run_even_if_failed(self) -> Self {
        if let Some(node) = self.builder.hot.last_mut().filter(|_| self.stored) {
            node.run_even_if_failed = true;
        }
        self
    }

    /// The node's typed key.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut builder = dag_scheduler::Graph::builder();
    /// let key: dag_scheduler::NodeKey<&str> = builder.node("name", |_| "value").key();
    /// assert_eq!(key.index(), 0);
    /// ```
    pub fn key(&self) -> NodeKey<T> {
        NodeKey::new(self.builder.id, self.index)
    }
}

/// A node closure, type-erased (its output boxed: no allocation for `()`).
fn into_node_fn<F, T>(f: F) -> NodeFn
where
    F: Fn(&Context<'_>) -> T + Send + Sync + 'static,
    T: Any + Send + Sync,
{
    Box::new(move |cx: &Context<'_>| Ok(Box::new(f(cx)) as Box<dyn Any + Send + Sync>))
}

/// A fallible node closure, type-erased: `Err(e)` becomes the failure message.
fn into_try_node_fn<F, T, E>(f: F) -> NodeFn
where
    F: Fn(&Context<'_>) -> Result<T, E> + Send + Sync + 'static,
    T: Any + Send + Sync,
    E: fmt::Display,
{
    Box::new(move |cx: &Context<'_>| match f(cx) {
        Ok(value) => Ok(Box::new(value) as Box<dyn Any + Send + Sync>),
        Err(error) => Err(error.to_string()),
    })
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
}

impl GraphBuilder {
    /// An empty builder.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = dag_scheduler::GraphBuilder::new();
    /// assert!(builder.is_empty());
    /// ```
    pub fn new() -> Self {
        GraphBuilder {
            id: pool_core::sync::next_unique_id(),
            names: Names::default(),
            hot: Vec::new(),
            deps: Vec::new(),
            deps_start: Vec::new(),
            owners: Vec::new(),
            ordered: true,
            floor: 0,
            unresolved: Vec::new(),
            limit: MAX_NODES,
            refused: 0,
            refused_deps: 0,
            bad_name: None,
        }
    }

    /// An empty builder with room for `nodes` nodes and as many dependencies: a generator that
    /// knows its size saves the arrays' regrowth (each doubling copies what is there). A hint:
    /// room that cannot be had (`usize::MAX` nodes) is not reserved, and the builder grows as
    /// it goes.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut builder = dag_scheduler::GraphBuilder::with_capacity(1000);
    /// for i in 0..1000 {
    ///     builder.node(format_args!("n{i}"), |_| ());
    /// }
    /// assert_eq!(builder.build().unwrap().len(), 1000);
    /// ```
    pub fn with_capacity(nodes: usize) -> Self {
        let mut builder = Self::new();
        // `try_reserve`: a capacity past memory is a hint not taken, not a panic (`reserve`'s
        // capacity overflow) or an abort (the allocator's).
        let reserved = builder.names.try_reserve(nodes).is_ok()
            && builder.hot.try_reserve(nodes).is_ok()
            && builder.deps.try_reserve(nodes).is_ok()
            && builder.owners.try_reserve(nodes).is_ok()
            && builder
                .deps_start
                .try_reserve(nodes.saturating_add(1))
                .is_ok();
        if !reserved {
            return Self::new();
        }
        builder
    }

    /// At most `limit` nodes (capped at `u32::MAX - 1`, the default): a node added past it is
    /// not stored (its closure is dropped at once), and [`build`](Self::build) refuses the graph
    /// with an error that gives the count. So a runaway generator gets a typed error instead of
    /// running the process out of memory.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut builder = dag_scheduler::Graph::builder().node_limit(2);
    /// for name in ["a", "b", "c"] {
    ///     builder.node(name, |_| ());
    /// }
    /// let err = builder.build().unwrap_err();
    /// assert!(err.is_too_many_nodes());
    /// assert_eq!(err.to_string(), "too many nodes: 3 (at most 2)");
    /// ```
    #[must_use]
    pub fn node_limit(mut self, limit: usize) -> Self {
        self.limit = limit.min(MAX_NODES);
        self
    }

    /// Adds a node that produces a `T`; a panic in `f` fails the node.
    ///
    /// `f` is called once per run (a graph runs many times, so it is `Fn`). It reads its
    /// dependencies' outputs from the [`Context`].
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = dag_scheduler::Graph::builder();
    /// let n = builder.node("count", |_| 3usize).key();
    /// let report = builder.build().unwrap().run(&InlineExecutor);
    /// assert_eq!(report.output(n), Some(&3));
    /// ```
    pub fn node<F, T>(&mut self, name: impl NodeName, f: F) -> NodeBuilder<'_, T>
    where
        F: Fn(&Context<'_>) -> T + Send + Sync + 'static,
        T: Any + Send + Sync,
    {
        self.push(Some(name), into_node_fn(f))
    }

    /// Adds a node without a name: the cheapest way to add one (no name to store, hash or
    /// compare), for generated graphs that refer to nodes by their [`NodeKey`]s.
    ///
    /// Errors, reports and DOT show it as `#` and its index (`#17`), and name lookups
    /// ([`Report::outcome`](crate::Report::outcome), [`RunOptions::mark_failed`](crate::RunOptions::mark_failed),
    /// dependencies by name) find it by that text. Giving another node that text as its name is
    /// a duplicate name.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = dag_scheduler::Graph::builder();
    /// let two = builder.unnamed_node(|_| 2).key();
    /// let four = builder.unnamed_node(move |cx| cx.get(two).map(|v| v * 2)).after(two).key();
    /// let graph = builder.build().unwrap();
    /// assert_eq!(graph.dependencies("#1").unwrap(), ["#0"]);
    /// assert_eq!(graph.run(&InlineExecutor).output(four), Some(&Some(4)));
    /// ```
    pub fn unnamed_node<F, T>(&mut self, f: F) -> NodeBuilder<'_, T>
    where
        F: Fn(&Context<'_>) -> T + Send + Sync + 'static,
        T: Any + Send + Sync,
    {
        self.push(None::<&str>, into_node_fn(f))
    }

    /// Adds a node that may fail: `Err(e)` fails it with `e.to_string()` as the message, and its
    /// dependents are skipped.
    ///
    /// # Examples
    ///
    /// ```
    /// use dag_scheduler::{Graph, Outcome};
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = Graph::builder();
    /// builder.try_node("parse", |_| "x1".parse::<u32>());
    /// let report = builder.build().unwrap().run(&InlineExecutor);
    /// assert_eq!(report.outcome("parse"), Some(Outcome::Failed("invalid digit found in string".into())));
    /// ```
    pub fn try_node<F, T, E>(&mut self, name: impl NodeName, f: F) -> NodeBuilder<'_, T>
    where
        F: Fn(&Context<'_>) -> Result<T, E> + Send + Sync + 'static,
        T: Any + Send + Sync,
        E: fmt::Display,
    {
        self.push(Some(name), into_try_node_fn(f))
    }

    /// [`try_node`](Self::try_node) without a name: see [`unnamed_node`](Self::unnamed_node).
    ///
    /// # Examples
    ///
    /// ```
    /// use dag_scheduler::{Graph, Outcome};
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = Graph::builder();
    /// let parse = builder.try_unnamed_node(|_| "x1".parse::<u32>()).key();
    /// builder.unnamed_node(|_| ()).after(parse);
    /// let report = builder.build().unwrap().run(&InlineExecutor);
    /// assert_eq!(report.outcome("#1"), Some(Outcome::Skipped { because: "#0".into() }));
    /// ```
    pub fn try_unnamed_node<F, T, E>(&mut self, f: F) -> NodeBuilder<'_, T>
    where
        F: Fn(&Context<'_>) -> Result<T, E> + Send + Sync + 'static,
        T: Any + Send + Sync,
        E: fmt::Display,
    {
        self.push(None::<&str>, into_try_node_fn(f))
    }

    fn push<T, N: NodeName>(&mut self, name: Option<N>, run: NodeFn) -> NodeBuilder<'_, T> {
        // Indices past u32 are refused by `build`; saturate so adding itself never panics.
        let index = u32::try_from(self.len()).unwrap_or(u32::MAX);
        if self.hot.len() >= self.limit {
            self.refused += 1;
            // User code: a captured value's `Drop` may panic.
            drop_quietly(run);
            return NodeBuilder {
                builder: self,
                index,
                stored: false,
                _output: PhantomData,
            };
        }
        match name {
            Some(name) => {
                if let Err(problem) = self.names.push_name(index, name) {
                    self.bad_name.get_or_insert((index, problem));
                }
            }
            None => self.names.push_unnamed(index),
        }
        self.hot.push(HotNode::new(run));
        self.deps_start.push(self.deps.len() as u32);
        self.floor = 0;
        NodeBuilder {
            builder: self,
            index,
            stored: true,
            _output: PhantomData,
        }
    }

    /// The number of nodes added so far.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut builder = dag_scheduler::Graph::builder();
    /// builder.node("a", |_| ());
    /// assert_eq!(builder.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.hot.len() + self.refused
    }

    /// Whether no node was added.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(dag_scheduler::Graph::builder().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Validates the graph.
    ///
    /// # Errors
    ///
    /// The first problem found, in this order: more nodes than the
    /// [`node_limit`](Self::node_limit) (at most `u32::MAX - 1`); more than `u32::MAX - 1`
    /// dependencies; a node name that could not be formatted (see [`NodeName`]); a duplicate name
    /// (the second use); a dependency naming no node, or a key of another builder; a node that
    /// depends on itself; a cycle (its nodes in order).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut builder = dag_scheduler::Graph::builder();
    /// builder.node("a", |_| ()).after("missing");
    /// assert!(builder.build().unwrap_err().is_unknown_dependency());
    /// ```
    pub fn build(self) -> Result<Graph, GraphBuildError> {
        if self.refused > 0 {
            return Err(GraphBuildError::too_many_nodes(self.len(), self.limit));
        }
        if self.refused_deps > 0 {
            return Err(GraphBuildError::too_many_edges(
                self.deps.len() + self.refused_deps,
            ));
        }
        if let Some((index, problem)) = self.bad_name {
            return Err(GraphBuildError::bad_name(index, problem));
        }
        let n = self.hot.len();
        let mut names = self.names;
        names.shrink_to_fit();
        let keys = names.take_keys();
        NameIndex::check(&names, keys)
            .map_err(|second| GraphBuildError::duplicate_name(names.get(second)))?;
        let hot = self.hot;
        let mut offsets = self.deps_start;
        // Fits: fewer than u32::MAX dependencies in all (checked above).
        offsets.push(self.deps.len() as u32);
        // Each node's number of successors (see `Edges::succ_counts`).
        let mut succ_counts = vec![0u32; n];
        if self.ordered {
            // Nothing to resolve, check, sort or deduplicate (see `ordered`): the dependency
            // lists are the predecessor CSR as they stand. Count each node's successors in one
            // flat pass over the edges (no loop per node).
            let mut deps = self.deps;
            deps.shrink_to_fit();
            for &p in &deps {
                succ_counts[p as usize] += 1;
            }
            let edges = Edges {
                preds: deps,
                offsets,
                owners: Some(self.owners),
                succ_counts,
            };
            let inner = GraphInner::new(names, None, hot, edges, false, self.id)?;
            return Ok(Graph::from_inner(inner));
        }
        drop(self.owners);
        // One pass over the nodes: resolve every dependency to an index, in node order and,
        // within a node, in the order they were added (so the first problem found is the one
        // reported); sort and deduplicate each list in place (the same node named twice, by name
        // and by key, say, is one edge), compacting them into predecessor lists (CSR, offsets
        // rewritten in place); and note each node's in-degree and its number of successors.
        let mut deps = self.deps;
        let mut unresolved = self.unresolved.into_iter();
        // Made at the first dependency given by name, and handed to the graph.
        let mut index: Option<NameIndex> = None;
        // Whether a dependency points forward (only a name can): then the insertion order is not
        // a topological order, and the graph may have a cycle.
        let mut forward = false;
        let (mut start, mut write) = (0, 0);
        for i in 0..n {
            let end = offsets[i + 1] as usize;
            // The common case, checked in one read of the list: every entry an index below
            // `i` (so resolved, known, not `i` itself, not forward), strictly ascending (so
            // distinct). Nothing to resolve, sort or deduplicate: move the list into place if
            // an earlier list shrank, and count the successors.
            let mut floor = 0;
            let simple = deps[start..end].iter().all(|&p| {
                let fits = p >= floor && (p as usize) < i;
                floor = p.wrapping_add(1);
                fits
            });
            if simple {
                let len = end - start;
                if write != start {
                    deps.copy_within(start..end, write);
                }
                for &p in &deps[write..write + len] {
                    succ_counts[p as usize] += 1;
                }
                write += len;
                // Fits: fewer than u32::MAX dependencies in all (checked above).
                offsets[i + 1] = write as u32;
                start = end;
                continue;
            }
            let mut ascending = true;
            let mut previous = None;
            for slot in &mut deps[start..end] {
                let mut p = *slot;
                if p == UNRESOLVED {
                    p = match unresolved.next() {
                        Some((_, Unresolved::Name(name))) => {
                            let index = index.get_or_insert_with(|| NameIndex::index(&names));
                            index.find(&names, &name).ok_or_else(|| {
                                GraphBuildError::unknown_dependency(names.get(i), &name)
                            })?
                        }
                        Some((_, Unresolved::Foreign(key))) => {
                            return Err(GraphBuildError::foreign_key(names.get(i), key));
                        }
                        // Every UNRESOLVED entry has its `unresolved` entry: not reached.
                        None => return Err(GraphBuildError::foreign_key(names.get(i), p)),
                    };
                    *slot = p;
                } else if p as usize >= n {
                    return Err(GraphBuildError::foreign_key(names.get(i), p));
                }
                if p as usize == i {
                    return Err(GraphBuildError::self_dependency(names.get(i)));
                }
                forward |= p as usize > i;
                ascending &= previous < Some(p);
                previous = Some(p);
            }
            if !ascending {
                deps[start..end].sort_unstable();
            }
            let mut last = UNRESOLVED;
            for read in start..end {
                let p = deps[read];
                if p != last {
                    deps[write] = p;
                    write += 1;
                    last = p;
                    // `GraphInner::new` turns the counts into ranges.
                    succ_counts[p as usize] += 1;
                }
            }
            // Fits: fewer than u32::MAX dependencies in all (checked above).
            offsets[i + 1] = write as u32;
            start = end;
        }
        deps.truncate(write);
        deps.shrink_to_fit();
        let edges = Edges {
            preds: deps,
            offsets,
            owners: None,
            succ_counts,
        };
        let inner = GraphInner::new(names, index, hot, edges, forward, self.id)?;
        Ok(Graph::from_inner(inner))
    }
}
