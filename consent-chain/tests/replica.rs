//! The replica: out-of-order, duplicate, forged, foreign and equivocating entries, and local submissions.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use consentnet_consent_chain::event::{
    MembershipAction, MembershipChange, approve_membership_change,
};
use consentnet_consent_chain::validate::EventError;
use consentnet_consent_chain::{
    Appended, ConsentStatus, Entry, Event, LogStore, MemoryStore, Received, Rejected, Replica, Role,
};
use consentnet_identity::KeyPair;

fn replica(c: &Consortium) -> Replica<MemoryStore> {
    Replica::open(MemoryStore::new(), &c.genesis).unwrap()
}

/// The state digest of a fresh replica given exactly `entries`.
fn digest_of(c: &Consortium, entries: &[Entry]) -> consentnet_identity::Hash32 {
    let mut node = replica(c);
    for entry in entries {
        node.receive(entry.clone()).unwrap();
    }
    node.state().digest()
}

/// Entries in `key`'s feed for `events`, as its node would append them.
fn feed(c: &Consortium, key: &KeyPair, events: Vec<Event>) -> Vec<Entry> {
    let mut source = replica(c);
    events
        .into_iter()
        .map(|event| {
            source
                .append_local(key, event, now_ms())
                .unwrap()
                .entry()
                .clone()
        })
        .collect()
}

#[test]
fn local_submission_is_stored_applied_and_idempotent() {
    let c = Consortium::new();
    let mut node = replica(&c);
    let (_, consent) = consent(&c.bank_a, &c.tsp);
    let first = node
        .append_local(&c.bank_a, grant(&consent), now_ms())
        .unwrap();
    let Appended::New(entry) = &first else {
        panic!("{first:?}")
    };
    assert_eq!(entry.seq, 1);
    assert_eq!(
        node.store().get(c.bank_a.did(), 1).unwrap().as_ref(),
        Some(entry.entry())
    );
    assert_eq!(
        node.state().consent_status(&consent.id, later(0)),
        ConsentStatus::Active
    );
    // The same consent submitted again, even to another node's feed, is not appended twice.
    let again = node
        .append_local(&c.tsp, grant(&consent), now_ms())
        .unwrap();
    assert_eq!(again, Appended::Existing(entry.clone()));
    assert!(
        !node.heads().contains_key(c.tsp.did()),
        "nothing is appended to the second feed"
    );
}

#[test]
fn a_group_of_local_submissions_is_chained_checked_one_by_one_and_deduplicated() {
    let c = Consortium::new();
    let mut node = replica(&c);
    let mut forged = approve(&c.bank_a, &c.tsp, 2);
    if let Event::AppDecided { decision, .. } = &mut forged {
        decision.version = "6.6.6".into();
    }
    let events = vec![
        approve(&c.bank_a, &c.tsp, 1),
        forged,
        approve(&c.bank_a, &c.tsp, 3),
        approve(&c.bank_a, &c.tsp, 1),
    ];
    let results = node.append_local_many(&c.bank_a, events, now_ms());
    assert_eq!(results.len(), 4);
    let Ok(Appended::New(first)) = &results[0] else {
        panic!("{:?}", results[0])
    };
    // The group's own signatures are checked in one batch; the forgery is still named.
    assert!(matches!(
        results[1],
        Err(Rejected::InvalidEvent(EventError::BadSignature(
            "app decision"
        )))
    ));
    let Ok(Appended::New(third)) = &results[2] else {
        panic!("{:?}", results[2])
    };
    assert_eq!((first.seq, third.seq), (1, 2));
    assert_eq!(third.prev, first.hash(), "the group is one chain");
    assert!(matches!(&results[3], Ok(Appended::Existing(e)) if e == first));
    assert_eq!(node.heads()[c.bank_a.did()], third.head());
    assert_eq!(
        node.store().get(c.bank_a.did(), 2).unwrap().as_ref(),
        Some(third.entry())
    );
    assert_eq!(
        node.state().digest(),
        digest_of(&c, &[first.entry().clone(), third.entry().clone()])
    );
}

