//! The WIT package in `sdk-wit/wit/` parses and resolves, has the shape the SDK mirrors,
//! and documents every item (as the style guide asks), so CI checks the contract itself.
//! The previous version, kept in `deps/plugin-0.1.0/` for plugins built against it, is
//! checked too: it must still resolve, unchanged.

use std::path::{Path, PathBuf};

use weir_sdk::Level;
use wit_parser::{Docs, PackageId, Resolve, TypeDefKind, WorldItem, WorldKey};

fn wit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit")
}

fn load() -> (Resolve, PackageId) {
    let mut resolve = Resolve::default();
    let (pkg, _) = resolve.push_dir(wit_dir()).unwrap_or_else(|e| panic!("{e:?}"));
    (resolve, pkg)
}

/// The 0.1.0 package, pushed on its own.
fn load_0_1_0() -> (Resolve, PackageId) {
    let mut resolve = Resolve::default();
    let (pkg, _) = resolve
        .push_dir(wit_dir().join("deps/plugin-0.1.0"))
        .unwrap_or_else(|e| panic!("{e:?}"));
    (resolve, pkg)
}

fn sorted<'a>(names: impl Iterator<Item = &'a String>) -> Vec<&'a str> {
    let mut names: Vec<&str> = names.map(String::as_str).collect();
    names.sort();
    names
}

/// The interfaces a world imports or exports, by their full names.
fn interfaces(resolve: &Resolve, items: &wit_parser::IndexMap<WorldKey, WorldItem>) -> Vec<String> {
    let mut names: Vec<String> = items
        .iter()
        .filter(|(_, item)| matches!(item, WorldItem::Interface { .. }))
        .map(|(key, _)| resolve.name_world_key(key))
        .collect();
    names.sort();
    names
}

/// The field names of a record or the case names of a variant or enum of `interface`.
fn shape(resolve: &Resolve, pkg: PackageId, interface: &str, name: &str) -> Vec<String> {
    let iface = &resolve.interfaces[resolve.packages[pkg].interfaces[interface]];
    let id = *iface
        .types
        .get(name)
        .unwrap_or_else(|| panic!("{interface} has no type {name}"));
    match &resolve.types[id].kind {
        TypeDefKind::Record(r) => r.fields.iter().map(|f| f.name.clone()).collect(),
        TypeDefKind::Variant(v) => v.cases.iter().map(|c| c.name.clone()).collect(),
        TypeDefKind::Enum(e) => e.cases.iter().map(|c| c.name.clone()).collect(),
        other => panic!("{name}: unexpected {other:?}"),
    }
}

#[test]
fn package_is_weir_plugin_0_2_0() {
    let (resolve, pkg) = load();
    assert_eq!(weir_sdk::WIT_PACKAGE, "weir:plugin@0.2.0");
    assert_eq!(resolve.packages[pkg].name.to_string(), weir_sdk::WIT_PACKAGE);
    assert_eq!(
        sorted(resolve.packages[pkg].interfaces.keys()),
        ["batch-processor", "flush", "logging", "types"]
    );
    assert_eq!(
        sorted(resolve.packages[pkg].worlds.keys()),
        ["flushing-processor", "processor"]
    );
}

#[test]
fn world_processor_imports_logging_and_exports_batch_processor() {
    let (resolve, pkg) = load();
    let world = &resolve.worlds[resolve.packages[pkg].worlds["processor"]];
    // `batch-processor` uses `types`, so the world imports `types` implicitly.
    assert_eq!(
        interfaces(&resolve, &world.imports),
        ["weir:plugin/logging@0.2.0", "weir:plugin/types@0.2.0"]
    );
    assert_eq!(
        interfaces(&resolve, &world.exports),
        ["weir:plugin/batch-processor@0.2.0"]
    );
    let iface = resolve.packages[pkg].interfaces["batch-processor"];
    assert_eq!(sorted(resolve.interfaces[iface].functions.keys()), ["init", "process"]);
}

#[test]
fn world_flushing_processor_also_exports_flush() {
    let (resolve, pkg) = load();
    let world = &resolve.worlds[resolve.packages[pkg].worlds["flushing-processor"]];
    assert_eq!(
        interfaces(&resolve, &world.imports),
        ["weir:plugin/logging@0.2.0", "weir:plugin/types@0.2.0"]
    );
    assert_eq!(
        interfaces(&resolve, &world.exports),
        ["weir:plugin/batch-processor@0.2.0", "weir:plugin/flush@0.2.0"]
    );
    let iface = &resolve.interfaces[resolve.packages[pkg].interfaces["flush"]];
    assert_eq!(sorted(iface.functions.keys()), ["flush"]);
    // `flush` takes a batch and answers edits, like `process`.
    let flush = &iface.functions["flush"];
    let params: Vec<&str> = flush.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(params, ["batch"]);
    assert!(flush.result.is_some());
}

