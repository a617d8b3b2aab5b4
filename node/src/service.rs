//! The node's core: the replica (log, engine, state) behind one lock, the node key, and the operations the HTTP API and the network loop ask of them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, oneshot};

use consentnet_consent_chain::event::{AppDecision, AppManifest};
use consentnet_consent_chain::replica::MAX_RANGE;
use consentnet_consent_chain::validate::EventError;
use consentnet_consent_chain::{
    Appended, Entry, Equivocation, Event, FeedHead, Genesis, Hash32, RangeRequest, Received,
    Rejected, Replica, RocksStore, Sealed, StoreError,
};
use consentnet_identity::{Did, KeyPair, Revocation};

use crate::metrics::Metrics;

/// Why a submission was refused. Each maps to one HTTP status and code.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The event failed validation.
    #[error(transparent)]
    Invalid(#[from] EventError),
    /// A revocation by someone who may not revoke that consent.
    #[error("{0} may not revoke this consent: only its issuer or its bank may")]
    NotEntitled(String),
    /// This node is not a member of the consortium it was started for.
    #[error("this node is not a member of the consortium")]
    NodeNotMember,
    /// The log could not be written; nothing was acknowledged.
    #[error("the log is unavailable: {0}")]
    Store(#[from] StoreError),
    /// The node is shutting down.
    #[error("the node is shutting down")]
    Stopping,
}

/// Submissions waiting for the submitter thread at most.
const SUBMIT_QUEUE: usize = 1024;
/// Submissions written together at most.
const SUBMIT_BURST: usize = 256;

type Submission = (Event, oneshot::Sender<Result<Submitted, SubmitError>>);

/// Hands submissions to one blocking thread that validates them, writes whatever has
/// queued up with one durable write (group commit) and gossips the new entries of that
/// write together. Cloneable; bounded.
#[derive(Clone, Debug)]
pub struct Submitter {
    queue: mpsc::Sender<Submission>,
}

impl Submitter {
    /// Starts the submitter thread for `service`; new entries are gossiped on `network`
    /// when there is one.
    pub fn start(
        service: Arc<NodeService>,
        network: Option<crate::network::NetworkHandle>,
    ) -> std::io::Result<Self> {
        let (queue, mut inbox) = mpsc::channel::<Submission>(SUBMIT_QUEUE);
        std::thread::Builder::new()
            .name("submitter".into())
            .spawn(move || {
                while let Some(first) = inbox.blocking_recv() {
                    let mut burst = vec![first];
                    while burst.len() < SUBMIT_BURST {
                        match inbox.try_recv() {
                            Ok(next) => burst.push(next),
                            Err(_) => break,
                        }
                    }
                    let (events, replies): (Vec<Event>, Vec<_>) = burst.into_iter().unzip();
                    let results = service.submit_many(events);
                    let fresh: Vec<Vec<u8>> = results
                        .iter()
                        .filter_map(|result| match result {
                            Ok(submitted) if submitted.new => {
                                Some(submitted.entry.bytes().to_vec())
                            }
                            _ => None,
                        })
                        .collect();
                    for (reply, result) in replies.into_iter().zip(results) {
                        // The caller may have gone; the entry stays acknowledged on the log.
                        let _ = reply.send(result);
                    }
                    if let Some(network) = network.as_ref().filter(|_| !fresh.is_empty()) {
                        network.publish_blocking(fresh);
                    }
                }
            })?;
        Ok(Self { queue })
    }

    /// Submits `event`; resolves once it is durable (or refused).
    pub async fn submit(&self, event: Event) -> Result<Submitted, SubmitError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((event, reply))
            .await
            .map_err(|_| SubmitError::Stopping)?;
        answer.await.map_err(|_| SubmitError::Stopping)?
    }
}

/// A durable submission: the signed entry that holds the event (the receipt).
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The entry holding the event, in this or another node's feed, with its bytes.
    pub entry: Sealed,
    /// False when the event was already on the log.
    pub new: bool,
}

/// What the engine said about one gossiped entry, as gossipsub needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GossipVerdict {
    /// Valid and stored (or held for a gap): forward it.
    Accept {
        /// A gap this entry revealed: sync with the sender.
        gap: bool,
    },
    /// Already held, or no room to hold it now: do not forward, no penalty.
    Ignore,
    /// Invalid: do not forward, penalise the sender.
    Reject(String),
    /// Signed by its origin but contradicting an entry held: not forwarded, and the two
    /// entries go out as equivocation evidence.
    Conflict(Box<Equivocation>),
}

