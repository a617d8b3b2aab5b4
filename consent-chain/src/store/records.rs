//! The bank's own store of access records, in RocksDB: each batch's records in committed order, and the same records indexed by consent and time. It lives only on the bank's node; the shared log carries each batch's Merkle root.
//!
//! Keys: `batches` holds `batch (u64 big-endian)` → the batch's records as a JSON array;
//! `by_consent` holds `consent id (32 bytes), time, batch (u64 big-endian), index (u32
//! big-endian)` → the record's JSON, so one consent's history is one ordered key range,
//! read page by page without touching other consents; `leaves` holds each batch's leaf
//! hashes (32 bytes per record), what an inclusion proof is built from; `committed` the
//! feed seq of each batch's commitment; `meta` the bank the store belongs to. Every
//! write is one synced batch.

use std::path::Path;

use consentnet_identity::{ConsentId, Hash32};
use rocksdb::{ColumnFamily, DB, Direction, IteratorMode, WriteBatch, WriteOptions};

use super::StoreError;
use crate::audit::RecordSource;
use crate::event::AccessRecord;
use crate::merkle::record_leaf;

const BATCHES: &str = "batches";
const BY_CONSENT: &str = "by_consent";
const COMMITTED: &str = "committed";
const LEAVES: &str = "leaves";
const META: &str = "meta";
const OWNER: &[u8] = b"owner";
/// The highest batch number pruned: a pruned batch still counts as held, so it is
/// neither numbered again nor fetched again.
const PRUNED_THROUGH: &[u8] = b"pruned-through";

/// Where one record sits: its time, its batch and its place in the batch. Records of a
/// consent are ordered by it, and a page ends at one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RecordKey {
    /// The record's time, ms since the Unix epoch.
    pub time: u64,
    /// The batch holding it.
    pub batch: u64,
    /// Its index in the batch (its leaf in the batch's Merkle tree).
    pub index: u32,
}

/// A bank's access records, on its own node only.
pub struct RecordStore {
    db: DB,
}

impl std::fmt::Debug for RecordStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordStore").finish_non_exhaustive()
    }
}

fn backend(error: rocksdb::Error) -> StoreError {
    StoreError::Backend(error.to_string())
}

fn consent_key(consent: &ConsentId, key: RecordKey) -> [u8; 52] {
    let mut bytes = [0u8; 52];
    bytes[..32].copy_from_slice(&consent.0);
    bytes[32..40].copy_from_slice(&key.time.to_be_bytes());
    bytes[40..48].copy_from_slice(&key.batch.to_be_bytes());
    bytes[48..].copy_from_slice(&key.index.to_be_bytes());
    bytes
}

