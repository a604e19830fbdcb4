//! The registry: every component `type` and the config it reads, in one place. Adding a
//! component means adding a variant and a line to its `from_type` match here.

use std::sync::Arc;

use serde::{Deserialize, Deserializer};
use weir_core::model::KeyTable;
use weir_core::parse::OnFailure;
use weir_core::parse::delimiter::ParseDelimiterConfig;
use weir_core::parse::json::ParseJsonConfig;
use weir_core::parse::kv::ParseKvConfig;
use weir_core::parse::regex::ParseRegexConfig;
use weir_core::parse::time::ParseTimestampConfig;
use weir_core::pipeline::Processor;
use weir_core::processors::filter::FilterConfig;
use weir_core::processors::mask::MaskConfig;
use weir_core::processors::multiline::MultilineProcessorConfig;
use weir_core::processors::{AddFieldsConfig, BuildError, DropFieldsConfig, RenameFieldsConfig};
use weir_wasm::{OnError, WasmConfig};

use crate::config::{Tagged, deserialize_tagged};
use crate::http_output::HttpOutputConfig;
use crate::inputs::{FileInputConfig, StdinConfig};
use crate::kubernetes::KubernetesLogsConfig;
use crate::outputs::{FileOutputConfig, StdoutConfig};

/// An entry of `inputs:`.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // read once at start; size does not matter
pub enum InputConfig {
    /// `stdin`: lines from standard input until end of file.
    Stdin(StdinConfig),
    /// `file`: lines from files matched by globs.
    File(FileInputConfig),
    /// `kubernetes_logs`: a node's container logs, with pod metadata.
    KubernetesLogs(KubernetesLogsConfig),
}

impl InputConfig {
    /// The `type` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            InputConfig::Stdin(_) => "stdin",
            InputConfig::File(_) => "file",
            InputConfig::KubernetesLogs(_) => "kubernetes_logs",
        }
    }
}

impl Tagged for InputConfig {
    const WHAT: &'static str = "input";
    const TYPES: &'static [&'static str] = &["stdin", "file", "kubernetes_logs"];

    fn from_type<'de, D: Deserializer<'de>>(ty: &str, rest: D) -> Result<Self, D::Error> {
        match ty {
            "stdin" => StdinConfig::deserialize(rest).map(InputConfig::Stdin),
            "file" => FileInputConfig::deserialize(rest).map(InputConfig::File),
            "kubernetes_logs" => KubernetesLogsConfig::deserialize(rest).map(InputConfig::KubernetesLogs),
            _ => Err(Self::unknown_type(ty)),
        }
    }
}

/// An entry of `processors:`.
#[derive(Debug)]
pub enum ProcessorConfig {
    /// `add_fields`: set constant fields.
    AddFields(AddFieldsConfig),
    /// `drop_fields`: remove fields.
    DropFields(DropFieldsConfig),
    /// `rename_fields`: rename fields.
    RenameFields(RenameFieldsConfig),
    /// `parse_regex`: named capture groups become fields.
    ParseRegex(ParseRegexConfig),
    /// `parse_json`: the members of a JSON object become fields.
    ParseJson(ParseJsonConfig),
    /// `parse_delimiter`: CSV-like columns become fields.
    ParseDelimiter(ParseDelimiterConfig),
    /// `parse_kv`: `key=value` pairs (logfmt) become fields.
    ParseKv(ParseKvConfig),
    /// `parse_timestamp`: a field becomes the event time.
    ParseTimestamp(ParseTimestampConfig),
    /// `filter`: keep the events that satisfy conditions.
    Filter(FilterConfig),
    /// `mask`: replace what a regex matches with a constant or a hash.
    Mask(MaskConfig),
    /// `multiline`: merge consecutive events of a batch into records.
    Multiline(MultilineProcessorConfig),
    /// `wasm`: a sandboxed Wasm component plugin, called once per batch.
    Wasm(WasmConfig),
}

