//! Dependency graphs whose nodes are remote tasks: [`RemoteGraph`].
//!
//! A remote node is an ordinary dag-scheduler node whose closure builds the task's arguments
//! from its dependencies' outputs ([`Context::get`]), enqueues the task through the
//! [`RemoteExecutor`], and waits for its output, which becomes the node's output. So outputs pass
//! between nodes through the engine (each is the JSON a worker stored, decoded on this side), and
//! everything else is dag-scheduler's own: a failed remote node skips its dependents exactly as a
//! local failure does, and the [`Report`] (outcomes, times, critical path, Chrome trace) is the
//! local one.
//!
//! # Waiting without starving the local pools
//!
//! dag-scheduler's nodes are synchronous, so a remote node blocks a thread while its task is
//! away. That thread belongs to the graph's own small pool (`waiters` threads, default
//! [`DEFAULT_WAITERS`]), never to a pool of the caller: a `ThreadPool` running local work keeps
//! every thread, however many remote nodes wait. The same bound caps the graph's remote jobs in
//! flight: more ready nodes than waiters queue on that pool, in dag-scheduler's order (the
//! critical path first).
//!
//! An enqueue the backend refuses ([`RemoteError::Backend`]: nothing was enqueued; SQLite does
//! so at once when writers of several processes conflict) is tried again a few times, under a
//! second in all, before it fails the node.
//!
//! Each wait ends, because one of these happens:
//! - the outcome arrives: a value, or a failure after the executor's `max_attempts` (the engine
//!   bounds the attempts; a dead worker's job is re-run by a live one);
//! - the run is cancelled ([`RemoteGraph::run_timeout`] does so at its deadline): a waiting node
//!   sees it within [`CANCEL_CHECK`], cancels its job if no worker has claimed it (the node fails
//!   with [`RemoteError::Cancelled`]) and otherwise stops waiting
//!   ([`RemoteGraphError::Abandoned`]: the job runs on, its outcome is discarded);
//! - the executor is dropped ([`RemoteError::Detached`]).
//!
//! With no live worker at all only the last two end it, so give a run that may meet an empty
//! cluster a deadline with `run_timeout`.
//!
//! # Typed failures
//!
//! dag-scheduler records a failed node as a message ([`Outcome::Failed`](dag_scheduler::Outcome));
//! the [`RemoteReport`] of a run keeps, beside it, the typed [`RemoteGraphError`] of every remote
//! node that failed (an unknown task name, an output that does not decode, a panic after its
//! attempts, ...). Collecting them per run is why one `RemoteGraph` runs one run at a time
//! (a second `run` waits for the first); build two graphs to run two at once.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use dag_scheduler::{Context, Graph, GraphBuildError, GraphBuilder, NodeBuilder, Report};
use pool_core::sync::{Arc, Mutex};
use pool_core::{Priority, ThreadPool};
use thiserror::Error;

use crate::{RemoteError, RemoteExecutor, RemoteHandle, RemoteTask};

/// How often a waiting remote node looks at the run's cancel flag. dag-scheduler's cancel is a
/// flag a running node reads (there is nothing to be woken by), so the wait for the outcome is
/// cut into slices this long; the outcome itself wakes the node at once.
pub const CANCEL_CHECK: Duration = Duration::from_millis(50);

/// How many times a remote node offers its job to a backend that refuses the enqueue.
const ENQUEUE_TRIES: u32 = 5;

/// Threads of a graph's own pool when [`RemoteGraphBuilder::waiters`] is not set: its remote
/// jobs in flight at most, at the cost of one mostly sleeping thread each.
pub const DEFAULT_WAITERS: usize = 8;

