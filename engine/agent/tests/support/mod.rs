//! Helpers shared by the integration tests and benches.

pub mod lines;
pub mod node;
