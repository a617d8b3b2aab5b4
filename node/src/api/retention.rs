//! Retention of access records: a bank's operator prunes the bodies of its batches older than its retention period, a regulator's its copies of them; the commitments on the shared log are kept forever.
//!
//! A batch body may go once clients and regulators had time to read and fetch it. The
//! node refuses a cutoff less than [`MIN_RETENTION_DAYS`] ago, so an operator's slip
//! cannot erase yesterday's history. Pruned batches read as not held: a client's page
//! skips them, and an audit that had not fetched them counts them unavailable.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use consentnet_consent_chain::Role;

use super::admin::admin;
use super::{ApiCode, ApiError, AppState, blocking, body, parse_json};
use crate::core::HeldRecords;

/// The shortest retention period a bank may prune to.
pub const MIN_RETENTION_DAYS: i64 = 7;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PruneRequest {
    /// Batches whose newest record is older than this go.
    before: DateTime<Utc>,
}

/// `POST /v1/admin/records/prune` (operator surface, admin token): drops the oldest
/// batches whose records all predate `before`; answers how many went.
pub(super) async fn prune_records(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    admin(&state, &headers)?;
    let request: PruneRequest = parse_json(&body(bytes)?)?;
    let latest = Utc::now() - Duration::days(MIN_RETENTION_DAYS);
    if request.before > latest {
        return Err(ApiError::new(
            ApiCode::RetentionTooShort,
            format!(
                "before: at most {latest} ({MIN_RETENTION_DAYS} days ago); records younger than that are kept"
            ),
        ));
    }
    let cutoff = u64::try_from(request.before.timestamp_millis()).unwrap_or(0);
    let service = state.service.clone();
    if service.held_records().is_none() {
        return Err(ApiError::new(
            ApiCode::NotABankNode,
            "only bank and regulator nodes keep access records",
        ));
    }
    let pruned = blocking(move || match service.held_records() {
        Some(HeldRecords::Own(records)) => records.prune_before(cutoff),
        Some(HeldRecords::Fetched(fetched)) => {
            let state = service.state();
            let banks: Vec<_> = state
                .membership()
                .iter()
                .filter(|member| member.role == Role::Bank)
                .map(|member| member.did.clone())
                .collect();
            fetched.prune_before(&banks, cutoff)
        }
        None => Ok(0),
    })
    .await?
    .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(
        json!({ "pruned_batches": pruned, "before": request.before }),
    ))
}
