//! Repository hygiene and the architecture's invariants: every Rust file opens with a `//!` line saying what it owns, no test is skipped, each outside system has one owner (from `cargo metadata`), the code map in `docs/ARCHITECTURE.md` names exactly the modules there are, the node's layers never import upward, and files and functions stay small.

// Test helpers outside #[test] functions unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Source files at most this long.
const MAX_FILE_LINES: usize = 600;
/// Functions at most this long.
const MAX_FN_LINES: usize = 150;

const CRATE_DIRS: [&str; 6] = [
    "identity",
    "consent-chain",
    "bank-adapter",
    "node",
    "client",
    "tests",
];

fn workspace_root() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .parent()
    .expect("the tests crate sits in the workspace root")
    .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("readable directory entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn all_rust_files() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in CRATE_DIRS {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(
        files.len() >= 8,
        "found only {} Rust files; is the walk broken?",
        files.len()
    );
    files
}

/// True when the first non-blank line is a `//!` doc line with words in it.
fn opens_with_module_doc(text: &str) -> bool {
    let first = text.lines().find(|line| !line.trim().is_empty());
    first.is_some_and(|line| line.starts_with("//!") && !line[3..].trim().is_empty())
}

/// True when the text marks a test as skipped.
fn skips_a_test(text: &str) -> bool {
    // Built from pieces so this file does not match itself.
    text.contains(concat!("#[", "ignore"))
}

#[test]
fn the_checks_tell_good_files_from_bad() {
    assert!(opens_with_module_doc("//! Owns the thing.\nfn f() {}\n"));
    assert!(opens_with_module_doc("\n//! Owns the thing.\n"));
    assert!(!opens_with_module_doc("use std::fs;\n//! Late doc.\n"));
    assert!(!opens_with_module_doc("// A plain comment.\n"));
    assert!(!opens_with_module_doc("//!\n"));
    assert!(!opens_with_module_doc(""));
    assert!(skips_a_test(concat!("#[test]\n#[", "ignore]\nfn t() {}")));
    assert!(!skips_a_test("#[test]\nfn t() {}"));
}

