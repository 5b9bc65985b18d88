//! One module per workload family; `compare` calls each module's `rows`.

pub mod adaptive;
pub mod coalesce;
#[deny(missing_debug_implementations)]
pub mod core;
pub mod dag;
pub mod priority;
pub mod remote;
