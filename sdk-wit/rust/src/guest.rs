//! The generated bindings and the glue behind [`export!`](crate::export) (feature `guest`).
//!
//! The WIT types are not generated again here: wit-bindgen is told (`with:`) to use the
//! [`flat`](crate::flat) types and [`Error`](crate::Error), which mirror them field for field,
//! so a batch arrives as a `flat::Batch` with no per-event conversion and the edits leave as
//! a `flat::Edits`.

use std::sync::Mutex;

use crate::flat;
use crate::plugin::{Error, Plugin, flush_flat, init_flat, process_flat};

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "flushing-processor",
        pub_export_macro: true,
        export_macro_name: "__export_processor",
        default_bindings_module: "weir_sdk::guest::bindings",
        runtime_path: "weir_sdk::guest::rt",
        with: {
            "weir:plugin/types@0.2.0/emit-limits": crate::flat::EmitLimits,
            "weir:plugin/types@0.2.0/batch": crate::flat::Batch,
            "weir:plugin/types@0.2.0/edits": crate::flat::Edits,
            "weir:plugin/types@0.2.0/error": crate::plugin::Error,
        },
    });
}

/// The wit-bindgen runtime the generated code refers to (plugins need no dependency on
/// wit-bindgen themselves).
#[doc(hidden)]
pub use wit_bindgen::rt;

pub use bindings::exports::weir::plugin0_2_0::batch_processor::Guest;
pub use bindings::exports::weir::plugin0_2_0::flush::Guest as FlushGuest;

/// Writes `message` through the host's `logging.log`.
pub(crate) fn host_log(level: crate::Level, message: &str) {
    use bindings::weir::plugin0_2_0::logging::{Level as L, log};
    let level = match level {
        crate::Level::Trace => L::Trace,
        crate::Level::Debug => L::Debug,
        crate::Level::Info => L::Info,
        crate::Level::Warn => L::Warn,
        crate::Level::Error => L::Error,
    };
    log(level, message);
}

/// Where `export!` keeps the instance's plugin: empty until `init` succeeds. A component
/// instance runs one call at a time, so the lock is never contended; it only makes the
/// static safe to share.
#[doc(hidden)]
#[derive(Debug)]
pub struct Slot<P>(Mutex<Option<P>>);

impl<P> Slot<P> {
    /// An empty slot.
    pub const fn new() -> Slot<P> {
        Slot(Mutex::new(None))
    }
}

impl<P> Default for Slot<P> {
    fn default() -> Self {
        Slot::new()
    }
}

/// The export `init`, for `export!`.
#[doc(hidden)]
pub fn init<P: Plugin>(slot: &Slot<P>, config: Vec<(String, String)>) -> Result<(), Error> {
    let plugin = init_flat::<P>(config)?;
    *slot.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(plugin);
    Ok(())
}

/// The export `process`, for `export!`.
#[doc(hidden)]
pub fn process<P: Plugin>(slot: &Slot<P>, batch: flat::Batch) -> Result<flat::Edits, Error> {
    let mut guard = slot.0.lock().unwrap_or_else(|e| e.into_inner());
    let plugin = guard
        .as_mut()
        .ok_or_else(|| Error::fatal("process called before a successful init"))?;
    process_flat(plugin, &batch)
}

/// The export `flush`, for `export!`.
#[doc(hidden)]
pub fn flush<P: Plugin>(slot: &Slot<P>, batch: flat::Batch) -> Result<flat::Edits, Error> {
    let mut guard = slot.0.lock().unwrap_or_else(|e| e.into_inner());
    let plugin = guard
        .as_mut()
        .ok_or_else(|| Error::fatal("flush called before a successful init"))?;
    flush_flat(plugin, &batch)
}

/// Makes a [`Plugin`](crate::Plugin) the component's `weir:plugin/batch-processor` and
/// `weir:plugin/flush` exports (world `flushing-processor@0.2.0`).
/// Use it once, at the top level of a `cdylib` crate built for `wasm32-wasip2` with the
/// `guest` feature of `weir-sdk`:
///
/// ```ignore
/// struct MyPlugin;
/// impl weir_sdk::Plugin for MyPlugin { /* init, process */ }
/// weir_sdk::export!(MyPlugin);
/// ```
#[macro_export]
macro_rules! export {
    ($plugin:ty) => {
        const _: () = {
            static __WEIR_PLUGIN: $crate::guest::Slot<$plugin> = $crate::guest::Slot::new();

            struct __WeirExport;

            impl $crate::guest::Guest for __WeirExport {
                fn init(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<(), $crate::Error> {
                    $crate::guest::init::<$plugin>(&__WEIR_PLUGIN, config)
                }

                fn process(batch: $crate::flat::Batch) -> ::std::result::Result<$crate::flat::Edits, $crate::Error> {
                    $crate::guest::process::<$plugin>(&__WEIR_PLUGIN, batch)
                }
            }

            impl $crate::guest::FlushGuest for __WeirExport {
                fn flush(batch: $crate::flat::Batch) -> ::std::result::Result<$crate::flat::Edits, $crate::Error> {
                    $crate::guest::flush::<$plugin>(&__WEIR_PLUGIN, batch)
                }
            }

    $crate::guest::bindings::__export_processor!(__WeirExport with_types_in $crate::guest::bindings);
        };
    };
}
