//! The bank's revocation status lists (W3C Bitstring Status List v1.0): which entries its consents took and which are revoked, derived from the log (every grant of this bank and every revocation read once, from the first entry at start), each bit with the time its revocation reached the log, so a list can be given as it stands or as it stood. Lists are numbered; new consents go to the newest, and a new one opens when it is half taken.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use consentnet_identity::consent::{STATUS_LIST_ENTRIES, StatusEntry};
use consentnet_identity::util::lock;
use consentnet_identity::{ConsentId, VerifiedConsent};

/// Where the lists are, under the bank's public URL: list `n` is at `{LIST_PREFIX}{n}`.
pub const LIST_PREFIX: &str = "/status/revocation/";
/// How long a verifier may keep a copy of a list, in milliseconds (the list's `ttl`,
/// and its `Cache-Control`).
pub const TTL_MS: u64 = 60_000;
/// How long a signed list is served again unchanged while no revocation lands: signing
/// on every request would let anyone spend the bank's CPU.
pub const SIGNED_REUSE: Duration = Duration::from_secs(10);
/// The most lists a bank opens: 2,048 half-taken lists hold a billion consents.
pub const MAX_LISTS: u32 = 2_048;

/// Why a consent's status entry is refused at admission.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusRefusal {
    /// The entry names a list that is not one of this bank's open lists.
    #[error("credentialStatus names {0}; a consent at this bank names {1} or none")]
    ForeignList(String, String),
    /// Another consent took the index.
    #[error(
        "statusListIndex {0} is taken by another consent; sign again with another random index"
    )]
    Taken(u32),
    /// The lists are being rebuilt from the log after a start.
    #[error("the status list is being rebuilt from the log; retry shortly")]
    NotReady,
}

/// One entry: a list's number and an index in it.
type Slot = (u32, u32);

#[derive(Default)]
struct Taken {
    /// Slot -> the consent that holds it (granted, or admitted and not yet read back).
    by_slot: HashMap<Slot, ConsentId>,
    /// Consent -> its slot.
    by_consent: HashMap<ConsentId, Slot>,
    /// Slot -> when its consent's revocation reached the log.
    revoked_at: HashMap<Slot, DateTime<Utc>>,
    /// Entries held in each list, by number.
    held: Vec<u32>,
}

impl Taken {
    /// The list new consents go to: the newest, or the next once it is half taken.
    fn open(&self, fill: u32) -> u32 {
        let newest = u32::try_from(self.held.len().saturating_sub(1)).unwrap_or(MAX_LISTS);
        match self.held.last() {
            Some(&held) if held >= fill => (newest + 1).min(MAX_LISTS - 1),
            _ => newest,
        }
    }

    fn hold(&mut self, slot: Slot, consent: ConsentId) {
        if self.by_slot.insert(slot, consent).is_none() {
            let list = slot.0 as usize;
            if self.held.len() <= list {
                self.held.resize(list + 1, 0);
            }
            self.held[list] = self.held[list].saturating_add(1);
        }
        self.by_consent.insert(consent, slot);
    }

    fn let_go(&mut self, slot: Slot) {
        if self.by_slot.remove(&slot).is_some()
            && let Some(held) = self.held.get_mut(slot.0 as usize)
        {
            *held = held.saturating_sub(1);
        }
    }
}

/// The bank's lists.
pub struct StatusLists {
    taken: Mutex<Taken>,
    /// The lists' URL without the number.
    base: String,
    /// Entries after which the newest list counts as half taken.
    fill: u32,
    ready: AtomicBool,
    /// Bumped by every revocation that sets a bit.
    generation: AtomicU64,
    /// Each list as it stood at a generation, signed, and when.
    signed: Mutex<HashMap<u32, (u64, Instant, serde_json::Value)>>,
}

impl std::fmt::Debug for StatusLists {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusLists")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl StatusLists {
    /// The lists of the bank at `public_url`, empty until ready.
    pub fn new(public_url: &str) -> Self {
        Self::with_fill(public_url, STATUS_LIST_ENTRIES / 2)
    }

