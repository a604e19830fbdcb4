//! The `wasm` processor's configuration: which plugin, its `config:`, its limits and its
//! failure policy.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use weir_core::model::KeyTable;
use weir_core::processors::BuildError;
use weir_core::units::{ByteSize, Dur};

use crate::plugin::{Compiled, Limits};
use crate::processor::WasmProcessor;
use crate::swap::Current;

/// What happens to a batch when the plugin fails on it (a trap, a deadline, fuel or memory
/// cap hit, a `fatal` error, a `retryable` one retried in vain, or edits that break the
/// layout). The failure is counted and logged whatever the policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Let the batch through as the plugin received it.
    #[default]
    Pass,
    /// Drop every event of the batch.
    Drop,
    /// Send every event of the batch to the pipeline's dead-letter output, with an `_error`
    /// field saying why.
    DeadLetter,
}

/// `wasm`: run a Wasm component plugin (`weir:plugin` 0.2.0, or 0.1.0) on every batch.
///
/// ```yaml
/// - type: wasm
///   plugin: wasm-plugins/target/wasm32-wasip2/release/filter.wasm
///   config: { include: { level: '^(error|warn)$' } }   # handed to the plugin's init
///   timeout: 100ms      # per call (default 1s), enforced by epoch interruption
///   memory: 64MiB       # cap on the instance: all its memories and tables (default 64MiB)
///   fuel: 100000000     # optional: instructions-ish per call (off by default)
///   on_error: pass      # pass | drop | dead_letter (default pass)
///   retries: 2          # extra calls after a `retryable` error (default 2)
///   fields: [level]     # optional: send only these fields (default: all)
///   max_emit_events: 65536   # most events one call may emit (0.2; default 65536)
///   max_emit_bytes: 16MiB    # most value bytes one call's edits may hold (default 16MiB)
///   flush_interval: 1s  # how often a plugin that exports `flush` is flushed (default 1s)
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmConfig {
    /// The component file (`.wasm`), relative to the working directory.
    pub plugin: PathBuf,
    /// The plugin's configuration. Nested maps become dotted keys (`include: {level: x}`
    /// is `include.level = x`), in the order written; other non-string values are passed as
    /// their JSON text.
    #[serde(default)]
    pub config: PluginConfig,
    /// Time limit of one call into the plugin.
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
    /// Cap on the whole instance: the sum of the linear memories and tables of all its
    /// core modules (see [`Limits::memory`]).
    #[serde(default = "default_memory")]
    pub memory: ByteSize,
    /// Optional fuel per call (roughly, Wasm instructions).
    #[serde(default)]
    pub fuel: Option<u64>,
    /// What happens to a batch the plugin fails on.
    #[serde(default)]
    pub on_error: OnError,
    /// Extra calls with the same batch after a `retryable` error.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The name in logs and errors (default: the file name without `.wasm`).
    #[serde(default)]
    pub name: Option<String>,
    /// Most events one call may emit (0.2 plugins); past it the plugin's emits are refused
    /// and counted as lost.
    #[serde(default = "default_max_emit_events")]
    pub max_emit_events: u32,
    /// Most bytes of values (emitted raw bytes and field values) one call's edits may hold.
    #[serde(default = "default_max_emit_bytes")]
    pub max_emit_bytes: ByteSize,
    /// How often a plugin that exports `flush` is flushed (and once at shutdown).
    #[serde(default = "default_flush_interval")]
    pub flush_interval: Dur,
    /// Send only these fields to the plugin (default: every field). Each field crosses the
    /// boundary at a cost (see `perf/benches/wasm.rs`): a plugin that reads one field runs
    /// faster when it gets only that one. Fields not sent stay on the event untouched, and
    /// the plugin can still set or remove any field by name.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// The compiled plugin, shared by every worker built from this config.
    #[serde(skip)]
    compiled: OnceLock<Result<Arc<Current>, String>>,
    /// The outputs the plugin may route events to: (name, route number).
    #[serde(skip)]
    routes: OnceLock<Vec<(String, u16)>>,
}

fn default_timeout() -> Dur {
    Dur(Duration::from_secs(1))
}

fn default_memory() -> ByteSize {
    ByteSize(64 << 20)
}

fn default_retries() -> u32 {
    2
}

fn default_max_emit_events() -> u32 {
    weir_sdk::flat::EmitLimits::default().events
}