/// Why a remote graph could not be built, or why one of its remote nodes failed.
///
/// # Examples
///
/// ```
/// use pool_remote::{RemoteError, RemoteGraphError};
///
/// let e = RemoteGraphError::from(RemoteError::UnknownTask { name: "resize".into() });
/// assert_eq!(e.remote(), Some(&RemoteError::UnknownTask { name: "resize".into() }));
/// assert_eq!(e.to_string(), "no worker has a task registered as `resize`");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RemoteGraphError {
    /// dag-scheduler refused the graph (a cycle, an unknown dependency, a duplicate name, ...).
    #[error(transparent)]
    Graph(#[from] GraphBuildError),
    /// A builder setting was out of range.
    #[error("bad setting `{setting}`: {message}")]
    Build {
        /// The setting's name.
        setting: &'static str,
        /// Why it was refused.
        message: String,
    },
    /// The remote task of a node did not produce a value: its typed outcome (unknown task,
    /// undecodable arguments or output, panicked or failed after its attempts, cancelled,
    /// backend error, executor gone).
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The run was cancelled after a worker had claimed the node's task: the node stopped
    /// waiting, the task runs on and its outcome is discarded (at-least-once: it may have had
    /// its effects).
    #[error("the run was cancelled while task `{task}` ran remotely; its outcome is discarded")]
    Abandoned {
        /// The task name.
        task: String,
    },
}

impl RemoteGraphError {
    /// The remote task's typed outcome, when that is what failed the node.
    pub fn remote(&self) -> Option<&RemoteError> {
        match self {
            RemoteGraphError::Remote(e) => Some(e),
            _ => None,
        }
    }
}

/// What the remote nodes of one graph share.
struct RemoteNodes {
    remote: Arc<RemoteExecutor>,
    /// The names on the graph's critical path, set by `build`: their jobs go to the engine at
    /// `High` unless the node has a priority of its own, as dag-scheduler does locally.
    critical: Mutex<HashSet<String>>,
    /// The typed failures of the run in progress (runs are one at a time: see the module docs).
    failures: Mutex<Vec<(String, RemoteGraphError)>>,
}

impl RemoteNodes {
    /// Records a remote node's failure for the report; dag-scheduler gets its message.
    fn record<O>(
        &self,
        cx: &Context<'_>,
        outcome: Result<O, RemoteGraphError>,
    ) -> Result<O, String> {
        outcome.map_err(|failure| {
            let message = failure.to_string();
            self.failures.lock().push((cx.name().to_owned(), failure));
            message
        })
    }