impl Tagged for ProcessorConfig {
    const WHAT: &'static str = "processor";
    const TYPES: &'static [&'static str] = &[
        "add_fields",
        "drop_fields",
        "rename_fields",
        "parse_regex",
        "parse_json",
        "parse_delimiter",
        "parse_kv",
        "parse_timestamp",
        "filter",
        "mask",
        "multiline",
        "wasm",
    ];

    fn from_type<'de, D: Deserializer<'de>>(ty: &str, rest: D) -> Result<Self, D::Error> {
        match ty {
            "add_fields" => AddFieldsConfig::deserialize(rest).map(ProcessorConfig::AddFields),
            "drop_fields" => DropFieldsConfig::deserialize(rest).map(ProcessorConfig::DropFields),
            "rename_fields" => RenameFieldsConfig::deserialize(rest).map(ProcessorConfig::RenameFields),
            "parse_regex" => ParseRegexConfig::deserialize(rest).map(ProcessorConfig::ParseRegex),
            "parse_json" => ParseJsonConfig::deserialize(rest).map(ProcessorConfig::ParseJson),
            "parse_delimiter" => ParseDelimiterConfig::deserialize(rest).map(ProcessorConfig::ParseDelimiter),
            "parse_kv" => ParseKvConfig::deserialize(rest).map(ProcessorConfig::ParseKv),
            "parse_timestamp" => ParseTimestampConfig::deserialize(rest).map(ProcessorConfig::ParseTimestamp),
            "mask" => MaskConfig::deserialize(rest).map(ProcessorConfig::Mask),
            "multiline" => MultilineProcessorConfig::deserialize(rest).map(ProcessorConfig::Multiline),
            "wasm" => WasmConfig::deserialize(rest).map(ProcessorConfig::Wasm),
            "filter" => FilterConfig::deserialize(rest).map(ProcessorConfig::Filter),
            _ => Err(Self::unknown_type(ty)),
        }
    }
}

impl ProcessorConfig {
    /// The `type` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            ProcessorConfig::AddFields(_) => "add_fields",
            ProcessorConfig::DropFields(_) => "drop_fields",
            ProcessorConfig::RenameFields(_) => "rename_fields",
            ProcessorConfig::ParseRegex(_) => "parse_regex",
            ProcessorConfig::ParseJson(_) => "parse_json",
            ProcessorConfig::ParseDelimiter(_) => "parse_delimiter",
            ProcessorConfig::ParseKv(_) => "parse_kv",
            ProcessorConfig::ParseTimestamp(_) => "parse_timestamp",
            ProcessorConfig::Filter(_) => "filter",
            ProcessorConfig::Mask(_) => "mask",
            ProcessorConfig::Multiline(_) => "multiline",
            ProcessorConfig::Wasm(_) => "wasm",
        }
    }

    /// The failure policy, for processors that have one.
    pub fn on_failure(&self) -> Option<OnFailure> {
        match self {
            ProcessorConfig::ParseRegex(c) => Some(c.on_failure),
            ProcessorConfig::ParseJson(c) => Some(c.on_failure),
            ProcessorConfig::ParseTimestamp(c) => Some(c.on_failure),
            ProcessorConfig::ParseDelimiter(c) => Some(c.on_failure),
            ProcessorConfig::ParseKv(c) => Some(c.on_failure),
            ProcessorConfig::AddFields(_)
            | ProcessorConfig::DropFields(_)
            | ProcessorConfig::RenameFields(_)
            | ProcessorConfig::Filter(_)
            | ProcessorConfig::Mask(_)
            | ProcessorConfig::Multiline(_) => None,
            // `on_error` plays the part of `on_failure` (pass keeps the batch as it was).
            ProcessorConfig::Wasm(c) => Some(match c.on_error {
                OnError::Pass => OnFailure::Keep,
                OnError::Drop => OnFailure::Drop,
                OnError::DeadLetter => OnFailure::DeadLetter,
            }),
        }
    }

    /// Builds one worker's instance, interning its keys in `keys`.
    pub fn build(&self, keys: &Arc<KeyTable>) -> Result<Box<dyn Processor>, BuildError> {
        Ok(match self {
            ProcessorConfig::AddFields(c) => Box::new(c.build(keys)?),
            ProcessorConfig::DropFields(c) => Box::new(c.build(keys)?),
            ProcessorConfig::RenameFields(c) => Box::new(c.build(keys)?),
            ProcessorConfig::ParseRegex(c) => Box::new(c.build(keys)?),
            ProcessorConfig::ParseJson(c) => Box::new(c.build(keys)?),
            ProcessorConfig::ParseDelimiter(c) => Box::new(c.build(keys)?),
            ProcessorConfig::ParseKv(c) => Box::new(c.build(keys)?),
            ProcessorConfig::ParseTimestamp(c) => Box::new(c.build(keys)?),
            ProcessorConfig::Filter(c) => Box::new(c.build(keys)?),
            ProcessorConfig::Mask(c) => Box::new(c.build(keys)?),
            ProcessorConfig::Multiline(c) => Box::new(c.build(keys)?),
            ProcessorConfig::Wasm(c) => Box::new(c.build(keys)?),
        })
    }

    /// The example config of each processor type, for docs and tests.
    pub fn examples() -> Vec<(&'static str, &'static str)> {
        vec![
            ("add_fields", AddFieldsConfig::EXAMPLE),
            ("drop_fields", DropFieldsConfig::EXAMPLE),
            ("rename_fields", RenameFieldsConfig::EXAMPLE),
            ("parse_regex", ParseRegexConfig::EXAMPLE),
            ("parse_json", ParseJsonConfig::EXAMPLE),
            ("parse_delimiter", ParseDelimiterConfig::EXAMPLE),
            ("parse_kv", ParseKvConfig::EXAMPLE),
            ("parse_timestamp", ParseTimestampConfig::EXAMPLE),
            ("filter", FilterConfig::EXAMPLE),
            ("mask", MaskConfig::EXAMPLE),
            ("multiline", MultilineProcessorConfig::EXAMPLE),
            ("wasm", WasmConfig::EXAMPLE),
        ]
    }
}

