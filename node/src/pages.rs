//! The portal's web pages for bank clients: sign-in with a DID (the wallet signs the node's challenge), the catalog of apps and what each bank allows, and the dashboard of my consents with their status, access history and a one-click revoke.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Duration, TimeZone, Utc};
use consentnet_consent_chain::event::{AccessRecord, AppAction, Outcome};
use consentnet_consent_chain::{ConsentStatus, Event, Role};
use consentnet_identity::signin::SignIn;
use consentnet_identity::{ConsentId, Did};
use serde_json::json;

use crate::http::{ApiError, append};
use crate::oauth::{Params, random_token};
use crate::portal::{
    Portal, cookie, escape, layout, lock, page, plain_words, refusal_page, see_other,
};

/// How long a sign-in challenge may wait for the wallet, in seconds.
pub const CHALLENGE_LIFETIME_SECS: i64 = 300;
/// How long a signed-in session lasts, in seconds.
pub const SESSION_LIFETIME_SECS: i64 = 3_600;
/// Sign-ins waiting and sessions open, each at most.
pub const MAX_WEB_SESSIONS: usize = 10_000;
const CHALLENGE_COOKIE: &str = "consentnet_signin";
const SESSION_COOKIE: &str = "consentnet_session";
/// Access records shown under each consent, newest first.
const ACCESSES_SHOWN: usize = 20;

#[derive(Debug, Clone)]
struct Challenge {
    created: DateTime<Utc>,
    /// The browser that asked for it (a cookie value).
    browser: String,
    /// The DID that answered, once one has.
    did: Option<Did>,
}

#[derive(Debug, Clone)]
struct WebSession {
    did: Did,
    csrf: String,
    expires: DateTime<Utc>,
}

/// Sign-in challenges and signed-in sessions, in memory (a restart signs everyone out).
#[derive(Debug, Default)]
pub struct Web {
    challenges: Mutex<HashMap<String, Challenge>>,
    sessions: Mutex<HashMap<String, WebSession>>,
}

/// The pages' routes, to merge into the node's router.
pub fn routes(portal: Portal) -> Router {
    Router::new()
        .route("/portal", get(home))
        .route("/portal/sign-in", get(sign_in_page).post(sign_in_answer))
        .route("/portal/sign-out", post(sign_out))
        .route("/portal/catalog", get(catalog))
        .route("/portal/consents", get(dashboard))
        .route("/portal/consents/{id}/revoke", post(revoke))
        .route("/portal/link", get(link_page))
        .route("/portal/wallet.js", get(wallet_script))
        .with_state(portal)
}

fn set_cookie(response: &mut Response, issuer: &str, name: &str, value: &str, max_age: i64) {
    crate::portal::set_cookie(response, issuer, name, value, "/portal", "Strict", max_age);
}

impl Web {
    fn session(&self, headers: &HeaderMap, now: DateTime<Utc>) -> Option<WebSession> {
        let token = cookie(headers, SESSION_COOKIE)?;
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, s| s.expires > now);
        sessions.get(token).cloned()
    }
}

fn nav(signed_in: Option<&Did>) -> String {
    let who = match signed_in {
        Some(did) => format!(
            r#"<span id="signed-in-as">Signed in as <code>{}</code></span>
<form method="post" action="/portal/sign-out" style="display:inline"><button type="submit" id="sign-out">Sign out</button></form>"#,
            escape(did.as_str())
        ),
        None => r#"<a href="/portal/sign-in" id="sign-in-link">Sign in</a>"#.to_owned(),
    };
    format!(
        r#"<nav><a href="/portal">Home</a> · <a href="/portal/catalog">Apps</a> · <a href="/portal/consents">My consents</a> · {who}</nav>"#
    )
}