#[test]
fn every_rust_file_opens_with_a_module_doc() {
    let missing: Vec<_> = all_rust_files()
        .into_iter()
        .filter(|path| {
            !opens_with_module_doc(&std::fs::read_to_string(path).expect("readable source file"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "these files do not open with a `//!` line saying what they own: {missing:?}"
    );
}

#[test]
fn no_test_is_ignored() {
    let offenders: Vec<_> = all_rust_files()
        .into_iter()
        .filter(|path| skips_a_test(&std::fs::read_to_string(path).expect("readable source file")))
        .collect();
    assert!(
        offenders.is_empty(),
        "these files skip tests with an ignore attribute: {offenders:?}"
    );
}

/// The workspace's packages as `cargo metadata` reads them from the manifests.
fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON")
}

/// Each workspace package's direct dependencies (every kind), by package name.
fn direct_dependencies(metadata: &Value) -> BTreeMap<String, Vec<Value>> {
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| {
            (
                package["name"].as_str().unwrap().to_owned(),
                package["dependencies"].as_array().unwrap().clone(),
            )
        })
        .collect()
}

/// The packages that depend directly on `dependency`.
fn dependents(packages: &BTreeMap<String, Vec<Value>>, dependency: &str) -> BTreeSet<String> {
    packages
        .iter()
        .filter(|(_, deps)| deps.iter().any(|d| d["name"] == dependency))
        .map(|(name, _)| name.clone())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[test]
fn outside_systems_have_one_owner_each() {
    let packages = direct_dependencies(&metadata());
    assert_eq!(packages.len(), 6, "{:?}", packages.keys());
    assert_eq!(
        dependents(&packages, "libp2p"),
        set(&["consentnet-node"]),
        "only node knows libp2p"
    );
    assert_eq!(
        dependents(&packages, "axum"),
        set(&["consentnet-bank-adapter", "consentnet-node"]),
        "only node and bank-adapter know axum"
    );
    assert_eq!(
        dependents(&packages, "rocksdb"),
        set(&["consentnet-consent-chain"]),
        "only consent-chain knows RocksDB"
    );
    // The client takes the log's types without the RocksDB store.
    let chain = packages["consentnet-client"]
        .iter()
        .find(|d| d["name"] == "consentnet-consent-chain")
        .expect("the client uses consent-chain's wire types");
    assert_eq!(chain["uses_default_features"], false, "{chain}");
    assert!(
        !chain["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "rocksdb"),
        "{chain}"
    );
    let identity: BTreeSet<String> = packages["consentnet-identity"]
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_owned())
        .collect();
    for outside in ["libp2p", "axum", "rocksdb", "ureq"] {
        assert!(!identity.contains(outside), "identity depends on {outside}");
    }
}

/// The module names of a crate's `src/`: `a/b` for `a/b.rs`, `a` for `a/mod.rs`; crate
/// roots (`lib.rs`, `main.rs`) are left out, a binary's folder named for its `main.rs`.
fn modules_of(crate_dir: &Path) -> BTreeSet<String> {
    let src = crate_dir.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files
        .iter()
        .filter_map(|file| {
            let relative = file.strip_prefix(&src).unwrap().with_extension("");
            let name = relative.to_string_lossy().replace('\\', "/");
            match name.as_str() {
                "lib" | "main" => None,
                _ => Some(
                    name.strip_suffix("/mod")
                        .or_else(|| name.strip_suffix("/main"))
                        .unwrap_or(&name)
                        .to_owned(),
                ),
            }
        })
        .collect()
}

/// The modules `docs/ARCHITECTURE.md` names, per crate folder: the first column of the
/// tables under each `### `folder/`` heading.
fn documented_modules(doc: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut section: Option<String> = None;
    for line in doc.lines() {
        if let Some(heading) = line.strip_prefix("### `") {
            section = heading.split('/').next().map(str::to_owned);
            continue;
        }
        if line.starts_with("## ") {
            section = None;
        }
        let (Some(section), Some(cell)) = (&section, line.strip_prefix("| `")) else {
            continue;
        };
        if let Some((name, _)) = cell.split_once('`') {
            out.entry(section.clone())
                .or_default()
                .insert(name.to_owned());
        }
    }
    out
}

#[test]
fn every_module_is_on_the_code_map_and_every_mapped_module_exists() {
    let root = workspace_root();
    let doc = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).unwrap();
    let documented = documented_modules(&doc);
    for dir in CRATE_DIRS {
        let actual = modules_of(&root.join(dir));
        let named = documented.get(dir).cloned().unwrap_or_default();
        let missing: Vec<_> = actual.difference(&named).collect();
        let stale: Vec<_> = named.difference(&actual).collect();
        assert!(
            missing.is_empty() && stale.is_empty(),
            "{dir}: modules not on the code map: {missing:?}; named there but absent: {stale:?}"
        );
    }
}

#[test]
fn the_code_map_parser_reads_tables_under_crate_headings() {
    let doc = "## Code map\n### `node/` (x)\n| module | owns |\n| --- | --- |\n| `p2p/swarm` | the swarm |\n## Invariants\n| `not/a/module` | x |\n";
    let documented = documented_modules(doc);
    assert_eq!(documented.len(), 1);
    assert_eq!(documented["node"], set(&["p2p/swarm"]));
}

/// The node's layers, lowest first: a module may import only modules of lower rank.
fn node_rank(module: &str) -> Option<u8> {
    Some(match module {
        "config" | "keystore" => 0,
        "p2p" => 1,
        "core" => 2,
        "bank" | "audit" => 3,
        "api" => 4,
        "portal" => 5,
        "server" => 6,
        "setup" => 7,
        _ => return None,
    })
}

/// The node's top-level modules a source text imports through `crate::`.
fn crate_imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (index, _) in text.match_indices("crate::") {
        let rest = &text[index + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

#[test]
fn no_layer_of_the_node_imports_one_above_it() {
    let src = workspace_root().join("node/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut upward = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        let Some(rank) = node_rank(&top) else {
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for imported in crate_imports(&text) {
            if imported == top {
                continue;
            }
            let their = node_rank(&imported)
                .unwrap_or_else(|| panic!("{relative:?} imports unknown module {imported}"));
            if their >= rank {
                upward.push(format!("{} imports {imported}", relative.display()));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports against the layering: {upward:?}"
    );
    assert_eq!(
        crate_imports("use crate::core::X;\nlet y = crate::p2p::f();"),
        set(&["core", "p2p"])
    );
}

/// Source files of every crate outside its `tests/` folder: libraries, binaries,
/// examples. Test scenarios are exempt: each reads top to bottom as one story.
fn sources() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in CRATE_DIRS {
        rust_files(&root.join(dir).join("src"), &mut files);
        rust_files(&root.join(dir).join("examples"), &mut files);
    }
    assert!(files.len() > 50, "found only {} files", files.len());
    files
}

/// The functions in `text` longer than `limit` lines, as (line, length, name). A
/// function ends at the first `}` at its own indentation (rustfmt's layout).
fn long_functions(text: &str, limit: usize) -> Vec<(usize, usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let declaration = trimmed
            .trim_start_matches("pub ")
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ")
            .trim_start_matches("async ")
            .trim_start_matches("const ");
        let Some(signature) = declaration.strip_prefix("fn ") else {
            continue;
        };
        if line.trim_end().ends_with(';') {
            continue;
        }
        let close = format!("{indent}}}");
        let end = lines[start..]
            .iter()
            .position(|l| l.trim_end() == close)
            .map_or(lines.len(), |offset| start + offset);
        let length = end - start + 1;
        if length > limit {
            let name: String = signature
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push((start + 1, length, name));
        }
    }
    out
}

#[test]
fn the_function_measure_finds_the_end_of_each_function() {
    let text = "fn short() {\n    one();\n}\n\nimpl X {\n    pub fn long(&self) {\n        a();\n        b();\n        c();\n    }\n}\n";
    assert_eq!(long_functions(text, 3), vec![(6, 5, "long".to_owned())]);
    assert!(long_functions(text, 5).is_empty());
}

#[test]
fn files_and_functions_stay_small() {
    let root = workspace_root();
    let mut problems = Vec::new();
    for file in sources() {
        let text = std::fs::read_to_string(&file).unwrap();
        let shown = file.strip_prefix(&root).unwrap().display().to_string();
        let lines = text.lines().count();
        if lines > MAX_FILE_LINES {
            problems.push(format!("{shown}: {lines} lines"));
        }
        for (line, length, name) in long_functions(&text, MAX_FN_LINES) {
            problems.push(format!("{shown}:{line}: fn {name} is {length} lines"));
        }
    }
    assert!(
        problems.is_empty(),
        "over {MAX_FILE_LINES} lines a file or {MAX_FN_LINES} a function: {problems:#?}"
    );
}
