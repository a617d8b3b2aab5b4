//! The bank's review of a mini-app version: its files with sizes and what changed since the version this bank approved last, whether this node holds each, the origins it asks for (the bank ticks those it allows), and each file's text as a line diff against that version.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use consentnet_consent_chain::State as LogState;
use consentnet_consent_chain::event::AppManifest;
use consentnet_consent_chain::miniapp::{BundleFile, MiniApp};
use consentnet_identity::Did;
use consentnet_identity::util::escape_html;

use super::diff::{Line, line_diff};
use super::refusal;
use crate::core::bundles::BundleStore;
use crate::portal::html::{layout, page};
use crate::portal::oauth::Params;
use crate::portal::state::Portal;

/// What a file of the version under review is, against the last approved version.
fn change(file: &BundleFile, before: Option<&MiniApp>) -> &'static str {
    match before.and_then(|b| b.file(&file.path)) {
        None => "added",
        Some(old) if old.sha256 == file.sha256 => "unchanged",
        Some(_) => "changed",
    }
}

fn review_link(manifest: &AppManifest, path: &str) -> String {
    let query = serde_urlencoded::to_string([
        ("app", manifest.app.as_str()),
        ("version", manifest.version.as_str()),
        ("path", path),
    ])
    .unwrap_or_default();
    format!("/portal/bank/review?{}", escape_html(&query))
}

/// The bundle's section of a version on the bank's page: what it is compared with, and
/// a row per file (and per file the new version dropped).
pub(super) fn files_section(
    state: &LogState,
    bank: &Did,
    manifest: &AppManifest,
    mini_app: &MiniApp,
    held: Option<&BundleStore>,
) -> String {
    let before = state.last_approved(bank, &manifest.app, &manifest.version);
    let before_app = before.and_then(|m| m.mini_app.as_deref());
    let compared = match before {
        Some(old) => format!(
            "Compared with version {}, the last one approved here.",
            escape_html(&old.version)
        ),
        None => "No other version of this app is approved here: every file is new.".into(),
    };
    let mut rows: String = mini_app
        .files
        .iter()
        .map(|file| {
            let holds = held.is_some_and(|store| store.has(&file.sha256));
            format!(
                r#"<tr class="file" data-path="{path}" data-change="{change}"><td><a href="{link}">{path}</a></td><td>{size}</td><td>{change}</td><td>{held}</td></tr>"#,
                path = escape_html(&file.path),
                link = review_link(manifest, &file.path),
                size = file.size,
                change = change(file, before_app),
                held = if holds { "held" } else { "not fetched yet" },
            )
        })
        .collect();
    for old in before_app.map_or(&[][..], |b| &b.files[..]) {
        if mini_app.file(&old.path).is_none() {
            rows.push_str(&format!(
                r#"<tr class="file" data-path="{path}" data-change="removed"><td>{path}</td><td>{size}</td><td>removed</td><td></td></tr>"#,
                path = escape_html(&old.path),
                size = old.size,
            ));
        }
    }
    format!(
        r#"<div class="miniapp"><h3>Mini-app bundle: {count} files, {total} bytes</h3>
<p>{compared}</p>
<table><tr><th>file</th><th>bytes</th><th>change</th><th>on this node</th></tr>{rows}</table></div>"#,
        count = mini_app.files.len(),
        total = mini_app.total_bytes(),
    )
}

/// Checkboxes for the origins the version asks to reach, ticked where `allowed`.
pub(super) fn origin_boxes(mini_app: &MiniApp, allowed: &BTreeSet<String>) -> String {
    if mini_app.origins.is_empty() {
        return "<p>It asks to reach no network origin: it can reach only this portal's bridge.</p>".into();
    }
    let boxes: String = mini_app
        .origins
        .iter()
        .enumerate()
        .map(|(i, origin)| {
            let checked = if allowed.contains(origin) {
                " checked"
            } else {
                ""
            };
            format!(
                r#"<label><input type="checkbox" name="origin_{i}"{checked}> {origin}</label><br>"#,
                origin = escape_html(origin),
            )
        })
        .collect();
    format!("<p>Let it reach these origins itself (none unless ticked):</p>\n{boxes}")
}

