//! The syslog decoder (`engine/core/src/parse/syslog.rs`, what the `syslog` input runs on
//! every message a network peer sends) on any bytes: it never panics; a message it refuses
//! is kept whole with `_error` and counted; one it takes has `facility` and `severity` from
//! its `<PRI>`, a `message` and header fields that are pieces of the line, and
//! `structured_data` that is a JSON object.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_core::model::{Key, KeyTable, Value};
use weir_core::parse::syslog::decoder;
use weir_core::pipeline::Processor;
use weir_fuzz::batch_of_lines;

const FACILITIES: usize = 24;

fuzz_target!(|text: &[u8]| {
    let keys = KeyTable::new();
    let mut parser = decoder(&keys, Some("Europe/Paris")).expect("a known zone");
    let mut batch = batch_of_lines(text);
    parser.process(&mut batch);
    let error = keys.intern("_error");
    let mut failures = 0;
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        let event = &batch.events()[i];
        if event.get(error).is_some() {
            failures += 1;
            assert_eq!(weir_fuzz::str_field(&batch, i, Key::MESSAGE).as_deref(), Some(line));
            continue;
        }
        // Taken: it starts with <PRI> of at most 191.
        let close = line.iter().position(|&b| b == b'>').expect("a PRI");
        let pri: usize = std::str::from_utf8(&line[1..close]).unwrap().parse().unwrap();
        assert!(line[0] == b'<' && pri <= 191 && pri / 8 < FACILITIES);
        for f in event.fields() {
            let name = keys.name(f.key);
            match (&*name, f.value) {
                ("structured_data", Value::Json(s)) => {
                    let v: serde_json::Value =
                        serde_json::from_slice(batch.bytes(s)).expect("structured data is JSON");
                    assert!(v.is_object());
                }
                ("facility" | "severity", Value::Str(_)) => {}
                (_, Value::Str(s)) => {
                    let piece = batch.bytes(s);
                    assert!(
                        piece.is_empty() || line.windows(piece.len()).any(|w| w == piece),
                        "{name} is not a piece of the line"
                    );
                }
                (_, other) => panic!("{name}: {other:?}"),
            }
        }
    }
    assert_eq!(parser.take_failures(), failures);
});
