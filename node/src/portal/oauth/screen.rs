//! The consent screen and the pages and redirects that end an authorization: back to the app with a code or an error, or a page saying why not.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use consentnet_consent_chain::event::AppAction;

use super::{OAuthError, Session};
use crate::portal::html::{layout, no_store, plain_words, refusal_page};
use consentnet_identity::util::escape_html;

/// Where the browser goes back to, with `params` added to the redirect URI's query.
pub(super) fn back_to(
    session: &Session,
    issuer: &str,
    mut params: Vec<(&str, String)>,
) -> Response {
    if let Some(state) = &session.state {
        params.push(("state", state.clone()));
    }
    params.push(("iss", issuer.to_owned()));
    let query = serde_urlencoded::to_string(&params).unwrap_or_default();
    let separator = if session.redirect_uri.contains('?') {
        '&'
    } else {
        '?'
    };
    let location = format!("{}{separator}{query}", session.redirect_uri);
    (
        StatusCode::SEE_OTHER,
        no_store(),
        [(header::LOCATION, location)],
    )
        .into_response()
}

pub(super) fn error_page(error: &OAuthError) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
    refusal_page(
        status,
        "This request cannot go on",
        error.code.as_str(),
        &error.description,
        "<p>Go back to the app and start again.</p>",
    )
}

pub(super) fn consent_page(
    session: &Session,
    issuer: &str,
    allowed: Option<&AppAction>,
    now: DateTime<Utc>,
) -> String {
    let asked = &session.asked;
    let items: String = asked
        .permissions
        .iter()
        .map(|p| {
            format!(
                "<li>{} <small>({})</small></li>",
                escape_html(plain_words(*p)),
                p.as_str()
            )
        })
        .collect();
    let accounts = match &asked.accounts {
        Some(named) => format!(
            "only these accounts: {}",
            named
                .iter()
                .map(|a| format!("<code>{}</code>", escape_html(a)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => "the accounts you choose in your wallet".to_owned(),
    };
    let payments = asked
        .payment_limits
        .as_ref()
        .map(|limits| {
            let period = match (&limits.max_per_period, limits.period) {
                (Some(amount), Some(period)) => format!(
                    ", and at most {} {} per {}",
                    escape_html(amount),
                    escape_html(&limits.currency),
                    format!("{period:?}").to_lowercase()
                ),
                _ => String::new(),
            };
            format!(
                "<p>Payments: at most {} {} each{period}.</p>",
                escape_html(&limits.max_per_payment),
                escape_html(&limits.currency)
            )
        })
        .unwrap_or_default();
    let bank_allows = match allowed {
        Some(AppAction::Approve { permissions, .. }) => format!(
            "Your bank has checked this app (version {}) and allows it to {}.",
            escape_html(&asked.app_version),
            permissions
                .iter()
                .map(|p| escape_html(plain_words(*p)))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        _ => "Your bank no longer allows this app: approving will not work.".to_owned(),
    };
    let days = (asked.valid_until - now).num_days();
    let body = format!(
        r#"<h1>Give <span id="app-name">{app}</span> access to your accounts?</h1>
<div class="box" id="request">
<p><strong>{app}</strong> asks to:</p>
<ul id="permissions">{items}</ul>
<p>On {accounts}.</p>
{payments}<p>Until <strong id="valid-until">{until}</strong> (UTC), about {days} days, unless you revoke it sooner.</p>
<p>Why: {purpose}</p>
<p id="bank-allows">{bank_allows}</p>
</div>
<h2>Approve</h2>
<p>Approve with your wallet; this page moves on by itself once you have:</p>
<p><code id="approve-command">consentnet wallet approve {handle} --bank {issuer}</code></p>
<div id="browser-key" data-action="approve" data-request="{handle}" data-node="{bank}" data-refresh="3">
<p>Or approve with the key kept in this browser (linked to your accounts at
<a href="/portal/link">/portal/link</a>):</p>
<p><button type="button" id="browser-key-button">Approve with this browser's key</button></p>
<p><small>This browser's DID: <code id="browser-did">none yet</code></small></p>
<p id="browser-key-status" role="status"></p>
</div>
<h2>Or say no</h2>
<form method="post" action="/oauth/authorize/deny">
<input type="hidden" name="request" value="{handle}">
<input type="hidden" name="csrf" value="{csrf}">
<button type="submit" id="deny">Deny</button>
</form>
<p><small>Request <code id="request-id">{handle}</code> from app <code>{did}</code>.</small></p>
<script src="/portal/wallet.js"></script>"#,
        app = escape_html(&asked.app_name),
        until = asked.valid_until.format("%Y-%m-%d %H:%M"),
        purpose = escape_html(&asked.purpose),
        handle = escape_html(&session.handle),
        issuer = escape_html(issuer),
        csrf = escape_html(&session.csrf),
        did = escape_html(asked.app.as_str()),
        bank = escape_html(asked.bank.as_str()),
    );
    layout("Grant access", &body, Some(3))
}
