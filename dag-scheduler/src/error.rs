//! Typed errors: every refusal names the nodes that were wrong.

use std::fmt;

/// [`GraphBuilder::build`](crate::GraphBuilder::build) refused the graph.
///
/// The message names the offending nodes; branch on the kind with the `is_*` accessors, and read
/// the nodes of a cycle, in order, with [`cycle`](Self::cycle).
///
/// # Examples
///
/// ```
/// use dag_scheduler::Graph;
///
/// let mut builder = Graph::builder();
/// builder.node("a", |_| ()).after("c");
/// builder.node("b", |_| ()).after("a");
/// builder.node("c", |_| ()).after("b");
/// let err = builder.build().unwrap_err();
/// assert!(err.is_cycle());
/// assert_eq!(err.to_string(), "cycle: a -> b -> c -> a");
/// assert_eq!(err.cycle().unwrap(), ["a", "b", "c"]);
/// ```
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct GraphBuildError {
    kind: BuildErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
enum BuildErrorKind {
    #[error("{}", CycleDisplay(.0))]
    Cycle(Vec<String>),
    #[error("node `{node}` depends on unknown node `{dependency}`")]
    UnknownDependency { node: String, dependency: String },
    #[error("node `{node}` depends on a node of another graph builder (index {index})")]
    ForeignKey { node: String, index: u32 },
    #[error("duplicate node name `{0}`")]
    DuplicateName(String),
    #[error("node `{0}` depends on itself")]
    SelfDependency(String),
    #[error("the name of node #{index} could not be formatted: {problem}")]
    BadName { index: u32, problem: String },
    #[error("too many nodes: {count} (at most {limit})")]
    TooManyNodes { count: usize, limit: usize },
    #[error("too many dependencies: {0} (at most {max})", max = u32::MAX - 1)]
    TooManyEdges(usize),
}

struct CycleDisplay<'a>(&'a [String]);

impl fmt::Display for CycleDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cycle: ")?;
        for name in self.0 {
            write!(f, "{name} -> ")?;
        }
        // A cycle is never empty: it has at least two nodes (a self-loop is its own error).
        f.write_str(self.0.first().map_or("", String::as_str))
    }
}

impl fmt::Debug for GraphBuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.kind, f)
    }
}

impl GraphBuildError {
    pub(crate) fn new_cycle(nodes: Vec<String>) -> Self {
        GraphBuildError {
            kind: BuildErrorKind::Cycle(nodes),
        }
    }
    pub(crate) fn unknown_dependency(node: &str, dependency: &str) -> Self {
        GraphBuildError {
            kind: BuildErrorKind::UnknownDependency {
                node: node.to_owned(),
                dependency: dependency.to_owned(),
            },
        }
    }
    pub(crate) fn foreign_key(node: &str, index: u32) -> Self {
        GraphBuildError {
            kind: BuildErrorKind::ForeignKey {
                node: node.to_owned(),
                index,
            },
        }
    }
    pub(crate) fn duplicate_name(name: &str) -> Self {
        GraphBuildError {
            kind: BuildErrorKind::DuplicateName(name.to_owned()),
        }
    }
    pub(crate) fn self_dependency(node: &str) -> Self {
        GraphBuildError {
            kind: BuildErrorKind::SelfDependency(node.to_owned()),
        }
    }
    pub(crate) fn bad_name(index: u32, problem: String) -> Self {
        GraphBuildError {
            kind: BuildErrorKind::BadName { index, problem },
        }
    }
    pub(crate) fn too_many_nodes(count: usize, limit: usize) -> Self {
        GraphBuildError {
            kind: BuildErrorKind::TooManyNodes { count, limit },
        }
    }
    pub(crate) fn too_many_edges(count: usize) -> Self {
        GraphBuildError {
            kind: BuildErrorKind::TooManyEdges(count),
        }
    }

    /// The graph has a cycle.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut builder = dag_scheduler::Graph::builder();
    /// builder.node("a", |_| ()).after("ghost");
    /// let err = builder.build().unwrap_err();
    /// assert!(!err.is_cycle());
    /// ```
    pub fn is_cycle(&self) -> bool {
        matches!(self.kind, BuildErrorKind::Cycle(_))
    }

    /// The nodes of one cycle in dependency order (each runs before the next, the last before the
    /// first), starting with the node added first; `None` for other errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut builder = dag_scheduler::Graph::builder();
    /// builder.node("a", |_| ()).after("ghost");
    /// let err = builder.build().unwrap_err();
    /// assert_eq!(err.cycle(), None);
    /// ```
    pub fn cycle(&self) -> Option<&[String]> {
        match &self.kind {
            BuildErrorKind::Cycle(nodes) => Some(nodes),
            _ => None,
        }
    }

    /// A dependency names no node of this builder (or is a key of another builder).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut builder = dag_scheduler::Graph::builder();
    /// builder.node("a", |_| ()).after("ghost");
    /// let err = builder.build().unwrap_err();
    /// assert!(err.is_unknown_dependency());
    /// ```
    pub fn is_unknown_dependency(&self) -> bool {
        matches!(
            self.kind,
            BuildErrorKind::UnknownDependency { .. } | BuildErrorKind::ForeignKey { .. }
        )
    }

    /// Two nodes have the same name.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut builder = dag_scheduler::Graph::builder();
    /// builder.node("a", |_| ()).after("ghost");
    /// let err = builder.build().unwrap_err();
    /// assert!(!err.is_duplicate_name());
    /// ```
    pub fn is_duplicate_name(&self) -> bool {
        matches!(self.kind, BuildErrorKind::DuplicateName(_))
    }

    /// A node depends on itself.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut builder = dag_scheduler::Graph::builder();
    /// builder.node("a", |_| ()).after("ghost");
    /// let err = builder.build().unwrap_err();
    /// assert!(!err.is_self_dependency());
    /// ```
    pub fn is_self_dependency(&self) -> bool {
        matches!(self.kind, BuildErrorKind::SelfDependency(_))
    }

    /// The graph has more nodes than its builder's
    /// [`node_limit`](crate::GraphBuilder::node_limit) (at most `u32::MAX - 1`), or more
    /// dependencies than a `u32` index can name.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut builder = dag_scheduler::Graph::builder();
    /// builder.node("a", |_| ()).after("ghost");
    /// let err = builder.build().unwrap_err();
    /// assert!(!err.is_too_many_nodes());
    /// ```
    pub fn is_too_many_nodes(&self) -> bool {
        matches!(
            self.kind,
            BuildErrorKind::TooManyNodes { .. } | BuildErrorKind::TooManyEdges(_)
        )
    }
}

/// [`Graph::start_with`](crate::Graph::start_with) refused its options.
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
/// let err = graph
///     .start_with(&InlineExecutor, RunOptions::new().mark_failed("nope", "cached failure"))
///     .unwrap_err();
/// assert_eq!(err.to_string(), "cannot mark unknown node `nope` as failed");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// [`RunOptions::mark_failed`](crate::RunOptions::mark_failed) named no node of the graph.
    #[error("cannot mark unknown node `{0}` as failed")]
    UnknownNode(String),
}
