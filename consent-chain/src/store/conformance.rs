//! The conformance suite every `LogStore` runs: append-only contiguous feeds, ranges, heads, the event index, evidence, snapshots, atomic batches, and (for durable stores) all of it again after reopening.

use consentnet_identity::KeyPair;

use super::{ArchiveRows, Equivocation, LogStore, StoreError};
use crate::entry::Entry;
use crate::event::{Event, FeedHead};

fn checkpoint() -> Event {
    Event::Checkpoint {
        frontier: Default::default(),
    }
}

/// A feed of `count` signed entries by `key`, starting after `head`.
pub fn make_feed(key: &KeyPair, head: Option<FeedHead>, count: usize) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::with_capacity(count);
    let mut head = head;
    for index in 0..count {
        let entry = Entry::sign(key, head, 1_700_000_000_000 + index as u64, checkpoint());
        head = Some(entry.head());
        out.push(entry);
    }
    out
}

/// Runs every check on fresh stores from `make`. Panics on the first failure.
pub fn run<S: LogStore>(mut make: impl FnMut() -> S) {
    appended_entries_read_back(&mut make());
    non_contiguous_appends_are_refused_whole(&mut make());
    ranges_respect_bounds_and_limits(&mut make());
    evidence_is_kept_once(&mut make());
    for_each_visits_every_entry_in_feed_order(&mut make());
    events_are_located_where_first_stored(&mut make());
    the_snapshot_is_replaced_and_read_back(&mut make());
    the_archive_keeps_the_snapshot_generation_only(&mut make());
    archive_scans_respect_start_prefix_and_limit(&mut make());
    archive_generations_are_never_reused(&mut make());
}

/// For a durable store: `open` opens the same store each time it is called. After each
/// kind of write, a reopened store holds exactly what was acknowledged.
pub fn run_reopen<S: LogStore>(mut open: impl FnMut() -> S) {
    let a = KeyPair::generate();
    let feed = make_feed(&a, None, 6);
    {
        let mut store = open();
        store.append(&feed[..1]).expect("append one");
    }
    assert_eq!(open().heads().expect("heads")[a.did()], feed[0].head());
    {
        let mut store = open();
        store.append(&feed[1..5]).expect("append a batch");
    }
    let store = open();
    assert_eq!(store.range(a.did(), 1, 6, 10).expect("range"), feed[..5]);
    assert_eq!(
        store.locate(&feed[0].event.id()).expect("locate"),
        Some((a.did().clone(), 1))
    );
    drop(store);
    {
        let mut store = open();
        let refused = [feed[5].clone(), feed[5].clone()];
        assert!(store.append(&refused).is_err(), "a torn batch is refused");
    }
    let store = open();
    assert_eq!(store.heads().expect("heads")[a.did()], feed[4].head());
    assert_eq!(
        store.get(a.did(), 6).expect("get"),
        None,
        "nothing of it was written"
    );
    drop(store);
    let mut other = Entry::sign(&a, None, 42, checkpoint());
    if other == feed[0] {
        other = Entry::sign(&a, None, 43, checkpoint());
    }
    let evidence = Equivocation {
        held: feed[0].clone(),
        conflicting: other,
    };
    {
        let mut store = open();
        store.put_evidence(&evidence).expect("put evidence");
        store
            .put_snapshot(b"state one", &archive_rows(7, &[b"c1", b"pa"]))
            .expect("put snapshot");
        assert!(store.next_archive_generation().expect("generation") >= 1);
    }
    let store = open();
    assert_eq!(store.evidence().expect("evidence"), [evidence]);
    assert_eq!(
        store.snapshot().expect("snapshot").as_deref(),
        Some(&b"state one"[..])
    );
    assert_eq!(
        store.archive_get(&archive_key(7, b"pa")).expect("get"),
        Some(b"pa".to_vec())
    );
    drop(store);
    let first = open().next_archive_generation().expect("generation");
    let second = open().next_archive_generation().expect("generation");
    assert!(
        second > first,
        "a generation taken before a reopen is not taken again"
    );
}

fn archive_key(generation: u64, rest: &[u8]) -> Vec<u8> {
    [&generation.to_be_bytes()[..], rest].concat()
}

/// Rows of `generation` whose values are their keys' suffixes.
fn archive_rows(generation: u64, keys: &[&[u8]]) -> ArchiveRows {
    ArchiveRows {
        generation,
        rows: keys
            .iter()
            .map(|rest| (archive_key(generation, rest), rest.to_vec()))
            .collect(),
    }
}

