//! Both stores pass the one conformance suite; RocksDB gives back every acknowledged entry after reopening.

#![allow(clippy::unwrap_used)]

use consentnet_consent_chain::store::conformance::{self, make_feed};
use consentnet_consent_chain::{LogStore, MemoryStore, RocksStore};
use consentnet_identity::KeyPair;

#[test]
fn memory_store_conforms() {
    conformance::run(MemoryStore::new);
}

#[test]
fn rocksdb_store_conforms() {
    let dirs: std::cell::RefCell<Vec<tempfile::TempDir>> = Default::default();
    conformance::run(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(dir.path()).unwrap();
        dirs.borrow_mut().push(dir);
        store
    });
}

#[test]
fn rocksdb_store_holds_what_it_acknowledged_after_each_kind_of_write() {
    let dir = tempfile::tempdir().unwrap();
    conformance::run_reopen(|| RocksStore::open(dir.path()).unwrap());
}

#[test]
fn rocksdb_reopens_with_every_entry_and_head() {
    let dir = tempfile::tempdir().unwrap();
    let a = KeyPair::generate();
    let feed = make_feed(&a, None, 50);
    {
        let mut store = RocksStore::open(dir.path()).unwrap();
        for chunk in feed.chunks(7) {
            store.append(chunk).unwrap();
        }
    }
    let store = RocksStore::open(dir.path()).unwrap();
    assert_eq!(store.heads().unwrap()[a.did()], feed[49].head());
    assert_eq!(store.range(a.did(), 1, 50, 100).unwrap(), feed);
}

#[test]
fn a_reader_sees_the_log_as_it_stood_while_the_store_goes_on_appending() {
    let dir = tempfile::tempdir().unwrap();
    let a = KeyPair::generate();
    let feed = make_feed(&a, None, 20);
    let mut store = RocksStore::open(dir.path()).unwrap();
    store.append(&feed[..10]).unwrap();
    let mut reader = store.reader();
    store.append(&feed[10..]).unwrap();
    assert_eq!(reader.heads().unwrap()[a.did()], feed[9].head());
    assert_eq!(reader.range(a.did(), 1, 20, 100).unwrap(), feed[..10]);
    assert_eq!(reader.get(a.did(), 15).unwrap(), None);
    let mut seen = 0;
    reader
        .for_each_encoded(&mut |_| {
            seen += 1;
            true
        })
        .unwrap();
    assert_eq!(seen, 10, "only the entries up to the heads it was made at");
    // The writer sees everything; the reader refuses writes.
    assert_eq!(store.range(a.did(), 1, 20, 100).unwrap(), feed);
    assert!(reader.append(&feed[10..11]).is_err());
    assert_eq!(store.heads().unwrap()[a.did()], feed[19].head());
}
