//! The bank's revocation status list (W3C Bitstring Status List v1.0): which entries its consents took and which are revoked, derived from the log (every grant of this bank and every revocation read once, from the first entry at start), each bit with the time its revocation reached the log, so the list can be given as it stands or as it stood.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use consentnet_identity::consent::{STATUS_LIST_ENTRIES, StatusEntry};
use consentnet_identity::util::lock;
use consentnet_identity::{ConsentId, VerifiedConsent};

/// Where the list is, under the bank's public URL.
pub const LIST_PATH: &str = "/status/revocation/0";
/// How long a verifier may keep a copy of the list, in milliseconds (the list's `ttl`,
/// and its `Cache-Control`).
pub const TTL_MS: u64 = 60_000;

/// How long the signed list as it stands is served again unchanged while no revocation
/// lands: signing on every request would let anyone spend the bank's CPU.
pub const SIGNED_REUSE: Duration = Duration::from_secs(10);

/// Why a consent's status entry is refused at admission.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusRefusal {
    /// The entry names a list that is not this bank's.
    #[error("credentialStatus names {0}; a consent at this bank names {1} or none")]
    ForeignList(String, String),
    /// Another consent took the index.
    #[error(
        "statusListIndex {0} is taken by another consent; sign again with another random index"
    )]
    Taken(u32),
    /// The list is being rebuilt from the log after a start.
    #[error("the status list is being rebuilt from the log; retry shortly")]
    NotReady,
}

#[derive(Default)]
struct Taken {
    /// Index -> the consent that holds it (granted, or admitted and not yet read back).
    by_index: HashMap<u32, ConsentId>,
    /// Consent -> its index.
    by_consent: HashMap<ConsentId, u32>,
    /// Index -> when its consent's revocation reached the log.
    revoked_at: HashMap<u32, DateTime<Utc>>,
}

/// The bank's list.
pub struct StatusLists {
    taken: Mutex<Taken>,
    url: String,
    ready: AtomicBool,
    /// Bumped by every revocation that sets a bit.
    generation: AtomicU64,
    /// The list as it stood at `generation`, signed, and when: one entry.
    signed: Mutex<Option<(u64, Instant, serde_json::Value)>>,
}

impl std::fmt::Debug for StatusLists {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusLists")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl StatusLists {
    /// The list of the bank at `public_url`, empty until [`StatusLists::ready`].
    pub fn new(public_url: &str) -> Self {
        Self {
            taken: Mutex::default(),
            url: format!("{}{LIST_PATH}", public_url.trim_end_matches('/')),
            ready: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            signed: Mutex::new(None),
        }
    }

    /// The list as it stands now, signed, when it was signed within [`SIGNED_REUSE`]
    /// and no revocation landed since; with the generation to [`StatusLists::keep`] a
    /// fresh one under.
    pub fn signed_now(&self) -> (u64, Option<serde_json::Value>) {
        let generation = self.generation.load(Ordering::Acquire);
        let kept = lock(&self.signed).as_ref().and_then(|(g, made, list)| {
            (*g == generation && made.elapsed() < SIGNED_REUSE).then(|| list.clone())
        });
        (generation, kept)
    }

    /// Keeps `list`, signed from the bits as they stood at `generation`.
    pub fn keep(&self, generation: u64, list: serde_json::Value) {
        *lock(&self.signed) = Some((generation, Instant::now(), list));
    }

    /// The list's URL: what a consent at this bank names as `statusListCredential`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// True once the log has been read up to where it stood at start.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub(super) fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Admits `consent`'s status entry before its grant is appended: it names this list
    /// and an index no other consent holds (held for it from now on).
    pub fn admit(&self, consent: &VerifiedConsent) -> Result<(), StatusRefusal> {
        let Some(StatusEntry { list, index }) = &consent.terms.status else {
            return Ok(());
        };
        if list != &self.url {
            return Err(StatusRefusal::ForeignList(list.clone(), self.url.clone()));
        }
        if !self.is_ready() {
            return Err(StatusRefusal::NotReady);
        }
        let mut taken = lock(&self.taken);
        match taken.by_index.get(index) {
            Some(holder) if *holder != consent.id => Err(StatusRefusal::Taken(*index)),
            _ => {
                taken.by_index.insert(*index, consent.id);
                taken.by_consent.insert(consent.id, *index);
                Ok(())
            }
        }
    }

    /// Lets go of an admitted entry whose grant did not reach the log.
    pub fn release(&self, consent: &VerifiedConsent) {
        let mut taken = lock(&self.taken);
        if let Some(index) = taken.by_consent.remove(&consent.id)
            && taken.by_index.get(&index) == Some(&consent.id)
            && !taken.revoked_at.contains_key(&index)
        {
            taken.by_index.remove(&index);
        }
    }

