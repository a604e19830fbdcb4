//! `type: kafka`: each event a Kafka message, produced with librdkafka (the rdkafka crate,
//! librdkafka built from its bundled sources).
//!
//! Delivery is at-least-once and acknowledged by Kafka: a flush returns `Ok` only when
//! every message written before it has a delivery report, so a file's checkpoint moves
//! only after the broker has its events. With `acks: all` (the default) the producer is
//! idempotent, so librdkafka's own retries add no duplicates.
//!
//! Nothing expires: `message.timeout.ms` is 0 (no limit) unless `librdkafka_options` sets
//! it, and a delivery report of a retryable error (a timeout, a broker gone) sends the
//! message again. A broker that is down therefore slows reading: librdkafka's queue fills
//! (`queue.buffering.max.messages`, `queue.buffering.max.kbytes`), `write` waits for room,
//! the output thread stops taking batches and the bounded channels behind it fill.
//! A message refused for good (too large, not authorized, invalid; or an event with no
//! topic) is counted in `rejected`, logged, and, when the pipeline names a `dead_letter`
//! output, delivered there with `_error` saying why before the batch is acknowledged.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use serde::Deserialize;
use serde_saphyr::Spanned;
use weir_core::units::{ByteSize, Dur};

use super::buffer::BufferConfig;
use super::{DeadLetter, DeadLetters, Format, Output, OutputStats, Sink};
use crate::config::error::{ConfigError, Pos};
use crate::net::kafka::{Client, KafkaSaslConfig};
use crate::net::tls::TlsConfig;

/// Default `batch.max_bytes` (librdkafka's `batch.size`).
pub const DEFAULT_BATCH_BYTES: u64 = 1 << 20;
/// Default `batch.timeout` (librdkafka's `linger.ms`).
pub const DEFAULT_BATCH_TIMEOUT: Duration = Duration::from_millis(10);
/// Bytes written between two flushes (each flush waits for every delivery report).
const FLUSH_BYTES: usize = 16 << 20;

/// `compression:`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaCompression {
    /// Sent as is.
    #[default]
    None,
    /// gzip.
    Gzip,
    /// snappy.
    Snappy,
    /// lz4.
    Lz4,
    /// zstd.
    Zstd,
}

impl KafkaCompression {
    fn codec(self) -> &'static str {
        match self {
            KafkaCompression::None => "none",
            KafkaCompression::Gzip => "gzip",
            KafkaCompression::Snappy => "snappy",
            KafkaCompression::Lz4 => "lz4",
            KafkaCompression::Zstd => "zstd",
        }
    }
}

/// `acks:`: which replicas must have a message before it counts as delivered.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum KafkaAcks {
    /// Every in-sync replica (and an idempotent producer).
    #[default]
    #[serde(rename = "all")]
    All,
    /// The partition leader only.
    #[serde(rename = "1")]
    Leader,
}

/// `batch:` of a kafka output.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaBatchConfig {
    /// Most bytes in one batch of messages to a partition (default 1MiB).
    #[serde(default)]
    pub max_bytes: Option<Spanned<ByteSize>>,
    /// How long a message may wait for others to fill its batch (default 10ms).
    #[serde(default)]
    pub timeout: Option<Spanned<Dur>>,
}

/// `type: kafka` (output).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaOutputConfig {
    /// A name, for the pipeline's `dead_letter`, metrics and logs.
    #[serde(default)]
    pub name: Option<String>,
    /// `buffer:`: where batches wait for the destination (default: in memory).
    #[serde(default)]
    pub buffer: Option<BufferConfig>,
    /// `host:port` of one or more brokers, comma-separated.
    pub bootstrap_servers: Spanned<String>,
    /// The topic: a name, or a template with field parts (`logs-{namespace}`).
    pub topic: Spanned<String>,
    /// Where an event goes when a field of `topic` is missing (default: nowhere, counted as
    /// rejected).
    #[serde(default)]
    pub default_topic: Option<Spanned<String>>,
    /// The field whose value is the message key (default: no key).
    #[serde(default)]
    pub key_field: Option<Spanned<String>>,
    /// `json` (default: the event as a JSON object) or `raw` (its `message`).
    #[serde(default)]
    pub encoding: Format,
    /// `none` (default), `gzip`, `snappy`, `lz4` or `zstd`.
    #[serde(default)]
    pub compression: KafkaCompression,
    /// `all` (default) or `1`.
    #[serde(default)]
    pub acks: KafkaAcks,
    /// Batch size and wait.
    #[serde(default)]
    pub batch: KafkaBatchConfig,
    /// SASL authentication (PLAIN, SCRAM).
    #[serde(default)]
    pub sasl: Option<KafkaSaslConfig>,
    /// TLS to the brokers.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// librdkafka settings passed as they are (they win over the ones above).
    #[serde(default)]
    pub librdkafka_options: Option<Spanned<BTreeMap<String, String>>>,
}

