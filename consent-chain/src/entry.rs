//! Entries: one event in one origin's feed, hash-linked to the previous entry and signed by the origin node; their canonical bytes.

use consentnet_identity::canonical::canonical_json;
use consentnet_identity::{Did, KeyPair, SignatureCheck};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{Event, FeedHead, check, domain, verify};
use crate::hash::Hash32;

/// The largest encoded entry accepted, in bytes.
pub const MAX_ENTRY_BYTES: usize = 64 * 1024;

/// Why bytes are not an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// Larger than [`MAX_ENTRY_BYTES`].
    #[error("entry is {0} bytes; the limit is {MAX_ENTRY_BYTES}")]
    TooLarge(usize),
    /// Not an entry.
    #[error("malformed entry: {0}")]
    Malformed(String),
    /// The bytes are valid but not in canonical form.
    #[error("entry bytes are not canonical")]
    NotCanonical,
}

/// One event in one origin's feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entry {
    /// The node whose feed this is.
    pub origin: Did,
    /// Position in the feed, from 1.
    pub seq: u64,
    /// Hash of the previous entry in the feed ([`Hash32::ZERO`] for seq 1).
    pub prev: Hash32,
    /// When the origin appended it, milliseconds since the Unix epoch.
    pub time: u64,
    /// The event.
    pub event: Event,
    /// The origin's Ed25519 signature (base64url) over everything above.
    pub sig: String,
}

impl Entry {
    fn unsigned_value(origin: &Did, seq: u64, prev: &Hash32, time: u64, event: &Event) -> Value {
        serde_json::json!({ "origin": origin, "seq": seq, "prev": prev, "time": time, "event": event })
    }

    /// Makes and signs the entry that follows `head` in `key`'s feed.
    pub fn sign(key: &KeyPair, head: Option<FeedHead>, time: u64, event: Event) -> Self {
        let (seq, prev) = match head {
            Some(head) => (head.seq + 1, head.hash),
            None => (1, Hash32::ZERO),
        };
        let value = Self::unsigned_value(key.did(), seq, &prev, time, &event);
        let sig = consentnet_identity::sign_statement(key, domain::ENTRY, &value)
            .unwrap_or_else(|_| unreachable!("no floats in entries"));
        Entry {
            origin: key.did().clone(),
            seq,
            prev,
            time,
            event,
            sig,
        }
    }

    /// True when the origin's signature covers this entry.
    pub fn verify_signature(&self) -> bool {
        let value =
            Self::unsigned_value(&self.origin, self.seq, &self.prev, self.time, &self.event);
        verify(&self.origin, domain::ENTRY, &value, &self.sig)
    }

    /// The check [`Entry::verify_signature`] makes, for verifying many entries together.
    pub fn signature_check(&self) -> SignatureCheck {
        let value =
            Self::unsigned_value(&self.origin, self.seq, &self.prev, self.time, &self.event);
        check(&self.origin, domain::ENTRY, &value, &self.sig)
    }

    /// The canonical bytes: canonical JSON of the whole entry, signature included.
    /// This is the storage format, the wire format and what [`Entry::hash`] hashes.
    pub fn encode(&self) -> Vec<u8> {
        let value =
            serde_json::to_value(self).unwrap_or_else(|_| unreachable!("plain fields serialize"));
        canonical_json(&value).unwrap_or_else(|_| unreachable!("no floats in entries"))
    }

    /// SHA-256 of the canonical bytes: what the next entry's `prev` names.
    pub fn hash(&self) -> Hash32 {
        Hash32::of(&self.encode())
    }

    /// This entry as the head of its feed.
    pub fn head(&self) -> FeedHead {
        FeedHead {
            seq: self.seq,
            hash: self.hash(),
        }
    }

    /// Decodes canonical bytes. Refuses oversized, malformed and non-canonical input,
    /// so one entry has exactly one encoding and one hash.
    pub fn decode(bytes: &[u8]) -> Result<Self, EntryError> {
        Self::decode_hashed(bytes).map(|(entry, _)| entry)
    }

    /// [`Entry::decode`], also returning the entry's hash (of `bytes`, which decoding
    /// proved canonical) without encoding it again.
    pub fn decode_hashed(bytes: &[u8]) -> Result<(Self, Hash32), EntryError> {
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(EntryError::TooLarge(bytes.len()));
        }
        let entry: Entry =
            serde_json::from_slice(bytes).map_err(|e| EntryError::Malformed(e.to_string()))?;
        if entry.seq == 0 {
            return Err(EntryError::Malformed("seq starts at 1".into()));
        }
        if entry.encode() != bytes {
            return Err(EntryError::NotCanonical);
        }
        Ok((entry, Hash32::of(bytes)))
    }
}
