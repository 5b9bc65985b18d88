//! Naming a node: its name, its typed key, and a dependency (a key or a name). Plain data.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

/// A node's name, as [`GraphBuilder::node`](crate::GraphBuilder::node) takes it: any string
/// (`&str`, `String`, a reference to anything that is `AsRef<str>`, `Box<str>`, `Cow<str>`,
/// `Arc<str>`, `Rc<str>`), or [`format_args!`].
///
/// `format_args!("n{i}")` writes the text straight into the builder's name storage: no `String`
/// is allocated, grown and freed per node as with `format!("n{i}")`, which costs more than the
/// rest of adding a node. If the formatting fails (a `Display` impl returns an error or
/// panics), the node is still added, and [`build`](crate::GraphBuilder::build) refuses the
/// graph with an error that says so.
///
/// The trait is sealed: it is implemented for the types above only.
///
/// # Examples
///
/// ```
/// let mut builder = dag_scheduler::Graph::builder();
/// builder.node("fetch", |_| ());
/// for i in 0..3 {
///     builder.node(format_args!("step {i}"), |_| ()).after("fetch");
/// }
/// let graph = builder.build().unwrap();
/// assert_eq!(graph.names().collect::<Vec<_>>(), ["fetch", "step 0", "step 1", "step 2"]);
/// ```
pub trait NodeName: sealed::Sealed {}

pub(crate) mod sealed {
    use std::fmt;

    pub trait Sealed {
        /// Whether writing the name runs user code (a `Display` impl), which may panic.
        const RUNS_USER_CODE: bool = false;

        /// Appends the name's text to `out`; on an error, `out` may hold part of it.
        fn append_to(self, out: &mut String) -> fmt::Result;

        /// The name's text, when it is at hand without running user code: the builder then
        /// copies and hashes it in one go (a short name in a few register moves, where
        /// `append_to`'s `push_str` calls `memcpy`).
        fn text(&self) -> Option<&str> {
            None
        }
    }
}

impl<T: AsRef<str> + ?Sized> NodeName for &T {}
impl<T: AsRef<str> + ?Sized> sealed::Sealed for &T {
    fn append_to(self, out: &mut String) -> fmt::Result {
        out.push_str(self.as_ref());
        Ok(())
    }

    fn text(&self) -> Option<&str> {
        Some(self.as_ref())
    }
}

/// Owned string types: the text is copied into the builder, the value dropped (keeping the
/// user's `String` instead would cost 24 B per node and its free at the graph's drop).
macro_rules! owned_names {
    ($($ty:ty),*) => {$(
        impl NodeName for $ty {}
        impl sealed::Sealed for $ty {
            fn append_to(self, out: &mut String) -> fmt::Result {
                out.push_str(&self);
                Ok(())
            }

            fn text(&self) -> Option<&str> {
                Some(self)
            }
        }
    )*};
}

owned_names!(String, Box<str>, Cow<'_, str>, Arc<str>, Rc<str>);

impl NodeName for fmt::Arguments<'_> {}
impl sealed::Sealed for fmt::Arguments<'_> {
    const RUNS_USER_CODE: bool = true;

    fn append_to(self, out: &mut String) -> fmt::Result {
        match self.as_str() {
            Some(text) => {
                out.push_str(text);
                Ok(())
            }
            None => fmt::Write::write_fmt(out, self),
        }
    }

    fn text(&self) -> Option<&str> {
        self.as_str()
    }
}

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
