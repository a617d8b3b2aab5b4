//! The archive of ended consents as rows of a store: their keys (by generation, consent and party), the rows a retirement writes, and the typed reads over any [`LogStore`].
//!
//! Keys start with the archive generation (u64 big-endian), then a kind byte:
//! `c` + consent id -> the signed credential; `r` + consent id + event id -> a
//! revocation; `p` + party byte + party DID + 0x00 + consent id -> nothing (the list by
//! party). A snapshot write keeps one generation's rows and deletes the others'.

use std::collections::BTreeMap;
use std::sync::Arc;

use consentnet_identity::{ConsentId, Did, Hash32, Revocation, VerifiedConsent};
use serde_json::Value;

use super::{LogStore, StoreError};
use crate::state::{Archived, ConsentRecord, Party, Retirement, State};

/// One archive row: its key and value.
pub type ArchiveRow = (Vec<u8>, Vec<u8>);

/// The rows one snapshot write adds to the archive, and the generation it keeps.
#[derive(Debug, Clone, Default)]
pub struct ArchiveRows {
    /// The generation kept; rows of every other one are deleted.
    pub generation: u64,
    /// Keys and values to put.
    pub rows: Vec<ArchiveRow>,
}

fn key(generation: u64, kind: u8, rest: &[&[u8]]) -> Vec<u8> {
    let mut key = Vec::with_capacity(9 + rest.iter().map(|part| part.len()).sum::<usize>());
    key.extend_from_slice(&generation.to_be_bytes());
    key.push(kind);
    for part in rest {
        key.extend_from_slice(part);
    }
    key
}

fn party_byte(party: Party) -> u8 {
    match party {
        Party::Client => b'c',
        Party::App => b'a',
        Party::Bank => b'b',
    }
}

fn party_prefix(generation: u64, party: Party, did: &Did) -> Vec<u8> {
    key(
        generation,
        b'p',
        &[&[party_byte(party)], did.as_str().as_bytes(), &[0]],
    )
}

fn encoding(error: serde_json::Error) -> StoreError {
    StoreError::Backend(format!("encoding an archived consent: {error}"))
}

fn corrupt(error: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("an archived consent does not decode: {error}"))
}

/// The rows `retirement` writes.
pub fn rows(retirement: &Retirement) -> Result<ArchiveRows, StoreError> {
    let generation = retirement.generation;
    let mut rows = Vec::new();
    let mut revocation = |event_id: &Hash32, revocation: &Revocation| {
        let value = serde_json::to_vec(revocation).map_err(encoding)?;
        let id = revocation.consent_id;
        rows.push((key(generation, b'r', &[&id.0, &event_id.0]), value));
        Ok::<_, StoreError>(())
    };
    for (_, revocations) in &retirement.consents {
        for (event_id, r) in revocations {
            revocation(event_id, r)?;
        }
    }
    for (event_id, r) in &retirement.revocations {
        revocation(event_id, r)?;
    }
    for (consent, _) in &retirement.consents {
        let value = serde_json::to_vec(&consent.credential).map_err(encoding)?;
        rows.push((key(generation, b'c', &[&consent.id.0]), value));
        for party in [Party::Client, Party::App, Party::Bank] {
            let mut index = party_prefix(generation, party, party.of(consent));
            index.extend_from_slice(&consent.id.0);
            rows.push((index, Vec::new()));
        }
    }
    Ok(ArchiveRows { generation, rows })
}

/// The archive of one store at one generation, as the state asks it while applying an
/// event. A read that fails counts as not archived: the event is then held in memory
/// again, which costs memory, never a wrong answer.
pub struct StoreArchive<'a, S: ?Sized> {
    /// The store.
    pub store: &'a S,
    /// The generation the state's archived consents are under.
    pub generation: u64,
}

impl<S: LogStore + ?Sized> Archived for StoreArchive<'_, S> {
    fn holds_consent(&self, id: &ConsentId) -> bool {
        let key = key(self.generation, b'c', &[&id.0]);
        matches!(self.store.archive_get(&key), Ok(Some(_)))
    }

    fn holds_revocation(&self, id: &ConsentId, event_id: &Hash32) -> bool {
        let key = key(self.generation, b'r', &[&id.0, &event_id.0]);
        matches!(self.store.archive_get(&key), Ok(Some(_)))
    }
}

/// The signed credential of archived consent `id`.
pub fn consent<S: LogStore + ?Sized>(
    store: &S,
    generation: u64,
    id: &ConsentId,
) -> Result<Option<Value>, StoreError> {
    store
        .archive_get(&key(generation, b'c', &[&id.0]))?
        .map(|bytes| serde_json::from_slice(&bytes).map_err(corrupt))
        .transpose()
}

/// Consent `id` with every revocation applied to it: live in `state`, else archived in
/// `store` under `generation` (with the late revocations `state` holds for it).
pub fn record<S: LogStore + ?Sized>(
    store: &S,
    generation: u64,
    state: &State,
    id: &ConsentId,
) -> Result<Option<ConsentRecord>, StoreError> {
    if let Some(record) = state.consent_record(id) {
        return Ok(Some(record));
    }
    let Some(credential) = consent(store, generation, id)? else {
        return Ok(None);
    };
    let consent = VerifiedConsent::from_trusted_store(&credential).map_err(|error| {
        StoreError::Corrupt(format!("an archived consent does not parse: {error}"))
    })?;
    let mut revocations: BTreeMap<_, _> = revocations(store, generation, id)?.into_iter().collect();
    if let Some(late) = state.late_revocations(id) {
        revocations.extend(late.iter().map(|(id, r)| (*id, r.clone())));
    }
    Ok(Some(ConsentRecord {
        consent: Arc::new(consent),
        revocations,
    }))
}

/// The archived revocations of consent `id`, by event id.
pub fn revocations<S: LogStore + ?Sized>(
    store: &S,
    generation: u64,
    id: &ConsentId,
) -> Result<Vec<(Hash32, Revocation)>, StoreError> {
    let prefix = key(generation, b'r', &[&id.0]);
    let mut out = Vec::new();
    for (row, value) in store.archive_scan(&prefix, &prefix, usize::MAX)? {
        let event_id: [u8; 32] = row[prefix.len()..]
            .try_into()
            .map_err(|_| StoreError::Corrupt("an archived revocation key is damaged".into()))?;
        out.push((
            Hash32(event_id),
            serde_json::from_slice(&value).map_err(corrupt)?,
        ));
    }
    Ok(out)
}

/// Up to `limit` archived consents of `did` as `party`, in id order, after `after`.
pub fn of_party<S: LogStore + ?Sized>(
    store: &S,
    generation: u64,
    party: Party,
    did: &Did,
    after: Option<&ConsentId>,
    limit: usize,
) -> Result<Vec<ConsentId>, StoreError> {
    let prefix = party_prefix(generation, party, did);
    let mut start = prefix.clone();
    if let Some(after) = after {
        start.extend_from_slice(&after.0);
        start.push(0);
    }
    store
        .archive_scan(&start, &prefix, limit)?
        .into_iter()
        .map(|(row, _)| {
            <[u8; 32]>::try_from(&row[prefix.len()..])
                .map(Hash32)
                .map_err(|_| StoreError::Corrupt("an archived party key is damaged".into()))
        })
        .collect()
}

/// True when `key` belongs to `generation`.
pub(super) fn in_generation(key: &[u8], generation: u64) -> bool {
    key.get(..8) == Some(&generation.to_be_bytes()[..])
}
