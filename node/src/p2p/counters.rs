//! The network's own counters: what the swarm did, bumped from its event loop and read by the node's `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters the network keeps. Cheap to bump from any thread.
#[derive(Debug, Default)]
pub struct Counters {
    /// Sync requests sent.
    pub sync_requests: AtomicU64,
    /// Range requests not sent because the same feed was being fetched from a peer.
    pub sync_requests_spared: AtomicU64,
    /// Connections closed because the peer stopped answering pings.
    pub peers_lost: AtomicU64,
    /// Banks' access batches fetched and kept (regulators).
    pub access_batches_fetched: AtomicU64,
    /// Mini-app bundle files fetched from members and kept (banks).
    pub bundle_files_fetched: AtomicU64,
    /// Peers blocked for sending invalid messages.
    pub peers_blocked: AtomicU64,
    /// Connections refused because the peer is not a member.
    pub connections_refused: AtomicU64,
    /// Entries received in peers' range answers (new or not).
    pub sync_entries_received: AtomicU64,
    /// Entries of range answers that were new and stored.
    pub sync_entries_stored: AtomicU64,
    /// Gossip messages published.
    pub gossip_published_messages: AtomicU64,
    /// Entries those messages held.
    pub gossip_published_entries: AtomicU64,
}

impl Counters {
    /// Counts one gossip message published, holding `entries` entries.
    pub fn published(&self, entries: usize) {
        self.gossip_published_messages
            .fetch_add(1, Ordering::Relaxed);
        self.gossip_published_entries
            .fetch_add(entries as u64, Ordering::Relaxed);
    }

    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
