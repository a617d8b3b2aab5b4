//! Sync requests in flight: at most one per feed (ranges), per bank (access batches) and per bundle file, to one peer at a time, so a lagging node fetches each entry about once however many peers offer it.
//!
//! Every sync round asks every peer for its frontier, and each answer names the same
//! missing ranges. Without this, each of those answers would fetch the same entries
//! again. A feed's range is asked of the first peer that offers it; the others' offers
//! are dropped until that request is answered, fails or times out. The table holds at
//! most one request per member feed, so it is bounded by the membership.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use consentnet_identity::{Did, Hash32};
use libp2p::PeerId;
use libp2p::request_response::OutboundRequestId;

/// How long a request may go unanswered before its feed may be asked of another peer
/// (the sync protocol's own 30 s timeout normally ends it sooner).
pub(super) const STALE_AFTER: Duration = Duration::from_secs(35);

#[derive(Debug)]
struct Claim {
    peer: PeerId,
    request: Option<OutboundRequestId>,
    since: Instant,
}

/// The keys (feeds, banks or files) with a request in flight.
#[derive(Debug)]
pub(super) struct InFlight<K = Did> {
    by_feed: HashMap<K, Claim>,
}

impl<K> Default for InFlight<K> {
    fn default() -> Self {
        Self {
            by_feed: HashMap::new(),
        }
    }
}

/// Every kind of request this node tracks in flight.
#[derive(Debug, Default)]
pub(super) struct Flights {
    /// Range requests, one per feed.
    pub(super) ranges: InFlight,
    /// Access batch requests, one per bank.
    pub(super) batches: InFlight,
    /// Bundle file requests, one per file.
    pub(super) files: InFlight<Hash32>,
}

impl Flights {
    /// The request `request` was answered or failed.
    pub(super) fn settled(&mut self, request: OutboundRequestId) {
        self.ranges.settled(request);
        self.batches.settled(request);
        self.files.settled(request);
    }

    /// `peer` went away.
    pub(super) fn disconnected(&mut self, peer: &PeerId) {
        self.ranges.disconnected(peer);
        self.batches.disconnected(peer);
        self.files.disconnected(peer);
    }
}

impl<K: Hash + Eq + Clone> InFlight<K> {
    /// Claims `origin`'s feed for a request to `peer`; false when another request for it
    /// is in flight and not stale.
    pub(super) fn claim(&mut self, origin: &K, peer: PeerId, now: Instant) -> bool {
        if let Some(claim) = self.by_feed.get(origin)
            && now.saturating_duration_since(claim.since) < STALE_AFTER
        {
            return false;
        }
        self.by_feed.insert(
            origin.clone(),
            Claim {
                peer,
                request: None,
                since: now,
            },
        );
        true
    }

    /// Notes the id of the request sent for `origin`'s claim.
    pub(super) fn sent(&mut self, origin: &K, request: OutboundRequestId) {
        if let Some(claim) = self.by_feed.get_mut(origin) {
            claim.request = Some(request);
        }
    }

    /// The request `request` was answered or failed: its feed may be asked again.
    pub(super) fn settled(&mut self, request: OutboundRequestId) {
        self.by_feed
            .retain(|_, claim| claim.request != Some(request));
    }

    /// `peer` went away: its feeds may be asked of others at once.
    pub(super) fn disconnected(&mut self, peer: &PeerId) {
        self.by_feed.retain(|_, claim| claim.peer != *peer);
    }

    /// How many feeds have a request in flight.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_feed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use consentnet_identity::KeyPair;

    #[test]
    fn a_file_request_is_settled_with_the_others() {
        let mut flights = Flights::default();
        let file = Hash32::of(b"index.html");
        let peer = PeerId::random();
        let now = Instant::now();
        assert!(flights.files.claim(&file, peer, now));
        assert!(!flights.files.claim(&file, PeerId::random(), now));
        flights.disconnected(&peer);
        assert!(flights.files.claim(&file, peer, now));
    }

    #[test]
    fn a_feed_is_asked_of_one_peer_until_that_request_settles_or_goes_stale() {
        let mut flight = InFlight::default();
        let feed = KeyPair::generate().did().clone();
        let other_feed = KeyPair::generate().did().clone();
        let (first, second) = (PeerId::random(), PeerId::random());
        let now = Instant::now();
        assert!(flight.claim(&feed, first, now));
        // Another peer offering the same feed is not asked while the first request runs.
        assert!(!flight.claim(&feed, second, now));
        // Another feed is independent.
        assert!(flight.claim(&other_feed, second, now));
        assert_eq!(flight.len(), 2);
        // A request that never settles frees its feed once stale.
        assert!(flight.claim(&feed, second, now + STALE_AFTER));
        // The peer of a claim disconnecting frees its feeds.
        flight.disconnected(&second);
        assert_eq!(flight.len(), 0);
        assert!(flight.claim(&feed, first, now));
    }
}