fn decode_key(bytes: &[u8]) -> Result<RecordKey, StoreError> {
    let bytes: &[u8; 52] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("a record key is not 52 bytes".into()))?;
    let u64_at = |at: usize| {
        let mut part = [0u8; 8];
        part.copy_from_slice(&bytes[at..at + 8]);
        u64::from_be_bytes(part)
    };
    let mut index = [0u8; 4];
    index.copy_from_slice(&bytes[48..]);
    Ok(RecordKey {
        time: u64_at(32),
        batch: u64_at(40),
        index: u32::from_be_bytes(index),
    })
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl RecordStore {
    /// Opens (or creates) the store in directory `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = super::rocks::bounded_open(path, &[BATCHES, BY_CONSENT, COMMITTED, META, LEAVES])?;
        Ok(Self { db })
    }

    /// Opens (or creates) the store of `bank`'s records in `path`; a store made for
    /// another bank is refused.
    pub fn open_for(path: &Path, bank: &consentnet_identity::Did) -> Result<Self, StoreError> {
        let store = Self::open(path)?;
        match store.owner()? {
            None => store
                .db
                .put_cf(store.cf(META)?, OWNER, bank.as_str())
                .map_err(backend)?,
            Some(owner) if &owner == bank => {}
            Some(owner) => {
                return Err(StoreError::Corrupt(format!(
                    "this record store holds {owner}'s records, not {bank}'s"
                )));
            }
        }
        Ok(store)
    }

    /// The bank whose records this store holds, once [`RecordStore::open_for`] named it.
    pub fn owner(&self) -> Result<Option<consentnet_identity::Did>, StoreError> {
        let Some(bytes) = self.db.get_cf(self.cf(META)?, OWNER).map_err(backend)? else {
            return Ok(None);
        };
        let text = String::from_utf8(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        consentnet_identity::Did::parse(&text)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    fn cf(&self, name: &str) -> Result<&ColumnFamily, StoreError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StoreError::Corrupt(format!("column family {name} is missing")))
    }

    /// Stores batch `batch` with its records, durably, all or nothing. A batch number is
    /// written once: storing it again is refused, so a committed root never changes.
    pub fn put_batch(&self, batch: u64, records: &[AccessRecord]) -> Result<(), StoreError> {
        let batches = self.cf(BATCHES)?;
        if self
            .db
            .get_cf(batches, batch.to_be_bytes())
            .map_err(backend)?
            .is_some()
        {
            return Err(StoreError::Backend(format!(
                "batch {batch} is stored already"
            )));
        }
        let mut write = WriteBatch::default();
        let body = serde_json::to_vec(records).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        write.put_cf(batches, batch.to_be_bytes(), body);
        // The leaf hashes, so an inclusion proof needs 32 bytes per record, not the records.
        let leaves: Vec<u8> = records.iter().flat_map(|r| record_leaf(r).0).collect();
        write.put_cf(self.cf(LEAVES)?, batch.to_be_bytes(), leaves);
        let by_consent = self.cf(BY_CONSENT)?;
        for (index, record) in records.iter().enumerate() {
            let index = u32::try_from(index)
                .map_err(|_| StoreError::Backend("a batch of over 2^32 records".into()))?;
            let key = RecordKey {
                time: record.time,
                batch,
                index,
            };
            let value =
                serde_json::to_vec(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            write.put_cf(by_consent, consent_key(&record.consent_id, key), value);
        }
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db.write_opt(write, &options).map_err(backend)
    }

    /// Notes that batch `batch`'s commitment is entry `seq` of the bank's feed.
    pub fn put_committed(&self, batch: u64, seq: u64) -> Result<(), StoreError> {
        self.db
            .put_cf(self.cf(COMMITTED)?, batch.to_be_bytes(), seq.to_be_bytes())
            .map_err(backend)
    }

    /// The seq of the feed entry holding batch `batch`'s commitment, once noted.
    pub fn committed(&self, batch: u64) -> Result<Option<u64>, StoreError> {
        let bytes = self
            .db
            .get_cf(self.cf(COMMITTED)?, batch.to_be_bytes())
            .map_err(backend)?;
        bytes
            .map(|b| {
                let b: [u8; 8] = b
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("a commitment seq is not 8 bytes".into()))?;
                Ok(u64::from_be_bytes(b))
            })
            .transpose()
    }

    /// The records of batch `batch`, in order.
    pub fn batch(&self, batch: u64) -> Result<Option<Vec<AccessRecord>>, StoreError> {
        let bytes = self
            .db
            .get_cf(self.cf(BATCHES)?, batch.to_be_bytes())
            .map_err(backend)?;
        bytes.map(|b| decode(&b)).transpose()
    }

    /// The leaf hashes of batch `batch`'s records, in order (its Merkle tree's leaves).
    pub fn leaves(&self, batch: u64) -> Result<Option<Vec<Hash32>>, StoreError> {
        let Some(bytes) = self
            .db
            .get_cf(self.cf(LEAVES)?, batch.to_be_bytes())
            .map_err(backend)?
        else {
            return Ok(None);
        };
        if bytes.len() % 32 != 0 {
            return Err(StoreError::Corrupt(
                "leaf hashes are not 32 bytes each".into(),
            ));
        }
        Ok(Some(
            bytes
                .chunks_exact(32)
                .map(|chunk| {
                    let mut hash = [0u8; 32];
                    hash.copy_from_slice(chunk);
                    Hash32(hash)
                })
                .collect(),
        ))
    }

    /// The highest batch number stored, or pruned after it was stored.
    pub fn last_batch(&self) -> Result<Option<u64>, StoreError> {
        let mut iter = self.db.iterator_cf(self.cf(BATCHES)?, IteratorMode::End);
        let stored = match iter.next() {
            None => None,
            Some(item) => {
                let (key, _) = item.map_err(backend)?;
                Some(batch_number(&key)?)
            }
        };
        Ok(stored.max(self.pruned_through()?))
    }

    /// The highest batch number pruned, if any was.
    fn pruned_through(&self) -> Result<Option<u64>, StoreError> {
        self.db
            .get_cf(self.cf(META)?, PRUNED_THROUGH)
            .map_err(backend)?
            .map(|bytes| batch_number(&bytes))
            .transpose()
    }

    /// `consent`'s records, newest first, at most `limit`, each older than `before` when
    /// given (the last key of the previous page).
    pub fn of_consent(
        &self,
        consent: &ConsentId,
        before: Option<RecordKey>,
        limit: usize,
    ) -> Result<Vec<(RecordKey, AccessRecord)>, StoreError> {
        let start = match before {
            Some(key) => consent_key(consent, key),
            None => consent_key(
                consent,
                RecordKey {
                    time: u64::MAX,
                    batch: u64::MAX,
                    index: u32::MAX,
                },
            ),
        };
        let iter = self.db.iterator_cf(
            self.cf(BY_CONSENT)?,
            IteratorMode::From(&start, Direction::Reverse),
        );
        let mut page = Vec::new();
        for item in iter {
            let (key, value) = item.map_err(backend)?;
            if !key.starts_with(&consent.0) || page.len() == limit {
                break;
            }
            let at = decode_key(&key)?;
            if before == Some(at) {
                continue;
            }
            page.push((at, decode(&value)?));
        }
        Ok(page)
    }

    /// Drops the bodies of the oldest batches whose newest record is older than
    /// `cutoff_ms`, and their index, up to the first batch still in the retention period;
    /// returns how many batches went. The commitments on the
    /// shared log stay: they are what the records were checked against.
    pub fn prune_before(&self, cutoff_ms: u64) -> Result<usize, StoreError> {
        let batches = self.cf(BATCHES)?;
        let by_consent = self.cf(BY_CONSENT)?;
        let mut write = WriteBatch::default();
        let mut dropped = 0;
        let mut pruned_through = self.pruned_through()?;
        for item in self.db.iterator_cf(batches, IteratorMode::Start) {
            let (key, value) = item.map_err(backend)?;
            let records: Vec<AccessRecord> = decode(&value)?;
            // Batches are numbered in the order they were made: the first one still in
            // the retention period ends the pass.
            if records.iter().any(|r| r.time >= cutoff_ms) {
                break;
            }
            let batch = batch_number(&key)?;
            pruned_through = pruned_through.max(Some(batch));
            for (index, record) in records.iter().enumerate() {
                let index = u32::try_from(index).unwrap_or(u32::MAX);
                let at = RecordKey {
                    time: record.time,
                    batch,
                    index,
                };
                write.delete_cf(by_consent, consent_key(&record.consent_id, at));
            }
            write.delete_cf(self.cf(LEAVES)?, &key);
            write.delete_cf(batches, key);
            dropped += 1;
        }
        if let Some(through) = pruned_through {
            write.put_cf(self.cf(META)?, PRUNED_THROUGH, through.to_be_bytes());
        }
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db.write_opt(write, &options).map_err(backend)?;
        Ok(dropped)
    }
}

/// A batch number stored as 8 big-endian bytes.
fn batch_number(bytes: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("a batch number is not 8 bytes".into()))?;
    Ok(u64::from_be_bytes(bytes))
}

/// One bank's own records, as an audit source: its batches, and no other bank's.
#[derive(Debug)]
pub struct BankRecords<'a> {
    /// The bank.
    pub bank: &'a consentnet_identity::Did,
    /// Its record store.
    pub store: &'a RecordStore,
}

impl RecordSource for BankRecords<'_> {
    fn batch(
        &self,
        bank: &consentnet_identity::Did,
        batch: u64,
    ) -> Result<Option<Vec<AccessRecord>>, StoreError> {
        if bank == self.bank {
            self.store.batch(batch)
        } else {
            Ok(None)
        }
    }
}
