//! Reads of the log: a consent's status, its receipt and access history, consents by party, and a bank's catalog.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use consentnet_consent_chain::Event;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiCode, ApiError, AppState, blocking, consent_id, did, query};

/// Most consents one list query returns.
pub const MAX_LIST: usize = 1_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AtQuery {
    at: Option<String>,
}

pub(super) async fn consent_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    at: Result<Query<AtQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = consent_id(&id)?;
    let query = query(at)?;
    let at = match &query.at {
        None => Utc::now(),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map_err(|e| ApiError::new(ApiCode::InvalidTime, format!("at: {e}")))?
            .with_timezone(&Utc),
    };
    let body = state.service.read(|replica| {
        let state = replica.state();
        let status = state.consent_status(&id, at);
        let mut body = json!({
            "consent_id": id.to_string(),
            "status": status,
            "at": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        });
        if let Some(consent) = state.consent(&id) {
            body["grant"] = json!({
                "issuer": consent.issuer,
                "app": consent.terms.app,
                "bank": consent.terms.bank,
                "accounts": consent.terms.accounts,
                "permissions": consent.terms.permissions,
                "valid_from": consent.terms.valid_from,
                "valid_until": consent.terms.valid_until,
            });
        }
        if let Some(revocation) = state.effective_revocation(&id) {
            body["revocation"] = json!(revocation);
        }
        body
    });
    Ok(Json(body))
}

pub(super) async fn consent_receipt(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = consent_id(&id)?;
    let service = state.service.clone();
    let entry = blocking(move || {
        let credential = service.read(|replica| {
            replica
                .state()
                .consent(&id)
                .map(|consent| consent.credential.clone())
        });
        match credential {
            Some(credential) => service
                .locate(&Event::ConsentGranted { credential }.id())
                .map_err(|e| ApiError::internal(e.to_string())),
            None => Ok(None),
        }
    })
    .await??;
    let entry = entry.ok_or_else(|| {
        ApiError::new(
            ApiCode::ConsentUnknown,
            format!("no grant of consent {id} is on this node's log"),
        )
    })?;
    Ok(Json(json!({
        "consent_id": id.to_string(),
        "entry_hash": entry.hash().to_string(),
        "receipt": entry,
    })))
}

/// The access records banks made under one consent, newest first, at most [`MAX_LIST`].
pub(super) async fn consent_accesses(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = consent_id(&id)?;
    let body = state.service.read(|replica| {
        let mut records: Vec<Value> = replica
            .state()
            .accesses()
            .filter(|(_, record)| record.consent_id == id)
            .map(|(bank, record)| json!({ "bank": bank, "record": record }))
            .collect();
        records.sort_by_key(|r| std::cmp::Reverse(r["record"]["time"].as_u64()));
        let truncated = records.len() > MAX_LIST;
        records.truncate(MAX_LIST);
        json!({ "consent_id": id.to_string(), "accesses": records, "truncated": truncated })
    });
    Ok(Json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    client: Option<String>,
    app: Option<String>,
    bank: Option<String>,
}

pub(super) async fn list_consents(
    State(state): State<AppState>,
    filters: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let query = query(filters)?;
    let filters = [
        ("client", &query.client),
        ("app", &query.app),
        ("bank", &query.bank),
    ];
    let given: Vec<(&str, &String)> = filters
        .iter()
        .filter_map(|(name, value)| value.as_ref().map(|v| (*name, v)))
        .collect();
    let [(name, value)] = given.as_slice() else {
        return Err(ApiError::new(
            ApiCode::OneFilterRequired,
            "give exactly one of client, app or bank",
        ));
    };
    let who = did(name, value)?;
    let now = Utc::now();
    let body = state.service.read(|replica| {
        let state = replica.state();
        let ids = match *name {
            "client" => state.consents_by_client(&who),
            "app" => state.consents_by_app(&who),
            _ => state.consents_by_bank(&who),
        };
        let truncated = ids.len() > MAX_LIST;
        let consents: Vec<Value> = ids
            .iter()
            .take(MAX_LIST)
            .map(|id| json!({ "consent_id": id.to_string(), "status": state.consent_status(id, now) }))
            .collect();
        json!({ "consents": consents, "truncated": truncated })
    });
    Ok(Json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CatalogQuery {
    bank: Option<String>,
}

pub(super) async fn catalog(
    State(state): State<AppState>,
    bank: Result<Query<CatalogQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let query = query(bank)?;
    let bank_text = query.bank.ok_or_else(|| {
        ApiError::new(
            ApiCode::MissingParameter,
            "bank: the bank whose catalog to show",
        )
    })?;
    let bank = did("bank", &bank_text)?;
    let apps = state.service.read(|replica| replica.state().catalog(&bank));
    Ok(Json(json!({ "bank": bank, "apps": apps })))
}
