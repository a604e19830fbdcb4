//! `type: kafka` (input): the messages of Kafka topics as events, read as a member of a
//! consumer group, so aggregators scale out by adding processes.
//!
//! Each assigned partition is a source of its own: its messages go to the workers in
//! chunks, in order, and come out of every output in that order; partitions run in
//! parallel. Offsets are committed only for what every output acknowledged, and only up
//! to the contiguous acknowledged prefix of each partition ([`Offsets`]): a later chunk
//! acknowledged before an earlier one does not move the offset past the earlier one.
//! When partitions are revoked (a rebalance) and when the run stops, what was handed over
//! is given `drain_timeout` to be delivered, then committed; what is not delivered by
//! then is read again by whoever owns the partition next (at-least-once).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde::Deserialize;
use serde_saphyr::Spanned;
use weir_core::frame::{Framed, Record, Stream};
use weir_core::model::{Buf, KeyTable, Span, Value};
use weir_core::pipeline::Processor;
use weir_core::units::Dur;

use super::{ChunkPayload, Input, Reading, Run, RunContext, SourceChunk, SourceFields};
use crate::config::error::{ConfigError, Pos};
use crate::delivery::{Ack, SourceAcks};
use crate::net::kafka::{Client, KafkaSaslConfig};
use crate::net::tls::TlsConfig;

/// Bytes of messages in one chunk of a partition.
const CHUNK_BYTES: usize = 256 << 10;
/// Default `drain_timeout`.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often acknowledged offsets are committed.
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// `auto_offset_reset:`: where a group with no committed offset starts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffsetReset {
    /// The oldest message still there (nothing already in the topic is skipped).
    #[default]
    Earliest,
    /// Only messages written from now on.
    Latest,
}

/// `decoding:`: what a message is.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decoding {
    /// Bytes: the event's `message`.
    #[default]
    Raw,
    /// A JSON object whose members become the event's fields (a message that is not one is
    /// kept as `message`, with `_error`, and counted as a format error).
    Json,
}

/// `metadata:`: the names of fields that get each message's topic, partition, offset, key and
/// timestamp (none by default).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaMetadata {
    /// Field for the topic.
    #[serde(default)]
    pub topic: Option<String>,
    /// Field for the partition.
    #[serde(default)]
    pub partition: Option<String>,
    /// Field for the message's offset in its partition.
    #[serde(default)]
    pub offset: Option<String>,
    /// Field for the message's key (absent key: `null`).
    #[serde(default)]
    pub key: Option<String>,
    /// Field for the message's Kafka timestamp, in milliseconds since the Unix epoch (it is
    /// also the event's time).
    #[serde(default)]
    pub timestamp: Option<String>,
}

impl KafkaMetadata {
    /// The fields each message gets on its own: (name, what).
    fn per_message(&self) -> Vec<(&'static str, MessageField)> {
        [
            (&self.offset, MessageField::Offset),
            (&self.key, MessageField::Key),
            (&self.timestamp, MessageField::Timestamp),
        ]
        .into_iter()
        .filter_map(|(name, what)| Some((leak(name.as_ref()?), what)))
        .collect()
    }
}

/// What a per-message metadata field holds.
#[derive(Debug, Clone, Copy)]
enum MessageField {
    Offset,
    Key,
    Timestamp,
}

/// `type: kafka` (input).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaInputConfig {
    /// `host:port` of one or more brokers, comma-separated.
    pub bootstrap_servers: Spanned<String>,
    /// The topics to read.
    pub topics: Spanned<Vec<Spanned<String>>>,
    /// The consumer group: processes with the same group share the partitions.
    pub group_id: Spanned<String>,
    /// `earliest` (default) or `latest`.
    #[serde(default)]
    pub auto_offset_reset: OffsetReset,
    /// `raw` (default) or `json`.
    #[serde(default)]
    pub decoding: Decoding,
    /// Fields for each message's topic, partition, offset, key and timestamp (default: none).
    #[serde(default)]
    pub metadata: KafkaMetadata,
    /// On a rebalance or at shutdown, how long what was read may take to be delivered
    /// before the offsets are committed (default 10s; at shutdown at most 3/4 of
    /// `shutdown_timeout`).
    #[serde(default)]
    pub drain_timeout: Option<Spanned<Dur>>,
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

