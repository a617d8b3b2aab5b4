//! The RocksDB store: column families for feed entries, feed heads, the event index, equivocation evidence and the state snapshot; every append is one synced write batch.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use consentnet_identity::Did;
use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, WriteBatch,
    WriteOptions,
};

use super::{ArchiveRow, ArchiveRows, Equivocation, LogStore, StoreError, check_contiguous};
use crate::entry::{Entry, Sealed};
use crate::event::FeedHead;
use consentnet_identity::Hash32;

const ENTRIES: &str = "entries";
const HEADS: &str = "heads";
const EVIDENCE: &str = "evidence";
/// Event id -> the key of the entry that first held it.
const EVENTS: &str = "events";
/// The state snapshot, and which one-time upgrades the store has had.
const META: &str = "meta";
const SNAPSHOT_KEY: &[u8] = b"snapshot";
/// The last archive generation taken (u64 big-endian).
const ARCHIVE_GENERATION_KEY: &[u8] = b"archive-generation";
/// Ended consents moved out of memory (see [`super::archive`] for the keys).
const ARCHIVE: &str = "archive";
/// Set once the event index covers every entry (stores made before it get it built
/// once, on open).
const EVENT_INDEX_KEY: &[u8] = b"event-index/v1";

/// A log kept in RocksDB. Keys in `entries` are `origin DID bytes, 0x00, seq (u64
/// big-endian)`, so one feed is one contiguous, ordered key range.
pub struct RocksStore {
    /// `None` only between closing and opening again in [`RocksStore::reopen`].
    db: Option<Arc<DB>>,
    path: std::path::PathBuf,
    heads: BTreeMap<Did, FeedHead>,
    /// A view made by [`RocksStore::reader`]: it refuses writes.
    read_only: bool,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn backend(error: rocksdb::Error) -> StoreError {
    StoreError::Backend(error.to_string())
}

fn entry_key(origin: &Did, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(origin.as_str().len() + 9);
    key.extend_from_slice(origin.as_str().as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn encode_head(head: &FeedHead) -> [u8; 40] {
    let mut bytes = [0u8; 40];
    bytes[..8].copy_from_slice(&head.seq.to_be_bytes());
    bytes[8..].copy_from_slice(&head.hash.0);
    bytes
}

fn decode_head(bytes: &[u8]) -> Result<FeedHead, StoreError> {
    let bytes: &[u8; 40] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("a feed head is not 40 bytes".into()))?;
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&bytes[..8]);
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&bytes[8..]);
    Ok(FeedHead {
        seq: u64::from_be_bytes(seq),
        hash: Hash32(hash),
    })
}

/// Memory one database may hold in memtables, across all its column families; a
/// family's memtable is flushed at [`MEMTABLE_BYTES`]; table blocks are cached in one
/// cache of [`BLOCK_CACHE_BYTES`] per database.
const WRITE_BUFFER_BUDGET: usize = 32 << 20;
const MEMTABLE_BYTES: usize = 8 << 20;
const BLOCK_CACHE_BYTES: usize = 8 << 20;

/// Options for a database of `families` with bounded memory: RocksDB's defaults give
/// every column family two 64 MiB memtables, so a store that takes writes in several
/// families (the bank's record store) would grow by hundreds of MiB before flushing.
pub(super) fn bounded_open(path: &Path, families: &[&str]) -> Result<DB, StoreError> {
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    options.set_db_write_buffer_size(WRITE_BUFFER_BUDGET);
    let cache = rocksdb::Cache::new_lru_cache(BLOCK_CACHE_BYTES);
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_block_cache(&cache);
    let families: Vec<ColumnFamilyDescriptor> = families
        .iter()
        .map(|name| {
            let mut family = Options::default();
            family.set_write_buffer_size(MEMTABLE_BYTES);
            family.set_max_write_buffer_number(2);
            family.set_block_based_table_factory(&table);
            ColumnFamilyDescriptor::new(*name, family)
        })
        .collect();
    DB::open_cf_descriptors(&options, path, families).map_err(backend)
}

fn open_db(path: &Path) -> Result<DB, StoreError> {
    bounded_open(path, &[ENTRIES, HEADS, EVIDENCE, EVENTS, META, ARCHIVE])
}

