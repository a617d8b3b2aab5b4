//! Mini-apps in the portal: the host page that runs an approved version in a sandboxed, opaque-origin iframe with the bridge script, and the bundle's files served to that frame only for a version this bank approves, each checked against its hash, under a CSP that allows no network but the origins the bank approved.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use consentnet_consent_chain::State as LogState;
use consentnet_consent_chain::event::{AppAction, AppManifest};
use consentnet_consent_chain::miniapp::ENTRY_PAGE;
use consentnet_identity::util::escape_html;
use consentnet_identity::{Did, Permission};
use serde_json::json;

use super::miniapp_consent::{CONSENT_DAYS, consented_permissions};
use crate::core::bundles::BundleError;
use crate::portal::html::{layout, page_with_status, plain_words, refusal_page};
use crate::portal::state::Portal;

/// The host page's policy: its own scripts, frames of its own origin (the bundle's
/// files), and calls to its own origin (the unified API).
const HOST_CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; frame-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    refusal_page(
        status,
        "Cannot open this app",
        code,
        message,
        "<p><a href=\"/portal/catalog\">Back to the apps</a></p>",
    )
}

/// Why a page is refused: status, code and message.
type Refused = (StatusCode, &'static str, &'static str);

/// An app version this bank approves, with the origins it allows; `Err` says why not.
fn approved<'a>(
    state: &'a LogState,
    bank: &Did,
    app: &Did,
    version: &str,
) -> Result<(&'a AppManifest, &'a AppAction), Refused> {
    let Some(manifest) = state.manifest(app, version) else {
        return Err((
            StatusCode::NOT_FOUND,
            "unknown_version",
            "no such app version is published",
        ));
    };
    if manifest.mini_app.is_none() {
        return Err((
            StatusCode::NOT_FOUND,
            "not_a_mini_app",
            "this app version does not run in the portal",
        ));
    }
    match state.app_action(bank, app, version) {
        Some(action @ AppAction::Approve { .. }) => Ok((manifest, action)),
        Some(AppAction::Suspend) => Err((
            StatusCode::FORBIDDEN,
            "app_suspended",
            "this bank has suspended this app version",
        )),
        None => Err((
            StatusCode::FORBIDDEN,
            "not_approved",
            "this bank has not approved this app version",
        )),
    }
}

/// The screen a payment consent is asked on: the client sets its limits.
const PAYMENT_SCREEN: &str = r#"<section id="payment-screen" hidden>
<h2>The app asks to make payments from your account at this bank</h2>
<p>Each payment is made only when the app asks, within these limits, for 90 days or until you revoke it (My consents):</p>
<label>At most per payment (GBP) <input id="limit-payment" type="number" min="1" step="1" value="250"></label><br>
<label>At most per month (GBP) <input id="limit-month" type="number" min="1" step="1" value="1000"></label><br>
<button type="button" id="payment-approve">Approve with this browser's key</button>
<button type="button" id="payment-decline">Not now</button>
<p id="payment-status" role="status"></p>
</section>"#;

/// `GET /portal/apps/{app}/{version}`: the host page of an approved mini-app version.
pub(super) async fn host_page(
    State(portal): State<Portal>,
    Path((app, version)): Path<(String, String)>,
) -> Response {
    let Ok(app) = Did::parse(&app) else {
        return refusal(StatusCode::BAD_REQUEST, "invalid_app", "not an app's DID");
    };
    let state = portal.app.service.state();
    let bank = portal.app.service.did();
    let (manifest, action) = match approved(&state, bank, &app, &version) {
        Ok(found) => found,
        Err((status, code, message)) => return refusal(status, code, message),
    };
    let AppAction::Approve { permissions, .. } = action else {
        unreachable!("approved() answers approvals only")
    };
    let operations: Vec<&str> = permissions.iter().map(|p| p.as_str()).collect();
    let granted: String = consented_permissions(manifest, permissions)
        .iter()
        .map(|p| format!("<li>{}</li>", escape_html(plain_words(*p))))
        .collect();
    let body = format!(
        r#"<h1>{name} <small>{version}</small></h1>
<p>{description}</p>
<div id="host" data-app="{app}" data-version="{version}" data-node="{node}" data-operations="{operations}">
<p id="host-status" role="status"></p>
<section id="consent-screen" hidden>
<h2>{name} asks to use your accounts at this bank</h2>
<p>If you agree, it will be able to:</p>
<ul>{granted}</ul>
<p>On every account linked to this browser's key here, for {CONSENT_DAYS} days, until you revoke it (My consents). Its calls are signed by a key made for this app in this browser; the app never sees it, nor your own key.</p>
<button type="button" id="consent-approve">Approve with this browser's key</button>
<button type="button" id="consent-decline">Not now</button>
<p id="consent-status" role="status"></p>
</section>
{payment_screen}
<iframe id="miniapp" title="{name}" sandbox="allow-scripts" referrerpolicy="no-referrer" src="/portal/run/{bundle}/{ENTRY_PAGE}" style="width:100%;height:70vh;border:1px solid #ccc"></iframe>
</div>
<script src="/portal/wallet.js"></script>
<script src="/portal/host.js"></script>"#,
        node = escape_html(bank.as_str()),
        payment_screen = if permissions.contains(&Permission::CreateDomesticPayments) {
            PAYMENT_SCREEN
        } else {
            ""
        },
        name = escape_html(&manifest.name),
        version = escape_html(&manifest.version),
        description = escape_html(&manifest.description),
        app = escape_html(app.as_str()),
        operations = escape_html(&json!(operations).to_string()),
        bundle = escape_html(&manifest.bundle_hash),
    );
    let mut response = page_with_status(StatusCode::OK, &layout(&manifest.name, &body, None));
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(HOST_CSP),
    );
    response
}

