//! Access records held on this node: a bank's own record store, which it serves batch by batch to regulators only, or a regulator's copies of every bank's batches, fetched as their commitments arrive.
//!
//! The shared log carries only each batch's commitment. A regulator that wants to judge
//! what banks served fetches each committed batch from its bank over the authenticated
//! sync protocol, in order, one batch per bank at a time, and keeps it in a record store
//! per bank. It stores only batch numbers the bank committed to, so a bank cannot make
//! it store more than its commitments say; the audit checks each batch against its
//! commitment. A batch the bank cannot produce is kept as empty, which the audit reports.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use consentnet_consent_chain::audit::RecordSource;
use consentnet_consent_chain::event::{AccessRecord, MAX_ACCESS_RECORDS};
use consentnet_consent_chain::store::records::RecordStore;
use consentnet_consent_chain::{Role, StoreError};
use consentnet_identity::{Did, Hash32};

use super::NodeService;

/// The access records this node keeps, by role.
#[derive(Debug)]
pub enum HeldRecords {
    /// A bank's own records.
    Own(Arc<RecordStore>),
    /// A regulator's copies, one store per bank under a folder.
    Fetched(Fetched),
}

/// A regulator's copies of banks' batches.
#[derive(Debug)]
pub struct Fetched {
    dir: PathBuf,
    stores: Mutex<HashMap<Did, Arc<RecordStore>>>,
}

impl Fetched {
    /// Copies kept under `dir`, one store per bank (opened when first needed).
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            stores: Mutex::default(),
        }
    }

    fn store(&self, bank: &Did) -> Result<Arc<RecordStore>, StoreError> {
        let mut stores = self.stores.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = stores.get(bank) {
            return Ok(store.clone());
        }
        // A folder per bank, named by a hash of its DID (DIDs hold ':').
        let name = Hash32::of(bank.as_str().as_bytes()).to_string();
        let store = Arc::new(RecordStore::open_for(&self.dir.join(&name[..32]), bank)?);
        stores.insert(bank.clone(), store.clone());
        Ok(store)
    }
}

impl RecordSource for Fetched {
    fn batch(&self, bank: &Did, batch: u64) -> Result<Option<Vec<AccessRecord>>, StoreError> {
        self.store(bank)?.batch(batch)
    }
}

impl NodeService {
    /// Keeps `store`, this bank's own records, for regulators to fetch from.
    pub fn keep_own_records(&self, store: Arc<RecordStore>) {
        let _ = self.records.set(HeldRecords::Own(store));
    }

    /// Fetches every bank's committed batches into stores under `dir` (regulators).
    pub fn fetch_records_into(&self, dir: PathBuf) {
        let _ = self.records.set(HeldRecords::Fetched(Fetched::new(dir)));
    }

    /// The records this node holds, as an audit's source.
    pub fn held_records(&self) -> Option<&HeldRecords> {
        self.records.get()
    }

    /// Batch `batch` of this bank's records as JSON, for `requester` if it is a
    /// regulator member; `None` when this node does not serve it ("null" when the batch
    /// is not held).
    pub(super) fn serve_batch(&self, requester: &Did, batch: u64) -> Option<String> {
        let Some(HeldRecords::Own(store)) = self.records.get() else {
            return None;
        };
        let regulator = self.read(|replica| {
            replica
                .state()
                .membership()
                .has_role(requester, Role::Regulator)
        });
        if !regulator {
            return None;
        }
        let records = store.batch(batch).ok()?;
        serde_json::to_string(&records).ok()
    }

    /// The next batch to fetch from each bank that committed more than is held here.
    pub(super) fn wanted_batches(&self) -> Vec<(Did, u64)> {
        let Some(HeldRecords::Fetched(fetched)) = self.records.get() else {
            return Vec::new();
        };
        let committed = self.read(|replica| replica.state().committed().clone());
        committed
            .into_iter()
            .filter_map(|(bank, counts)| {
                let held = fetched.store(&bank).ok()?.last_batch().ok()?.unwrap_or(0);
                (held < counts.last_batch).then_some((bank, held + 1))
            })
            .collect()
    }

    /// Keeps `bank`'s batch `batch` (its records as JSON, or `null` when the bank does
    /// not hold it) when it is the next one wanted from that bank. False when it is not
    /// wanted or does not parse.
    pub(super) fn keep_batch(&self, bank: &Did, batch: u64, records: &str) -> bool {
        let wanted = self
            .wanted_batches()
            .into_iter()
            .any(|(b, n)| &b == bank && n == batch);
        let Some(HeldRecords::Fetched(fetched)) = self.records.get() else {
            return false;
        };
        let Ok(records) = serde_json::from_str::<Option<Vec<AccessRecord>>>(records) else {
            return false;
        };
        let records = records.unwrap_or_default();
        if !wanted || records.len() > MAX_ACCESS_RECORDS {
            return false;
        }
        let stored = fetched
            .store(bank)
            .and_then(|store| store.put_batch(batch, &records));
        if let Err(error) = &stored {
            tracing::warn!(%bank, batch, %error, "a fetched access batch was not stored");
        }
        stored.is_ok()
    }
}