/// The origins a decision form allows: those the manifest asks for whose box is ticked.
pub(super) fn allowed_origins(manifest: &AppManifest, params: &Params) -> BTreeSet<String> {
    manifest
        .mini_app
        .iter()
        .flat_map(|mini_app| mini_app.origins.iter().enumerate())
        .filter(|(i, _)| params.get(&format!("origin_{i}")).is_some())
        .map(|(_, origin)| origin.clone())
        .collect()
}

/// The text of a held file, or a note saying why it cannot be shown as text.
fn text_of(held: Option<&BundleStore>, file: &BundleFile) -> Result<String, String> {
    let bytes = held
        .ok_or("this node keeps no bundle files")?
        .get(&file.sha256)
        .map_err(|e| format!("refused: {e}"))?
        .ok_or("not fetched yet")?;
    String::from_utf8(bytes).map_err(|_| format!("binary, {} bytes", file.size))
}

fn diff_html(lines: &[Line]) -> String {
    lines
        .iter()
        .map(|line| {
            let (class, mark, text) = match line {
                Line::Same(t) => ("same", ' ', t),
                Line::Removed(t) => ("removed", '-', t),
                Line::Added(t) => ("added", '+', t),
            };
            format!(
                "<span class=\"{class}\">{mark} {}</span>\n",
                escape_html(text)
            )
        })
        .collect()
}

/// `GET /portal/bank/review?app=&version=&path=`: one file of a mini-app version as
/// text, with a line diff against the same path in the version approved last.
pub(super) async fn review_file(
    State(portal): State<Portal>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if portal.console.admin(&headers, Utc::now()).is_none() {
        return refusal(
            StatusCode::UNAUTHORIZED,
            "signed_out",
            "sign in with the admin token first",
        );
    }
    let (Some(app), Some(version), Some(path)) = (
        query.get("app").and_then(|a| Did::parse(a).ok()),
        query.get("version"),
        query.get("path"),
    ) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "give app (a DID), version and path",
        );
    };
    let state = portal.app.service.state();
    let bank = portal.app.service.did();
    let Some(manifest) = state.manifest(&app, version) else {
        return refusal(
            StatusCode::NOT_FOUND,
            "unknown_version",
            "no such app version",
        );
    };
    let Some(file) = manifest.mini_app.as_ref().and_then(|m| m.file(path)) else {
        return refusal(
            StatusCode::NOT_FOUND,
            "unknown_file",
            "no such file in that version",
        );
    };
    let held = portal.app.service.bundles();
    let before = state.last_approved(bank, &app, version);
    let old_file = before.and_then(|m| m.mini_app.as_ref()?.file(path));
    let body = match (text_of(held, file), old_file.map(|old| text_of(held, old))) {
        (Ok(new), Some(Ok(old))) => diff_html(&line_diff(&old, &new)),
        (Ok(new), None) => diff_html(&line_diff("", &new)),
        (Ok(_), Some(Err(why))) => format!("(the approved version's file: {})", escape_html(&why)),
        (Err(why), _) => format!("({})", escape_html(&why)),
    };
    let against = before.map_or_else(
        || "no approved version".to_owned(),
        |m| format!("version {}", escape_html(&m.version)),
    );
    let html = format!(
        r#"<h1>{name} {version}: {path}</h1>
<p>{size} bytes, SHA-256 <code>{sha}</code>; against {against}.</p>
<pre class="diff">{body}</pre>
<p><a href="/portal/bank">Back</a></p>"#,
        name = escape_html(&manifest.name),
        version = escape_html(version),
        path = escape_html(path),
        size = file.size,
        sha = file.sha256,
    );
    page(&layout("Review a mini-app file", &html, None))
}
