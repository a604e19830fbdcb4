//! Native processors: each is a config struct (serde, `deny_unknown_fields`, with a
//! `build`) and a runtime object implementing [`Processor`](crate::pipeline::Processor).
//! The registry that maps a `type` name to its config lives in the agent.

mod fields;
pub mod filter;
pub mod mask;
pub mod multiline;

pub use fields::{
    AddFields, AddFieldsConfig, ConstValue, DropFields, DropFieldsConfig, RenameFields, RenameFieldsConfig,
};

/// A processor config that cannot be built, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(pub String);
