//! The agent's folders depend on each other one way (see `src/lib.rs` and ARCHITECTURE.md):
//! components (inputs, outputs) use only `config::error`, `delivery`, `net` and
//! `admin::Labeled` (metrics by label) and `secrets`; `delivery` uses nothing else of the agent,
//! `admin` only `secrets`, and `secrets` (a leaf) nothing; nothing but `cli` uses `cli`. A `use` that breaks
//! this fails here, naming the file and line, before the circle it starts grows.

use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// Which `crate::` paths the files of a folder may use.
const RULES: &[(&str, &[&str])] = &[
    (
        "inputs",
        &[
            "crate::config::error",
            "crate::delivery",
            "crate::inputs",
            "crate::net",
            "crate::admin::Labeled",
            "crate::secrets",
        ],
    ),
    (
        "outputs",
        &[
            "crate::config::error",
            "crate::outputs",
            "crate::net",
            "crate::admin::Labeled",
            "crate::secrets",
        ],
    ),
    ("net", &["crate::config::error", "crate::net", "crate::secrets"]),
    ("delivery", &["crate::delivery"]),
    ("admin", &["crate::admin", "crate::secrets"]),
    (
        "config",
        &[
            "crate::config",
            "crate::inputs",
            "crate::outputs",
            "crate::delivery",
            "crate::secrets",
        ],
    ),
    ("secrets", &[]),
    (
        "runtime",
        &[
            "crate::runtime",
            "crate::config",
            "crate::inputs",
            "crate::outputs",
            "crate::delivery",
            "crate::admin",
        ],
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::a::b` path a file names, with its line number (`super::` within a
/// folder is always allowed).
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let path: String = rest[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            found.push((n + 1, path.trim_end_matches(':').to_string()));
            rest = &rest[i + 7..];
        }
    }
    found
}

#[test]
fn folders_depend_on_each_other_one_way() {
    let mut broken = Vec::new();
    for (folder, allowed) in RULES {
        let mut files = Vec::new();
        let dir = Path::new(SRC).join(folder);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        } else {
            files.push(dir.with_extension("rs")); // a one-file module, e.g. secrets.rs
        }
        assert!(!files.is_empty(), "src/{folder} has no Rust files");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("a source file");
            for (line, path) in crate_paths(&text) {
                let ok = allowed
                    .iter()
                    .any(|a| path == *a || path.starts_with(&format!("{a}::")));
                if !ok {
                    broken.push(format!("{}:{line}: {path}", file.display()));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "imports against the direction of the layout:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_rule_catches_an_import_back_up() {
    let paths = crate_paths(
        "use crate::runtime::Summary;\n// crate::cli in a comment\nlet x = crate::config::error::Pos::default();\n",
    );
    assert_eq!(
        paths,
        vec![
            (1, "crate::runtime::Summary".to_string()),
            (3, "crate::config::error::Pos::default".to_string())
        ]
    );
}
