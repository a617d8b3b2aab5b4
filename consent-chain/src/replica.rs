//! The replication engine: decides what to store, what to request and what to report for each incoming entry or frontier, with no network I/O.
//!
//! Out-of-order arrival, duplicates, gaps and forks are all handled here. Storage is
//! behind [`LogStore`], so the deterministic simulation runs the same code on
//! [`crate::store::MemoryStore`] that nodes run on RocksDB.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use consentnet_identity::{ConsentVerifier, Did, KeyPair};

use crate::entry::{Entry, Sealed};
use crate::event::{Event, FeedHead};
use crate::genesis::Genesis;
use crate::state::State;
use crate::store::{Equivocation, LogStore, StoreArchive, StoreError};
use crate::validate::{Check, ValidEvent, validate_event};
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
/// How many verified consents the replica remembers.
const VERIFIER_CAPACITY: usize = 100_000;

/// One node's replica of the log: store, frontier, buffered entries and derived state.
pub struct Replica<S: LogStore> {
    store: S,
    genesis: Genesis,
    state: State,
    /// Origin -> the first seq where it was caught signing two histories. Its entries
    /// from there on stay stored but are not applied, so every honest node that has the
    /// evidence derives the same state whichever branch it saw.
    fork_points: BTreeMap<Did, u64>,
    heads: BTreeMap<Did, FeedHead>,
    /// Entries waiting for their predecessors, with how much of them is still to check.
    pending: BTreeMap<(Did, u64), (Sealed, Check)>,
    max_pending: usize,
    equivocators: BTreeSet<Did>,
    verifier: Arc<ConsentVerifier>,
    /// Entries stored since the last snapshot, and how many make one due.
    since_snapshot: u64,
    snapshot_every: u64,
    snapshot: snapshot::Snapshots,
    opened: Opened,
}

impl<S: LogStore> std::fmt::Debug for Replica<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("feeds", &self.heads.len())
            .field("consents", &self.state.consent_count())
            .finish_non_exhaustive()
    }
}

