//! Hostile test plugin: loops forever on a batch holding an event whose raw line contains
//! `loop`; otherwise sets `spin_ok: true` on every event. The host must stop it at its
//! deadline (or when its fuel runs out) and carry on with the next batch.

use weir_sdk::{BatchView, Config, Edits, Error, Plugin};

struct Spin;

impl Plugin for Spin {
    fn init(_config: &Config) -> Result<Self, Error> {
        Ok(Spin)
    }

    fn process(&mut self, batch: &BatchView<'_>, edits: &mut Edits<'_>) -> Result<(), Error> {
        if batch.events().any(|e| e.raw().windows(4).any(|w| w == b"loop")) {
            let mut n: u64 = 0;
            loop {
                // Volatile-ish work the optimizer cannot remove.
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        let ok = edits.key("spin_ok");
        for event in batch.events() {
            edits.set(&event, ok, true);
        }
        Ok(())
    }
}

weir_sdk::export!(Spin);
