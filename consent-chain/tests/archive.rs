//! Ended consents moved out of memory at a snapshot: the same answers from the archive, the same digest as a replica that never moves them, late revocations and repeated grants after the move, reopening, and a rebuild that replaces the archive.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use consentnet_consent_chain::{
    ConsentStatus, Entry, Equivocation, LogStore, MemoryStore, Party, Replica, RocksStore,
};
use consentnet_identity::{ConsentId, KeyPair};

fn open(dir: &std::path::Path, c: &Consortium) -> Replica<RocksStore> {
    let mut node = Replica::open(RocksStore::open(dir).unwrap(), &c.genesis).unwrap();
    node.set_snapshot_every(u64::MAX);
    node
}

fn status(node: &Replica<impl LogStore>, id: &ConsentId) -> ConsentStatus {
    node.consent_record(id)
        .unwrap()
        .map_or(ConsentStatus::Unknown, |record| record.status(later(0)))
}

/// Every archive row, whatever its generation.
fn archive_rows(store: &impl LogStore) -> Vec<Vec<u8>> {
    let rows = store.archive_scan(&[], &[], usize::MAX).unwrap();
    rows.into_iter().map(|(key, _)| key).collect()
}

/// A replica that never snapshots, fed every entry of `from`: it archives nothing.
fn never_retiring(c: &Consortium, from: &Replica<impl LogStore>) -> Replica<MemoryStore> {
    let mut other = Replica::open(MemoryStore::new(), &c.genesis).unwrap();
    other.set_snapshot_every(u64::MAX);
    for (origin, head) in from.heads() {
        let entries = from.store().range(origin, 1, head.seq, usize::MAX).unwrap();
        for result in other.receive_many(entries) {
            result.unwrap();
        }
    }
    other
}

struct Granted {
    live: ConsentId,
    revoked: ConsentId,
    client: KeyPair,
}

fn grant_two(c: &Consortium, node: &mut Replica<impl LogStore>) -> Granted {
    let (_, live) = consent(&c.bank_a, &c.tsp);
    let (client, revoked) = consent(&c.bank_a, &c.tsp);
    for event in [
        grant(&live),
        grant(&revoked),
        revoke(&client, revoked.id, 5),
    ] {
        node.append_local(&c.bank_a, event, now_ms()).unwrap();
    }
    Granted {
        live: live.id,
        revoked: revoked.id,
        client,
    }
}

#[test]
fn a_revoked_consent_leaves_memory_at_the_snapshot_and_answers_the_same_from_the_archive() {
    let c = Consortium::new();
    let dir = tempfile::tempdir().unwrap();
    let mut node = open(dir.path(), &c);
    let g = grant_two(&c, &mut node);
    let digest = node.state().digest();
    let before = node.consent_record(&g.revoked).unwrap().unwrap();
    node.write_snapshot().unwrap();

    assert!(node.state().consent(&g.revoked).is_none(), "out of memory");
    assert_eq!(node.state().consent_count(), 1);
    assert!(node.state().consent(&g.live).is_some(), "a live one stays");
    assert_eq!(node.state().digest(), digest, "moving it changes no digest");
    let after = node.consent_record(&g.revoked).unwrap().unwrap();
    assert_eq!(after.consent.credential, before.consent.credential);
    assert_eq!(after.status(later(0)), ConsentStatus::Revoked);
    assert_eq!(
        after.effective_revocation(),
        before.effective_revocation(),
        "the same revocation applies"
    );
    let client = g.client.did();
    assert_eq!(
        node.archived_of(Party::Client, client, None, 10).unwrap(),
        [g.revoked]
    );
    assert_eq!(
        node.archived_of(Party::Bank, c.bank_a.did(), None, 10)
            .unwrap(),
        [g.revoked]
    );
    assert_eq!(
        node.archived_of(Party::App, c.tsp.did(), Some(&g.revoked), 10)
            .unwrap(),
        Vec::<ConsentId>::new(),
        "paged after the last one"
    );
    assert_eq!(status(&node, &g.live), ConsentStatus::Active);
    assert_eq!(
        never_retiring(&c, &node).state().digest(),
        digest,
        "a replica that keeps every consent in memory agrees"
    );
}