#[test]
fn every_item_has_a_doc_comment() {
    for (version, (resolve, pkg)) in [("0.2.0", load()), ("0.1.0", load_0_1_0())] {
        let mut missing = Vec::new();
        let mut check = |what: String, docs: &Docs| {
            if docs.contents.as_deref().is_none_or(|d| d.trim().is_empty()) {
                missing.push(what);
            }
        };
        let package = &resolve.packages[pkg];
        for (name, &id) in &package.worlds {
            check(format!("world {name}"), &resolve.worlds[id].docs);
        }
        for (name, &id) in &package.interfaces {
            let iface = &resolve.interfaces[id];
            check(format!("interface {name}"), &iface.docs);
            for (fname, func) in &iface.functions {
                check(format!("{name}.{fname}"), &func.docs);
            }
            for (tname, &tid) in &iface.types {
                let ty = &resolve.types[tid];
                if matches!(ty.kind, TypeDefKind::Type(_)) {
                    continue; // a `use`: documented where it is defined
                }
                check(format!("{name}.{tname}"), &ty.docs);
                match &ty.kind {
                    TypeDefKind::Record(r) => r
                        .fields
                        .iter()
                        .for_each(|f| check(format!("{tname}.{}", f.name), &f.docs)),
                    TypeDefKind::Variant(v) => v
                        .cases
                        .iter()
                        .for_each(|c| check(format!("{tname}.{}", c.name), &c.docs)),
                    TypeDefKind::Enum(e) => e
                        .cases
                        .iter()
                        .for_each(|c| check(format!("{tname}.{}", c.name), &c.docs)),
                    _ => {}
                }
            }
        }
        assert!(missing.is_empty(), "{version}: undocumented WIT items: {missing:?}");
    }
}

/// The SDK's `flat` module mirrors these records (and the packed rows inside their byte
/// lists); a renamed or added field must show up in both.
#[test]
fn the_0_2_records_match_the_flat_module() {
    let (resolve, pkg) = load();
    let types = |name: &str| shape(&resolve, pkg, "types", name);
    assert_eq!(types("batch"), ["bytes", "extra", "keys", "events", "fields", "limits"]);
    assert_eq!(types("edits"), ["bytes", "new-keys", "ops", "refused"]);
    assert_eq!(types("emit-limits"), ["events", "bytes"]);
    assert_eq!(types("error"), ["retryable", "drop-batch", "fatal"]);
    // `weir_sdk::Level` mirrors the logging enum, case for case.
    let levels: Vec<String> = [Level::Trace, Level::Debug, Level::Info, Level::Warn, Level::Error]
        .iter()
        .map(|l| l.to_string().to_lowercase())
        .collect();
    assert_eq!(shape(&resolve, pkg, "logging", "level"), levels);
    // The rows live in byte lists: the 0.1 records of events, fields and edits are gone.
    let iface = &resolve.interfaces[resolve.packages[pkg].interfaces["types"]];
    assert_eq!(sorted(iface.types.keys()), ["batch", "edits", "emit-limits", "error"]);

    // The `flat` records have the same fields, and `edits.refused` / `limits` are there.
    let batch = weir_sdk::flat::Batch::default();
    let weir_sdk::flat::Batch {
        bytes: _,
        extra: _,
        keys: _,
        events: _,
        fields: _,
        limits: weir_sdk::flat::EmitLimits { events: _, bytes: _ },
    } = batch;
    let weir_sdk::flat::Edits {
        bytes: _,
        new_keys: _,
        ops: _,
        refused: _,
    } = weir_sdk::flat::Edits::default();
    // Row sizes as the WIT's `types` documentation gives them.
    assert_eq!(
        (
            weir_sdk::flat::EVENT_ROW,
            weir_sdk::flat::FIELD_ROW,
            weir_sdk::flat::OP_ROW
        ),
        (24, 16, 24)
    );
}

/// The 0.1.0 package still resolves, both as a dependency of the 0.2.0 directory and on
/// its own, with its old shape.
#[test]
fn the_0_1_0_package_still_resolves_with_its_old_shape() {
    let (resolve, main) = load();
    // As a dependency: `push_dir` parses `deps/` too and pushes every package there.
    let old = resolve
        .packages
        .iter()
        .find(|(_, p)| p.name.to_string() == "weir:plugin@0.1.0")
        .map(|(id, _)| id)
        .expect("deps/plugin-0.1.0 is resolved along with the 0.2.0 package");
    assert_ne!(old, main);
    // On its own, as a host that loads only 0.1 plugins would.
    let (alone, alone_pkg) = load_0_1_0();
    assert_eq!(alone.packages[alone_pkg].name.to_string(), "weir:plugin@0.1.0");
    let checked = [(&resolve, old), (&alone, alone_pkg)];
    for (resolve, pkg) in checked {
        let package = &resolve.packages[pkg];
        assert_eq!(
            sorted(package.interfaces.keys()),
            ["batch-processor", "logging", "types"]
        );
        assert_eq!(sorted(package.worlds.keys()), ["processor"]);
        let world = &resolve.worlds[package.worlds["processor"]];
        assert_eq!(
            interfaces(resolve, &world.imports),
            ["weir:plugin/logging@0.1.0", "weir:plugin/types@0.1.0"]
        );
        assert_eq!(
            interfaces(resolve, &world.exports),
            ["weir:plugin/batch-processor@0.1.0"]
        );
        let shape = |name: &str| shape(resolve, pkg, "types", name);
        assert_eq!(shape("span"), ["start", "len"]);
        assert_eq!(shape("value"), ["null", "boolean", "int", "float", "str", "json"]);
        assert_eq!(shape("field"), ["key", "value"]);
        assert_eq!(shape("event"), ["raw", "timestamp", "fields"]);
        assert_eq!(shape("batch"), ["bytes", "keys", "events", "fields"]);
        assert_eq!(shape("edit"), ["drop", "set", "remove", "timestamp"]);
        assert_eq!(shape("set-field"), ["event", "key", "value"]);
        assert_eq!(shape("remove-field"), ["event", "key"]);
        assert_eq!(shape("set-timestamp"), ["event", "timestamp"]);
        assert_eq!(shape("edits"), ["bytes", "new-keys", "edits"]);
        assert_eq!(shape("error"), ["retryable", "drop-batch", "fatal"]);
    }
}