#[test]
fn out_of_order_entries_wait_for_the_gap_then_apply_in_order() {
    let c = Consortium::new();
    let (client, consent) = consent(&c.bank_a, &c.tsp);
    let entries = feed(
        &c,
        &c.bank_a,
        vec![
            grant(&consent),
            revoke(&client, consent.id, 1),
            approve(&c.bank_a, &c.tsp, 1),
        ],
    );
    let mut node = replica(&c);
    assert!(matches!(
        node.receive(entries[2].clone()).unwrap(),
        Received::Buffered { from: 1, to: 2, .. }
    ));
    assert!(matches!(
        node.receive(entries[1].clone()).unwrap(),
        Received::Buffered { from: 1, to: 1, .. }
    ));
    assert_eq!(
        node.receive(entries[1].clone()).unwrap(),
        Received::Duplicate
    );
    assert_eq!(
        node.state().digest(),
        digest_of(&c, &[]),
        "nothing applied yet"
    );
    assert_eq!(
        node.receive(entries[0].clone()).unwrap(),
        Received::Stored(entries.clone())
    );
    assert_eq!(node.pending_len(), 0);
    assert_eq!(node.heads()[c.bank_a.did()].seq, 3);
    assert_eq!(
        node.state().consent_status(&consent.id, later(0)),
        ConsentStatus::Revoked
    );
    assert_eq!(
        node.receive(entries[0].clone()).unwrap(),
        Received::Duplicate
    );
}

#[test]
fn the_same_event_through_two_feeds_is_applied_once() {
    let c = Consortium::new();
    let (client, consent) = consent(&c.bank_a, &c.tsp);
    let via_a = feed(&c, &c.bank_a, vec![revoke(&client, consent.id, 1_000)]);
    let via_b = feed(&c, &c.bank_b, vec![revoke(&client, consent.id, 1_000)]);
    let mut node = replica(&c);
    node.receive(via_a[0].clone()).unwrap();
    node.receive(via_b[0].clone()).unwrap();
    assert_eq!(node.heads().len(), 2, "both feeds are stored");
    assert_eq!(
        node.state().digest(),
        digest_of(&c, &via_a),
        "the event is applied once"
    );
}

#[test]
fn entries_from_non_members_are_refused() {
    let c = Consortium::new();
    let outsider = KeyPair::generate();
    let entry = Entry::sign(
        &outsider,
        None,
        1,
        Event::Checkpoint {
            frontier: Default::default(),
        },
    );
    let mut node = replica(&c);
    assert!(matches!(node.receive(entry), Err(Rejected::NotMember(_))));
    assert!(node.heads().is_empty());
}

#[test]
fn forged_entries_are_refused_and_change_nothing() {
    let c = Consortium::new();
    let (_, consent) = consent(&c.bank_a, &c.tsp);
    let mut entry = feed(&c, &c.bank_a, vec![grant(&consent)]).remove(0);
    entry.time += 1;
    let mut node = replica(&c);
    assert!(matches!(
        node.receive(entry),
        Err(Rejected::BadSignature { .. })
    ));
    assert_eq!(
        node.state().consent_status(&consent.id, later(0)),
        ConsentStatus::Unknown
    );
    assert!(node.heads().is_empty());
}

#[test]
fn a_signed_entry_with_an_invalid_event_is_refused() {
    let c = Consortium::new();
    let (_, consent) = consent(&c.bank_a, &c.tsp);
    let mut tampered = consent.credential.clone();
    tampered["credentialSubject"]["accounts"] = serde_json::json!(["acc-stolen"]);
    // Signed by a member node, but the credential inside is forged.
    let entry = Entry::sign(&c.tsp, None, 1, Event::consent_granted(tampered));
    let mut node = replica(&c);
    assert!(matches!(
        node.receive(entry),
        Err(Rejected::Event {
            source: EventError::Consent(_),
            ..
        })
    ));
    assert!(node.heads().is_empty());
    assert_eq!(node.state().digest(), digest_of(&c, &[]));
}

