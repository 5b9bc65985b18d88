//! Workload rows for `priority` (not written yet).

use crate::{Config, Row};

/// The rows of this workload family.
pub fn rows(_config: &Config) -> Vec<Row> {
    Vec::new()
}
