//! Helpers shared by the integration tests and benches.

pub mod agent;
pub mod certs;
pub mod http_server;
pub mod kafka;
pub mod lines;
pub mod node;
pub mod output;