    /// [`StatusLists::new`], a new list opening once the newest holds `fill` entries.
    pub fn with_fill(public_url: &str, fill: u32) -> Self {
        Self {
            taken: Mutex::default(),
            base: format!("{}{LIST_PREFIX}", public_url.trim_end_matches('/')),
            fill: fill.clamp(1, STATUS_LIST_ENTRIES),
            ready: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            signed: Mutex::default(),
        }
    }

    /// The URL of list `number`.
    pub fn url_of(&self, number: u32) -> String {
        format!("{}{number}", self.base)
    }

    /// The open list's URL: what a new consent at this bank names as
    /// `statusListCredential`.
    pub fn url(&self) -> String {
        self.url_of(self.open())
    }

    /// The open list's number.
    pub fn open(&self) -> u32 {
        lock(&self.taken).open(self.fill)
    }

    /// The number of the list at `url`, when it is one of this bank's lists (open or
    /// older).
    pub fn number_of(&self, url: &str) -> Option<u32> {
        self.numbered(url.strip_prefix(&self.base)?)
    }

    /// The list numbered `text` (as its URL ends), when it is open or older.
    pub fn numbered(&self, text: &str) -> Option<u32> {
        parse_number(text).filter(|number| *number <= self.open())
    }

    /// True once the log has been read up to where it stood at start.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub(super) fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Admits `consent`'s status entry before its grant is appended: it names one of
    /// this bank's lists and an index no other consent holds (held for it from now on).
    pub fn admit(&self, consent: &VerifiedConsent) -> Result<(), StatusRefusal> {
        let Some(StatusEntry { list, index }) = &consent.terms.status else {
            return Ok(());
        };
        if !self.is_ready() {
            return Err(StatusRefusal::NotReady);
        }
        let number = self
            .number_of(list)
            .ok_or_else(|| StatusRefusal::ForeignList(list.clone(), self.url()))?;
        let mut taken = lock(&self.taken);
        match taken.by_slot.get(&(number, *index)) {
            Some(holder) if *holder != consent.id => Err(StatusRefusal::Taken(*index)),
            _ => {
                taken.hold((number, *index), consent.id);
                Ok(())
            }
        }
    }

    /// Lets go of an admitted entry whose grant did not reach the log.
    pub fn release(&self, consent: &VerifiedConsent) {
        let mut taken = lock(&self.taken);
        if let Some(slot) = taken.by_consent.remove(&consent.id)
            && taken.by_slot.get(&slot) == Some(&consent.id)
            && !taken.revoked_at.contains_key(&slot)
        {
            taken.let_go(slot);
        }
    }

    /// A grant of this bank on the log naming `entry`.
    pub(super) fn granted(&self, consent: ConsentId, entry: &StatusEntry) {
        let Some(number) = entry.list.strip_prefix(&self.base).and_then(parse_number) else {
            return;
        };
        if entry.index >= STATUS_LIST_ENTRIES {
            return;
        }
        let mut taken = lock(&self.taken);
        // The first grant on the log holds the slot: a later one naming it was never
        // admitted here and cannot move it.
        let slot = (number, entry.index);
        if taken.by_slot.get(&slot).is_none_or(|h| *h == consent) {
            taken.hold(slot, consent);
        }
    }

