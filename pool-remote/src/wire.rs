//! What crosses the process boundary: the job envelope, the failure record a worker leaves in
//! the engine's result column, and the priority mapping.
//!
//! Every remote task travels as one apalis job type, [`Envelope`], so that one queue (and one
//! worker) serves every registered task; the task name selects the code on the worker.

use pool_core::Priority;
use serde::{Deserialize, Serialize};

use crate::RemoteError;

/// One job on the engine's queue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Envelope {
    /// The registered task name.
    pub(crate) task: String,
    /// The task's arguments, as JSON.
    pub(crate) args: serde_json::Value,
}

/// Why a worker did not produce a value. Stored, JSON-encoded, as the error text of the job's
/// result, so the submitter can rebuild a typed [`RemoteError`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind")]
pub(crate) enum WireFailure {
    UnknownTask { name: String },
    BadArgs { task: String, message: String },
    BadOutput { task: String, message: String },
    Panicked { task: String, message: String },
    Failed { task: String, message: String },
    Cancelled,
}

/// The marker that starts the JSON record in a job's error text. apalis prefixes the text of
/// some errors (`AbortError: ...`), so the record is found by this marker, not by position.
const MARKER: &str = "pool-remote:";

impl WireFailure {
    /// The text stored in the engine's result column.
    pub(crate) fn encode(&self) -> String {
        // Serialising a plain enum of strings cannot fail.
        format!(
            "{MARKER}{}",
            serde_json::to_string(self).unwrap_or_default()
        )
    }

    /// Reads a record back from an error text; `None` when the text is not ours.
    pub(crate) fn decode(text: &str) -> Option<WireFailure> {
        let at = text.find(MARKER)?;
        serde_json::from_str(&text[at + MARKER.len()..]).ok()
    }

    /// The typed error for the submitter.
    pub(crate) fn into_error(self, task: &str, attempts: usize) -> RemoteError {
        match self {
            WireFailure::UnknownTask { name } => RemoteError::UnknownTask { name },
            WireFailure::BadArgs { task, message } => RemoteError::BadArgs { task, message },
            WireFailure::BadOutput { task, message } => RemoteError::BadOutput { task, message },
            WireFailure::Panicked { task, message } => RemoteError::Panicked {
                task,
                message,
                attempts,
            },
            WireFailure::Failed { task, message } => RemoteError::Failed {
                task,
                message,
                attempts,
            },
            WireFailure::Cancelled => RemoteError::Cancelled {
                task: task.to_owned(),
            },
        }
    }
}

/// The engine's priority for a level: apalis's SQL backends serve the highest number first,
/// and `Priority::index` runs from 0 (`Idle`) to 4 (`Critical`), so the index is the priority.
pub(crate) fn engine_priority(priority: Priority) -> usize {
    priority.index()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_records_survive_an_engine_prefix() {
        let f = WireFailure::Panicked {
            task: "t".into(),
            message: "boom: {x}".into(),
        };
        let text = format!("AbortError: {}", f.encode());
        assert_eq!(WireFailure::decode(&text), Some(f));
        assert_eq!(WireFailure::decode("a plain error"), None);
    }

    #[test]
    fn priorities_keep_their_order() {
        let mapped: Vec<usize> = Priority::ALL.iter().map(|p| engine_priority(*p)).collect();
        assert!(mapped.windows(2).all(|w| w[0] > w[1]), "{mapped:?}");
    }
}
