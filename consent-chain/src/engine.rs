//! The replication engine, sans I/O: it decides what to store, compare, buffer, request or report for each entry, frontier or piece of evidence, and returns that as a [`Step`] for its runtime to perform.
//!
//! The engine holds the frontier, the buffered out-of-order entries, the fork points
//! and the derived state, and touches nothing else: no store, no clock, no network.
//! [`crate::Replica`] is the runtime nodes use (it performs each step on a
//! [`crate::LogStore`]); the seeded simulation performs them itself, with no store.
//! State changes only when the runtime reports that a write it was asked for is
//! durable ([`Engine::commit`]), so a failed write leaves the engine as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use consentnet_identity::{ConsentVerifier, Did};

use crate::entry::{Entry, Sealed};
use crate::event::FeedHead;
use crate::genesis::Genesis;
use crate::replica::{Rejected, Signatures};
use crate::state::{Archived, Retirement, State};
use crate::store::{Equivocation, StoreError};
use crate::validate::{Check, validate_event};

mod local;
mod receive;
mod step;
mod wants;

pub use local::{Local, Sealing};
pub use step::{Append, Step};
pub use wants::Wants;

/// How many verified consents the engine remembers.
const VERIFIER_CAPACITY: usize = 100_000;

/// One node's replication engine: frontier, buffered entries, fork points and state.
pub struct Engine {
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
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("feeds", &self.heads.len())
            .field("consents", &self.state.consent_count())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine whose runtime holds the feeds up to `heads`, with the genesis state
    /// (the runtime then restores or replays the state: [`Engine::restore`],
    /// [`Engine::replay`]).
    pub fn new(genesis: &Genesis, heads: BTreeMap<Did, FeedHead>, max_pending: usize) -> Self {
        Self {
            genesis: genesis.clone(),
            state: State::new(genesis),
            fork_points: BTreeMap::new(),
            heads,
            pending: BTreeMap::new(),
            max_pending,
            equivocators: BTreeSet::new(),
            verifier: Arc::new(ConsentVerifier::new(VERIFIER_CAPACITY)),
        }
    }

    /// Notes checked and stored evidence. Answers true when it moved a fork point, so
    /// the runtime must rebuild the state from every stored entry ([`Engine::reset`],
    /// then [`Engine::replay`]).
    pub fn note_fork(&mut self, evidence: &Equivocation) -> bool {
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

    /// The verified-credential cache grants are checked through.
    pub fn verifier(&self) -> Arc<ConsentVerifier> {
        self.verifier.clone()
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The derived state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Every feed's head: this engine's frontier.
    pub fn heads(&self) -> &BTreeMap<Did, FeedHead> {
        &self.heads
    }

    /// The fork points in force.
    pub fn fork_points(&self) -> &BTreeMap<Did, u64> {
        &self.fork_points
    }

    /// Origins caught equivocating.
    pub fn equivocators(&self) -> &BTreeSet<Did> {
        &self.equivocators
    }

    /// How many out-of-order entries are buffered.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Applies entries the runtime has stored durably, as [`Step::Append`] asked, and
    /// returns them. The frontier and the state move only here.
    pub fn commit(&mut self, append: Append, archive: &dyn Archived) -> Vec<Sealed> {
        let (entries, applied) = append.into_parts();
        for (entry, (id, valid)) in entries.iter().zip(&applied) {
            self.heads.insert(entry.origin.clone(), entry.head());
            if self.applies(entry) {
                self.state.apply_with(*id, valid, archive);
            }
        }
        entries
    }

    /// Checks equivocation evidence from a peer: two different entries, both signed by
    /// the same member origin, for one position (or one naming a different
    /// predecessor). The runtime stores it when it is new, then calls
    /// [`Engine::note_fork`].
    pub fn check_evidence(&self, evidence: &Equivocation) -> Result<(), Rejected> {
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
        Ok(())
    }

    /// Starts the state again from genesis, before the runtime replays every stored
    /// entry (at opening without a snapshot, and after [`Engine::note_fork`] said so).
    pub fn reset(&mut self) {
        self.state = State::new(&self.genesis);
    }

    /// Takes the state a snapshot held, before the runtime replays the entries after it.
    pub fn restore(&mut self, state: State) {
        self.state = state;
    }

    /// Drops the consents a stored snapshot moved to the archive.
    pub fn retired(&mut self, retirement: &Retirement) {
        self.state.retired(retirement);
    }

    /// Applies one stored entry during a rebuild or a replay: checked for shape and
    /// entitlement (its signatures were verified before it was stored), skipped from
    /// its feed's fork point on.
    pub fn replay(&mut self, entry: &Entry, archive: &dyn Archived) -> Result<(), StoreError> {
        if !self.applies(entry) {
            return Ok(());
        }
        let valid = validate_event(
            &entry.event,
            &entry.origin,
            self.state.membership(),
            &self.verifier,
            Check::Stored,
        )
        .map_err(|error| {
            StoreError::Corrupt(format!(
                "stored entry {}#{} no longer parses: {error}",
                entry.origin, entry.seq
            ))
        })?;
        self.state.apply_with(entry.event.id(), &valid, archive);
        Ok(())
    }

    /// Refuses an entry whose origin is not a member or whose origin signature failed.
    fn admit(&self, entry: &Sealed, signatures: Signatures) -> Result<Check, Rejected> {
        if self.state.membership().get(&entry.origin).is_none() {
            return Err(Rejected::NotMember(entry.origin.to_string()));
        }
        if !signatures.entry {
            return Err(Rejected::BadSignature {
                origin: entry.origin.to_string(),
                seq: entry.seq,
            });
        }
        Ok(if signatures.event {
            Check::Presigned
        } else {
            Check::Full
        })
    }
}
