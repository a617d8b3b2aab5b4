//! What the engine answers: why an entry or event was refused, what happened to a received entry or a local submission, and the range requests it asks peers for.

use consentnet_identity::Did;
use serde::{Deserialize, Serialize};

use crate::entry::{Entry, Sealed};
use crate::store::{Equivocation, StoreError};
use crate::validate::EventError;

/// Why an entry or event was refused. Nothing refused is stored or applied.
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    /// The feed's origin is not a member.
    #[error("{0} is not a member of this consortium")]
    NotMember(String),
    /// The entry's signature is not its origin's.
    #[error("entry {origin}#{seq} is not signed by its origin")]
    BadSignature {
        /// The claimed origin.
        origin: String,
        /// The entry's seq.
        seq: u64,
    },
    /// The event inside is invalid.
    #[error("entry {origin}#{seq}: {source}")]
    Event {
        /// The origin.
        origin: String,
        /// The entry's seq.
        seq: u64,
        /// Why the event is invalid.
        source: EventError,
    },
    /// An event submitted to this node is invalid.
    #[error(transparent)]
    InvalidEvent(#[from] EventError),
    /// Equivocation evidence that does not prove anything.
    #[error("equivocation evidence does not show two conflicting entries of one origin")]
    InvalidEvidence,
    /// Too many out-of-order entries are waiting for gaps to fill.
    #[error("too many out-of-order entries are waiting ({0}); request the gap first")]
    PendingFull(usize),
    /// The store failed; the entry may be retried.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What happened to an incoming entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Stored durably: this entry and any buffered successors it unblocked, in order.
    Stored(Vec<Entry>),
    /// Already held, byte for byte.
    Duplicate,
    /// Held back until the gap `from..=to` in its origin's feed is filled.
    Buffered {
        /// The origin.
        origin: Did,
        /// First missing seq.
        from: u64,
        /// Last missing seq.
        to: u64,
    },
    /// The origin signed two different entries for one position; both are kept as evidence.
    Equivocation(Box<Equivocation>),
}

/// A request for entries `from..=to` of `origin`'s feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeRequest {
    /// The feed.
    pub origin: Did,
    /// First seq wanted.
    pub from: u64,
    /// Last seq wanted.
    pub to: u64,
}

/// The result of submitting an event locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Appended to this node's feed; the entry is the inclusion receipt.
    New(Sealed),
    /// The same event is already on the log; this is where.
    Existing(Sealed),
}

impl Appended {
    /// The entry that holds the event.
    pub fn entry(&self) -> &Entry {
        self.sealed().entry()
    }

    /// The entry that holds the event, with its bytes.
    pub fn sealed(&self) -> &Sealed {
        match self {
            Appended::New(entry) | Appended::Existing(entry) => entry,
        }
    }
}