    /// A revocation of `consent` reached the log at `at`: its bit is set from then on.
    pub(super) fn revoked(&self, consent: &ConsentId, at: DateTime<Utc>) {
        let mut taken = lock(&self.taken);
        if let Some(&slot) = taken.by_consent.get(consent)
            && taken.by_slot.get(&slot) == Some(consent)
            && let Entry::Vacant(vacant) = taken.revoked_at.entry(slot)
        {
            vacant.insert(at);
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// True when list `number` marks `index` revoked now.
    pub fn is_revoked(&self, number: u32, index: u32) -> bool {
        lock(&self.taken).revoked_at.contains_key(&(number, index))
    }

    /// List `number`'s bits as they stood at `at` (now, when `None`): bit `i` is the
    /// `i`th from the left, as the specification orders them.
    pub fn bits(&self, number: u32, at: Option<DateTime<Utc>>) -> Vec<u8> {
        let mut bits = vec![0u8; (STATUS_LIST_ENTRIES / 8) as usize];
        let taken = lock(&self.taken);
        for (&(list, index), &revoked) in &taken.revoked_at {
            if list == number && at.is_none_or(|at| revoked <= at) {
                bits[(index / 8) as usize] |= 0x80 >> (index % 8);
            }
        }
        bits
    }

    /// List `number` as it stands now, signed, when it was signed within
    /// [`SIGNED_REUSE`] and no revocation landed since; with the generation to
    /// [`StatusLists::keep`] a fresh one under.
    pub fn signed_now(&self, number: u32) -> (u64, Option<serde_json::Value>) {
        let generation = self.generation.load(Ordering::Acquire);
        let kept = lock(&self.signed).get(&number).and_then(|(g, made, list)| {
            (*g == generation && made.elapsed() < SIGNED_REUSE).then(|| list.clone())
        });
        (generation, kept)
    }

    /// Keeps list `number`, signed from its bits as they stood at `generation`.
    pub fn keep(&self, number: u32, generation: u64, list: serde_json::Value) {
        lock(&self.signed).insert(number, (generation, Instant::now(), list));
    }
}

/// A list number as a URL ends with it: decimal, no leading zero, below [`MAX_LISTS`].
fn parse_number(text: &str) -> Option<u32> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    text.parse().ok().filter(|n| canonical && *n < MAX_LISTS)
}

/// `bits` as a list's `encodedList`: GZIP-compressed, base64url without padding,
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
            list: lists.url(),
            index: 9,
        };
        lists.granted(consent, &entry);
        lists.granted(other, &entry);
        let at = Utc::now();
        lists.revoked(&other, at);
        assert_eq!(
            lists.bits(0, None)[1],
            0,
            "the second grant does not hold the index"
        );
        lists.revoked(&consent, at);
        assert_eq!(
            lists.bits(0, None)[1],
            0x40,
            "bit 9 is the second of byte 1"
        );
        assert_eq!(lists.bits(0, Some(at - chrono::Duration::seconds(1)))[1], 0);
        let encoded = encode(&lists.bits(0, None));
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
            list: lists.url(),
            index: 4,
        };
        lists.granted(consent, &entry);
        let (generation, kept) = lists.signed_now(0);
        assert!(kept.is_none(), "nothing signed yet");
        lists.keep(0, generation, serde_json::json!({"signed": 1}));
        assert_eq!(
            lists.signed_now(0).1,
            Some(serde_json::json!({"signed": 1}))
        );
        lists.revoked(&consent, Utc::now());
        let (after, kept) = lists.signed_now(0);
        assert!(kept.is_none(), "a revocation makes the kept list stale");
        assert_ne!(after, generation);
        lists.revoked(&consent, Utc::now());
        assert_eq!(
            lists.signed_now(0).0,
            after,
            "a bit already set changes nothing"
        );
    }

    #[test]
    fn a_new_list_opens_when_the_newest_is_half_taken_and_older_ones_stay_readable() {
        let lists = StatusLists::with_fill("https://bank.example", 2);
        let consent = |n: u8| consentnet_identity::Hash32([n; 32]);
        let entry = |list: String, index| StatusEntry { list, index };
        lists.granted(consent(1), &entry(lists.url(), 5));
        assert_eq!(lists.open(), 0);
        lists.granted(consent(2), &entry(lists.url(), 6));
        assert_eq!(lists.url(), "https://bank.example/status/revocation/1");
        assert_eq!(
            lists.number_of("https://bank.example/status/revocation/0"),
            Some(0)
        );
        assert_eq!(
            lists.number_of("https://bank.example/status/revocation/1"),
            Some(1)
        );
        assert_eq!(
            lists.number_of("https://bank.example/status/revocation/2"),
            None,
            "not open yet"
        );
        assert_eq!(
            lists.number_of("https://bank.example/status/revocation/01"),
            None
        );
        assert_eq!(
            lists.number_of("https://elsewhere.example/status/revocation/0"),
            None
        );
        // The same index in another list is another entry.
        lists.granted(consent(3), &entry(lists.url(), 5));
        lists.revoked(&consent(3), Utc::now());
        assert!(lists.is_revoked(1, 5));
        assert!(!lists.is_revoked(0, 5));
        assert_eq!(lists.bits(0, None)[0], 0);
        assert_eq!(lists.bits(1, None)[0], 0x04, "bit 5 of list 1");
    }
}
