//! Counters the node keeps for `/metrics`, written in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::p2p::{Counters, GossipVerdict};

/// The node's counters. Cheap to bump from any thread.
#[derive(Debug, Default)]
pub struct Metrics {
    submissions_accepted: AtomicU64,
    submissions_refused: AtomicU64,
    entries_stored_from_peers: AtomicU64,
    gossip_accepted: AtomicU64,
    gossip_ignored: AtomicU64,
    gossip_rejected: AtomicU64,
    access_records_dropped: AtomicU64,
    entries_ahead_refused: AtomicU64,
    entries_behind: AtomicU64,
    /// The network's counters.
    pub network: Counters,
}

impl Metrics {
    /// Counts one submission.
    pub fn submission(&self, accepted: bool) {
        let counter = if accepted {
            &self.submissions_accepted
        } else {
            &self.submissions_refused
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts entries stored from peers.
    pub fn stored(&self, count: usize) {
        self.entries_stored_from_peers
            .fetch_add(count as u64, Ordering::Relaxed);
    }

    /// Counts one gossip verdict.
    pub fn gossip(&self, verdict: &GossipVerdict) {
        let counter = match verdict {
            GossipVerdict::Accept { .. } => &self.gossip_accepted,
            GossipVerdict::Ignore | GossipVerdict::Conflict(_) => &self.gossip_ignored,
            GossipVerdict::Reject(_) => &self.gossip_rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a peer's entry stamped beyond the clock-skew bound: refused when ahead of
    /// this node's clock, stored (and reported) when behind it.
    pub fn clock_skewed(&self, ahead: bool) {
        let counter = if ahead {
            &self.entries_ahead_refused
        } else {
            &self.entries_behind
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an access record lost to a full queue.
    pub fn access_record_dropped(&self) {
        self.access_records_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Invalid gossip messages so far.
    pub fn gossip_rejected(&self) -> u64 {
        self.gossip_rejected.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition, with the gauges passed in.
    pub fn render(&self, peers: usize, log_entries: u64) -> String {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let net = &self.network;
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        metric(
            "consentnet_submissions_total",
            "counter",
            "Events submitted through the API, by result.",
            &[
                ("{result=\"accepted\"}", get(&self.submissions_accepted)),
                ("{result=\"refused\"}", get(&self.submissions_refused)),
            ],
        );
        metric(
            "consentnet_entries_received_total",
            "counter",
            "Entries from peers stored in the local log.",
            &[("", get(&self.entries_stored_from_peers))],
        );
        metric(
            "consentnet_entries_clock_skewed_total",
            "counter",
            "Peers' entries stamped beyond the clock-skew bound: ahead of this node's clock (refused) or behind it in live gossip (stored, reported in /status).",
            &[
                ("{direction=\"ahead\"}", get(&self.entries_ahead_refused)),
                ("{direction=\"behind\"}", get(&self.entries_behind)),
            ],
        );
        metric(
            "consentnet_gossip_messages_total",
            "counter",
            "Gossiped entries, by validation verdict.",
            &[
                ("{verdict=\"accept\"}", get(&self.gossip_accepted)),
                ("{verdict=\"ignore\"}", get(&self.gossip_ignored)),
                ("{verdict=\"reject\"}", get(&self.gossip_rejected)),
            ],
        );
        metric(
            "consentnet_gossip_published_total",
            "counter",
            "Gossip messages this node published, and the entries they held.",
            &[
                ("{unit=\"messages\"}", get(&net.gossip_published_messages)),
                ("{unit=\"entries\"}", get(&net.gossip_published_entries)),
            ],
        );
        metric(
            "consentnet_sync_requests_total",
            "counter",
            "Frontier and range requests sent to peers.",
            &[("", get(&net.sync_requests))],
        );
        metric(
            "consentnet_sync_entries_received_total",
            "counter",
            "Entries received in peers' range answers, whether new or already held.",
            &[("", get(&net.sync_entries_received))],
        );
        metric(
            "consentnet_sync_entries_stored_total",
            "counter",
            "Entries from peers' range answers that were new and stored; received over stored is how often each entry was fetched.",
            &[("", get(&net.sync_entries_stored))],
        );
        metric(
            "consentnet_sync_requests_spared_total",
            "counter",
            "Range requests not sent because the same feed was being fetched from another peer.",
            &[("", get(&net.sync_requests_spared))],
        );
        metric(
            "consentnet_access_batches_fetched_total",
            "counter",
            "Banks' access batches fetched and kept by this regulator node.",
            &[("", get(&net.access_batches_fetched))],
        );
        metric(
            "consentnet_bundle_files_fetched_total",
            "counter",
            "Mini-app bundle files fetched from members and kept by this bank node.",
            &[("", get(&net.bundle_files_fetched))],
        );
        metric(
            "consentnet_peers_lost_total",
            "counter",
            "Connections closed because the peer stopped answering pings.",
            &[("", get(&net.peers_lost))],
        );
        metric(
            "consentnet_peers_blocked_total",
            "counter",
            "Peers blocked for sending invalid messages.",
            &[("", get(&net.peers_blocked))],
        );
        metric(
            "consentnet_connections_refused_total",
            "counter",
            "Connections from peers that are not consortium members.",
            &[("", get(&net.connections_refused))],
        );
        metric(
            "consentnet_access_records_dropped_total",
            "counter",
            "Access records lost because their queue was full.",
            &[("", get(&self.access_records_dropped))],
        );
        metric(
            "consentnet_peers",
            "gauge",
            "Connected member peers.",
            &[("", peers as u64)],
        );
        metric(
            "consentnet_log_entries",
            "gauge",
            "Entries in the local log, all feeds.",
            &[("", log_entries)],
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_writes_every_counter_with_help_and_type() {
        let metrics = Metrics::default();
        metrics.submission(true);
        metrics.submission(false);
        metrics.gossip(&GossipVerdict::Reject("bad".into()));
        metrics.network.published(5);
        let text = metrics.render(3, 42);
        assert!(text.contains("consentnet_gossip_published_total{unit=\"messages\"} 1\n"));
        assert!(text.contains("consentnet_gossip_published_total{unit=\"entries\"} 5\n"));
        assert!(text.contains("consentnet_submissions_total{result=\"accepted\"} 1\n"));
        assert!(text.contains("consentnet_submissions_total{result=\"refused\"} 1\n"));
        assert!(text.contains("consentnet_gossip_messages_total{verdict=\"reject\"} 1\n"));
        assert!(text.contains("# TYPE consentnet_peers gauge\nconsentnet_peers 3\n"));
        assert!(text.contains("consentnet_log_entries 42\n"));
        assert_eq!(
            text.matches("# HELP").count(),
            text.matches("# TYPE").count()
        );
    }
}
