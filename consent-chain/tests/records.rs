//! A bank's record store on real RocksDB in a temp dir: batches are written once and read back in order, a consent's records page newest first across batches, retention drops the oldest batches, and every record proves against its batch's root.

#![allow(clippy::unwrap_used)]

use consentnet_consent_chain::event::{AccessRecord, Outcome};
use consentnet_consent_chain::merkle::{
    batch_root, inclusion_proof, record_leaf, verify_inclusion,
};
use consentnet_consent_chain::store::records::{RecordKey, RecordStore};
use consentnet_identity::{ConsentId, Hash32};

fn record(consent: ConsentId, time: u64) -> AccessRecord {
    AccessRecord {
        consent_id: consent,
        operation: "GET /aisp/accounts/{AccountId}/balances".into(),
        time,
        outcome: Outcome::Served,
    }
}

fn consent(n: u8) -> ConsentId {
    Hash32([n; 32])
}

#[test]
fn batches_are_written_once_and_a_consents_records_page_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = RecordStore::open(dir.path()).unwrap();
    assert_eq!(store.last_batch().unwrap(), None);
    let (mine, other) = (consent(1), consent(2));
    // Two batches, the second interleaving another consent's records.
    let first: Vec<_> = (0..3).map(|i| record(mine, 1_000 + i)).collect();
    let second = vec![
        record(other, 2_000),
        record(mine, 2_001),
        record(mine, 2_002),
    ];
    store.put_batch(1, &first).unwrap();
    store.put_batch(2, &second).unwrap();
    assert_eq!(store.last_batch().unwrap(), Some(2));
    assert_eq!(store.batch(2).unwrap().unwrap(), second);
    assert_eq!(store.batch(3).unwrap(), None);
    // Its leaves are the records' leaf hashes, in order.
    let leaves: Vec<Hash32> = second.iter().map(record_leaf).collect();
    assert_eq!(store.leaves(2).unwrap().unwrap(), leaves);
    assert_eq!(store.leaves(3).unwrap(), None);
    // A batch number is written once: its root never changes.
    assert!(store.put_batch(2, &first).is_err());
    assert_eq!(store.batch(2).unwrap().unwrap(), second);

    // Pages of two, newest first, never another consent's.
    let page = store.of_consent(&mine, None, 2).unwrap();
    let times: Vec<u64> = page.iter().map(|(_, r)| r.time).collect();
    assert_eq!(times, [2_002, 2_001]);
    assert_eq!(
        page[0].0,
        RecordKey {
            time: 2_002,
            batch: 2,
            index: 2
        }
    );
    let next = store.of_consent(&mine, Some(page[1].0), 2).unwrap();
    let times: Vec<u64> = next.iter().map(|(_, r)| r.time).collect();
    assert_eq!(times, [1_002, 1_001]);
    let last = store.of_consent(&mine, Some(next[1].0), 2).unwrap();
    assert_eq!(last.len(), 1);
    assert!(
        store
            .of_consent(&mine, Some(last[0].0), 2)
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.of_consent(&other, None, 10).unwrap().len(), 1);
    assert!(store.of_consent(&consent(3), None, 10).unwrap().is_empty());

    // Everything survives reopening.
    drop(store);
    let store = RecordStore::open(dir.path()).unwrap();
    assert_eq!(store.last_batch().unwrap(), Some(2));
    assert_eq!(store.of_consent(&mine, None, 10).unwrap().len(), 5);
}

#[test]
fn every_record_proves_against_its_batch_root_and_a_changed_one_does_not() {
    let records: Vec<_> = (0..7).map(|i| record(consent(1), 1_000 + i)).collect();
    let root = batch_root(&records);
    let leaves: Vec<Hash32> = records.iter().map(record_leaf).collect();
    for (index, record) in records.iter().enumerate() {
        let proof = inclusion_proof(&leaves, index).unwrap();
        let leaf = record_leaf(record);
        assert!(verify_inclusion(&leaf, index as u64, 7, &proof, &root));
        let mut altered = record.clone();
        altered.time += 1;
        let forged = record_leaf(&altered);
        assert!(!verify_inclusion(&forged, index as u64, 7, &proof, &root));
    }
}

#[test]
fn retention_drops_the_oldest_batches_and_their_index_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = RecordStore::open(dir.path()).unwrap();
    for batch in 1..=4u64 {
        let records: Vec<_> = (0..2)
            .map(|i| record(consent(1), batch * 1_000 + i))
            .collect();
        store.put_batch(batch, &records).unwrap();
    }
    // Batches 1 and 2 end before 3,000; batch 3 is the first still kept.
    assert_eq!(store.prune_before(3_000).unwrap(), 2);
    assert_eq!(store.batch(1).unwrap(), None);
    assert_eq!(store.batch(2).unwrap(), None);
    assert_eq!(store.leaves(2).unwrap(), None);
    assert!(store.batch(3).unwrap().is_some());
    let times: Vec<u64> = store
        .of_consent(&consent(1), None, 10)
        .unwrap()
        .iter()
        .map(|(_, r)| r.time)
        .collect();
    assert_eq!(times, [4_001, 4_000, 3_001, 3_000]);
    assert_eq!(store.prune_before(3_000).unwrap(), 0);
    assert_eq!(store.last_batch().unwrap(), Some(4));
}