/// A part of a topic template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(String),
}

/// A parsed `topic:`: fixed text and `{field}` parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicTemplate(Vec<Part>);

impl TopicTemplate {
    /// Parses `logs-{namespace}`; `{{` and `}}` stand for braces.
    pub fn parse(text: &str) -> Result<TopicTemplate, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let field: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    if field.is_empty() || field.contains('{') {
                        return Err(format!("topic {text:?}: a `{{field}}` part needs a field name"));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field(field));
                }
                '}' => return Err(format!("topic {text:?}: `}}` without `{{` (write `}}}}` for a brace)")),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        if parts.is_empty() {
            return Err("topic is empty".into());
        }
        Ok(TopicTemplate(parts))
    }

    /// The topic when the template has no field parts.
    fn fixed(&self) -> Option<&str> {
        match &self.0[..] {
            [Part::Text(t)] => Some(t),
            _ => None,
        }
    }

    /// The topic of an event, from its fields (`None`: a field is missing).
    fn render(&self, event: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
        let mut topic = String::new();
        for part in &self.0 {
            match part {
                Part::Text(t) => topic.push_str(t),
                Part::Field(f) => match event.get(f)? {
                    serde_json::Value::String(s) => topic.push_str(s),
                    serde_json::Value::Null => return None,
                    other => topic.push_str(&other.to_string()),
                },
            }
        }
        Some(topic)
    }
}

impl KafkaOutputConfig {
    /// The client settings.
    pub fn client(&self) -> Client<'_> {
        Client {
            bootstrap_servers: &self.bootstrap_servers,
            sasl: &self.sasl,
            tls: &self.tls,
            options: &self.librdkafka_options,
        }
    }

    /// The producer's librdkafka settings.
    pub fn client_config(&self) -> ClientConfig {
        self.client().config(|c| {
            let batch_bytes = self.batch.max_bytes.as_ref().map_or(DEFAULT_BATCH_BYTES, |b| b.value.0);
            let linger = self.batch.timeout.as_ref().map_or(DEFAULT_BATCH_TIMEOUT, |t| t.value.0);
            c.set("compression.codec", self.compression.codec())
                .set("batch.size", batch_bytes.to_string())
                .set("linger.ms", linger.as_millis().to_string())
                // Nothing expires in librdkafka's queue: an outage slows reading instead.
                .set("message.timeout.ms", "0")
                // Reports of failures only: a flush waits for librdkafka's queue to empty
                // (a message leaves it once delivered, or once its failure is reported).
                .set("delivery.report.only.error", "true")
                // Queue depth for /metrics, once a second.
                .set("statistics.interval.ms", "1000");
            match self.acks {
                KafkaAcks::All => c.set("acks", "all").set("enable.idempotence", "true"),
                KafkaAcks::Leader => c.set("acks", "1"),
            };
        })
    }

    fn check(&self) -> Result<TopicTemplate, (Pos, String)> {
        self.client().check("kafka output")?;
        let topic = TopicTemplate::parse(&self.topic.value)
            .map_err(|e| (Pos::of(&self.topic), format!("kafka output: {e}")))?;
        if self.encoding == Format::Raw && topic.fixed().is_none() {
            return Err((
                Pos::of(&self.topic),
                "kafka output: a topic with `{field}` parts needs `encoding: json` (raw messages have no fields)"
                    .into(),
            ));
        }
        if let Some(k) = &self.key_field
            && self.encoding == Format::Raw
        {
            return Err((Pos::of(k), "kafka output: `key_field` needs `encoding: json`".into()));
        }
        if let Some(d) = &self.default_topic {
            let t = TopicTemplate::parse(&d.value).map_err(|e| (Pos::of(d), format!("kafka output: default_{e}")))?;
            if t.fixed().is_none() {
                return Err((Pos::of(d), "kafka output: `default_topic` is a plain name".into()));
            }
        }
        // librdkafka checks every setting's name and value; settings that conflict are
        // found when the producer is made (at start, and by `weir doctor`). Making a
        // client here would start its threads for a check.
        let at = self.client().options_pos();
        self.client_config()
            .create_native_config()
            .map_err(|e| (at, format!("kafka output: {e}")))?;
        Ok(topic)
    }

    /// Makes the producer. Nothing is connected yet: librdkafka connects in the background.
    pub fn open(&self, stats: &Arc<OutputStats>, abort: &Arc<AtomicBool>) -> anyhow::Result<KafkaSink> {
        let topic = self.check().map_err(|(_, msg)| anyhow::anyhow!(msg))?;
        let reports = Reports::new(stats.clone());
        let producer: ThreadedProducer<Reports> = self
            .client_config()
            .create_with_context(reports.clone())
            .map_err(|e| anyhow::anyhow!("kafka output: {e}"))?;
        Ok(KafkaSink {
            producer,
            reports,
            topic,
            default_topic: self.default_topic.as_ref().map(|d| d.value.clone()),
            key_field: self.key_field.as_ref().map(|k| k.value.clone()),
            encoding: self.encoding,
            abort: abort.clone(),
            stats: stats.clone(),
            dead_letters: None,
            written: 0,
        })
    }
}

