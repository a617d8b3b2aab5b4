//! The three mini-apps the demo ships, each run in a bank's portal in real headless Chromium at a phone's size: the credit check works out income, spending and an affordable repayment, the investment adviser splits cash above a buffer and invests by a payment under a payment consent with limits, and Cardwise recommends a card from spending categories, each from the sandbox bank's data under a consent signed in the browser. Each page is saved as a screenshot under `target/screenshots/`.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use consentnet_client::bundle;
use consentnet_client::commands::{app_decision, publish};
use consentnet_client::demo::miniapps::{Bundle, CARDS, CREDIT_CHECK, INVEST};
use consentnet_client::node_api::NodeClient;
use consentnet_consent_chain::event::{AppAction, AppManifest, Platform};
use consentnet_identity::{KeyPair, Permission};
use consentnet_tests::forms::encode;
use consentnet_tests::webdriver::Browser;
use consentnet_tests::{
    NodeProcess, bank_with_portal_and_tsp, link_browser_key, node_key, wait_for,
};

const DEADLINE: Duration = Duration::from_secs(60);

/// Publishes `bundle` as `app`'s 1.0.0 through `tsp`, asking for `permissions`, and has
/// `bank` approve exactly those.
fn publish_approved(
    tsp: &NodeProcess,
    bank: &NodeProcess,
    bank_key: &KeyPair,
    app: &KeyPair,
    bundle: &Bundle,
    permissions: &[Permission],
) {
    let files = bundle.files();
    let operator = NodeClient::new(&tsp.operator_url).unwrap();
    bundle::upload(&operator, None, &files).unwrap();
    let mini_app = bundle::mini_app(&files, Vec::new());
    let manifest = AppManifest {
        app: app.did().clone(),
        name: "Seed app".into(),
        description: "One of the demo's mini-apps".into(),
        version: "1.0.0".into(),
        platform: Platform::Web,
        redirect_uris: vec![],
        events_uri: None,
        requested_permissions: permissions.iter().copied().collect(),
        bundle_hash: mini_app.index_hash().to_string(),
        mini_app: Some(Box::new(mini_app)),
    };
    publish(&operator, None, app, manifest).unwrap();
    let approve = AppAction::Approve {
        permissions: permissions.iter().copied().collect(),
        rate_limit: None,
        origins: Default::default(),
    };
    let body = app_decision(bank_key, app.did().clone(), "1.0.0", approve).unwrap();
    NodeClient::new(&bank.http_url)
        .unwrap()
        .post("/v1/apps/decisions", &body)
        .unwrap();
}

/// Opens `app` in the portal, approves its consent the first time, presses `button`
/// inside it and waits for `result` to show; answers that element's text.
fn run(browser: &Browser, bank: &NodeProcess, app: &KeyPair, button: &str, result: &str) -> String {
    browser.goto(&format!(
        "{}/portal/apps/{}/1.0.0",
        bank.http_url,
        encode(app.did().as_str())
    ));
    browser.enter_frame("#miniapp");
    browser.wait_until("the app's page", DEADLINE, |b| b.find(button).is_some());
    browser.click(button);
    browser.leave_frame();
    browser.wait_until("the consent screen", DEADLINE, |b| {
        b.attribute("#consent-screen", "hidden").is_none()
    });
    browser.click("#consent-approve");
    browser.enter_frame("#miniapp");
    browser.wait_until(&format!("{result} to show"), DEADLINE, |b| {
        b.attribute(result, "hidden").is_none()
            || !b.text("#status").is_empty() && b.text("#status").starts_with("Refused")
    });
    let shown = browser.text(result);
    let status = browser.text("#status");
    browser.leave_frame();
    assert!(!status.starts_with("Refused"), "{status}");
    shown
}

#[test]
fn the_demo_s_three_mini_apps_work_out_their_advice_from_the_bank_s_data() {
    let (consortium, bank, tsp) = bank_with_portal_and_tsp();
    let bank_key = node_key(&consortium.nodes[0]);
    let reads = [
        Permission::ReadAccountsBasic,
        Permission::ReadBalances,
        Permission::ReadTransactionsDetail,
        Permission::ReadTransactionsCredits,
        Permission::ReadTransactionsDebits,
    ];
    let (credit, invest, cards) = (
        KeyPair::generate(),
        KeyPair::generate(),
        KeyPair::generate(),
    );
    publish_approved(&tsp, &bank, &bank_key, &credit, &CREDIT_CHECK, &reads);
    let invests = [reads[0], reads[1], Permission::CreateDomesticPayments];
    publish_approved(&tsp, &bank, &bank_key, &invest, &INVEST, &invests);
    publish_approved(&tsp, &bank, &bank_key, &cards, &CARDS, &reads);
    // Eight distinct files: three pages, three scripts, the SDK and the stylesheet.
    wait_for("the bank to fetch the three apps", DEADLINE, || {
        (bank.metric("consentnet_bundle_files_fetched_total") == 8).then_some(())
    });

    let browser = Browser::start("miniapp-seeds");
    browser.set_window_size(390, 844);
    link_browser_key(&browser, &consortium, &bank);

    let verdict = run(&browser, &bank, &credit, "#check", "#result");
    assert!(verdict.contains("Monthly income"), "{verdict}");
    assert!(
        verdict.contains("a month") || verdict.contains("cannot offer"),
        "{verdict}"
    );
    browser.save_screenshot("credit-check");
    let advice = run(&browser, &bank, &invest, "#advise", "#advice");
    assert!(advice.contains("Cash now"), "{advice}");
    // Investing is a payment under a consent of its own, within the limits the client sets.
    browser.enter_frame("#miniapp");
    browser.click("#invest-now");
    browser.leave_frame();
    browser.wait_until("the payment consent screen", DEADLINE, |b| {
        b.attribute("#payment-screen", "hidden").is_none()
    });
    browser.click("#payment-approve");
    browser.enter_frame("#miniapp");
    browser.wait_until("the payment", DEADLINE, |b| {
        !b.text("#paid").starts_with("Asking")
    });
    let paid = browser.text("#paid");
    assert!(paid.starts_with("Paid £100.00 into your ISA"), "{paid}");
    browser.leave_frame();
    browser.save_screenshot("invest");
    let card = run(&browser, &bank, &cards, "#recommend", "#result");
    assert!(card.contains("Recommended:"), "{card}");
    assert!(
        card.contains("Groceries") || card.contains("Bills") || card.contains("Fuel"),
        "{card}"
    );
    browser.save_screenshot("cards");
}
