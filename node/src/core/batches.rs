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

    /// The folder of `bank`'s copies, named by a hash of its DID (DIDs hold ':').
    fn folder(&self, bank: &Did) -> PathBuf {
        let name = Hash32::of(bank.as_str().as_bytes()).to_string();
        self.dir.join(&name[..32])
    }

    fn store(&self, bank: &Did) -> Result<Arc<RecordStore>, StoreError> {
        let mut stores = self.stores.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = stores.get(bank) {
            return Ok(store.clone());
        }
        let store = Arc::new(RecordStore::open_for(&self.folder(bank), bank)?);
        stores.insert(bank.clone(), store.clone());
        Ok(store)
    }
}

impl Fetched {
    /// Prunes every copy held of `banks`' batches whose records all predate
    /// `cutoff_ms` (see [`RecordStore::prune_before`]); returns how many batches went.
    pub fn prune_before<'a>(
        &self,
        banks: impl IntoIterator<Item = &'a Did>,
        cutoff_ms: u64,
    ) -> Result<usize, StoreError> {
        let mut pruned = 0;
        for bank in banks {
            if self.folder(bank).join("CURRENT").is_file() {
                pruned += self.store(bank)?.prune_before(cutoff_ms)?;
            }
        }
        Ok(pruned)
    }
}

impl RecordSource for Fetched {
    fn batch(&self, bank: &Did, batch: u64) -> Result<Option<Vec<AccessRecord>>, StoreError> {
        // Reading makes no store: a bank nothing was fetched from has no folder.
        if !self.folder(bank).join("CURRENT").is_file() {
            return Ok(None);
        }
        self.store(bank)?.batch(batch)
    }
}

