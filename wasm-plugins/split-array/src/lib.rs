//! `split-array`: an event whose `message` holds a JSON array becomes one event per element,
//! in order, each a copy of the original (its other fields and time kept) whose `message`
//! is the element (a string element as its text, any other as JSON) and whose raw bytes are
//! the element's JSON text; `index` says which element it was. Other events pass unchanged;
//! an array that is not valid JSON is left as it is, with `split_error` saying why.
//!
//! ```yaml
//! - type: wasm
//!   plugin: wasm-plugins/target/wasm32-wasip2/release/split_array.wasm
//!   config: { field: message }   # the field holding the array (default `message`)
//! ```

use serde_json::value::RawValue;
use weir_sdk::{BatchView, Config, Edits, Error, Plugin, ValueRef};

struct SplitArray {
    field: String,
}

impl Plugin for SplitArray {
    fn init(config: &Config) -> Result<Self, Error> {
        let field = config.get("field").unwrap_or("message");
        if field.is_empty() {
            return Err(Error::fatal("config `field` is empty"));
        }
        if let Some((key, _)) = config.iter().find(|(k, _)| *k != "field") {
            return Err(Error::fatal(format!("unknown config key `{key}` (expected `field`)")));
        }
        Ok(SplitArray {
            field: field.to_string(),
        })
    }

    fn process(&mut self, batch: &BatchView<'_>, edits: &mut Edits<'_>) -> Result<(), Error> {
        let Some(field) = batch.key(&self.field) else {
            return Ok(());
        };
        let (index, error) = (edits.key("index"), edits.key("split_error"));
        for event in batch.events() {
            let text = match event.get(field) {
                Some(ValueRef::Str(b) | ValueRef::Json(b)) if b.trim_ascii_start().starts_with(b"[") => b,
                _ => continue,
            };
            let elements: Vec<&RawValue> = match serde_json::from_slice(text) {
                Ok(elements) => elements,
                Err(e) => {
                    edits.set(&event, error, format!("not a JSON array: {e}").as_str());
                    continue;
                }
            };
            for (i, element) in elements.iter().enumerate() {
                let json = element.get();
                let piece = edits.emit_copy(&event);
                if !piece.is_emitted() {
                    // The call's emit limit: the host counts what was refused.
                    break;
                }
                match serde_json::from_str::<String>(json) {
                    Ok(s) => edits.set(&piece, field, s.as_str()),
                    Err(_) => edits.set(&piece, field, ValueRef::Json(json.as_bytes())),
                }
                edits.set(&piece, index, i as i64);
                edits.set_raw(&piece, json.as_bytes());
            }
            edits.drop(&event);
        }
        Ok(())
    }
}

weir_sdk::export!(SplitArray);
