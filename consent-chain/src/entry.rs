//! Entries: one event in one origin's feed, hash-linked to the previous entry and signed by the origin node; their canonical bytes.

use consentnet_identity::canonical::canonical_json;
use consentnet_identity::statement::{canonical_statement_check, sign_canonical_statement};
use consentnet_identity::{Did, KeyPair, SignatureCheck};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{Event, FeedHead, check, domain, verify};
use consentnet_identity::Hash32;

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

/// An entry with its canonical bytes and hash, made once: signing, decoding, checking
/// and storing reuse them instead of encoding the entry again.
///
/// Canonical JSON sorts an entry's keys as `event`, `origin`, `prev`, `seq`, `sig`,
/// `time`, so its bytes are `{"event":` then the event's own canonical JSON (whose hash
/// is the event id) then the other members. The statement the origin signed is the same
/// bytes without the `sig` member. Each slice is used only after the members around it
/// are checked byte for byte against the decoded fields; otherwise the value is encoded
/// again, so a slice can never stand for something else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    entry: Entry,
    bytes: Vec<u8>,
    hash: Hash32,
    /// Where the event's JSON ends in `bytes`, when the layout above was confirmed.
    event_end: Option<usize>,
}

/// What comes before the event in an entry's canonical bytes.
const EVENT_START: &[u8] = b"{\"event\":";

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| unreachable!("strings serialize"))
}

impl Entry {
    /// The members after the event in canonical order: with the signature (the stored
    /// entry) or without it (the signed statement).
    fn tail(&self, with_sig: bool) -> String {
        let sig = if with_sig {
            format!(",\"sig\":{}", json_string(&self.sig))
        } else {
            String::new()
        };
        format!(
            ",\"origin\":{},\"prev\":{},\"seq\":{}{sig},\"time\":{}}}",
            json_string(self.origin.as_str()),
            json_string(&self.prev.to_string()),
            self.seq,
            self.time
        )
    }
}

impl Sealed {
    fn seal(entry: Entry, bytes: Vec<u8>, hash: Hash32) -> Self {
        let tail = entry.tail(true);
        let event_end = (bytes.starts_with(EVENT_START)
            && bytes.len() >= EVENT_START.len() + tail.len()
            && bytes.ends_with(tail.as_bytes()))
        .then(|| bytes.len() - tail.len());
        Self {
            entry,
            bytes,
            hash,
            event_end,
        }
    }

    /// Seals `entry`, encoding it once.
    pub fn new(entry: Entry) -> Self {
        let bytes = entry.encode();
        let hash = Hash32::of(&bytes);
        Self::seal(entry, bytes, hash)
    }

    /// [`Entry::sign`], sealed; `event_json` is the event's canonical JSON when the
    /// caller has it already (see [`Event::canonical`]).
    pub fn sign(
        key: &KeyPair,
        head: Option<FeedHead>,
        time: u64,
        event: Event,
        event_json: Option<Vec<u8>>,
    ) -> Self {
        let (seq, prev) = match head {
            Some(head) => (head.seq + 1, head.hash),
            None => (1, Hash32::ZERO),
        };
        let event_json = event_json.unwrap_or_else(|| event.canonical());
        if event_json.is_empty() {
            // No canonical form: `Entry::sign` reports it.
            return Self::new(Entry::sign(key, head, time, event));
        }
        let mut entry = Entry {
            origin: key.did().clone(),
            seq,
            prev,
            time,
            event,
            sig: String::new(),
        };
        let mut unsigned = Vec::with_capacity(event_json.len() + 256);
        unsigned.extend_from_slice(EVENT_START);
        unsigned.extend_from_slice(&event_json);
        unsigned.extend_from_slice(entry.tail(false).as_bytes());
        entry.sig = sign_canonical_statement(key, domain::ENTRY, &unsigned);
        let mut bytes = unsigned;
        bytes.truncate(EVENT_START.len() + event_json.len());
        bytes.extend_from_slice(entry.tail(true).as_bytes());
        let hash = Hash32::of(&bytes);
        Self::seal(entry, bytes, hash)
    }