#[test]
fn bank_only_events_from_others_are_refused_on_submission() {
    let c = Consortium::new();
    let mut node = replica(&c);
    // The TSP signs a decision claiming to be a bank decision by itself.
    let fake = approve(&c.tsp, &c.tsp, 1);
    assert!(matches!(
        node.append_local(&c.tsp, fake, now_ms()),
        Err(Rejected::InvalidEvent(EventError::NotABank(_)))
    ));
    // Access records of bank A may only be written by bank A's node.
    let (_, granted) = consent(&c.bank_a, &c.tsp);
    let foreign = access(&c.bank_a, granted.id, 1);
    assert!(matches!(
        node.append_local(&c.bank_b, foreign, now_ms()),
        Err(Rejected::InvalidEvent(
            EventError::ForeignAccessBatch { .. }
        ))
    ));
    // A grant only its bank's feed may carry: the bank admits it once it knows the
    // signer, so a grant in the TSP's feed (or arriving in it by gossip) is refused.
    let (_, elsewhere) = consent(&c.bank_a, &c.tsp);
    assert!(matches!(
        node.append_local(&c.tsp, grant(&elsewhere), now_ms()),
        Err(Rejected::InvalidEvent(EventError::ForeignGrant { .. }))
    ));
    let gossiped = Entry::sign(&c.tsp, None, 1, grant(&elsewhere));
    let answer = node.receive(gossiped);
    assert!(
        matches!(
            answer,
            Err(Rejected::Event {
                source: EventError::ForeignGrant { .. },
                ..
            })
        ),
        "{answer:?}"
    );
    // A consent for a bank outside the consortium.
    let (_, stray) = consent(&KeyPair::generate(), &c.tsp);
    assert!(matches!(
        node.append_local(&c.bank_a, grant(&stray), now_ms()),
        Err(Rejected::InvalidEvent(EventError::UnknownBank(_)))
    ));
    assert!(node.heads().is_empty());
}

#[test]
fn equivocation_is_kept_as_evidence_and_does_not_change_state() {
    let c = Consortium::new();
    let (_, one) = consent(&c.bank_a, &c.tsp);
    let (_, two) = consent(&c.bank_a, &c.tsp);
    let honest = feed(&c, &c.bank_a, vec![grant(&one)]);
    let forked = feed(&c, &c.bank_a, vec![grant(&two)]);
    assert_eq!((honest[0].seq, forked[0].seq), (1, 1));
    let mut node = replica(&c);
    node.receive(honest[0].clone()).unwrap();
    let Received::Equivocation(evidence) = node.receive(forked[0].clone()).unwrap() else {
        panic!("expected equivocation")
    };
    assert_eq!(evidence.held, honest[0]);
    assert_eq!(evidence.conflicting, forked[0]);
    assert!(node.equivocators().contains(c.bank_a.did()));
    assert_eq!(node.store().evidence().unwrap().len(), 1);
    assert_eq!(
        node.state().consent_status(&two.id, later(0)),
        ConsentStatus::Unknown
    );
    // From the fork point on, the equivocator's feed is kept but not applied, so nodes
    // that saw different branches still agree once they share the evidence.
    assert_eq!(
        node.state().consent_status(&one.id, later(0)),
        ConsentStatus::Unknown
    );
    let mut other = replica(&c);
    other.receive(forked[0].clone()).unwrap();
    assert!(other.receive_evidence((*evidence).clone()).unwrap());
    assert!(!other.receive_evidence(*evidence).unwrap());
    assert_eq!(other.state().digest(), node.state().digest());
}

