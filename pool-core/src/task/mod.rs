//! Tasks with handles: the cancellation state machine and the result slot.
//!
//! See `README.md` in this directory for the protocol (states, races, and which step closes which).

mod cell;
mod entry;
mod ext;
mod handle;

pub(crate) use cell::{new_task, Plain, PoolId, RunOutcome, TaskFn, WithToken};
pub use cell::{CancelToken, TaskId};
pub(crate) use entry::{Discarded, TaskRef};
pub use ext::ExecutorExt;
pub(crate) use handle::raw_task;
pub use handle::TaskHandle;
