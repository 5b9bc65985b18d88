//! Not built yet: see the open issue for this crate.