impl Output for KafkaOutputConfig {
    fn secrets(&self) -> Vec<&str> {
        self.sasl.iter().map(|s| s.password.as_str()).collect()
    }

    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn buffer(&self) -> Option<&BufferConfig> {
        self.buffer.as_ref()
    }

    fn format(&self) -> Format {
        self.encoding
    }

    fn validate(&self, _at: Pos, file: &Path) -> Result<(), ConfigError> {
        self.check()
            .map(|_| ())
            .map_err(|(pos, msg)| ConfigError::at(file, pos, msg))
    }

    fn open(&self, stats: &Arc<OutputStats>, abort: &Arc<AtomicBool>) -> anyhow::Result<Box<dyn Sink>> {
        Ok(Box::new(KafkaOutputConfig::open(self, stats, abort)?))
    }
}

/// A message to send again: its delivery report was a retryable error.
#[derive(Debug)]
struct Resend {
    topic: String,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
}

/// The delivery reports, as librdkafka's thread hands them over.
#[derive(Debug, Clone)]
struct Reports(Arc<ReportState>);

#[derive(Debug)]
struct ReportState {
    resend: Mutex<Vec<Resend>>,
    /// Messages refused for good, kept for the dead-letter output when there is one.
    refused: Mutex<Vec<DeadLetter>>,
    keep_refused: AtomicBool,
    stats: Arc<OutputStats>,
    /// When a refusal or a retry was last logged (one line per 10 s at most).
    logged: Mutex<Option<Instant>>,
}

impl Reports {
    fn new(stats: Arc<OutputStats>) -> Reports {
        Reports(Arc::new(ReportState {
            resend: Mutex::new(Vec::new()),
            refused: Mutex::new(Vec::new()),
            keep_refused: AtomicBool::new(false),
            stats,
            logged: Mutex::new(None),
        }))
    }

    fn log_due(&self) -> bool {
        let mut last = self.0.logged.lock().unwrap_or_else(|e| e.into_inner());
        let due = last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
        if due {
            *last = Some(Instant::now());
        }
        due
    }

    /// Counts a message refused for good (and keeps it for the dead-letter output).
    fn refused(&self, line: &[u8], reason: impl FnOnce() -> String) {
        let state = &self.0;
        state.stats.rejected.fetch_add(1, Ordering::Relaxed);
        if state.keep_refused.load(Ordering::Relaxed) {
            state
                .refused
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(DeadLetter {
                    line: line.to_vec(),
                    reason: reason(),
                });
        }
    }
}

impl ClientContext for Reports {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        crate::net::kafka::log(level, fac, message);
    }

    fn stats(&self, statistics: rdkafka::Statistics) {
        let labeled = &self.0.stats.labeled;
        labeled.set(
            "weir_kafka_queue_messages",
            "Messages in the producer's queue, not yet delivered.",
            &[],
            statistics.msg_cnt as f64,
        );
        labeled.set(
            "weir_kafka_queue_bytes",
            "Bytes of messages in the producer's queue, not yet delivered.",
            &[],
            statistics.msg_size as f64,
        );
        for (topic, t) in &statistics.topics {
            // Partition -1 is librdkafka's queue of messages not yet given a partition.
            let queued: i64 = t.partitions.values().map(|p| p.msgq_cnt + p.xmit_msgq_cnt).sum();
            labeled.set(
                "weir_kafka_topic_queue_messages",
                "Messages of the topic waiting in the producer's queues (not sent yet).",
                &[("topic", topic)],
                queued.max(0) as f64,
            );
        }
    }
}