impl KafkaInputConfig {
    /// The client settings.
    pub fn client(&self) -> Client<'_> {
        Client {
            bootstrap_servers: &self.bootstrap_servers,
            sasl: &self.sasl,
            tls: &self.tls,
            options: &self.librdkafka_options,
        }
    }

    /// The consumer's librdkafka settings.
    pub fn client_config(&self) -> ClientConfig {
        self.client().config(|c| {
            let reset = match self.auto_offset_reset {
                OffsetReset::Earliest => "earliest",
                OffsetReset::Latest => "latest",
            };
            c.set("group.id", &self.group_id.value)
                .set("auto.offset.reset", reset)
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("partition.assignment.strategy", "cooperative-sticky")
                // Consumer lag for /metrics, once a second.
                .set("statistics.interval.ms", "1000");
        })
    }

    fn check(&self) -> Result<(), (Pos, String)> {
        self.client().check("kafka input")?;
        if self.topics.value.is_empty() || self.topics.value.iter().any(|t| t.value.trim().is_empty()) {
            return Err((Pos::of(&self.topics), "kafka input: `topics` needs topic names".into()));
        }
        if self.group_id.value.trim().is_empty() {
            return Err((Pos::of(&self.group_id), "kafka input: `group_id` is empty".into()));
        }
        if let Some(d) = &self.drain_timeout
            && d.value.0.is_zero()
        {
            return Err((Pos::of(d), "kafka input: `drain_timeout` must be more than 0".into()));
        }
        // Each setting's name and value (conflicts show when the consumer is made).
        self.client_config()
            .create_native_config()
            .map(|_| ())
            .map_err(|e| (self.client().options_pos(), format!("kafka input: {e}")))
    }
}

impl Input for KafkaInputConfig {
    fn secrets(&self) -> Vec<&str> {
        self.sasl.iter().map(|s| s.password.as_str()).collect()
    }

    fn validate(&self, _at: Pos, file: &Path) -> Result<(), ConfigError> {
        self.check().map_err(|(pos, msg)| ConfigError::at(file, pos, msg))
    }

    fn decoder(&self, keys: &Arc<KeyTable>) -> Option<Box<dyn Processor>> {
        if self.decoding == Decoding::Raw {
            return None;
        }
        super::json_decoder(keys, "kafka input")
    }

    fn reading(&self, file: &Path) -> Result<Reading, ConfigError> {
        self.validate(Pos::default(), file)?;
        Ok(Reading::Run(Box::new(KafkaSource {
            config: self.client_config(),
            topics: self.topics.value.iter().map(|t| t.value.clone()).collect(),
            topic_field: self.metadata.topic.clone(),
            partition_field: self.metadata.partition.clone(),
            message_fields: self.metadata.per_message(),
            drain_timeout: self.drain_timeout.as_ref().map_or(DEFAULT_DRAIN_TIMEOUT, |d| d.value.0),
        })))
    }
}

/// A partition: (topic, partition).
type Tp = (String, i32);

/// What is known of one partition's offsets.
#[derive(Debug, Default)]
struct Track {
    /// The offset after the last chunk handed over (where the next chunk starts).
    sent_to: i64,
    /// Every offset below this is delivered; the offset to commit.
    acked_to: i64,
    /// Delivered chunks above `acked_to`: start -> end.
    acked: BTreeMap<i64, i64>,
    /// Chunks handed over and not yet delivered.
    in_flight: usize,
    /// The last offset committed.
    committed: i64,
}

/// The offsets of the assigned partitions: which chunks are delivered, and what may be
/// committed (the contiguous delivered prefix of each partition).
#[derive(Debug, Default)]
pub struct Offsets {
    state: Mutex<OffsetState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct OffsetState {
    tracks: HashMap<Tp, Track>,
    /// token -> (partition, start, end) of a chunk handed over.
    chunks: HashMap<u64, (Tp, i64, i64)>,
    next_token: u64,
}

impl Offsets {
    fn lock(&self) -> std::sync::MutexGuard<'_, OffsetState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A partition is now ours, read from `from`.
    pub fn assigned(&self, tp: Tp, from: i64) {
        self.lock().tracks.insert(
            tp,
            Track {
                sent_to: from,
                acked_to: from,
                committed: from,
                ..Track::default()
            },
        );
    }

