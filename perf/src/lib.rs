//! weir-perf: deterministic corpus generators and the engine of Weir's benchmarks.
//!
//! Every generator is a pure function of its seed and size: the same inputs give the same
//! bytes on every machine, so a benchmark figure can always be reproduced.

pub mod corpus;
