//! Hostile test plugin: on a batch holding an event whose raw line contains `bomb`, it
//! allocates (and touches) 1 MiB blocks until something stops it; otherwise it sets
//! `bomb_ok: true` on every event. The host's memory cap must stop it.

use weir_sdk::{BatchView, Config, Edits, Error, Plugin};

struct Bomb {
    hoard: Vec<Vec<u8>>,
}

impl Plugin for Bomb {
    fn init(_config: &Config) -> Result<Self, Error> {
        Ok(Bomb { hoard: Vec::new() })
    }

    fn process(&mut self, batch: &BatchView<'_>, edits: &mut Edits<'_>) -> Result<(), Error> {
        if batch.events().any(|e| e.raw().windows(4).any(|w| w == b"bomb")) {
            loop {
                let block = vec![0xA5u8; 1 << 20];
                self.hoard.push(std::hint::black_box(block));
            }
        }
        let ok = edits.key("bomb_ok");
        for event in batch.events() {
            edits.set(&event, ok, true);
        }
        Ok(())
    }
}

weir_sdk::export!(Bomb);
