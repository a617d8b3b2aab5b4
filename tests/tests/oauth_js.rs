//! A TSP's OAuth library from another ecosystem, used unchanged: openid-client (npm, pinned; a certified FAPI 2.0 relying party on oauth4webapi) runs discovery, PAR, the consent screen, the token, the unified API call, the grant query and revocation, the pushed notification and the refused call against a real bank node that requires DPoP nonces.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use consentnet_identity::{KeyPair, b64url};
use consentnet_tests::wallet::{PASSPHRASE, linked_wallet};
use consentnet_tests::{
    Consortium, NodeProcess, approval_body, bin, free_port, http_post_json, manifest_with_events,
    node_key, publish,
};
use serde_json::{Value, json};

const REDIRECT: &str = "https://budget.example/callback";

fn client_dir() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("oauth-js")
}

/// The public JWK of an Ed25519 key.
fn public_jwk(key: &KeyPair) -> Value {
    json!({ "kty": "OKP", "crv": "Ed25519", "x": b64url(key.did().public_key().as_bytes()) })
}

#[test]
fn openid_client_runs_the_whole_flow_unchanged_against_a_bank_requiring_dpop_nonces() {
    if std::env::var_os("CONSENTNET_NO_NODE").is_some() {
        eprintln!("Node.js is not installed: the openid-client flow was not run");
        return;
    }
    assert!(
        client_dir().join("node_modules").is_dir(),
        "run `npm ci` in tests/oauth-js first (scripts/test does)"
    );
    let consortium = Consortium::create(&[("bank", "FAPI Bank")]);
    let node = &consortium.nodes[0];
    consentnet_tests::forms::enable_portal(node);
    let config = node.dir.join("node.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("require_dpop_nonce = false", "require_dpop_nonce = true"),
    )
    .unwrap();
    let process = NodeProcess::start(node, &[], Duration::from_secs(60));
    let app = KeyPair::generate();
    let events_port = free_port();
    let events = format!("http://127.0.0.1:{events_port}/events");
    let (status, body) = publish(
        &process,
        &manifest_with_events(&app, "1.0.0", REDIRECT, &events),
    );
    assert_eq!(status, 201, "{body}");
    let bank = node_key(node);
    let (status, body) = http_post_json(
        &format!("{}/v1/apps/decisions", process.http_url),
        &approval_body(&bank, app.did()),
    );
    assert_eq!(status, 201, "{body}");
    let account = consentnet_tests::sandbox_account();
    let (_wallet_dir, wallet) = linked_wallet(node, &process, &account);
    let mut jwk = public_jwk(&app);
    jwk["d"] = json!(b64url(&app.secret_bytes()[..]));

    let output = Command::new("node")
        .arg(client_dir().join("client.mjs"))
        .env("ISSUER", &process.http_url)
        .env("CLIENT_ID", app.did().as_str())
        .env("CLIENT_JWK", jwk.to_string())
        .env("REDIRECT_URI", REDIRECT)
        .env("EVENTS_PORT", events_port.to_string())
        .env("CONSENTNET", bin("consentnet"))
        .env("WALLET", &wallet)
        .env("CONSENTNET_WALLET_PASSPHRASE", PASSPHRASE)
        .output()
        .expect("node runs (scripts/test sets CONSENTNET_NO_NODE=1 when Node.js is missing)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the openid-client flow failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["served"], 200, "{summary}");
    assert_eq!(summary["told_by"], "push", "{summary}");
    assert_eq!(
        summary["event"],
        "urn:uk:org:openbanking:events:consent-authorization-revoked"
    );
    assert_eq!(summary["refused"], 401, "{summary}");
    assert_eq!(summary["error"], "invalid_token", "{summary}");
}
