//! Gossip messages and sync answers judged by a node over a real RocksDB log: bundles are stored whole, a forgery or a malformed bundle is rejected without storing it, repeats are ignored and gaps reported; a sync answer refuses outsiders and forgeries.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use consentnet_consent_chain::event::{AppManifest, Platform};
use consentnet_consent_chain::{Entry, Event, FeedHead, Genesis, Member, RocksStore, Role};
use consentnet_identity::{KeyPair, Permission};
use consentnet_node::core::NodeService;
use consentnet_node::p2p::wire::{MAX_BUNDLE_ENTRIES, bundle, unbundle};
use consentnet_node::p2p::{GossipVerdict, peer_id_of};

fn member(key: &KeyPair, role: Role) -> Member {
    Member {
        did: key.did().clone(),
        role,
        peer_id: peer_id_of(key.did()).to_string(),
        name: "member".into(),
    }
}

/// A node (`this`) that receives gossip of `origin`'s feed.
struct Fixture {
    _dir: tempfile::TempDir,
    service: NodeService,
    origin: KeyPair,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let origin = KeyPair::generate();
    let this = KeyPair::generate();
    let genesis = Genesis {
        network: "gossip-test".into(),
        members: vec![member(&origin, Role::Bank), member(&this, Role::Tsp)],
    };
    let store = RocksStore::open(&dir.path().join("log")).unwrap();
    Fixture {
        service: NodeService::open(store, genesis, this).unwrap(),
        _dir: dir,
        origin,
    }
}

fn manifest_event(version: usize) -> Event {
    let app = KeyPair::generate();
    Event::app_published(
        &app,
        AppManifest {
            app: app.did().clone(),
            name: "Gossip App".into(),
            description: "An app".into(),
            version: format!("1.0.{version}"),
            platform: Platform::Web,
            redirect_uris: vec!["https://app.example/cb".into()],
            events_uri: None,
            requested_permissions: BTreeSet::from([Permission::ReadAccountsBasic]),
            bundle_hash: "ab".repeat(32),
            mini_app: None,
        },
    )
}

/// `count` entries of `key`'s feed after `head`.
fn feed(key: &KeyPair, mut head: Option<FeedHead>, count: usize) -> Vec<Entry> {
    (0..count)
        .map(|i| {
            let entry = Entry::sign(key, head, 1_795_000_000_000 + i as u64, manifest_event(i));
            head = Some(entry.head());
            entry
        })
        .collect()
}

fn encoded(entries: &[Entry]) -> Vec<Vec<u8>> {
    entries.iter().map(Entry::encode).collect()
}

fn held(service: &NodeService, key: &KeyPair) -> u64 {
    service.frontier().get(key.did()).map_or(0, |head| head.seq)
}

#[test]
fn bundles_hold_at_most_their_limit_in_order_and_split_back() {
    let key = KeyPair::generate();
    let entries = encoded(&feed(&key, None, MAX_BUNDLE_ENTRIES + 6));
    let messages = bundle(&entries);
    assert_eq!(messages.len(), 2, "64 entries, then the other 6");
    let parts: Vec<Vec<u8>> = messages
        .iter()
        .flat_map(|message| unbundle(message).unwrap())
        .map(<[u8]>::to_vec)
        .collect();
    assert_eq!(parts, entries, "the same entries, in order");
    assert!(bundle(&[]).is_empty());
}

#[test]
fn a_bundle_of_valid_entries_is_stored_whole_and_forwarded() {
    let f = fixture();
    let entries = feed(&f.origin, None, 5);
    let messages = bundle(&encoded(&entries));
    assert_eq!(messages.len(), 1);
    assert_eq!(
        f.service.receive_gossip(&messages[0]),
        GossipVerdict::Accept { gap: false }
    );
    assert_eq!(held(&f.service, &f.origin), 5);
    // The same bundle again is nothing new: not forwarded, no penalty.
    assert_eq!(
        f.service.receive_gossip(&messages[0]),
        GossipVerdict::Ignore
    );
    assert_eq!(held(&f.service, &f.origin), 5);
}

#[test]
fn a_bundle_with_one_forged_entry_is_rejected_and_the_forgery_is_not_stored() {
    let f = fixture();
    let mut entries = feed(&f.origin, None, 4);
    // Entry 3's event is changed after its origin signed it.
    entries[2].time += 1;
    let message = &bundle(&encoded(&entries))[0];
    let verdict = f.service.receive_gossip(message);
    let GossipVerdict::Reject(reason) = verdict else {
        panic!("expected a rejection, got {verdict:?}");
    };
    assert!(reason.contains("not signed by its origin"), "{reason}");
    assert_eq!(
        held(&f.service, &f.origin),
        2,
        "the two entries before the forgery are valid and stored; nothing from it on"
    );
    assert_eq!(f.service.metrics.gossip_rejected(), 1);
}