/// The `(origin, seq)` an entry key names.
fn split_entry_key(key: &[u8]) -> Option<(Did, u64)> {
    let split = key.len().checked_sub(9)?;
    let (origin, rest) = key.split_at(split);
    let seq = <[u8; 8]>::try_from(&rest[1..]).ok()?;
    let origin = Did::parse(std::str::from_utf8(origin).ok()?).ok()?;
    Some((origin, u64::from_be_bytes(seq)))
}

fn synced() -> WriteOptions {
    let mut options = WriteOptions::default();
    options.set_sync(true);
    options
}

fn decode_entry(bytes: &[u8]) -> Result<Entry, StoreError> {
    Entry::decode(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl RocksStore {
    /// Opens (or creates) the store in directory `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut store = Self {
            db: Some(Arc::new(open_db(path)?)),
            path: path.to_owned(),
            heads: BTreeMap::new(),
            read_only: false,
        };
        store.heads = store.read_heads()?;
        store.build_event_index()?;
        Ok(store)
    }

    /// Fills the event index from the entries of a store made before it existed, once.
    fn build_event_index(&self) -> Result<(), StoreError> {
        let db = self.db()?;
        let meta = self.cf(META)?;
        if db.get_cf(meta, EVENT_INDEX_KEY).map_err(backend)?.is_some() {
            return Ok(());
        }
        let events = self.cf(EVENTS)?;
        let mut batch = WriteBatch::default();
        let mut in_batch = std::collections::HashSet::new();
        for item in db.iterator_cf(self.cf(ENTRIES)?, IteratorMode::Start) {
            let (key, value) = item.map_err(backend)?;
            // A damaged entry is left for the audit to report; it indexes nothing.
            let Ok(entry) = decode_entry(&value) else {
                continue;
            };
            let id = entry.event.id();
            if !in_batch.contains(&id) && db.get_cf(events, id.0).map_err(backend)?.is_none() {
                batch.put_cf(events, id.0, &key);
                in_batch.insert(id);
            }
            if batch.len() >= 10_000 {
                db.write(std::mem::take(&mut batch)).map_err(backend)?;
                in_batch.clear();
            }
        }
        batch.put_cf(meta, EVENT_INDEX_KEY, b"complete");
        db.write_opt(batch, &synced()).map_err(backend)
    }

    /// Closes the database and opens it again: after the disk refused a write (a full
    /// disk), RocksDB refuses every later one until then. Refused while a
    /// [`RocksStore::reader`] view is open; the heads are read again from disk.
    pub fn reopen(&mut self) -> Result<(), StoreError> {
        self.writable()?;
        if self.db.as_ref().is_some_and(|db| Arc::strong_count(db) > 1) {
            return Err(StoreError::Backend(
                "a reader holds the log; reopen later".into(),
            ));
        }
        self.db = None;
        self.db = Some(Arc::new(open_db(&self.path)?));
        self.heads = self.read_heads()?;
        Ok(())
    }

    fn db(&self) -> Result<&DB, StoreError> {
        self.db.as_deref().ok_or_else(|| {
            StoreError::Backend("the log is closed; it reopens on the next write".into())
        })
    }

    /// A read-only view of the log as it stands now: the entries up to today's heads and
    /// the evidence. Entries are never changed once written, so the view stays
    /// consistent while the store goes on appending, and reading it takes no lock of the
    /// writer's (the audit runs on one). It refuses writes.
    pub fn reader(&self) -> Self {
        Self {
            db: self.db.clone(),
            path: self.path.clone(),
            heads: self.heads.clone(),
            read_only: true,
        }
    }

    /// The seq of `origin`'s head in this view (0 when it has none).
    fn head_seq(&self, origin: &Did) -> u64 {
        self.heads.get(origin).map_or(0, |head| head.seq)
    }

    fn writable(&self) -> Result<(), StoreError> {
        if self.read_only {
            return Err(StoreError::Backend("a read-only view of the log".into()));
        }
        Ok(())
    }

    /// True when the entry at `key` is within this view's heads.
    fn in_view(&self, key: &[u8]) -> bool {
        split_entry_key(key).is_some_and(|(origin, seq)| seq <= self.head_seq(&origin))
    }

    fn cf(&self, name: &str) -> Result<&ColumnFamily, StoreError> {
        self.db()?
            .cf_handle(name)
            .ok_or_else(|| StoreError::Corrupt(format!("column family {name} is missing")))
    }

    fn read_heads(&self) -> Result<BTreeMap<Did, FeedHead>, StoreError> {
        let mut heads = BTreeMap::new();
        for item in self.db()?.iterator_cf(self.cf(HEADS)?, IteratorMode::Start) {
            let (key, value) = item.map_err(backend)?;
            let origin = std::str::from_utf8(&key)
                .ok()
                .and_then(|text| Did::parse(text).ok())
                .ok_or_else(|| StoreError::Corrupt("a feed head key is not a DID".into()))?;
            heads.insert(origin, decode_head(&value)?);
        }
        Ok(heads)
    }
}

