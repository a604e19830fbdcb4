//! The registry: every component `type`, one line each. Adding an input, processor or
//! output is its own file plus one line in the list of its family below (see
//! ARCHITECTURE.md, "Adding an input, output or processor").
//!
//! The [`registry!`] macro turns each list into an enum of configs (`InputConfig`,
//! `ProcessorConfig`, `OutputConfig`) that reads itself from a map by its `type` key (see
//! [`super::tagged`]) and hands out the component behind it: an input as
//! [`&dyn Input`](Input), an output as [`&dyn Output`](Output), a processor built into a
//! [`Processor`] (processors live in `weir-core` and `weir-wasm`; each config has an
//! inherent `build` and `EXAMPLE`).

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

use super::tagged::{Tagged, deserialize_tagged};
use crate::inputs::Input;
use crate::inputs::exec::ExecConfig;
use crate::inputs::file::FileInputConfig;
use crate::inputs::http::HttpInputConfig;
use crate::inputs::kafka::KafkaInputConfig;
use crate::inputs::kubernetes::KubernetesLogsConfig;
use crate::inputs::opentelemetry::OpentelemetryInputConfig;
use crate::inputs::stdin::StdinConfig;
use crate::inputs::syslog::SyslogInputConfig;
use crate::outputs::Output;
use crate::outputs::file::FileOutputConfig;
use crate::outputs::http::HttpOutputConfig;
use crate::outputs::kafka::KafkaOutputConfig;
use crate::outputs::opentelemetry::OpentelemetryOutputConfig;
use crate::outputs::stdout::StdoutConfig;