    /// A chunk of `tp` ending before offset `end` is handed over; its token. `None` when
    /// the partition is not ours (revoked meanwhile).
    pub fn sent(&self, tp: &Tp, end: i64) -> Option<u64> {
        let mut state = self.lock();
        let track = state.tracks.get_mut(tp)?;
        let start = track.sent_to;
        track.sent_to = end;
        track.in_flight += 1;
        let token = state.next_token;
        state.next_token += 1;
        state.chunks.insert(token, (tp.clone(), start, end));
        Some(token)
    }

    /// Offsets to commit: delivered further than committed (of `only`, when given).
    pub fn to_commit(&self, only: Option<&HashSet<Tp>>) -> Vec<(Tp, i64)> {
        let state = self.lock();
        state
            .tracks
            .iter()
            .filter(|(tp, t)| only.is_none_or(|o| o.contains(*tp)) && t.acked_to > t.committed)
            .map(|(tp, t)| (tp.clone(), t.acked_to))
            .collect()
    }

    /// The broker has these offsets.
    pub fn committed(&self, offsets: &[(Tp, i64)]) {
        let mut state = self.lock();
        for (tp, offset) in offsets {
            if let Some(t) = state.tracks.get_mut(tp) {
                t.committed = t.committed.max(*offset);
            }
        }
    }

    /// Waits until no chunk of `tps` is in flight, or `timeout` passed; the chunks still in
    /// flight.
    pub fn settle(&self, tps: &HashSet<Tp>, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            let in_flight: usize = tps
                .iter()
                .filter_map(|tp| state.tracks.get(tp))
                .map(|t| t.in_flight)
                .sum();
            let left = deadline.saturating_duration_since(Instant::now());
            if in_flight == 0 || left.is_zero() {
                return in_flight;
            }
            state = self
                .changed
                .wait_timeout(state, left.min(Duration::from_millis(100)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The chunk of `token` was not taken (the run stopped): it is not in flight, and since
    /// it is never delivered, nothing from its start on is committed.
    pub fn not_taken(&self, token: u64) {
        let mut state = self.lock();
        if let Some((tp, _, _)) = state.chunks.remove(&token)
            && let Some(t) = state.tracks.get_mut(&tp)
        {
            t.in_flight -= 1;
        }
        drop(state);
        self.changed.notify_all();
    }

    /// The partitions are no longer ours.
    pub fn revoked(&self, tps: &HashSet<Tp>) {
        let mut state = self.lock();
        state.tracks.retain(|tp, _| !tps.contains(tp));
        state.chunks.retain(|_, (tp, _, _)| !tps.contains(tp));
    }
}

impl SourceAcks for Offsets {
    fn ack(&self, token: u64) {
        let mut state = self.lock();
        if let Some((tp, start, end)) = state.chunks.remove(&token)
            && let Some(t) = state.tracks.get_mut(&tp)
        {
            t.in_flight -= 1;
            t.acked.insert(start, end);
            while let Some(end) = t.acked.remove(&t.acked_to) {
                t.acked_to = end;
            }
        }
        drop(state);
        self.changed.notify_all();
    }
}

/// Commits what is delivered of `only` (all partitions when `None`), synchronously:
/// an offset counts as committed only once the broker has it, so a failed commit is
/// tried again the next time.
fn commit(consumer: &BaseConsumer<Group>, offsets: &Offsets, only: Option<&HashSet<Tp>>) {
    let due = offsets.to_commit(only);
    if due.is_empty() {
        return;
    }
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in &due {
        let _ = list.add_partition_offset(topic, *partition, Offset::Offset(*offset));
    }
    match consumer.commit(&list, CommitMode::Sync) {
        Ok(()) => offsets.committed(&due),
        Err(e) => tracing::warn!("kafka input: committing offsets failed (they are committed again later): {e}"),
    }
}

/// The consumer's context: on a revocation, gives what was handed over of the revoked
/// partitions `drain` to be delivered, commits it, and forgets the partitions.
struct Group {
    offsets: Arc<Offsets>,
    stats: Arc<super::InputStats>,
    drain: Duration,
    /// Partitions revoked since the reading loop last looked: their held messages go.
    revoked: Mutex<HashSet<Tp>>,
}

impl ClientContext for Group {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        crate::net::kafka::log(level, fac, message);
    }

    fn stats(&self, statistics: rdkafka::Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition < 0 || p.consumer_lag < 0 {
                    continue;
                }
                let partition = partition.to_string();
                self.stats.labeled.set(
                    "weir_kafka_consumer_lag",
                    "Messages of the partition not read yet (high watermark - position).",
                    &[("topic", topic), ("partition", &partition)],
                    p.consumer_lag as f64,
                );
            }
        }
    }
}

impl ConsumerContext for Group {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let tps: HashSet<Tp> = list
                .elements()
                .iter()
                .map(|e| (e.topic().to_string(), e.partition()))
                .collect();
            let left = self.offsets.settle(&tps, self.drain);
            if left > 0 {
                tracing::warn!(
                    chunks = left,
                    "kafka input: partitions revoked before what was read of them was delivered; \
                     the next owner reads it again"
                );
            }
            commit(consumer, &self.offsets, Some(&tps));
            self.offsets.revoked(&tps);
            self.revoked.lock().unwrap_or_else(|e| e.into_inner()).extend(tps);
        }
    }
}

