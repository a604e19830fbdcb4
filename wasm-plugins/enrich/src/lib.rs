//! `enrich`: adds fields from its configuration, computes a stable hash of a field for
//! sampling and bucketing, and routes events by regex.
//!
//! ```yaml
//! - type: wasm
//!   plugin: wasm-plugins/target/wasm32-wasip2/release/enrich.wasm
//!   config:
//!     add: { env: prod, team: payments }  # set on every event (add.NAME: VALUE)
//!     hash_field: user                    # hash this field's text (default: the raw line)
//!     hash_into: _hash                    # optional: write the hash (16 hex digits)
//!     sample: 0.25                        # optional: keep this fraction, chosen by hash
//!     buckets: 8                          # optional: write hash % buckets ...
//!     bucket_into: _bucket                #   ... into this field (default _bucket)
//!     route: { errors: 'ERROR|FATAL', audit: '^audit' }  # first match names the route
//!     route_field: message                # what `route` patterns test (default: raw line)
//!     route_into: route                   # the field that gets the route's name
//!     route_default: main                 # when no pattern matches (default: no field)
//! ```
//!
//! The hash is 64-bit FNV-1a over the bytes, fixed forever: the same value is sampled in
//! or out, and lands in the same bucket, on every host, run and plugin version. An event
//! missing `hash_field` is hashed as the empty string.

use regex::bytes::Regex;
use weir_sdk::{BatchView, Config, Edits, Error, EventView, Key, Plugin};

/// 64-bit FNV-1a.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

struct Enrich {
    add: Vec<(String, String)>,
    hash_field: Option<String>,
    hash_into: Option<String>,
    /// Keep an event when `hash % 1_000_000 < keep_below`.
    keep_below: Option<u64>,
    buckets: Option<u64>,
    bucket_into: String,
    routes: Vec<(String, Regex)>,
    route_field: Option<String>,
    route_into: String,
    route_default: Option<String>,
}

impl Plugin for Enrich {
    fn init(config: &Config) -> Result<Self, Error> {
        let mut add = Vec::new();
        let mut routes = Vec::new();
        for (key, value) in config.iter() {
            if let Some(name) = key.strip_prefix("add.") {
                add.push((name.to_string(), value.to_string()));
            } else if let Some(name) = key.strip_prefix("route.") {
                let re = Regex::new(value)
                    .map_err(|e| Error::fatal(format!("config `{key}`: bad pattern `{value}`: {e}")))?;
                routes.push((name.to_string(), re));
            } else if ![
                "hash_field",
                "hash_into",
                "sample",
                "buckets",
                "bucket_into",
                "route_field",
                "route_into",
                "route_default",
            ]
            .contains(&key)
            {
                return Err(Error::fatal(format!("unknown config key `{key}`")));
            }
        }
        let keep_below = match config.get("sample") {
            None => None,
            Some(_) => {
                let rate: f64 = config.parse_or("sample", 1.0)?;
                if !(0.0..=1.0).contains(&rate) {
                    return Err(Error::fatal(format!("config `sample`: {rate} is not between 0 and 1")));
                }
                Some((rate * 1_000_000.0).round() as u64)
            }
        };
        let buckets = match config.get("buckets") {
            None => None,
            Some(_) => match config.parse_or("buckets", 0u64)? {
                0 => return Err(Error::fatal("config `buckets` must be at least 1")),
                n => Some(n),
            },
        };
        Ok(Enrich {
            add,
            hash_field: config.get("hash_field").map(str::to_string),
            hash_into: config.get("hash_into").map(str::to_string),
            keep_below,
            buckets,
            bucket_into: config.get("bucket_into").unwrap_or("_bucket").to_string(),
            routes,
            route_field: config.get("route_field").map(str::to_string),
            route_into: config.get("route_into").unwrap_or("route").to_string(),
            route_default: config.get("route_default").map(str::to_string),
        })
    }

    fn process(&mut self, batch: &BatchView<'_>, edits: &mut Edits<'_>) -> Result<(), Error> {
        // Keys once per batch.
        let add: Vec<(Key, &str)> = self.add.iter().map(|(k, v)| (edits.key(k), v.as_str())).collect();
        let hash_src = self.hash_field.as_deref().map(|f| batch.key(f));
        let hash_into = self.hash_into.as_deref().map(|f| edits.key(f));
        let bucket_into = self.buckets.map(|_| edits.key(&self.bucket_into));
        let route_src = self.route_field.as_deref().map(|f| batch.key(f));
        let route_into = (!self.routes.is_empty()).then(|| edits.key(&self.route_into));
        let needs_hash = hash_into.is_some() || self.keep_below.is_some() || self.buckets.is_some();
        let mut hex = [0u8; 16];
        for event in batch.events() {
            if needs_hash {
                let h = fnv1a(text_of(&event, hash_src));
                if self.keep_below.is_some_and(|below| h % 1_000_000 >= below) {
                    edits.drop(&event);
                    continue;
                }
                if let Some(k) = hash_into {
                    write_hex(h, &mut hex);
                    edits.set(&event, k, &hex[..]);
                }
                if let (Some(k), Some(n)) = (bucket_into, self.buckets) {
                    edits.set(&event, k, (h % n) as i64);
                }
            }
            for &(k, v) in &add {
                edits.set(&event, k, v);
            }
            if let Some(k) = route_into {
                let text = text_of(&event, route_src);
                let route = self
                    .routes
                    .iter()
                    .find(|(_, re)| re.is_match(text))
                    .map(|(name, _)| name.as_str())
                    .or(self.route_default.as_deref());
                if let Some(route) = route {
                    edits.set(&event, k, route);
                }
            }
        }
        Ok(())
    }
}

/// The bytes a rule reads: the field's string (or JSON) text when a field is named (empty
/// when the event lacks it or it is not text), else the raw line.
fn text_of<'a>(event: &EventView<'a>, field: Option<Option<Key>>) -> &'a [u8] {
    match field {
        None => event.raw(),
        Some(None) => b"",
        Some(Some(k)) => match event.get(k) {
            Some(weir_sdk::ValueRef::Str(b)) | Some(weir_sdk::ValueRef::Json(b)) => b,
            _ => b"",
        },
    }
}

fn write_hex(h: u64, out: &mut [u8; 16]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = DIGITS[((h >> (60 - 4 * i)) & 0xf) as usize];
    }
}

weir_sdk::export!(Enrich);
