//! The worked example a kept demo prints: a TSP's own OAuth flow (FAPI 2.0: PAR, PKCE, `private_key_jwt`, DPoP) against the running consortium, as Budget Buddy at the first bank, approved by the demo's client, with every value it needs.

use std::path::Path;

use consentnet_identity::Did;
use serde_json::{Value, json};

use super::WALLET_PASSPHRASE;

/// The redirect URI every demo app registers: a loopback address, where a developer's
/// client can listen (FAPI 2.0 allows `http` there only).
pub(super) const REDIRECT: &str = "http://127.0.0.1:8765/callback";

/// The example's values, for `--json` and the tests.
pub(super) fn values(nodes: &Value, app: &Did, work: &Path) -> Value {
    let bank = nodes
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["role"] == "bank")
        .cloned()
        .unwrap_or_default();
    json!({
        "bank": bank["name"],
        "issuer": bank["http"],
        "metadata": format!("{}/.well-known/oauth-authorization-server", bank["http"].as_str().unwrap_or_default()),
        "client_id": app,
        "redirect_uri": REDIRECT,
        "app_wallet": work.join("budget-buddy.wallet"),
        "app_label": "app",
        "client_wallet": work.join("client.wallet"),
        "ca_file": work.join("ca").join("ca.pem"),
    })
}

/// The example as the demo prints it.
pub(super) fn text(values: &Value) -> String {
    let v = |name: &str| values[name].as_str().unwrap_or_default().to_owned();
    let cli = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "consentnet".into());
    format!(
        "\nTry a TSP's OAuth flow against it (FAPI 2.0: PAR, PKCE S256, private_key_jwt and DPoP, Ed25519 keys):\n\
         \x20 issuer:       {issuer} ({bank}; trust {ca})\n\
         \x20 metadata:     {metadata}\n\
         \x20 client_id:    {client} (Budget Buddy, approved there for ReadAccountsBasic and ReadBalances)\n\
         \x20 redirect_uri: {redirect}\n\
         \x20 the app's key (a secret): CONSENTNET_WALLET_PASSPHRASE='{passphrase}' {cli} wallet export-jwk --wallet {app_wallet} --label app\n\
         \x20 1. POST the request to the pushed_authorization_request_endpoint, signed in by a client assertion (aud: the issuer)\n\
         \x20 2. open authorization_endpoint?client_id=...&request_uri=... in a browser: the consent screen shows a request id\n\
         \x20 3. the client approves: CONSENTNET_CA_FILE={ca} CONSENTNET_WALLET_PASSPHRASE='{passphrase}' {cli} wallet approve <request id> --bank {issuer} --wallet {client_wallet}\n\
         \x20 4. the browser comes back to the redirect_uri with code, state and iss; POST the code to the token_endpoint with a DPoP proof\n\
         \x20 5. call {issuer}/open-banking/v4.0/aisp/accounts with Authorization: DPoP <token>, a DPoP proof and x-consentnet-app-version: 1.0.0\n\
         \x20 The whole flow with openid-client, from the source tree (tests/oauth-js, after npm ci):\n\
         \x20   NODE_EXTRA_CA_CERTS={ca} CONSENTNET_CA_FILE={ca} CONSENTNET_WALLET_PASSPHRASE='{passphrase}' \\\n\
         \x20   ISSUER={issuer} CLIENT_ID={client} REDIRECT_URI={redirect} CONSENTNET={cli} WALLET={client_wallet} \\\n\
         \x20   CLIENT_JWK=\"$({cli} wallet export-jwk --wallet {app_wallet} --label app 2>/dev/null)\" node tests/oauth-js/client.mjs",
        issuer = v("issuer"),
        bank = v("bank"),
        ca = v("ca_file"),
        metadata = v("metadata"),
        client = v("client_id"),
        redirect = v("redirect_uri"),
        passphrase = WALLET_PASSPHRASE,
        app_wallet = v("app_wallet"),
        client_wallet = v("client_wallet"),
    )
}
