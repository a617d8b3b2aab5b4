//! The in-memory store, for the deterministic simulation and tests; it passes the same conformance suite as RocksDB.

use std::collections::{BTreeMap, HashMap};

use consentnet_identity::{Did, Hash32};

use super::{
    ArchiveRow, ArchiveRows, Equivocation, LogStore, StoreError, archive, check_contiguous,
};
use crate::entry::{Entry, Sealed};
use crate::event::FeedHead;

/// Entries and evidence held in memory.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    feeds: BTreeMap<Did, Vec<Entry>>,
    heads: BTreeMap<Did, FeedHead>,
    evidence: Vec<Equivocation>,
    locations: HashMap<Hash32, (Did, u64)>,
    snapshot: Option<Vec<u8>>,
    archive: BTreeMap<Vec<u8>, Vec<u8>>,
    archive_generation: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl LogStore for MemoryStore {
    fn append_sealed(&mut self, entries: &[Sealed]) -> Result<(), StoreError> {
        let mut heads = self.heads.clone();
        check_contiguous(&mut heads, entries)?;
        for entry in entries {
            self.locations
                .entry(entry.event_id())
                .or_insert_with(|| (entry.origin.clone(), entry.seq));
            self.feeds
                .entry(entry.origin.clone())
                .or_default()
                .push(entry.entry().clone());
        }
        self.heads = heads;
        Ok(())
    }

    fn get(&self, origin: &Did, seq: u64) -> Result<Option<Entry>, StoreError> {
        let index = usize::try_from(seq).ok().and_then(|s| s.checked_sub(1));
        Ok(index.and_then(|i| self.feeds.get(origin)?.get(i).cloned()))
    }

    fn range(
        &self,
        origin: &Did,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let Some(feed) = self.feeds.get(origin) else {
            return Ok(Vec::new());
        };
        Ok(feed
            .iter()
            .filter(|e| e.seq >= from && e.seq <= to)
            .take(limit)
            .cloned()
            .collect())
    }

    fn heads(&self) -> Result<BTreeMap<Did, FeedHead>, StoreError> {
        Ok(self.heads.clone())
    }

    fn put_evidence(&mut self, evidence: &Equivocation) -> Result<(), StoreError> {
        if !self.evidence.contains(evidence) {
            self.evidence.push(evidence.clone());
        }
        Ok(())
    }

    fn evidence(&self) -> Result<Vec<Equivocation>, StoreError> {
        Ok(self.evidence.clone())
    }

    fn locate(&self, event_id: &Hash32) -> Result<Option<(Did, u64)>, StoreError> {
        Ok(self.locations.get(event_id).cloned())
    }

    fn put_snapshot(&mut self, bytes: &[u8], rows: &ArchiveRows) -> Result<(), StoreError> {
        self.snapshot = Some(bytes.to_vec());
        self.archive
            .retain(|key, _| archive::in_generation(key, rows.generation));
        self.archive.extend(rows.rows.iter().cloned());
        Ok(())
    }

    fn archive_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.archive.get(key).cloned())
    }

    fn archive_scan(
        &self,
        start: &[u8],
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<ArchiveRow>, StoreError> {
        Ok(self
            .archive
            .range(start.to_vec()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .take(limit)
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect())
    }

    fn next_archive_generation(&mut self) -> Result<u64, StoreError> {
        self.archive_generation = self
            .archive_generation
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend("archive generations are used up".into()))?;
        Ok(self.archive_generation)
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.snapshot.clone())
    }

    fn for_each(&self, visit: &mut dyn FnMut(Entry) -> bool) -> Result<(), StoreError> {
        for entry in self.feeds.values().flatten() {
            if !visit(entry.clone()) {
                break;
            }
        }
        Ok(())
    }
}
