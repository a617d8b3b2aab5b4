//! My consents: each one's status, what it allows and every access made under it, with a one-click revoke signed by the bank on the client's session.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use consentnet_consent_chain::event::{AccessRecord, Outcome};
use consentnet_consent_chain::{ConsentStatus, Event, Party, Replica, RocksStore};
use consentnet_identity::{ConsentId, Did, VerifiedConsent};

use super::{ACCESSES_SHOWN, member_name, millis, nav, status_word};
use crate::api::append;
use crate::portal::html::{layout, page, plain_words, refusal_page, see_other};
use crate::portal::oauth::Params;
use crate::portal::state::Portal;
use consentnet_identity::util::escape_html;

/// Ended consents a dashboard shows, besides every live one (the API lists more).
const ENDED_SHOWN: usize = 100;

/// A client's consents with their status at `now`: every live one, and up to
/// [`ENDED_SHOWN`] of those moved to the archive once ended.
fn client_consents(
    replica: &Replica<RocksStore>,
    client: &Did,
    now: chrono::DateTime<Utc>,
) -> Vec<(std::sync::Arc<VerifiedConsent>, ConsentStatus)> {
    let state = replica.state();
    let live = state.consents_by_client(client);
    let archived = replica
        .archived_of(Party::Client, client, None, ENDED_SHOWN)
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "the archive of ended consents could not be read");
            Vec::new()
        });
    live.iter()
        .filter_map(|id| state.consent_record(id))
        .chain(
            archived
                .iter()
                .filter_map(|id| replica.consent_record(id).ok().flatten()),
        )
        .map(|record| {
            let status = record.status(now);
            (record.consent, status)
        })
        .collect()
}

/// `GET /portal/consents`: the signed-in client's consents, newest first.
pub(super) async fn dashboard(State(portal): State<Portal>, headers: HeaderMap) -> Response {
    let now = Utc::now();
    let Some(session) = portal.web.session(&headers, now) else {
        return see_other("/portal/sign-in");
    };
    let here = portal.app.service.did().clone();
    let records = portal.app.service.own_records().cloned();
    let cards = portal.app.service.read(|replica| {
        let state = replica.state();
        let mut consents = client_consents(replica, &session.did, now);
        consents.sort_by_key(|(c, _)| std::cmp::Reverse(c.terms.valid_from));
        // This bank's own records of each consent granted here, newest first (one more
        // than shown tells whether there are more). Other banks keep theirs.
        let mut by_consent: HashMap<ConsentId, Vec<AccessRecord>> = HashMap::new();
        if let Some(records) = &records {
            for (consent, _) in consents.iter().filter(|(c, _)| c.terms.bank == here) {
                let page = records
                    .of_consent(&consent.id, None, ACCESSES_SHOWN + 1)
                    .unwrap_or_default();
                by_consent.insert(consent.id, page.into_iter().map(|(_, r)| r).collect());
            }
        }
        consents
            .iter()
            .map(|(consent, status)| {
                let status = *status;
                let terms = &consent.terms;
                let accesses = by_consent.remove(&consent.id).unwrap_or_default();
                let more = accesses.len() > ACCESSES_SHOWN;
                let rows: String = accesses
                    .iter()
                    .take(ACCESSES_SHOWN)
                    .map(|record| {
                        let outcome = match &record.outcome {
                            Outcome::Served => "served".to_owned(),
                            Outcome::Refused { code } => format!("refused ({})", escape_html(code)),
                        };
                        format!(
                            "<tr><td>{}</td><td>{}</td><td>{outcome}</td></tr>",
                            millis(record.time),
                            escape_html(&record.operation)
                        )
                    })
                    .collect();
                let history = if terms.bank != here {
                    "<p>Its bank keeps the record of every access: see them at its portal, or with <code>consentnet consent accesses</code>.</p>".to_owned()
                } else if accesses.is_empty() {
                    "<p>No access yet.</p>".to_owned()
                } else {
                    let more = if more {
                        "<p>Older ones: <code>consentnet consent accesses</code>.</p>"
                    } else {
                        ""
                    };
                    format!(
                        "<table class=\"accesses\"><tr><th>when (UTC)</th><th>what</th><th>outcome</th></tr>{rows}</table>{more}"
                    )
                };
                let action = match (status, terms.bank == here) {
                    (ConsentStatus::Active | ConsentStatus::NotYetValid, true) => format!(
                        r#"<form method="post" action="/portal/consents/{id}/revoke"><input type="hidden" name="csrf" value="{csrf}"><button type="submit" class="revoke">Revoke</button></form>"#,
                        id = consent.id,
                        csrf = escape_html(&session.csrf),
                    ),
                    (ConsentStatus::Active | ConsentStatus::NotYetValid, false) => format!(
                        "<p>Revoke it at its bank's portal, or with <code>consentnet consent revoke {}</code>.</p>",
                        consent.id
                    ),
                    _ => String::new(),
                };
                let app = state
                    .app_name(&terms.app)
                    .map(str::to_owned)
                    .unwrap_or_else(|| terms.app.to_string());
                format!(
                    r#"<div class="box consent" id="consent-{id}" data-status="{status}">
<h2>{app} at {bank}: <span class="status">{status}</span></h2>
<p>May {permissions}.</p>
<p>Accounts: {accounts}. Until {until} (UTC). Why: {purpose}</p>
{action}
<h3>Accesses</h3>
{history}
</div>"#,
                    id = consent.id,
                    status = status_word(status),
                    app = escape_html(&app),
                    bank = escape_html(&member_name(&portal, &terms.bank)),
                    permissions = terms
                        .permissions
                        .iter()
                        .map(|p| escape_html(plain_words(*p)))
                        .collect::<Vec<_>>()
                        .join("; "),
                    accounts = terms
                        .accounts
                        .iter()
                        .map(|a| format!("<code>{}</code>", escape_html(a)))
                        .collect::<Vec<_>>()
                        .join(", "),
                    until = terms.valid_until.format("%Y-%m-%d %H:%M"),
                    purpose = escape_html(&terms.purpose),
                )
            })
            .collect::<Vec<_>>()
    });
    let list = if cards.is_empty() {
        "<p>You have given no consents yet.</p>".to_owned()
    } else {
        cards.concat()
    };
    let body = format!(
        "{nav}\n<h1>My consents</h1>\n<div id=\"consents\">{list}</div>",
        nav = nav(Some(&session.did))
    );
    page(&layout("My consents", &body, None))
}

