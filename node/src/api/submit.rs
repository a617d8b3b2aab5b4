//! Submissions of signed objects: consent credentials, revocations, app manifests and bank decisions, each answered with the entry that holds it once durable.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use consentnet_consent_chain::event::{AppDecision, AppManifest};
use consentnet_consent_chain::{Entry, Event};
use consentnet_identity::{Revocation, RevocationError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ApiCode, ApiError, AppState, blocking, body, parse_json};
use crate::core::{NodeService, Submitted};

#[derive(Serialize)]
struct Receipt<'a> {
    /// The event's id (SHA-256 of its canonical JSON).
    event_id: String,
    /// False when the event was already on the log.
    new: bool,
    /// The hash of the entry holding it.
    entry_hash: String,
    /// The origin node's signed entry.
    receipt: &'a Entry,
}

/// Appends `event` to this node's feed (acknowledged once durable); the submitter
/// gossips it.
pub(crate) async fn append(state: &AppState, event: Event) -> Result<Submitted, ApiError> {
    Ok(state.submitter.submit(event).await?)
}

pub(super) async fn submit(state: AppState, event: Event) -> Result<Response, ApiError> {
    let Submitted { entry, new } = append(&state, event).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    // The entry holds this event (or, when it was on the log already, the same one).
    let receipt = Receipt {
        event_id: entry.event_id().to_string(),
        new,
        entry_hash: entry.hash().to_string(),
        receipt: entry.entry(),
    };
    Ok((status, Json(receipt)).into_response())
}

pub(super) async fn submit_consent(
    State(state): State<AppState>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let credential: Value = parse_json(&body(bytes)?)?;
    if !credential.is_object() {
        return Err(ApiError::new(
            ApiCode::MalformedJson,
            "a consent credential is a JSON object",
        ));
    }
    submit(state, Event::ConsentGranted { credential }).await
}

pub(super) async fn submit_revocation(
    State(state): State<AppState>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body(bytes)?;
    let revocation = blocking(move || Revocation::from_json(&bytes))
        .await?
        .map_err(|error| match error {
            RevocationError::Malformed(_) | RevocationError::TooLarge { .. } => {
                ApiError::new(ApiCode::MalformedRevocation, error.to_string())
            }
            other => ApiError::new(ApiCode::InvalidRevocation, other.to_string()),
        })?;
    submit(state, Event::ConsentRevoked { revocation }).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SignedManifest {
    manifest: AppManifest,
    signature: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SignedDecision {
    decision: AppDecision,
    signature: String,
}

pub(super) async fn submit_manifest(
    State(state): State<AppState>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let signed: SignedManifest = parse_json(&body(bytes)?)?;
    submit(
        state,
        NodeService::app_published(signed.manifest, signed.signature),
    )
    .await
}

pub(super) async fn submit_decision(
    State(state): State<AppState>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let signed: SignedDecision = parse_json(&body(bytes)?)?;
    submit(
        state,
        NodeService::app_decided(signed.decision, signed.signature),
    )
    .await
}
