//! `route-by-field`: sends each event to one output chosen by a field's value: `routes`
//! maps values to output names (outputs with a `name:` in the pipeline). Events whose value
//! is not in the map, or that lack the field, go to every output as usual.
//!
//! ```yaml
//! - type: wasm
//!   plugin: wasm-plugins/target/wasm32-wasip2/release/route_by_field.wasm
//!   config: { field: level, routes: { error: alerts, warn: alerts } }
//! ```

use weir_sdk::{BatchView, Config, Edits, Error, Plugin};

struct RouteByField {
    field: String,
    /// (value, output name).
    routes: Vec<(String, String)>,
}

impl Plugin for RouteByField {
    fn init(config: &Config) -> Result<Self, Error> {
        let mut routes = Vec::new();
        for (key, value) in config.iter() {
            match key.strip_prefix("routes.") {
                Some(v) => routes.push((v.to_string(), value.to_string())),
                None if key == "field" => {}
                None => {
                    return Err(Error::fatal(format!(
                        "unknown config key `{key}` (expected `field` and `routes: {{VALUE: OUTPUT}}`)"
                    )));
                }
            }
        }
        if routes.is_empty() {
            return Err(Error::fatal(
                "config `routes` is empty: map field values to output names",
            ));
        }
        Ok(RouteByField {
            field: config.get("field").unwrap_or("level").to_string(),
            routes,
        })
    }

    fn process(&mut self, batch: &BatchView<'_>, edits: &mut Edits<'_>) -> Result<(), Error> {
        let Some(field) = batch.key(&self.field) else {
            return Ok(());
        };
        for event in batch.events() {
            let Some(value) = event.get_str(field) else { continue };
            if let Some((_, output)) = self.routes.iter().find(|(v, _)| v == value) {
                edits.route(&event, output);
            }
        }
        Ok(())
    }
}

weir_sdk::export!(RouteByField);