async fn home(State(portal): State<Portal>, headers: HeaderMap) -> Response {
    let session = portal.web.session(&headers, Utc::now());
    let name = member_name(&portal, portal.app.service.did());
    let body = format!(
        r#"{nav}
<h1>{name}</h1>
<p>See which apps this network lists and what each bank allows them, and manage the
consents you have given: what each one allows, every access made under it, and revoke it
at once.</p>
<ul>
<li><a href="/portal/catalog">The app catalog</a></li>
<li><a href="/portal/consents">My consents</a> (sign in with your wallet)</li>
</ul>"#,
        nav = nav(session.as_ref().map(|s| &s.did)),
        name = escape(&name),
    );
    page(&layout("consentnet", &body, None))
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

/// `GET /portal/sign-in`: a challenge for the wallet to sign; once signed, the browser
/// that asked for it is signed in and sent to its consents.
async fn sign_in_page(State(portal): State<Portal>, headers: HeaderMap) -> Response {
    let now = Utc::now();
    let web = &portal.web;
    let issuer = portal.server.issuer.clone();
    // The browser's challenge, if it has one still waiting or answered.
    let held = cookie(&headers, CHALLENGE_COOKIE).and_then(|value| {
        let (id, browser) = value.split_once('.')?;
        let challenges = lock(&web.challenges);
        let challenge = challenges.get(id)?;
        (challenge.browser == browser
            && now <= challenge.created + Duration::seconds(CHALLENGE_LIFETIME_SECS))
        .then(|| (id.to_owned(), challenge.did.clone()))
    });
    match held {
        Some((id, Some(did))) => {
            lock(&web.challenges).remove(&id);
            let token = random_token();
            {
                let mut sessions = lock(&web.sessions);
                sessions.retain(|_, s| s.expires > now);
                if sessions.len() >= MAX_WEB_SESSIONS {
                    return busy();
                }
                sessions.insert(
                    token.clone(),
                    WebSession {
                        did,
                        csrf: random_token(),
                        expires: now + Duration::seconds(SESSION_LIFETIME_SECS),
                    },
                );
            }
            let mut response = see_other("/portal/consents");
            set_cookie(
                &mut response,
                &issuer,
                SESSION_COOKIE,
                &token,
                SESSION_LIFETIME_SECS,
            );
            set_cookie(&mut response, &issuer, CHALLENGE_COOKIE, "", 0);
            response
        }
        Some((id, None)) => page(&sign_in_html(&portal, &id)),
        None => {
            let (id, browser) = (random_token(), random_token());
            {
                let mut challenges = lock(&web.challenges);
                challenges
                    .retain(|_, c| now <= c.created + Duration::seconds(CHALLENGE_LIFETIME_SECS));
                if challenges.len() >= MAX_WEB_SESSIONS {
                    return busy();
                }
                challenges.insert(
                    id.clone(),
                    Challenge {
                        created: now,
                        browser: browser.clone(),
                        did: None,
                    },
                );
            }
            let mut response = page(&sign_in_html(&portal, &id));
            set_cookie(
                &mut response,
                &issuer,
                CHALLENGE_COOKIE,
                &format!("{id}.{browser}"),
                CHALLENGE_LIFETIME_SECS,
            );
            response
        }
    }
}

fn busy() -> Response {
    refusal_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Busy",
        "too_many_sessions",
        "Too many sign-ins at once; try again in a minute.",
        "",
    )
}

fn sign_in_html(portal: &Portal, challenge: &str) -> String {
    let body = format!(
        r#"{nav}
<h1>Sign in with your wallet</h1>
<p>Your wallet proves it holds your DID by signing this one-time challenge. No password,
and nothing secret leaves the wallet. Run:</p>
<p><code id="sign-in-command">consentnet wallet sign-in {challenge} --node {issuer}</code></p>
<p>This page moves on by itself once you have. The challenge works for 5 minutes, in
this browser only.</p>
<div id="browser-key" data-action="sign-in" data-challenge="{challenge}" data-node="{node}" data-refresh="2">
<p>Or sign in with the key kept in this browser:
<button type="button" id="browser-key-button">Sign in with this browser's key</button></p>
<p><small>This browser's DID: <code id="browser-did">none yet</code></small></p>
<p id="browser-key-status" role="status"></p>
</div>
<p><small>Challenge <code id="challenge">{challenge}</code></small></p>
<script src="/portal/wallet.js"></script>"#,
        nav = nav(None),
        challenge = escape(challenge),
        issuer = escape(&portal.server.issuer),
        node = escape(portal.app.service.did().as_str()),
    );
    layout("Sign in", &body, Some(2))
}

