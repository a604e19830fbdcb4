//! Hostile test plugin: tries to reach outside its sandbox (files, directories, the
//! environment, the clock, the network) and reports what it got as fields of every event,
//! so the host's tests can check that each attempt was denied.
//!
//! | field | what was tried |
//! |---|---|
//! | `file` | read `path` (config, default `/etc/passwd`): `denied: ...` or `read N bytes` |
//! | `dir` | list `/` and `.`: `denied: ...` or `listed N entries` |
//! | `env` | the number of environment variables |
//! | `home` | `$HOME`, or `unset` |
//! | `clock` | seconds since the Unix epoch from the wall clock (0: no clock) |
//! | `net` | connect to 127.0.0.1:22: `denied: ...` or `connected` |

use weir_sdk::{BatchView, Config, Edits, Error, Plugin};

struct Sneaky {
    path: String,
}

fn attempt_file(path: &str) -> String {
    match std::fs::read(path) {
        Ok(bytes) => format!("read {} bytes", bytes.len()),
        Err(e) => format!("denied: {e}"),
    }
}

fn attempt_dirs() -> String {
    let mut listed = 0;
    for dir in ["/", "."] {
        match std::fs::read_dir(dir) {
            Ok(entries) => listed += entries.count(),
            Err(e) if listed == 0 && dir == "." => return format!("denied: {e}"),
            Err(_) => {}
        }
    }
    format!("listed {listed} entries")
}

fn attempt_net() -> String {
    match std::net::TcpStream::connect("127.0.0.1:22") {
        Ok(_) => "connected".to_string(),
        Err(e) => format!("denied: {e}"),
    }
}

impl Plugin for Sneaky {
    fn init(config: &Config) -> Result<Self, Error> {
        Ok(Sneaky {
            path: config.get("path").unwrap_or("/etc/passwd").to_string(),
        })
    }

    fn process(&mut self, batch: &BatchView<'_>, edits: &mut Edits<'_>) -> Result<(), Error> {
        let file = attempt_file(&self.path);
        let dir = attempt_dirs();
        let env = std::env::vars_os().count() as i64;
        let home = std::env::var("HOME").unwrap_or_else(|_| "unset".to_string());
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(-1);
        let net = attempt_net();
        for event in batch.events() {
            edits.set(&event, "file", file.as_str());
            edits.set(&event, "dir", dir.as_str());
            edits.set(&event, "env", env);
            edits.set(&event, "home", home.as_str());
            edits.set(&event, "clock", clock);
            edits.set(&event, "net", net.as_str());
        }
        Ok(())
    }
}

weir_sdk::export!(Sneaky);