    /// Enqueues the node's job. A refused enqueue ([`RemoteError::Backend`]: nothing was
    /// enqueued) is tried again, [`ENQUEUE_TRIES`] times in all with a doubling pause: SQLite
    /// refuses a write at once, whatever its busy timeout, when another process's write
    /// conflicts with this one, and a node should not fail for that. The arguments are built
    /// again for each try (they were moved into the refused one).
    fn submit<T>(
        &self,
        cx: &Context<'_>,
        priority: Priority,
        args: &dyn Fn(&Context<'_>) -> T::Args,
    ) -> Result<RemoteHandle<T::Output>, RemoteError>
    where
        T: RemoteTask,
    {
        let mut pause = Duration::from_millis(50);
        for _ in 1..ENQUEUE_TRIES {
            match self.remote.submit_at::<T>(priority, args(cx)) {
                Err(RemoteError::Backend { .. }) if !cx.is_cancelled() => {
                    std::thread::sleep(pause);
                    pause *= 2;
                }
                submitted => return submitted,
            }
        }
        self.remote.submit_at::<T>(priority, args(cx))
    }

    /// A remote node's body: submit, then wait for the outcome or the run's cancel.
    fn submit_and_wait<T>(
        &self,
        cx: &Context<'_>,
        priority: Option<Priority>,
        args: &dyn Fn(&Context<'_>) -> T::Args,
    ) -> Result<T::Output, RemoteGraphError>
    where
        T: RemoteTask,
    {
        let priority = priority.unwrap_or_else(|| {
            if self.critical.lock().contains(cx.name()) {
                Priority::High
            } else {
                Priority::Normal
            }
        });
        let mut handle = self.submit::<T>(cx, priority, args)?;
        loop {
            match handle.join_timeout(CANCEL_CHECK) {
                Ok(output) => return Ok(output),
                Err(Err(failure)) => return Err(failure.into()),
                Err(Ok(pending)) => handle = pending,
            }
            if cx.is_cancelled() {
                // A won cancel settles the handle before `cancel` returns; a lost one means a
                // worker has the job, and its outcome may just have arrived: look once more.
                handle.cancel()?;
                return match handle.join_timeout(Duration::ZERO) {
                    Ok(output) => Ok(output),
                    Err(Err(failure)) => Err(failure.into()),
                    Err(Ok(running)) => Err(RemoteGraphError::Abandoned {
                        task: running.task_name().to_owned(),
                    }),
                };
            }
        }
    }
}

/// Builds a [`RemoteGraph`]: remote nodes with [`remote`](Self::remote), local ones with every
/// [`GraphBuilder`] method (the builder dereferences to one).
///
/// # Examples
///
/// ```no_run
/// use pool_remote::{BoxError, RemoteExecutor, RemoteGraph, RemoteTask};
/// use std::sync::Arc;
///
/// struct Square;
/// impl RemoteTask for Square {
///     const NAME: &'static str = "square";
///     type Args = u64;
///     type Output = u64;
///     fn run(&self, x: u64) -> Result<u64, BoxError> { Ok(x * x) }
/// }
///
/// let remote = Arc::new(RemoteExecutor::builder("sqlite://jobs.db").build()?);
/// let mut builder = RemoteGraph::builder(remote).waiters(4);
/// let three = builder.node("three", |_| 3u64).key();                 // local
/// let nine = builder.remote::<Square>("nine", move |cx| *cx.get(three).unwrap()).after(three).key();
/// builder.node("print", move |cx| println!("{:?}", cx.get(nine))).after(nine);
/// let graph = builder.build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct RemoteGraphBuilder {
    graph: GraphBuilder,
    nodes: Arc<RemoteNodes>,
    waiters: usize,
}

impl fmt::Debug for RemoteGraphBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteGraphBuilder")
            .field("nodes", &self.graph.len())
            .field("waiters", &self.waiters)
            .finish()
    }
}

