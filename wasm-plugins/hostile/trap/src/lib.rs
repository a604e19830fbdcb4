//! Hostile test plugin: misbehaves when an event's raw line names a way to fail, so each
//! failure path of the host can be tested; otherwise sets `trap_ok: true` on every event.
//!
//! | raw line contains | the plugin |
//! |---|---|
//! | `trap` | traps (`unreachable`, as a Rust panic does) |
//! | `fatal` | returns `error::fatal` |
//! | `retry` | returns `error::retryable` the first `retry_fails` times (config, default 1000) |
//! | `drop-batch` | returns `error::drop-batch` |
//! | `bad-edits` | returns an edit naming an event out of the batch |
//!
//! With the config `init: fatal` it rejects its configuration.

use weir_sdk::{BatchView, Config, Edits, Error, Plugin, flat};

struct Trap {
    retry_fails: u32,
    retried: u32,
    batches: u64,
}

fn contains(event: &weir_sdk::EventView<'_>, needle: &str) -> bool {
    event.raw().windows(needle.len()).any(|w| w == needle.as_bytes())
}

impl Plugin for Trap {
    fn init(config: &Config) -> Result<Self, Error> {
        if config.get("init") == Some("fatal") {
            return Err(Error::fatal("asked to reject the configuration"));
        }
        Ok(Trap {
            retry_fails: config.parse_or("retry_fails", 1000)?,
            retried: 0,
            batches: 0,
        })
    }

    fn process(&mut self, batch: &BatchView<'_>, edits: &mut Edits<'_>) -> Result<(), Error> {
        self.batches += 1;
        let any = |needle: &str| batch.events().any(|e| contains(&e, needle));
        if any("trap") {
            core::arch::wasm32::unreachable();
        }
        if any("fatal") {
            return Err(Error::fatal("asked to fail"));
        }
        if any("retry") && self.retried < self.retry_fails {
            self.retried += 1;
            return Err(Error::retryable(format!("try again ({})", self.retried)));
        }
        if any("drop-batch") {
            return Err(Error::drop_batch("asked to drop the batch"));
        }
        let ok = edits.key("trap_ok");
        let calls = edits.key("trap_batches");
        for event in batch.events() {
            edits.set(&event, ok, true);
            edits.set(&event, calls, self.batches as i64);
        }
        Ok(())
    }
}

/// `bad-edits` is answered below the SDK's builder (which cannot make a bad edit): the
/// export is written by hand around the plugin.
struct Export;

static SLOT: weir_sdk::guest::Slot<Trap> = weir_sdk::guest::Slot::new();

impl weir_sdk::guest::Guest for Export {
    fn init(config: Vec<(String, String)>) -> Result<(), Error> {
        weir_sdk::guest::init::<Trap>(&SLOT, config)
    }

    fn process(batch: flat::Batch) -> Result<flat::Edits, Error> {
        let events = batch.event_count();
        let bad = (0..events).any(|i| {
            let raw = flat::EventRow::read(&batch.events, i).raw;
            batch
                .resolve(raw)
                .unwrap_or_default()
                .windows(9)
                .any(|w| w == b"bad-edits")
        });
        if bad {
            let mut ops = Vec::new();
            flat::Op {
                kind: flat::OpKind::Drop,
                event: events as u32 + 7,
                key: 0,
                value: flat::Value::Null,
            }
            .write(&mut ops);
            return Ok(flat::Edits {
                ops,
                ..flat::Edits::default()
            });
        }
        weir_sdk::guest::process::<Trap>(&SLOT, batch)
    }
}

impl weir_sdk::guest::FlushGuest for Export {
    fn flush(batch: flat::Batch) -> Result<flat::Edits, Error> {
        weir_sdk::guest::flush::<Trap>(&SLOT, batch)
    }
}

weir_sdk::guest::bindings::__export_processor!(Export with_types_in weir_sdk::guest::bindings);
