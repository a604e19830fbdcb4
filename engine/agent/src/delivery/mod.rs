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

use std::sync::Arc;

/// Where a batch's acknowledgement goes once every output delivered it.
#[derive(Debug, Clone)]
pub enum Ack {
    /// A followed file's checkpoint may move to this point.
    File(acks::AckPoint, Arc<acks::Acks>),
    /// A source that keeps its own positions (Kafka offsets), told the token it gave.
    Source(Arc<dyn SourceAcks>, u64),
}

impl Ack {
    /// Every output delivered the batch.
    pub fn delivered(&self) {
        match self {
            Ack::File(point, acks) => acks.ack(*point),
            Ack::Source(source, token) => source.ack(*token),
        }
    }
}

/// A source's own record of what is delivered (see [`Ack::Source`]).
pub trait SourceAcks: Send + Sync + std::fmt::Debug {
    /// The batch sent with `token` is delivered by every output.
    fn ack(&self, token: u64);
}
