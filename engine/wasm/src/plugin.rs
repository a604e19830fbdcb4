//! Loading a component once, and making sandboxed instances of it.
//!
//! One [`Engine`] per process (two when some plugin uses fuel: fuel instruments the code),
//! with epoch interruption on and one ticker thread advancing the epoch every
//! [`TICK`]. A [`Compiled`] plugin holds the component pre-instantiated against a linker
//! that provides the `logging` import and WASI with an empty context; an [`Instance`] is
//! one store with its limits and the plugin's state.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, ResourceLimiter, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::weir::plugin0_2_0::{logging, types};
use crate::bindings_v1::weir::plugin0_1_0::{logging as logging_v1, types as types_v1};
use crate::cache::compile;
use crate::config::OnError;
use crate::processor::PluginStats;

/// How often the ticker thread advances the epoch: the granularity of call deadlines. A
/// call is stopped between its `timeout` and `timeout + 2 * TICK`.
pub const TICK: Duration = Duration::from_millis(5);

/// The sandbox limits of one plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Time limit of one call (`init` or `process`).
    pub timeout: Duration,
    /// Cap on the whole instance, in bytes: the sum of every linear memory and table of
    /// every core module in the component (see [`MemoryCap`]).
    pub memory: usize,
    /// Fuel per call, when fuel is on.
    pub fuel: Option<u64>,
    /// Most events one call may emit (0.2).
    pub emit_events: u32,
    /// Most bytes of values one call's edits may hold (0.2).
    pub emit_bytes: u32,
    /// How often `flush` is called, for plugins that export it.
    pub flush_interval: Duration,
}

impl Limits {
    /// Epoch ticks to allow a call: the timeout rounded up, plus one because the current
    /// tick is already under way.
    fn ticks(&self) -> u64 {
        let tick = TICK.as_nanos();
        (self.timeout.as_nanos().div_ceil(tick) as u64).saturating_add(1)
    }
}

/// Why loading a plugin failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read plugin {path}: {source}")]
    Read {
        /// The plugin file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a component, or does not target a world of the contract.
    #[error("{path} is not a weir:plugin processor component (0.2.0 or 0.1.0): {message}")]
    Invalid {
        /// The plugin file.
        path: PathBuf,
        /// What wasmtime said.
        message: String,
    },
    /// The engine could not be set up.
    #[error("wasm engine: {0}")]
    Engine(String),
}

/// The shared engines, without and with fuel metering, made on first use.
static PLAIN: OnceLock<Result<Engine, String>> = OnceLock::new();
static FUELED: OnceLock<Result<Engine, String>> = OnceLock::new();

/// The shared engine: with fuel metering or without.
pub(crate) fn engine(fuel: bool) -> Result<Engine, LoadError> {
    let cell = if fuel { &FUELED } else { &PLAIN };
    let engine = cell
        .get_or_init(|| {
            let mut config = Config::new();
            config.wasm_component_model(true);
            config.epoch_interruption(true);
            config.consume_fuel(fuel);
            config.parallel_compilation(true);
            Engine::new(&config).map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(LoadError::Engine)?;
    start_ticker();
    Ok(engine)
}

/// Starts the one thread that advances every engine's epoch each [`TICK`].
fn start_ticker() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        std::thread::Builder::new()
            .name("weir-wasm-epoch".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(TICK);
                    for cell in [&PLAIN, &FUELED] {
                        if let Some(Ok(engine)) = cell.get() {
                            engine.increment_epoch();
                        }
                    }
                }
            })
            .expect("spawning the epoch ticker thread");
    });
}

/// The store's data: WASI with nothing granted, the memory limiter, and what the
/// `logging` import needs.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryCap,
    plugin: Arc<str>,
    /// Log messages the plugin may still write during the current call.
    logs_left: u32,
}

/// At most this many plugin log messages per call reach the agent's log.
const LOGS_PER_CALL: u32 = 20;
/// Longer plugin log messages are cut.
const LOG_BYTES: usize = 2048;

