//! The Rust SDK for Weir Wasm plugins.
//!
//! A plugin is a component that targets the world `weir:plugin/flushing-processor@0.2.0`
//! (the WIT in `sdk-wit/wit/`). The host calls it once per batch with the batch in packed
//! form (one byte list for the values, the event and field tables as byte lists of
//! fixed-size rows, the batch's key table) and applies the edits it returns. This crate turns
//! that into a small API:
//!
//! - [`BatchView`] and [`EventView`] read the batch without copying: iterate events, read
//!   fields by name or [`Key`], get the raw line.
//! - [`Edits`] records changes: [`Edits::drop`], [`Edits::set`], [`Edits::remove`],
//!   [`Edits::set_timestamp`], [`Edits::set_raw`], and new events: [`Edits::emit`],
//!   [`Edits::emit_copy`] (within the call's limits, [`BatchView::limits`]).
//! - [`Plugin`] is what an author implements: `init` from the configuration, then
//!   `process` per batch, and optionally `flush` (called on a timer and at shutdown) to
//!   emit what it gathered.
//!
//! Layers: [`flat`] reads and writes the WIT records and their rows; the views and the
//! builder sit on it; [`testing`] is the host's half over plain Rust values, so everything,
//! a whole plugin included, tests natively with `cargo test`.
//!
//! With the `guest` feature (for `wasm32-wasip2`), `guest` holds the wit-bindgen bindings
//! and [`export!`] makes a [`Plugin`] the component's exports (it calls [`init_flat`],
//! [`process_flat`] and [`flush_flat`]). `weir plugin new` scaffolds a crate set up this
//! way.
//!
//! # Example: a level filter
//!
//! Keep only events whose `level` is at least `min_level` (events with no level pass).
//!
//! ```
//! use weir_sdk::testing::{OwnedEvent, run};
//! use weir_sdk::{BatchView, Config, Edits, Error, Plugin};
//!
//! struct LevelFilter {
//!     min: u8,
//! }
//!
//! fn rank(level: &str) -> Option<u8> {
//!     ["trace", "debug", "info", "warn", "error"]
//!         .iter()
//!         .position(|l| l.eq_ignore_ascii_case(level))
//!         .map(|i| i as u8)
//! }
//!
//! impl Plugin for LevelFilter {
//!     fn init(config: &Config) -> Result<Self, Error> {
//!         let min = config.get("min_level").unwrap_or("info");
//!         let min = rank(min).ok_or_else(|| Error::fatal(format!("unknown level {min:?}")))?;
//!         Ok(LevelFilter { min })
//!     }
//!
//!     fn process(&mut self, batch: &BatchView<'_>, edits: &mut Edits<'_>) -> Result<(), Error> {
//!         // Once per batch: find the key (no event has a level if the batch lacks it).
//!         let Some(level) = batch.key("level") else { return Ok(()) };
//!         for event in batch.events() {
//!             // `event.get("level")` works too; a `Key` saves a lookup per event.
//!             let rank = event.get_str(level).and_then(rank);
//!             if rank.is_some_and(|r| r < self.min) {
//!                 edits.drop(&event);
//!             }
//!         }
//!         Ok(())
//!     }
//! }
//!
//! // Natively, through the same flat round trip the host makes.
//! let config = Config::from_iter([("min_level", "warn")]);
//! let mut filter = LevelFilter::init(&config)?;
//! let events = vec![
//!     OwnedEvent::line("disk full").with("level", "error"),
//!     OwnedEvent::line("cache miss").with("level", "debug"),
//!     OwnedEvent::line("no level here"),
//! ];
//! let kept = run(&mut filter, events)?;
//! let raw: Vec<&[u8]> = kept.iter().map(|e| e.raw.as_slice()).collect();
//! assert_eq!(raw, [&b"disk full"[..], b"no level here"]);
//! # Ok::<(), Error>(())
//! ```

#![warn(missing_docs)]

// The generated bindings name this crate by its path, from inside and outside alike.
#[cfg(feature = "guest")]
extern crate self as weir_sdk;

mod edits;
pub mod flat;
#[cfg(feature = "guest")]
pub mod guest;
mod log;
mod plugin;
pub mod testing;
mod view;

/// The WIT package (and version) this SDK targets: the world is
/// `weir:plugin/flushing-processor@0.2.0`.
pub const WIT_PACKAGE: &str = "weir:plugin@0.2.0";

pub use edits::{Edits, EventRef, NewEvent};
pub use flat::FormatError;
pub use log::{Level, log};
pub use plugin::{Config, Error, Plugin, flush_flat, init_flat, process_flat};
pub use view::{BatchView, EventView, Events, FieldKey, Key, ValueRef};
