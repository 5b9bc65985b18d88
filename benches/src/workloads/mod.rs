//! One module per workload family; `compare` calls each module's `rows`.

pub mod adaptive;
pub mod coalesce;
pub mod core;
pub mod dag;
pub mod priority;