impl<S: LogStore> Replica<S> {
    /// Opens a replica over `store`: state from the stored snapshot and the entries
    /// after it, or, without a usable snapshot, from every stored entry (and then a
    /// snapshot is written, so the next opening is quick).
    pub fn open(store: S, genesis: &Genesis) -> Result<Self, StoreError> {
        let mut replica = Self {
            heads: store.heads()?,
            genesis: genesis.clone(),
            state: State::new(genesis),
            fork_points: BTreeMap::new(),
            pending: BTreeMap::new(),
            max_pending: DEFAULT_MAX_PENDING,
            equivocators: BTreeSet::new(),
            verifier: Arc::new(ConsentVerifier::new(VERIFIER_CAPACITY)),
            since_snapshot: 0,
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            snapshot: snapshot::Snapshots::default(),
            opened: Opened::default(),
            store,
        };
        for evidence in replica.store.evidence()? {
            replica.note_fork(&evidence);
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

    fn note_fork(&mut self, evidence: &Equivocation) -> bool {
        let origin = evidence.origin().clone();
        self.equivocators.insert(origin.clone());
        let seq = evidence.held.seq;
        match self.fork_points.get(&origin) {
            Some(&known) if known <= seq => false,
            _ => {
                self.fork_points.insert(origin, seq);
                true
            }
        }
    }

    fn applies(&self, entry: &Entry) -> bool {
        self.fork_points
            .get(&entry.origin)
            .is_none_or(|&fork| entry.seq < fork)
    }

    /// Sets the bound on buffered out-of-order entries.
    pub fn set_max_pending(&mut self, max_pending: usize) {
        self.max_pending = max_pending;
    }

    /// The verified-credential cache this replica checks grants through; a caller that
    /// verifies a credential before submitting it shares the work.
    pub fn verifier(&self) -> Arc<ConsentVerifier> {
        self.verifier.clone()
    }

    /// The derived state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Every feed's head: this replica's frontier.
    pub fn heads(&self) -> &BTreeMap<Did, FeedHead> {
        &self.heads
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
        if self.store.heads()? != self.heads {
            return Err(StoreError::Corrupt(
                "the reopened log differs from what was acknowledged; restart the node".into(),
            ));
        }
        Ok(())
    }

    /// Origins caught equivocating.
    pub fn equivocators(&self) -> &BTreeSet<Did> {
        &self.equivocators
    }

    /// How many out-of-order entries are buffered.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
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
        let origin = key.did().clone();
        if self.state.membership().get(&origin).is_none() {
            return events
                .iter()
                .map(|_| Err(Rejected::NotMember(origin.to_string())))
                .collect();
        }
        let mut results: Vec<Option<Result<Appended, Rejected>>> = Vec::with_capacity(events.len());
        let mut fresh: Vec<(usize, Sealed, Hash32, ValidEvent)> = Vec::new();
        let mut in_batch: HashMap<Hash32, usize> = HashMap::new();
        let mut head = self.heads.get(&origin).copied();
        for (index, prepared) in events.into_iter().enumerate() {
            let Prepared {
                event,
                json: event_json,
                check,
            } = prepared;
            let id = Hash32::of(&event_json);
            if let Some(&earlier) = in_batch.get(&id) {
                let entry = fresh[earlier].1.clone();
                results.push(Some(Ok(Appended::Existing(entry))));
                continue;
            }
            match self.locate(&id) {
                Ok(Some(existing)) => {
                    results.push(Some(Ok(Appended::Existing(Sealed::new(existing)))));
                    continue;
                }
                Ok(None) => {}
                Err(error) => {
                    results.push(Some(Err(error.into())));
                    continue;
                }
            }
            match validate_event(
                &event,
                &origin,
                self.state.membership(),
                &self.verifier,
                check,
            ) {
                Ok(valid) => {
                    let entry = Sealed::sign(key, head, now_ms, event, Some(event_json));
                    head = Some(entry.head());
                    in_batch.insert(id, fresh.len());
                    fresh.push((index, entry, id, valid));
                    results.push(None);
                }
                Err(error) => results.push(Some(Err(error.into()))),
            }
        }
        if !fresh.is_empty() {
            let (meta, entries): (Vec<_>, Vec<Sealed>) = fresh
                .into_iter()
                .map(|(index, entry, id, valid)| ((index, id, valid), entry))
                .unzip();
            if let Err(error) = self.store.append_sealed(&entries) {
                for (index, ..) in &meta {
                    results[*index] = Some(Err(Rejected::Store(error.clone())));
                }
                return results.into_iter().flatten().collect();
            }
            let stored = entries.len();
            for ((index, id, valid), entry) in meta.into_iter().zip(entries) {
                self.adopt(&entry, entry.head(), id, &valid);
                results[index] = Some(Ok(Appended::New(entry)));
            }
            self.note_stored(stored as u64);
        }
        results.into_iter().flatten().collect()
    }

    /// Records a stored entry (`head` is its head, already computed) and applies it.
    fn adopt(&mut self, entry: &Entry, head: FeedHead, id: Hash32, valid: &ValidEvent) {
        self.heads.insert(entry.origin.clone(), head);
        if self.applies(entry) {
            let archive = StoreArchive {
                store: &self.store,
                generation: self.snapshot.archive,
            };
            self.state.apply_with(id, valid, &archive);
        }
    }

    fn equivocation(&mut self, held: Entry, conflicting: Entry) -> Result<Received, Rejected> {
        let evidence = Equivocation { held, conflicting };
        self.store.put_evidence(&evidence)?;
        if self.note_fork(&evidence) {
            self.rebuild_state()?;
            self.note_stored(self.snapshot_every);
        }
        Ok(Received::Equivocation(Box::new(evidence)))
    }

    /// All equivocation evidence this replica holds, to pass on to peers.
    pub fn evidence(&self) -> Result<Vec<Equivocation>, StoreError> {
        self.store.evidence()
    }

    /// Takes equivocation evidence from a peer after checking it: two different entries,
    /// both signed by the same member origin, for one position (or one naming a different
    /// predecessor). Returns whether it was new.
    pub fn receive_evidence(&mut self, evidence: Equivocation) -> Result<bool, Rejected> {
        let (held, conflicting) = (&evidence.held, &evidence.conflicting);
        let same_slot = held.seq == conflicting.seq
            || (held.seq + 1 == conflicting.seq && conflicting.prev != held.hash());
        if held.origin != conflicting.origin || held == conflicting || !same_slot {
            return Err(Rejected::InvalidEvidence);
        }
        if self.state.membership().get(&held.origin).is_none() {
            return Err(Rejected::NotMember(held.origin.to_string()));
        }
        if !held.verify_signature() || !conflicting.verify_signature() {
            return Err(Rejected::BadSignature {
                origin: held.origin.to_string(),
                seq: held.seq,
            });
        }
        if self.store.evidence()?.contains(&evidence) {
            return Ok(false);
        }
        self.store.put_evidence(&evidence)?;
        if self.note_fork(&evidence) {
            self.rebuild_state()?;
            self.note_stored(self.snapshot_every);
        }
        Ok(true)
    }

    /// Handles an entry from a peer: verify, then store, buffer, ignore or report it.
    pub fn receive(&mut self, entry: Entry) -> Result<Received, Rejected> {
        if self.state.membership().get(&entry.origin).is_none() {
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
        if self.state.membership().get(&entry.origin).is_none() {
            return Err(Rejected::NotMember(entry.origin.to_string()));
        }
        let check = if signatures.event {
            Check::Presigned
        } else {
            Check::Full
        };
        if !signatures.entry {
            return Err(Rejected::BadSignature {
                origin: entry.origin.to_string(),
                seq: entry.seq,
            });
        }
        let head = self.heads.get(&entry.origin).copied();
        let head_seq = head.map_or(0, |h| h.seq);
        if entry.seq <= head_seq {
            let held = self.store.get(&entry.origin, entry.seq)?.ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "{}#{} is below the head but missing",
                    entry.origin, entry.seq
                ))
            })?;
            if held == *entry.entry() {
                return Ok(Received::Duplicate);
            }
            return self.equivocation(held, entry.into_entry());
        }
        if entry.seq > head_seq + 1 {
            let key = (entry.origin.clone(), entry.seq);
            if let Some((buffered, _)) = self.pending.get(&key) {
                if buffered.entry() == entry.entry() {
                    return Ok(Received::Duplicate);
                }
                let held = buffered.entry().clone();
                return self.equivocation(held, entry.into_entry());
            }
            if self.pending.len() >= self.max_pending {
                return Err(Rejected::PendingFull(self.pending.len()));
            }
            let (origin, from, to) = (entry.origin.clone(), head_seq + 1, entry.seq - 1);
            self.pending.insert(key, (entry, check));
            return Ok(Received::Buffered { origin, from, to });
        }
        // The next entry of its feed: it and any buffered successors go in one durable write.
        let origin = entry.origin.clone();
        let mut batch: Vec<Sealed> = Vec::new();
        let mut applied = Vec::new();
        let mut next = Some((entry, check));
        let mut running_head = head;
        let mut first_error = None;
        let mut fork = None;
        while let Some((candidate, check)) = next.take() {
            let expected_prev = running_head.map_or(Hash32::ZERO, |h| h.hash);
            if candidate.prev != expected_prev {
                fork = Some(candidate);
                break;
            }
            match validate_event(
                &candidate.event,
                &candidate.origin,
                self.state.membership(),
                &self.verifier,
                check,
            ) {
                Ok(valid) => {
                    running_head = Some(candidate.head());
                    let seq = candidate.seq;
                    applied.push(valid);
                    batch.push(candidate);
                    next = self.pending.remove(&(origin.clone(), seq + 1));
                }
                Err(source) => {
                    first_error = Some(Rejected::Event {
                        origin: candidate.origin.to_string(),
                        seq: candidate.seq,
                        source,
                    });
                    break;
                }
            }
        }
        if !batch.is_empty() {
            self.store.append_sealed(&batch)?;
            for (entry, valid) in batch.iter().zip(&applied) {
                self.adopt(entry, entry.head(), entry.event_id(), valid);
            }
            self.note_stored(batch.len() as u64);
        }
        if let Some(conflicting) = fork {
            let held_seq = conflicting.seq - 1;
            if let Some(held) = self.store.get(&origin, held_seq)? {
                return self.equivocation(held, conflicting.into_entry());
            }
        }
        match (batch.is_empty(), first_error) {
            (true, Some(error)) => Err(error),
            _ => Ok(Received::Stored(
                batch.into_iter().map(Sealed::into_entry).collect(),
            )),
        }
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
        let mut requests = Vec::new();
        for (origin, their_head) in theirs {
            if self.state.membership().get(origin).is_none() || their_head.seq == 0 {
                continue;
            }
            let mine = self.heads.get(origin).map_or(0, |h| h.seq);
            if their_head.seq > mine {
                let from = mine + 1;
                requests.push(RangeRequest {
                    origin: origin.clone(),
                    from,
                    to: their_head.seq.min(from + MAX_RANGE - 1),
                });
            } else if !self.equivocators.contains(origin) {
                let held = self.store.get(origin, their_head.seq).ok().flatten();
                if held.is_some_and(|entry| entry.hash() != their_head.hash) {
                    requests.push(RangeRequest {
                        origin: origin.clone(),
                        from: their_head.seq,
                        to: their_head.seq,
                    });
                }
            }
        }
        requests
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
