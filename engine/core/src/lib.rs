//! weir-core: Weir's native engine. Synchronous, no I/O, no async runtime.
//!
//! Bytes come in as [`line::Chunk`]s, become a [`model::Batch`] of zero-copy events (each
//! field a span of the chunk), go through a [`pipeline::Pipeline`] of processors, and come
//! out through an [`encode::Encoder`].
//!
//! ```
//! use weir_core::encode::{Encoder, JsonEncoder};
//! use weir_core::line::{read_all, LineOptions};
//! use weir_core::model::KeyTable;
//! use weir_core::pipeline::{Counted, Pipeline, Processor};
//! use weir_core::processors::DropFieldsConfig;
//!
//! let keys = KeyTable::new();
//! let (mut batches, _) = read_all(&b"a\r\nb\n\nc"[..], 1 << 16, &LineOptions::default()).unwrap();
//! let drop_none = DropFieldsConfig { fields: vec!["nothing".into()] }.build(&keys).unwrap();
//! let mut pipeline = Pipeline::new(vec![Counted::new("drop", Box::new(drop_none), Default::default())]);
//! let mut out = Vec::new();
//! let mut encoder = JsonEncoder::new(keys.clone());
//! for batch in &mut batches {
//!     pipeline.run(batch);
//!     encoder.encode(batch, &mut out);
//! }
//! assert_eq!(
//!     String::from_utf8(out).unwrap(),
//!     "{\"message\":\"a\"}\n{\"message\":\"b\"}\n{\"message\":\"\"}\n{\"message\":\"c\"}\n"
//! );
//! ```

pub mod encode;
pub mod frame;
pub mod line;
pub mod model;
pub mod multiline;
pub mod parse;
pub mod pattern;
pub mod pipeline;
pub mod pool;
pub mod processors;
pub mod units;