#[test]
fn a_late_revocation_and_a_repeated_grant_after_the_move_are_counted_once_and_survive_reopening() {
    let c = Consortium::new();
    let dir = tempfile::tempdir().unwrap();
    let g;
    let digest;
    {
        let mut node = open(dir.path(), &c);
        g = grant_two(&c, &mut node);
        node.write_snapshot().unwrap();
        // The bank revokes it too, and its feed carries the grant again (as a bank
        // that lost track of it might: the event is the same).
        let credential = node.consent_record(&g.revoked).unwrap().unwrap();
        node.append_local(&c.bank_a, revoke(&c.bank_a, g.revoked, 9), now_ms())
            .unwrap();
        let head = node.heads()[c.bank_a.did()];
        let again = Entry::sign(&c.bank_a, Some(head), now_ms(), grant(&credential.consent));
        node.receive(again).unwrap();
        assert_eq!(
            node.state().consent_count(),
            1,
            "the grant is not held again"
        );
        let record = node.consent_record(&g.revoked).unwrap().unwrap();
        assert_eq!(record.revocations.len(), 2, "the late revocation is held");
        digest = node.state().digest();
        assert_eq!(never_retiring(&c, &node).state().digest(), digest);
    }
    // Reopened from the first snapshot, the two entries after it are replayed against
    // the archive.
    let mut node = open(dir.path(), &c);
    assert!(node.opened().from_snapshot);
    assert_eq!(node.opened().replayed, 2);
    assert_eq!(node.state().digest(), digest);
    assert_eq!(node.state().consent_count(), 1);
    assert_eq!(
        node.consent_record(&g.revoked)
            .unwrap()
            .unwrap()
            .revocations
            .len(),
        2
    );
    // The next snapshot writes the late revocation beside its consent.
    node.write_snapshot().unwrap();
    assert!(node.state().late_revocations(&g.revoked).is_none());
    drop(node);
    let node = open(dir.path(), &c);
    assert_eq!(node.opened().replayed, 0);
    assert_eq!(node.state().digest(), digest);
    let record = node.consent_record(&g.revoked).unwrap().unwrap();
    assert_eq!(record.revocations.len(), 2);
    assert_eq!(record.status(later(0)), ConsentStatus::Revoked);
}

#[test]
fn an_expired_consent_moves_once_past_its_valid_until() {
    let c = Consortium::new();
    let mut node = Replica::open(MemoryStore::new(), &c.genesis).unwrap();
    node.set_snapshot_every(1);
    node.set_snapshot_deferred(true);
    let (_, granted) = consent(&c.bank_a, &c.tsp);
    node.append_local(&c.bank_a, grant(&granted), now_ms())
        .unwrap();
    // Encoded now, it stays: it is valid until 2030.
    let job = node.take_snapshot_due().unwrap();
    assert!(node.put_encoded_snapshot(job.encode().unwrap()).unwrap());
    assert_eq!(node.state().consent_count(), 1);
    // Encoded as of six years on, it has ended and moves.
    node.append_local(&c.bank_a, approve(&c.bank_a, &c.tsp, 1), now_ms())
        .unwrap();
    let job = node.take_snapshot_due().unwrap();
    let past_end = later(365 * 6);
    assert!(
        node.put_encoded_snapshot(job.encode_at(past_end).unwrap())
            .unwrap()
    );
    assert_eq!(node.state().consent_count(), 0);
    let record = node.consent_record(&granted.id).unwrap().unwrap();
    assert_eq!(record.status(past_end), ConsentStatus::Expired);
    assert_eq!(
        record.status(later(0)),
        ConsentStatus::Active,
        "by its terms"
    );
}

#[test]
fn a_rebuild_takes_a_new_archive_generation_and_its_snapshot_drops_the_old_rows() {
    let c = Consortium::new();
    let dir = tempfile::tempdir().unwrap();
    let mut node = open(dir.path(), &c);
    let g = grant_two(&c, &mut node);
    node.write_snapshot().unwrap();
    let old = archive_rows(node.store());
    // A credential, its revocation, and its three party rows.
    assert_eq!(old.len(), 5);
    // Bank B signs two entries for seq 1: the evidence makes the replica rebuild its
    // state from the log, which holds the revoked consent in memory again until its
    // next snapshot (written at once) moves it under a new generation.
    let first = Entry::sign(&c.bank_b, None, now_ms(), approve(&c.bank_b, &c.tsp, 1));
    let second = Entry::sign(&c.bank_b, None, now_ms(), approve(&c.bank_b, &c.tsp, 2));
    node.receive(first.clone()).unwrap();
    node.receive_evidence(Equivocation {
        held: first,
        conflicting: second,
    })
    .unwrap();
    let new = archive_rows(node.store());
    assert_eq!(new.len(), 5, "one generation's rows, the old ones deleted");
    assert_ne!(new[0][..8], old[0][..8], "under a new generation");
    assert!(new.iter().all(|key| key[..8] == new[0][..8]));
    assert_eq!(node.state().consent_count(), 1);
    assert_eq!(status(&node, &g.revoked), ConsentStatus::Revoked);
    drop(node);
    let node = open(dir.path(), &c);
    assert!(node.opened().from_snapshot);
    assert_eq!(status(&node, &g.revoked), ConsentStatus::Revoked);
    assert_eq!(status(&node, &g.live), ConsentStatus::Active);
}
