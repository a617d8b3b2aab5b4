//! The engine's runtime on a store: performs each step the replication engine ([`crate::engine`]) decides on a [`LogStore`], and keeps the snapshots and the archive generation.
//!
//! Out-of-order arrival, duplicates, gaps and forks are decided by the engine; this
//! runtime does the reads and durable writes it asks for, in order, and reports back.
//! Storage is behind [`LogStore`], so tests run the same runtime on
//! [`crate::store::MemoryStore`] that nodes run on RocksDB.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use consentnet_identity::{ConsentVerifier, Did, KeyPair};

use crate::engine::{Append, Engine, Local, Sealing, Step};
use crate::entry::{Entry, Sealed};
use crate::event::{Event, FeedHead};
use crate::genesis::Genesis;
use crate::state::{Archived, State};
use crate::store::{Equivocation, LogStore, StoreArchive, StoreError};
use consentnet_identity::Hash32;

mod archive;
mod batch;
mod outcome;
mod snapshot;

pub use batch::{Prepared, Signatures, prepare_events, verify_sealed};
pub use outcome::{Appended, RangeRequest, Received, Rejected};
pub use snapshot::{DEFAULT_SNAPSHOT_EVERY, EncodedSnapshot, Opened, SnapshotJob};

/// The most entries one range request asks for or one answer carries.
pub const MAX_RANGE: u64 = 512;
/// The default bound on entries held while waiting for a gap to fill.
pub const DEFAULT_MAX_PENDING: usize = 10_000;

/// One node's replica of the log: the engine and the store it performs the engine's
/// steps on.
pub struct Replica<S: LogStore> {
    store: S,
    engine: Engine,
    /// Entries stored since the last snapshot, and how many make one due.
    since_snapshot: u64,
    snapshot_every: u64,
    snapshot: snapshot::Snapshots,
    opened: Opened,
}

impl<S: LogStore> std::fmt::Debug for Replica<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl<S: LogStore> Replica<S> {
    /// Opens a replica over `store`: state from the stored snapshot and the entries
    /// after it, or, without a usable snapshot, from every stored entry (and then a
    /// snapshot is written, so the next opening is quick).
    pub fn open(store: S, genesis: &Genesis) -> Result<Self, StoreError> {
        let mut replica = Self {
            engine: Engine::new(genesis, store.heads()?, DEFAULT_MAX_PENDING),
            since_snapshot: 0,
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            snapshot: snapshot::Snapshots::default(),
            opened: Opened::default(),
            store,
        };
        for evidence in replica.store.evidence()? {
            replica.engine.note_fork(&evidence);
        }
        replica.opened = match replica.restore()? {
            Some(replayed) => Opened {
                from_snapshot: true,
                replayed,
            },
            None => {
                let replayed = replica.rebuild_state()?;
                Opened {
                    from_snapshot: false,
                    replayed,
                }
            }
        };
        replica.note_stored(replica.opened.replayed);
        Ok(replica)
    }

    /// Sets the bound on buffered out-of-order entries.
    pub fn set_max_pending(&mut self, max_pending: usize) {
        self.engine.set_max_pending(max_pending);
    }

    /// The verified-credential cache this replica checks grants through; a caller that
    /// verifies a credential before submitting it shares the work.
    pub fn verifier(&self) -> Arc<ConsentVerifier> {
        self.engine.verifier()
    }

