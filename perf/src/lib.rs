//! weir-perf: deterministic corpus generators, named workloads and the engine of
//! `weir bench`.
//!
//! Every generator is a pure function of its seed and size: the same inputs give the same
//! bytes on every machine, so a benchmark figure can always be reproduced. A workload
//! (`perf/workloads/*.yaml`) is a pipeline file plus the corpus it reads and the number of
//! events it must write; the harness ([`bench`]) runs it as a child `weir run` and
//! measures that child alone. A workload may need more around that run: a Kafka broker
//! ([`kafka`]), or the corpus sent to its listening input ([`send`]).

pub mod bench;
pub mod corpus;
pub mod kafka;
pub mod send;
pub mod workload;