/// The `Content-Type` of a bundle file, by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The policy a bundle's files run under: sandboxed with scripts only (an opaque
/// origin, whoever opens it), loading only from the bundle itself, and no network but
/// the origins the bank approved for this version.
fn frame_csp(issuer: &str, bundle: &str, origins: &[&str]) -> String {
    let base = format!("{issuer}/portal/run/{bundle}/");
    let connect = if origins.is_empty() {
        "'none'".to_owned()
    } else {
        origins.join(" ")
    };
    let issuer_origin = issuer.trim_end_matches('/');
    format!(
        "sandbox allow-scripts; default-src 'none'; script-src {base}; style-src {base} 'unsafe-inline'; img-src {base} data:; font-src {base}; media-src {base}; connect-src {connect}; form-action 'none'; base-uri 'none'; frame-src 'none'; worker-src 'none'; frame-ancestors {issuer_origin}"
    )
}

/// `GET /portal/run/{bundle}/{path}`: one file of an approved mini-app version, its
/// bytes checked against the hash its manifest names.
pub(super) async fn run_file(
    State(portal): State<Portal>,
    Path((bundle, path)): Path<(String, String)>,
) -> Response {
    let state = portal.app.service.state();
    let bank = portal.app.service.did();
    // The approved version with this bundle, found without copying the catalog.
    let found = state.manifests().find_map(|manifest| {
        let action = state.app_action(bank, &manifest.app, &manifest.version);
        match action {
            Some(AppAction::Approve { origins, .. }) if manifest.bundle_hash == bundle => {
                Some((manifest, origins))
            }
            _ => None,
        }
    });
    let Some((manifest, approved_origins)) = found else {
        return refusal(
            StatusCode::NOT_FOUND,
            "not_approved",
            "no app version this bank approves has this bundle",
        );
    };
    let Some(file) = manifest.mini_app.as_ref().and_then(|m| m.file(&path)) else {
        return refusal(
            StatusCode::NOT_FOUND,
            "unknown_file",
            "no such file in the bundle",
        );
    };
    let bytes = match portal
        .app
        .service
        .bundles()
        .map(|store| store.get(&file.sha256))
    {
        Some(Ok(Some(bytes))) => bytes,
        Some(Ok(None)) | None => {
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "bundle_not_fetched",
                "this bank has not fetched this file yet; try again shortly",
            );
        }
        Some(Err(error @ BundleError::Mismatch { .. })) => {
            tracing::warn!(%bundle, path, %error, "a bundle file was altered on disk; not served");
            return refusal(
                StatusCode::BAD_GATEWAY,
                "bundle_file_altered",
                "this file is not the one the bank approved; it is not run",
            );
        }
        Some(Err(error)) => {
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "bundle_unreadable",
                &error.to_string(),
            );
        }
    };
    // Only origins the bank approved that the manifest asked for.
    let asked = manifest.mini_app.as_ref().map(|m| &m.origins);
    let origins: Vec<&str> = approved_origins
        .iter()
        .filter(|o| asked.is_some_and(|asked| asked.contains(o)))
        .map(String::as_str)
        .collect();
    let csp = frame_csp(&portal.server.issuer, &bundle, &origins);
    let headers = [
        (header::CONTENT_TYPE, content_type(&path).to_owned()),
        (header::CONTENT_SECURITY_POLICY, csp),
        (header::CACHE_CONTROL, "no-store".to_owned()),
        (header::REFERRER_POLICY, "no-referrer".to_owned()),
    ];
    (StatusCode::OK, headers, bytes).into_response()
}

/// `GET /portal/host.js`: the host's bridge between the mini-app frame and the bank.
pub(super) async fn host_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../../../assets/host.js"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_may_load_only_its_bundle_and_reach_only_approved_origins() {
        let csp = frame_csp("https://bank.example", "ab", &[]);
        assert!(csp.starts_with("sandbox allow-scripts;"), "{csp}");
        assert!(csp.contains("script-src https://bank.example/portal/run/ab/;"));
        assert!(csp.contains("connect-src 'none';"));
        assert!(csp.contains("frame-ancestors https://bank.example"));
        let csp = frame_csp("https://bank.example", "ab", &["https://api.x.example"]);
        assert!(csp.contains("connect-src https://api.x.example;"), "{csp}");
    }
}
