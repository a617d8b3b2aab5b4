//! Grant management (FAPI Grant Management for OAuth 2.0): every grant is a consent on the log and its `grant_id` is the consent's id; the app holding it queries it and revokes it (`GET`/`DELETE /oauth/grants/{grant_id}`, with its client credentials token and proof), and a pushed request may `merge` into or `replace` one, the old consent revoked once the new one is on the log.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use consentnet_bank_adapter::{ObCode, ObError};
use consentnet_consent_chain::ConsentStatus;
use consentnet_identity::{ConsentId, Did};
use serde_json::{Value, json};

use super::error::OAuthError;
use super::params::Params;
use super::server::AuthServer;
use super::session::Asked;
use crate::portal::state::Portal;

/// Where the grants are.
pub const GRANTS_PATH: &str = "/oauth/grants";

/// The routes.
pub fn routes(portal: Portal) -> Router {
    let server = portal.server.clone();
    let router = Router::new()
        .route(
            &format!("{GRANTS_PATH}/{{grant_id}}"),
            get(query).delete(revoke),
        )
        .with_state(portal);
    super::dpop::offering_nonces(router, server)
}

/// A refusal in the OAuth error shape, with the DPoP challenge on a `401`; a grant this
/// app does not hold here is `404 invalid_grant_id`, whether it exists or not.
fn refusal(error: &ObError) -> Response {
    let (status, code) = match error.code {
        ObCode::ConsentResourceUnknown => (StatusCode::NOT_FOUND, "invalid_grant_id"),
        code => (
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST),
            code.as_str(),
        ),
    };
    let mut response = (
        status,
        Json(json!({ "error": code, "error_description": error.message })),
    )
        .into_response();
    if let Some(challenge) = error.challenge()
        && let Ok(value) = HeaderValue::from_str(&challenge)
    {
        response
            .headers_mut()
            .insert(axum::http::header::WWW_AUTHENTICATE, value);
    }
    response
}

fn unknown(id: &str) -> ObError {
    ObError::new(
        ObCode::ConsentResourceUnknown,
        format!("no grant {id} of this app at this bank"),
    )
}

/// The grant `id` of `app` at this bank, as the log says now.
fn grant(portal: &Portal, app: &Did, id: &str, now: DateTime<Utc>) -> Result<Value, ObError> {
    let consent = ConsentId::parse(id).ok_or_else(|| unknown(id))?;
    portal.app.service.read(|replica| {
        let state = replica.state();
        let found = state
            .consent(&consent)
            .filter(|c| &c.terms.app == app && c.terms.bank == portal.server.bank)
            .ok_or_else(|| unknown(id))?;
        let status = match state.consent_status(&consent, now) {
            ConsentStatus::Active | ConsentStatus::NotYetValid => "active",
            ConsentStatus::Expired => "expired",
            _ => "revoked",
        };
        let asked = Asked::of(found);
        Ok(json!({
            "grant_id": id,
            "status": status,
            "scopes": [],
            "authorization_details": [asked.details(Some(&consent))],
        }))
    })
}

/// `GET /oauth/grants/{grant_id}`: the grant, for the app holding it.
async fn query(
    State(portal): State<Portal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let now = Utc::now();
    let path = format!("{GRANTS_PATH}/{id}");
    let found = super::consents::caller(&portal, &headers, "GET", &path, now)
        .and_then(|app| grant(&portal, &app, &id, now));
    match found {
        Ok(grant) => (StatusCode::OK, Json(grant)).into_response(),
        Err(error) => refusal(&error),
    }
}

/// `DELETE /oauth/grants/{grant_id}`: the grant's consent revoked on the log, signed by
/// the bank; `204`. A grant no longer active is `404`, as an unknown one.
async fn revoke(
    State(portal): State<Portal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let now = Utc::now();
    let path = format!("{GRANTS_PATH}/{id}");
    let found = super::consents::caller(&portal, &headers, "DELETE", &path, now)
        .and_then(|app| grant(&portal, &app, &id, now));
    let consent = match found {
        Ok(grant) if grant["status"] == "active" => ConsentId::parse(&id),
        Ok(_) => return refusal(&unknown(&id)),
        Err(error) => return refusal(&error),
    };
    let Some(consent) = consent else {
        return refusal(&unknown(&id));
    };
    match super::http::revoke_on_log(&portal, consent, "grant revoked by the app").await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => error.into_response(),
    }
}

impl AuthServer {
    /// A pushed request's `grant_management_action` (`create`, the default; `merge` or
    /// `replace` with the `grant_id` of an active grant of `client` here): `merge` adds the
    /// grant's permissions to what is asked. Answers the grant the new consent replaces.
    pub(super) fn grant_action(
        &self,
        state: &consentnet_consent_chain::State,
        client: &Did,
        params: &Params,
        asked: &mut Asked,
        now: DateTime<Utc>,
    ) -> Result<Option<ConsentId>, OAuthError> {
        let action = params.get("grant_management_action").unwrap_or("create");
        let grant_id = params.get("grant_id");
        match (action, grant_id) {
            ("create", None) => return Ok(None),
            ("create", Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "grant_id goes with grant_management_action merge or replace",
                ));
            }
            ("merge" | "replace", None) => {
                return Err(OAuthError::invalid_request(format!(
                    "grant_management_action {action} needs the grant_id it acts on"
                )));
            }
            ("merge" | "replace", Some(_)) => {}
            (other, _) => {
                return Err(OAuthError::invalid_request(format!(
                    "grant_management_action {other:?} is not supported; use create, merge or replace"
                )));
            }
        }
        let id = grant_id.and_then(ConsentId::parse);
        let grant = id
            .and_then(|id| state.consent(&id))
            .filter(|c| &c.terms.app == client && c.terms.bank == self.bank)
            .filter(|c| {
                matches!(
                    state.consent_status(&c.id, now),
                    ConsentStatus::Active | ConsentStatus::NotYetValid
                )
            })
            .ok_or_else(|| {
                OAuthError::new(
                    super::error::OAuthCode::InvalidGrantId,
                    "grant_id is not an active grant of this client at this bank",
                )
            })?;
        if action == "merge" {
            asked
                .permissions
                .extend(grant.terms.permissions.iter().copied());
            if asked.payment_limits.is_none() {
                asked.payment_limits = grant.terms.payment_limits.clone();
            }
            consentnet_identity::permissions::check_permission_set(&asked.permissions)
                .map_err(|e| OAuthError::invalid_details(e.to_string()))?;
        }
        Ok(Some(grant.id))
    }
}
