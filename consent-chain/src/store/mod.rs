//! Log storage: the `LogStore` trait, the in-memory store, the conformance suite every store must pass, and a bank's own store of access records.

pub mod archive;
pub mod conformance;
mod memory;
#[cfg(feature = "rocksdb")]
pub mod records;
#[cfg(feature = "rocksdb")]
mod rocks;

use std::collections::BTreeMap;

use consentnet_identity::{Did, Hash32};
use serde::{Deserialize, Serialize};

pub use archive::{ArchiveRow, ArchiveRows, StoreArchive};
pub use memory::MemoryStore;
#[cfg(feature = "rocksdb")]
pub use rocks::RocksStore;

use crate::entry::{Entry, Sealed};
use crate::event::FeedHead;

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The entry does not extend its feed: wrong seq or wrong `prev`.
    #[error("entry {origin}#{seq} does not extend its feed (head is {head:?})")]
    NotContiguous {
        /// The entry's origin.
        origin: String,
        /// The entry's seq.
        seq: u64,
        /// The feed's head before the append.
        head: Option<FeedHead>,
    },
    /// The storage engine failed.
    #[error("storage failure: {0}")]
    Backend(String),
    /// Stored bytes could not be decoded: the store is damaged.
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
}

/// Two different signed entries for one `(origin, seq)`, or an entry whose `prev`
/// contradicts the stored predecessor: proof that the origin forked its feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Equivocation {
    /// The entry this node held first.
    pub held: Entry,
    /// The conflicting entry, also signed by the origin.
    pub conflicting: Entry,
}

impl Equivocation {
    /// The origin that equivocated.
    pub fn origin(&self) -> &Did {
        &self.held.origin
    }
}

/// Where entries live. `append` is durable when it returns: a crash afterwards never
/// loses what it accepted. Feeds are append-only and each entry must extend its feed.
pub trait LogStore: Send {
    /// Appends entries, each extending its feed's head (earlier entries in the same call
    /// count). All or nothing, and durable on return.
    fn append(&mut self, entries: &[Entry]) -> Result<(), StoreError> {
        let sealed: Vec<Sealed> = entries.iter().cloned().map(Sealed::new).collect();
        self.append_sealed(&sealed)
    }

    /// [`LogStore::append`] for sealed entries, whose bytes and hashes are not derived
    /// again.
    fn append_sealed(&mut self, entries: &[Sealed]) -> Result<(), StoreError>;

    /// The entry at `(origin, seq)`.
    fn get(&self, origin: &Did, seq: u64) -> Result<Option<Entry>, StoreError>;

    /// Entries of one feed with `from <= seq <= to`, at most `limit`, in order.
    fn range(
        &self,
        origin: &Did,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError>;

    /// [`LogStore::range`] as the entries' stored canonical bytes, not decoded: what a
    /// peer's range request is answered with.
    fn range_encoded(
        &self,
        origin: &Did,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self
            .range(origin, from, to, limit)?
            .iter()
            .map(Entry::encode)
            .collect())
    }

    /// Every feed's head.
    fn heads(&self) -> Result<BTreeMap<Did, FeedHead>, StoreError>;

    /// Keeps equivocation evidence (idempotent).
    fn put_evidence(&mut self, evidence: &Equivocation) -> Result<(), StoreError>;

    /// All evidence kept.
    fn evidence(&self) -> Result<Vec<Equivocation>, StoreError>;

    /// Where the event with this id was first stored: its feed and seq. Kept on disk
    /// beside the entries (written in the same batch), so no node holds a per-entry
    /// index in memory.
    fn locate(&self, event_id: &Hash32) -> Result<Option<(Did, u64)>, StoreError>;

    /// Keeps `bytes` as the state snapshot, replacing the last one, and in the same
    /// durable write puts `archive`'s rows and deletes every archive row of another
    /// generation: the snapshot and the archive always match. The caller writes one
    /// only for entries already stored.
    fn put_snapshot(&mut self, bytes: &[u8], archive: &ArchiveRows) -> Result<(), StoreError>;

    /// The archive row at `key` ([`archive`] builds the keys).
    fn archive_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Up to `limit` archive rows from `start` on, in key order, while their keys begin
    /// with `prefix`.
    fn archive_scan(
        &self,
        start: &[u8],
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<ArchiveRow>, StoreError>;

    /// A generation no archive row of this store has used, durably taken: the state
    /// rebuilt from the log archives under it, and the next snapshot deletes the rows
    /// of the generation before.
    fn next_archive_generation(&mut self) -> Result<u64, StoreError>;

    /// The last state snapshot kept, if any.
    fn snapshot(&self) -> Result<Option<Vec<u8>>, StoreError>;

    /// Calls `visit` with every entry, feed by feed, in seq order; stops early when it returns false.
    fn for_each(&self, visit: &mut dyn FnMut(Entry) -> bool) -> Result<(), StoreError>;

    /// Like [`LogStore::for_each`], with each entry's stored bytes, not decoded, so a
    /// caller can decode (and report bytes that do not decode) where it likes.
    fn for_each_encoded(&self, visit: &mut dyn FnMut(&[u8]) -> bool) -> Result<(), StoreError> {
        self.for_each(&mut |entry| visit(&entry.encode()))
    }
}

/// Checks that `entries` extend `heads` in order, updating `heads` as it goes.
pub(crate) fn check_contiguous(
    heads: &mut BTreeMap<Did, FeedHead>,
    entries: &[Sealed],
) -> Result<(), StoreError> {
    for entry in entries {
        let head = heads.get(&entry.origin).copied();
        let (expected_seq, expected_prev) = match head {
            Some(head) => (head.seq + 1, head.hash),
            None => (1, consentnet_identity::Hash32::ZERO),
        };
        if entry.seq != expected_seq || entry.prev != expected_prev {
            return Err(StoreError::NotContiguous {
                origin: entry.origin.to_string(),
                seq: entry.seq,
                head,
            });
        }
        heads.insert(entry.origin.clone(), entry.head());
    }
    Ok(())
}
