//! What has been delivered, and where to resume: the state that outlives a process.
//!
//! - [`checkpoint`]: file identity and the atomic checkpoint store (`checkpoints.json`);
//! - [`acks`]: outputs' acknowledgements turned into checkpoint commits, per file and
//!   generation (the tailer registers files, the runtime acknowledges batches);
//! - [`guard`]: the crash-loop guard (in-flight slots per worker, guarded ranges,
//!   quarantined records).
//!
//! Inputs and the runtime use these modules; they use nothing else of the agent.

pub mod acks;
pub mod checkpoint;
pub mod guard;