fn the_archive_keeps_the_snapshot_generation_only<S: LogStore>(store: &mut S) {
    store
        .put_snapshot(b"one", &archive_rows(1, &[b"c1", b"c2"]))
        .expect("put");
    store
        .put_snapshot(b"two", &archive_rows(1, &[b"c3"]))
        .expect("put");
    for rest in [&b"c1"[..], b"c2", b"c3"] {
        let row = store.archive_get(&archive_key(1, rest)).expect("get");
        assert_eq!(
            row.as_deref(),
            Some(rest),
            "rows of the kept generation add up"
        );
    }
    store
        .put_snapshot(b"three", &archive_rows(u64::MAX, &[b"c9"]))
        .expect("put");
    store
        .put_snapshot(b"four", &archive_rows(2, &[b"c4"]))
        .expect("put");
    for (generation, rest) in [(1, &b"c1"[..]), (1, b"c3"), (u64::MAX, b"c9")] {
        let row = store
            .archive_get(&archive_key(generation, rest))
            .expect("get");
        assert_eq!(row, None, "another generation's rows are deleted");
    }
    assert_eq!(
        store.archive_get(&archive_key(2, b"c4")).expect("get"),
        Some(b"c4".to_vec())
    );
    assert_eq!(
        store.snapshot().expect("snapshot").as_deref(),
        Some(&b"four"[..])
    );
}

fn archive_scans_respect_start_prefix_and_limit<S: LogStore>(store: &mut S) {
    let keys: [&[u8]; 5] = [b"pa1", b"pa2", b"pa3", b"pb1", b"q"];
    store
        .put_snapshot(b"s", &archive_rows(3, &keys))
        .expect("put");
    let prefix = archive_key(3, b"pa");
    let scan = |start: &[u8], limit| {
        let rows = store.archive_scan(start, &prefix, limit).expect("scan");
        rows.into_iter().map(|(_, value)| value).collect::<Vec<_>>()
    };
    assert_eq!(scan(&prefix, usize::MAX), [b"pa1", b"pa2", b"pa3"]);
    assert_eq!(scan(&prefix, 2), [b"pa1", b"pa2"]);
    assert_eq!(scan(&archive_key(3, b"pa2"), 10), [b"pa2", b"pa3"]);
    assert_eq!(scan(&archive_key(3, b"pa2\0"), 10), [b"pa3"]);
    assert_eq!(scan(&archive_key(3, b"pa9"), 10), Vec::<Vec<u8>>::new());
    assert_eq!(scan(&prefix, 0), Vec::<Vec<u8>>::new());
}

fn archive_generations_are_never_reused<S: LogStore>(store: &mut S) {
    let first = store.next_archive_generation().expect("generation");
    let second = store.next_archive_generation().expect("generation");
    assert!(first >= 1 && second > first);
}

fn events_are_located_where_first_stored<S: LogStore>(store: &mut S) {
    let a = KeyPair::generate();
    let b = KeyPair::generate();
    // Every checkpoint event here is the same event, so its id is too.
    let feed_a = make_feed(&a, None, 3);
    let feed_b = make_feed(&b, None, 2);
    let id = feed_a[0].event.id();
    assert_eq!(store.locate(&id).expect("locate"), None);
    store.append(&feed_b).expect("append b");
    store.append(&feed_a).expect("append a");
    assert_eq!(
        store.locate(&id).expect("locate"),
        Some((b.did().clone(), 1)),
        "the first entry that held it, not a later one"
    );
    let unknown = consentnet_identity::Hash32::of(b"never stored");
    assert_eq!(store.locate(&unknown).expect("locate"), None);
}

fn the_snapshot_is_replaced_and_read_back<S: LogStore>(store: &mut S) {
    assert_eq!(store.snapshot().expect("snapshot"), None);
    let none = ArchiveRows::default();
    store.put_snapshot(b"first", &none).expect("put");
    store.put_snapshot(b"second", &none).expect("put");
    assert_eq!(
        store.snapshot().expect("snapshot").as_deref(),
        Some(&b"second"[..])
    );
}

fn appended_entries_read_back<S: LogStore>(store: &mut S) {
    let a = KeyPair::generate();
    let b = KeyPair::generate();
    let feed_a = make_feed(&a, None, 5);
    let feed_b = make_feed(&b, None, 2);
    store.append(&feed_a[..3]).expect("append a 1..3");
    store.append(&feed_b).expect("append b");
    store.append(&feed_a[3..]).expect("append a 4..5");
    for entry in feed_a.iter().chain(&feed_b) {
        assert_eq!(
            store.get(&entry.origin, entry.seq).expect("get").as_ref(),
            Some(entry)
        );
    }
    assert_eq!(store.get(a.did(), 6).expect("get"), None);
    assert_eq!(store.get(a.did(), 0).expect("get"), None);
    let heads = store.heads().expect("heads");
    assert_eq!(heads.len(), 2);
    assert_eq!(heads[a.did()], feed_a[4].head());
    assert_eq!(heads[b.did()], feed_b[1].head());
}