fn default_max_emit_bytes() -> ByteSize {
    ByteSize(u64::from(weir_sdk::flat::EmitLimits::default().bytes))
}

fn default_flush_interval() -> Dur {
    Dur(Duration::from_secs(1))
}

impl WasmConfig {
    /// An example of this component's config (the path points at the repository's filter
    /// plugin, built by the tests).
    pub const EXAMPLE: &'static str = concat!(
        "plugin: ",
        env!("CARGO_MANIFEST_DIR"),
        "/../../wasm-plugins/target/wasm32-wasip2/release/filter.wasm\n",
        "config: { include: { level: '^(error|warn)$' } }\n",
        "timeout: 100ms\nmemory: 64MiB\non_error: pass\n"
    );

    /// A config for `plugin` with default limits.
    pub fn new(plugin: impl Into<PathBuf>) -> WasmConfig {
        WasmConfig {
            plugin: plugin.into(),
            config: PluginConfig::default(),
            timeout: default_timeout(),
            memory: default_memory(),
            fuel: None,
            on_error: OnError::default(),
            retries: default_retries(),
            name: None,
            fields: None,
            max_emit_events: default_max_emit_events(),
            max_emit_bytes: default_max_emit_bytes(),
            flush_interval: default_flush_interval(),
            compiled: OnceLock::new(),
            routes: OnceLock::new(),
        }
    }

    /// Names the pipeline's outputs a plugin may route an event to (`route` ops), with
    /// their route numbers (see `weir_core::encode::Route::Output`). Set once, before the
    /// processors are built; later calls change nothing.
    pub fn set_routes(&self, routes: Vec<(String, u16)>) {
        let _ = self.routes.set(routes);
    }

    /// The compiled plugin (its name, limits and counters), once a processor was built
    /// from this config.
    pub fn compiled(&self) -> Option<Arc<Compiled>> {
        self.compiled.get().and_then(|c| c.as_ref().ok()).map(|c| c.get().0)
    }

    /// The plugin's name in logs: `name`, else the file name without `.wasm`.
    pub fn plugin_name(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        self.plugin
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.plugin.display().to_string())
    }

    /// The limits in effect.
    pub fn limits(&self) -> Limits {
        Limits {
            timeout: self.timeout.0,
            memory: usize::try_from(self.memory.0).unwrap_or(usize::MAX),
            fuel: self.fuel,
            emit_events: self.max_emit_events,
            emit_bytes: u32::try_from(self.max_emit_bytes.0).unwrap_or(u32::MAX),
            flush_interval: self.flush_interval.0,
        }
    }

    /// Compiles the plugin (once per config: every worker shares it), then makes one
    /// worker's processor: a fresh instance, initialized with the plugin's config. A plugin
    /// that does not load, does not target the world, or rejects its configuration is an
    /// error here, so `weir check` reports it.
    pub fn build(&self, keys: &Arc<KeyTable>) -> Result<WasmProcessor, BuildError> {
        if self.memory.0 < 1 << 16 {
            return Err(BuildError(format!(
                "memory: {} is below one Wasm page (64KiB)",
                self.memory
            )));
        }
        if self.timeout.0.is_zero() {
            return Err(BuildError("timeout must be above zero".into()));
        }
        if self.flush_interval.0 < Duration::from_millis(10) {
            return Err(BuildError(format!(
                "flush_interval: {:?} is below the shortest of 10ms",
                self.flush_interval.0
            )));
        }
        if self.max_emit_bytes.0 > u64::from(u32::MAX) {
            return Err(BuildError(format!(
                "max_emit_bytes: {} is over the largest of 4GiB - 1",
                self.max_emit_bytes
            )));
        }
        if self.fuel == Some(0) {
            return Err(BuildError(
                "fuel must be above zero (leave it out to turn fuel off)".into(),
            ));
        }
        let compiled = self
            .compiled
            .get_or_init(|| {
                Compiled::load(
                    &self.plugin,
                    self.plugin_name(),
                    self.config.entries.clone(),
                    self.limits(),
                    self.on_error,
                    self.retries,
                )
                .map(|c| Arc::new(Current::new(Arc::new(c))))
                .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(BuildError)?;
        let only = match &self.fields {
            None => None,
            Some(names) => {
                if let Some(empty) = names.iter().find(|n| n.is_empty()) {
                    return Err(BuildError(format!("fields: a field name cannot be empty ({empty:?})")));
                }
                Some(names.iter().map(|n| keys.intern(n)).collect())
            }
        };
        let routes = self.routes.get().cloned().unwrap_or_default();
        WasmProcessor::new(compiled, keys.clone(), only, routes).map_err(|e| BuildError(e.to_string()))
    }
}

/// The plugin's `config:` as the `(key, value)` strings `init` receives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PluginConfig {
    /// The entries, in order, nested maps flattened to dotted keys.
    pub entries: Vec<(String, String)>,
}