impl HostState {
    fn new(plugin: Arc<str>, memory: usize) -> HostState {
        HostState {
            wasi: empty_wasi(),
            table: ResourceTable::new(),
            limiter: MemoryCap::new(memory),
            plugin,
            logs_left: LOGS_PER_CALL,
        }
    }
}

/// A WASI context that grants nothing: no preopened directories, no environment or
/// arguments, no inherited stdio (stdin is empty, stdout and stderr are discarded), no
/// network, and clocks stuck at zero. Random bytes stay available (hash maps in the
/// standard library need them; they reveal nothing).
fn empty_wasi() -> WasiCtx {
    let mut b = WasiCtx::builder();
    b.allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .wall_clock(FrozenClock)
        .monotonic_clock(FrozenClock);
    b.build()
}

/// A clock that always reads zero: the plugin gets no time source.
struct FrozenClock;

impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}
impl types_v1::Host for HostState {}

impl logging_v1::Host for HostState {
    fn log(&mut self, level: logging_v1::Level, message: String) {
        let level = match level {
            logging_v1::Level::Trace => logging::Level::Trace,
            logging_v1::Level::Debug => logging::Level::Debug,
            logging_v1::Level::Info => logging::Level::Info,
            logging_v1::Level::Warn => logging::Level::Warn,
            logging_v1::Level::Error => logging::Level::Error,
        };
        logging::Host::log(self, level, message);
    }
}

