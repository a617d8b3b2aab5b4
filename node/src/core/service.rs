//! The node's service: the replica (log, engine, state) behind one writer's lock, the state it publishes for readers after each commit, the node key, and the reads the API, the bank role and the portal make of them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

// A panic while holding the replica's lock leaves it as its last durable write made it:
// every mutation writes the store before touching memory, so the lock is taken over.
pub(super) use consentnet_identity::util::lock;

use consentnet_consent_chain::event::{AppDecision, AppManifest};
use consentnet_consent_chain::store::archive;
use consentnet_consent_chain::{
    ConsentRecord, Entry, Event, FeedHead, Genesis, Hash32, Replica, RocksStore, State, StoreError,
};
use consentnet_identity::{ConsentId, Did, KeyPair, Revocation};

use super::metrics::Metrics;

/// The node's log, state and key.
pub struct NodeService {
    pub(super) replica: Mutex<Replica<RocksStore>>,
    /// The state as of the last commit, published by the writer while it still holds
    /// the replica's lock (so in commit order). Readers take the pointer, never the
    /// replica's lock: a synced write does not hold them up.
    published: RwLock<Arc<State>>,
    pub(super) key: KeyPair,
    genesis: Genesis,
    pub(super) known_heads: Mutex<BTreeMap<Did, u64>>,
    /// Members whose entries came stamped beyond the clock-skew bound: the last skew
    /// seen (entry time minus this node's clock, ms). One slot per member at most.
    pub(super) clock_skew: Mutex<BTreeMap<Did, i64>>,
    /// Held by the one audit that may run at a time.
    audit_running: Mutex<()>,
    /// True from a write the store refused until one it takes.
    store_refusing: std::sync::atomic::AtomicBool,
    /// When the store was last reopened to recover from refusing writes.
    last_recovery: Mutex<Option<std::time::Instant>>,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// The access records this node keeps (a bank's own, or a regulator's copies).
    pub(super) records: std::sync::OnceLock<super::batches::HeldRecords>,
    /// Mini-app bundle files, and whether this node fetches those the log names.
    pub(super) bundles: std::sync::OnceLock<(super::bundles::BundleStore, bool)>,
}

/// A read-only view of the store with the archive generation in force when it was made.
#[derive(Debug)]
pub struct ArchiveView {
    /// The view of the store.
    pub store: RocksStore,
    /// The generation archived consents are under.
    pub generation: u64,
}

/// Why an audit did not run.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Another audit is running; one runs at a time.
    #[error("an audit of this node's log is running; one runs at a time")]
    Busy,
    /// The log could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl std::fmt::Debug for NodeService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeService")
            .field("did", self.key.did())
            .finish_non_exhaustive()
    }
}

pub(super) fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

impl NodeService {
    /// Opens the log in `store` for the consortium in `genesis`, as the node with `key`.
    pub fn open(store: RocksStore, genesis: Genesis, key: KeyPair) -> Result<Self, StoreError> {
        let mut replica = Replica::open(store, &genesis)?;
        // Snapshots are encoded outside the replica's lock (see `write`).
        replica.set_snapshot_deferred(true);
        let opened = replica.opened();
        tracing::info!(
            from_snapshot = opened.from_snapshot,
            replayed = opened.replayed,
            "state loaded"
        );
        Ok(Self {
            published: RwLock::new(Arc::new(replica.state().clone())),
            replica: Mutex::new(replica),
            key,
            genesis,
            known_heads: Mutex::default(),
            clock_skew: Mutex::default(),
            audit_running: Mutex::default(),
            store_refusing: std::sync::atomic::AtomicBool::new(false),
            last_recovery: Mutex::default(),
            metrics: Metrics::default(),
            records: std::sync::OnceLock::new(),
            bundles: std::sync::OnceLock::new(),
        })
    }

    /// This node's DID.
    pub fn did(&self) -> &Did {
        self.key.did()
    }

    /// The genesis this node runs.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// Runs `read` with the replica locked: for reads of the store or the frontier.
    /// Reads of the state alone use [`NodeService::state`], which takes no lock of the
    /// writer's.
    pub fn read<T>(&self, read: impl FnOnce(&Replica<RocksStore>) -> T) -> T {
        read(&lock(&self.replica))
    }