impl RemoteGraphBuilder {
    /// Threads of the graph's own pool (default [`DEFAULT_WAITERS`], at least 1): how many
    /// remote nodes wait for their tasks at once, and so the most remote jobs the graph has in
    /// flight. Local nodes of the graph run on these threads too.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("pool-remote-{}-{}", "waiters", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # let url = format!("sqlite://{}", dir.join("jobs.db").display());
    /// use pool_remote::{RemoteExecutor, RemoteGraph, RemoteGraphError};
    /// use std::sync::Arc;
    ///
    /// let remote = Arc::new(RemoteExecutor::builder(&url).build()?);
    /// let graph = RemoteGraph::builder(Arc::clone(&remote)).waiters(2).build()?;
    /// assert!(format!("{graph:?}").contains("waiters: 2"));
    /// let err = RemoteGraph::builder(remote).waiters(0).build().unwrap_err();
    /// assert!(matches!(err, RemoteGraphError::Build { setting: "waiters", .. }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn waiters(mut self, threads: usize) -> Self {
        self.waiters = threads;
        self
    }

    /// Adds a node that runs task `T` remotely: `args` builds the arguments from the
    /// dependencies' outputs (read with [`Context::get`]), and the task's output is the node's.
    ///
    /// The job goes to the engine at `High` if the node is on the graph's critical path, at
    /// `Normal` otherwise (as dag-scheduler submits local nodes); [`remote_at`](Self::remote_at)
    /// sets it. A panic in `args` fails the node, and nothing is sent.
    ///
    /// # Examples
    ///
    /// See [`RemoteGraphBuilder`].
    // `args` is `impl Fn` (not a named parameter) so that callers name only the task:
    // `remote::<Square>(..)`.
    pub fn remote<T>(
        &mut self,
        name: impl AsRef<str>,
        args: impl Fn(&Context<'_>) -> T::Args + Send + Sync + 'static,
    ) -> NodeBuilder<'_, T::Output>
    where
        T: RemoteTask,
        T::Output: Sync,
    {
        self.add::<T>(name.as_ref(), None, args)
    }

    /// Like [`remote`](Self::remote), with the engine priority of the node's job fixed.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use pool_remote::{BoxError, RemoteExecutor, RemoteGraph, RemoteTask};
    /// # use std::sync::Arc;
    /// # struct Square;
    /// # impl RemoteTask for Square {
    /// #     const NAME: &'static str = "square";
    /// #     type Args = u64;
    /// #     type Output = u64;
    /// #     fn run(&self, x: u64) -> Result<u64, BoxError> { Ok(x * x) }
    /// # }
    /// use pool_core::Priority;
    ///
    /// let remote = Arc::new(RemoteExecutor::builder("sqlite://jobs.db").build()?);
    /// let mut builder = RemoteGraph::builder(remote);
    /// builder.remote_at::<Square>(Priority::Idle, "warm cache", |_| 0);
    /// # Ok::<(), pool_remote::RemoteError>(())
    /// ```
    pub fn remote_at<T>(
        &mut self,
        priority: Priority,
        name: impl AsRef<str>,
        args: impl Fn(&Context<'_>) -> T::Args + Send + Sync + 'static,
    ) -> NodeBuilder<'_, T::Output>
    where
        T: RemoteTask,
        T::Output: Sync,
    {
        self.add::<T>(name.as_ref(), Some(priority), args)
    }

    fn add<T>(
        &mut self,
        name: &str,
        priority: Option<Priority>,
        args: impl Fn(&Context<'_>) -> T::Args + Send + Sync + 'static,
    ) -> NodeBuilder<'_, T::Output>
    where
        T: RemoteTask,
        T::Output: Sync,
    {
        let nodes = Arc::clone(&self.nodes);
        self.graph.try_node(name, move |cx| {
            nodes.record(cx, nodes.submit_and_wait::<T>(cx, priority, &args))
        })
    }

    /// Validates the graph and starts its pool.
    ///
    /// # Errors
    ///
    /// [`RemoteGraphError::Graph`] for what dag-scheduler refuses (naming the nodes),
    /// [`RemoteGraphError::Build`] for `waiters(0)` or a pool that cannot start.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("pool-remote-{}-{}", "build", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # let url = format!("sqlite://{}", dir.join("jobs.db").display());
    /// # struct Square;
    /// # impl pool_remote::RemoteTask for Square {
    /// #     const NAME: &'static str = "square";
    /// #     type Args = u64;
    /// #     type Output = u64;
    /// #     fn run(&self, x: u64) -> Result<u64, pool_remote::BoxError> { Ok(x * x) }
    /// # }
    /// use pool_remote::{RemoteExecutor, RemoteGraph, RemoteGraphError};
    /// use std::sync::Arc;
    ///
    /// let remote = Arc::new(RemoteExecutor::builder(&url).build()?);
    /// let mut builder = RemoteGraph::builder(remote);
    /// builder.remote::<Square>("a", |_| 1).after("b");
    /// builder.remote::<Square>("b", |_| 2).after("a");
    /// match builder.build().unwrap_err() {
    ///     RemoteGraphError::Graph(e) => assert_eq!(e.to_string(), "cycle: a -> b -> a"),
    ///     other => panic!("{other}"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build(self) -> Result<RemoteGraph, RemoteGraphError> {
        if self.waiters == 0 {
            return Err(RemoteGraphError::Build {
                setting: "waiters",
                message: "must be at least 1".into(),
            });
        }
        let graph = self.graph.build()?;
        *self.nodes.critical.lock() = graph
            .critical_path()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let pool = ThreadPool::builder()
            .threads(self.waiters)
            .thread_name("pool-remote-graph")
            .build()
            .map_err(|e| RemoteGraphError::Build {
                setting: "waiters",
                message: e.to_string(),
            })?;
        Ok(RemoteGraph {
            graph,
            pool: Arc::new(pool),
            nodes: self.nodes,
            one_run: Mutex::new(()),
        })
    }
}

impl Deref for RemoteGraphBuilder {
    type Target = GraphBuilder;

    fn deref(&self) -> &GraphBuilder {
        &self.graph
    }
}

/// Local nodes are added with dag-scheduler's own methods (`node`, `try_node`, `after`, ...).
impl DerefMut for RemoteGraphBuilder {
    fn deref_mut(&mut self) -> &mut GraphBuilder {
        &mut self.graph
    }
}

/// A validated graph of remote (and local) nodes, with the small pool its nodes wait on.
///
/// # Examples
///
/// ```
/// use pool_core::Priority;
/// use pool_remote::{BoxError, Registry, RemoteExecutor, RemoteGraph, RemoteTask, Worker};
/// use std::sync::Arc;
///
/// struct Square;
/// impl RemoteTask for Square {
///     const NAME: &'static str = "square";
///     type Args = u64;
///     type Output = u64;
///     fn run(&self, x: u64) -> Result<u64, BoxError> {
///         Ok(x * x)
///     }
/// }
///
/// # let dir = std::env::temp_dir().join(format!("pool-remote-graph-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # let url = format!("sqlite://{}", dir.join("jobs.db").display());
/// let remote = Arc::new(RemoteExecutor::builder(&url).build()?);
/// let mut builder = RemoteGraph::builder(Arc::clone(&remote));
/// let two = builder.remote::<Square>("two", |_| 2).key();
/// let four = builder.remote::<Square>("four", move |cx| *cx.get(two).unwrap()).after(two).key();
/// let graph = builder.build()?;
///
/// // A worker, here on a thread of this process (usually other processes or machines).
/// let worker = Worker::builder(&url, pool_remote::Registry::new().register(Square)).threads(1).build()?;
/// let (stop, stopped) = std::sync::mpsc::channel::<()>();
/// let running = std::thread::spawn(move || {
///     worker.run_until(async move {
///         tokio::task::spawn_blocking(move || stopped.recv()).await.ok();
///     })
/// });
///
/// let report = graph.run();
/// assert_eq!(report.output(four), Some(&16));
/// assert!(report.is_success());
/// stop.send(()).unwrap();
/// running.join().unwrap()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RemoteGraph {
    graph: Graph,
    pool: Arc<ThreadPool>,
    nodes: Arc<RemoteNodes>,
    /// Held for a whole run: the typed failures are collected per run.
    one_run: Mutex<()>,
}