#[test]
fn malformed_bundles_are_rejected_by_name_and_store_nothing() {
    let f = fixture();
    let entries = encoded(&feed(&f.origin, None, MAX_BUNDLE_ENTRIES + 1));
    let too_many = entries.join(&b'\n');
    let cases: [(&[u8], &str); 4] = [
        (&too_many, "65 entries in a gossip message; the limit is 64"),
        (b"", "empty entry in a gossip message"),
        (
            b"{\"not\":\"an entry\"}\n",
            "empty entry in a gossip message",
        ),
        (b"{\"not\":\"an entry\"}", "malformed entry"),
    ];
    for (message, expected) in cases {
        let verdict = f.service.receive_gossip(message);
        let GossipVerdict::Reject(reason) = verdict else {
            panic!("expected a rejection, got {verdict:?}");
        };
        assert!(
            reason.contains(expected),
            "{reason:?} should say {expected:?}"
        );
    }
    assert_eq!(held(&f.service, &f.origin), 0, "nothing stored");
}

#[test]
fn a_bundle_after_a_missing_one_is_held_and_reports_the_gap() {
    let f = fixture();
    let entries = feed(&f.origin, None, 6);
    let first = bundle(&encoded(&entries[..3])).remove(0);
    let second = bundle(&encoded(&entries[3..])).remove(0);
    assert_eq!(
        f.service.receive_gossip(&second),
        GossipVerdict::Accept { gap: true },
        "valid, held until the gap fills, and sync is asked for"
    );
    assert_eq!(held(&f.service, &f.origin), 0);
    // Both in one burst, out of order: the first fills the gap, so no gap is reported.
    let verdicts = f.service.receive_gossip_batch(&[&second, &first]);
    assert_eq!(
        verdicts,
        [GossipVerdict::Ignore, GossipVerdict::Accept { gap: false }]
    );
    assert_eq!(held(&f.service, &f.origin), 6);
}

#[test]
fn an_entry_stamped_beyond_the_skew_bound_ahead_is_refused_and_its_origin_reported() {
    let f = fixture();
    let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap();
    let ahead = Entry::sign(&f.origin, None, now + 10 * 60 * 1000, manifest_event(1));
    let verdict = f.service.receive_gossip(&bundle(&encoded(&[ahead]))[0]);
    assert!(
        matches!(&verdict, GossipVerdict::Reject(reason) if reason.contains("ahead of this node's clock")),
        "{verdict:?}"
    );
    assert_eq!(held(&f.service, &f.origin), 0, "nothing stored");
    let skew = f.service.clock_skew()[f.origin.did()];
    assert!(skew > 9 * 60 * 1000, "{skew}");
    // Within the bound, it is stored; far behind in live gossip, stored and reported.
    let fresh = Entry::sign(&f.origin, None, now + 60 * 1000, manifest_event(2));
    let late = Entry::sign(
        &f.origin,
        Some(fresh.head()),
        now - 10 * 60 * 1000,
        manifest_event(3),
    );
    assert_eq!(
        f.service
            .receive_gossip(&bundle(&encoded(&[fresh, late]))[0]),
        GossipVerdict::Accept { gap: false }
    );
    assert_eq!(held(&f.service, &f.origin), 2);
    assert!(f.service.clock_skew()[f.origin.did()] < -9 * 60 * 1000);
    let metrics = f.service.metrics.render(0, 2);
    assert!(
        metrics.contains("consentnet_entries_clock_skewed_total{direction=\"ahead\"} 1"),
        "{metrics}"
    );
}

#[test]
fn a_sync_answer_stores_its_members_entries_in_any_order_and_refuses_outsiders_and_forgeries() {
    let f = fixture();
    let sealed = |entries: &[Entry]| -> Vec<consentnet_consent_chain::Sealed> {
        entries
            .iter()
            .map(|e| consentnet_consent_chain::Sealed::decode(&e.encode()).unwrap())
            .collect()
    };
    let mut entries = feed(&f.origin, None, 6);
    entries.reverse();
    let outsider = feed(&KeyPair::generate(), None, 2);
    let mut answer = sealed(&entries);
    answer.extend(sealed(&outsider));
    let outcome = f.service.receive_entries(answer);
    assert_eq!((outcome.stored, outcome.rejected), (6, 2), "{outcome:?}");
    assert_eq!(held(&f.service, &f.origin), 6);

    // A forged entry after them is refused and not stored.
    let mut more = feed(&f.origin, entries.first().map(Entry::head), 1);
    more[0].time += 1;
    let outcome = f.service.receive_entries(sealed(&more));
    assert_eq!((outcome.stored, outcome.rejected), (0, 1), "{outcome:?}");
    assert_eq!(held(&f.service, &f.origin), 6);
}