impl LogStore for RocksStore {
    fn append_sealed(&mut self, entries: &[Sealed]) -> Result<(), StoreError> {
        self.writable()?;
        let mut heads = self.heads.clone();
        check_contiguous(&mut heads, entries)?;
        let mut batch = WriteBatch::default();
        let entries_cf = self.cf(ENTRIES)?;
        let heads_cf = self.cf(HEADS)?;
        let events_cf = self.cf(EVENTS)?;
        let mut indexed = std::collections::HashSet::new();
        for entry in entries {
            let key = entry_key(&entry.origin, entry.seq);
            let id = entry.event_id();
            if indexed.insert(id)
                && self
                    .db()?
                    .get_cf(events_cf, id.0)
                    .map_err(backend)?
                    .is_none()
            {
                batch.put_cf(events_cf, id.0, &key);
            }
            batch.put_cf(entries_cf, key, entry.bytes());
        }
        for entry in entries {
            if let Some(head) = heads.get(&entry.origin) {
                batch.put_cf(
                    heads_cf,
                    entry.origin.as_str().as_bytes(),
                    encode_head(head),
                );
            }
        }
        // Synced: when append returns, the entries survive a crash or power loss.
        self.db()?.write_opt(batch, &synced()).map_err(backend)?;
        self.heads = heads;
        Ok(())
    }

    fn get(&self, origin: &Did, seq: u64) -> Result<Option<Entry>, StoreError> {
        if seq > self.head_seq(origin) {
            return Ok(None);
        }
        let bytes = self
            .db()?
            .get_cf(self.cf(ENTRIES)?, entry_key(origin, seq))
            .map_err(backend)?;
        bytes.map(|b| decode_entry(&b)).transpose()
    }

    fn range(
        &self,
        origin: &Did,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        self.range_encoded(origin, from, to, limit)?
            .iter()
            .map(|bytes| decode_entry(bytes))
            .collect()
    }

    fn range_encoded(
        &self,
        origin: &Did,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let to = to.min(self.head_seq(origin));
        let start = entry_key(origin, from.max(1));
        let prefix = &start[..start.len() - 8];
        let mut out = Vec::new();
        let iterator = self.db()?.iterator_cf(
            self.cf(ENTRIES)?,
            IteratorMode::From(&start, Direction::Forward),
        );
        for item in iterator {
            if out.len() >= limit {
                break;
            }
            let (key, value) = item.map_err(backend)?;
            // The key is the origin, a zero byte and the seq (big-endian).
            let Some(seq) = key
                .strip_prefix(prefix)
                .and_then(|seq| <[u8; 8]>::try_from(seq).ok())
            else {
                break;
            };
            if u64::from_be_bytes(seq) > to {
                break;
            }
            out.push(value.into_vec());
        }
        Ok(out)
    }

    fn heads(&self) -> Result<BTreeMap<Did, FeedHead>, StoreError> {
        Ok(self.heads.clone())
    }

