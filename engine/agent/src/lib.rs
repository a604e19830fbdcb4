//! The Weir agent: the pipeline file, the runtime that moves batches from inputs through
//! workers to outputs, and the pieces the `weir` command line is made of.

pub mod acks;
pub mod admin;
pub mod checkpoint;
pub mod config;
pub mod doctor;
pub mod guard;
pub mod http_output;
pub mod inputs;
pub mod kubernetes;
pub mod outputs;
pub mod plugin_cli;
pub mod registry;
pub mod runtime;
pub mod tail;
