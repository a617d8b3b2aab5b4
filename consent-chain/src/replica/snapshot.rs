//! How a replica comes to its state: the persisted snapshot (the derived state and the feed heads it covers, written every so many stored entries) and the entries after it, or a rebuild from every stored entry.
//!
//! A snapshot is written only after the entries it covers are durable, and it names
//! their heads; opening checks each named head against the stored entry at that
//! position. So a snapshot is never ahead of the log: a crash between an append and
//! the next snapshot costs a longer replay, never a wrong state.

use std::collections::BTreeMap;

use consentnet_identity::{Did, Hash32};
use serde::{Deserialize, Serialize};

use consentnet_identity::ConsentVerifier;

use super::Replica;
use crate::entry::Entry;
use crate::event::FeedHead;
use crate::genesis::Genesis;
use crate::state::{State, StateImage};
use crate::store::{LogStore, StoreError};
use crate::validate::{Check, validate_event};

/// The default number of stored entries after which a new snapshot is written.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 10_000;
/// The snapshot format; any other is ignored (state is rebuilt from the log instead).
const VERSION: u32 = 1;
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
        self.state = State::new(&self.genesis);
        let mut failed = None;
        let mut read = 0u64;
        let Self {
            store,
            state,
            verifier,
            fork_points,
            ..
        } = self;
        store.for_each(&mut |entry| {
            read += 1;
            match replay(state, verifier, fork_points, &entry) {
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
        let snapshot = Snapshot {
            version: VERSION,
            genesis: genesis_id(&self.genesis),
            heads: self.heads.clone(),
            fork_points: self.fork_points.clone(),
            state: self.state.image(),
        };
        let bytes = serde_json::to_vec(&snapshot)
            .map_err(|error| StoreError::Backend(format!("encoding the snapshot: {error}")))?;
        self.store.put_snapshot(&bytes)?;
        self.since_snapshot = 0;
        Ok(())
    }

    /// Counts `stored` entries and writes a snapshot once enough have gone in since the
    /// last. A snapshot that cannot be written loses nothing (the entries are stored)
    /// and is tried again with the next entries.
    pub(super) fn note_stored(&mut self, stored: u64) {
        self.since_snapshot = self.since_snapshot.saturating_add(stored);
        if self.since_snapshot >= self.snapshot_every {
            let _ = self.write_snapshot();
        }
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
            || snapshot.genesis != genesis_id(&self.genesis)
            || snapshot.fork_points != self.fork_points
        {
            return Ok(None);
        }
        for (origin, head) in &snapshot.heads {
            let held = self.store.get(origin, head.seq)?.map(|entry| entry.hash());
            if held != Some(head.hash) {
                return Ok(None);
            }
        }
        let Ok(state) = State::from_image(&self.genesis, snapshot.state) else {
            return Ok(None);
        };
        self.state = state;
        let mut replayed = 0u64;
        for (origin, head) in self.heads.clone() {
            let mut from = snapshot.heads.get(&origin).map_or(1, |h| h.seq + 1);
            while from <= head.seq {
                let chunk = self.store.range(&origin, from, head.seq, REPLAY_CHUNK)?;
                let Some(last) = chunk.last() else {
                    return Err(StoreError::Corrupt(format!(
                        "{origin}#{from} is below the head but missing"
                    )));
                };
                from = last.seq + 1;
                for entry in &chunk {
                    replay(&mut self.state, &self.verifier, &self.fork_points, entry)?;
                }
                replayed += chunk.len() as u64;
            }
        }
        Ok(Some(replayed))
    }
}

/// Applies one stored entry to `state` during a rebuild or a replay: checked for shape and
/// entitlement (its signatures were verified before it was stored), skipped from its
/// feed's fork point on.
fn replay(
    state: &mut State,
    verifier: &ConsentVerifier,
    fork_points: &BTreeMap<Did, u64>,
    entry: &Entry,
) -> Result<(), StoreError> {
    if fork_points
        .get(&entry.origin)
        .is_some_and(|&fork| entry.seq >= fork)
    {
        return Ok(());
    }
    let valid = validate_event(
        &entry.event,
        &entry.origin,
        state.membership(),
        verifier,
        Check::Stored,
    )
    .map_err(|error| {
        StoreError::Corrupt(format!(
            "stored entry {}#{} no longer parses: {error}",
            entry.origin, entry.seq
        ))
    })?;
    state.apply(entry.event.id(), &valid);
    Ok(())
}
