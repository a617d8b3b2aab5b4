//! The network's wire format: gossip bundles of entries, the sync protocol's messages, and the topic names.

use std::collections::BTreeMap;

use consentnet_consent_chain::{FeedHead, RangeRequest};
use consentnet_identity::{Did, Hash32};
use libp2p::gossipsub::IdentTopic;
use serde::{Deserialize, Serialize};

/// The sync protocol's name.
pub const SYNC_PROTOCOL: &str = "/consentnet/sync/1";
/// Most entries in one gossip message.
pub const MAX_BUNDLE_ENTRIES: usize = 64;
/// Most bytes in one gossip message of several entries; a single entry of up to
/// [`MAX_ENTRY_BYTES`] always goes alone.
pub const MAX_BUNDLE_BYTES: usize = 256 * 1024;

/// A sync request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SyncRequest {
    /// "Send me your frontier."
    Frontier,
    /// "Send me these entries of one feed."
    Range(RangeRequest),
    /// "Send me this batch of your access records" (a regulator to a bank).
    Batch(u64),
    /// "Send me this mini-app bundle file", named by its SHA-256.
    BundleFile(Hash32),
}

/// A sync answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SyncResponse {
    /// Every feed's head.
    Frontier(BTreeMap<Did, FeedHead>),
    /// Entries, as their canonical bytes (UTF-8 JSON), at most [`MAX_RANGE`].
    Entries(Vec<String>),
    /// A batch of access records: its number and its records as JSON (`null` when the
    /// bank does not hold it).
    Batch(u64, String),
    /// A bundle file: its hash and its bytes in base64url (`None` when not held).
    BundleFile(Hash32, Option<String>),
    /// The request was not served (the reason is for logs).
    Refused(String),
}

/// Packs entries' canonical bytes into gossip messages: each message is the entries
/// joined by `\n` (canonical JSON never holds a raw newline), at most
/// [`MAX_BUNDLE_ENTRIES`] entries and [`MAX_BUNDLE_BYTES`] bytes, in order.
pub fn bundle(entries: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut message: Vec<u8> = Vec::new();
    let mut count = 0;
    for bytes in entries {
        let full = count == MAX_BUNDLE_ENTRIES
            || (count > 0 && message.len() + 1 + bytes.len() > MAX_BUNDLE_BYTES);
        if full {
            messages.push(std::mem::take(&mut message));
            count = 0;
        }
        if count > 0 {
            message.push(b'\n');
        }
        message.extend_from_slice(bytes);
        count += 1;
    }
    if count > 0 {
        messages.push(message);
    }
    messages
}

/// Splits a gossip message into its entries' bytes; refuses an empty message, an empty
/// part, more than [`MAX_BUNDLE_ENTRIES`] entries or more than [`MAX_BUNDLE_BYTES`]
/// bytes (unless it is one entry).
pub fn unbundle(message: &[u8]) -> Result<Vec<&[u8]>, String> {
    let parts: Vec<&[u8]> = message.split(|b| *b == b'\n').collect();
    if parts.iter().any(|part| part.is_empty()) {
        return Err("empty entry in a gossip message".into());
    }
    if parts.len() > MAX_BUNDLE_ENTRIES {
        return Err(format!(
            "{} entries in a gossip message; the limit is {MAX_BUNDLE_ENTRIES}",
            parts.len()
        ));
    }
    if parts.len() > 1 && message.len() > MAX_BUNDLE_BYTES {
        return Err(format!(
            "gossip message of {} bytes; the limit is {MAX_BUNDLE_BYTES}",
            message.len()
        ));
    }
    Ok(parts)
}

/// The gossip topic of a consortium's entries. Version 2: a message holds one or more
/// entries (see [`bundle`]).
pub fn entries_topic(network: &str) -> IdentTopic {
    IdentTopic::new(format!("consentnet/{network}/entries/2"))
}

/// The gossip topic of a consortium's equivocation evidence.
pub fn evidence_topic(network: &str) -> IdentTopic {
    IdentTopic::new(format!("consentnet/{network}/evidence/1"))
}
