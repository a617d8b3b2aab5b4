//! Opening from the persisted snapshot: the same state as a full replay, only the entries after the snapshot read, a snapshot the log does not back ignored, and deferred snapshots stored in capture order.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use consentnet_consent_chain::{
    ConsentStatus, Entry, Equivocation, LogStore, MemoryStore, Opened, Replica, RocksStore,
};

/// Appends grants, revocations, decisions and commitments to bank A's feed: `n` entries.
fn busy_log(
    c: &Consortium,
    node: &mut Replica<impl LogStore>,
    n: u64,
) -> Vec<consentnet_identity::ConsentId> {
    let mut consents = Vec::new();
    for i in 0..n {
        let event = match i % 4 {
            0 => {
                let (_, consent) = consent(&c.bank_a, &c.tsp);
                consents.push(consent.id);
                grant(&consent)
            }
            1 => approve(&c.bank_a, &c.tsp, i),
            2 => commitment(
                &c.bank_a,
                i,
                &[record(consents[consents.len() - 1], 1_000 + i)],
            ),
            _ => consentnet_consent_chain::Event::Checkpoint {
                frontier: node.heads().clone(),
            },
        };
        node.append_local(&c.bank_a, event, now_ms()).unwrap();
    }
    consents
}

#[test]
fn a_reopened_node_starts_from_its_snapshot_and_replays_only_the_entries_after_it() {
    let c = Consortium::new();
    let dir = tempfile::tempdir().unwrap();
    let (digest, consents, client, revoked) = {
        let mut node = Replica::open(RocksStore::open(dir.path()).unwrap(), &c.genesis).unwrap();
        assert_eq!(
            node.opened(),
            Opened {
                from_snapshot: false,
                replayed: 0
            }
        );
        node.set_snapshot_every(10);
        let consents = busy_log(&c, &mut node, 24);
        let (client, revoked) = consent(&c.bank_a, &c.tsp);
        node.append_local(&c.bank_a, grant(&revoked), now_ms())
            .unwrap();
        node.append_local(&c.bank_a, revoke(&client, revoked.id, 5), now_ms())
            .unwrap();
        (node.state().digest(), consents, client, revoked)
    };
    let _ = client;
    // 26 entries; snapshots were written at 10 and 20.
    let node = Replica::open(RocksStore::open(dir.path()).unwrap(), &c.genesis).unwrap();
    assert_eq!(
        node.opened(),
        Opened {
            from_snapshot: true,
            replayed: 6
        }
    );
    assert_eq!(node.state().digest(), digest);
    for id in &consents {
        assert_eq!(
            node.state().consent_status(id, later(0)),
            ConsentStatus::Active
        );
    }
    assert_eq!(
        node.state().consent_status(&revoked.id, later(0)),
        ConsentStatus::Revoked
    );
    assert_eq!(node.state().committed()[c.bank_a.did()].batches, 6);
    // The same state as replaying every entry with no snapshot at all.
    let mut bare = MemoryStore::new();
    node.store()
        .for_each(&mut |entry| {
            bare.append(&[entry]).unwrap();
            true
        })
        .unwrap();
    let rebuilt = Replica::open(bare, &c.genesis).unwrap();
    assert_eq!(rebuilt.opened().replayed, 26);
    assert_eq!(rebuilt.state().digest(), digest);
}

#[test]
fn a_snapshot_written_at_shutdown_leaves_nothing_to_replay() {
    let c = Consortium::new();
    let mut node = Replica::open(MemoryStore::new(), &c.genesis).unwrap();
    busy_log(&c, &mut node, 7);
    node.write_snapshot().unwrap();
    let again = Replica::open(node.store().clone(), &c.genesis).unwrap();
    assert_eq!(
        again.opened(),
        Opened {
            from_snapshot: true,
            replayed: 0
        }
    );
    assert_eq!(again.state().digest(), node.state().digest());
}

