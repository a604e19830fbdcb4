//! Paths of the plugin components in `wasm-plugins/`, built by this crate's build script
//! (`cargo build --release --target wasm32-wasip2` in that workspace) whenever a test or
//! bench that depends on it is built. Nothing to do by hand.

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

/// Every plugin, as (package name, path).
pub const ALL: &[(&str, &str)] = &[
    ("filter", FILTER),
    ("redact", REDACT),
    ("enrich", ENRICH),
    ("noop", NOOP),
    ("split-array", SPLIT_ARRAY),
    ("count-by-service", COUNT_BY_SERVICE),
    ("route-by-field", ROUTE_BY_FIELD),
    ("level-drop", LEVEL_DROP),
    ("hostile-spin", SPIN),
    ("hostile-alloc-bomb", ALLOC_BOMB),
    ("hostile-trap", TRAP),
    ("hostile-sneaky", SNEAKY),
    ("hostile-emit-flood", EMIT_FLOOD),
];