/// A partition's messages being gathered into a chunk.
struct Pending {
    source: u32,
    seq: u64,
    framed: Framed,
    /// The offset after the last message in `framed`.
    end: i64,
    fields: Option<SourceFields>,
}

/// The running `kafka` input.
#[derive(Debug)]
struct KafkaSource {
    config: ClientConfig,
    topics: Vec<String>,
    topic_field: Option<String>,
    partition_field: Option<String>,
    /// The fields each message gets ([`KafkaMetadata::per_message`]).
    message_fields: Vec<(&'static str, MessageField)>,
    drain_timeout: Duration,
}

impl KafkaSource {
    fn fields(&self, tp: &Tp) -> Option<SourceFields> {
        let mut fields = Vec::new();
        if let Some(f) = &self.topic_field {
            fields.push((leak(f), tp.0.clone()));
        }
        if let Some(f) = &self.partition_field {
            fields.push((leak(f), tp.1.to_string()));
        }
        (!fields.is_empty()).then(|| SourceFields::from(fields))
    }
}

/// Field names of source fields are `&'static str`: a config's few names live for the run.
fn leak(name: &str) -> &'static str {
    Box::leak(name.to_string().into_boxed_str())
}

impl Run for KafkaSource {
    fn run(self: Box<Self>, ctx: RunContext<'_>) {
        let offsets = Arc::new(Offsets::default());
        let group = Group {
            offsets: offsets.clone(),
            stats: ctx.stats.clone(),
            drain: self.drain_timeout,
            revoked: Mutex::default(),
        };
        let consumer: BaseConsumer<Group> = match self.config.create_with_context(group) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("kafka input: cannot make a consumer: {e}");
                ctx.stats.read_errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        if let Err(e) = consumer.subscribe(&topics) {
            tracing::error!("kafka input: cannot subscribe to {topics:?}: {e}");
            ctx.stats.read_errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut reader = Reader {
            source: &self,
            ctx,
            offsets: &offsets,
            pending: HashMap::new(),
        };
        let reading = AtomicBool::new(true);
        std::thread::scope(|s| {
            // Commits what was delivered, whatever the reader is doing (it may be waiting
            // for room in a pipeline whose output is stuck).
            s.spawn(|| {
                let mut last = Instant::now();
                while reading.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                    if last.elapsed() >= COMMIT_INTERVAL {
                        commit(&consumer, &offsets, None);
                        last = Instant::now();
                    }
                }
            });
            reader.read(&consumer);
            reading.store(false, Ordering::Relaxed);
        });
        // Stopping: what was handed over gets its time to be delivered, then is committed.
        let tps: HashSet<Tp> = offsets.lock().tracks.keys().cloned().collect();
        let left = offsets.settle(&tps, reader.ctx.drain_timeout);
        if left > 0 {
            tracing::warn!(
                chunks = left,
                "kafka input: stopping before everything read was delivered; it is read again"
            );
        }
        commit(&consumer, &offsets, None);
    }
}