#[test]
fn a_snapshot_the_log_does_not_back_is_ignored_and_state_is_rebuilt() {
    let c = Consortium::new();
    let mut one = Replica::open(MemoryStore::new(), &c.genesis).unwrap();
    busy_log(&c, &mut one, 5);
    one.write_snapshot().unwrap();
    let snapshot = one.store().snapshot().unwrap().unwrap();
    // Another log of the same length in the same feed: the snapshot's heads do not match.
    let mut two = Replica::open(MemoryStore::new(), &c.genesis).unwrap();
    busy_log(&c, &mut two, 5);
    let expected = two.state().digest();
    for bytes in [snapshot, b"not a snapshot".to_vec(), Vec::new()] {
        let mut store = two.store().clone();
        store.put_snapshot(&bytes, &Default::default()).unwrap();
        let reopened = Replica::open(store, &c.genesis).unwrap();
        assert_eq!(
            reopened.opened(),
            Opened {
                from_snapshot: false,
                replayed: 5
            }
        );
        assert_eq!(reopened.state().digest(), expected);
        assert_ne!(reopened.state().digest(), one.state().digest());
    }
}

#[test]
fn a_snapshot_from_before_new_evidence_is_not_used() {
    let c = Consortium::new();
    let mut node = Replica::open(MemoryStore::new(), &c.genesis).unwrap();
    let (_, first) = consent(&c.bank_a, &c.tsp);
    node.append_local(&c.bank_a, grant(&first), now_ms())
        .unwrap();
    node.write_snapshot().unwrap();
    // Bank A signs a second entry for seq 1: the evidence excludes its feed from there on.
    let held = node.store().get(c.bank_a.did(), 1).unwrap().unwrap();
    let (_, other) = consent(&c.bank_a, &c.tsp);
    let conflicting = Entry::sign(&c.bank_a, None, now_ms(), grant(&other));
    let mut store = node.store().clone();
    store
        .put_evidence(&Equivocation { held, conflicting })
        .unwrap();
    let reopened = Replica::open(store, &c.genesis).unwrap();
    assert!(!reopened.opened().from_snapshot);
    assert_eq!(
        reopened.state().consent_status(&first.id, later(0)),
        ConsentStatus::Unknown,
        "the snapshot's state had it; the evidence rules it out"
    );
}

#[test]
fn a_deferred_snapshot_is_stored_only_through_its_job_and_an_older_job_never_replaces_a_newer() {
    let c = Consortium::new();
    let dir = tempfile::tempdir().unwrap();
    let digest = {
        let mut node = Replica::open(RocksStore::open(dir.path()).unwrap(), &c.genesis).unwrap();
        node.set_snapshot_every(10);
        node.set_snapshot_deferred(true);
        busy_log(&c, &mut node, 12);
        let first = node.take_snapshot_due().expect("due after 10 entries");
        assert!(node.take_snapshot_due().is_none(), "taken once");
        // 14 more, of which 3 repeat earlier decisions (not stored again): 11 stored.
        busy_log(&c, &mut node, 14);
        let second = node.take_snapshot_due().expect("due again after 10 more");
        // Encoded side by side, the later capture is stored first: the earlier one
        // arriving after it is refused.
        let (first, second) = (first.encode().unwrap(), second.encode().unwrap());
        assert!(node.put_encoded_snapshot(second).unwrap());
        assert!(!node.put_encoded_snapshot(first).unwrap());
        node.state().digest()
    };
    // Nothing was written while appending; the stored snapshot is the second capture,
    // of every entry, so reopening replays nothing.
    let node = Replica::open(RocksStore::open(dir.path()).unwrap(), &c.genesis).unwrap();
    assert_eq!(
        node.opened(),
        Opened {
            from_snapshot: true,
            replayed: 0
        }
    );
    assert_eq!(node.state().digest(), digest);
}

#[test]
fn a_snapshot_that_could_not_be_stored_is_due_again_after_a_sixteenth_of_the_interval() {
    let c = Consortium::new();
    let dir = tempfile::tempdir().unwrap();
    let mut node = Replica::open(RocksStore::open(dir.path()).unwrap(), &c.genesis).unwrap();
    node.set_snapshot_every(32);
    node.set_snapshot_deferred(true);
    busy_log(&c, &mut node, 32);
    let job = node.take_snapshot_due().expect("due after 32 entries");
    // Its store write failed (the job is dropped unstored): the node says so.
    drop(job);
    node.snapshot_failed();
    busy_log(&c, &mut node, 1);
    assert!(
        node.take_snapshot_due().is_none(),
        "not at the very next entry"
    );
    busy_log(&c, &mut node, 1);
    let retried = node
        .take_snapshot_due()
        .expect("due again after 2 = 32/16 entries");
    assert!(
        node.put_encoded_snapshot(retried.encode().unwrap())
            .unwrap()
    );
    // Without a failure, the next one waits a whole interval.
    busy_log(&c, &mut node, 31);
    assert!(node.take_snapshot_due().is_none());
}
