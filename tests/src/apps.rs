//! App manifests for the tests: signed by the app's key, published through a member's operator surface, with or without a mini-app's files.

use crate::{NodeProcess, http_post_json};

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
    signed_manifest(app, version, redirect, None)
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
    )
}

fn signed_manifest(
    app: &consentnet_identity::KeyPair,
    version: &str,
    redirect: &str,
    mini_app: Option<consentnet_consent_chain::miniapp::MiniApp>,
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
        requested_permissions: std::collections::BTreeSet::from([
            consentnet_identity::Permission::ReadAccountsBasic,
        ]),
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
