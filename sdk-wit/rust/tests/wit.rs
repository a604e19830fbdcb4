//! The WIT package in `sdk-wit/wit/` parses and resolves, has the shape the SDK mirrors,
//! and documents every item (as the style guide asks), so CI checks the contract itself.

use std::path::Path;

use wit_parser::{Docs, PackageId, Resolve, TypeDefKind, WorldItem, WorldKey};

fn load() -> (Resolve, PackageId) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
    let mut resolve = Resolve::default();
    let (pkg, _) = resolve.push_dir(&dir).unwrap_or_else(|e| panic!("{e:?}"));
    (resolve, pkg)
}

#[test]
fn package_is_weir_plugin_0_1_0() {
    let (resolve, pkg) = load();
    assert_eq!(resolve.packages[pkg].name.to_string(), weir_sdk::WIT_PACKAGE);
    let mut interfaces: Vec<&str> = resolve.packages[pkg].interfaces.keys().map(String::as_str).collect();
    interfaces.sort();
    assert_eq!(interfaces, ["batch-processor", "logging", "types"]);
}

#[test]
fn world_processor_imports_logging_and_exports_batch_processor() {
    let (resolve, pkg) = load();
    let world = &resolve.worlds[resolve.packages[pkg].worlds["processor"]];
    let names = |items: &wit_parser::IndexMap<WorldKey, WorldItem>| -> Vec<String> {
        items
            .iter()
            .filter(|(_, item)| matches!(item, WorldItem::Interface { .. }))
            .map(|(key, _)| resolve.name_world_key(key))
            .collect()
    };
    // `batch-processor` uses `types`, so the world imports `types` implicitly.
    let mut imports = names(&world.imports);
    imports.sort();
    assert_eq!(imports, ["weir:plugin/logging@0.1.0", "weir:plugin/types@0.1.0"]);
    assert_eq!(names(&world.exports), ["weir:plugin/batch-processor@0.1.0"]);
    let iface = resolve.packages[pkg].interfaces["batch-processor"];
    let mut funcs: Vec<&str> = resolve.interfaces[iface].functions.keys().map(String::as_str).collect();
    funcs.sort();
    assert_eq!(funcs, ["init", "process"]);
}

#[test]
fn every_item_has_a_doc_comment() {
    let (resolve, pkg) = load();
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
    assert!(missing.is_empty(), "undocumented WIT items: {missing:?}");
}

/// The SDK's `flat` module mirrors these records and variants; a renamed or added case
/// must show up in both.
#[test]
fn flat_types_match_the_wit() {
    let (resolve, pkg) = load();
    let types = &resolve.interfaces[resolve.packages[pkg].interfaces["types"]];
    let shape = |name: &str| -> Vec<String> {
        match &resolve.types[types.types[name]].kind {
            TypeDefKind::Record(r) => r.fields.iter().map(|f| f.name.clone()).collect(),
            TypeDefKind::Variant(v) => v.cases.iter().map(|c| c.name.clone()).collect(),
            other => panic!("{name}: unexpected {other:?}"),
        }
    };
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
