//! `hostile-emit-flood`: for every event, tries to emit `per_event` new ones (default ten
//! million). The SDK stops at the call's emit limit and reports the rest as refused; the
//! host counts them and the agent goes on.

use weir_sdk::{BatchView, Config, Edits, Error, Plugin};

struct Flood {
    per_event: u64,
}

impl Plugin for Flood {
    fn init(config: &Config) -> Result<Self, Error> {
        Ok(Flood {
            per_event: config.parse_or("per_event", 10_000_000)?,
        })
    }

    fn process(&mut self, batch: &BatchView<'_>, edits: &mut Edits<'_>) -> Result<(), Error> {
        for event in batch.events() {
            for _ in 0..self.per_event {
                edits.emit(Some(&event), b"flood");
            }
        }
        Ok(())
    }
}

weir_sdk::export!(Flood);
