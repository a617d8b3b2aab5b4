//! The error tables in `docs/` agree with the code enums of the three HTTP surfaces (node API, Open Banking, OAuth): no code exists in one and not the other.

// Test helpers outside #[test] functions unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use consentnet_bank_adapter::ObCode;
use consentnet_node::api::ApiCode;
use consentnet_node::portal::oauth::OAuthCode;

/// The `(code, status)` pairs of the table that follows `heading` in `doc`: rows whose
/// first cell is a backticked code and whose second starts with a status number.
fn documented_codes(doc: &str, heading: &str) -> BTreeSet<(String, u16)> {
    let start = doc
        .find(heading)
        .unwrap_or_else(|| panic!("no heading {heading:?}"));
    let mut rows = BTreeSet::new();
    let mut in_table = false;
    for line in doc[start..].lines().skip(1) {
        if !line.starts_with('|') {
            if in_table {
                break;
            }
            continue;
        }
        in_table = true;
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(code), Some(status)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        let Some(code) = code.strip_prefix('`').and_then(|c| c.strip_suffix('`')) else {
            continue;
        };
        let digits: String = status.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(status) = digits.parse() {
            rows.insert((code.to_owned(), status));
        }
    }
    rows
}

fn workspace_doc(name: &str) -> String {
    let path = std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("..")
    .join("docs")
    .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_node_api_error_table_is_the_enum() {
    let doc = workspace_doc("NODE.md");
    let enum_codes: BTreeSet<(String, u16)> = ApiCode::ALL
        .iter()
        .map(|c| (c.as_str().to_owned(), c.status()))
        .collect();
    assert_eq!(documented_codes(&doc, "### Error codes"), enum_codes);
    // Every `status code` the endpoint table names is one of them.
    let endpoints =
        &doc[doc.find("| method and path |").unwrap()..doc.find("### Error codes").unwrap()];
    let mut named = 0;
    for (index, _) in endpoints.match_indices('`') {
        let rest = &endpoints[index + 1..];
        let Some((cell, _)) = rest.split_once('`') else {
            continue;
        };
        let Some((status, code)) = cell.split_once(' ') else {
            continue;
        };
        let (Ok(status), true) = (
            status.parse::<u16>(),
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        ) else {
            continue;
        };
        named += 1;
        assert!(
            enum_codes.contains(&(code.to_owned(), status)),
            "NODE.md names `{status} {code}`, which the API does not answer"
        );
    }
    assert!(named > 20, "only {named} codes found in the endpoint table");
}

#[test]
fn the_open_banking_error_table_is_the_enum() {
    let doc = workspace_doc("ADAPTER.md");
    let enum_codes: BTreeSet<(String, u16)> = ObCode::ALL
        .iter()
        .map(|c| (c.as_str().to_owned(), c.status()))
        .collect();
    assert_eq!(documented_codes(&doc, "### Error codes"), enum_codes);
}

#[test]
fn the_oauth_error_table_is_the_enum() {
    let doc = workspace_doc("PORTAL.md");
    let enum_codes: BTreeSet<(String, u16)> = OAuthCode::ALL
        .iter()
        .map(|c| (c.as_str().to_owned(), c.status()))
        .collect();
    assert_eq!(documented_codes(&doc, "## Errors"), enum_codes);
}

#[test]
fn the_table_reader_takes_code_and_status_from_the_first_table_after_the_heading() {
    let doc = "## Errors\ntext\n| error | status | when |\n| --- | --- | --- |\n| `a_b` | 400 | x |\n| `c` | 303 (a redirect) | y |\n\n| `not` | 500 | later table |\n";
    assert_eq!(
        documented_codes(doc, "## Errors"),
        BTreeSet::from([("a_b".to_owned(), 400), ("c".to_owned(), 303)])
    );
}