/// Outcome of storing a batch of entries from a sync answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncOutcome {
    /// Entries stored.
    pub stored: usize,
    /// Entries refused as invalid.
    pub rejected: usize,
    /// Some entries wait for earlier ones.
    pub gap: bool,
    /// Equivocations the entries revealed, to pass on.
    pub evidence: Vec<Equivocation>,
}

/// The node's log, state and key.
pub struct NodeService {
    replica: Mutex<Replica<RocksStore>>,
    key: KeyPair,
    genesis: Genesis,
    known_heads: Mutex<BTreeMap<Did, u64>>,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
}

impl std::fmt::Debug for NodeService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeService")
            .field("did", self.key.did())
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves the replica as its last durable write made
    // it: every mutation writes the store before touching memory.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The verdict for a message holding entries judged `a` and `b`: a rejection wins, then
/// a conflict (its evidence is passed on), then acceptance (with a gap if either had
/// one); two ignores stay ignored.
fn worse(a: GossipVerdict, b: GossipVerdict) -> GossipVerdict {
    use GossipVerdict::{Accept, Conflict, Ignore, Reject};
    match (a, b) {
        (reject @ Reject(_), _) | (_, reject @ Reject(_)) => reject,
        (conflict @ Conflict(_), _) | (_, conflict @ Conflict(_)) => conflict,
        (Accept { gap: x }, Accept { gap: y }) => Accept { gap: x || y },
        (accept @ Accept { .. }, Ignore) | (Ignore, accept @ Accept { .. }) => accept,
        (Ignore, Ignore) => Ignore,
    }
}