/// `POST /portal/sign-in`: the wallet's signed answer to a challenge.
async fn sign_in_answer(
    State(portal): State<Portal>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = bytes
        .map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, "unreadable_body", r.body_text()))?;
    let answer: SignIn = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", e.to_string()))?;
    let did = answer.verify(portal.app.service.did()).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "sign_in_bad_signature",
            "the answer is not signed by its DID for this node",
        )
    })?;
    let now = Utc::now();
    let mut challenges = lock(&portal.web.challenges);
    let challenge = challenges
        .get_mut(&answer.challenge)
        .filter(|c| now <= c.created + Duration::seconds(CHALLENGE_LIFETIME_SECS))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "sign_in_unknown_challenge",
                "no sign-in is waiting with that challenge (it may have expired)",
            )
        })?;
    if challenge.did.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "sign_in_already_answered",
            "that challenge was already answered",
        ));
    }
    challenge.did = Some(did.clone());
    Ok((StatusCode::OK, Json(json!({ "signed_in": did }))).into_response())
}

async fn sign_out(State(portal): State<Portal>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        lock(&portal.web.sessions).remove(token);
    }
    let mut response = see_other("/portal");
    set_cookie(&mut response, &portal.server.issuer, SESSION_COOKIE, "", 0);
    response
}

