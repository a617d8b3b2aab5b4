//! What the node does with what peers send: gossiped bundles judged in bursts (signatures batch-checked outside the lock), sync answers, equivocation evidence, and the [`LogPeer`] seam the network calls through.

use std::collections::BTreeMap;

use consentnet_consent_chain::MAX_CLOCK_SKEW_MS;
use consentnet_consent_chain::replica::MAX_RANGE;
use consentnet_consent_chain::{
    Equivocation, FeedHead, Member, RangeRequest, Received, Rejected, Sealed, StoreError,
};
use consentnet_identity::{Did, Hash32};

use super::service::{NodeService, lock};
use crate::p2p::wire::unbundle;
use crate::p2p::{Counters, GossipVerdict, LogPeer, SyncOutcome};

impl NodeService {
    /// Checks and stores one gossip message (one or more entries' canonical bytes).
    pub fn receive_gossip(&self, bytes: &[u8]) -> GossipVerdict {
        let mut verdicts = self.receive_gossip_batch(&[bytes]);
        verdicts.pop().unwrap_or(GossipVerdict::Ignore)
    }

    /// Checks and stores a burst of gossip messages under one lock, one verdict per
    /// message in order. A message holds one or more entries (see
    /// [`unbundle`]); its verdict is the worst of its entries': any
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
            let parts = match unbundle(bytes) {
                Ok(parts) => parts,
                Err(reason) => {
                    refused[message] = Some(GossipVerdict::Reject(reason));
                    continue;
                }
            };
            for part in parts {
                let index = verdicts.len();
                match Sealed::decode(part) {
                    Ok(entry) => match self.check_clock(&entry, true) {
                        Ok(()) => {
                            self.note_known(&entry.origin, entry.seq);
                            verdicts.push((message, GossipVerdict::Ignore));
                            decoded.push((index, entry));
                        }
                        Err(reason) => verdicts.push((message, GossipVerdict::Reject(reason))),
                    },
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
            let state = self.state();
            decoded
                .into_iter()
                .partition(|(_, entry)| state.membership().get(&entry.origin).is_some())
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
        self.write(|replica| {
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
                    Err(Rejected::Store(_)) => {
                        self.note_write(false);
                        GossipVerdict::Ignore
                    }
                    Err(Rejected::PendingFull(_)) => GossipVerdict::Ignore,
                    Err(error) => GossipVerdict::Reject(error.to_string()),
                };
            }
            // A buffered entry that a later one in the burst drained is no gap.
            for (index, (origin, seq)) in buffered {
                if replica.heads().get(&origin).is_some_and(|h| h.seq >= seq) {
                    verdicts[index].1 = GossipVerdict::Accept { gap: false };
                }
            }
        });
        if stored > 0 {
            self.note_write(true);
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
                Some(earlier) => earlier.worse(verdict),
            });
        }
        judged
            .into_iter()
            .map(|verdict| verdict.unwrap_or(GossipVerdict::Ignore))
            .collect()
    }

    /// Refuses an entry stamped more than [`MAX_CLOCK_SKEW_MS`] ahead of this node's
    /// clock, and notes its origin. An entry of live gossip stamped as far behind is
    /// stored (it may have waited in a partition) but its origin is noted too: both show
    /// in `/status` and the metrics.
    fn check_clock(&self, entry: &Sealed, live: bool) -> Result<(), String> {
        let now = i64::try_from(super::service::now_ms()).unwrap_or(i64::MAX);
        let skew = i64::try_from(entry.time)
            .unwrap_or(i64::MAX)
            .saturating_sub(now);
        let bound = i64::try_from(MAX_CLOCK_SKEW_MS).unwrap_or(i64::MAX);
        let ahead = skew > bound;
        if ahead || (live && skew < -bound) {
            self.metrics.clock_skewed(ahead);
            // One slot per founding member: an entry naming any other origin is counted
            // but takes no room (it is refused as a non-member's anyway).
            let first = self.genesis().membership().get(&entry.origin).is_some()
                && lock(&self.clock_skew)
                    .insert(entry.origin.clone(), skew)
                    .is_none();
            if first {
                tracing::warn!(origin = %entry.origin, skew_ms = skew, "a member's entry is stamped beyond the clock-skew bound");
            }
        }
        if ahead {
            return Err(format!(
                "entry {}#{} is stamped {skew} ms ahead of this node's clock (the bound is {MAX_CLOCK_SKEW_MS} ms)",
                entry.origin, entry.seq
            ));
        }
        Ok(())
    }

    fn note_known(&self, origin: &Did, seq: u64) {
        let mut known = lock(&self.known_heads);
        let slot = known.entry(origin.clone()).or_default();
        *slot = (*slot).max(seq);
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
        let (entries, ahead): (Vec<Sealed>, Vec<Sealed>) = entries
            .into_iter()
            .partition(|entry| self.check_clock(entry, false).is_ok());
        outcome.rejected += ahead.len();
        for entry in &entries {
            self.note_known(&entry.origin, entry.seq);
        }
        // Non-members' entries are refused before any signature is checked.
        let (mut members, outsiders): (Vec<Sealed>, Vec<Sealed>) = {
            let state = self.state();
            entries
                .into_iter()
                .partition(|entry| state.membership().get(&entry.origin).is_some())
        };
        outcome.rejected += outsiders.len();
        // Highest seq first within a feed, as `Replica::receive_many_sealed` does; every
        // signature verified together outside the replica's lock, so readers of the
        // lock and other writers never wait on the verification.
        members.sort_by(|a, b| (&a.origin, b.seq).cmp(&(&b.origin, a.seq)));
        let signatures = consentnet_consent_chain::replica::verify_sealed(&members);
        let results: Vec<_> = self.write(|replica| {
            members
                .into_iter()
                .zip(signatures)
                .map(|(entry, signatures)| replica.receive_sealed(entry, signatures))
                .collect()
        });
        for result in results {
            match result {
                Ok(Received::Stored(stored)) => outcome.stored += stored.len(),
                Ok(Received::Buffered { .. }) => outcome.gap = true,
                Ok(Received::Equivocation(evidence)) => outcome.evidence.push(*evidence),
                Ok(Received::Duplicate) => {}
                Err(Rejected::Store(_)) => {
                    self.note_write(false);
                    outcome.gap = true;
                }
                Err(Rejected::PendingFull(_)) => outcome.gap = true,
                Err(_) => outcome.rejected += 1,
            }
        }
        if outcome.stored > 0 {
            self.note_write(true);
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
        match self.write(|replica| replica.receive_evidence(evidence)) {
            Ok(true) => GossipVerdict::Accept { gap: false },
            Ok(false) | Err(Rejected::Store(_)) => GossipVerdict::Ignore,
            Err(error) => GossipVerdict::Reject(error.to_string()),
        }
    }
}