/// The reading loop of a running `kafka` input.
struct Reader<'a, 'c> {
    source: &'a KafkaSource,
    ctx: RunContext<'c>,
    offsets: &'a Arc<Offsets>,
    pending: HashMap<Tp, Pending>,
}

impl Reader<'_, '_> {
    /// Reads until the run stops (or the runtime takes no more).
    fn read(&mut self, consumer: &BaseConsumer<Group>) {
        let mut errors_logged = Instant::now() - Duration::from_secs(60);
        while !self.ctx.stop.load(Ordering::Relaxed) {
            let mut wait = Duration::from_millis(100);
            // A burst: what is there now, up to a chunk per partition.
            loop {
                match consumer.poll(wait) {
                    Some(Ok(m)) => {
                        let tp = (m.topic().to_string(), m.partition());
                        self.add(&tp, &m);
                        if self
                            .pending
                            .get(&tp)
                            .is_some_and(|p| p.framed.data.len() >= CHUNK_BYTES)
                            && !self.send(&tp)
                        {
                            return;
                        }
                    }
                    Some(Err(e)) => {
                        if errors_logged.elapsed() >= Duration::from_secs(10) {
                            tracing::warn!("kafka input: {e}");
                            errors_logged = Instant::now();
                        }
                        break;
                    }
                    None => break,
                }
                wait = Duration::ZERO;
            }
            self.drop_revoked(consumer);
            let tps: Vec<Tp> = self.pending.keys().cloned().collect();
            for tp in tps {
                if !self.send(&tp) {
                    return;
                }
            }
        }
    }

    /// Adds a message to its partition's chunk.
    fn add(&mut self, tp: &Tp, m: &BorrowedMessage<'_>) {
        let (offset, payload, millis) = (m.offset(), m.payload().unwrap_or_default(), m.timestamp().to_millis());
        let source = self.source;
        let ctx = &self.ctx;
        let offsets = self.offsets;
        let p = self.pending.entry(tp.clone()).or_insert_with(|| {
            offsets.lock().tracks.entry(tp.clone()).or_insert_with(|| Track {
                sent_to: offset,
                acked_to: offset,
                committed: offset,
                ..Track::default()
            });
            Pending {
                source: ctx.next_source.fetch_add(1, Ordering::Relaxed),
                seq: 0,
                framed: Framed::default(),
                end: offset,
                fields: source.fields(tp),
            }
        });
        if p.framed.data.capacity() == 0 {
            p.framed.data = ctx.pool.take_empty(CHUNK_BYTES + payload.len());
        }
        let start = p.framed.data.len();
        p.framed.data.extend_from_slice(payload);
        let fields = (!source.message_fields.is_empty()).then(|| {
            let framed = &mut p.framed;
            if framed.field_names.is_empty() {
                framed.field_names = source.message_fields.iter().map(|(name, _)| *name).collect();
            }
            let first = framed.fields.len() as u32;
            for (_, what) in &source.message_fields {
                let value = match what {
                    MessageField::Offset => Value::Int(offset),
                    MessageField::Key => m.key().map_or(Value::Null, |key| {
                        let span = Span::new(Buf::Arena, framed.arena.len(), key.len());
                        framed.arena.extend_from_slice(key);
                        Value::Str(span)
                    }),
                    MessageField::Timestamp => millis.map_or(Value::Null, Value::Int),
                };
                framed.fields.push(value);
            }
            first
        });
        p.framed.records.push(Record {
            message: Span::new(Buf::Chunk, start, payload.len()),
            stream: Stream::None,
            timestamp: millis.map(|ms| ms.saturating_mul(1_000_000)),
            cut: false,
            error: None,
            fields,
        });
        p.end = offset + 1;
        ctx.stats.bytes.fetch_add(payload.len() as u64, Ordering::Relaxed);
    }

