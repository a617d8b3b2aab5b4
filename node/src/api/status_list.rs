//! The bank's revocation status list credentials over HTTP (W3C Bitstring Status List v1.0): `GET /status/revocation/{n}`, for anyone, signed by the bank with its `did:key`, as the log stands now or, with `?at=`, as it stood then; cacheable for the list's `ttl`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use consentnet_identity::consent::block_on;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiCode, ApiError, AppState, blocking};
use crate::bank::status::{TTL_MS, encode};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AtQuery {
    at: Option<String>,
}

/// The unsigned list credential of `url` by `bank`, with `bits` as they stood at `at`.
fn credential(url: &str, bank: &str, bits: &[u8], made: DateTime<Utc>) -> Value {
    json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": bank,
        "validFrom": made.to_rfc3339_opts(SecondsFormat::Secs, true),
        "credentialSubject": {
            "id": format!("{url}#list"),
            "type": "BitstringStatusList",
            "statusPurpose": "revocation",
            "encodedList": encode(bits),
            "ttl": TTL_MS,
        },
    })
}

/// `GET /status/revocation/{list}[?at=RFC 3339]`.
pub(super) async fn revocation_list(
    State(state): State<AppState>,
    Path(list): Path<String>,
    query: Result<Query<AtQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::new(ApiCode::InvalidQuery, e.body_text()))?;
    let at = query
        .at
        .map(|text| {
            DateTime::parse_from_rfc3339(&text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::new(
                        ApiCode::InvalidQuery,
                        "at: an RFC 3339 date-time, e.g. 2026-12-01T00:00:00Z",
                    )
                })
        })
        .transpose()?;
    let bank = state.bank.as_ref().ok_or_else(|| {
        ApiError::new(ApiCode::NotABankNode, "only a bank publishes a status list")
    })?;
    let lists = bank.status.clone();
    if !lists.is_ready() {
        return Err(ApiError::new(
            ApiCode::StatusListNotReady,
            "the status list is being rebuilt from the log; retry shortly",
        )
        .retry_after(1));
    }
    let number = lists.numbered(&list).ok_or_else(|| {
        ApiError::new(
            ApiCode::StatusListUnknown,
            format!(
                "this bank has no status list {list:?}; new consents name {}",
                lists.url()
            ),
        )
    })?;
    let now = Utc::now();
    let (generation, kept) = lists.signed_now(number);
    let signed = match kept.filter(|_| at.is_none()) {
        Some(list) => list,
        None => {
            let unsigned = credential(
                &lists.url_of(number),
                state.service.did().as_str(),
                &lists.bits(number, at.map(|at| at.min(now))),
                now,
            );
            let service = state.service.clone();
            let signed = blocking(move || block_on(service.issue_credential(&unsigned)))
                .await?
                .map_err(|p| ApiError::internal(format!("{}: {}", p.title, p.detail)))?;
            if at.is_none() {
                lists.keep(number, generation, signed.clone());
            }
            signed
        }
    };
    let mut response = (StatusCode::OK, Json(signed)).into_response();
    let headers = response.headers_mut();
    // A list as it stood a while ago never changes; the list now, for its ttl only.
    let settled = at.is_some_and(|at| at < now - chrono::Duration::minutes(1));
    let age = if settled { 86_400 } else { TTL_MS / 1_000 };
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={age}")) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    Ok(response)
}