    /// The engine this replica runs.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The derived state.
    pub fn state(&self) -> &State {
        self.engine.state()
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Every feed's head: this replica's frontier.
    pub fn heads(&self) -> &BTreeMap<Did, FeedHead> {
        self.engine.heads()
    }

    /// Lets `recover` repair the store in place (e.g. reopen it after a full disk), then
    /// checks that the store holds exactly what this replica acknowledged: the same
    /// heads. When it does not, the store is left as it is and an error says that only
    /// a restart (which rebuilds state from the store) can go on.
    pub fn recover_store(
        &mut self,
        recover: impl FnOnce(&mut S) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        recover(&mut self.store)?;
        if self.store.heads()? != *self.engine.heads() {
            return Err(StoreError::Corrupt(
                "the reopened log differs from what was acknowledged; restart the node".into(),
            ));
        }
        Ok(())
    }

    /// Origins caught equivocating.
    pub fn equivocators(&self) -> &BTreeSet<Did> {
        self.engine.equivocators()
    }

    /// How many out-of-order entries are buffered.
    pub fn pending_len(&self) -> usize {
        self.engine.pending_len()
    }

    /// The entry holding the event with this id, if any (the store's index, on disk).
    pub fn locate(&self, event_id: &Hash32) -> Result<Option<Entry>, StoreError> {
        match self.store.locate(event_id)? {
            Some((origin, seq)) => self.store.get(&origin, seq),
            None => Ok(None),
        }
    }

    /// Validates `event` and appends it to this node's own feed (`key` is the node key),
    /// durably, before applying it. The same event submitted again is not appended twice.
    pub fn append_local(
        &mut self,
        key: &KeyPair,
        event: Event,
        now_ms: u64,
    ) -> Result<Appended, Rejected> {
        self.append_local_many(key, vec![event], now_ms)
            .pop()
            .unwrap_or_else(|| unreachable!("one result per event"))
    }

    /// [`Replica::append_local`] for several events, with one durable write for all the
    /// new entries (group commit). One result per event, in order; an invalid event is
    /// refused without affecting the others. If the write fails, every new entry fails
    /// and nothing is applied.
    pub fn append_local_many(
        &mut self,
        key: &KeyPair,
        events: Vec<Event>,
        now_ms: u64,
    ) -> Vec<Result<Appended, Rejected>> {
        self.append_prepared(key, prepare_events(events), now_ms)
    }

    /// [`Replica::append_local_many`] for events prepared (and their own signatures
    /// batch-verified) by [`prepare_events`], which can run outside this replica's lock.
    pub fn append_prepared(
        &mut self,
        key: &KeyPair,
        events: Vec<Prepared>,
        now_ms: u64,
    ) -> Vec<Result<Appended, Rejected>> {
        // The store's index says which events are on the log already; the engine
        // decides the rest.
        let mut answers: Vec<Option<Result<Appended, Rejected>>> = Vec::new();
        let mut looked_up = Vec::new();
        for prepared in events {
            match self.locate(&Hash32::of(&prepared.json)) {
                Ok(known) => {
                    answers.push(None);
                    looked_up.push((prepared, known.map(Sealed::new)));
                }
                Err(error) => answers.push(Some(Err(error.into()))),
            }
        }
        let Sealing { outcomes, append } = self.engine.seal_local(key, looked_up, now_ms);
        let written = if append.is_empty() {
            Ok(Vec::new())
        } else {
            self.write(append, Engine::commit)
        };
        let mut outcomes = outcomes.into_iter();
        answers
            .into_iter()
            .map(|answer| {
                answer.unwrap_or_else(|| {
                    let outcome = outcomes.next().unwrap_or_else(|| unreachable!("one each"));
                    appended(outcome?, &written)
                })
            })
            .collect()
    }

    /// Performs the engine's steps for one received entry until it has decided.
    fn perform(&mut self, mut step: Step) -> Result<Received, Rejected> {
        loop {
            step = match step {
                Step::Done(answer) => return answer,
                Step::Append(append) => self.write(append, Engine::appended)?,
                Step::Compare { seq, entry } => {
                    let held = self.store.get(&entry.origin, seq)?;
                    self.engine.compared(held, entry)
                }
                Step::Evidence(evidence) => {
                    self.store_evidence(&evidence)?;
                    return Ok(Received::Equivocation(evidence));
                }
            }
        }
    }

    /// Writes `append` durably, then has the engine apply it (`then`: commit it, or
    /// continue the step it came from), and counts the entries towards the next snapshot.
    fn write<T>(
        &mut self,
        append: Append,
        then: impl FnOnce(&mut Engine, Append, &dyn Archived) -> T,
    ) -> Result<T, StoreError> {
        self.store.append_sealed(append.entries())?;
        let stored = append.entries().len() as u64;
        let archive = StoreArchive {
            store: &self.store,
            generation: self.snapshot.archive,
        };
        let next = then(&mut self.engine, append, &archive);
        self.note_stored(stored);
        Ok(next)
    }

    /// Stores evidence, then rebuilds the state if it moved a fork point.
    fn store_evidence(&mut self, evidence: &Equivocation) -> Result<(), StoreError> {
        self.store.put_evidence(evidence)?;
        if self.engine.note_fork(evidence) {
            self.rebuild_state()?;
            self.note_stored(self.snapshot_every);
        }
        Ok(())
    }

    /// All equivocation evidence this replica holds, to pass on to peers.
    pub fn evidence(&self) -> Result<Vec<Equivocation>, StoreError> {
        self.store.evidence()
    }

    /// Takes equivocation evidence from a peer after the engine checked it
    /// ([`Engine::check_evidence`]). Returns whether it was new.
    pub fn receive_evidence(&mut self, evidence: Equivocation) -> Result<bool, Rejected> {
        self.engine.check_evidence(&evidence)?;
        if self.store.evidence()?.contains(&evidence) {
            return Ok(false);
        }
        self.store_evidence(&evidence)?;
        Ok(true)
    }

    /// Handles an entry from a peer: verify, then store, buffer, ignore or report it.
    pub fn receive(&mut self, entry: Entry) -> Result<Received, Rejected> {
        if self.state().membership().get(&entry.origin).is_none() {
            return Err(Rejected::NotMember(entry.origin.to_string()));
        }
        let signed = entry.verify_signature();
        self.receive_checked(
            entry,
            Signatures {
                entry: signed,
                event: false,
            },
        )
    }

    /// [`Replica::receive`] for an entry whose signatures were verified already
    /// ([`verify_sealed`]). An event whose own signature did not verify
    /// there is checked in full, so the error names what is wrong.
    pub fn receive_checked(
        &mut self,
        entry: Entry,
        signatures: Signatures,
    ) -> Result<Received, Rejected> {
        self.receive_sealed(Sealed::new(entry), signatures)
    }

    /// [`Replica::receive_checked`] for a sealed entry ([`verify_sealed`]), stored as
    /// its bytes without encoding it again.
    pub fn receive_sealed(
        &mut self,
        entry: Sealed,
        signatures: Signatures,
    ) -> Result<Received, Rejected> {
        let step = self.engine.receive(entry, signatures);
        self.perform(step)
    }

    /// Handles a run of entries from a peer (a range answer or a gossip burst): each is
    /// checked as by [`Replica::receive`], and entries that extend their feeds are stored
    /// in one durable write per feed instead of one per entry.
    pub fn receive_many(&mut self, entries: Vec<Entry>) -> Vec<Result<Received, Rejected>> {
        self.receive_many_sealed(entries.into_iter().map(Sealed::new).collect())
    }

    /// [`Replica::receive_many`] for sealed entries.
    pub fn receive_many_sealed(
        &mut self,
        mut entries: Vec<Sealed>,
    ) -> Vec<Result<Received, Rejected>> {
        // Highest seq first: later entries wait in the buffer, so the first one that
        // extends the feed drains them all into a single append.
        entries.sort_by(|a, b| (&a.origin, b.seq).cmp(&(&b.origin, a.seq)));
        let signatures = verify_sealed(&entries);
        entries
            .into_iter()
            .zip(signatures)
            .map(|(entry, signatures)| self.receive_sealed(entry, signatures))
            .collect()
    }

    /// The ranges to ask a peer for, given its frontier, at most [`MAX_RANGE`] each. A
    /// peer head that contradicts this replica's entry at the same position is asked
    /// for too: receiving it exposes the equivocation.
    pub fn wants(&self, theirs: &BTreeMap<Did, FeedHead>) -> Vec<RangeRequest> {
        self.engine.wants(theirs).resolve(|origin, seq| {
            let held = self.store.get(origin, seq).ok().flatten();
            held.map(|entry| entry.hash())
        })
    }

    /// Answers a range request from the store, at most [`MAX_RANGE`] entries.
    pub fn serve(&self, request: &RangeRequest) -> Result<Vec<Entry>, StoreError> {
        self.store.range(
            &request.origin,
            request.from,
            request.to,
            MAX_RANGE as usize,
        )
    }

    /// [`Replica::serve`] as the entries' canonical bytes, read from the store as they
    /// are.
    pub fn serve_encoded(&self, request: &RangeRequest) -> Result<Vec<Vec<u8>>, StoreError> {
        self.store.range_encoded(
            &request.origin,
            request.from,
            request.to,
            MAX_RANGE as usize,
        )
    }
}

/// The answer for one sealed local event, once the append was written (or failed).
fn appended(
    outcome: Local,
    written: &Result<Vec<Sealed>, StoreError>,
) -> Result<Appended, Rejected> {
    let entry = |index: usize| match written {
        Ok(entries) => Ok(entries[index].clone()),
        Err(error) => Err(Rejected::Store(error.clone())),
    };
    match outcome {
        Local::Existing(entry) => Ok(Appended::Existing(*entry)),
        Local::Again(index) => entry(index).map(Appended::Existing),
        Local::New(index) => entry(index).map(Appended::New),
    }
}