/// The batch after the last one held from `bank`, when it committed up to `committed`.
fn next_from(fetched: &Fetched, bank: &Did, committed: u64) -> Option<u64> {
    let held = fetched.store(bank).ok()?.last_batch().ok()?.unwrap_or(0);
    (held < committed).then_some(held + 1)
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

    /// This bank's own record store, on a bank's node.
    pub fn own_records(&self) -> Option<&Arc<RecordStore>> {
        match self.records.get() {
            Some(HeldRecords::Own(store)) => Some(store),
            _ => None,
        }
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
        let committed = self.state().committed().clone();
        committed
            .into_iter()
            .filter_map(|(bank, counts)| {
                let next = next_from(fetched, &bank, counts.last_batch)?;
                Some((bank, next))
            })
            .collect()
    }

    /// The next batch to fetch from `bank`, when it committed more than is held here.
    pub(super) fn wanted_from(&self, bank: &Did) -> Option<u64> {
        let Some(HeldRecords::Fetched(fetched)) = self.records.get() else {
            return None;
        };
        let committed = self.state().committed().get(bank).map(|c| c.last_batch)?;
        next_from(fetched, bank, committed)
    }

    /// Keeps `bank`'s batch `batch` (its records as JSON, or `null` when the bank does
    /// not hold it) when it is the next one wanted from that bank. False when it is not
    /// wanted or does not parse.
    pub(super) fn keep_batch(&self, bank: &Did, batch: u64, records: &str) -> bool {
        let wanted = self.wanted_from(bank) == Some(batch);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use consentnet_consent_chain::event::{AccessCommitment, Outcome};
    use consentnet_consent_chain::merkle::batch_root;
    use consentnet_consent_chain::{Entry, Event, Genesis, Member, RocksStore};
    use consentnet_identity::KeyPair;

    struct Consortium {
        bank: KeyPair,
        tsp: KeyPair,
        regulator: KeyPair,
        genesis: Genesis,
    }

    fn consortium() -> Consortium {
        let (bank, tsp, regulator) = (
            KeyPair::generate(),
            KeyPair::generate(),
            KeyPair::generate(),
        );
        let member = |key: &KeyPair, role| Member {
            did: key.did().clone(),
            role,
            peer_id: crate::p2p::peer_id_of(key.did()).to_string(),
            name: format!("{role:?}"),
        };
        let genesis = Genesis {
            network: "batches-test".into(),
            members: vec![
                member(&bank, Role::Bank),
                member(&tsp, Role::Tsp),
                member(&regulator, Role::Regulator),
            ],
        };
        Consortium {
            bank,
            tsp,
            regulator,
            genesis,
        }
    }

    fn node(dir: &std::path::Path, c: &Consortium, key: &KeyPair) -> NodeService {
        let store = RocksStore::open(&dir.join("log")).unwrap();
        NodeService::open(store, c.genesis.clone(), key.clone()).unwrap()
    }

    fn records(n: u64) -> Vec<AccessRecord> {
        (0..n)
            .map(|i| AccessRecord {
                consent_id: Hash32([1; 32]),
                operation: "GET /aisp/accounts".into(),
                time: 1_000 + i,
                outcome: Outcome::Served,
            })
            .collect()
    }

    #[test]
    fn a_bank_serves_its_batches_to_regulators_only() {
        let (dir, c) = (tempfile::tempdir().unwrap(), consortium());
        let bank = node(dir.path(), &c, &c.bank);
        let store =
            Arc::new(RecordStore::open_for(&dir.path().join("records"), c.bank.did()).unwrap());
        store.put_batch(1, &records(3)).unwrap();
        // Not keeping records yet: nothing is served.
        assert_eq!(bank.serve_batch(c.regulator.did(), 1), None);
        bank.keep_own_records(store);
        let served = bank.serve_batch(c.regulator.did(), 1).unwrap();
        assert_eq!(
            serde_json::from_str::<Vec<AccessRecord>>(&served).unwrap(),
            records(3)
        );
        // Another TSP, another bank's node or a stranger gets nothing.
        assert_eq!(bank.serve_batch(c.tsp.did(), 1), None);
        assert_eq!(bank.serve_batch(c.bank.did(), 1), None);
        assert_eq!(bank.serve_batch(KeyPair::generate().did(), 1), None);
        // A batch it does not hold is answered as such, to a regulator.
        assert_eq!(
            bank.serve_batch(c.regulator.did(), 2).as_deref(),
            Some("null")
        );
    }

    #[test]
    fn a_regulator_keeps_only_the_next_batch_a_bank_committed_to() {
        let (dir, c) = (tempfile::tempdir().unwrap(), consortium());
        let regulator = node(dir.path(), &c, &c.regulator);
        regulator.fetch_records_into(dir.path().join("fetched"));
        let json = serde_json::to_string(&records(2)).unwrap();
        // Nothing committed: nothing wanted, nothing kept.
        assert!(regulator.wanted_batches().is_empty());
        assert!(!regulator.keep_batch(c.bank.did(), 1, &json));
        // The bank commits batch 1.
        let commitment = AccessCommitment {
            bank: c.bank.did().clone(),
            batch: 1,
            root: batch_root(&records(2)),
            records: 2,
            first: 1_000,
            last: 1_001,
        };
        let entry = Entry::sign(
            &c.bank,
            None,
            5,
            Event::access_committed(&c.bank, commitment),
        );
        regulator.write(|replica| replica.receive(entry)).unwrap();
        assert_eq!(regulator.wanted_batches(), vec![(c.bank.did().clone(), 1)]);
        // A batch number it did not commit to, or a body that does not parse, is refused.
        assert!(!regulator.keep_batch(c.bank.did(), 2, &json));
        assert!(!regulator.keep_batch(c.bank.did(), 1, "not json"));
        assert!(regulator.keep_batch(c.bank.did(), 1, &json));
        assert!(regulator.wanted_batches().is_empty(), "held now");
        assert!(!regulator.keep_batch(c.bank.did(), 1, &json), "kept once");
        let Some(HeldRecords::Fetched(fetched)) = regulator.held_records() else {
            panic!("a regulator keeps fetched copies");
        };
        assert_eq!(fetched.batch(c.bank.did(), 1).unwrap().unwrap(), records(2));
        // Pruned copies go, and are not fetched again.
        let banks = [c.bank.did().clone()];
        assert_eq!(
            fetched.prune_before(&banks, 1_001).unwrap(),
            0,
            "still in retention"
        );
        assert_eq!(fetched.prune_before(&banks, 2_000).unwrap(), 1);
        assert_eq!(fetched.batch(c.bank.did(), 1).unwrap(), None);
        assert!(
            regulator.wanted_batches().is_empty(),
            "a pruned batch counts as held"
        );
        assert!(
            !regulator.keep_batch(c.bank.did(), 1, &json),
            "and is not kept again"
        );
    }
}
