//! The portal's HTTP face on a bank node: the OAuth 2.0 endpoints (metadata, PAR, authorize, token, introspection, revocation), the consent screen, and the wallet's approval of a pending authorization; every OAuth error in the RFC 6749 shape.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use consentnet_bank_adapter::links::Links;
use consentnet_consent_chain::Event;
use consentnet_consent_chain::event::AppAction;
use consentnet_identity::consent::{complete_consent, prepare_consent};
use consentnet_identity::{
    ConsentId, ConsentTerms, Did, Permission, Revocation, VerifiedConsent, b64url, b64url_decode,
    verify_consent,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::{AppState, append};
pub(crate) use crate::oauth::lock;
use crate::oauth::{AuthServer, Decision, OAuthError, Params, Session};

/// What the portal's handlers share.
#[derive(Clone, Debug)]
pub struct Portal {
    /// The node's API state: the log, the submitter, the network.
    pub app: AppState,
    /// The authorization server.
    pub server: Arc<AuthServer>,
    /// The bank's account links (who may approve for which accounts); on bank nodes.
    pub links: Option<Arc<Links>>,
    /// The web pages' sign-ins and sessions.
    pub web: Arc<crate::pages::Web>,
    /// The operator pages' sessions and cached audit.
    pub console: Arc<crate::console::Console>,
}

/// The portal's routes, to merge into the node's router.
pub fn routes(portal: Portal) -> Router {
    Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/oauth/par", post(par))
        .route("/oauth/authorize", get(authorize))
        .route("/oauth/authorize/deny", post(deny))
        .route("/oauth/requests/{handle}", get(pending_request))
        .route("/oauth/requests/{handle}/approve", post(approve))
        .route("/oauth/requests/{handle}/prepare", post(prepare))
        .route("/oauth/requests/{handle}/complete", post(complete))
        .route("/oauth/token", post(token))
        .route("/oauth/introspect", post(introspect))
        .route("/oauth/revoke", post(revoke))
        .with_state(portal)
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let body = json!({ "error": self.code, "error_description": self.description });
        (status, no_store(), Json(body)).into_response()
    }
}

fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

fn form(bytes: Result<Bytes, BytesRejection>) -> Result<Params, OAuthError> {
    let bytes = bytes.map_err(|r| OAuthError::invalid_request(r.body_text()))?;
    Params::parse(&bytes)
}

async fn metadata(State(portal): State<Portal>) -> Json<Value> {
    Json(portal.server.metadata())
}

/// `POST /oauth/par` (RFC 9126).
async fn par(
    State(portal): State<Portal>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let params = form(bytes)?;
    let server = portal.server.clone();
    let now = Utc::now();
    let client =
        server.authenticate(in_catalog(&portal), &params, &server.url("/oauth/par"), now)?;
    let (request_uri, expires_in) = portal
        .app
        .service
        .read(|replica| server.push(replica.state(), client, &params, now))?;
    Ok((
        StatusCode::CREATED,
        no_store(),
        Json(json!({ "request_uri": request_uri, "expires_in": expires_in })),
    )
        .into_response())
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    client_id: Option<String>,
    request_uri: Option<String>,
}

fn cookie_name(handle: &str) -> String {
    format!("consentnet_authz_{handle}")
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
}

/// Sets cookie `name` on `response`: `HttpOnly`, sent only under `path` with `same_site`,
/// `Secure` when the portal is served over https, living `max_age` seconds (0 deletes it).
pub(crate) fn set_cookie(
    response: &mut Response,
    issuer: &str,
    name: &str,
    value: &str,
    path: &str,
    same_site: &str,
    max_age: i64,
) {
    let secure = if issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite={same_site}; Max-Age={max_age}{secure}"
    );
    if let Ok(value) = HeaderValue::from_str(&text) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// Where the browser goes back to, with `params` added to the redirect URI's query.
