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

use super::admit::admit_grant;
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
    // A grant of this bank holds its status list entry from here; if the log does not
    // take it, the entry is let go.
    let held = match (&event, state.bank.as_ref()) {
        (Event::ConsentGranted { credential }, Some(bank)) => {
            let consent = consentnet_identity::VerifiedConsent::from_trusted_store(credential)
                .map_err(|e| ApiError::new(ApiCode::InvalidConsent, e.to_string()))?;
            if &consent.terms.bank == state.service.did() {
                bank.status.admit(&consent).map_err(status_refused)?;
                Some((bank.status.clone(), consent))
            } else {
                None
            }
        }
        _ => None,
    };
    let submitted = state.submitter.submit(event).await;
    if let (Err(_), Some((status, consent))) = (&submitted, held) {
        status.release(&consent);
    }
    Ok(submitted?)
}

fn status_refused(refusal: crate::bank::status::StatusRefusal) -> ApiError {
    use crate::bank::status::StatusRefusal;
    match refusal {
        StatusRefusal::ForeignList(..) => {
            ApiError::new(ApiCode::StatusListForeign, refusal.to_string())
        }
        StatusRefusal::Taken(_) => ApiError::new(ApiCode::StatusIndexTaken, refusal.to_string()),
        StatusRefusal::NotReady => {
            ApiError::new(ApiCode::StatusListNotReady, refusal.to_string()).retry_after(1)
        }
    }
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
    // A grant already on the log is acknowledged with its entry at any node; a new one
    // only its bank may admit.
    if !grant_known(&state, &credential)? {
        admit_grant(&state, &credential).await?;
    }
    submit(state, Event::ConsentGranted { credential }).await
}

/// A revocation with the credential it revokes, for a node that may not hold the grant.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CarriedRevocation {
    revocation: Value,
    credential: Value,
}

/// `POST /v1/revocations`: a signed revocation, or `{revocation, credential}`. The node
/// accepts it only when it can check who may revoke: the grant is on its log, or comes
/// with it (and is then stored first, as any submitted grant is).
pub(super) async fn submit_revocation(
    State(state): State<AppState>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body(bytes)?;
    let malformed = |message: String| ApiError::new(ApiCode::MalformedRevocation, message);
    let value: Value =
        consentnet_identity::strict::from_slice(&bytes).map_err(|e| malformed(e.to_string()))?;
    let (revocation, credential) = if value.get("credential").is_some() {
        let carried: CarriedRevocation =
            serde_json::from_value(value).map_err(|e| malformed(e.to_string()))?;
        let revocation = serde_json::to_vec(&carried.revocation)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        (revocation, Some(carried.credential))
    } else {
        (bytes.to_vec(), None)
    };
    let revocation = blocking(move || Revocation::from_json(&revocation))
        .await?
        .map_err(|error| match error {
            RevocationError::Malformed(_) | RevocationError::TooLarge { .. } => {
                malformed(error.to_string())
            }
            other => ApiError::new(ApiCode::InvalidRevocation, other.to_string()),
        })?;
    if let Some(credential) = credential {
        grant_first(&state, &revocation, credential).await?;
    }
    submit(state, Event::ConsentRevoked { revocation }).await
}

/// Is the grant of `credential` on this node's log?
fn grant_known(state: &AppState, credential: &Value) -> Result<bool, ApiError> {
    let id = consentnet_identity::consent_id(credential)
        .map_err(|e| ApiError::new(ApiCode::InvalidConsent, e.to_string()))?;
    let record = state
        .service
        .consent_record(&id)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(record.is_some())
}

/// Stores the grant a revocation carries, when it is not on the log yet, this node may
/// admit it ([`admit_grant`]) and the revocation may revoke it. Nothing is stored for a
/// revocation that would be refused.
async fn grant_first(
    state: &AppState,
    revocation: &Revocation,
    credential: Value,
) -> Result<(), ApiError> {
    if grant_known(state, &credential)? {
        return Ok(());
    }
    let consent = admit_grant(state, &credential).await.map_err(|error| {
        if error.code == ApiCode::GrantNotAtBank {
            ApiError::new(
                ApiCode::RevocationUnverifiable,
                "the consent's grant is not on this node's log, and only its bank's node admits it: submit the revocation there, or here once the grant has arrived",
            )
        } else {
            error
        }
    })?;
    revocation.verify_for(&consent).map_err(|e| match e {
        RevocationError::NotEntitled(_) => ApiError::new(ApiCode::NotEntitled, e.to_string()),
        other => ApiError::new(ApiCode::InvalidRevocation, other.to_string()),
    })?;
    append(state, Event::ConsentGranted { credential }).await?;
    Ok(())
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
    super::bundles::require_files_held(&state, &signed.manifest)?;
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
