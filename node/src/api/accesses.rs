//! A consent's access history, answered by its bank from its own record store: each record with its inclusion proof and the signed commitment on the log it proves against, page by page.
//!
//! Access records never reach the shared log: the bank keeps them and commits to each
//! batch with a Merkle root (`consent_chain::merkle`). Whoever reads its records (the
//! consent's client, its app, its bank, a regulator) can check each one is under a root
//! the bank signed, and that the commitment is the one every member holds.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use consentnet_consent_chain::merkle::Tree;
use consentnet_consent_chain::store::records::{RecordKey, RecordStore};
use consentnet_consent_chain::{Entry, LogStore, StoreError};
use consentnet_identity::{ConsentId, Did};
use serde::Deserialize;
use serde_json::{Value, json};

use super::reader::{may_read, reader};
use super::{ApiCode, ApiError, AppState, blocking, consent_id, query};
use crate::core::NodeService;

/// Records in one page by default, and at most.
pub const PAGE: usize = 100;
/// See [`PAGE`].
pub const MAX_PAGE: usize = 1_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PageQuery {
    /// The `next` of the previous page.
    before: Option<String>,
    limit: Option<usize>,
}

/// Parses a page cursor, `time.batch.index`.
fn cursor(text: &str) -> Option<RecordKey> {
    let mut parts = text.split('.');
    let key = RecordKey {
        time: parts.next()?.parse().ok()?,
        batch: parts.next()?.parse().ok()?,
        index: parts.next()?.parse().ok()?,
    };
    parts.next().is_none().then_some(key)
}

fn cursor_text(key: RecordKey) -> String {
    format!("{}.{}.{}", key.time, key.batch, key.index)
}

/// `GET /v1/consents/{id}/accesses?before=&limit=`: the consent's access records, newest
/// first, for the parties entitled to the consent; anyone else gets none, as for a
/// consent not on the log. Only the consent's bank holds them: another node answers
/// `404 accesses_at_bank`, naming it.
pub(super) async fn consent_accesses(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = consent_id(&id)?;
    let page = query(page)?;
    let before = match page.before.as_deref() {
        None => None,
        Some(text) => Some(cursor(text).ok_or_else(|| {
            ApiError::new(
                ApiCode::InvalidQuery,
                "before: the `next` of the previous page (time.batch.index)",
            )
        })?),
    };
    let limit = page.limit.unwrap_or(PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::new(
            ApiCode::InvalidQuery,
            format!("limit: 1 to {MAX_PAGE}"),
        ));
    }
    let reader = reader(&state, &headers, uri.path())?;
    let published = state.service.state();
    let bank = state
        .service
        .consent_record(&id)
        .map_err(|e| ApiError::internal(e.to_string()))?
        .filter(|record| may_read(&published, &reader, &record.consent))
        .map(|record| record.consent.terms.bank.clone());
    let Some(bank) = bank else {
        return Ok(Json(
            json!({ "consent_id": id.to_string(), "accesses": [], "batches": {}, "next": null }),
        ));
    };
    let records = match state.service.own_records() {
        Some(own) if &bank == state.service.did() => own.clone(),
        _ => {
            return Err(ApiError::new(
                ApiCode::AccessesAtBank,
                format!(
                    "the access records of this consent stay with its bank, {bank}: ask its node"
                ),
            ));
        }
    };
    let service = state.service.clone();
    let body = blocking(move || answer(&service, &records, &bank, id, before, limit))
        .await?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(body))
}

