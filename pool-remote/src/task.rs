//! Remote tasks by name: the [`RemoteTask`] trait and the [`Registry`] a worker binary links.

use std::collections::HashMap;
use std::fmt;

use pool_core::sync::Arc;
use pool_core::QuietDrop;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec;
use crate::wire::WireFailure;

/// The error a [`RemoteTask::run`] returns; its `Display` text reaches the submitter.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A unit of work that can run on another process: a stable name, serde arguments and output.
///
/// Closures cannot cross machines, so remote work is code both sides link (the submitter needs
/// the type, the worker an instance in its [`Registry`]) and data that serde carries.
///
/// **At-least-once.** A worker killed in the middle of a task (SIGKILL, power loss) cannot report
/// it; the engine gives the task to another worker once the dead one misses its heartbeats, so a
/// task can run more than once. Make `run` idempotent: write results under a key derived from the
/// arguments, use upserts, or check-then-act on an external store, never "append one more".
///
/// # Examples
///
/// ```
/// use pool_remote::{BoxError, RemoteTask};
///
/// struct Square;
///
/// impl RemoteTask for Square {
///     const NAME: &'static str = "square";
///     type Args = u64;
///     type Output = u64;
///     fn run(&self, x: u64) -> Result<u64, BoxError> {
///         Ok(x * x)
///     }
/// }
/// assert_eq!(Square.run(7).unwrap(), 49);
/// ```
pub trait RemoteTask: Send + Sync + 'static {
    /// The name the task is registered and sent under; unique per queue and stable across
    /// versions of the program (it is stored in the queue).
    const NAME: &'static str;
    /// The arguments, sent as JSON.
    type Args: Serialize + DeserializeOwned + Send + 'static;
    /// The value the submitter receives, sent back as JSON.
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// Runs the task on a worker's thread pool. An `Err` (or a panic) is a failed attempt; the
    /// engine retries it up to the submitter's `max_attempts`.
    fn run(&self, args: Self::Args) -> Result<Self::Output, BoxError>;
}

/// The JSON-level job a worker runs on its pool once the arguments decoded.
pub(crate) type PreparedJob = Box<dyn FnOnce() -> Result<serde_json::Value, WireFailure> + Send>;

/// Decodes the arguments (failing fast, before the pool is involved) and prepares the job.
type Entry = Arc<dyn Fn(serde_json::Value) -> Result<PreparedJob, WireFailure> + Send + Sync>;

/// The tasks a worker can run, by name.
///
/// # Examples
///
/// ```
/// use pool_remote::{BoxError, Registry, RemoteTask};
///
/// struct Hello;
/// impl RemoteTask for Hello {
///     const NAME: &'static str = "hello";
///     type Args = String;
///     type Output = String;
///     fn run(&self, who: String) -> Result<String, BoxError> {
///         Ok(format!("hello, {who}"))
///     }
/// }
///
/// let registry = Registry::new().register(Hello);
/// assert!(registry.contains("hello"));
/// assert_eq!(registry.names().collect::<Vec<_>>(), ["hello"]);
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    entries: HashMap<&'static str, Entry>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self.names().collect();
        names.sort_unstable();
        f.debug_struct("Registry").field("tasks", &names).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a task under [`RemoteTask::NAME`]; a second task with the same name replaces the first.
    pub fn register<T>(mut self, task: T) -> Self
    where
        T: RemoteTask,
    {
        // User code, its `Drop` too: the last of the registry's and the jobs' copies drops it
        // quietly, wherever that is (a registry dropped, a task replaced, a failed build, a job
        // finished on a worker).
        let task = QuietDrop::new(Arc::new(task));
        let entry: Entry = Arc::new(move |args: serde_json::Value| {
            let args: T::Args = codec::decode(args).map_err(|message| WireFailure::BadArgs {
                task: T::NAME.to_owned(),
                message,
            })?;
            let task = task.clone();
            let job: PreparedJob = Box::new(move || {
                let output = task.run(args).map_err(|e| WireFailure::Failed {
                    task: T::NAME.to_owned(),
                    message: e.to_string(),
                })?;
                codec::encode(output).map_err(|message| WireFailure::BadOutput {
                    task: T::NAME.to_owned(),
                    message,
                })
            });
            Ok(job)
        });
        self.entries.insert(T::NAME, entry);
        self
    }

    /// Whether a task is registered under `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The registered names, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.entries.keys().copied()
    }

    /// Looks the task up and decodes its arguments.
    pub(crate) fn prepare(
        &self,
        name: &str,
        args: serde_json::Value,
    ) -> Result<PreparedJob, WireFailure> {
        let entry = self
            .entries
            .get(name)
            .ok_or_else(|| WireFailure::UnknownTask {
                name: name.to_owned(),
            })?;
        entry(args)
    }
}
