//! The engine without a runtime: the steps it returns, and that nothing changes until the runtime reports a write durable.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use consentnet_consent_chain::engine::{Local, Sealing};
use consentnet_consent_chain::replica::{DEFAULT_MAX_PENDING, prepare_events};
use consentnet_consent_chain::state::NoArchive;
use consentnet_consent_chain::{
    Engine, Entry, Event, RangeRequest, Received, Rejected, Sealed, Signatures, Step, StoreError,
};
use consentnet_identity::KeyPair;

fn engine(c: &Consortium) -> Engine {
    Engine::new(&c.genesis, BTreeMap::new(), DEFAULT_MAX_PENDING)
}

const VERIFIED: Signatures = Signatures {
    entry: true,
    event: false,
};

/// Seals `events` into `key`'s feed on `engine` and commits them as written.
fn seal(engine: &mut Engine, key: &KeyPair, events: Vec<Event>) -> Vec<Entry> {
    let events = prepare_events(events)
        .into_iter()
        .map(|p| (p, None))
        .collect();
    let Sealing { outcomes, append } = engine.seal_local(key, events, now_ms());
    assert!(outcomes.iter().all(|o| matches!(o, Ok(Local::New(_)))));
    let committed = engine.commit(append, &NoArchive);
    committed.into_iter().map(Sealed::into_entry).collect()
}

fn approvals(c: &Consortium, count: u64) -> Vec<Event> {
    (0..count).map(|i| approve(&c.bank_a, &c.tsp, i)).collect()
}

#[test]
fn an_append_not_reported_durable_changes_nothing() {
    let c = Consortium::new();
    let entries = seal(&mut engine(&c), &c.bank_a, approvals(&c, 2));
    let mut node = engine(&c);
    let before = node.state().digest();
    // The runtime's write failed: it drops the step instead of committing it.
    let step = node.receive(Sealed::new(entries[0].clone()), VERIFIED);
    let Step::Append(append) = step else {
        panic!("{step:?}")
    };
    assert_eq!(append.entries().len(), 1);
    drop(append);
    assert!(node.heads().is_empty());
    assert_eq!(node.state().digest(), before);
    // Asked again, it asks for the same write; reported durable, it applies it.
    let Step::Append(append) = node.receive(Sealed::new(entries[0].clone()), VERIFIED) else {
        panic!("no append the second time")
    };
    let Step::Done(Ok(Received::Stored(stored))) = node.appended(append, &NoArchive) else {
        panic!("not stored")
    };
    assert_eq!(stored, entries[..1]);
    assert_eq!(node.heads()[c.bank_a.did()].seq, 1);
    assert_ne!(node.state().digest(), before);
}

#[test]
fn a_held_position_is_compared_by_the_runtime() {
    let c = Consortium::new();
    let entries = seal(&mut engine(&c), &c.bank_a, approvals(&c, 1));
    let mut node = engine(&c);
    seal(&mut node, &c.bank_a, approvals(&c, 1));
    let step = node.receive(Sealed::new(entries[0].clone()), VERIFIED);
    let Step::Compare { seq: 1, entry } = step else {
        panic!("{step:?}")
    };
    // The runtime's store holds the same entry: a duplicate.
    let same = node.compared(Some(entry.entry().clone()), entry.clone());
    assert!(
        matches!(same, Step::Done(Ok(Received::Duplicate))),
        "{same:?}"
    );
    // Another entry at that position: evidence for the runtime to store.
    let (_, consent) = consent(&c.bank_a, &c.tsp);
    let other = seal(&mut engine(&c), &c.bank_a, vec![grant(&consent)]).remove(0);
    let Step::Evidence(evidence) = node.compared(Some(other.clone()), entry.clone()) else {
        panic!("no evidence")
    };
    assert_eq!(
        (evidence.held, evidence.conflicting),
        (other, entries[0].clone())
    );
    // Nothing stored below the head: the runtime's store is corrupt, and it is said so.
    let missing = node.compared(None, entry);
    assert!(
        matches!(
            missing,
            Step::Done(Err(Rejected::Store(StoreError::Corrupt(_))))
        ),
        "{missing:?}"
    );
}

#[test]
fn the_next_entry_naming_another_predecessor_is_compared_with_the_head() {
    let c = Consortium::new();
    let theirs = seal(&mut engine(&c), &c.bank_a, approvals(&c, 2));
    let mut node = engine(&c);
    let (_, consent) = consent(&c.bank_a, &c.tsp);
    let mine = seal(&mut node, &c.bank_a, vec![grant(&consent)]).remove(0);
    let step = node.receive(Sealed::new(theirs[1].clone()), VERIFIED);
    let Step::Compare { seq: 1, entry } = step else {
        panic!("{step:?}")
    };
    let Step::Evidence(evidence) = node.compared(Some(mine.clone()), entry) else {
        panic!("no evidence")
    };
    assert_eq!(evidence.held, mine);
    assert!(node.check_evidence(&evidence).is_ok());
    assert!(node.note_fork(&evidence), "a new fork point");
    assert!(!node.note_fork(&evidence), "the same one again");
}

#[test]
fn wants_leaves_positions_behind_its_head_to_the_runtime() {
    let c = Consortium::new();
    let entries = seal(&mut engine(&c), &c.bank_a, approvals(&c, 3));
    let mut node = engine(&c);
    let head_at = |seq: usize| BTreeMap::from([(c.bank_a.did().clone(), entries[seq].head())]);
    let wants = node.wants(&head_at(2));
    assert_eq!(
        wants.ranges,
        [RangeRequest {
            origin: c.bank_a.did().clone(),
            from: 1,
            to: 3
        }]
    );
    for entry in &entries {
        let Step::Append(append) = node.receive(Sealed::new(entry.clone()), VERIFIED) else {
            panic!("not appended")
        };
        let _ = node.appended(append, &NoArchive);
    }
    assert_eq!(node.wants(&head_at(2)), Default::default(), "level");
    let behind = node.wants(&head_at(0));
    assert!(behind.ranges.is_empty());
    assert_eq!(
        behind.compare,
        [(c.bank_a.did().clone(), entries[0].head())]
    );
    // The runtime's store agrees at that position: nothing to ask for.
    let held = entries[0].hash();
    assert!(behind.clone().resolve(|_, _| Some(held)).is_empty());
    // It holds another entry there: that one position is asked for.
    let asked = behind.resolve(|_, _| Some(entries[1].hash()));
    assert_eq!((asked[0].from, asked[0].to), (1, 1));
}

#[test]
fn sealing_moves_nothing_until_committed() {
    let c = Consortium::new();
    let mut node = engine(&c);
    let events = prepare_events(approvals(&c, 2))
        .into_iter()
        .map(|p| (p, None))
        .collect();
    let Sealing { outcomes, append } = node.seal_local(&c.bank_a, events, now_ms());
    assert_eq!(
        outcomes.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
        [Local::New(0), Local::New(1)]
    );
    assert_eq!(append.entries()[1].prev, append.entries()[0].hash());
    assert!(node.heads().is_empty());
    drop(append);
    let sealed = seal(&mut node, &c.bank_a, approvals(&c, 1));
    assert_eq!(sealed[0].seq, 1, "the dropped append took no seq");
    // A node that is not a member seals nothing.
    let outsider = KeyPair::generate();
    let events = prepare_events(approvals(&c, 1))
        .into_iter()
        .map(|p| (p, None));
    let refused = node.seal_local(&outsider, events.collect(), now_ms());
    assert!(matches!(
        refused.outcomes[..],
        [Err(Rejected::NotMember(_))]
    ));
    assert!(refused.append.is_empty());
}