#[test]
fn a_fork_at_the_link_is_reported() {
    let c = Consortium::new();
    let (_, one) = consent(&c.bank_a, &c.tsp);
    let (_, two) = consent(&c.bank_a, &c.tsp);
    let honest = feed(
        &c,
        &c.bank_a,
        vec![grant(&one), approve(&c.bank_a, &c.tsp, 1)],
    );
    let forked = feed(
        &c,
        &c.bank_a,
        vec![grant(&two), approve(&c.bank_a, &c.tsp, 2)],
    );
    let mut node = replica(&c);
    node.receive(honest[0].clone()).unwrap();
    // Seq 2 of the forked history names a seq 1 this node never saw.
    assert!(matches!(
        node.receive(forked[1].clone()).unwrap(),
        Received::Equivocation(_)
    ));
    assert_eq!(node.heads()[c.bank_a.did()].seq, 1);
}

#[test]
fn the_pending_buffer_is_bounded() {
    let c = Consortium::new();
    let entries = feed(
        &c,
        &c.regulator,
        (0..4)
            .map(|i| Event::Checkpoint {
                frontier: [(
                    c.bank_a.did().clone(),
                    consentnet_consent_chain::FeedHead {
                        seq: i,
                        hash: Default::default(),
                    },
                )]
                .into(),
            })
            .collect(),
    );
    let mut node = replica(&c);
    node.set_max_pending(2);
    node.receive(entries[1].clone()).unwrap();
    node.receive(entries[2].clone()).unwrap();
    assert!(matches!(
        node.receive(entries[3].clone()),
        Err(Rejected::PendingFull(2))
    ));
}

#[test]
fn sync_requests_what_a_peer_has_and_serves_ranges() {
    let c = Consortium::new();
    let mut ahead = replica(&c);
    for i in 0..5 {
        ahead
            .append_local(&c.bank_a, approve(&c.bank_a, &c.tsp, i), now_ms())
            .unwrap();
    }
    let mut behind = replica(&c);
    let wants = behind.wants(ahead.heads());
    assert_eq!(wants.len(), 1);
    assert_eq!((wants[0].from, wants[0].to), (1, 5));
    for entry in ahead.serve(&wants[0]).unwrap() {
        behind.receive(entry).unwrap();
    }
    assert_eq!(behind.heads(), ahead.heads());
    assert_eq!(behind.state().digest(), ahead.state().digest());
    assert!(behind.wants(ahead.heads()).is_empty());
}

#[test]
fn reopening_rebuilds_the_same_state() {
    let c = Consortium::new();
    let dir = tempfile::tempdir().unwrap();
    let (client, consent) = consent(&c.bank_a, &c.tsp);
    let digest = {
        let store = consentnet_consent_chain::RocksStore::open(dir.path()).unwrap();
        let mut node = Replica::open(store, &c.genesis).unwrap();
        node.append_local(&c.bank_a, grant(&consent), now_ms())
            .unwrap();
        node.append_local(&c.bank_a, revoke(&client, consent.id, 5), now_ms())
            .unwrap();
        node.state().digest()
    };
    let store = consentnet_consent_chain::RocksStore::open(dir.path()).unwrap();
    let node = Replica::open(store, &c.genesis).unwrap();
    assert_eq!(node.state().digest(), digest);
    assert_eq!(
        node.state().consent_status(&consent.id, later(0)),
        ConsentStatus::Revoked
    );
}