impl ProducerContext for Reports {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let state = &self.0;
        if let Err((e, msg)) = result {
            let topic = [("topic", msg.topic())];
            if refused_for_good(e) {
                self.refused(msg.payload().unwrap_or_default(), || format!("kafka refused it: {e}"));
                state.stats.labeled.add(ERRORS, ERRORS_HELP, &topic, 1.0);
                if self.log_due() {
                    tracing::error!(
                        topic = msg.topic(),
                        "kafka refused a message for good, counted as rejected: {e}"
                    );
                }
            } else {
                state.stats.retries.fetch_add(1, Ordering::Relaxed);
                state.stats.labeled.add(RETRIES, RETRIES_HELP, &topic, 1.0);
                if self.log_due() {
                    tracing::warn!(topic = msg.topic(), "kafka delivery failed, sending again: {e}");
                }
                state.resend.lock().unwrap_or_else(|e| e.into_inner()).push(Resend {
                    topic: msg.topic().to_string(),
                    key: msg.key().map(<[u8]>::to_vec),
                    payload: msg.payload().unwrap_or_default().to_vec(),
                });
            }
        }
    }
}

const MESSAGES: &str = "weir_kafka_messages_total";
const MESSAGES_HELP: &str = "Messages handed to Kafka, by topic.";
const BYTES: &str = "weir_kafka_bytes_total";
const BYTES_HELP: &str = "Bytes of messages handed to Kafka, by topic.";
const RETRIES: &str = "weir_kafka_retries_total";
const RETRIES_HELP: &str = "Messages sent again after a retryable delivery error, by topic.";
const ERRORS: &str = "weir_kafka_errors_total";
const ERRORS_HELP: &str = "Messages Kafka refused for good (counted as rejected), by topic.";

/// Errors a retry cannot fix.
fn refused_for_good(e: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(
            C::MessageSizeTooLarge
                | C::InvalidMessageSize
                | C::InvalidMessage
                | C::TopicAuthorizationFailed
                | C::ClusterAuthorizationFailed
                | C::InvalidRecord
                | C::InvalidTopic
                | C::UnsupportedForMessageFormat
        )
    )
}

