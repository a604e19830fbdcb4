//! `noop`: reads nothing, changes nothing. The host still flattens every batch, copies it
//! into the guest and lifts the (empty) edits back, so running it measures the cost of the
//! boundary alone (`perf/benches/wasm.rs`).

use weir_sdk::{BatchView, Config, Edits, Error, Plugin};

struct Noop;

impl Plugin for Noop {
    fn init(_config: &Config) -> Result<Self, Error> {
        Ok(Noop)
    }

    fn process(&mut self, _batch: &BatchView<'_>, _edits: &mut Edits<'_>) -> Result<(), Error> {
        Ok(())
    }
}

weir_sdk::export!(Noop);
