//! The portal's pages for bank clients: sign-in with a DID (the wallet signs the node's challenge), the catalog of apps and what each bank allows, mini-apps run in a sandboxed frame, the dashboard of my consents with their access history and one-click revoke, and the browser-key link page.

mod catalog;
mod dashboard;
mod miniapp_consent;
mod miniapps;
mod signin;

use axum::Router;
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{TimeZone, Utc};
use consentnet_consent_chain::ConsentStatus;
use consentnet_identity::Did;

use crate::portal::state::Portal;
use consentnet_identity::util::escape_html;

/// Access records shown under each consent, newest first.
const ACCESSES_SHOWN: usize = 20;

/// The pages' routes, to merge into the node's router.
pub fn routes(portal: Portal) -> Router {
    Router::new()
        .route("/portal", get(catalog::home))
        .route(
            "/portal/sign-in",
            get(signin::sign_in_page).post(signin::sign_in_answer),
        )
        .route("/portal/sign-out", post(signin::sign_out))
        .route("/portal/catalog", get(catalog::catalog))
        .route("/portal/consents", get(dashboard::dashboard))
        .route("/portal/consents/{id}/revoke", post(dashboard::revoke))
        .route("/portal/link", get(catalog::link_page))
        .route("/portal/wallet.js", get(catalog::wallet_script))
        .route("/portal/apps/{app}/{version}", get(miniapps::host_page))
        .route("/portal/run/{bundle}/{*path}", get(miniapps::run_file))
        .route("/portal/host.js", get(miniapps::host_script))
        .route(
            "/portal/apps/{app}/{version}/consent/prepare",
            post(miniapp_consent::prepare),
        )
        .route(
            "/portal/apps/{app}/{version}/consent/complete",
            post(miniapp_consent::complete),
        )
        .with_state(portal)
}

fn set_cookie(response: &mut Response, issuer: &str, name: &str, value: &str, max_age: i64) {
    crate::portal::html::set_cookie(response, issuer, name, value, "/portal", "Strict", max_age);
}

fn nav(signed_in: Option<&Did>) -> String {
    let who = match signed_in {
        Some(did) => format!(
            r#"<span id="signed-in-as">Signed in as <code>{}</code></span>
<form method="post" action="/portal/sign-out" style="display:inline"><button type="submit" id="sign-out">Sign out</button></form>"#,
            escape_html(did.as_str())
        ),
        None => r#"<a href="/portal/sign-in" id="sign-in-link">Sign in</a>"#.to_owned(),
    };
    format!(
        r#"<nav><a href="/portal">Home</a> · <a href="/portal/catalog">Apps</a> · <a href="/portal/consents">My consents</a> · {who}</nav>"#
    )
}

fn member_name(portal: &Portal, did: &Did) -> String {
    portal
        .app
        .service
        .genesis()
        .members
        .iter()
        .find(|m| &m.did == did)
        .map(|m| m.name.clone())
        .unwrap_or_else(|| did.to_string())
}

fn status_word(status: ConsentStatus) -> &'static str {
    match status {
        ConsentStatus::Active => "active",
        ConsentStatus::NotYetValid => "not yet valid",
        ConsentStatus::Expired => "expired",
        ConsentStatus::Revoked => "revoked",
        ConsentStatus::Unknown => "unknown",
    }
}

fn millis(time: u64) -> String {
    i64::try_from(time)
        .ok()
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}