#[test]
fn membership_changes_need_a_quorum() {
    let c = Consortium::new();
    let newcomer = KeyPair::generate();
    let change = MembershipChange {
        action: MembershipAction::Add {
            member: consentnet_consent_chain::Member {
                did: newcomer.did().clone(),
                role: Role::Tsp,
                peer_id: "peer-new".into(),
                name: "new tsp".into(),
            },
        },
        time: 10,
    };
    let mut node = replica(&c);
    let two = vec![
        approve_membership_change(&c.bank_a, &change),
        approve_membership_change(&c.bank_b, &change),
    ];
    let short = Event::MembershipChanged {
        change: change.clone(),
        approvals: two.clone(),
    };
    assert!(matches!(
        node.append_local(&c.bank_a, short, now_ms()),
        Err(Rejected::InvalidEvent(EventError::QuorumNotMet {
            have: 2,
            need: 3
        }))
    ));
    let mut three = two;
    three.push(approve_membership_change(&c.tsp, &change));
    node.append_local(
        &c.bank_a,
        Event::MembershipChanged {
            change,
            approvals: three,
        },
        now_ms(),
    )
    .unwrap();
    assert!(
        node.state()
            .membership()
            .has_role(newcomer.did(), Role::Tsp)
    );
    let entry = Entry::sign(
        &newcomer,
        None,
        1,
        Event::Checkpoint {
            frontier: Default::default(),
        },
    );
    assert!(matches!(node.receive(entry).unwrap(), Received::Stored(_)));
}

#[test]
fn a_run_of_entries_is_stored_in_one_append_whatever_its_order() {
    let c = Consortium::new();
    let mut entries = feed(
        &c,
        &c.bank_a,
        (0..10).map(|i| approve(&c.bank_a, &c.tsp, i)).collect(),
    );
    entries.swap(0, 7);
    entries.swap(3, 9);
    let mut node = replica(&c);
    let results = node.receive_many(entries);
    let stored: Vec<_> = results
        .iter()
        .filter_map(|r| match r {
            Ok(Received::Stored(run)) => Some(run.len()),
            _ => None,
        })
        .collect();
    assert_eq!(stored, [10], "one append holds the whole run");
    assert_eq!(node.heads()[c.bank_a.did()].seq, 10);
    assert_eq!(node.pending_len(), 0);
}

#[test]
fn a_burst_verified_in_one_batch_still_refuses_each_forgery_by_name() {
    let c = Consortium::new();
    // Bank B's feed: a good decision, then one whose event signature no longer matches
    // (the entry around it is validly signed by the bank), then a good one.
    let mut forged = approve(&c.bank_b, &c.tsp, 2);
    if let Event::AppDecided { decision, .. } = &mut forged {
        decision.version = "6.6.6".into();
    }
    let first = feed(&c, &c.bank_b, vec![approve(&c.bank_b, &c.tsp, 1)]).remove(0);
    let second = Entry::sign(&c.bank_b, Some(first.head()), now_ms(), forged);
    let third = Entry::sign(
        &c.bank_b,
        Some(second.head()),
        now_ms(),
        approve(&c.bank_b, &c.tsp, 3),
    );
    let bank_b = [first, second, third];
    // Bank A's feed: two good entries and one whose entry signature is broken.
    let mut bank_a = feed(
        &c,
        &c.bank_a,
        (0..3).map(|i| approve(&c.bank_a, &c.tsp, i)).collect(),
    );
    bank_a[2].time += 1;
    let mut node = replica(&c);
    let burst: Vec<Entry> = bank_a.iter().chain(&bank_b[..1]).cloned().collect();
    let results = node.receive_many(burst);
    // Results come per feed, in no fixed order.
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(Rejected::BadSignature { seq: 3, .. }))),
        "{results:?}"
    );
    assert_eq!(node.heads()[c.bank_a.did()].seq, 2);
    assert_eq!(node.heads()[c.bank_b.did()].seq, 1);
    // The next burst: the forged event is next in its feed and is refused by name;
    // nothing after it is stored.
    let results = node.receive_many(bank_b[1..].to_vec());
    assert!(
        results.iter().any(|r| matches!(
            r,
            Err(Rejected::Event {
                seq: 2,
                source: EventError::BadSignature(_),
                ..
            })
        )),
        "{results:?}"
    );
    assert_eq!(
        node.heads()[c.bank_b.did()].seq,
        1,
        "nothing past the forgery"
    );
    assert_eq!(
        node.state().digest(),
        digest_of(
            &c,
            &[bank_a[0].clone(), bank_a[1].clone(), bank_b[0].clone()]
        )
    );
}