impl fmt::Debug for RemoteGraph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteGraph")
            .field("nodes", &self.graph.len())
            .field("waiters", &self.pool.threads())
            .finish()
    }
}

impl RemoteGraph {
    /// A builder whose remote nodes submit through `remote`.
    ///
    /// # Examples
    ///
    /// See [`RemoteGraphBuilder`].
    pub fn builder(remote: Arc<RemoteExecutor>) -> RemoteGraphBuilder {
        RemoteGraphBuilder {
            graph: Graph::builder(),
            nodes: Arc::new(RemoteNodes {
                remote,
                critical: Mutex::new(HashSet::new()),
                failures: Mutex::new(Vec::new()),
            }),
            waiters: DEFAULT_WAITERS,
        }
    }

    /// The validated graph: its names, dependencies, critical path and DOT text.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn show(graph: &pool_remote::RemoteGraph) {
    /// println!("{}", graph.graph().to_dot());
    /// println!("longest chain: {:?}", graph.graph().critical_path());
    /// # }
    /// ```
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Runs the graph on its pool and blocks until every node has an outcome (see the module
    /// docs for why each remote wait ends). A second call waits for the first to finish.
    ///
    /// # Examples
    ///
    /// See [`RemoteGraph`].
    pub fn run(&self) -> RemoteReport {
        self.run_until(None)
    }

    /// Like [`run`](Self::run), but cancels the run once `timeout` has passed: unstarted nodes
    /// are cancelled, waiting remote nodes cancel their unclaimed jobs (or stop waiting for
    /// claimed ones) within [`CANCEL_CHECK`]. Bounds a run even when no worker is alive.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("pool-remote-{}-{}", "run-timeout", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # let url = format!("sqlite://{}", dir.join("jobs.db").display());
    /// # struct Square;
    /// # impl pool_remote::RemoteTask for Square {
    /// #     const NAME: &'static str = "square";
    /// #     type Args = u64;
    /// #     type Output = u64;
    /// #     fn run(&self, x: u64) -> Result<u64, pool_remote::BoxError> { Ok(x * x) }
    /// # }
    /// use dag_scheduler::Outcome;
    /// use pool_remote::{RemoteError, RemoteExecutor, RemoteGraph, RemoteGraphError};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let remote = Arc::new(RemoteExecutor::builder(&url).build()?);
    /// let mut builder = RemoteGraph::builder(remote);
    /// builder.remote::<Square>("first", |_| 1);
    /// builder.node("then", |_| ()).after("first");
    /// let graph = builder.build()?;
    ///
    /// // No worker is running: the deadline ends the run, and the unclaimed job is cancelled.
    /// let report = graph.run_timeout(Duration::from_millis(100));
    /// assert!(report.was_cancelled());
    /// assert_eq!(
    ///     report.failure("first"),
    ///     Some(&RemoteGraphError::Remote(RemoteError::Cancelled { task: "square".into() }))
    /// );
    /// assert_eq!(report.outcome("then"), Some(Outcome::Cancelled));
    /// assert_eq!(report.failures().count(), 1);
    /// let report: dag_scheduler::Report = report.into_report();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run_timeout(&self, timeout: Duration) -> RemoteReport {
        self.run_until(Some(timeout))
    }