fn back_to(session: &Session, issuer: &str, mut params: Vec<(&str, String)>) -> Response {
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

/// `GET /oauth/authorize`: the consent screen while the client decides, then the
/// redirect back to the app with the code (or `access_denied`).
async fn authorize(
    State(portal): State<Portal>,
    headers: HeaderMap,
    query: Result<Query<AuthorizeQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return error_page(&OAuthError::invalid_request("unreadable query"));
    };
    let (Some(client_id), Some(request_uri)) = (query.client_id, query.request_uri) else {
        return error_page(&OAuthError::invalid_request(
            "client_id and request_uri are required: push the request to /oauth/par first",
        ));
    };
    let handle = request_uri
        .strip_prefix(crate::oauth::REQUEST_URI_PREFIX)
        .unwrap_or_default()
        .to_owned();
    let name = cookie_name(&handle);
    let now = Utc::now();
    let (session, new_cookie) =
        match portal
            .server
            .open(&client_id, &request_uri, cookie(&headers, &name), now)
        {
            Ok(opened) => opened,
            Err(error) => return error_page(&error),
        };
    let issuer = &portal.server.issuer;
    let mut response = match &session.decision {
        Decision::Approved { code, .. } => back_to(&session, issuer, vec![("code", code.clone())]),
        Decision::Denied => back_to(
            &session,
            issuer,
            vec![
                ("error", "access_denied".to_owned()),
                (
                    "error_description",
                    "the client did not grant access".to_owned(),
                ),
            ],
        ),
        Decision::Pending | Decision::Approving => {
            let allowed = portal.app.service.read(|replica| {
                replica
                    .state()
                    .app_action(
                        &session.asked.bank,
                        &session.asked.app,
                        &session.asked.app_version,
                    )
                    .cloned()
            });
            page(&consent_page(&session, issuer, allowed.as_ref(), now))
        }
    };
    if let Some(value) = new_cookie {
        // Lax: the browser arrives here from the app's site.
        set_cookie(
            &mut response,
            issuer,
            &name,
            &value,
            "/oauth",
            "Lax",
            crate::oauth::SESSION_LIFETIME_SECS,
        );
    }
    response
}

/// `POST /oauth/authorize/deny`: the consent page's "Deny" form (CSRF-checked).
async fn deny(
    State(portal): State<Portal>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    let params = match form(bytes) {
        Ok(params) => params,
        Err(error) => return error_page(&error),
    };
    let handle = params.get("request").unwrap_or_default().to_owned();
    let browser = cookie(&headers, &cookie_name(&handle));
    match portal
        .server
        .deny(&handle, params.get("csrf"), browser, Utc::now())
    {
        Ok(session) => back_to(
            &session,
            &portal.server.issuer,
            vec![
                ("error", "access_denied".to_owned()),
                (
                    "error_description",
                    "the client did not grant access".to_owned(),
                ),
            ],
        ),
        Err(error) => error_page(&error),
    }
}

/// `GET /oauth/requests/{handle}`: what a pending authorization asks, for the wallet.
async fn pending_request(
    State(portal): State<Portal>,
    Path(handle): Path<String>,
) -> Result<Json<Value>, OAuthError> {
    let session = portal
        .server
        .session(&handle, Utc::now())
        .ok_or_else(|| OAuthError::invalid_request("no authorization in progress has that id"))?;
    let status = match session.decision {
        Decision::Pending | Decision::Approving => "pending",
        Decision::Approved { .. } => "approved",
        Decision::Denied => "denied",
    };
    Ok(Json(json!({
        "request": handle,
        "status": status,
        "app": session.asked.app,
        "app_name": session.asked.app_name,
        "app_version": session.asked.app_version,
        "bank": session.asked.bank,
        "authorization_details": [session.asked.details(None)],
    })))
}

/// `POST /oauth/requests/{handle}/approve`: the wallet's signed consent credential
/// answering the request.
async fn approve(
    State(portal): State<Portal>,
    Path(handle): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let bytes = bytes.map_err(|r| OAuthError::invalid_request(r.body_text()))?;
    let consent = verify_consent(&bytes)
        .await
        .map_err(|e| OAuthError::invalid_request(format!("the consent does not verify: {e}")))?;
    settle(&portal, &handle, consent).await
}

