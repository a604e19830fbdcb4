//! The Weir agent: the pipeline file, the components, and the runtime that moves batches
//! from inputs through workers to outputs. Dependencies point one way:
//!
//! ```text
//! cli ─▶ runtime ─▶ config::registry ─▶ inputs, outputs ─▶ config::error
//!          │                               │
//!          └──────────▶ delivery ◀─────────┘ (checkpoints, acks, crash-loop guard)
//! ```
//!
//! - [`config`]: the pipeline file, its checks, and the [`config::registry`] of every
//!   component `type`;
//! - [`inputs`]: one file per input type, and the follow-mode tailer;
//! - [`outputs`]: the [`outputs::Sink`] contract, one file per output type;
//! - [`runtime`]: `weir run`'s threads: readers, workers, dispatcher, outputs, shutdown;
//! - [`delivery`]: file identity, checkpoints, acknowledgements, the crash-loop guard;
//! - [`net`]: what network components share (Kafka client settings);
//! - [`admin`]: the `/health` and `/metrics` endpoint;
//! - [`secrets`]: `${NAME}` from the environment, and redaction of secrets in all output;
//! - [`cli`]: the commands beyond `run` (`doctor`, `plugin`, `bench`/`gen` wiring).

pub mod admin;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod inputs;
pub mod net;
pub mod outputs;
pub mod runtime;
pub mod secrets;