    /// Hands over the chunk of `tp`, if it has messages; false when the runtime takes no
    /// more.
    fn send(&mut self, tp: &Tp) -> bool {
        let Some(p) = self.pending.get_mut(tp) else {
            return true;
        };
        if p.framed.records.is_empty() {
            return true;
        }
        let Some(token) = self.offsets.sent(tp, p.end) else {
            // Revoked meanwhile: the next owner reads these again.
            p.framed.records.clear();
            p.framed.data.clear();
            p.framed.arena.clear();
            p.framed.fields.clear();
            return true;
        };
        let labels = [("topic", tp.0.as_str())];
        let stats = &self.ctx.stats.labeled;
        stats.add(
            "weir_kafka_consumed_messages_total",
            "Messages read from Kafka, by topic.",
            &labels,
            p.framed.records.len() as f64,
        );
        stats.add(
            "weir_kafka_consumed_bytes_total",
            "Bytes of messages read from Kafka, by topic.",
            &labels,
            p.framed.data.len() as f64,
        );
        let chunk = SourceChunk {
            payload: ChunkPayload::Framed(std::mem::take(&mut p.framed)),
            source: p.source,
            seq: p.seq,
            fields: p.fields.clone(),
            ack: Some(Ack::Source(self.offsets.clone(), token)),
        };
        p.seq += 1;
        let taken = (self.ctx.send)(chunk);
        if !taken {
            self.offsets.not_taken(token);
        }
        taken
    }

    /// Forgets the messages held for partitions revoked by a rebalance.
    fn drop_revoked(&mut self, consumer: &BaseConsumer<Group>) {
        let revoked = std::mem::take(&mut *consumer.context().revoked.lock().unwrap_or_else(|e| e.into_inner()));
        for tp in revoked {
            self.pending.remove(&tp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_contiguous_delivered_prefix_is_committed() {
        let offsets = Offsets::default();
        let tp: Tp = ("logs".into(), 0);
        offsets.assigned(tp.clone(), 100);
        let a = offsets.sent(&tp, 110).unwrap();
        let b = offsets.sent(&tp, 125).unwrap(); // offsets 110..125 (gaps inside are fine)
        let c = offsets.sent(&tp, 130).unwrap();
        // The later chunks are delivered first: nothing may be committed yet.
        offsets.ack(c);
        offsets.ack(b);
        assert!(
            offsets.to_commit(None).is_empty(),
            "committed past an undelivered chunk"
        );
        offsets.ack(a);
        assert_eq!(offsets.to_commit(None), vec![(tp.clone(), 130)]);
        assert_eq!(
            offsets.to_commit(None),
            vec![(tp.clone(), 130)],
            "until the broker has it"
        );
        offsets.committed(&[(tp.clone(), 130)]);
        assert!(offsets.to_commit(None).is_empty(), "committed once");
        let d = offsets.sent(&tp, 140).unwrap();
        let all: HashSet<Tp> = [tp.clone()].into();
        assert_eq!(
            offsets.settle(&all, Duration::from_millis(20)),
            1,
            "one chunk in flight"
        );
        offsets.ack(d);
        assert_eq!(offsets.settle(&all, Duration::from_millis(20)), 0);
        offsets.revoked(&all);
        assert_eq!(offsets.sent(&tp, 150), None, "a revoked partition takes no chunks");
    }

    #[test]
    fn a_chunk_not_taken_holds_the_commit_without_holding_the_shutdown() {
        let offsets = Offsets::default();
        let tp: Tp = ("logs".into(), 0);
        offsets.assigned(tp.clone(), 0);
        let a = offsets.sent(&tp, 10).unwrap();
        let b = offsets.sent(&tp, 20).unwrap();
        let c = offsets.sent(&tp, 30).unwrap();
        offsets.ack(a);
        offsets.not_taken(b);
        offsets.ack(c);
        let all: HashSet<Tp> = [tp.clone()].into();
        assert_eq!(offsets.settle(&all, Duration::ZERO), 0, "nothing left in flight");
        assert_eq!(offsets.to_commit(None), vec![(tp, 10)], "not past the chunk not taken");
    }
}