/// A verified consent answering `handle`: checked against what was asked and written to
/// the log before the code is issued.
async fn settle(
    portal: &Portal,
    handle: &str,
    consent: VerifiedConsent,
) -> Result<Response, OAuthError> {
    let now = Utc::now();
    let links = portal
        .links
        .as_ref()
        .ok_or_else(|| OAuthError::server_error("this node keeps no account links"))?;
    portal
        .server
        .begin_approval(handle, &consent, links.as_ref(), now)?;
    let event = Event::ConsentGranted {
        credential: consent.credential.clone(),
    };
    match append(&portal.app, event).await {
        Ok(submitted) => {
            portal.server.approved(handle, consent.id, Utc::now());
            Ok((
                StatusCode::CREATED,
                Json(json!({
                    "consent_id": consent.id.to_string(),
                    "entry_hash": submitted.entry.hash().to_string(),
                })),
            )
                .into_response())
        }
        Err(error) => {
            portal.server.release(handle);
            Err(OAuthError::new(
                error.status.as_u16(),
                error.code,
                error.message,
            ))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrepareBody {
    did: String,
    /// The DID's signature (base64url) over `{did, node, request}` under
    /// [`PREPARE_DOMAIN`]: only the DID's holder learns which of its accounts a consent
    /// would name.
    proof: String,
}

/// The domain of the statement a browser key signs to ask for a prepared consent.
pub const PREPARE_DOMAIN: &str = "oauth-prepare";

/// `POST /oauth/requests/{handle}/prepare`: for a key kept in the browser, the consent
/// that answers the request for `did`, complete but for its signature, and the bytes to
/// sign. The accounts are those the app named, or else every account `did` holds here.
async fn prepare(
    State(portal): State<Portal>,
    Path(handle): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, OAuthError> {
    let bytes = bytes.map_err(|r| OAuthError::invalid_request(r.body_text()))?;
    let body: PrepareBody = serde_json::from_slice(&bytes)
        .map_err(|e| OAuthError::invalid_request(format!("body: {e}")))?;
    let did =
        Did::parse(&body.did).map_err(|e| OAuthError::invalid_request(format!("did: {e}")))?;
    let signed = json!({
        "did": did.as_str(),
        "node": portal.app.service.did().as_str(),
        "request": handle,
    });
    if !consentnet_identity::verify_statement(&did, PREPARE_DOMAIN, &signed, &body.proof) {
        return Err(OAuthError::new(
            401,
            "invalid_proof",
            "proof is not the DID's signature over this request at this bank",
        ));
    }
    let now = Utc::now();
    let session = portal
        .server
        .session(&handle, now)
        .filter(|s| s.decision == Decision::Pending)
        .ok_or_else(|| OAuthError::invalid_request("no authorization is waiting with that id"))?;
    let asked = &session.asked;
    let accounts = match &asked.accounts {
        Some(named) => named.clone(),
        None => portal
            .links
            .as_ref()
            .map(|links| links.accounts_of(&did))
            .unwrap_or_default(),
    };
    if accounts.is_empty() {
        return Err(OAuthError::invalid_request(format!(
            "{did} is linked to no account at this bank: link it with the code from your bank first"
        )));
    }
    let terms = ConsentTerms {
        app: asked.app.clone(),
        bank: asked.bank.clone(),
        accounts,
        permissions: asked.permissions.clone(),
        payment_limits: asked.payment_limits.clone(),
        purpose: asked.purpose.clone(),
        valid_from: now,
        valid_until: asked.valid_until,
    };
    let prepared = prepare_consent(&did, &terms)
        .await
        .map_err(|e| OAuthError::invalid_request(format!("the consent cannot be made: {e}")))?;
    Ok(Json(json!({
        "credential": prepared.credential,
        "message": b64url(&prepared.message),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompleteBody {
    credential: Value,
    signature: String,
}

/// `POST /oauth/requests/{handle}/complete`: the browser key's signature of a prepared
/// consent; the completed consent is verified and settles the request like an approval.
async fn complete(
    State(portal): State<Portal>,
    Path(handle): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let bytes = bytes.map_err(|r| OAuthError::invalid_request(r.body_text()))?;
    let body: CompleteBody = serde_json::from_slice(&bytes)
        .map_err(|e| OAuthError::invalid_request(format!("body: {e}")))?;
    let signature = b64url_decode(&body.signature)
        .ok_or_else(|| OAuthError::invalid_request("signature is not base64url"))?;
    let consent = complete_consent(&body.credential, &signature)
        .await
        .map_err(|e| OAuthError::invalid_request(format!("the consent does not verify: {e}")))?;
    settle(&portal, &handle, consent).await
}

/// `POST /oauth/token`.
async fn token(
    State(portal): State<Portal>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let params = form(bytes)?;
    let dpop = headers.get("dpop").and_then(|v| v.to_str().ok());
    let server = portal.server.clone();
    let answer = server.token(in_catalog(&portal), &params, dpop, Utc::now());
    match answer {
        Ok(response) => Ok((StatusCode::OK, no_store(), Json(response)).into_response()),
        Err(Ok(error)) => Err(error),
        Err(Err(reused)) => {
            // A code used twice may have leaked: what it issued is revoked (RFC 6749 4.1.2).
            tracing::warn!(consent = %reused.0, "authorization code reused; revoking its consent");
            revoke_on_log(&portal, reused.0, "authorization code reused").await?;
            Err(OAuthError::invalid_grant(
                "the code was already used; the consent it issued is revoked",
            ))
        }
    }
}

async fn revoke_on_log(portal: &Portal, id: ConsentId, reason: &str) -> Result<(), OAuthError> {
    let revocation: Revocation =
        portal
            .app
            .service
            .bank_revocation(id, Utc::now(), Some(reason.to_owned()));
    append(&portal.app, Event::ConsentRevoked { revocation })
        .await
        .map(|_| ())
        .map_err(|e| OAuthError::server_error(format!("the revocation was not written: {e}")))
}

/// Whether an app is in the catalog, for [`crate::oauth::AuthServer::authenticate`]: the log is
/// locked only for this lookup, after the client's signature verified.
fn in_catalog(portal: &Portal) -> impl FnOnce(&Did) -> bool + '_ {
    |app| {
        portal
            .app
            .service
            .read(|replica| replica.state().app_name(app).is_some())
    }
}

/// `POST /oauth/introspect` (RFC 7662), for the app that holds the token.
async fn introspect(
    State(portal): State<Portal>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, OAuthError> {
    let params = form(bytes)?;
    let server = portal.server.clone();
    let endpoint = server.url("/oauth/introspect");
    let now = Utc::now();
    let client = server.authenticate(in_catalog(&portal), &params, &endpoint, now)?;
    let token = params.require("token")?;
    Ok(Json(portal.app.service.read(|replica| {
        server.introspect(replica.state(), &client, token, now)
    })))
}

/// `POST /oauth/revoke` (RFC 7009): revoking the token revokes the consent on the log.
async fn revoke(
    State(portal): State<Portal>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let params = form(bytes)?;
    let server = portal.server.clone();
    let endpoint = server.url("/oauth/revoke");
    let now = Utc::now();
    let client = server.authenticate(in_catalog(&portal), &params, &endpoint, now)?;
    let token = params.require("token")?;
    let revocable = portal
        .app
        .service
        .read(|replica| server.revocable(replica.state(), &client, token, now));
    if let Some(id) = revocable {
        revoke_on_log(&portal, id, "access token revoked by the app").await?;
    }
    // RFC 7009 section 2.2: the same answer whether or not there was anything to revoke.
    Ok((StatusCode::OK, no_store(), Json(json!({}))).into_response())
}

/// Security headers of every page: no framing (the consent screen must not be
/// clickjacked), no scripts, forms only to this origin, no referrer carrying the request.
pub(crate) fn page(html: &str) -> Response {
    page_with_status(StatusCode::OK, html)
}

pub(crate) fn page_with_status(status: StatusCode, html: &str) -> Response {
    (
        status,
        [
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
                ),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Html(html.to_owned()),
    )
        .into_response()
}

fn error_page(error: &OAuthError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    refusal_page(
        status,
        "This request cannot go on",
        error.code,
        &error.description,
        "<p>Go back to the app and start again.</p>",
    )
}

/// A page saying why something was refused: the machine-readable code in
/// `#error[data-error]`, the message for people, then `next` (HTML: where to go now).
pub(crate) fn refusal_page(
    status: StatusCode,
    title: &str,
    code: &str,
    message: &str,
    next: &str,
) -> Response {
    let body = format!(
        "<h1>{title}</h1>\n<p class=\"error\" id=\"error\" data-error=\"{code}\">{message}</p>\n{next}",
        title = escape(title),
        code = escape(code),
        message = escape(message),
    );
    page_with_status(status, &layout(title, &body, None))
}

/// A `303 See Other` to `location`, not cached.
pub(crate) fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location.to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn layout(title: &str, body: &str, refresh_secs: Option<u32>) -> String {
    let refresh = refresh_secs
        // Without scripts the page refreshes itself; with them, wallet.js does, and stops
        // while the browser's key is at work or when it has an error to show.
        .map(|s| format!("<noscript><meta http-equiv=\"refresh\" content=\"{s}\"></noscript>\n"))
        .unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{refresh}<title>{title} · consentnet</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; color: #1b1b1b; }}
h1 {{ font-size: 1.5rem; }}
.box {{ border: 1px solid #b0b0b0; border-radius: .5rem; padding: 1rem; margin: 1rem 0; }}
code {{ background: #f0f0f0; padding: .1rem .3rem; word-break: break-all; }}
button {{ font-size: 1rem; padding: .5rem 1rem; }}
.error {{ color: #a00000; }}
nav {{ margin-bottom: 1rem; }}
table {{ border-collapse: collapse; }}
td, th {{ border-bottom: 1px solid #d0d0d0; padding: .2rem .5rem; text-align: left; }}
</style>
</head>
<body>
<main>
{body}
</main>
</body>
</html>
"#,
        title = escape(title),
    )
}

/// A permission in plain words.
pub fn plain_words(permission: Permission) -> &'static str {
    use Permission::*;
    match permission {
        ReadAccountsBasic => "see which accounts you have (type and currency)",
        ReadAccountsDetail => "see your accounts with their identification",
        ReadBalances => "see your balances",
        ReadBeneficiariesBasic => "see who you pay (names only)",
        ReadBeneficiariesDetail => "see who you pay, with their account details",
        ReadDirectDebits => "see your direct debits",
        ReadTransactionsBasic => "see your transactions (amounts and dates)",
        ReadTransactionsDetail => "see your transactions with their details",
        ReadTransactionsCredits => "see money coming in",
        ReadTransactionsDebits => "see money going out",
        ReadStatementsBasic => "see your statements (summary)",
        ReadStatementsDetail => "see and download your statements",
        ReadProducts => "see the products your accounts are",
        ReadOffers => "see offers the bank makes you",
        ReadParty => "see the account holder's name and contact details",
        ReadPartyPSU => "see your own name and contact details",
        ReadScheduledPaymentsBasic => "see your scheduled payments (summary)",
        ReadScheduledPaymentsDetail => "see your scheduled payments in detail",
        ReadPAN => "see your card numbers",
        ReadStandingOrdersBasic => "see your standing orders (summary)",
        ReadStandingOrdersDetail => "see your standing orders in detail",
        CreateDomesticPayments => "make payments from your account",
    }
}

fn consent_page(
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
                escape(plain_words(*p)),
                p.as_str()
            )
        })
        .collect();
    let accounts = match &asked.accounts {
        Some(named) => format!(
            "only these accounts: {}",
            named
                .iter()
                .map(|a| format!("<code>{}</code>", escape(a)))
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
                    escape(amount),
                    escape(&limits.currency),
                    format!("{period:?}").to_lowercase()
                ),
                _ => String::new(),
            };
            format!(
                "<p>Payments: at most {} {} each{period}.</p>",
                escape(&limits.max_per_payment),
                escape(&limits.currency)
            )
        })
        .unwrap_or_default();
    let bank_allows = match allowed {
        Some(AppAction::Approve { permissions }) => format!(
            "Your bank has checked this app (version {}) and allows it to {}.",
            escape(&asked.app_version),
            permissions
                .iter()
                .map(|p| escape(plain_words(*p)))
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
        app = escape(&asked.app_name),
        until = asked.valid_until.format("%Y-%m-%d %H:%M"),
        purpose = escape(&asked.purpose),
        handle = escape(&session.handle),
        issuer = escape(issuer),
        csrf = escape(&session.csrf),
        did = escape(asked.app.as_str()),
        bank = escape(asked.bank.as_str()),
    );
    layout("Grant access", &body, Some(3))
}