/// Defines one family's enum: a variant per `"type" => Variant(Config)` line, its
/// [`Tagged`] reading and `type_name`; for inputs and outputs `get`, the component behind
/// it as `&dyn Input` / `&dyn Output`; for processors `build` and `examples`, from each
/// config's inherent `build` and `EXAMPLE`.
macro_rules! registry {
    (
        $(#[$meta:meta])*
        $Enum:ident: $what:literal, dyn $Trait:ident {
            $( $(#[$doc:meta])* $name:literal => $Variant:ident($Config:ty), )*
        }
    ) => {
        registry!(@family $(#[$meta])* $Enum: $what { $( $(#[$doc])* $name => $Variant($Config), )* });

        impl $Enum {
            /// The component behind the config.
            pub fn get(&self) -> &dyn $Trait {
                match self {
                    $( $Enum::$Variant(c) => c, )*
                }
            }
        }
    };
    (
        $(#[$meta:meta])*
        $Enum:ident: $what:literal, processors {
            $( $(#[$doc:meta])* $name:literal => $Variant:ident($Config:ty), )*
        }
    ) => {
        registry!(@family $(#[$meta])* $Enum: $what { $( $(#[$doc])* $name => $Variant($Config), )* });

        impl $Enum {
            /// Builds one worker's instance, interning its keys in `keys`.
            pub fn build(&self, keys: &Arc<KeyTable>) -> Result<Box<dyn Processor>, BuildError> {
                Ok(match self {
                    $( $Enum::$Variant(c) => Box::new(c.build(keys)?), )*
                })
            }

            /// The example config of each type (the lines after `type:`), for docs and tests.
            pub fn examples() -> Vec<(&'static str, &'static str)> {
                vec![$( ($name, <$Config>::EXAMPLE), )*]
            }
        }
    };
    (
        @family $(#[$meta:meta])* $Enum:ident: $what:literal {
            $( $(#[$doc:meta])* $name:literal => $Variant:ident($Config:ty), )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug)]
        #[allow(clippy::large_enum_variant)] // read once at start; size does not matter
        pub enum $Enum {
            $( $(#[$doc])* $Variant($Config), )*
        }

        impl $Enum {
            /// The `type` name.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $( $Enum::$Variant(_) => $name, )*
                }
            }
        }

        impl Tagged for $Enum {
            const WHAT: &'static str = $what;
            const TYPES: &'static [&'static str] = &[$($name),*];

            fn from_type<'de, D: Deserializer<'de>>(ty: &str, rest: D) -> Result<Self, D::Error> {
                match ty {
                    $( $name => <$Config>::deserialize(rest).map($Enum::$Variant), )*
                    _ => Err(Self::unknown_type(ty)),
                }
            }
        }

        impl<'de> Deserialize<'de> for $Enum {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize_tagged(d)
            }
        }
    };
}

registry! {
    /// An entry of `inputs:`.
    InputConfig: "input", dyn Input {
        /// `stdin`: lines from standard input until end of file.
        "stdin" => Stdin(StdinConfig),
        /// `file`: lines from files matched by globs.
        "file" => File(FileInputConfig),
        /// `kubernetes_logs`: a node's container logs, with pod metadata.
        "kubernetes_logs" => KubernetesLogs(KubernetesLogsConfig),
        /// `kafka`: messages of Kafka topics, read as a member of a consumer group.
        "kafka" => Kafka(KafkaInputConfig),
        /// `opentelemetry`: an OTLP/HTTP logs receiver.
        "opentelemetry" => Opentelemetry(OpentelemetryInputConfig),
        /// `http`: NDJSON or JSON arrays POSTed by applications.
        "http" => Http(HttpInputConfig),
        /// `syslog`: RFC 5424 and RFC 3164 over TCP (newline or octet-counting, TLS) or UDP.
        "syslog" => Syslog(SyslogInputConfig),
        /// `exec`: the output of the command `weir run --exec -- CMD` runs.
        "exec" => Exec(ExecConfig),
    }
}

registry! {
    /// An entry of `processors:`.
    ProcessorConfig: "processor", processors {
        /// `add_fields`: set constant fields.
        "add_fields" => AddFields(AddFieldsConfig),
        /// `drop_fields`: remove fields.
        "drop_fields" => DropFields(DropFieldsConfig),
        /// `rename_fields`: rename fields.
        "rename_fields" => RenameFields(RenameFieldsConfig),
        /// `parse_regex`: named capture groups become fields.
        "parse_regex" => ParseRegex(ParseRegexConfig),
        /// `parse_json`: the members of a JSON object become fields.
        "parse_json" => ParseJson(ParseJsonConfig),
        /// `parse_delimiter`: CSV-like columns become fields.
        "parse_delimiter" => ParseDelimiter(ParseDelimiterConfig),
        /// `parse_kv`: `key=value` pairs (logfmt) become fields.
        "parse_kv" => ParseKv(ParseKvConfig),
        /// `parse_timestamp`: a field becomes the event time.
        "parse_timestamp" => ParseTimestamp(ParseTimestampConfig),
        /// `filter`: keep the events that satisfy conditions.
        "filter" => Filter(FilterConfig),
        /// `mask`: replace what a regex matches with a constant or a hash.
        "mask" => Mask(MaskConfig),
        /// `multiline`: merge consecutive events of a batch into records.
        "multiline" => Multiline(MultilineProcessorConfig),
        /// `wasm`: a sandboxed Wasm component plugin, called once per batch.
        "wasm" => Wasm(WasmConfig),
    }
}

registry! {
    /// An entry of `outputs:`.
    OutputConfig: "output", dyn Output {
        /// `stdout`: events to standard output.
        "stdout" => Stdout(StdoutConfig),
        /// `file`: events appended to a file.
        "file" => File(FileOutputConfig),
        /// `http`: events POSTed as JSON lines or Elasticsearch `_bulk` bodies.
        "http" => Http(HttpOutputConfig),
        /// `kafka`: each event a Kafka message, acknowledged by the broker.
        "kafka" => Kafka(KafkaOutputConfig),
        /// `opentelemetry`: events as OTLP/HTTP logs (protobuf or JSON).
        "opentelemetry" => Opentelemetry(OpentelemetryOutputConfig),
    }
}

impl ProcessorConfig {
    /// The failure policy, for processors that have one (a processor with `on_failure`
    /// adds its line here).
    pub fn on_failure(&self) -> Option<OnFailure> {
        match self {
            ProcessorConfig::ParseRegex(c) => Some(c.on_failure),
            ProcessorConfig::ParseJson(c) => Some(c.on_failure),
            ProcessorConfig::ParseTimestamp(c) => Some(c.on_failure),
            ProcessorConfig::ParseDelimiter(c) => Some(c.on_failure),
            ProcessorConfig::ParseKv(c) => Some(c.on_failure),
            // `on_error` plays the part of `on_failure` (pass keeps the batch as it was).
            ProcessorConfig::Wasm(c) => Some(match c.on_error {
                OnError::Pass => OnFailure::Keep,
                OnError::Drop => OnFailure::Drop,
                OnError::DeadLetter => OnFailure::DeadLetter,
            }),
            _ => None,
        }
    }
}

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
