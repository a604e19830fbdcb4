//! The pipeline-file loader (`engine/agent/src/config/`) and the checks `weir check`
//! runs (`runtime::validate`): any text gives a config or an error, never a panic, and
//! every error says where (a line and column inside the text) and what.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::config::{Loaded, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Lines as YAML counts them (`\r\n`, `\n` or a lone `\r` ends one; NEL, LS and PS
    // counted too, as YAML 1.1 did), plus one for errors at the end of input.
    let breaks = text
        .replace("\r\n", "\n")
        .matches(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}'])
        .count();
    let lines = breaks as u32 + 2;
    match parse(text) {
        Err((pos, message)) => {
            assert!(!message.trim().is_empty(), "an error says what is wrong");
            assert!(
                pos.line >= 1 && pos.line <= lines,
                "error at line {} of {lines}: {message}",
                pos.line
            );
            assert!(pos.column >= 1, "error without a column: {message}");
        }
        Ok(config) => {
            // A `wasm` processor would compile whatever file its path names: not here.
            if config.processors.iter().any(|p| p.value.type_name() == "wasm") {
                return;
            }
            let loaded = Loaded {
                file: "fuzz.yaml".into(),
                config,
                text: String::new(),
            };
            if let Err(e) = weir::config::validate(&loaded) {
                assert!(!e.message.trim().is_empty(), "an error says what is wrong");
                assert!(
                    e.line >= 1 && e.line <= lines,
                    "error at line {} of {lines}: {}",
                    e.line,
                    e.message
                );
            }
        }
    }
});