fn non_contiguous_appends_are_refused_whole<S: LogStore>(store: &mut S) {
    let a = KeyPair::generate();
    let feed = make_feed(&a, None, 4);
    // A gap.
    assert!(matches!(
        store.append(&feed[1..2]),
        Err(StoreError::NotContiguous { .. })
    ));
    store.append(&feed[..2]).expect("append 1..2");
    // A repeat.
    assert!(matches!(
        store.append(&feed[1..2]),
        Err(StoreError::NotContiguous { .. })
    ));
    // Right seq, wrong prev (a fork), after a good entry in the same batch: nothing is written.
    let fork = make_feed(&a, Some(feed[0].head()), 2);
    let batch = [feed[2].clone(), fork[1].clone()];
    assert!(matches!(
        store.append(&batch),
        Err(StoreError::NotContiguous { .. })
    ));
    assert_eq!(
        store.get(a.did(), 3).expect("get"),
        None,
        "a refused batch writes nothing"
    );
    assert_eq!(store.heads().expect("heads")[a.did()], feed[1].head());
    store
        .append(&feed[2..])
        .expect("the real continuation still appends");
}

fn ranges_respect_bounds_and_limits<S: LogStore>(store: &mut S) {
    let a = KeyPair::generate();
    let b = KeyPair::generate();
    let feed = make_feed(&a, None, 10);
    store.append(&feed).expect("append");
    store.append(&make_feed(&b, None, 3)).expect("append b");
    let seqs = |v: Vec<Entry>| v.into_iter().map(|e| e.seq).collect::<Vec<_>>();
    assert_eq!(
        seqs(store.range(a.did(), 3, 6, 100).expect("range")),
        [3, 4, 5, 6]
    );
    assert_eq!(
        seqs(store.range(a.did(), 3, 100, 2).expect("range")),
        [3, 4]
    );
    assert_eq!(
        seqs(store.range(a.did(), 0, 2, 100).expect("range")),
        [1, 2]
    );
    assert_eq!(
        seqs(store.range(a.did(), 11, 20, 100).expect("range")),
        Vec::<u64>::new()
    );
    let unknown = KeyPair::generate();
    assert!(
        store
            .range(unknown.did(), 1, 5, 10)
            .expect("range")
            .is_empty()
    );
    // The stored bytes of the same ranges: each entry's canonical bytes.
    for (from, to, limit) in [
        (3, 6, 100),
        (3, 100, 2),
        (0, 2, 100),
        (11, 20, 100),
        (1, 10, 10),
    ] {
        let encoded = store
            .range_encoded(a.did(), from, to, limit)
            .expect("range");
        let decoded: Vec<Vec<u8>> = store
            .range(a.did(), from, to, limit)
            .expect("range")
            .iter()
            .map(Entry::encode)
            .collect();
        assert_eq!(encoded, decoded, "range_encoded({from}, {to}, {limit})");
    }
    assert!(
        store
            .range_encoded(b.did(), 4, 9, 10)
            .expect("range")
            .is_empty()
    );
    assert_eq!(
        store.range_encoded(b.did(), 1, 9, 10).expect("range").len(),
        3
    );
}

fn evidence_is_kept_once<S: LogStore>(store: &mut S) {
    let a = KeyPair::generate();
    let one = make_feed(&a, None, 1);
    let mut other = Entry::sign(&a, None, 42, checkpoint());
    if other == one[0] {
        other = Entry::sign(&a, None, 43, checkpoint());
    }
    let evidence = Equivocation {
        held: one[0].clone(),
        conflicting: other,
    };
    store.put_evidence(&evidence).expect("put");
    store.put_evidence(&evidence).expect("put again");
    assert_eq!(store.evidence().expect("evidence"), [evidence]);
}

fn for_each_visits_every_entry_in_feed_order<S: LogStore>(store: &mut S) {
    let a = KeyPair::generate();
    let b = KeyPair::generate();
    store.append(&make_feed(&a, None, 3)).expect("append");
    store.append(&make_feed(&b, None, 4)).expect("append");
    let mut seen = Vec::new();
    store
        .for_each(&mut |entry| {
            seen.push((entry.origin.clone(), entry.seq));
            true
        })
        .expect("for_each");
    assert_eq!(seen.len(), 7);
    for origin in [a.did(), b.did()] {
        let seqs: Vec<u64> = seen
            .iter()
            .filter(|(o, _)| o == origin)
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    }
    let mut count = 0;
    store
        .for_each(&mut |_| {
            count += 1;
            count < 2
        })
        .expect("for_each");
    assert_eq!(count, 2, "returning false stops the walk");

    let mut encoded = Vec::new();
    store
        .for_each_encoded(&mut |bytes| {
            encoded.push(bytes.to_vec());
            true
        })
        .expect("for_each_encoded");
    let mut decoded = Vec::new();
    store
        .for_each(&mut |entry| {
            decoded.push(entry.encode());
            true
        })
        .expect("for_each");
    assert_eq!(
        encoded, decoded,
        "the same entries' canonical bytes, in the same order"
    );
    let mut count = 0;
    store
        .for_each_encoded(&mut |_| {
            count += 1;
            count < 3
        })
        .expect("for_each_encoded");
    assert_eq!(count, 3, "returning false stops the walk");
}