impl PluginConfig {
    /// From `(key, value)` pairs as they are.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> PluginConfig {
        PluginConfig {
            entries: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
        }
    }
}

/// A value of the `config:` map, keeping the order of nested maps.
enum Node {
    /// A string, passed as is.
    Text(String),
    /// Any other scalar or a list, as JSON text.
    Json(String),
    /// A map, flattened to dotted keys.
    Map(Vec<(String, Node)>),
}

impl Node {
    fn flatten(self, prefix: &str, out: &mut Vec<(String, String)>) {
        match self {
            Node::Text(s) | Node::Json(s) => out.push((prefix.to_string(), s)),
            Node::Map(entries) => {
                for (k, v) in entries {
                    let key = if prefix.is_empty() { k } else { format!("{prefix}.{k}") };
                    v.flatten(&key, out);
                }
            }
        }
    }

    fn to_json(&self) -> String {
        match self {
            Node::Text(s) => serde_json::Value::String(s.clone()).to_string(),
            Node::Json(s) => s.clone(),
            Node::Map(entries) => {
                let items: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{}:{}", serde_json::Value::String(k.clone()), v.to_json()))
                    .collect();
                format!("{{{}}}", items.join(","))
            }
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a plugin config value (string, number, bool, null, list or map)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Text(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
                Ok(Node::Text(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Json(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Json(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
                Ok(Node::Json(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
                match serde_json::Number::from_f64(v) {
                    Some(n) => Ok(Node::Json(n.to_string())),
                    None => Err(E::custom(format!("{v} is not a number JSON can hold"))),
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Json("null".into()))
            }
            fn visit_none<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Json("null".into()))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Node>()? {
                    items.push(item.to_json());
                }
                Ok(Node::Json(format!("[{}]", items.join(","))))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries: Vec<(String, Node)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if entries.iter().any(|(k, _)| *k == key) {
                        return Err(de::Error::custom(format!("duplicate key `{key}`")));
                    }
                    let value = map.next_value::<Node>()?;
                    entries.push((key, value));
                }
                Ok(Node::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for PluginConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PluginConfig, D::Error> {
        match Node::deserialize(d)? {
            node @ Node::Map(_) => {
                let mut entries = Vec::new();
                node.flatten("", &mut entries);
                Ok(PluginConfig { entries })
            }
            _ => Err(de::Error::custom("`config` must be a map of keys to values")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_maps_flatten_in_order_and_scalars_become_json_text() {
        let json = serde_json::json!({
            "z": "last-but-first",
            "include": { "level": "^(error|warn)$", "status": 5 },
            "sample": 0.25,
            "on": true,
            "none": null,
            "list": ["a", 1, { "k": "v" }],
        });
        let cfg: PluginConfig = serde_json::from_value(json).unwrap();
        // serde_json's map is sorted; order within it is what the deserializer gives.
        let keys: Vec<&str> = cfg.entries.iter().map(|(k, _)| k.as_str()).collect();
        assert!(
            keys.contains(&"include.level") && keys.contains(&"include.status"),
            "{keys:?}"
        );
        let get = |k: &str| cfg.entries.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("include.status"), Some("5"));
        assert_eq!(get("sample"), Some("0.25"));
        assert_eq!(get("on"), Some("true"));
        assert_eq!(get("none"), Some("null"));
        assert_eq!(get("list"), Some(r#"["a",1,{"k":"v"}]"#));
        assert_eq!(get("z"), Some("last-but-first"));
    }

    #[test]
    fn a_config_that_is_not_a_map_is_refused() {
        let err = serde_json::from_value::<PluginConfig>(serde_json::json!("x")).unwrap_err();
        assert!(err.to_string().contains("must be a map"), "{err}");
    }
}
