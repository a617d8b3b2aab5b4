//! The bank's page: admin sign-in with the bank's token, its app versions, and decisions to approve (with chosen permissions) or suspend, signed by the bank's key.

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{Duration, Utc};
use consentnet_consent_chain::event::{AppAction, AppDecision};
use consentnet_identity::{Did, Permission};

use super::{refusal, review};
use crate::api::append;
use crate::portal::html::set_cookie;
use crate::portal::html::{layout, page, plain_words, see_other};
use crate::portal::oauth::Params;
use crate::portal::sessions::{ADMIN_COOKIE, ADMIN_SESSION_SECS, AdminSession, MAX_ADMIN_SESSIONS};
use crate::portal::state::Portal;
use consentnet_identity::util::escape_html;
use consentnet_identity::util::lock;
use consentnet_identity::util::random_hex;

/// `GET /portal/bank`: the admin sign-in form, or the bank's app versions with forms to
/// approve (choosing permissions) or suspend each.
pub(super) async fn bank_page(State(portal): State<Portal>, headers: HeaderMap) -> Response {
    let Some(admin_config) = portal.app.bank.as_ref().map(|bank| bank.admin.clone()) else {
        return refusal(
            StatusCode::NOT_FOUND,
            "not_a_bank",
            "only a bank's node has this page",
        );
    };
    let Some(session) = portal.console.admin(&headers, Utc::now()) else {
        let note = if admin_config.token.is_some() {
            ""
        } else {
            "<p class=\"error\">The admin token is not configured (adapter.admin_token_file): sign-in is disabled.</p>"
        };
        let body = format!(
            r#"<h1>Bank administration</h1>{note}
<form method="post" action="/portal/bank/sign-in">
<label for="token">Admin token (the node's <code>admin-token</code> file)</label><br>
<input type="password" id="token" name="token" autocomplete="off" required>
<button type="submit" id="admin-sign-in">Sign in</button>
</form>"#
        );
        return page(&layout("Bank administration", &body, None));
    };
    let bank = portal.app.service.did().clone();
    let held = portal.app.service.bundles();
    let rows = portal.app.service.read(|replica| {
        let state = replica.state();
        let mut entries = state.catalog(&bank);
        entries.sort_by(|a, b| {
            (&a.manifest.name, &a.manifest.version).cmp(&(&b.manifest.name, &b.manifest.version))
        });
        entries
            .into_iter()
            .map(|entry| {
                let manifest = &entry.manifest;
                let (state_text, allowed, origins): (String, BTreeSet<Permission>, _) =
                    match entry.decision.map(|d| d.action) {
                        Some(AppAction::Approve {
                            permissions,
                            origins,
                            ..
                        }) => ("approved".into(), permissions, origins),
                        Some(AppAction::Suspend) => {
                            ("suspended".into(), BTreeSet::new(), BTreeSet::new())
                        }
                        None => (
                            "waiting for a decision".into(),
                            BTreeSet::new(),
                            BTreeSet::new(),
                        ),
                    };
                let (bundle, origin_boxes) = match manifest.mini_app.as_deref() {
                    Some(mini_app) => (
                        review::files_section(state, &bank, manifest, mini_app, held),
                        review::origin_boxes(mini_app, &origins),
                    ),
                    None => (String::new(), String::new()),
                };
                let boxes: String = manifest
                    .requested_permissions
                    .iter()
                    .map(|p| {
                        let checked = if allowed.is_empty() || allowed.contains(p) {
                            " checked"
                        } else {
                            ""
                        };
                        format!(
                            r#"<label><input type="checkbox" name="perm_{code}"{checked}> {words} <small>({code})</small></label><br>"#,
                            code = p.as_str(),
                            words = escape_html(plain_words(*p)),
                        )
                    })
                    .collect();
                format!(
                    r#"<div class="box version" data-app="{app}" data-version="{version}" data-state="{state_text}">
<h2>{name} {version} <small>{platform:?}</small>: <span class="state">{state_text}</span></h2>
<p>{description}</p>
{bundle}
<form method="post" action="/portal/bank/decisions">
<input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="app" value="{app}">
<input type="hidden" name="version" value="{version}">
<p>Allow it to:</p>
{boxes}
{origin_boxes}
<button type="submit" name="action" value="approve" class="approve">Approve</button>
<button type="submit" name="action" value="suspend" class="suspend">Suspend</button>
</form></div>"#,
                    app = escape_html(manifest.app.as_str()),
                    version = escape_html(&manifest.version),
                    name = escape_html(&manifest.name),
                    platform = manifest.platform,
                    description = escape_html(&manifest.description),
                    csrf = escape_html(&session.csrf),
                )
            })
            .collect::<Vec<_>>()
    });
    let list = if rows.is_empty() {
        "<p>No app has published a version yet.</p>".to_owned()
    } else {
        rows.concat()
    };
    let body = format!("<h1>App versions</h1>\n<div id=\"versions\">{list}</div>");
    page(&layout("Bank administration", &body, None))
}

/// `POST /portal/bank/sign-in`: the admin token, once, for a half-hour page session.
pub(super) async fn bank_sign_in(
    State(portal): State<Portal>,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(admin) = portal.app.bank.as_ref().map(|bank| bank.admin.clone()) else {
        return refusal(
            StatusCode::NOT_FOUND,
            "not_a_bank",
            "only a bank's node has this page",
        );
    };
    let params = bytes
        .ok()
        .and_then(|b| Params::parse(&b).ok())
        .unwrap_or_default();
    if admin.token.is_none() || !admin.allows(params.get("token")) {
        return refusal(
            StatusCode::UNAUTHORIZED,
            "admin_token_invalid",
            "that is not this node's admin token",
        );
    }
    let now = Utc::now();
    let token = random_hex(16);
    {
        let mut admins = lock(&portal.console.admins);
        admins.retain(|_, s| s.expires > now);
        if admins.len() >= MAX_ADMIN_SESSIONS {
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_sessions",
                "too many admin sessions are open; try again later",
            );
        }
        admins.insert(
            token.clone(),
            AdminSession {
                csrf: random_hex(16),
                expires: now + Duration::seconds(ADMIN_SESSION_SECS),
            },
        );
    }
    let mut response = see_other("/portal/bank");
    set_cookie(
        &mut response,
        &portal.server.issuer,
        ADMIN_COOKIE,
        &token,
        "/portal/bank",
        "Strict",
        ADMIN_SESSION_SECS,
    );
    response
}

