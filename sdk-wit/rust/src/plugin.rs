//! The author's entry point: the [`Plugin`] trait, its [`Config`] and [`Error`], and the
//! calls the bindings make ([`init_flat`], [`process_flat`], [`flush_flat`]).

use std::fmt;
use std::str::FromStr;

use crate::edits::Edits;
use crate::flat;
use crate::view::BatchView;

/// A batch processor. The host creates it once from the pipeline's `config:` and then
/// calls [`Plugin::process`] once per batch, one batch at a time; fields of `self` keep
/// state between batches for as long as the instance lives (the host may re-create it,
/// calling `init` again).
pub trait Plugin: Sized {
    /// Builds the plugin from its configuration. An [`Error::Fatal`] rejects it and the
    /// pipeline does not start.
    fn init(config: &Config) -> Result<Self, Error>;

    /// Reads `batch` and records what to change in `edits`. Events with no edit pass
    /// through unchanged.
    fn process(&mut self, batch: &BatchView<'_>, edits: &mut Edits<'_>) -> Result<(), Error>;

    /// Emits what the plugin gathered (counts, summaries) with [`Edits::emit`]: called by
    /// the host on a timer (the processor's `flush_interval`) and once at shutdown, with an
    /// empty batch. The default emits nothing.
    fn flush(&mut self, edits: &mut Edits<'_>) -> Result<(), Error> {
        let _ = edits;
        Ok(())
    }
}

/// The plugin's configuration: the pipeline's `config:` entries as `(key, value)` strings,
/// in the order they were written (non-string values arrive as JSON text).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    entries: Vec<(String, String)>,
}

impl Config {
    /// A configuration holding `entries`.
    pub fn new(entries: Vec<(String, String)>) -> Config {
        Config { entries }
    }

    /// The value of `key` (the last one if it repeats).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or a fatal error naming it.
    pub fn require(&self, key: &str) -> Result<&str, Error> {
        self.get(key)
            .ok_or_else(|| Error::fatal(format!("missing config key `{key}`")))
    }

    /// The value of `key` parsed as a `T`, `default` when absent, or a fatal error naming
    /// the key when it does not parse.
    pub fn parse_or<T: FromStr>(&self, key: &str, default: T) -> Result<T, Error>
    where
        T::Err: fmt::Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|e| Error::fatal(format!("config key `{key}`: cannot parse {v:?}: {e}"))),
        }
    }

    /// Every entry, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Config {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Config {
        Config::new(iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

/// Why a plugin call failed, and what the host should do (WIT `error`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// Transient: the host may call again with the same batch, a bounded number of times,
    /// then applies the plugin's `on_error` policy.
    Retryable(String),
    /// The batch cannot be processed: the host drops all its events, whatever `on_error`
    /// says, and goes on.
    DropBatch(String),
    /// The plugin cannot go on: the batch follows `on_error` and the host re-creates the
    /// instance. From `init`, the configuration is rejected.
    Fatal(String),
}

impl Error {
    /// An [`Error::Retryable`].
    pub fn retryable(message: impl Into<String>) -> Error {
        Error::Retryable(message.into())
    }

    /// An [`Error::DropBatch`].
    pub fn drop_batch(message: impl Into<String>) -> Error {
        Error::DropBatch(message.into())
    }

    /// An [`Error::Fatal`].
    pub fn fatal(message: impl Into<String>) -> Error {
        Error::Fatal(message.into())
    }

    /// The message, whatever the kind.
    pub fn message(&self) -> &str {
        match self {
            Error::Retryable(m) | Error::DropBatch(m) | Error::Fatal(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Error::Retryable(_) => "retryable",
            Error::DropBatch(_) => "drop batch",
            Error::Fatal(_) => "fatal",
        };
        write!(f, "{kind}: {}", self.message())
    }
}

impl std::error::Error for Error {}

/// The export `init`: builds a `P` from the flat configuration.
pub fn init_flat<P: Plugin>(config: Vec<(String, String)>) -> Result<P, Error> {
    P::init(&Config::new(config))
}

/// The export `process`: views `batch`, lets `plugin` record its edits, and returns them
/// in flat form. A malformed batch (a host bug), or a malformed row the plugin read, is a
/// fatal error (see [`BatchView::new`]).
pub fn process_flat<P: Plugin>(plugin: &mut P, batch: &flat::Batch) -> Result<flat::Edits, Error> {
    let view = BatchView::new(batch).map_err(|e| Error::fatal(e.to_string()))?;
    crate::view::take_malformed();
    let mut edits = Edits::new(&view);
    let done = plugin.process(&view, &mut edits);
    if let Some(problem) = crate::view::take_malformed() {
        return Err(Error::fatal(problem.to_string()));
    }
    done?;
    within_limits(edits.into_flat(), batch.limits)
}

/// The edits, or an error saying their value bytes pass the call's limit (the host would
/// refuse them whole).
fn within_limits(edits: flat::Edits, limits: flat::EmitLimits) -> Result<flat::Edits, Error> {
    if edits.bytes.len() > limits.bytes as usize {
        return Err(Error::fatal(format!(
            "the edits hold {} bytes of values, over the call's limit of {}",
            edits.bytes.len(),
            limits.bytes
        )));
    }
    Ok(edits)
}

/// The export `flush`: lets `plugin` emit into edits over `batch` (which has no events:
/// only its key table and limits count).
pub fn flush_flat<P: Plugin>(plugin: &mut P, batch: &flat::Batch) -> Result<flat::Edits, Error> {
    let view = BatchView::new(batch).map_err(|e| Error::fatal(e.to_string()))?;
    let mut edits = Edits::new(&view);
    plugin.flush(&mut edits)?;
    within_limits(edits.into_flat(), batch.limits)
}
