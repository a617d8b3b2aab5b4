//! The OAuth server's HTTP face: metadata, PAR, authorize, deny, the wallet's view and approval of a pending request, token, introspection and revocation; every error in the RFC 6749 shape.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use consentnet_consent_chain::Event;
use consentnet_identity::consent::{complete_consent, prepare_consent};
use consentnet_identity::{
    ConsentId, ConsentTerms, Did, Revocation, VerifiedConsent, b64url_decode, verify_consent,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::screen::{back_to, consent_page, error_page};
use super::{Decision, OAuthCode, OAuthError, Params};
use crate::api::append;
use crate::portal::html::{cookie, no_store, page, set_cookie};
use crate::portal::state::Portal;

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
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let body = json!({ "error": self.code.as_str(), "error_description": self.description });
        (status, no_store(), Json(body)).into_response()
    }
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
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    let now = Utc::now();
    let answer = (|| {
        let params = form(bytes)?;
        let server = portal.server.clone();
        let client =
            server.authenticate(in_catalog(&portal), &params, &server.url("/oauth/par"), now)?;
        let dpop = headers.get("dpop").and_then(|v| v.to_str().ok());
        let (request_uri, expires_in) = portal
            .app
            .service
            .read(|replica| server.push(replica.state(), (client, dpop), &params, now))?;
        Ok::<_, OAuthError>(
            (
                StatusCode::CREATED,
                no_store(),
                Json(json!({ "request_uri": request_uri, "expires_in": expires_in })),
            )
                .into_response(),
        )
    })();
    with_nonce(
        &portal,
        answer.unwrap_or_else(IntoResponse::into_response),
        now,
    )
}

/// `response` with a fresh DPoP nonce (RFC 9449 section 8), as the token endpoint and
/// PAR answer every time.
fn with_nonce(portal: &Portal, mut response: Response, now: chrono::DateTime<Utc>) -> Response {
    if let Ok(value) = axum::http::HeaderValue::from_str(&portal.server.dpop_nonce(now)) {
        response
            .headers_mut()
            .insert(consentnet_bank_adapter::nonce::DPOP_NONCE, value);
    }
    response
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    client_id: Option<String>,
    request_uri: Option<String>,
}

fn cookie_name(handle: &str) -> String {
    format!("consentnet_authz_{handle}")
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
        .strip_prefix(super::REQUEST_URI_PREFIX)
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
                ("error", OAuthCode::AccessDenied.as_str().to_owned()),
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
            super::SESSION_LIFETIME_SECS,
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
                ("error", OAuthCode::AccessDenied.as_str().to_owned()),
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
        .links()
        .ok_or_else(|| OAuthError::server_error("this node keeps no account links"))?;
    portal
        .server
        .begin_approval(handle, &consent, links.as_ref(), now)?;
    let event = Event::ConsentGranted {
        credential: consent.credential.clone(),
    };
    match append(&portal.app, event).await {
        Ok(submitted) => {
            if let Some(old) = portal.server.approved(handle, consent.id, Utc::now()) {
                // The new grant is on the log: the one it merged into or replaced ends.
                let why = format!("replaced through grant management by {}", consent.id);
                if let Err(error) = revoke_on_log(portal, old, &why).await {
                    tracing::error!(%error, grant = %old, "a replaced grant was not revoked");
                }
            }
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
            Err(OAuthError::from(error))
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
    let body: PrepareBody = consentnet_identity::strict::from_slice(&bytes)
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
            OAuthCode::InvalidProof,
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
            .links()
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
        proof_key: None,
        status: portal.status_entry(),
    };
    let prepared = prepare_consent(&did, &terms)
        .await
        .map_err(|e| OAuthError::invalid_request(format!("the consent cannot be made: {e}")))?;
    Ok(Json(prepared.to_wire()))
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
    let body: CompleteBody = consentnet_identity::strict::from_slice(&bytes)
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
) -> Response {
    let now = Utc::now();
    let answer = token_answer(&portal, &headers, bytes)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    with_nonce(&portal, answer, now)
}

async fn token_answer(
    portal: &Portal,
    headers: &HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let params = form(bytes)?;
    let dpop = headers.get("dpop").and_then(|v| v.to_str().ok());
    let server = portal.server.clone();
    if params.get("grant_type") == Some("client_credentials") {
        let now = Utc::now();
        let endpoint = server.url("/oauth/token");
        let client = server.authenticate(in_catalog(portal), &params, &endpoint, now)?;
        let answer = server.client_credentials(&client, &params, dpop, now)?;
        return Ok((StatusCode::OK, no_store(), Json(answer)).into_response());
    }
    let answer = server.token(in_catalog(portal), &params, dpop, Utc::now());
    match answer {
        Ok(response) => Ok((StatusCode::OK, no_store(), Json(response)).into_response()),
        Err(Ok(error)) => Err(error),
        Err(Err(reused)) => {
            // A code used twice may have leaked: what it issued is revoked (RFC 6749 4.1.2).
            tracing::warn!(consent = %reused.0, "authorization code reused; revoking its consent");
            revoke_on_log(portal, reused.0, "authorization code reused").await?;
            Err(OAuthError::invalid_grant(
                "the code was already used; the consent it issued is revoked",
            ))
        }
    }
}

pub(super) async fn revoke_on_log(
    portal: &Portal,
    id: ConsentId,
    reason: &str,
) -> Result<(), OAuthError> {
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

/// Whether an app is in the catalog, for [`super::AuthServer::authenticate`]: the log is
/// locked only for this lookup, after the client's signature verified.
pub(super) fn in_catalog(portal: &Portal) -> impl FnOnce(&Did) -> bool + '_ {
    |app| portal.app.service.state().app_name(app).is_some()
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
