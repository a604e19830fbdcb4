//! `level-drop`: the worked example of the SDK guide, the same plugin as
//! `js/level-drop/plugin.js` and `python/level-drop/app.py`, in Rust with the SDK (which
//! targets `weir:plugin@0.2.0`; the other two write the 0.1.0 records by hand).
//!
//! It drops the events whose `level` field equals the configured `drop_level` (default
//! "debug"), and sets `lang: "rust"` and `raw_len` (bytes of the raw line) on every other
//! event. Config keys other than `drop_level` are refused.

use weir_sdk::{BatchView, Config, Edits, Error, Plugin};

struct LevelDrop {
    drop_level: String,
}

impl Plugin for LevelDrop {
    fn init(config: &Config) -> Result<Self, Error> {
        if let Some((key, _)) = config.iter().find(|(k, _)| *k != "drop_level") {
            return Err(Error::fatal(format!(
                "unknown config key `{key}` (expected drop_level)"
            )));
        }
        Ok(LevelDrop {
            drop_level: config.get("drop_level").unwrap_or("debug").to_string(),
        })
    }

    fn process(&mut self, batch: &BatchView<'_>, edits: &mut Edits<'_>) -> Result<(), Error> {
        // Once per batch: the ids of the keys we read, and the new keys we write.
        let level = batch.key("level");
        let (lang, raw_len) = (edits.key("lang"), edits.key("raw_len"));
        for event in batch.events() {
            if level.is_some_and(|k| event.get_str(k) == Some(self.drop_level.as_str())) {
                edits.drop(&event);
                continue;
            }
            edits.set(&event, lang, "rust");
            edits.set(&event, raw_len, event.raw().len() as i64);
        }
        Ok(())
    }
}

weir_sdk::export!(LevelDrop);
