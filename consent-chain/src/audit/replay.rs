//! The audit's main pass over the log: entries decoded, hashed and signature-checked in parallel chunks, then links, events and state replayed in feed order.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use consentnet_identity::{ConsentVerifier, Did, Hash32, verify_many};

use super::signatures::{SignatureRule, Vouched, vouch};
use super::timing::Timing;
use super::{DayCount, Problem};
use crate::entry::Sealed;
use crate::event::Event;
use crate::genesis::Genesis;
use crate::state::State;
use crate::validate::{Check, validate_event, verify_credential};

/// Entries read, then checked together, spread over the machine's cores.
pub(super) const AUDIT_CHUNK: usize = 8192;

/// What the parallel phase learns about one stored entry.
struct Checked {
    /// The entry with its bytes and hash, or why its bytes are not an entry.
    entry: Result<Sealed, String>,
    /// What the signatures show.
    vouched: Vouched,
}

/// Decodes and hashes entries; verifies consent credentials into `verifier`'s cache.
fn decode_part(part: Vec<Vec<u8>>, verifier: &ConsentVerifier) -> Vec<Result<Sealed, String>> {
    let decoded: Vec<Result<Sealed, String>> = part
        .into_iter()
        .map(|bytes| Sealed::decode_owned(bytes).map_err(|e| e.to_string()))
        .collect();
    for entry in decoded.iter().flatten() {
        if let Event::ConsentGranted { credential } = &entry.event {
            // Warms the cache; the verdict is read again in feed order.
            let _ = verify_credential(verifier, credential);
        }
    }
    decoded
}

/// `work` over `items` split in one part per core, results in order.
fn in_parallel<T: Send, R: Send>(
    mut items: Vec<T>,
    work: &(dyn Fn(Vec<T>) -> Vec<R> + Sync),
) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 16);
    let per_thread = items.len().div_ceil(threads).max(1);
    let mut parts = Vec::with_capacity(threads);
    while items.len() > per_thread {
        let rest = items.split_off(per_thread);
        parts.push(std::mem::replace(&mut items, rest));
    }
    parts.push(items);
    std::thread::scope(|scope| {
        let workers: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || work(part)))
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// Decodes `chunk` and verifies the signatures `rule` asks for, using every core; the
/// signed statements are slices of the stored bytes, never encoded again.
fn check_in_parallel(
    chunk: Vec<Vec<u8>>,
    verifier: &ConsentVerifier,
    rule: SignatureRule,
) -> Vec<Checked> {
    let decoded = in_parallel(chunk, &|part| decode_part(part, verifier));
    let entries: Vec<Option<&Sealed>> = decoded.iter().map(|entry| entry.as_ref().ok()).collect();
    let vouched = vouch(&entries, rule, &|checks| {
        in_parallel(checks, &|part| verify_many(&part))
    });
    decoded
        .into_iter()
        .zip(vouched)
        .map(|(entry, vouched)| Checked { entry, vouched })
        .collect()
}

/// What the main pass has found so far. Its memory grows with the state, the feeds,
/// the days and the other members' checkpoints, never with per-access data.
pub(super) struct Replay<'a> {
    ever_members: &'a BTreeMap<Did, ()>,
    verifier: &'a ConsentVerifier,
    rule: SignatureRule,
    /// The state the valid entries produce.
    pub state: State,
    /// Per feed, the last entry met: its seq and hash.
    pub heads: BTreeMap<Did, (u64, Hash32)>,
    /// Entries that fail a check.
    pub problems: Vec<Problem>,
    /// The entries that were not applied, by origin and seq.
    pub rejected: HashSet<(Did, u64)>,
    /// The stored bytes that are not an entry, by their place in store order (from 1).
    pub undecodable: HashSet<u64>,
    /// Entries by event kind.
    pub events: BTreeMap<&'static str, u64>,
    /// Entries met.
    pub entries: u64,
    /// Grants and revocations per day.
    pub days: BTreeMap<String, DayCount>,
    /// Each revocation event's first entry time.
    pub logged_at: HashMap<Hash32, u64>,
    /// Other members' checkpoints.
    pub timing: Timing,
}