/// `POST /portal/bank/decisions`: approve (with the ticked permissions) or suspend one
/// app version; the decision is signed by the bank's key and written to the log.
pub(super) async fn bank_decide(
    State(portal): State<Portal>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    let now = Utc::now();
    let Some(session) = portal.console.admin(&headers, now) else {
        return refusal(
            StatusCode::UNAUTHORIZED,
            "signed_out",
            "sign in with the admin token first",
        );
    };
    let Some(params) = bytes.ok().and_then(|b| Params::parse(&b).ok()) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "malformed_form",
            "the form could not be read",
        );
    };
    if params.get("csrf") != Some(session.csrf.as_str()) {
        return refusal(
            StatusCode::FORBIDDEN,
            "csrf_mismatch",
            "the form did not come from this bank's page",
        );
    }
    let Some(app) = params.get("app").and_then(|a| Did::parse(a).ok()) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "invalid_app",
            "app must be an app's DID",
        );
    };
    let version = params.get("version").unwrap_or_default().to_owned();
    let bank = portal.app.service.did().clone();
    let state = portal.app.service.state();
    let Some(manifest) = state.manifest(&app, &version) else {
        return refusal(
            StatusCode::NOT_FOUND,
            "unknown_version",
            "that app version is not in the catalog",
        );
    };
    let action = match params.get("action") {
        Some("approve") => {
            let permissions: BTreeSet<Permission> = manifest
                .requested_permissions
                .iter()
                .filter(|p| params.get(&format!("perm_{}", p.as_str())).is_some())
                .copied()
                .collect();
            if permissions.is_empty() {
                return refusal(
                    StatusCode::BAD_REQUEST,
                    "no_permissions",
                    "tick at least one permission to approve, or suspend instead",
                );
            }
            AppAction::Approve {
                permissions,
                rate_limit: None,
                origins: review::allowed_origins(manifest, &params),
            }
        }
        Some("suspend") => AppAction::Suspend,
        _ => {
            return refusal(
                StatusCode::BAD_REQUEST,
                "invalid_action",
                "action is approve or suspend",
            );
        }
    };
    let decision = AppDecision {
        bank,
        app,
        version,
        action,
        time: u64::try_from(now.timestamp_millis()).unwrap_or(0),
    };
    let event = portal.app.service.bank_decision(decision);
    match append(&portal.app, event).await {
        Ok(_) => see_other("/portal/bank"),
        Err(error) => refusal(error.status(), error.code.as_str(), &error.message),
    }
}