/// One page, each record with its proof, and each batch it draws on with the signed
/// commitment entry the proofs are against.
fn answer(
    service: &NodeService,
    records: &RecordStore,
    bank: &Did,
    id: ConsentId,
    before: Option<RecordKey>,
    limit: usize,
) -> Result<Value, StoreError> {
    let mut page = records.of_consent(&id, before, limit + 1)?;
    let next = (page.len() > limit).then(|| cursor_text(page[limit - 1].0));
    page.truncate(limit);
    // Each batch's tree is built once per page; every proof from it is then O(log n).
    // A batch is stored before its commitment is appended: until then its records cannot
    // be proven, so they are not shown (they are, a moment later), and its tree is not
    // built.
    let mut batches: BTreeMap<u64, Option<(Tree, Entry)>> = BTreeMap::new();
    let mut accesses = Vec::with_capacity(page.len());
    for (key, record) in page {
        if let std::collections::btree_map::Entry::Vacant(slot) = batches.entry(key.batch) {
            slot.insert(committed_batch(service, records, bank, key.batch)?);
        }
        let Some((leaves, _)) = &batches[&key.batch] else {
            continue;
        };
        let proof: Vec<String> = leaves
            .proof(key.index as usize)
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect();
        accesses.push(json!({
            "bank": bank,
            "record": record,
            "batch": key.batch,
            "index": key.index,
            "proof": proof,
        }));
    }
    let batches: serde_json::Map<String, Value> = batches
        .into_iter()
        .filter_map(|(batch, committed)| {
            let (leaves, entry) = committed?;
            Some((
                batch.to_string(),
                json!({ "records": leaves.size(), "commitment": entry }),
            ))
        })
        .collect();
    Ok(json!({
        "consent_id": id.to_string(),
        "accesses": accesses,
        "batches": batches,
        "next": next,
    }))
}

/// A batch's tree and the commitment entry it proves against; `None` while the batch is
/// not committed yet.
fn committed_batch(
    service: &NodeService,
    records: &RecordStore,
    bank: &Did,
    batch: u64,
) -> Result<Option<(Tree, Entry)>, StoreError> {
    let Some(seq) = records.committed(batch)? else {
        return Ok(None);
    };
    let Some(entry) = service.read(|replica| replica.store().get(bank, seq))? else {
        return Ok(None);
    };
    let leaves = Tree::new(records.leaves(batch)?.unwrap_or_default());
    Ok(Some((leaves, entry)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use consentnet_consent_chain::event::{AccessCommitment, AccessRecord, Outcome};
    use consentnet_consent_chain::merkle::batch_root;
    use consentnet_consent_chain::{Genesis, Member, RocksStore, Role};
    use consentnet_identity::{Hash32, KeyPair};

    #[test]
    fn a_stored_batch_shows_only_once_its_commitment_is_on_the_log() {
        let (dir, bank) = (tempfile::tempdir().unwrap(), KeyPair::generate());
        let genesis = Genesis {
            network: "accesses-test".into(),
            members: vec![Member {
                did: bank.did().clone(),
                role: Role::Bank,
                peer_id: crate::p2p::peer_id_of(bank.did()).to_string(),
                name: "Bank".into(),
            }],
        };
        let store = RocksStore::open(&dir.path().join("log")).unwrap();
        let service = NodeService::open(store, genesis, bank.clone()).unwrap();
        let records = RecordStore::open_for(&dir.path().join("records"), bank.did()).unwrap();
        let id: ConsentId = Hash32([7; 32]);
        let batch = vec![AccessRecord {
            consent_id: Hash32([7; 32]),
            operation: "GET /aisp/accounts".into(),
            time: 1_000,
            outcome: Outcome::Served,
        }];
        records.put_batch(1, &batch).unwrap();
        // Stored, not yet committed: nothing that cannot be proven is answered.
        let page = answer(&service, &records, bank.did(), id, None, 10).unwrap();
        assert_eq!(page["accesses"], json!([]));
        assert_eq!(page["batches"], json!({}));
        let commitment = AccessCommitment {
            bank: bank.did().clone(),
            batch: 1,
            root: batch_root(&batch),
            records: 1,
            first: 1_000,
            last: 1_000,
        };
        let submitted = service.submit(service.access_event(commitment)).unwrap();
        records
            .put_committed(1, submitted.entry.entry().seq)
            .unwrap();
        let page = answer(&service, &records, bank.did(), id, None, 10).unwrap();
        assert_eq!(page["accesses"].as_array().unwrap().len(), 1);
        assert!(!page["batches"]["1"]["commitment"].is_null());
    }
}
