//! Repository hygiene: every Rust file opens with a `//!` line saying what it owns, and no test is skipped.

// Test helpers outside #[test] functions unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

const CRATE_DIRS: [&str; 6] = [
    "identity",
    "consent-chain",
    "bank-adapter",
    "node",
    "client",
    "tests",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
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