impl<'a> Replay<'a> {
    /// A pass from `genesis`, counting only feeds of `ever_members`.
    pub(super) fn new(
        genesis: &Genesis,
        ever_members: &'a BTreeMap<Did, ()>,
        verifier: &'a ConsentVerifier,
        rule: SignatureRule,
    ) -> Self {
        Self {
            ever_members,
            verifier,
            rule,
            state: State::new(genesis),
            heads: BTreeMap::new(),
            problems: Vec::new(),
            rejected: HashSet::new(),
            undecodable: HashSet::new(),
            events: BTreeMap::new(),
            entries: 0,
            days: BTreeMap::new(),
            logged_at: HashMap::new(),
            timing: Timing::default(),
        }
    }

    /// Checks the stored entries `chunk`, the next ones in store order.
    pub(super) fn chunk(&mut self, chunk: Vec<Vec<u8>>) {
        for checked in check_in_parallel(chunk, self.verifier, self.rule) {
            self.entries += 1;
            match checked.entry {
                Ok(entry) => self.entry(&entry, checked.vouched),
                Err(error) => {
                    self.undecodable.insert(self.entries);
                    self.problems.push(Problem {
                        origin: String::new(),
                        seq: 0,
                        problem: format!("stored bytes are not an entry: {error}"),
                    });
                }
            }
        }
    }

    /// Checks one decoded entry (`vouched`: what its signatures show) and applies it
    /// when valid.
    fn entry(&mut self, entry: &Sealed, vouched: Vouched) {
        *self.events.entry(entry.event.kind()).or_default() += 1;
        let (last_seq, last_hash) = self
            .heads
            .get(&entry.origin)
            .copied()
            .unwrap_or((0, Hash32::ZERO));
        let verdict = if !self.ever_members.contains_key(&entry.origin) {
            Err("origin is not a member".to_owned())
        } else if !vouched.entry {
            Err("signature does not verify".to_owned())
        } else if entry.seq != last_seq + 1 || entry.prev != last_hash {
            Err(format!("does not link to seq {last_seq}"))
        } else {
            self.apply(entry, vouched.event)
        };
        if let Err(problem) = verdict {
            self.problems.push(Problem {
                origin: entry.origin.to_string(),
                seq: entry.seq,
                problem,
            });
            self.rejected.insert((entry.origin.clone(), entry.seq));
        }
        match self.heads.get_mut(&entry.origin) {
            Some(head) => *head = (entry.seq, entry.hash()),
            None => {
                self.heads
                    .insert(entry.origin.clone(), (entry.seq, entry.hash()));
            }
        }
    }

    /// Validates the event of a linked, signed entry and applies it.
    fn apply(&mut self, entry: &Sealed, event_signed: bool) -> Result<(), String> {
        // A failed batch verdict is re-checked in full, which names the problem.
        let check = if event_signed {
            Check::Presigned
        } else {
            Check::Full
        };
        let valid = validate_event(
            &entry.event,
            &entry.origin,
            self.state.membership(),
            self.verifier,
            check,
        )
        .map_err(|error| format!("invalid {}: {error}", entry.event.kind()))?;
        let kind = entry.event.kind();
        if kind == "consentGranted" || kind == "consentRevoked" {
            self.count_day(entry.time, kind == "consentGranted");
        }
        if kind == "consentRevoked" {
            // The log's time for a revocation: its first entry's, whichever feed holds
            // it; never the time the revoker names.
            self.logged_at
                .entry(entry.event_id())
                .and_modify(|at: &mut u64| *at = (*at).min(entry.time))
                .or_insert(entry.time);
        }
        self.timing.note(entry);
        self.state.apply(entry.event_id(), &valid);
        Ok(())
    }

    /// Counts a grant (or a revocation) on the UTC day of `time`.
    fn count_day(&mut self, time: u64, granted: bool) {
        let day = DateTime::<Utc>::from_timestamp_millis(time as i64)
            .unwrap_or_default()
            .format("%Y-%m-%d")
            .to_string();
        let count = self.days.entry(day.clone()).or_default();
        count.day = day;
        if granted {
            count.granted += 1;
        } else {
            count.revoked += 1;
        }
    }
}