/// The producer side of a kafka output.
pub struct KafkaSink {
    producer: ThreadedProducer<Reports>,
    reports: Reports,
    topic: TopicTemplate,
    default_topic: Option<String>,
    key_field: Option<String>,
    encoding: Format,
    abort: Arc<AtomicBool>,
    stats: Arc<OutputStats>,
    /// Where refused messages go (the pipeline's `dead_letter` output).
    dead_letters: Option<DeadLetters>,
    /// Bytes written since the last flush.
    written: usize,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaSink {
    /// Hands one message to librdkafka, waiting while its queue is full.
    fn send(&self, topic: &str, key: Option<&[u8]>, payload: &[u8]) -> io::Result<()> {
        let mut record = BaseRecord::to(topic).payload(payload);
        if let Some(k) = key {
            record = record.key(k);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    if self.abort.load(Ordering::Relaxed) {
                        return Err(io::Error::other(
                            "kafka: the shutdown deadline passed with the queue full",
                        ));
                    }
                    record = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((e, _)) => {
                    // Too large, a topic name librdkafka refuses and the like: not retried.
                    self.reports
                        .refused(payload, || format!("kafka refused it (topic {topic}): {e}"));
                    if self.reports.log_due() {
                        tracing::error!(topic, "kafka refused a message, counted as rejected: {e}");
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Topic and key of one JSON line (`None`: no topic, counted as rejected).
    fn route(&self, line: &[u8]) -> Option<(String, Option<Vec<u8>>)> {
        let event: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(line).ok()?;
        let topic = self.topic.render(&event).or_else(|| self.default_topic.clone())?;
        let key = self.key_field.as_ref().and_then(|k| match event.get(k)? {
            serde_json::Value::String(s) => Some(s.as_bytes().to_vec()),
            serde_json::Value::Null => None,
            other => Some(other.to_string().into_bytes()),
        });
        Some((topic, key))
    }

    /// Delivers the refused messages to the dead-letter output, if there is one.
    fn dead_letters(&self) -> io::Result<()> {
        let refused = std::mem::take(&mut *self.reports.0.refused.lock().unwrap_or_else(|e| e.into_inner()));
        match &self.dead_letters {
            Some(to) if !refused.is_empty() => to.deliver(self.encoding, refused),
            _ => Ok(()),
        }
    }

    fn resend(&self) -> io::Result<()> {
        let again = std::mem::take(&mut *self.reports.0.resend.lock().unwrap_or_else(|e| e.into_inner()));
        for m in again {
            self.send(&m.topic, m.key.as_deref(), &m.payload)?;
        }
        Ok(())
    }
}

impl Sink for KafkaSink {
    fn write(&mut self, bytes: &[u8], _events: u64) -> io::Result<()> {
        self.written += bytes.len();
        let fixed = self.key_field.is_none().then(|| self.topic.fixed()).flatten();
        let mut counts: Vec<(String, u64, u64)> = Vec::new();
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            if let Some(topic) = fixed {
                self.send(topic, None, line)?;
                count(&mut counts, topic, line.len());
                continue;
            }
            let Some((topic, key)) = (match self.encoding {
                Format::Json => self.route(line),
                Format::Raw => self.topic.fixed().map(|t| (t.to_string(), None)),
            }) else {
                self.reports.refused(line, || {
                    "kafka output: the event has no field for the topic and there is no default_topic".into()
                });
                if self.reports.log_due() {
                    tracing::error!(
                        "kafka output: an event has no field for the topic and there is no default_topic; counted as rejected"
                    );
                }
                continue;
            };
            self.send(&topic, key.as_deref(), line)?;
            count(&mut counts, &topic, line.len());
        }
        for (topic, messages, bytes) in counts {
            let labels = [("topic", topic.as_str())];
            self.stats
                .labeled
                .add(MESSAGES, MESSAGES_HELP, &labels, messages as f64);
            self.stats.labeled.add(BYTES, BYTES_HELP, &labels, bytes as f64);
        }
        self.resend()
    }

    /// Waits until every message written is delivered, sending again those that failed
    /// and can be retried.
    fn flush(&mut self) -> io::Result<()> {
        self.written = 0;
        loop {
            self.resend()?;
            let state = &self.reports.0;
            // In this order: librdkafka's queue counts a failed message until its report is
            // served, and serving it queues the message for resending; so an empty queue
            // means every failure is in `resend`.
            let queued = self.producer.in_flight_count();
            let resend_empty = state.resend.lock().unwrap_or_else(|e| e.into_inner()).is_empty();
            if queued == 0 && resend_empty {
                return self.dead_letters();
            }
            if self.abort.load(Ordering::Relaxed) {
                return Err(io::Error::other(format!(
                    "kafka: {queued} message(s) not delivered before the shutdown deadline"
                )));
            }
            // The producer's own thread serves the delivery reports; polling here as well
            // returned at once and spun (15% of a kafka-out run was clock_gettime).
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn flush_bytes(&self) -> usize {
        FLUSH_BYTES
    }

    fn flush_interval(&self) -> Duration {
        Duration::from_millis(200)
    }

    fn set_dead_letters(&mut self, to: Option<DeadLetters>) {
        self.reports.0.keep_refused.store(to.is_some(), Ordering::Relaxed);
        self.dead_letters = to;
    }
}

/// One more message of `len` bytes to `topic` in a batch's counts (few topics per batch).
fn count(counts: &mut Vec<(String, u64, u64)>, topic: &str, len: usize) {
    match counts.iter_mut().find(|(t, _, _)| t == topic) {
        Some((_, m, b)) => {
            *m += 1;
            *b += len as u64;
        }
        None => counts.push((topic.to_string(), 1, len as u64)),
    }
}

impl Drop for KafkaSink {
    fn drop(&mut self) {
        // What is still queued was not acknowledged: it is read again after a restart.
        let _ = self.producer.flush(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_templates() {
        let t = TopicTemplate::parse("logs-{namespace}").unwrap();
        let event: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"namespace":"shop","n":3}"#).unwrap();
        assert_eq!(t.render(&event).as_deref(), Some("logs-shop"));
        let none: serde_json::Map<String, serde_json::Value> = serde_json::from_str(r#"{"n":3}"#).unwrap();
        assert_eq!(t.render(&none), None);
        assert_eq!(TopicTemplate::parse("plain").unwrap().fixed(), Some("plain"));
        assert_eq!(TopicTemplate::parse("a{{b}}").unwrap().fixed(), Some("a{b}"));
        assert!(TopicTemplate::parse("logs-{}").is_err());
        assert!(TopicTemplate::parse("logs-}").is_err());
        assert!(TopicTemplate::parse("").is_err());
    }
}
