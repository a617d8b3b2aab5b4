//! Entries: signed, hash-linked, one canonical encoding; forgeries and malformed bytes are refused.

#![allow(clippy::unwrap_used)]

use consentnet_consent_chain::entry::MAX_ENTRY_BYTES;
use consentnet_consent_chain::{Entry, EntryError, Event, Hash32};
use consentnet_identity::KeyPair;

fn checkpoint() -> Event {
    Event::Checkpoint {
        frontier: Default::default(),
    }
}

#[test]
fn entries_round_trip_and_link() {
    let key = KeyPair::generate();
    let first = Entry::sign(&key, None, 1000, checkpoint());
    assert_eq!((first.seq, first.prev), (1, Hash32::ZERO));
    let second = Entry::sign(&key, Some(first.head()), 2000, checkpoint());
    assert_eq!((second.seq, second.prev), (2, first.hash()));
    for entry in [&first, &second] {
        assert!(entry.verify_signature());
        let decoded = Entry::decode(&entry.encode()).unwrap();
        assert_eq!(&decoded, entry);
        assert_eq!(decoded.hash(), entry.hash());
    }
}

#[test]
fn any_change_breaks_the_signature() {
    let key = KeyPair::generate();
    let entry = Entry::sign(&key, None, 1000, checkpoint());
    let mut moved = entry.clone();
    moved.time += 1;
    assert!(!moved.verify_signature());
    let mut renumbered = entry.clone();
    renumbered.seq = 2;
    assert!(!renumbered.verify_signature());
    let mut stolen = entry;
    stolen.origin = KeyPair::generate().did().clone();
    assert!(!stolen.verify_signature());
}

#[test]
fn malformed_non_canonical_and_oversized_bytes_are_refused() {
    let key = KeyPair::generate();
    let entry = Entry::sign(&key, None, 1000, checkpoint());
    let pretty = serde_json::to_vec_pretty(&entry).unwrap();
    assert_eq!(
        Entry::decode(&pretty).unwrap_err(),
        EntryError::NotCanonical
    );
    assert!(matches!(
        Entry::decode(b"{}"),
        Err(EntryError::Malformed(_))
    ));
    let big = vec![b' '; MAX_ENTRY_BYTES + 1];
    assert_eq!(
        Entry::decode(&big).unwrap_err(),
        EntryError::TooLarge(MAX_ENTRY_BYTES + 1)
    );
    let mut zero = serde_json::to_value(&entry).unwrap();
    zero["seq"] = 0.into();
    let bytes = consentnet_identity::canonical::canonical_json(&zero).unwrap();
    assert!(matches!(
        Entry::decode(&bytes),
        Err(EntryError::Malformed(_))
    ));
}

#[test]
fn every_event_kind_survives_encode_and_decode() {
    use consentnet_consent_chain::event::{
        AccessBatch, AccessRecord, AppAction, AppDecision, Outcome,
    };
    let key = KeyPair::generate();
    let events = [
        Event::access_recorded(
            &key,
            AccessBatch {
                bank: key.did().clone(),
                records: vec![AccessRecord {
                    consent_id: consentnet_identity::ConsentId([7; 32]),
                    operation: "GET /aisp/accounts".into(),
                    time: 5,
                    outcome: Outcome::Refused {
                        code: "consent_revoked".into(),
                    },
                }],
            },
        ),
        Event::app_decided(
            &key,
            AppDecision {
                bank: key.did().clone(),
                app: key.did().clone(),
                version: "1.0".into(),
                action: AppAction::Suspend,
                time: 9,
            },
        ),
        checkpoint(),
    ];
    for event in events {
        let entry = Entry::sign(&key, None, 1, event);
        assert_eq!(Entry::decode(&entry.encode()).unwrap(), entry);
    }
}