impl NodeService {
    /// Opens the log in `store` for the consortium in `genesis`, as the node with `key`.
    pub fn open(store: RocksStore, genesis: Genesis, key: KeyPair) -> Result<Self, StoreError> {
        let replica = Replica::open(store, &genesis)?;
        Ok(Self {
            replica: Mutex::new(replica),
            key,
            genesis,
            known_heads: Mutex::default(),
            metrics: Metrics::default(),
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

    /// Runs `read` with the replica locked.
    pub fn read<T>(&self, read: impl FnOnce(&Replica<RocksStore>) -> T) -> T {
        read(&lock(&self.replica))
    }

    /// Validates `event` and appends it to this node's feed, durably.
    pub fn submit(&self, event: Event) -> Result<Submitted, SubmitError> {
        self.submit_many(vec![event])
            .pop()
            .unwrap_or_else(|| unreachable!("one result per event"))
    }

    /// [`NodeService::submit`] for several events with one durable write (group
    /// commit); one result per event, in order.
    pub fn submit_many(&self, events: Vec<Event>) -> Vec<Result<Submitted, SubmitError>> {
        let mut results: Vec<Option<Result<Submitted, SubmitError>>> = Vec::new();
        let mut accepted = Vec::with_capacity(events.len());
        let mut slots = Vec::with_capacity(events.len());
        for event in events {
            let checked = match &event {
                Event::ConsentRevoked { revocation } => self.check_revoker(revocation),
                _ => Ok(()),
            };
            match checked {
                Ok(()) => {
                    slots.push(results.len());
                    accepted.push(event);
                    results.push(None);
                }
                Err(error) => results.push(Some(Err(error))),
            }
        }
        // Canonical JSON and a batch check of the events' own signatures, outside the lock.
        let prepared = consentnet_consent_chain::replica::prepare_events(accepted);
        let appended = lock(&self.replica).append_prepared(&self.key, prepared, now_ms());
        for (slot, result) in slots.into_iter().zip(appended) {
            results[slot] = Some(match result {
                Ok(Appended::New(entry)) => Ok(Submitted { entry, new: true }),
                Ok(Appended::Existing(entry)) => Ok(Submitted { entry, new: false }),
                Err(Rejected::InvalidEvent(error)) => Err(SubmitError::Invalid(error)),
                Err(Rejected::Store(error)) => Err(SubmitError::Store(error)),
                Err(Rejected::NotMember(_)) => Err(SubmitError::NodeNotMember),
                Err(other) => Err(SubmitError::Store(StoreError::Corrupt(other.to_string()))),
            });
        }
        let results: Vec<_> = results.into_iter().flatten().collect();
        for result in &results {
            self.metrics.submission(result.is_ok());
        }
        results
    }

    /// A revocation of a known consent must come from its issuer or its bank.
    fn check_revoker(&self, revocation: &Revocation) -> Result<(), SubmitError> {
        self.read(
            |replica| match replica.state().consent(&revocation.consent_id) {
                Some(consent)
                    if revocation.revoker != consent.issuer
                        && revocation.revoker != consent.terms.bank =>
                {
                    Err(SubmitError::NotEntitled(revocation.revoker.to_string()))
                }
                _ => Ok(()),
            },
        )
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

    /// A decision of this (bank) node on an app version, signed with its key.
    pub fn bank_decision(&self, decision: AppDecision) -> Event {
        Event::app_decided(&self.key, decision)
    }

    /// An access batch of this (bank) node, signed with its key.
    pub fn access_event(&self, batch: consentnet_consent_chain::event::AccessBatch) -> Event {
        Event::access_recorded(&self.key, batch)
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

    /// Checks and stores one gossip message (one or more entries' canonical bytes).
    pub fn receive_gossip(&self, bytes: &[u8]) -> GossipVerdict {
        let mut verdicts = self.receive_gossip_batch(&[bytes]);
        verdicts.pop().unwrap_or(GossipVerdict::Ignore)
    }

    /// Checks and stores a burst of gossip messages under one lock, one verdict per
    /// message in order. A message holds one or more entries (see
    /// [`crate::network::unbundle`]); its verdict is the worst of its entries': any
    /// invalid entry rejects it, a conflict is reported, and it is forwarded when at
    /// least one entry was new. Entries of one feed that arrive together are stored in
    /// one durable write: later ones wait in the engine's buffer until the first extends
    /// the feed.
    pub fn receive_gossip_batch(&self, messages: &[&[u8]]) -> Vec<GossipVerdict> {
        // Each entry's verdict, with the message it came in.
        let mut verdicts: Vec<(usize, GossipVerdict)> = Vec::new();
        let mut decoded = Vec::new();
        let mut refused = vec![None; messages.len()];
        for (message, bytes) in messages.iter().enumerate() {
            let parts = match crate::network::unbundle(bytes) {
                Ok(parts) => parts,
                Err(reason) => {
                    refused[message] = Some(GossipVerdict::Reject(reason));
                    continue;
                }
            };
            for part in parts {
                let index = verdicts.len();
                match Sealed::decode(part) {
                    Ok(entry) => {
                        self.note_known(&entry.origin, entry.seq);
                        verdicts.push((message, GossipVerdict::Ignore));
                        decoded.push((index, entry));
                    }
                    Err(error) => {
                        verdicts.push((message, GossipVerdict::Reject(error.to_string())));
                    }
                }
            }
        }
        // Highest seq first within a feed, as `Replica::receive_many` does.
        decoded.sort_by(|(_, a), (_, b)| (&a.origin, b.seq).cmp(&(&b.origin, a.seq)));
        // Non-members' entries are refused before any signature is checked.
        let (members, outsiders): (Vec<_>, Vec<_>) = {
            let replica = lock(&self.replica);
            decoded
                .into_iter()
                .partition(|(_, entry)| replica.state().membership().get(&entry.origin).is_some())
        };
        for (index, entry) in outsiders {
            verdicts[index].1 =
                GossipVerdict::Reject(Rejected::NotMember(entry.origin.to_string()).to_string());
        }
        // Every signature of the burst verified together, outside the replica's lock.
        let signatures =
            consentnet_consent_chain::replica::verify_sealed(members.iter().map(|(_, e)| e));
        let mut buffered = Vec::new();
        let mut stored = 0;
        {
            let mut replica = lock(&self.replica);
            for ((index, entry), signatures) in members.into_iter().zip(signatures) {
                let position = (entry.origin.clone(), entry.seq);
                verdicts[index].1 = match replica.receive_sealed(entry, signatures) {
                    Ok(Received::Stored(entries)) => {
                        stored += entries.len();
                        GossipVerdict::Accept { gap: false }
                    }
                    Ok(Received::Buffered { .. }) => {
                        buffered.push((index, position));
                        GossipVerdict::Accept { gap: true }
                    }
                    Ok(Received::Equivocation(evidence)) => GossipVerdict::Conflict(evidence),
                    Ok(Received::Duplicate) => GossipVerdict::Ignore,
                    Err(Rejected::PendingFull(_) | Rejected::Store(_)) => GossipVerdict::Ignore,
                    Err(error) => GossipVerdict::Reject(error.to_string()),
                };
            }
            // A buffered entry that a later one in the burst drained is no gap.
            for (index, (origin, seq)) in buffered {
                if replica.heads().get(&origin).is_some_and(|h| h.seq >= seq) {
                    verdicts[index].1 = GossipVerdict::Accept { gap: false };
                }
            }
        }
        self.metrics.stored(stored);
        for verdict in refused
            .iter()
            .flatten()
            .chain(verdicts.iter().map(|(_, v)| v))
        {
            self.metrics.gossip(verdict);
        }
        let mut judged = refused;
        for (message, verdict) in verdicts {
            let slot = &mut judged[message];
            *slot = Some(match slot.take() {
                None => verdict,
                Some(earlier) => worse(earlier, verdict),
            });
        }
        judged
            .into_iter()
            .map(|verdict| verdict.unwrap_or(GossipVerdict::Ignore))
            .collect()
    }

    fn note_known(&self, origin: &Did, seq: u64) {
        let mut known = lock(&self.known_heads);
        let slot = known.entry(origin.clone()).or_default();
        *slot = (*slot).max(seq);
    }

    /// This node's frontier: every feed's head.
    pub fn frontier(&self) -> BTreeMap<Did, FeedHead> {
        self.read(|replica| replica.heads().clone())
    }

    /// The ranges to ask a peer for, given its frontier.
    pub fn wants(&self, theirs: &BTreeMap<Did, FeedHead>) -> Vec<RangeRequest> {
        for (origin, head) in theirs {
            self.note_known(origin, head.seq);
        }
        self.read(|replica| replica.wants(theirs))
    }

    /// Entries for a peer's range request, at most [`MAX_RANGE`], as their canonical
    /// bytes straight from the store.
    pub fn serve(&self, request: &RangeRequest) -> Result<Vec<Vec<u8>>, StoreError> {
        let request = RangeRequest {
            to: request.to.min(request.from.saturating_add(MAX_RANGE - 1)),
            ..request.clone()
        };
        self.read(|replica| replica.serve_encoded(&request))
    }

    /// Checks and stores entries from a sync answer.
    pub fn receive_entries(&self, entries: Vec<Sealed>) -> SyncOutcome {
        let mut outcome = SyncOutcome::default();
        for entry in &entries {
            self.note_known(&entry.origin, entry.seq);
        }
        for result in lock(&self.replica).receive_many_sealed(entries) {
            match result {
                Ok(Received::Stored(stored)) => outcome.stored += stored.len(),
                Ok(Received::Buffered { .. }) => outcome.gap = true,
                Ok(Received::Equivocation(evidence)) => outcome.evidence.push(*evidence),
                Ok(Received::Duplicate) => {}
                Err(Rejected::PendingFull(_) | Rejected::Store(_)) => outcome.gap = true,
                Err(_) => outcome.rejected += 1,
            }
        }
        self.metrics.stored(outcome.stored);
        outcome
    }

    /// Checks and keeps equivocation evidence from a peer (JSON of both signed entries).
    pub fn receive_evidence(&self, bytes: &[u8]) -> GossipVerdict {
        if bytes.len() > 2 * consentnet_consent_chain::entry::MAX_ENTRY_BYTES + 1024 {
            return GossipVerdict::Reject("evidence too large".into());
        }
        let evidence: Equivocation = match serde_json::from_slice(bytes) {
            Ok(evidence) => evidence,
            Err(error) => return GossipVerdict::Reject(format!("malformed evidence: {error}")),
        };
        match lock(&self.replica).receive_evidence(evidence) {
            Ok(true) => GossipVerdict::Accept { gap: false },
            Ok(false) | Err(Rejected::Store(_)) => GossipVerdict::Ignore,
            Err(error) => GossipVerdict::Reject(error.to_string()),
        }
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

    /// Entries held, all feeds together.
    pub fn log_entries(&self) -> u64 {
        self.frontier().values().map(|h| h.seq).sum()
    }

    /// The state digest.
    pub fn state_digest(&self) -> Hash32 {
        self.read(|replica| replica.state().digest())
    }

    /// The entry holding `event_id`, if held.
    pub fn locate(&self, event_id: &Hash32) -> Result<Option<Entry>, StoreError> {
        self.read(|replica| replica.locate(event_id))
    }

    /// Audits the whole log (see `consent_chain::audit`). Holds the log for the duration:
    /// submissions wait meanwhile.
    pub fn audit(
        &self,
        config: consentnet_consent_chain::audit::AuditConfig,
    ) -> Result<consentnet_consent_chain::audit::AuditReport, StoreError> {
        self.read(|replica| {
            consentnet_consent_chain::audit::audit(replica.store(), &self.genesis, config)
        })
    }

    /// Closes the store: every acknowledged entry is already durable.
    pub fn close(self) {
        let replica = self
            .replica
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        drop(replica);
    }
}