impl LogPeer for NodeService {
    fn members(&self) -> Vec<Member> {
        self.state().membership().iter().cloned().collect()
    }

    fn frontier(&self) -> BTreeMap<Did, FeedHead> {
        NodeService::frontier(self)
    }

    fn wants(&self, theirs: &BTreeMap<Did, FeedHead>) -> Vec<RangeRequest> {
        NodeService::wants(self, theirs)
    }

    fn serve(&self, request: &RangeRequest) -> Result<Vec<Vec<u8>>, StoreError> {
        NodeService::serve(self, request)
    }

    fn receive_entries(&self, entries: Vec<Sealed>) -> SyncOutcome {
        NodeService::receive_entries(self, entries)
    }

    fn receive_gossip_batch(&self, messages: &[&[u8]]) -> Vec<GossipVerdict> {
        NodeService::receive_gossip_batch(self, messages)
    }

    fn receive_evidence(&self, bytes: &[u8]) -> GossipVerdict {
        NodeService::receive_evidence(self, bytes)
    }

    fn counters(&self) -> &Counters {
        &self.metrics.network
    }

    fn access_batch(&self, requester: &Did, batch: u64) -> Option<String> {
        self.serve_batch(requester, batch)
    }

    fn wanted_batches(&self) -> Vec<(Did, u64)> {
        NodeService::wanted_batches(self)
    }

    fn wanted_from(&self, bank: &Did) -> Option<u64> {
        NodeService::wanted_from(self, bank)
    }

    fn keep_batch(&self, bank: &Did, batch: u64, records: &str) -> bool {
        NodeService::keep_batch(self, bank, batch, records)
    }

    fn bundle_file(&self, hash: &Hash32) -> Option<Vec<u8>> {
        self.serve_bundle_file(hash)
    }

    fn wanted_bundle_files(&self) -> Vec<Hash32> {
        NodeService::wanted_bundle_files(self)
    }

    fn keep_bundle_file(&self, hash: &Hash32, bytes: &[u8]) -> Result<(), String> {
        NodeService::keep_bundle_file(self, hash, bytes)
    }
}
