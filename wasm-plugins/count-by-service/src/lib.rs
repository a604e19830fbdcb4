//! `count-by-service`: counts events per `service` and per second of event time, and emits
//! the counts from `flush` (called by the host every `flush_interval` and at shutdown): one
//! event per (second, service) with fields `service`, `count` and the second as its time
//! (events with no time are counted under no second, and their count has no time). Events
//! pass through unchanged unless `drop_events: true` (then only the counts go on).
//!
//! ```yaml
//! - type: wasm
//!   plugin: wasm-plugins/target/wasm32-wasip2/release/count_by_service.wasm
//!   flush_interval: 1s
//!   config: { field: service, drop_events: false }
//! ```

use std::collections::BTreeMap;
use std::io::Write;

use weir_sdk::{BatchView, Config, Edits, Error, Plugin};

struct CountByService {
    field: String,
    drop_events: bool,
    /// (second of event time, service) -> events counted since the last flush.
    counts: BTreeMap<(Option<i64>, String), i64>,
}

const NANOS: i64 = 1_000_000_000;

impl Plugin for CountByService {
    fn init(config: &Config) -> Result<Self, Error> {
        if let Some((key, _)) = config.iter().find(|(k, _)| !["field", "drop_events"].contains(k)) {
            return Err(Error::fatal(format!(
                "unknown config key `{key}` (expected `field` or `drop_events`)"
            )));
        }
        Ok(CountByService {
            field: config.get("field").unwrap_or("service").to_string(),
            drop_events: config.parse_or("drop_events", false)?,
            counts: BTreeMap::new(),
        })
    }

    fn process(&mut self, batch: &BatchView<'_>, edits: &mut Edits<'_>) -> Result<(), Error> {
        let field = batch.key(&self.field);
        for event in batch.events() {
            let service = field.and_then(|f| event.get_str(f)).unwrap_or("");
            let second = event.timestamp().map(|t| t.div_euclid(NANOS));
            match self.counts.get_mut(&(second, service.to_string())) {
                Some(n) => *n += 1,
                None => {
                    self.counts.insert((second, service.to_string()), 1);
                }
            }
            if self.drop_events {
                edits.drop(&event);
            }
        }
        Ok(())
    }

    fn flush(&mut self, edits: &mut Edits<'_>) -> Result<(), Error> {
        let (service, count) = (edits.key(&self.field), edits.key("count"));
        let mut raw = Vec::new();
        while let Some(((second, name), n)) = self.counts.pop_first() {
            raw.clear();
            let _ = write!(raw, "{{\"{}\":{:?},\"count\":{n}}}", self.field, name);
            let event = edits.emit(None, &raw);
            if !event.is_emitted() {
                // Over the call's limit: keep the rest for the next flush.
                self.counts.insert((second, name), n);
                break;
            }
            edits.set(&event, service, name.as_str());
            edits.set(&event, count, n);
            edits.set_timestamp(&event, second.map(|s| s * NANOS));
        }
        Ok(())
    }
}

weir_sdk::export!(CountByService);