impl logging::Host for HostState {
    fn log(&mut self, level: logging::Level, mut message: String) {
        if self.logs_left == 0 {
            return;
        }
        self.logs_left -= 1;
        if message.len() > LOG_BYTES {
            let mut cut = LOG_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str("...");
        }
        if self.logs_left == 0 {
            message.push_str(" (further messages in this call are dropped)");
        }
        let plugin = &*self.plugin;
        match level {
            logging::Level::Trace => tracing::trace!(plugin, "{message}"),
            logging::Level::Debug => tracing::debug!(plugin, "{message}"),
            logging::Level::Info => tracing::info!(plugin, "{message}"),
            logging::Level::Warn => tracing::warn!(plugin, "{message}"),
            logging::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

/// What one table element counts against the memory cap: the reference the host keeps for
/// it (a pointer).
const TABLE_ELEMENT_BYTES: usize = std::mem::size_of::<usize>();

/// Most linear memories one instance may create. Every memory reserves address space and
/// kernel mappings even when empty, so the byte cap alone would not bound thousands of
/// empty ones; components made by the usual toolchains have one per core module.
pub const MAX_MEMORIES: usize = 100;
/// Most tables one instance may create.
pub const MAX_TABLES: usize = 1000;
/// Most core module instances one instance may create.
pub const MAX_CORE_INSTANCES: usize = 1000;

/// The memory cap of one instance: the sum of all its linear memories and tables (each
/// table element counting [`TABLE_ELEMENT_BYTES`]) may not pass `max` bytes. A component
/// is made of several core modules, each with its own memory and tables; a cap on each
/// alone would let a component use it once per module.
///
/// wasmtime asks before creating or growing any memory or table of the store (one store per
/// instance), so the sum of what it allowed is what the instance holds: memories never
/// shrink. A growth that wasmtime fails after it was allowed stays counted, which only errs
/// on the safe side. A refusal is remembered, so the trap that follows (an allocator that
/// finds no memory aborts) is reported as a memory-cap hit.
pub(crate) struct MemoryCap {
    max: usize,
    /// Bytes of memory and table the instance holds.
    used: usize,
    /// Set when a growth was refused during the current call: the total it asked for.
    pub(crate) refused: Option<usize>,
}

impl MemoryCap {
    fn new(max: usize) -> MemoryCap {
        MemoryCap {
            max,
            used: 0,
            refused: None,
        }
    }

    /// Allows growing one memory or table from `current` to `desired` bytes if the
    /// instance's total stays within the cap.
    fn grow(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> bool {
        if maximum.is_some_and(|m| desired > m) {
            // Past the module's own declared maximum: wasmtime refuses it right after, and
            // it is the module's limit, not ours.
            return false;
        }
        let total = self.used.saturating_add(desired.saturating_sub(current));
        if total > self.max {
            self.refused = Some(total);
            return false;
        }
        self.used = total;
        true
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(self.grow(current, desired, maximum))
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let bytes = |elements: usize| elements.saturating_mul(TABLE_ELEMENT_BYTES);
        Ok(self.grow(bytes(current), bytes(desired), maximum.map(bytes)))
    }

    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

/// A plugin compiled and pre-instantiated, shared by every worker running it.
pub struct Compiled {
    pub(crate) name: Arc<str>,
    path: PathBuf,
    engine: Engine,
    pre: Pre,
    pub(crate) config: Vec<(String, String)>,
    pub(crate) limits: Limits,
    pub(crate) on_error: OnError,
    pub(crate) retries: u32,
    /// One bit per failure kind already logged at `warn` (later ones go to `debug`);
    /// shared with the versions reloaded from the same file.
    logged: Arc<AtomicU32>,
    /// Counters shared by every worker.
    pub(crate) stats: Arc<PluginStats>,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Compiled {
    /// Reads and compiles the component at `path`, and checks it against the contract: it
    /// must export `weir:plugin/batch-processor` 0.2.0 (and may export `flush`) or 0.1.0,
    /// and import nothing but `logging` and WASI.
    pub fn load(
        path: &Path,
        name: String,
        config: Vec<(String, String)>,
        limits: Limits,
        on_error: OnError,
        retries: u32,
    ) -> Result<Compiled, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let engine = engine(limits.fuel.is_some())?;
        let invalid = |e: wasmtime::Error| LoadError::Invalid {
            path: path.to_path_buf(),
            message: format!("{e:#}"),
        };
        let component = compile(&engine, &bytes, limits.fuel.is_some()).map_err(invalid)?;
        let mut linker: Linker<HostState> = Linker::new(&engine);
        let linking = |e: wasmtime::Error| LoadError::Engine(format!("{e:#}"));
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(linking)?;
        crate::bindings::Processor::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(linking)?;
        crate::bindings_v1::Processor::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(linking)?;
        let exports: Vec<String> = component
            .component_type()
            .exports(&engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let exported = |name: &str| exports.iter().any(|e| e == name);
        let pre = linker.instantiate_pre(&component).map_err(invalid)?;
        let pre = if exported("weir:plugin/batch-processor@0.2.0") && exported("weir:plugin/flush@0.2.0") {
            Pre::V2Flush(crate::bindings_flush::FlushingProcessorPre::new(pre).map_err(invalid)?)
        } else if exported("weir:plugin/batch-processor@0.2.0") {
            Pre::V2(crate::bindings::ProcessorPre::new(pre).map_err(invalid)?)
        } else if exported("weir:plugin/batch-processor@0.1.0") {
            Pre::V1(crate::bindings_v1::ProcessorPre::new(pre).map_err(invalid)?)
        } else {
            let found = if exports.is_empty() {
                "none".to_string()
            } else {
                exports.join(", ")
            };
            return Err(LoadError::Invalid {
                path: path.to_path_buf(),
                message: format!(
                    "it exports neither weir:plugin/batch-processor@0.2.0 nor @0.1.0 (its exports: {found})"
                ),
            });
        };
        Ok(Compiled {
            name: name.into(),
            path: path.to_path_buf(),
            engine,
            pre,
            config,
            limits,
            on_error,
            retries,
            logged: Arc::new(AtomicU32::new(0)),
            stats: Arc::default(),
        })
    }

    /// The plugin file as it is now on disk, loaded with the same settings, and checked by
    /// making one instance (so a config the new version rejects is found here); it counts
    /// into the same counters.
    pub(crate) fn reload(&self) -> Result<Compiled, String> {
        let new = Compiled::load(
            &self.path,
            self.name.to_string(),
            self.config.clone(),
            self.limits,
            self.on_error,
            self.retries,
        )
        .map_err(|e| e.to_string())?;
        let new = Compiled {
            stats: self.stats.clone(),
            logged: self.logged.clone(),
            ..new
        };
        new.instantiate().map_err(|f| match f {
            Failure::Init(e) | Failure::Plugin(e) => format!("its init failed: {}", describe(&e)),
            Failure::Trap(_, m) => format!("it failed to start: {m}"),
        })?;
        Ok(new)
    }

    /// The plugin file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The contract version the component targets.
    pub fn version(&self) -> &'static str {
        match self.pre {
            Pre::V1(_) => "0.1.0",
            Pre::V2(_) | Pre::V2Flush(_) => "0.2.0",
        }
    }

    /// Whether the component exports `flush` (world `flushing-processor`).
    pub fn flushes(&self) -> bool {
        matches!(self.pre, Pre::V2Flush(_))
    }

    /// Whether the component targets 0.1.0.
    pub(crate) fn is_v1(&self) -> bool {
        matches!(self.pre, Pre::V1(_))
    }

    /// The plugin's name in logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The limits every instance runs under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The counters of every worker running this plugin.
    pub fn stats(&self) -> &PluginStats {
        &self.stats
    }

    /// Whether a failure of this kind is the first one logged (at `warn`).
    pub(crate) fn first_of(&self, kind: FailureKind) -> bool {
        let bit = 1 << kind as u32;
        self.logged.fetch_or(bit, Ordering::Relaxed) & bit == 0
    }

    /// A new instance, initialized with the plugin's config.
    pub(crate) fn instantiate(&self) -> Result<Instance, Failure> {
        let mut store = Store::new(&self.engine, HostState::new(self.name.clone(), self.limits.memory));
        store.limiter(|s| &mut s.limiter);
        // What the host copies out of the plugin in one go (its edits, a log message) counts
        // against the same cap: without it, a list of strings that all point at the same
        // bytes would be copied once per entry, far past what the plugin's memory holds.
        store.set_hostcall_fuel(self.limits.memory);
        let mut instance = Instance { store, bindings: None };
        instance.arm(&self.limits)?;
        let made = match &self.pre {
            Pre::V1(pre) => pre.instantiate(&mut instance.store).map(Bindings::V1),
            Pre::V2(pre) => pre.instantiate(&mut instance.store).map(Bindings::V2),
            Pre::V2Flush(pre) => pre.instantiate(&mut instance.store).map(Bindings::V2Flush),
        };
        let bindings = match made {
            Ok(b) => b,
            Err(e) => return Err(instance.classify(e, "instantiating")),
        };
        let config: Vec<(&str, &str)> = self.config.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let store = &mut instance.store;
        let init = match &bindings {
            Bindings::V1(b) => b
                .weir_plugin0_1_0_batch_processor()
                .call_init(store, &config)
                .map(|r| r.map_err(PluginError::from)),
            Bindings::V2(b) => b
                .weir_plugin0_2_0_batch_processor()
                .call_init(store, &config)
                .map(|r| r.map_err(PluginError::from)),
            Bindings::V2Flush(b) => b
                .weir_plugin0_2_0_batch_processor()
                .call_init(store, &config)
                .map(|r| r.map_err(PluginError::from)),
        };
        match init {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Failure::Init(e)),
            Err(e) => return Err(instance.classify(e, "in init")),
        }
        instance.bindings = Some(bindings);
        Ok(instance)
    }
}

/// A component pre-instantiated, by the contract version it targets.
enum Pre {
    V1(crate::bindings_v1::ProcessorPre<HostState>),
    V2(crate::bindings::ProcessorPre<HostState>),
    V2Flush(crate::bindings_flush::FlushingProcessorPre<HostState>),
}

/// An instance's exports, by contract version.
enum Bindings {
    V1(crate::bindings_v1::Processor),
    V2(crate::bindings::Processor),
    V2Flush(crate::bindings_flush::FlushingProcessor),
}

/// One live instance: a store (memory, limits, WASI context) and the plugin's exports.
pub(crate) struct Instance {
    pub(crate) store: Store<HostState>,
    bindings: Option<Bindings>,
}

impl Instance {
    /// Sets the deadline, the fuel and the log budget for the next call.
    fn arm(&mut self, limits: &Limits) -> Result<(), Failure> {
        self.store.set_epoch_deadline(limits.ticks());
        if let Some(fuel) = limits.fuel {
            self.store
                .set_fuel(fuel)
                .map_err(|e| Failure::Trap(FailureKind::Trap, format!("setting fuel: {e:#}")))?;
        }
        let data = self.store.data_mut();
        data.limiter.refused = None;
        data.logs_left = LOGS_PER_CALL;
        Ok(())
    }

    /// Calls the 0.2 `process` on `batch`, within the limits.
    pub(crate) fn process(&mut self, limits: &Limits, batch: types::Batch<'_>) -> Result<types::Edits, Failure> {
        self.arm(limits)?;
        let result = match self.bindings.as_ref().expect("instances are initialized") {
            Bindings::V2(b) => b
                .weir_plugin0_2_0_batch_processor()
                .call_process(&mut self.store, batch),
            Bindings::V2Flush(b) => b
                .weir_plugin0_2_0_batch_processor()
                .call_process(&mut self.store, batch),
            Bindings::V1(_) => unreachable!("0.1 plugins are called with process_v1"),
        };
        match result {
            Ok(Ok(edits)) => Ok(edits),
            Ok(Err(e)) => Err(Failure::Plugin(e.into())),
            Err(e) => Err(self.classify(e, "in process")),
        }
    }

    /// Calls the 0.1 `process` on `batch`, within the limits.
    pub(crate) fn process_v1(
        &mut self,
        limits: &Limits,
        batch: types_v1::Batch<'_>,
    ) -> Result<types_v1::Edits, Failure> {
        self.arm(limits)?;
        let Some(Bindings::V1(b)) = self.bindings.as_ref() else {
            unreachable!("0.2 plugins are called with process")
        };
        match b
            .weir_plugin0_1_0_batch_processor()
            .call_process(&mut self.store, batch)
        {
            Ok(Ok(edits)) => Ok(edits),
            Ok(Err(e)) => Err(Failure::Plugin(e.into())),
            Err(e) => Err(self.classify(e, "in process")),
        }
    }

    /// Calls `flush` with `batch` (no events), within the limits; `None` when the plugin
    /// does not export it.
    pub(crate) fn flush(&mut self, limits: &Limits, batch: types::Batch<'_>) -> Result<Option<types::Edits>, Failure> {
        if !matches!(self.bindings, Some(Bindings::V2Flush(_))) {
            return Ok(None);
        }
        self.arm(limits)?;
        let Some(Bindings::V2Flush(b)) = self.bindings.as_ref() else {
            unreachable!("checked above")
        };
        match b.weir_plugin0_2_0_flush().call_flush(&mut self.store, batch) {
            Ok(Ok(edits)) => Ok(Some(edits)),
            Ok(Err(e)) => Err(Failure::Plugin(e.into())),
            Err(e) => Err(self.classify(e, "in flush")),
        }
    }

    /// What a wasmtime error means: a deadline, fuel or memory-cap hit, or another trap.
    fn classify(&self, e: wasmtime::Error, when: &str) -> Failure {
        match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => Failure::Trap(FailureKind::Deadline, format!("deadline exceeded {when}")),
            Some(Trap::OutOfFuel) => Failure::Trap(FailureKind::Fuel, format!("out of fuel {when}")),
            _ if let Some(total) = self.store.data().limiter.refused => Failure::Trap(
                FailureKind::Memory,
                format!(
                    "memory cap of {} bytes reached {when}: the instance's memories and tables \
                     would have held {total} bytes: {e:#}",
                    self.store.data().limiter.max
                ),
            ),
            _ if format!("{e:#}").contains(HOSTCALL_FUEL_EXHAUSTED) => Failure::Trap(
                FailureKind::Memory,
                format!(
                    "memory cap of {} bytes reached {when}: the plugin handed back more than that \
                     for the host to copy",
                    self.store.data().limiter.max
                ),
            ),
            _ => Failure::Trap(FailureKind::Trap, format!("trap {when}: {e:#}")),
        }
    }
}

/// How wasmtime says that a copy out of the guest passed the store's hostcall fuel (its
/// error type is private; the version is pinned and `tests/limits.rs` checks the wording).
const HOSTCALL_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

/// The kinds of failure, counted and logged apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum FailureKind {
    /// A trap (e.g. `unreachable`, a panic, an out-of-bounds access).
    Trap,
    /// The call ran past its deadline.
    Deadline,
    /// The call ran out of fuel.
    Fuel,
    /// The instance hit its memory cap: its memories and tables together, or what it
    /// handed back for the host to copy.
    Memory,
    /// The plugin returned `fatal`.
    Fatal,
    /// The plugin returned `retryable`, and retrying did not help.
    Retryable,
    /// The plugin returned `drop-batch`.
    DropBatch,
    /// The plugin returned edits that break the layout (an index or span out of range).
    BadEdits,
    /// A new instance failed to start (its `init` failed or trapped).
    Init,
    /// The plugin emitted past the per-call limits and reported the emits it refused
    /// (the batch goes on with what it did emit; the refused events are lost and counted).
    EmitLimit,
}

impl FailureKind {
    /// Every kind, in the order of the counters.
    pub const ALL: [FailureKind; 10] = [
        FailureKind::Trap,
        FailureKind::Deadline,
        FailureKind::Fuel,
        FailureKind::Memory,
        FailureKind::Fatal,
        FailureKind::Retryable,
        FailureKind::DropBatch,
        FailureKind::BadEdits,
        FailureKind::Init,
        FailureKind::EmitLimit,
    ];

    /// A short name for logs and counters.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Trap => "trap",
            FailureKind::Deadline => "deadline",
            FailureKind::Fuel => "fuel",
            FailureKind::Memory => "memory",
            FailureKind::Fatal => "fatal",
            FailureKind::Retryable => "retryable",
            FailureKind::DropBatch => "drop_batch",
            FailureKind::BadEdits => "bad_edits",
            FailureKind::Init => "init",
            FailureKind::EmitLimit => "emit_limit",
        }
    }
}

