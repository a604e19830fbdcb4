//! Weir's Wasm host: a component that targets `weir:plugin/processor@0.1.0` (the WIT in
//! `sdk-wit/wit/`) becomes a sandboxed batch [`Processor`](weir_core::pipeline::Processor).
//!
//! - **Once per batch.** The live events cross as one flat batch (one byte list, flat event
//!   and field lists, the key table), and the plugin's edits come back and are applied to
//!   the batch in place ([`WasmProcessor`]).
//! - **Compiled once, instances reused.** [`WasmConfig::build`] compiles the component the
//!   first time (shared by every worker; the machine code is cached on disk, see
//!   [`cache_dir`]) and pre-instantiates it; each worker keeps one instance across batches
//!   and re-creates it only after a failure that leaves it unusable.
//! - **Sandboxed.** WASI is linked with an empty context (no files, environment, network,
//!   stdio or clock); each call runs under an epoch deadline (one ticker thread for the
//!   process), optional fuel, and a memory cap on the whole instance. A trap, a deadline,
//!   fuel or memory-cap hit, edits that do not check, or a plugin error never takes the
//!   agent down: the batch follows [`OnError`], the failure is counted (events, via
//!   `take_failures`; batches by kind, in [`PluginStats`]) and logged once per kind with
//!   the plugin's name.
//!
//! ```no_run
//! use std::sync::Arc;
//! use weir_core::model::KeyTable;
//! use weir_core::pipeline::Processor;
//! use weir_wasm::{PluginConfig, WasmConfig};
//!
//! let mut config = WasmConfig::new("wasm-plugins/target/wasm32-wasip2/release/filter.wasm");
//! config.config = PluginConfig::from_pairs([("include.level", "^(error|warn)$")]);
//! let keys = KeyTable::new();
//! let mut filter = config.build(&keys).expect("the plugin loads and accepts its config");
//! # let mut batch = weir_core::model::Batch::default();
//! filter.process(&mut batch); // once per batch
//! ```

/// The current contract, `weir:plugin@0.2.0`: the `processor` world.
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../sdk-wit/wit",
        world: "weir:plugin/processor@0.2.0",
        // The batch is passed borrowed: its bytes can be the chunk itself, not a copy.
        ownership: Borrowing { duplicate_if_necessary: false },
    });
}

/// `weir:plugin/flushing-processor@0.2.0`: the same types and imports, plus `flush`.
mod bindings_flush {
    wasmtime::component::bindgen!({
        path: "../../sdk-wit/wit",
        world: "weir:plugin/flushing-processor@0.2.0",
        ownership: Borrowing { duplicate_if_necessary: false },
        with: {
            "weir:plugin/types@0.2.0": crate::bindings::weir::plugin0_2_0::types,
            "weir:plugin/logging@0.2.0": crate::bindings::weir::plugin0_2_0::logging,
        },
    });
}

/// The first contract, `weir:plugin@0.1.0` (`sdk-wit/wit/deps/plugin-0.1.0`): plugins
/// built against it keep running.
mod bindings_v1 {
    wasmtime::component::bindgen!({
        path: "../../sdk-wit/wit",
        world: "weir:plugin/processor@0.1.0",
        ownership: Borrowing { duplicate_if_necessary: false },
    });
}

mod cache;
mod config;
mod plugin;
mod processor;
mod swap;

pub use cache::{CacheError, DEFAULT_MAX_BYTES, PluginCache, Precompiled, cache_dir, cache_max_bytes, precompile};
pub use config::{OnError, PluginConfig, WasmConfig};
pub use plugin::{Compiled, FailureKind, Limits, LoadError, MAX_CORE_INSTANCES, MAX_MEMORIES, MAX_TABLES, TICK};
pub use processor::{MAX_APPLY_STEPS, MAX_JSON_DEPTH, MAX_KEY_BYTES, PluginStats, WasmProcessor};
#[doc(hidden)]
pub use processor::{PlainEdit, PlainValue, check_and_apply_edits};
