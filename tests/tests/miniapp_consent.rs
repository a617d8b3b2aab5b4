//! A mini-app reading the client's data in real headless Chromium against real node processes: the first call brings up the host's consent screen, the client's browser key signs a consent whose proof key is made for the app in this browser, balances come back through the bridge, an operation the bank does not allow is refused by the bridge, and suspending the version stops the running app's next call.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use consentnet_consent_chain::event::{AppAction, AppDecision};
use consentnet_identity::KeyPair;
use consentnet_tests::webdriver::Browser;
use consentnet_tests::{
    bank_with_portal_and_tsp, decision_body, http_post_json, link_browser_key, node_key,
    publish_mini_app, wait_for,
};

const DEADLINE: Duration = Duration::from_secs(60);

const SDK: &[u8] = include_bytes!("../../client/sdk/consentnet-miniapp.js");

const INDEX: &[u8] = br#"<!doctype html><meta charset="utf-8"><title>Reader</title>
<p>accounts: <span id="accounts">...</span></p>
<p>balance: <span id="balance">...</span></p>
<p>refused: <span id="error"></span></p>
<button id="again">Read again</button> <button id="transactions">Transactions</button>
<script src="consentnet-miniapp.js"></script>
<script src="reader.js"></script>
"#;

const READER: &[u8] = br#""use strict";
const show = (id, text) => { document.getElementById(id).textContent = text; };
async function read() {
  try {
    const list = await consentnet.accounts();
    const ids = list.Data.Account.map((a) => a.AccountId);
    show("accounts", ids.join(","));
    const balances = await consentnet.balances(ids[0]);
    show("balance", balances.Data.Balance[0].Amount.Amount);
    show("error", "none");
  } catch (e) { show("error", e.code); }
}
document.getElementById("again").addEventListener("click", read);
document.getElementById("transactions").addEventListener("click", () =>
  consentnet.transactions(document.getElementById("accounts").textContent, "2026-01-01", "2026-12-31")
    .then(() => show("error", "none"), (e) => show("error", e.code)));
read();
"#;

#[test]
fn a_mini_app_reads_balances_under_a_consent_signed_in_the_browser_and_stops_when_suspended() {
    let (consortium, bank, tsp) = bank_with_portal_and_tsp();
    let app = KeyPair::generate();
    let files: [(&str, &[u8]); 3] = [
        ("consentnet-miniapp.js", SDK),
        ("index.html", INDEX),
        ("reader.js", READER),
    ];
    publish_mini_app(&tsp, &app, "1.0.0", &files, &[]);
    let bank_key = node_key(&consortium.nodes[0]);
    let decisions = format!("{}/v1/apps/decisions", bank.http_url);
    let (status, body) = http_post_json(&decisions, &decision_body(&bank_key, app.did(), "1.0.0"));
    assert_eq!(status, 201, "{body}");
    wait_for("the bank to fetch the app", DEADLINE, || {
        (bank.metric("consentnet_bundle_files_fetched_total") == 3).then_some(())
    });

    // The client links this browser's key to an account with the bank's one-time code.
    let browser = Browser::start("miniapp-consent");
    let account = link_browser_key(&browser, &consortium, &bank);

    // The catalog opens the approved mini-app; its first call brings up the consent
    // screen, and approving it lets the call on.
    browser.goto(&format!("{}/portal/catalog", bank.http_url));
    browser.click("a.open-mini-app");
    browser.wait_until("the consent screen", DEADLINE, |b| {
        b.attribute("#consent-screen", "hidden").is_none()
    });
    assert!(
        browser
            .text("#consent-screen")
            .contains("see your balances"),
        "{}",
        browser.text("#consent-screen")
    );
    browser.click("#consent-approve");
    browser.enter_frame("#miniapp");
    browser.wait_until("the balance", DEADLINE, |b| b.text("#balance") != "...");
    assert_eq!(browser.text("#accounts"), account);
    assert_eq!(browser.text("#error"), "none");
    assert!(
        browser.text("#balance").parse::<f64>().is_ok(),
        "{}",
        browser.text("#balance")
    );

    // Transactions are not what the bank allows this version: the bridge refuses.
    browser.click("#transactions");
    browser.wait_until("the refusal", DEADLINE, |b| b.text("#error") != "none");
    assert_eq!(browser.text("#error"), "operation_not_allowed");

    // Suspended by the bank, the running app's next call is refused at once.
    let decision = AppDecision {
        bank: bank_key.did().clone(),
        app: app.did().clone(),
        version: "1.0.0".into(),
        action: AppAction::Suspend,
        time: u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap(),
    };
    let mut body = serde_json::to_value(consentnet_consent_chain::Event::app_decided(
        &bank_key, decision,
    ))
    .unwrap();
    body.as_object_mut().unwrap().remove("type");
    let (status, answer) = http_post_json(&decisions, &body);
    assert_eq!(status, 201, "{answer}");
    browser.click("#again");
    browser.wait_until("the suspension", DEADLINE, |b| b.text("#error") != "none");
    assert_eq!(browser.text("#error"), "app_suspended");
}
