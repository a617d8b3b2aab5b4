//! What the network asks of the log, and the verdicts it gets back: the one seam between the swarm and the node's service.

use std::collections::BTreeMap;

use consentnet_consent_chain::{Equivocation, FeedHead, Member, RangeRequest, Sealed, StoreError};
use consentnet_identity::{Did, Hash32};

use super::Counters;

/// The log as the network sees it. The node's service implements it; the swarm's event
/// loop, the gossip validator and the sync handlers call only these methods.
pub trait LogPeer: Send + Sync + 'static {
    /// The consortium's members as the log holds them now.
    fn members(&self) -> Vec<Member>;
    /// Every feed's head.
    fn frontier(&self) -> BTreeMap<Did, FeedHead>;
    /// The ranges to ask a peer for, given its frontier.
    fn wants(&self, theirs: &BTreeMap<Did, FeedHead>) -> Vec<RangeRequest>;
    /// Entries for a peer's range request, as their canonical bytes.
    fn serve(&self, request: &RangeRequest) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Checks and stores entries from a sync answer.
    fn receive_entries(&self, entries: Vec<Sealed>) -> SyncOutcome;
    /// Checks and stores a burst of gossip messages, one verdict per message in order.
    fn receive_gossip_batch(&self, messages: &[&[u8]]) -> Vec<GossipVerdict>;
    /// Checks and keeps equivocation evidence from a peer.
    fn receive_evidence(&self, bytes: &[u8]) -> GossipVerdict;
    /// The network's counters, rendered with the node's metrics.
    fn counters(&self) -> &Counters;
    /// Batch `batch` of this bank's access records as JSON, for `requester` (a member's
    /// DID); `None` when this node does not serve it to that member.
    fn access_batch(&self, requester: &Did, batch: u64) -> Option<String>;
    /// The next access batch to fetch from each bank (regulators; empty elsewhere).
    fn wanted_batches(&self) -> Vec<(Did, u64)>;
    /// The next access batch to fetch from `bank`, if any.
    fn wanted_from(&self, bank: &Did) -> Option<u64>;
    /// Keeps a fetched batch when it is the one wanted from `bank`; false otherwise.
    fn keep_batch(&self, bank: &Did, batch: u64, records: &str) -> bool;
    /// A mini-app bundle file this node holds, checked against its hash.
    fn bundle_file(&self, hash: &Hash32) -> Option<Vec<u8>>;
    /// Bundle files that published manifests name and this node fetches but lacks.
    fn wanted_bundle_files(&self) -> Vec<Hash32>;
    /// Keeps a fetched bundle file; `Err` says why the sender is at fault (bytes that
    /// are not the file named, or a file no manifest names).
    fn keep_bundle_file(&self, hash: &Hash32, bytes: &[u8]) -> Result<(), String>;
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

impl GossipVerdict {
    /// The verdict for a message holding entries judged `self` and `other`: a rejection
    /// wins, then a conflict (its evidence is passed on), then acceptance (with a gap if
    /// either had one); two ignores stay ignored.
    pub fn worse(self, other: GossipVerdict) -> GossipVerdict {
        use GossipVerdict::{Accept, Conflict, Ignore, Reject};
        match (self, other) {
            (reject @ Reject(_), _) | (_, reject @ Reject(_)) => reject,
            (conflict @ Conflict(_), _) | (_, conflict @ Conflict(_)) => conflict,
            (Accept { gap: x }, Accept { gap: y }) => Accept { gap: x || y },
            (accept @ Accept { .. }, Ignore) | (Ignore, accept @ Accept { .. }) => accept,
            (Ignore, Ignore) => Ignore,
        }
    }
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
