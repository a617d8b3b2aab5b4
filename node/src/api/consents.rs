//! Reads of the log: a consent's status, its receipt and access history, consents by party (each only for the parties entitled to it), and a bank's catalog (for anyone).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use chrono::{DateTime, Utc};
use consentnet_consent_chain::{ConsentStatus, Event, Party, StoreError, store};
use consentnet_identity::{ConsentId, Did};
use serde::Deserialize;
use serde_json::{Value, json};

use super::reader::{is_regulator, may_read, reader};
use super::{ApiCode, ApiError, AppState, blocking, consent_id, did, query};
use crate::core::NodeService;

/// Most consents one list query returns.
pub const MAX_LIST: usize = 1_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AtQuery {
    at: Option<String>,
}

/// A consent's status. A reader who may not read the consent gets the answer for a
/// consent that is not on the log: `unknown`, with no grant.
pub(super) async fn consent_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    at: Result<Query<AtQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = consent_id(&id)?;
    let query = query(at)?;
    let reader = reader(&state, &headers, uri.path())?;
    let at = match &query.at {
        None => Utc::now(),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map_err(|e| ApiError::new(ApiCode::InvalidTime, format!("at: {e}")))?
            .with_timezone(&Utc),
    };
    let record = state
        .service
        .consent_record(&id)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let published = state.service.state();
    let record = record.filter(|record| may_read(&published, &reader, &record.consent));
    let mut body = json!({
        "consent_id": id.to_string(),
        "status": record.as_ref().map_or(ConsentStatus::Unknown, |r| r.status(at)),
        "at": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    if let Some(record) = record {
        let consent = &record.consent;
        body["grant"] = json!({
            "issuer": consent.issuer,
            "app": consent.terms.app,
            "bank": consent.terms.bank,
            "accounts": consent.terms.accounts,
            "permissions": consent.terms.permissions,
            "valid_from": consent.terms.valid_from,
            "valid_until": consent.terms.valid_until,
        });
        if let Some(revocation) = record.effective_revocation() {
            body["revocation"] = json!(revocation);
        }
    }
    Ok(Json(body))
}

/// The signed entry that recorded a consent's grant, for the parties entitled to it.
pub(super) async fn consent_receipt(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let id = consent_id(&id)?;
    let reader = reader(&state, &headers, uri.path())?;
    let service = state.service.clone();
    let entry = blocking(move || {
        let published = service.state();
        let credential = service
            .consent_record(&id)
            .map_err(|e| ApiError::internal(e.to_string()))?
            .filter(|record| may_read(&published, &reader, &record.consent))
            .map(|record| record.consent.credential.clone());
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
            format!("no grant of consent {id} that you may read is on this node's log"),
        )
    })?;
    Ok(Json(json!({
        "consent_id": id.to_string(),
        "entry_hash": entry.hash().to_string(),
        "receipt": entry,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    client: Option<String>,
    app: Option<String>,
    bank: Option<String>,
}

/// The consents of one party: for that party itself, or a regulator.
pub(super) async fn list_consents(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
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
    let reader = reader(&state, &headers, uri.path())?;
    let party = match *name {
        "client" => Party::Client,
        "app" => Party::App,
        _ => Party::Bank,
    };
    let published = state.service.state();
    if reader != who && !is_regulator(&published, &reader) {
        return Err(ApiError::new(
            ApiCode::ReadNotEntitled,
            format!("{name}={who}: only that party or a regulator lists its consents"),
        ));
    }
    let service = state.service.clone();
    let body = blocking(move || list_of(&service, party, &who))
        .await?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(body))
}

/// A party's consents, live and archived, in id order, at most [`MAX_LIST`], with
/// their status now. The archive is read through a view, not under the replica's lock.
fn list_of(service: &NodeService, party: Party, who: &Did) -> Result<Value, StoreError> {
    let now = Utc::now();
    let archive = service.archive();
    let state = service.state();
    let live = match party {
        Party::Client => state.consents_by_client(who),
        Party::App => state.consents_by_app(who),
        Party::Bank => state.consents_by_bank(who),
    };
    let (store, generation) = (&archive.store, archive.generation);
    let archived = store::archive::of_party(store, generation, party, who, None, MAX_LIST + 1)?;
    let mut ids: Vec<ConsentId> = live.into_iter().chain(archived).collect();
    ids.sort_unstable();
    ids.dedup();
    let truncated = ids.len() > MAX_LIST;
    let mut consents = Vec::with_capacity(ids.len().min(MAX_LIST));
    for id in ids.iter().take(MAX_LIST) {
        let status = store::archive::record(store, generation, &state, id)?
            .map_or(ConsentStatus::Unknown, |record| record.status(now));
        consents.push(json!({ "consent_id": id.to_string(), "status": status }));
    }
    Ok(json!({ "consents": consents, "truncated": truncated }))
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
    let apps = state.service.state().catalog(&bank);
    Ok(Json(json!({ "bank": bank, "apps": apps })))
}
