//! The OBIE account access consent resources over HTTP (`POST`, `GET`, `DELETE /open-banking/v4.0/aisp/account-access-consents`): the app's client credentials token and proof checked, OBIE bodies and errors with the interaction id, and a deleted authorised consent revoked on the log.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use consentnet_bank_adapter::api::is_json;
use consentnet_bank_adapter::fapi::{answer, refusal};
use consentnet_bank_adapter::{ObCode, ObError};
use consentnet_identity::Did;
use serde_json::{Value, json};

use super::http::revoke_on_log;
use super::intents::Intent;
use crate::portal::state::Portal;

/// Where the resources live.
pub const CONSENTS_PATH: &str = "/open-banking/v4.0/aisp/account-access-consents";
/// The largest request body taken, in bytes.
pub const MAX_CONSENT_BODY: usize = 64 * 1024;

/// The resources' routes, with the FAPI header checks every OBIE endpoint has.
pub fn routes(portal: Portal) -> Router {
    Router::new()
        .route(CONSENTS_PATH, post(create))
        .route(
            &format!("{CONSENTS_PATH}/{{ConsentId}}"),
            get(read).delete(delete),
        )
        .layer(axum::middleware::from_fn(
            consentnet_bank_adapter::fapi::headers,
        ))
        .with_state(portal)
}

/// The app calling `method` on `path`, from its client token and proof.
fn caller(
    portal: &Portal,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    now: DateTime<Utc>,
) -> Result<Did, ObError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let url = portal.server.url(path);
    portal
        .server
        .client_of(header("authorization"), header("dpop"), method, &url, now)
}

/// The resource's OBIE answer.
fn body(portal: &Portal, intent: &Intent, now: DateTime<Utc>) -> Value {
    let data = portal
        .app
        .service
        .read(|replica| intent.data(replica.state(), now));
    json!({
        "Data": data,
        "Risk": {},
        "Links": { "Self": portal.server.url(&format!("{CONSENTS_PATH}/{}", intent.id)) },
        "Meta": {},
    })
}

/// `POST`: a new resource waiting for the client.
async fn create(
    State(portal): State<Portal>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    let now = Utc::now();
    let made = (|| {
        let app = caller(&portal, &headers, "POST", CONSENTS_PATH, now)?;
        if !is_json(&headers) {
            return Err(ObError::new(
                ObCode::UnsupportedMediaType,
                "send the consent as Content-Type: application/json",
            ));
        }
        let bytes = bytes.map_err(|r| ObError::new(ObCode::MalformedJson, r.body_text()))?;
        if bytes.len() > MAX_CONSENT_BODY {
            return Err(ObError::new(
                ObCode::BodyTooLarge,
                format!("a consent is at most {MAX_CONSENT_BODY} bytes"),
            ));
        }
        let request: Value = consentnet_identity::strict::from_slice(&bytes)
            .map_err(|e| ObError::new(ObCode::MalformedJson, e.to_string()))?;
        portal.app.service.read(|replica| {
            portal
                .server
                .create_intent(replica.state(), &app, &request, now)
        })
    })();
    match made {
        Ok(intent) => answer(&headers, StatusCode::CREATED, body(&portal, &intent, now)),
        Err(error) => refusal(&headers, error),
    }
}

/// `GET`: the resource as it stands, the log deciding `AUTH`, `EXPD` or `CANC`.
async fn read(
    State(portal): State<Portal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let now = Utc::now();
    let path = format!("{CONSENTS_PATH}/{id}");
    let found = caller(&portal, &headers, "GET", &path, now)
        .and_then(|app| portal.server.intent(&app, &id, now));
    match found {
        Ok(intent) => answer(&headers, StatusCode::OK, body(&portal, &intent, now)),
        Err(error) => refusal(&headers, error),
    }
}

/// `DELETE`: cancels a waiting resource, or revokes its consent on the log.
async fn delete(
    State(portal): State<Portal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let now = Utc::now();
    let path = format!("{CONSENTS_PATH}/{id}");
    let deleted = caller(&portal, &headers, "DELETE", &path, now)
        .and_then(|app| portal.server.delete_intent(&app, &id, now));
    let revoke = match deleted {
        Ok(revoke) => revoke,
        Err(error) => return refusal(&headers, error),
    };
    if let Some(consent) = revoke
        && let Err(error) = revoke_on_log(
            &portal,
            consent,
            "account access consent deleted by the app",
        )
        .await
    {
        return refusal(
            &headers,
            ObError::new(ObCode::LedgerUnavailable, error.description),
        );
    }
    // No body; the FAPI layer adds the interaction id.
    StatusCode::NO_CONTENT.into_response()
}
