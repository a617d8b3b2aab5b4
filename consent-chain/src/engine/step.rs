//! What the engine asks its runtime to do next with an incoming entry: nothing (the answer is decided), write entries, compare with a stored entry, or store evidence.

use consentnet_identity::Hash32;

use crate::entry::{Entry, Sealed};
use crate::replica::{Received, Rejected};
use crate::store::Equivocation;
use crate::validate::ValidEvent;

/// The engine's next step for an incoming entry. The runtime performs it and reports
/// back as each variant says, until [`Step::Done`].
#[derive(Debug)]
#[must_use = "a step is a command for the runtime to perform"]
pub enum Step {
    /// Decided: nothing is left to perform.
    Done(Result<Received, Rejected>),
    /// Write these entries of one feed in one durable write, then report with
    /// [`crate::Engine::appended`]. If the write fails, the engine is unchanged and the
    /// answer is the store's error.
    Append(Append),
    /// Read the stored entry of `entry`'s feed at `seq`, then report it (or its absence)
    /// with [`crate::Engine::compared`].
    Compare {
        /// The position to read.
        seq: u64,
        /// The entry to compare it with.
        entry: Sealed,
    },
    /// Store this evidence durably, then report with [`crate::Engine::note_fork`]
    /// (rebuilding the state when it answers true); the answer is
    /// [`Received::Equivocation`].
    Evidence(Box<Equivocation>),
}

/// Entries of one feed to write in one durable write, with what applying them takes.
#[derive(Debug)]
#[must_use = "entries to append must be written, then committed"]
pub struct Append {
    entries: Vec<Sealed>,
    applied: Vec<(Hash32, ValidEvent)>,
    /// An entry after these that names another predecessor: a fork to report once
    /// these are stored.
    pub(super) fork: Option<Sealed>,
}

impl Append {
    pub(super) fn new() -> Self {
        Self {
            entries: Vec::new(),
            applied: Vec::new(),
            fork: None,
        }
    }

    pub(super) fn push(&mut self, entry: Sealed, id: Hash32, valid: ValidEvent) {
        self.entries.push(entry);
        self.applied.push((id, valid));
    }

    /// The entries to write, in order.
    pub fn entries(&self) -> &[Sealed] {
        &self.entries
    }

    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(super) fn into_parts(self) -> (Vec<Sealed>, Vec<(Hash32, ValidEvent)>) {
        (self.entries, self.applied)
    }
}

/// The answer for entries that were stored: the entries, in order.
pub(super) fn stored(entries: Vec<Sealed>) -> Result<Received, Rejected> {
    Ok(Received::Stored(
        entries.into_iter().map(Sealed::into_entry).collect(),
    ))
}

/// Evidence that `held` and `conflicting` are two histories of one feed.
pub(super) fn evidence(held: Entry, conflicting: Entry) -> Step {
    Step::Evidence(Box::new(Equivocation { held, conflicting }))
}
