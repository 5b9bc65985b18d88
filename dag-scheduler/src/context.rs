//! What a running node sees: its dependencies' outputs and the run's cancel flag.

use std::any::Any;
use std::fmt;

use pool_core::sync::{AtomicBool, Ordering};

use crate::key::NodeKey;
use crate::state::{NodeState, Slot};
use crate::topology::Topology;

/// A node's closure, type-erased: its output boxed as `Any` (no allocation for `()`), or the
/// failure message.
pub(crate) type NodeFn =
    Box<dyn Fn(&Context<'_>) -> Result<Box<dyn Any + Send + Sync>, String> + Send + Sync>;

/// Handed to a node's closure while it runs.
///
/// # Examples
///
/// ```
/// use dag_scheduler::Graph;
/// use pool_core::InlineExecutor;
///
/// let mut builder = Graph::builder();
/// let text = builder.node("text", |_| String::from("hello")).key();
/// let len = builder
///     .node("len", move |cx| {
///         assert_eq!(cx.name(), "len");
///         assert!(!cx.is_cancelled());
///         cx.get(text).map(|t| t.len())
///     })
///     .after(text)
///     .key();
/// let report = builder.build().unwrap().run(&InlineExecutor);
/// assert_eq!(report.output(len), Some(&Some(5)));
/// ```
pub struct Context<'a> {
    topology: &'a Topology,
    /// The run's node states: this node's dependencies are decided (see `get`).
    nodes: &'a [NodeState],
    cancelled: &'a AtomicBool,
    index: u32,
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("node", &self.name())
            .finish()
    }
}

impl<'a> Context<'a> {
    pub(crate) fn new(
        topology: &'a Topology,
        nodes: &'a [NodeState],
        cancelled: &'a AtomicBool,
        index: u32,
    ) -> Self {
        Context {
            topology,
            nodes,
            cancelled,
            index,
        }
    }

    /// The running node's name.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = dag_scheduler::Graph::builder();
    /// let me = builder.node("me", |cx| cx.name().to_owned()).key();
    /// assert_eq!(builder.build().unwrap().run(&InlineExecutor).output(me).unwrap(), "me");
    /// ```
    pub fn name(&self) -> &'a str {
        self.topology.name(self.index as usize)
    }

    /// The output of dependency `key` in this run.
    ///
    /// `None` when `key` is not a direct dependency of this node (there would be no ordering
    /// guarantee), or when that dependency failed, was skipped or cancelled (only nodes marked
    /// [`run_even_if_failed`](crate::NodeBuilder::run_even_if_failed) run then).
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = dag_scheduler::Graph::builder();
    /// let a = builder.node("a", |_| 20).key();
    /// let b = builder.node("b", move |cx| cx.get(a).map(|v| v + 1)).after(a).key();
    /// assert_eq!(builder.build().unwrap().run(&InlineExecutor).output(b), Some(&Some(21)));
    /// ```
    pub fn get<T: 'static>(&self, key: NodeKey<T>) -> Option<&'a T> {
        let topology = self.topology;
        if key.builder != topology.builder_id
            || !topology.depends_on(self.index as usize, key.index)
        {
            return None;
        }
        // SAFETY: `key` is a dependency of this node, and this node runs only after every
        // dependency's counter release, which follows the dependency's slot write.
        match unsafe { self.nodes[key.index as usize].slot() } {
            Slot::Output(value) => value.downcast_ref::<T>(),
            _ => None,
        }
    }

    /// The names of this node's dependencies that produced no output (failed, skipped or
    /// cancelled), in dependency order. Empty unless the node runs even if a dependency failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = dag_scheduler::Graph::builder();
    /// builder.try_node("bad", |_| Err::<(), _>("no"));
    /// let m = builder
    ///     .node("m", |cx| cx.missing_inputs().collect::<Vec<_>>().join(","))
    ///     .after("bad")
    ///     .run_even_if_failed()
    ///     .key();
    /// assert_eq!(builder.build().unwrap().run(&InlineExecutor).output(m).unwrap(), "bad");
    /// ```
    pub fn missing_inputs(&self) -> impl Iterator<Item = &'a str> + 'a {
        let (topology, nodes) = (self.topology, self.nodes);
        topology
            .preds_of(self.index as usize)
            .iter()
            // SAFETY: as in `get`: every dependency's slot was written before this node ran.
            .filter(move |&&p| !matches!(unsafe { nodes[p as usize].slot() }, Slot::Output(_)))
            .map(move |&p| topology.name(p as usize))
    }

    /// Whether the run was cancelled: a long node should check this now and then and return
    /// early (cooperative cancellation; it cannot be interrupted).
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::InlineExecutor;
    ///
    /// let mut builder = dag_scheduler::Graph::builder();
    /// let c = builder.node("c", |cx| cx.is_cancelled()).key();
    /// assert_eq!(builder.build().unwrap().run(&InlineExecutor).output(c), Some(&false));
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}