    /// The state as of the last commit: an immutable snapshot, taken without waiting on
    /// any write (the state's maps are persistent, so publishing one is cheap).
    pub fn state(&self) -> Arc<State> {
        self.published
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Publishes the state `replica` holds; called with its lock held, so in commit
    /// order.
    fn publish(&self, replica: &Replica<RocksStore>) {
        let state = Arc::new(replica.state().clone());
        *self
            .published
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = state;
    }

    /// A consent with every revocation applied to it: from the published state while
    /// it is live, else from the archive of ended consents. `None` when no grant of it
    /// is on the log.
    pub fn consent_record(&self, id: &ConsentId) -> Result<Option<ConsentRecord>, StoreError> {
        if let Some(record) = self.state().consent_record(id) {
            return Ok(Some(record));
        }
        let archive = self.archive();
        archive::record(&archive.store, archive.generation, &self.state(), id)
    }

    /// A view of the archive of ended consents as it stands, read without the
    /// replica's lock (which is taken only to make the view).
    pub fn archive(&self) -> ArchiveView {
        self.read(|replica| ArchiveView {
            store: replica.store().reader(),
            generation: replica.archive_generation(),
        })
    }

    /// Runs `write` with the replica locked, then publishes the state it left. A state
    /// snapshot that came due is captured under the lock (cheap: the state's maps are
    /// shared) but encoded after it is released, so O(state) work never holds up
    /// readers of the lock or other writers; only its store write takes the lock again.
    pub(super) fn write<T>(&self, write: impl FnOnce(&mut Replica<RocksStore>) -> T) -> T {
        let mut replica = lock(&self.replica);
        let out = write(&mut replica);
        self.publish(&replica);
        let due = replica.take_snapshot_due();
        drop(replica);
        if let Some(job) = due {
            let stored = job.encode().and_then(|encoded| {
                let mut replica = lock(&self.replica);
                let stored = replica.put_encoded_snapshot(encoded)?;
                // The snapshot moved ended consents to the archive.
                self.publish(&replica);
                Ok(stored)
            });
            if let Err(error) = stored {
                tracing::warn!(%error, "the state snapshot could not be written; it is tried again soon");
                lock(&self.replica).snapshot_failed();
            }
        }
        out
    }

    /// A revocation of consent `id` signed by this (bank) node, for a reason.
    pub fn bank_revocation(
        &self,
        id: consentnet_identity::ConsentId,
        time: chrono::DateTime<chrono::Utc>,
        reason: Option<String>,
    ) -> Revocation {
        Revocation::sign(&self.key, id, time, reason)
    }

    /// Signs with this node's key: for the bank's OBIE message signing of its answers
    /// (`x-jws-signature`), whose bytes the adapter alone builds.
    pub fn answer_signing(&self) -> consentnet_bank_adapter::jws::Sign {
        let key = self.key.clone();
        std::sync::Arc::new(move |bytes| key.sign(bytes))
    }

    /// `credential` issued by this node: signed with its own `did:key` (VC-API issue).
    pub async fn issue_credential(
        &self,
        credential: &serde_json::Value,
    ) -> Result<serde_json::Value, consentnet_identity::vcapi::Problem> {
        consentnet_identity::vcapi::issue_credential(&self.key, credential).await
    }

    /// A decision of this (bank) node on an app version, signed with its key.
    pub fn bank_decision(&self, decision: AppDecision) -> Event {
        Event::app_decided(&self.key, decision)
    }

    /// An access batch of this (bank) node, signed with its key.
    pub fn access_event(
        &self,
        commitment: consentnet_consent_chain::event::AccessCommitment,
    ) -> Event {
        Event::access_committed(&self.key, commitment)
    }

    /// The app manifest event, checked for its signature when submitted.
    pub fn app_published(manifest: AppManifest, signature: String) -> Event {
        Event::AppPublished {
            manifest,
            signature,
        }
    }

    /// The app decision event.
    pub fn app_decided(decision: AppDecision, signature: String) -> Event {
        Event::AppDecided {
            decision,
            signature,
        }
    }

    /// This node's frontier: every feed's head.
    pub fn frontier(&self) -> BTreeMap<Did, FeedHead> {
        self.read(|replica| replica.heads().clone())
    }

    /// How far behind this node is, per origin: the highest seq heard of minus the
    /// highest held.
    pub fn lag(&self) -> BTreeMap<Did, u64> {
        let heads = self.frontier();
        lock(&self.known_heads)
            .iter()
            .map(|(origin, known)| {
                let held = heads.get(origin).map_or(0, |h| h.seq);
                (origin.clone(), known.saturating_sub(held))
            })
            .collect()
    }

    /// Members whose entries came stamped beyond the clock-skew bound, with the last skew
    /// seen in ms (positive: ahead of this node's clock).
    pub fn clock_skew(&self) -> BTreeMap<Did, i64> {
        lock(&self.clock_skew).clone()
    }

    /// False while the store refuses writes (a full disk, say): from the refused write
    /// until the next one it takes. `/healthz` then answers not ready.
    pub fn writable(&self) -> bool {
        !self
            .store_refusing
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// While the store refuses writes, reopens it (at most once a second) so that writes
    /// resume by themselves once the cause is gone (space is back on the disk). Returns
    /// true when the store was reopened and holds what was acknowledged.
    pub fn recover(&self) -> bool {
        if self.writable() {
            return true;
        }
        {
            let mut last = lock(&self.last_recovery);
            if last.is_some_and(|at| at.elapsed() < std::time::Duration::from_secs(1)) {
                return false;
            }
            *last = Some(std::time::Instant::now());
        }
        match lock(&self.replica).recover_store(RocksStore::reopen) {
            Ok(()) => {
                // Health turns ok with the first write the reopened log takes.
                tracing::info!("the log reopened after refusing writes");
                true
            }
            Err(error) => {
                tracing::warn!(%error, "the log still refuses writes");
                false
            }
        }
    }

    /// Notes whether the store took a write.
    pub(super) fn note_write(&self, taken: bool) {
        let was = self
            .store_refusing
            .swap(!taken, std::sync::atomic::Ordering::Relaxed);
        if was == taken {
            if taken {
                tracing::info!("the log takes writes again");
            } else {
                tracing::error!("the log refuses writes; /healthz answers not ready");
            }
        }
    }

    /// Entries held, all feeds together.
    pub fn log_entries(&self) -> u64 {
        self.frontier().values().map(|h| h.seq).sum()
    }

    /// The state digest.
    pub fn state_digest(&self) -> Hash32 {
        self.state().digest()
    }

    /// The entry holding `event_id`, if held.
    pub fn locate(&self, event_id: &Hash32) -> Result<Option<Entry>, StoreError> {
        self.read(|replica| replica.locate(event_id))
    }

    /// Audits the whole log (see `consent_chain::audit`) over a read-only view of it as
    /// it stands: nothing waits on the audit. One runs at a time; another is
    /// [`AuditError::Busy`].
    pub fn audit(
        &self,
        config: consentnet_consent_chain::audit::AuditConfig,
        records: &dyn consentnet_consent_chain::audit::RecordSource,
    ) -> Result<consentnet_consent_chain::audit::AuditReport, AuditError> {
        let _running = match self.audit_running.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Err(AuditError::Busy),
        };
        // A view of the log as it stands, read without the replica's lock: writers and
        // readers go on while the audit runs.
        let view = self.read(|replica| replica.store().reader());
        Ok(consentnet_consent_chain::audit::audit(
            &view,
            &self.genesis,
            config,
            records,
        )?)
    }

    /// Writes a state snapshot now, moving ended consents to the archive, and publishes
    /// the state it leaves (snapshots otherwise come every so many stored entries).
    pub fn write_snapshot(&self) -> Result<(), StoreError> {
        let mut replica = lock(&self.replica);
        replica.write_snapshot()?;
        self.publish(&replica);
        Ok(())
    }

    /// Closes the store after writing a state snapshot: every acknowledged entry is
    /// already durable.
    pub fn close(self) {
        let mut replica = self
            .replica
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The next start then replays nothing.
        if let Err(error) = replica.write_snapshot() {
            tracing::warn!(%error, "the state snapshot could not be written at shutdown");
        }
        drop(replica);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use consentnet_consent_chain::audit::{AuditConfig, NoRecords};
    use consentnet_consent_chain::{Member, Role};

    fn service(dir: &std::path::Path) -> NodeService {
        let key = KeyPair::generate();
        let genesis = Genesis {
            network: "service-test".into(),
            members: vec![Member {
                did: key.did().clone(),
                role: Role::Regulator,
                peer_id: crate::p2p::peer_id_of(key.did()).to_string(),
                name: "Regulator".into(),
            }],
        };
        NodeService::open(RocksStore::open(dir).unwrap(), genesis, key).unwrap()
    }

    #[test]
    fn one_audit_runs_at_a_time_and_none_holds_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let service = service(dir.path());
        {
            let _running = service.audit_running.lock().unwrap();
            assert!(matches!(
                service.audit(AuditConfig::default(), &NoRecords),
                Err(AuditError::Busy)
            ));
        }
        // An audit made while another part holds the replica waits only to take its view:
        // with the view taken, it reads without the lock.
        let report = service.audit(AuditConfig::default(), &NoRecords).unwrap();
        assert!(report.clean);
        let view = service.read(|replica| replica.store().reader());
        let _writer = lock(&service.replica);
        let report = consentnet_consent_chain::audit::audit(
            &view,
            &service.genesis,
            AuditConfig::default(),
            &NoRecords,
        )
        .unwrap();
        assert_eq!(report.entries, 0);
    }
}