/// `POST /portal/consents/{id}/revoke`: the signed-in client's one-click revoke of a
/// consent at this bank; the bank signs the revocation on the client's word.
pub(super) async fn revoke(
    State(portal): State<Portal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    let now = Utc::now();
    let refuse = |status: StatusCode, code: &str, message: &str| {
        refusal_page(
            status,
            "Not revoked",
            code,
            message,
            "<p><a href=\"/portal/consents\">Back to my consents</a></p>",
        )
    };
    let Some(session) = portal.web.session(&headers, now) else {
        return refuse(StatusCode::UNAUTHORIZED, "signed_out", "sign in first");
    };
    let params = bytes
        .ok()
        .and_then(|b| Params::parse(&b).ok())
        .unwrap_or_default();
    if params.get("csrf") != Some(session.csrf.as_str()) {
        return refuse(
            StatusCode::FORBIDDEN,
            "csrf_mismatch",
            "the form did not come from your consents page",
        );
    }
    let Some(id) = ConsentId::parse(&id) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_consent_id",
            "not a consent id",
        );
    };
    let here = portal.app.service.did().clone();
    let owned = portal.app.service.consent_record(&id).is_ok_and(|record| {
        record.is_some_and(|r| r.consent.issuer == session.did && r.consent.terms.bank == here)
    });
    if !owned {
        return refuse(
            StatusCode::NOT_FOUND,
            "consent_unknown",
            "you have no consent with that id at this bank",
        );
    }
    let revocation = portal.app.service.bank_revocation(
        id,
        now,
        Some("revoked by the client in the portal".to_owned()),
    );
    match append(&portal.app, Event::ConsentRevoked { revocation }).await {
        Ok(_) => see_other("/portal/consents"),
        Err(error) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "not_written",
            &format!("the revocation was not written: {error}"),
        ),
    }
}