    /// [`Entry::decode`], keeping the bytes and hash.
    pub fn decode(bytes: &[u8]) -> Result<Self, EntryError> {
        let (entry, hash) = Entry::decode_hashed(bytes)?;
        Ok(Self::seal(entry, bytes.to_vec(), hash))
    }

    /// [`Sealed::decode`] of bytes the caller owns, without copying them.
    pub fn decode_owned(bytes: Vec<u8>) -> Result<Self, EntryError> {
        let (entry, hash) = Entry::decode_hashed(&bytes)?;
        Ok(Self::seal(entry, bytes, hash))
    }

    /// The entry.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// The entry, without its bytes.
    pub fn into_entry(self) -> Entry {
        self.entry
    }

    /// The canonical bytes ([`Entry::encode`]).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The entry hash ([`Entry::hash`]).
    pub fn hash(&self) -> Hash32 {
        self.hash
    }

    /// This entry as the head of its feed.
    pub fn head(&self) -> FeedHead {
        FeedHead {
            seq: self.entry.seq,
            hash: self.hash,
        }
    }

    fn event_json(&self) -> Option<&[u8]> {
        self.event_end
            .map(|end| &self.bytes[EVENT_START.len()..end])
    }

    /// The event's id ([`Event::id`]).
    pub fn event_id(&self) -> Hash32 {
        match self.event_json() {
            Some(json) => Hash32::of(json),
            None => self.entry.event.id(),
        }
    }

    /// [`Entry::signature_check`], from the bytes.
    pub fn signature_check(&self) -> SignatureCheck {
        let Some(end) = self.event_end else {
            return self.entry.signature_check();
        };
        let mut unsigned = self.bytes[..end].to_vec();
        unsigned.extend_from_slice(self.entry.tail(false).as_bytes());
        canonical_statement_check(
            &self.entry.origin,
            domain::ENTRY,
            &unsigned,
            &self.entry.sig,
        )
    }

    /// [`Event::signature_check`], from the bytes.
    pub fn event_signature_check(&self) -> Option<SignatureCheck> {
        match self.event_json() {
            Some(json) => self.entry.event.signature_check_of_canonical(json),
            None => self.entry.event.signature_check(),
        }
    }
}

impl std::ops::Deref for Sealed {
    type Target = Entry;

    fn deref(&self) -> &Entry {
        &self.entry
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use consentnet_identity::Permission;

    use super::*;
    use crate::event::{AccessCommitment, AppAction, AppDecision, AppManifest, Platform};

    /// The bytes are sliced, not encoded again, for every signed kind of event: the
    /// tests in `tests/entry.rs` show the slices are right, these that they are taken.
    #[test]
    fn sealed_entries_slice_their_event_and_its_signed_record() {
        let bank = KeyPair::generate();
        let app = KeyPair::generate();
        let manifest = AppManifest {
            app: app.did().clone(),
            name: "A \"quoted\" name".into(),
            description: "é".into(),
            version: "1.0.0".into(),
            platform: Platform::Web,
            redirect_uris: Vec::new(),
            events_uri: None,
            requested_permissions: BTreeSet::from([Permission::ReadAccountsBasic]),
            bundle_hash: "ab".repeat(32),
            mini_app: None,
        };
        let decision = AppDecision {
            bank: bank.did().clone(),
            app: app.did().clone(),
            version: "1.0.0".into(),
            action: AppAction::Suspend,
            time: 5,
        };
        let commitment = AccessCommitment {
            bank: bank.did().clone(),
            batch: 1,
            root: consentnet_identity::Hash32([7; 32]),
            records: 1,
            first: 9,
            last: 9,
        };
        for event in [
            Event::app_published(&app, manifest),
            Event::app_decided(&bank, decision),
            Event::access_committed(&bank, commitment),
        ] {
            let sealed = Sealed::sign(&bank, None, 1, event, None);
            assert!(sealed.event_end.is_some(), "{:?}", sealed.entry.event);
            let json = sealed.event_json().unwrap_or_default();
            assert!(sealed.entry.event.signed_record(json).is_some());
        }
    }
}