/// An entry of `outputs:`.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // read once at start; size does not matter
pub enum OutputConfig {
    /// `stdout`: events to standard output.
    Stdout(StdoutConfig),
    /// `file`: events appended to a file.
    File(FileOutputConfig),
    /// `http`: events POSTed as JSON lines or Elasticsearch `_bulk` bodies.
    Http(HttpOutputConfig),
}

impl OutputConfig {
    /// The `type` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            OutputConfig::Stdout(_) => "stdout",
            OutputConfig::File(_) => "file",
            OutputConfig::Http(_) => "http",
        }
    }

    /// The output's `name`, if it has one.
    pub fn name(&self) -> Option<&str> {
        match self {
            OutputConfig::Stdout(c) => c.name.as_deref(),
            OutputConfig::File(c) => c.name.as_deref(),
            OutputConfig::Http(c) => c.name.as_deref(),
        }
    }

    /// How it writes events.
    pub fn format(&self) -> crate::outputs::Format {
        match self {
            OutputConfig::Stdout(c) => c.format,
            OutputConfig::File(c) => c.format,
            OutputConfig::Http(_) => crate::outputs::Format::Json,
        }
    }
}

impl Tagged for OutputConfig {
    const WHAT: &'static str = "output";
    const TYPES: &'static [&'static str] = &["stdout", "file", "http"];

    fn from_type<'de, D: Deserializer<'de>>(ty: &str, rest: D) -> Result<Self, D::Error> {
        match ty {
            "stdout" => StdoutConfig::deserialize(rest).map(OutputConfig::Stdout),
            "file" => FileOutputConfig::deserialize(rest).map(OutputConfig::File),
            "http" => HttpOutputConfig::deserialize(rest).map(OutputConfig::Http),
            _ => Err(Self::unknown_type(ty)),
        }
    }
}

macro_rules! tagged_deserialize {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize_tagged(d)
            }
        }
    )*};
}
tagged_deserialize!(InputConfig, ProcessorConfig, OutputConfig);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_processor_example_parses_and_builds() {
        for (ty, example) in ProcessorConfig::examples() {
            let yaml = format!("type: {ty}\n{example}");
            let config: ProcessorConfig =
                serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("example of {ty} does not parse: {e}"));
            assert_eq!(config.type_name(), ty);
            config.build(&KeyTable::new()).expect("example builds");
        }
        let listed: Vec<&str> = ProcessorConfig::examples().iter().map(|(t, _)| *t).collect();
        assert_eq!(listed, ProcessorConfig::TYPES, "every type has an example");
    }
}