    /// A grant of this bank on the log naming `entry`.
    pub(super) fn granted(&self, consent: ConsentId, entry: &StatusEntry) {
        if entry.list != self.url || entry.index >= STATUS_LIST_ENTRIES {
            return;
        }
        let mut taken = lock(&self.taken);
        // The first grant on the log holds the index: a later one naming it was never
        // admitted here and cannot move it.
        if taken
            .by_index
            .get(&entry.index)
            .is_none_or(|h| *h == consent)
        {
            taken.by_index.insert(entry.index, consent);
            taken.by_consent.insert(consent, entry.index);
        }
    }

    /// A revocation of `consent` reached the log at `at`: its bit is set from then on.
    pub(super) fn revoked(&self, consent: &ConsentId, at: DateTime<Utc>) {
        let mut taken = lock(&self.taken);
        if let Some(&index) = taken.by_consent.get(consent)
            && taken.by_index.get(&index) == Some(consent)
            && let std::collections::hash_map::Entry::Vacant(slot) = taken.revoked_at.entry(index)
        {
            slot.insert(at);
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// True when the list marks `index` revoked now.
    pub fn is_revoked(&self, index: u32) -> bool {
        lock(&self.taken).revoked_at.contains_key(&index)
    }

    /// The list's bits as they stood at `at` (now, when `None`): bit `i` is the `i`th
    /// from the left, as the specification orders them.
    pub fn bits(&self, at: Option<DateTime<Utc>>) -> Vec<u8> {
        let mut bits = vec![0u8; (STATUS_LIST_ENTRIES / 8) as usize];
        let taken = lock(&self.taken);
        for (&index, &revoked) in &taken.revoked_at {
            if at.is_none_or(|at| revoked <= at) {
                bits[(index / 8) as usize] |= 0x80 >> (index % 8);
            }
        }
        bits
    }
}

/// `bits` as the list's `encodedList`: GZIP-compressed, base64url without padding,
/// multibase-prefixed with `u`.
pub fn encode(bits: &[u8]) -> String {
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let compressed = gzip
        .write_all(bits)
        .and_then(|()| gzip.finish())
        .unwrap_or_else(|_| unreachable!("writing to memory does not fail"));
    format!("u{}", consentnet_identity::b64url(&compressed))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Read as _;

    #[test]
    fn a_revoked_bit_is_set_from_its_time_on_and_encoded_as_the_specification_says() {
        let lists = StatusLists::new("https://bank.example/");
        assert_eq!(lists.url(), "https://bank.example/status/revocation/0");
        let (consent, other) = (
            consentnet_identity::Hash32([1; 32]),
            consentnet_identity::Hash32([2; 32]),
        );
        let entry = StatusEntry {
            list: lists.url().to_owned(),
            index: 9,
        };
        lists.granted(consent, &entry);
        lists.granted(other, &entry);
        let at = Utc::now();
        lists.revoked(&other, at);
        assert_eq!(
            lists.bits(None)[1],
            0,
            "the second grant does not hold the index"
        );
        lists.revoked(&consent, at);
        assert_eq!(lists.bits(None)[1], 0x40, "bit 9 is the second of byte 1");
        assert_eq!(lists.bits(Some(at - chrono::Duration::seconds(1)))[1], 0);
        let encoded = encode(&lists.bits(None));
        let compressed = consentnet_identity::b64url_decode(&encoded[1..]).unwrap();
        let mut bits = Vec::new();
        flate2::read::GzDecoder::new(&compressed[..])
            .read_to_end(&mut bits)
            .unwrap();
        assert_eq!(bits.len() * 8, STATUS_LIST_ENTRIES as usize);
        assert_eq!(bits[1], 0x40);
        assert!(
            encoded.len() < 1_000,
            "a sparse list compresses: {}",
            encoded.len()
        );
    }

    #[test]
    fn the_signed_list_is_reused_until_a_revocation_sets_a_bit() {
        let lists = StatusLists::new("https://bank.example");
        let consent = consentnet_identity::Hash32([3; 32]);
        let entry = StatusEntry {
            list: lists.url().to_owned(),
            index: 4,
        };
        lists.granted(consent, &entry);
        let (generation, kept) = lists.signed_now();
        assert!(kept.is_none(), "nothing signed yet");
        lists.keep(generation, serde_json::json!({"signed": 1}));
        assert_eq!(lists.signed_now().1, Some(serde_json::json!({"signed": 1})));
        lists.revoked(&consent, Utc::now());
        let (after, kept) = lists.signed_now();
        assert!(kept.is_none(), "a revocation makes the kept list stale");
        assert_ne!(after, generation);
        lists.revoked(&consent, Utc::now());
        assert_eq!(
            lists.signed_now().0,
            after,
            "a bit already set changes nothing"
        );
    }
}