    fn put_evidence(&mut self, evidence: &Equivocation) -> Result<(), StoreError> {
        self.writable()?;
        let mut key = evidence.held.hash().0.to_vec();
        key.extend_from_slice(&evidence.conflicting.hash().0);
        let value = serde_json::to_vec(evidence).map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(EVIDENCE)?, Hash32::of(&key).0, value);
        self.db()?.write_opt(batch, &synced()).map_err(backend)
    }

    fn locate(&self, event_id: &Hash32) -> Result<Option<(Did, u64)>, StoreError> {
        let Some(key) = self
            .db()?
            .get_cf(self.cf(EVENTS)?, event_id.0)
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let (origin, seq) = split_entry_key(&key).ok_or_else(|| {
            StoreError::Corrupt("an event index value is not an entry key".into())
        })?;
        Ok((seq <= self.head_seq(&origin)).then_some((origin, seq)))
    }

    fn put_snapshot(&mut self, bytes: &[u8], rows: &ArchiveRows) -> Result<(), StoreError> {
        self.writable()?;
        let archive = self.cf(ARCHIVE)?;
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(META)?, SNAPSHOT_KEY, bytes);
        let generation = rows.generation;
        batch.delete_range_cf(archive, 0u64.to_be_bytes(), generation.to_be_bytes());
        if let Some(next) = generation.checked_add(1) {
            batch.delete_range_cf(archive, &next.to_be_bytes()[..], &[0xff; 9][..]);
        }
        for (key, value) in &rows.rows {
            batch.put_cf(archive, key, value);
        }
        self.db()?.write_opt(batch, &synced()).map_err(backend)
    }

    fn archive_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db()?.get_cf(self.cf(ARCHIVE)?, key).map_err(backend)
    }

    fn archive_scan(
        &self,
        start: &[u8],
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<ArchiveRow>, StoreError> {
        let iterator = self.db()?.iterator_cf(
            self.cf(ARCHIVE)?,
            IteratorMode::From(start, Direction::Forward),
        );
        let mut out = Vec::new();
        for item in iterator {
            let (key, value) = item.map_err(backend)?;
            if out.len() >= limit || !key.starts_with(prefix) {
                break;
            }
            out.push((key.into_vec(), value.into_vec()));
        }
        Ok(out)
    }

    fn next_archive_generation(&mut self) -> Result<u64, StoreError> {
        self.writable()?;
        let meta = self.cf(META)?;
        let last =
            match self
                .db()?
                .get_cf(meta, ARCHIVE_GENERATION_KEY)
                .map_err(backend)?
            {
                None => 0,
                Some(bytes) => u64::from_be_bytes(bytes.as_slice().try_into().map_err(|_| {
                    StoreError::Corrupt("the archive generation is not a u64".into())
                })?),
            };
        let next = last
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend("archive generations are used up".into()))?;
        let mut batch = WriteBatch::default();
        batch.put_cf(meta, ARCHIVE_GENERATION_KEY, next.to_be_bytes());
        self.db()?.write_opt(batch, &synced()).map_err(backend)?;
        Ok(next)
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.db()?
            .get_cf(self.cf(META)?, SNAPSHOT_KEY)
            .map_err(backend)
    }

    fn evidence(&self) -> Result<Vec<Equivocation>, StoreError> {
        let mut out = Vec::new();
        for item in self
            .db()?
            .iterator_cf(self.cf(EVIDENCE)?, IteratorMode::Start)
        {
            let (_, value) = item.map_err(backend)?;
            out.push(
                serde_json::from_slice(&value).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            );
        }
        Ok(out)
    }

    fn for_each(&self, visit: &mut dyn FnMut(Entry) -> bool) -> Result<(), StoreError> {
        let mut failed = None;
        self.for_each_encoded(&mut |bytes| match decode_entry(bytes) {
            Ok(entry) => visit(entry),
            Err(error) => {
                failed = Some(error);
                false
            }
        })?;
        failed.map_or(Ok(()), Err)
    }

    fn for_each_encoded(&self, visit: &mut dyn FnMut(&[u8]) -> bool) -> Result<(), StoreError> {
        for item in self
            .db()?
            .iterator_cf(self.cf(ENTRIES)?, IteratorMode::Start)
        {
            let (key, value) = item.map_err(backend)?;
            if !self.in_view(&key) {
                continue;
            }
            if !visit(&value) {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::conformance::make_feed;
    use consentnet_identity::KeyPair;

    #[test]
    fn a_store_made_before_the_event_index_gets_it_built_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let a = KeyPair::generate();
        let feed = make_feed(&a, None, 3);
        {
            let mut store = RocksStore::open(dir.path()).unwrap();
            store.append(&feed).unwrap();
            // As an older version left it: entries, no index.
            let db = store.db().unwrap();
            db.delete_cf(store.cf(EVENTS).unwrap(), feed[0].event.id().0)
                .unwrap();
            db.delete_cf(store.cf(META).unwrap(), EVENT_INDEX_KEY)
                .unwrap();
            assert_eq!(store.locate(&feed[0].event.id()).unwrap(), None);
        }
        let store = RocksStore::open(dir.path()).unwrap();
        assert_eq!(
            store.locate(&feed[0].event.id()).unwrap(),
            Some((a.did().clone(), 1))
        );
    }
}
