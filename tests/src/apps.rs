//! App manifests for the tests: signed by the app's key, published through a member's operator surface, with or without a mini-app's files.

use consentnet_consent_chain::miniapp::{BundleFile, MiniApp};
use consentnet_identity::{Hash32, KeyPair};

use crate::{NodeProcess, http_post_json, http_put_bytes};

/// Publishes a signed manifest (`manifest_body`) through `node`'s operator surface, the
/// only place a manifest enters the log; answers the status and body.
pub fn publish(node: &NodeProcess, manifest: &serde_json::Value) -> (u16, serde_json::Value) {
    http_post_json(&format!("{}/v1/apps", node.operator_url), manifest)
}

/// The body of `POST /v1/apps`: a manifest of `app` at `version`, signed by the app.
pub fn manifest_body(app: &consentnet_identity::KeyPair, version: &str) -> serde_json::Value {
    manifest_with_redirect(app, version, "https://budget.example/callback")
}

/// [`manifest_body`] registering `redirect` as the app's redirect URI.
pub fn manifest_with_redirect(
    app: &consentnet_identity::KeyPair,
    version: &str,
    redirect: &str,
) -> serde_json::Value {
    signed_manifest(app, version, redirect, None, None)
}

/// [`manifest_with_redirect`] also registering `events` as the app's event push endpoint.
pub fn manifest_with_events(
    app: &consentnet_identity::KeyPair,
    version: &str,
    redirect: &str,
    events: &str,
) -> serde_json::Value {
    signed_manifest(app, version, redirect, None, Some(events))
}

/// The body of `POST /v1/apps` for a mini-app version made of `mini_app`'s files.
pub fn mini_app_manifest(
    app: &consentnet_identity::KeyPair,
    version: &str,
    mini_app: consentnet_consent_chain::miniapp::MiniApp,
) -> serde_json::Value {
    signed_manifest(
        app,
        version,
        "https://budget.example/callback",
        Some(mini_app),
        None,
    )
}

fn signed_manifest(
    app: &consentnet_identity::KeyPair,
    version: &str,
    redirect: &str,
    mini_app: Option<consentnet_consent_chain::miniapp::MiniApp>,
    events: Option<&str>,
) -> serde_json::Value {
    use consentnet_consent_chain::event::{AppManifest, Platform};
    let bundle_hash = mini_app
        .as_ref()
        .map_or_else(|| "ab".repeat(32), |m| m.index_hash().to_string());
    let manifest = AppManifest {
        app: app.did().clone(),
        name: "Budget Buddy".into(),
        description: "Shows where the money goes".into(),
        version: version.into(),
        platform: Platform::Web,
        redirect_uris: vec![redirect.into()],
        events_uri: events.map(str::to_owned),
        // A mini-app asks for accounts and balances; other test apps for accounts only.
        requested_permissions: if mini_app.is_some() {
            crate::balance_permissions()
        } else {
            std::collections::BTreeSet::from([consentnet_identity::Permission::ReadAccountsBasic])
        },
        bundle_hash,
        mini_app: mini_app.map(Box::new),
    };
    let mut body = serde_json::to_value(consentnet_consent_chain::Event::app_published(
        app, manifest,
    ))
    .expect("a manifest serializes");
    if let Some(object) = body.as_object_mut() {
        object.remove("type");
    }
    body
}

/// A mini-app section naming `files` (path and bytes, in path order) and asking for
/// `origins`.
pub fn mini_app_of(files: &[(&str, &[u8])], origins: &[&str]) -> MiniApp {
    MiniApp {
        files: files
            .iter()
            .map(|(path, bytes)| BundleFile {
                path: (*path).into(),
                size: bytes.len() as u64,
                sha256: Hash32::of(bytes),
            })
            .collect(),
        origins: origins.iter().map(|o| (*o).to_owned()).collect(),
    }
}

/// Uploads `files` to `tsp`'s operator surface and publishes them as `app`'s
/// `version`, asking for `origins`.
pub fn publish_mini_app(
    tsp: &NodeProcess,
    app: &KeyPair,
    version: &str,
    files: &[(&str, &[u8])],
    origins: &[&str],
) {
    for (_, bytes) in files {
        let url = format!(
            "{}/v1/bundles/files/{}",
            tsp.operator_url,
            Hash32::of(bytes)
        );
        let (status, body) = http_put_bytes(&url, bytes);
        assert!(status == 201 || status == 200, "{body}");
    }
    let manifest = mini_app_manifest(app, version, mini_app_of(files, origins));
    let (status, body) = publish(tsp, &manifest);
    assert_eq!(status, 201, "{body}");
}

/// A bank with its portal on and a TSP, both running and connected.
pub fn bank_with_portal_and_tsp() -> (crate::Consortium, NodeProcess, NodeProcess) {
    let deadline = std::time::Duration::from_secs(60);
    let consortium = crate::Consortium::create(&[("bank", "Bank"), ("tsp", "TSP")]);
    crate::forms::enable_portal(&consortium.nodes[0]);
    let bank = consortium.start(0, deadline);
    let tsp = consortium.start(1, deadline);
    crate::wait_connected(&[&bank, &tsp], 1, deadline);
    (consortium, bank, tsp)
}

/// Links a new key kept in `browser` at `bank` (member 0 of `consortium`) to the sandbox
/// bank's first account, with a one-time code from the bank's admin API, through the
/// portal's link page; answers the account.
pub fn link_browser_key(
    browser: &crate::webdriver::Browser,
    consortium: &crate::Consortium,
    bank: &NodeProcess,
) -> String {
    let account = consentnet_bank_adapter::sandbox::SandboxBank::seeded(1, chrono::Utc::now())
        .account_ids()[0]
        .0
        .clone();
    let (status, code) = crate::http_post_json_with(
        &format!("{}/v1/admin/link-codes", bank.operator_url),
        &[("x-admin-token", &crate::admin_token(&consortium.nodes[0]))],
        &serde_json::json!({ "customer": "c-1", "accounts": [account] }),
    );
    assert_eq!(status, 201, "{code}");
    browser.goto(&format!("{}/portal/link", bank.http_url));
    browser.type_into("#link-code", code["code"].as_str().unwrap_or_default());
    browser.click("#browser-key-button");
    browser.wait_until("the link", std::time::Duration::from_secs(60), |b| {
        b.text("#browser-key-status").starts_with("Linked")
    });
    account
}