    fn run_until(&self, timeout: Option<Duration>) -> RemoteReport {
        let _one_run = self.one_run.lock();
        self.nodes.failures.lock().clear();
        let handle = self.graph.start(Arc::clone(&self.pool));
        let report = match timeout {
            None => handle.wait(),
            Some(timeout) => handle.wait_timeout(timeout).unwrap_or_else(|late| {
                late.cancel();
                late.wait()
            }),
        };
        let failures = std::mem::take(&mut *self.nodes.failures.lock());
        RemoteReport {
            report,
            failures: failures.into_iter().collect(),
        }
    }
}

/// The report of a [`RemoteGraph`] run: dag-scheduler's [`Report`] (it dereferences to it), and
/// the typed failure of each remote node that failed.
///
/// # Examples
///
/// See [`RemoteGraph::run_timeout`].
pub struct RemoteReport {
    report: Report,
    failures: BTreeMap<String, RemoteGraphError>,
}

impl fmt::Debug for RemoteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteReport")
            .field("report", &self.report)
            .field("failures", &self.failures)
            .finish()
    }
}

impl fmt::Display for RemoteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.report, f)
    }
}

impl RemoteReport {
    /// The typed failure of remote node `node`; `None` if it did not fail (or is local: its
    /// failure is the report's message alone).
    ///
    /// # Examples
    ///
    /// See [`RemoteGraph::run_timeout`].
    pub fn failure(&self, node: &str) -> Option<&RemoteGraphError> {
        self.failures.get(node)
    }

    /// Every failed remote node and its typed failure, by name.
    ///
    /// # Examples
    ///
    /// See [`RemoteGraph::run_timeout`].
    pub fn failures(&self) -> impl Iterator<Item = (&str, &RemoteGraphError)> + '_ {
        self.failures.iter().map(|(name, e)| (name.as_str(), e))
    }

    /// dag-scheduler's report.
    ///
    /// # Examples
    ///
    /// See [`RemoteGraph::run_timeout`].
    pub fn into_report(self) -> Report {
        self.report
    }
}

impl Deref for RemoteReport {
    type Target = Report;

    fn deref(&self) -> &Report {
        &self.report
    }
}
