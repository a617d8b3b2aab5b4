//! How a replica comes to its state: the persisted snapshot (the derived state and the feed heads it covers, written every so many stored entries) and the entries after it, or a rebuild from every stored entry.
//!
//! A snapshot is written only after the entries it covers are durable, and it names
//! their heads; opening checks each named head against the stored entry at that
//! position. So a snapshot is never ahead of the log: a crash between an append and
//! the next snapshot costs a longer replay, never a wrong state.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use consentnet_identity::{Did, Hash32};
use serde::{Deserialize, Serialize};

use super::Replica;
use crate::event::FeedHead;
use crate::genesis::Genesis;
use crate::state::{NoArchive, Retirement, State, StateImage};
use crate::store::{ArchiveRows, LogStore, StoreArchive, StoreError, archive};

/// The default number of stored entries after which a new snapshot is written.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 10_000;
/// The snapshot format; any other is ignored (state is rebuilt from the log instead).
const VERSION: u32 = 2;
/// Entries read from the store at a time while replaying.
const REPLAY_CHUNK: usize = 4096;

/// How a replica came to its state when it opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Opened {
    /// True when it started from the stored snapshot.
    pub from_snapshot: bool,
    /// Entries read from the log: those after the snapshot, or all of them.
    pub replayed: u64,
}

/// Where this replica's snapshots stand.
#[derive(Debug, Default)]
pub(super) struct Snapshots {
    /// Due snapshots are left to the caller rather than written while appending.
    deferred: bool,
    /// A snapshot came due and has not been taken.
    due: bool,
    /// Generation of the last snapshot captured, and of the last one stored.
    captured: u64,
    written: u64,
    /// The archive generation the state's archived consents are under.
    pub(super) archive: u64,
}

/// A snapshot captured under the replica's lock, encoded with [`SnapshotJob::encode`]
/// outside it.
#[derive(Debug)]
pub struct SnapshotJob {
    generation: u64,
    genesis: Hash32,
    heads: BTreeMap<Did, FeedHead>,
    fork_points: BTreeMap<Did, u64>,
    archive: u64,
    state: State,
}

/// A snapshot's bytes and the archive rows written with it, for
/// [`Replica::put_encoded_snapshot`].
#[derive(Debug)]
pub struct EncodedSnapshot {
    generation: u64,
    bytes: Vec<u8>,
    retirement: Retirement,
    rows: ArchiveRows,
}

impl SnapshotJob {
    /// The snapshot's bytes, with the consents ended by now moved to the archive: O(state),
    /// and needs no replica.
    pub fn encode(self) -> Result<EncodedSnapshot, StoreError> {
        self.encode_at(Utc::now())
    }