/// `GET /portal/catalog`: every app, what it asks for, and what each bank decided.
async fn catalog(State(portal): State<Portal>, headers: HeaderMap) -> Response {
    let session = portal.web.session(&headers, Utc::now());
    let genesis = portal.app.service.genesis();
    let banks: Vec<_> = genesis
        .members
        .iter()
        .filter(|m| m.role == Role::Bank)
        .collect();
    let rows = portal.app.service.read(|replica| {
        let state = replica.state();
        // The latest version of each app, with each bank's decision on that version.
        let mut latest: HashMap<Did, consentnet_consent_chain::event::AppManifest> = HashMap::new();
        if let Some(first) = banks.first() {
            for entry in state.catalog(&first.did) {
                let keep = latest
                    .get(&entry.manifest.app)
                    .is_none_or(|m| m.version < entry.manifest.version);
                if keep {
                    latest.insert(entry.manifest.app.clone(), entry.manifest);
                }
            }
        }
        let mut apps: Vec<_> = latest.into_values().collect();
        apps.sort_by(|a, b| a.name.cmp(&b.name));
        apps.into_iter()
            .map(|manifest| {
                let asks: Vec<String> = manifest
                    .requested_permissions
                    .iter()
                    .map(|p| escape(plain_words(*p)))
                    .collect();
                let decisions: Vec<String> = banks
                    .iter()
                    .map(|bank| {
                        let verdict =
                            match state.app_action(&bank.did, &manifest.app, &manifest.version) {
                                Some(AppAction::Approve { permissions }) => format!(
                                    "allows it to {}",
                                    permissions
                                        .iter()
                                        .map(|p| escape(plain_words(*p)))
                                        .collect::<Vec<_>>()
                                        .join("; ")
                                ),
                                Some(AppAction::Suspend) => "has suspended it".to_owned(),
                                None => "has not approved it".to_owned(),
                            };
                        format!("<li>{} {verdict}</li>", escape(&bank.name))
                    })
                    .collect();
                format!(
                    r#"<div class="box app"><h2>{name} <small>{version} · {platform:?}</small></h2>
<p>{description}</p>
<p>Asks to: {asks}.</p>
<ul>{decisions}</ul></div>"#,
                    name = escape(&manifest.name),
                    version = escape(&manifest.version),
                    platform = manifest.platform,
                    description = escape(&manifest.description),
                    asks = asks.join("; "),
                    decisions = decisions.concat(),
                )
            })
            .collect::<Vec<_>>()
    });
    let list = if rows.is_empty() {
        "<p>No apps are published yet.</p>".to_owned()
    } else {
        rows.concat()
    };
    let body = format!(
        "{nav}\n<h1>Apps</h1>\n<div id=\"catalog\">{list}</div>",
        nav = nav(session.as_ref().map(|s| &s.did))
    );
    page(&layout("Apps", &body, None))
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

/// `GET /portal/consents`: the signed-in client's consents, newest first.
async fn dashboard(State(portal): State<Portal>, headers: HeaderMap) -> Response {
    let now = Utc::now();
    let Some(session) = portal.web.session(&headers, now) else {
        return see_other("/portal/sign-in");
    };
    let here = portal.app.service.did().clone();
    let cards = portal.app.service.read(|replica| {
        let state = replica.state();
        let mut consents: Vec<_> = state
            .consents_by_client(&session.did)
            .into_iter()
            .filter_map(|id| state.consent(&id).cloned())
            .collect();
        consents.sort_by_key(|c| std::cmp::Reverse(c.terms.valid_from));
        // One pass over the access records for all of this client's consents.
        let mut by_consent: HashMap<ConsentId, Vec<&AccessRecord>> =
            consents.iter().map(|c| (c.id, Vec::new())).collect();
        for (_, record) in state.accesses() {
            if let Some(list) = by_consent.get_mut(&record.consent_id) {
                list.push(record);
            }
        }
        consents
            .iter()
            .map(|consent| {
                let status = state.consent_status(&consent.id, now);
                let terms = &consent.terms;
                let mut accesses = by_consent.remove(&consent.id).unwrap_or_default();
                accesses.sort_by_key(|r| std::cmp::Reverse(r.time));
                let total = accesses.len();
                let rows: String = accesses
                    .iter()
                    .take(ACCESSES_SHOWN)
                    .map(|record| {
                        let outcome = match &record.outcome {
                            Outcome::Served => "served".to_owned(),
                            Outcome::Refused { code } => format!("refused ({})", escape(code)),
                        };
                        format!(
                            "<tr><td>{}</td><td>{}</td><td>{outcome}</td></tr>",
                            millis(record.time),
                            escape(&record.operation)
                        )
                    })
                    .collect();
                let history = if total == 0 {
                    "<p>No access yet.</p>".to_owned()
                } else {
                    format!(
                        "<table class=\"accesses\"><tr><th>when (UTC)</th><th>what</th><th>outcome</th></tr>{rows}</table><p>{total} in all.</p>"
                    )
                };
                let action = match (status, terms.bank == here) {
                    (ConsentStatus::Active | ConsentStatus::NotYetValid, true) => format!(
                        r#"<form method="post" action="/portal/consents/{id}/revoke"><input type="hidden" name="csrf" value="{csrf}"><button type="submit" class="revoke">Revoke</button></form>"#,
                        id = consent.id,
                        csrf = escape(&session.csrf),
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
                    app = escape(&app),
                    bank = escape(&member_name(&portal, &terms.bank)),
                    permissions = terms
                        .permissions
                        .iter()
                        .map(|p| escape(plain_words(*p)))
                        .collect::<Vec<_>>()
                        .join("; "),
                    accounts = terms
                        .accounts
                        .iter()
                        .map(|a| format!("<code>{}</code>", escape(a)))
                        .collect::<Vec<_>>()
                        .join(", "),
                    until = terms.valid_until.format("%Y-%m-%d %H:%M"),
                    purpose = escape(&terms.purpose),
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
async fn revoke(
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
    let owned = portal.app.service.read(|replica| {
        replica
            .state()
            .consent(&id)
            .is_some_and(|c| c.issuer == session.did && c.terms.bank == here)
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

/// The browser wallet's script (WebCrypto key in IndexedDB; see `node/assets/wallet.js`).
const WALLET_JS: &str = include_str!("../assets/wallet.js");

async fn wallet_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        WALLET_JS,
    )
        .into_response()
}

/// `GET /portal/link`: link the key kept in this browser to your accounts at this bank,
/// with the one-time code from the bank's own channel (as `consentnet wallet link` does).
async fn link_page(State(portal): State<Portal>, headers: HeaderMap) -> Response {
    let session = portal.web.session(&headers, Utc::now());
    let body = format!(
        r#"{nav}
<h1>Use this browser as your wallet</h1>
<p>This browser can keep a key of its own: made here, kept in this browser only, and
impossible to copy out, even by this page. To use it with your accounts at
{bank}, link its DID with the one-time code your bank gave you (in its app or online
banking).</p>
<div id="browser-key" data-action="link" data-node="{node}">
<p><label for="link-code">Link code</label>
<input id="link-code" name="link-code" autocomplete="off" required>
<button type="button" id="browser-key-button">Link this browser's key</button></p>
<p><small>This browser's DID: <code id="browser-did">none yet</code></small></p>
<p id="browser-key-status" role="status"></p>
</div>
<script src="/portal/wallet.js"></script>"#,
        nav = nav(session.as_ref().map(|s| &s.did)),
        bank = escape(&member_name(&portal, portal.app.service.did())),
        node = escape(portal.app.service.did().as_str()),
    );
    page(&layout("Link this browser", &body, None))
}
