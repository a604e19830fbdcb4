//! Helpers shared by the integration tests and benches.

pub mod agent;
pub mod lines;
pub mod node;