    /// The snapshot's bytes, retiring the consents ended at `now`.
    pub fn encode_at(self, now: DateTime<Utc>) -> Result<EncodedSnapshot, StoreError> {
        let retirement = self.state.retirement(now, self.archive);
        let mut state = self.state;
        state.retired(&retirement);
        let rows = archive::rows(&retirement)?;
        let snapshot = Snapshot {
            version: VERSION,
            genesis: self.genesis,
            heads: self.heads,
            fork_points: self.fork_points,
            archive_generation: self.archive,
            state: state.image(),
        };
        let bytes = serde_json::to_vec(&snapshot)
            .map_err(|error| StoreError::Backend(format!("encoding the snapshot: {error}")))?;
        Ok(EncodedSnapshot {
            generation: self.generation,
            bytes,
            retirement,
            rows,
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Snapshot {
    version: u32,
    /// The genesis it was derived under.
    genesis: Hash32,
    /// The feed heads whose entries it covers.
    heads: BTreeMap<Did, FeedHead>,
    /// The fork points in force when it was written.
    fork_points: BTreeMap<Did, u64>,
    /// The archive generation its archived consents are under.
    archive_generation: u64,
    state: StateImage,
}

fn genesis_id(genesis: &Genesis) -> Hash32 {
    Hash32::of(&serde_json::to_vec(genesis).unwrap_or_default())
}

impl<S: LogStore> Replica<S> {
    /// Derives state again from every stored entry (at start-up without a snapshot, and
    /// when new evidence excludes part of a feed), streaming: stored entries were
    /// verified before they were stored. Returns how many entries it read.
    pub(super) fn rebuild_state(&mut self) -> Result<u64, StoreError> {
        self.engine.reset();
        self.snapshot.archive = self.store.next_archive_generation()?;
        let mut failed = None;
        let mut read = 0u64;
        let Self { store, engine, .. } = self;
        store.for_each(&mut |entry| {
            read += 1;
            match engine.replay(&entry, &NoArchive) {
                Ok(()) => true,
                Err(error) => {
                    failed = Some(error);
                    false
                }
            }
        })?;
        failed.map_or(Ok(read), Err)
    }

    /// How this replica came to its state when it opened.
    pub fn opened(&self) -> Opened {
        self.opened
    }

    /// Sets how many stored entries make a new snapshot due (at least 1).
    pub fn set_snapshot_every(&mut self, entries: u64) {
        self.snapshot_every = entries.max(1);
    }

    /// Writes a snapshot of the current state and the heads it covers, now (a node
    /// does so when it shuts down, so the next start replays nothing).
    pub fn write_snapshot(&mut self) -> Result<(), StoreError> {
        let encoded = self.capture_snapshot().encode()?;
        self.put_encoded_snapshot(encoded).map(|_| ())
    }

    /// Leaves due snapshots to the caller ([`Replica::take_snapshot_due`]) instead of
    /// writing them while it appends, so their encoding can run outside a lock held
    /// around this replica.
    pub fn set_snapshot_deferred(&mut self, deferred: bool) {
        self.snapshot.deferred = deferred;
    }

    /// The snapshot that came due since the last call, captured now: the state (its
    /// maps are shared, so this is cheap), the heads and the fork points. Encode it
    /// with [`SnapshotJob::encode`] anywhere, then store it with
    /// [`Replica::put_encoded_snapshot`].
    pub fn take_snapshot_due(&mut self) -> Option<SnapshotJob> {
        std::mem::take(&mut self.snapshot.due).then(|| self.capture_snapshot())
    }

    /// Stores an encoded snapshot with its archive rows, then drops the consents it
    /// archived from memory. Refuses (answering false) when a later-captured one is
    /// already stored, so snapshots encoded side by side never go back in time, or when
    /// the state was rebuilt since it was captured.
    pub fn put_encoded_snapshot(&mut self, encoded: EncodedSnapshot) -> Result<bool, StoreError> {
        if encoded.generation <= self.snapshot.written
            || encoded.rows.generation != self.snapshot.archive
        {
            return Ok(false);
        }
        self.store.put_snapshot(&encoded.bytes, &encoded.rows)?;
        self.snapshot.written = encoded.generation;
        self.engine.retired(&encoded.retirement);
        Ok(true)
    }

    fn capture_snapshot(&mut self) -> SnapshotJob {
        self.since_snapshot = 0;
        self.snapshot.captured = self.snapshot.captured.saturating_add(1);
        SnapshotJob {
            generation: self.snapshot.captured,
            genesis: genesis_id(self.engine.genesis()),
            heads: self.engine.heads().clone(),
            fork_points: self.engine.fork_points().clone(),
            archive: self.snapshot.archive,
            state: self.engine.state().clone(),
        }
    }

    /// Counts `stored` entries and, once enough have gone in since the last snapshot,
    /// writes one (or marks it due, when deferred). A snapshot that cannot be written
    /// loses nothing (the entries are stored) and is tried again soon (see
    /// [`Replica::snapshot_failed`]).
    pub(super) fn note_stored(&mut self, stored: u64) {
        self.since_snapshot = self.since_snapshot.saturating_add(stored);
        if self.since_snapshot >= self.snapshot_every {
            if self.snapshot.deferred {
                self.snapshot.due = true;
            } else if self.write_snapshot().is_err() {
                self.snapshot_failed();
            }
        }
    }

    /// Tells the replica that the last snapshot taken could not be stored: another is
    /// due after a sixteenth of the interval's entries, not a whole interval later (and
    /// not at the very next entry, so a full disk does not cost an O(state) encoding
    /// per entry).
    pub fn snapshot_failed(&mut self) {
        let retry_after = (self.snapshot_every / 16).max(1);
        let retry_at = self.snapshot_every.saturating_sub(retry_after);
        self.since_snapshot = self.since_snapshot.max(retry_at);
    }

    /// State from the stored snapshot, then the entries after it. `None`, changing
    /// nothing, when there is no snapshot this replica can use: none, another format or
    /// genesis, other fork points, or heads the log does not hold.
    pub(super) fn restore(&mut self) -> Result<Option<u64>, StoreError> {
        let Some(bytes) = self.store.snapshot()? else {
            return Ok(None);
        };
        let Ok(snapshot) = serde_json::from_slice::<Snapshot>(&bytes) else {
            return Ok(None);
        };
        if snapshot.version != VERSION
            || snapshot.genesis != genesis_id(self.engine.genesis())
            || snapshot.fork_points != *self.engine.fork_points()
        {
            return Ok(None);
        }
        for (origin, head) in &snapshot.heads {
            let held = self.store.get(origin, head.seq)?.map(|entry| entry.hash());
            if held != Some(head.hash) {
                return Ok(None);
            }
        }
        let Ok(state) = State::from_image(self.engine.genesis(), snapshot.state) else {
            return Ok(None);
        };
        self.engine.restore(state);
        self.snapshot.archive = snapshot.archive_generation;
        let mut replayed = 0u64;
        for (origin, head) in self.engine.heads().clone() {
            let mut from = snapshot.heads.get(&origin).map_or(1, |h| h.seq + 1);
            while from <= head.seq {
                let chunk = self.store.range(&origin, from, head.seq, REPLAY_CHUNK)?;
                let Some(last) = chunk.last() else {
                    return Err(StoreError::Corrupt(format!(
                        "{origin}#{from} is below the head but missing"
                    )));
                };
                from = last.seq + 1;
                let archive = StoreArchive {
                    store: &self.store,
                    generation: self.snapshot.archive,
                };
                for entry in &chunk {
                    self.engine.replay(entry, &archive)?;
                }
                replayed += chunk.len() as u64;
            }
        }
        Ok(Some(replayed))
    }
}
