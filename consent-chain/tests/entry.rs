//! Entries: signed, hash-linked, one canonical encoding; forgeries and malformed bytes are refused; sealed entries reuse their bytes and still check every signature.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::{Consortium, access, approve, consent, grant, now_ms, revoke};
use consentnet_consent_chain::entry::MAX_ENTRY_BYTES;
use consentnet_consent_chain::event::{AppManifest, Platform};
use consentnet_consent_chain::{Entry, EntryError, Event, Hash32, Sealed};
use consentnet_identity::{KeyPair, Permission, verify_many};

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
    use consentnet_consent_chain::event::{AppAction, AppDecision, Outcome};
    let key = KeyPair::generate();
    let refused = consentnet_consent_chain::event::AccessRecord {
        consent_id: consentnet_identity::Hash32([7; 32]),
        operation: "GET /aisp/accounts".into(),
        time: 5,
        outcome: Outcome::Refused {
            code: "consent_revoked".into(),
        },
    };
    let events = [
        common::commitment(&key, 1, &[refused]),
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

/// One event of every kind, three of them with their own signature.
fn every_kind_of_event(c: &Consortium) -> Vec<Event> {
    let app = KeyPair::generate();
    let (client, verified) = consent(&c.bank_a, &c.tsp);
    let manifest = AppManifest {
        app: app.did().clone(),
        name: "Sealed \"quoted\" app\n".into(),
        description: "é 😀 \u{1}".into(),
        version: "1.0.0".into(),
        platform: Platform::Mobile,
        redirect_uris: vec!["https://app.example/cb".into()],
        events_uri: None,
        requested_permissions: BTreeSet::from([Permission::ReadAccountsBasic]),
        bundle_hash: "ab".repeat(32),
        mini_app: None,
    };
    vec![
        checkpoint(),
        grant(&verified),
        revoke(&client, verified.id, now_ms() as i64),
        access(&c.bank_a, verified.id, now_ms()),
        approve(&c.bank_a, &app, now_ms()),
        Event::app_published(&app, manifest),
    ]
}

#[test]
fn a_sealed_entry_is_the_entry_its_bytes_and_its_hash_however_it_was_made() {
    let c = Consortium::new();
    let mut head = None;
    for (i, event) in every_kind_of_event(&c).into_iter().enumerate() {
        let plain = Entry::sign(&c.bank_a, head, 1000 + i as u64, event.clone());
        let signed = Sealed::sign(&c.bank_a, head, 1000 + i as u64, event.clone(), None);
        let given = Sealed::sign(
            &c.bank_a,
            head,
            1000 + i as u64,
            event.clone(),
            Some(event.canonical()),
        );
        let decoded = Sealed::decode(&plain.encode()).unwrap();
        let encoded = Sealed::new(plain.clone());
        for sealed in [&signed, &given, &decoded, &encoded] {
            assert_eq!(sealed.entry(), &plain, "event {i}");
            assert_eq!(sealed.bytes(), plain.encode().as_slice(), "event {i}");
            assert_eq!(sealed.hash(), plain.hash(), "event {i}");
            assert_eq!(sealed.head(), plain.head(), "event {i}");
            assert_eq!(sealed.event_id(), event.id(), "event {i}");
            // The same signed bytes as when each value is encoded on its own.
            assert_eq!(
                sealed.signature_check().message,
                plain.signature_check().message,
                "event {i}"
            );
            assert_eq!(
                sealed.event_signature_check().map(|check| check.message),
                event.signature_check().map(|check| check.message),
                "event {i}"
            );
        }
        head = Some(plain.head());
    }
}

#[test]
fn a_sealed_forgery_fails_its_checks() {
    let c = Consortium::new();
    let events = every_kind_of_event(&c);
    let honest: Vec<Sealed> = events
        .iter()
        .map(|event| Sealed::sign(&c.bank_a, None, 7, event.clone(), None))
        .collect();
    let checks: Vec<_> = honest
        .iter()
        .flat_map(|s| std::iter::once(s.signature_check()).chain(s.event_signature_check()))
        .collect();
    assert!(verify_many(&checks).into_iter().all(|ok| ok));

    // The origin's signature moved to another entry.
    let mut moved = honest[0].entry().clone();
    moved.time += 1;
    let moved = Sealed::decode(&moved.encode()).unwrap();
    assert!(!moved.signature_check().verify());

    // A manifest changed after the app signed it, then signed into an entry by a member.
    let Event::AppPublished {
        mut manifest,
        signature,
    } = events[5].clone()
    else {
        panic!("the sixth event is a manifest")
    };
    manifest.name = "Renamed".into();
    let renamed = Sealed::sign(
        &c.bank_a,
        None,
        7,
        Event::AppPublished {
            manifest,
            signature,
        },
        None,
    );
    assert!(renamed.signature_check().verify(), "the member did sign it");
    assert!(
        !renamed.event_signature_check().unwrap().verify(),
        "but the app did not"
    );
}
