//! Liveness and catch-up on real processes: a member that stops answering is shown as lost by its peers, and once it runs again it fetches what it missed about once per entry, not once per peer.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use consentnet_identity::KeyPair;
use consentnet_tests::{
    Consortium, NodeProcess, manifest_body, publish, wait_connected, wait_converged, wait_for,
};

const START: Duration = Duration::from_secs(30);
const DEADLINE: Duration = Duration::from_secs(60);
/// Entries written while the member is away.
const MISSED: u64 = 600;

#[test]
fn a_frozen_member_is_lost_then_fetches_what_it_missed_about_once_at_the_shortest_interval() {
    frozen_member_catches_up(100);
}

#[test]
fn a_frozen_member_is_lost_then_fetches_what_it_missed_about_once_at_the_default_interval() {
    frozen_member_catches_up(2_000);
}

/// Four members exchanging frontiers every `sync_ms` (the shortest allowed interval asks
/// the most often, so offers the same ranges most often).
fn frozen_member_catches_up(sync_ms: u64) {
    let consortium = Consortium::create(&[
        ("bank", "Bank A"),
        ("bank", "Bank B"),
        ("tsp", "TSP One"),
        ("regulator", "Regulator"),
    ]);
    for node in &consortium.nodes {
        let config = node.dir.join("node.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        let set = text.replace(
            "sync_interval_ms = 300",
            &format!("sync_interval_ms = {sync_ms}"),
        );
        assert_ne!(set, text, "the harness sets the sync interval");
        std::fs::write(&config, set).unwrap();
    }
    let nodes: Vec<NodeProcess> = (0..4).map(|i| consortium.start(i, START)).collect();
    let all: Vec<&NodeProcess> = nodes.iter().collect();
    wait_connected(&all, 3, DEADLINE);

    // The regulator's node freezes: its sockets stay open, nothing answers. Its peers'
    // pings go unanswered and they close the connections, so status shows it lost.
    let away = &nodes[3];
    away.pause();
    wait_for(
        "the others to show the frozen member as lost",
        DEADLINE,
        || {
            nodes[..3]
                .iter()
                .all(|n| n.status()["peers"] == 2)
                .then_some(())
        },
    );
    assert!(nodes[0].metric("consentnet_peers_lost_total") >= 1);

    // The others go on writing; then the frozen member runs again and catches up.
    let app = KeyPair::generate();
    for i in 0..MISSED {
        let (code, body) = publish(&nodes[0], &manifest_body(&app, &format!("1.{i}")));
        assert_eq!(code, 201, "{body}");
    }
    away.resume();
    wait_converged(&all, MISSED, Duration::from_secs(120));

    // Three peers offered the same missing range; it was fetched from one at a time.
    let received = away.metric("consentnet_sync_entries_received_total");
    let stored = away.metric("consentnet_sync_entries_stored_total");
    assert!(
        stored >= MISSED / 2,
        "most came by sync: {stored} of {MISSED}"
    );
    assert!(
        received * 10 <= stored * 12,
        "at {sync_ms} ms: fetched {received} entries by sync to store {stored}, more than 1.2 per entry"
    );
}
