//! A mini-app in the bank's portal, in real headless Chromium against real node processes: an approved version loads in its sandboxed frame and reaches the host through the bridge, while `fetch`, `WebSocket`, the host's cookies, storage and DOM, and navigating the top window are each tried from inside it and blocked; an unapproved version does not load, and a file altered on the bank's disk after approval is not run.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use consentnet_identity::{Hash32, KeyPair};
use consentnet_tests::forms::encode;
use consentnet_tests::webdriver::Browser;
use consentnet_tests::{
    NodeProcess, bank_with_portal_and_tsp, decision_body, http_get, http_post_json, mini_app_of,
    node_key, publish_mini_app, wait_for,
};

const DEADLINE: Duration = Duration::from_secs(60);

const SDK: &[u8] = include_bytes!("../../client/sdk/consentnet-miniapp.js");

const INDEX: &[u8] = br#"<!doctype html><meta charset="utf-8"><title>Probe</title>
<ul>
<li>fetch: <span id="fetch">...</span></li>
<li>websocket: <span id="websocket">...</span></li>
<li>cookie: <span id="cookie">...</span></li>
<li>storage: <span id="storage">...</span></li>
<li>host DOM: <span id="dom">...</span></li>
<li>top: <span id="top">...</span></li>
<li>bridge: <span id="bridge">...</span></li>
<li>violations: <span id="violations"></span></li>
</ul>
<p id="loaded"></p>
<script src="consentnet-miniapp.js"></script>
<script src="probe.js"></script>
<script src="after.js"></script>
"#;

/// Tries each way out of the sandbox and writes down what happened.
const PROBE: &[u8] = br#""use strict";
const show = (id, text) => { document.getElementById(id).textContent = text; };
const violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  violations.push(e.effectiveDirective);
  show("violations", violations.join(" "));
});
const attempt = (id, action) => {
  try { const what = action(); show(id, "open: " + what); }
  catch (e) { show(id, "blocked: " + e.name); }
};
attempt("cookie", () => document.cookie);
attempt("storage", () => window.localStorage.getItem("anything"));
attempt("dom", () => window.parent.document.title);
attempt("top", () => { window.top.location.href = "http://127.0.0.1:9/escaped"; return "asked"; });
fetch(new URL("/healthz", document.baseURI).href)
  .then(() => show("fetch", "open"), (e) => show("fetch", "blocked: " + e.name));
try {
  const socket = new WebSocket("ws://" + new URL(document.baseURI).host + "/");
  socket.onopen = () => show("websocket", "open");
  socket.onerror = () => show("websocket", "blocked: error");
} catch (e) { show("websocket", "blocked: " + e.name); }
consentnet.info().then((info) => show("bridge", info.app), (e) => show("bridge", "refused: " + e.code));
"#;

const AFTER: &[u8] = b"document.getElementById('loaded').textContent = 'loaded';";

fn files() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("after.js", AFTER),
        ("consentnet-miniapp.js", SDK),
        ("index.html", INDEX),
        ("probe.js", PROBE),
    ]
}

fn mini_app(files: &[(&str, &[u8])]) -> consentnet_consent_chain::miniapp::MiniApp {
    mini_app_of(files, &[])
}

fn publish_probe(tsp: &NodeProcess, app: &KeyPair, version: &str, files: &[(&str, &[u8])]) {
    publish_mini_app(tsp, app, version, files, &[]);
}

#[test]
fn an_approved_mini_app_runs_sandboxed_and_every_way_out_is_blocked() {
    let (consortium, bank, tsp) = bank_with_portal_and_tsp();
    let app = KeyPair::generate();
    publish_probe(&tsp, &app, "1.0.0", &files());
    let (status, body) = http_post_json(
        &format!("{}/v1/apps/decisions", bank.http_url),
        &decision_body(&node_key(&consortium.nodes[0]), app.did(), "1.0.0"),
    );
    assert_eq!(status, 201, "{body}");
    wait_for("the bank to fetch the probe", DEADLINE, || {
        (bank.metric("consentnet_bundle_files_fetched_total") == 4).then_some(())
    });

    let host = format!(
        "{}/portal/apps/{}/1.0.0",
        bank.http_url,
        encode(app.did().as_str())
    );
    let browser = Browser::start("miniapp-sandbox");
    browser.goto(&host);
    browser.enter_frame("#miniapp");
    browser.wait_until("the probe to finish", DEADLINE, |b| {
        ["fetch", "websocket", "bridge"]
            .iter()
            .all(|id| b.text(&format!("#{id}")) != "...")
    });
    assert_eq!(browser.text("#bridge"), app.did().as_str());
    assert_eq!(browser.text("#cookie"), "blocked: SecurityError");
    assert_eq!(browser.text("#storage"), "blocked: SecurityError");
    assert_eq!(browser.text("#dom"), "blocked: SecurityError");
    assert!(
        browser.text("#fetch").starts_with("blocked"),
        "{}",
        browser.text("#fetch")
    );
    assert!(browser.text("#websocket").starts_with("blocked"));
    // Both were stopped by the frame's policy, not by the network.
    let violations = browser.text("#violations");
    assert_eq!(violations.matches("connect-src").count(), 2, "{violations}");
    browser.leave_frame();
    assert_eq!(browser.url(), host, "the top window was not navigated");

    // A version the bank has not approved does not load, nor do its files.
    let mut unapproved = files();
    unapproved[0].1 = b"document.title = 'v2';";
    publish_probe(&tsp, &app, "2.0.0", &unapproved);
    wait_for(
        "the bank to fetch version 2.0.0's new file",
        DEADLINE,
        || (bank.metric("consentnet_bundle_files_fetched_total") == 5).then_some(()),
    );
    let (status, page) = http_get(&format!(
        "{}/portal/apps/{}/2.0.0",
        bank.http_url,
        encode(app.did().as_str())
    ));
    assert_eq!(status, 403);
    assert!(page.contains("data-error=\"not_approved\""), "{page}");
    let v2 = mini_app(&unapproved).index_hash();
    let (status, _) = http_get(&format!("{}/portal/run/{v2}/index.html", bank.http_url));
    assert_eq!(status, 404);

    // A file altered on the bank's disk after approval is refused, and the app's
    // script does not run (the page's other scripts still do).
    let stored = consortium.nodes[0]
        .dir
        .join("bundles")
        .join(Hash32::of(PROBE).to_string());
    std::fs::write(&stored, b"document.body.textContent = 'tampered';").unwrap();
    let v1 = mini_app(&files()).index_hash();
    let (status, page) = http_get(&format!("{}/portal/run/{v1}/probe.js", bank.http_url));
    assert_eq!(status, 502);
    assert!(page.contains("bundle_file_altered"), "{page}");
    browser.goto(&host);
    browser.enter_frame("#miniapp");
    browser.wait_until("the page's other scripts to run", DEADLINE, |b| {
        b.text("#loaded") == "loaded"
    });
    assert_eq!(
        browser.text("#fetch"),
        "...",
        "the altered script did not run"
    );
}
