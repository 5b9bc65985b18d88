//! Naming a node: its typed key, and a dependency (a key or a name). Plain data.

use std::fmt;
use std::marker::PhantomData;

/// A typed reference to a node, returned when the node is added: dependents read the node's
/// output through it with [`Context::get`](crate::Context::get), and the caller reads it from a
/// [`Report`](crate::Report) with [`Report::output`](crate::Report::output).
///
/// A key is also a dependency: `.after(key)` is `.after(name)` without the name lookup.
///
/// # Examples
///
/// ```
/// use dag_scheduler::{Graph, NodeKey};
/// use pool_core::InlineExecutor;
///
/// let mut builder = Graph::builder();
/// let answer: NodeKey<u32> = builder.node("answer", |_| 42).key();
/// let graph = builder.build().unwrap();
/// let report = graph.run(&InlineExecutor);
/// assert_eq!(report.output(answer), Some(&42));
/// ```
pub struct NodeKey<T> {
    pub(crate) builder: u64,
    pub(crate) index: u32,
    _output: PhantomData<fn() -> T>,
}

impl<T> NodeKey<T> {
    pub(crate) fn new(builder: u64, index: u32) -> Self {
        NodeKey {
            builder,
            index,
            _output: PhantomData,
        }
    }

    /// The node's index in insertion order (0 for the first node added).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut builder = dag_scheduler::Graph::builder();
    /// builder.node("first", |_| ());
    /// assert_eq!(builder.node("second", |_| ()).key().index(), 1);
    /// ```
    pub fn index(self) -> usize {
        self.index as usize
    }
}

impl<T> Clone for NodeKey<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for NodeKey<T> {}

impl<T> PartialEq for NodeKey<T> {
    fn eq(&self, other: &Self) -> bool {
        self.builder == other.builder && self.index == other.index
    }
}

impl<T> Eq for NodeKey<T> {}

impl<T> fmt::Debug for NodeKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeKey({})", self.index)
    }
}

/// One dependency of a node: a node name, or a [`NodeKey`].
///
/// You rarely name this type: [`NodeBuilder::after`](crate::NodeBuilder::after) takes anything that converts into it.
///
/// # Examples
///
/// ```
/// use dag_scheduler::{Dependency, Graph};
///
/// let mut builder = Graph::builder();
/// let a = builder.node("a", |_| 1).key();
/// let by_key: Dependency = a.into();
/// let by_name: Dependency = "a".into();
/// builder.node("b", |_| ()).after(by_key).after(by_name);
/// assert!(builder.build().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency(pub(crate) DepKind);

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DepKind {
    Name(String),
    Key { builder: u64, index: u32 },
}

impl From<&str> for Dependency {
    fn from(name: &str) -> Self {
        Dependency(DepKind::Name(name.to_owned()))
    }
}

impl From<String> for Dependency {
    fn from(name: String) -> Self {
        Dependency(DepKind::Name(name))
    }
}

impl From<&String> for Dependency {
    fn from(name: &String) -> Self {
        Dependency(DepKind::Name(name.clone()))
    }
}

impl<T> From<NodeKey<T>> for Dependency {
    fn from(key: NodeKey<T>) -> Self {
        Dependency(DepKind::Key {
            builder: key.builder,
            index: key.index,
        })
    }
}

impl<T> From<&NodeKey<T>> for Dependency {
    fn from(key: &NodeKey<T>) -> Self {
        (*key).into()
    }
}