/// Why a call failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The instance is unusable (trap, deadline, fuel, memory).
    Trap(FailureKind, String),
    /// The plugin returned an error.
    Plugin(PluginError),
    /// `init` of a new instance returned an error.
    Init(PluginError),
}

/// The WIT `error` a plugin returned, whatever its contract version.
#[derive(Debug)]
pub(crate) enum PluginError {
    Retryable(String),
    DropBatch(String),
    Fatal(String),
}

impl From<types::Error> for PluginError {
    fn from(e: types::Error) -> PluginError {
        match e {
            types::Error::Retryable(m) => PluginError::Retryable(m),
            types::Error::DropBatch(m) => PluginError::DropBatch(m),
            types::Error::Fatal(m) => PluginError::Fatal(m),
        }
    }
}

impl From<types_v1::Error> for PluginError {
    fn from(e: types_v1::Error) -> PluginError {
        match e {
            types_v1::Error::Retryable(m) => PluginError::Retryable(m),
            types_v1::Error::DropBatch(m) => PluginError::DropBatch(m),
            types_v1::Error::Fatal(m) => PluginError::Fatal(m),
        }
    }
}

/// The message of a WIT error, with its kind.
pub(crate) fn describe(e: &PluginError) -> String {
    match e {
        PluginError::Retryable(m) => format!("retryable: {m}"),
        PluginError::DropBatch(m) => format!("drop-batch: {m}"),
        PluginError::Fatal(m) => format!("fatal: {m}"),
    }
}
