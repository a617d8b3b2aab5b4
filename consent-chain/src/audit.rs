//! Offline audit of a whole store: every signature, hash link and event re-checked, equivocations confirmed, banks' access records checked against their commitments, and accesses served under consents that were not usable.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use consentnet_identity::{ConsentId, ConsentVerifier, Did, verify_many};
use serde::Serialize;

use crate::entry::Entry;
use crate::event::Event;
use crate::genesis::Genesis;
use crate::state::State;
use crate::store::{LogStore, StoreError};
use crate::validate::{Check, validate_event, verify_credential};
use consentnet_identity::Hash32;

mod accesses;
mod timing;

pub use accesses::{NoRecords, RecordSource};
pub use timing::LateRecords;

/// How strict the audit is.
#[derive(Debug, Clone, Copy)]
pub struct AuditConfig {
    /// How long after a revocation an access may still be served without counting as a
    /// violation: the time the revocation may take to reach the bank's node.
    pub propagation_bound_ms: u64,
    /// How often members sign checkpoints (`p2p.checkpoint_interval_ms`): a peer may
    /// see a batch up to this long after it arrived.
    pub checkpoint_interval_ms: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            propagation_bound_ms: 1_000,
            checkpoint_interval_ms: 10_000,
        }
    }
}

/// Time an honest bank may take to batch its records and commit the batch, ms (its node
/// closes a batch within 2 s).
const BATCHING_ALLOWANCE_MS: u64 = 3_000;

impl AuditConfig {
    /// How much earlier than the first peer saw it a record may be stamped: the clocks'
    /// skew, the propagation bound, the checkpoint interval and batching.
    pub fn late_bound_ms(&self) -> u64 {
        crate::MAX_CLOCK_SKEW_MS
            .saturating_add(self.propagation_bound_ms)
            .saturating_add(self.checkpoint_interval_ms)
            .saturating_add(BATCHING_ALLOWANCE_MS)
    }
}

/// Something wrong with one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The feed.
    pub origin: String,
    /// The entry's seq.
    pub seq: u64,
    /// What is wrong.
    pub problem: String,
}

/// A confirmed equivocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EquivocationFinding {
    /// The origin that signed two conflicting entries.
    pub origin: String,
    /// The position of the held entry.
    pub seq: u64,
}

/// An access served when the consent was not usable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The bank that served it.
    pub bank: String,
    /// The consent presented.
    pub consent_id: ConsentId,
    /// The operation.
    pub operation: String,
    /// When it was served, milliseconds since the Unix epoch.
    pub time: u64,
    /// Why it should not have been served.
    pub reason: String,
}

/// Consents granted and revocations made on one day (UTC), by the time their entries
/// were written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DayCount {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Consent grants.
    pub granted: u64,
    /// Revocations.
    pub revoked: u64,
}

/// Accesses banks recorded for one app.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AppAccesses {
    /// The app's DID.
    pub app: String,
    /// Its name in its latest manifest, if it published one.
    pub name: Option<String>,
    /// Calls served.
    pub served: u64,
    /// Calls refused.
    pub refused: u64,
}

/// The audit's findings.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// Entries checked.
    pub entries: u64,
    /// Feeds checked.
    pub feeds: usize,
    /// Entries by event kind.
    pub events: BTreeMap<&'static str, u64>,
    /// Consents granted, revoked (effectively), and accesses recorded.
    pub consents: usize,
    /// Consents with an effective revocation.
    pub revoked: usize,
    /// Access records checked: those of committed batches the record source held and
    /// that matched their commitments.
    pub accesses: usize,
    /// Access records the banks committed to on the log.
    pub committed_records: u64,
    /// Committed batches whose records the source does not hold, so were not judged.
    pub batches_unavailable: u64,
    /// Entries that fail a check.
    pub problems: Vec<Problem>,
    /// Confirmed equivocations.
    pub equivocations: Vec<EquivocationFinding>,
    /// Accesses served under unusable consents.
    pub violations: Vec<Violation>,
    /// Access batches stamped earlier than the bound before any peer saw them.
    pub late_records: Vec<LateRecords>,
    /// Grants and revocations per day, oldest first.
    pub timeline: Vec<DayCount>,
    /// Accesses per app, most first.
    pub accesses_by_app: Vec<AppAccesses>,
    /// The digest of the state the valid entries produce.
    pub state_digest: Hash32,
    /// True when nothing was found.
    pub clean: bool,
}

impl AuditReport {
    /// A short summary for people.
    pub fn summary(&self) -> String {
        let kinds: Vec<String> = self
            .events
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        format!(
            "{verdict}: {entries} entries in {feeds} feeds ({kinds}); {consents} consents, {revoked} revoked, {accesses} accesses; \
             {problems} bad entries, {equivocations} equivocations, {violations} violations, {late} late access batches; state digest {digest}",
            verdict = if self.clean { "CLEAN" } else { "FINDINGS" },
            entries = self.entries,
            feeds = self.feeds,
            kinds = kinds.join(", "),
            consents = self.consents,
            revoked = self.revoked,
            accesses = self.accesses,
            problems = self.problems.len(),
            equivocations = self.equivocations.len(),
            violations = self.violations.len(),
            late = self.late_records.len(),
            digest = self.state_digest,
        )
    }
}

/// Entries read, then checked together, spread over the machine's cores.
const AUDIT_CHUNK: usize = 8192;

/// What the parallel phase learns about one stored entry.
struct Checked {
    /// The entry and its hash, or why its bytes are not an entry.
    entry: Result<(Entry, Hash32), String>,
    /// The origin's signature verifies.
    signed: bool,
    /// The event's own signature verifies (true for events without one).
    event_signed: bool,
}

/// Decodes and hashes entries and verifies their origin and event signatures in batches;
/// verifies consent credentials into `verifier`'s cache. Runs on one core.
fn check_part(part: &[Vec<u8>], verifier: &ConsentVerifier) -> Vec<Checked> {
    let decoded: Vec<Result<(Entry, Hash32), String>> = part
        .iter()
        .map(|bytes| Entry::decode_hashed(bytes).map_err(|e| e.to_string()))
        .collect();
    let mut checks = Vec::with_capacity(part.len() * 2);
    let mut slots = Vec::with_capacity(part.len());
    for (entry, _) in decoded.iter().flatten() {
        checks.push(entry.signature_check());
        let event_slot = entry.event.signature_check().map(|check| {
            checks.push(check);
            checks.len() - 1
        });
        slots.push((
            checks.len() - 1 - usize::from(event_slot.is_some()),
            event_slot,
        ));
        if let Event::ConsentGranted { credential } = &entry.event {
            // Warms the cache; the verdict is read again in feed order.
            let _ = verify_credential(verifier, credential);
        }
    }
    let verdicts = verify_many(&checks);
    let mut slots = slots.into_iter();
    decoded
        .into_iter()
        .map(|entry| match entry {
            Ok(entry) => {
                let (entry_slot, event_slot) = slots
                    .next()
                    .unwrap_or_else(|| unreachable!("one slot per decoded entry"));
                Checked {
                    entry: Ok(entry),
                    signed: verdicts[entry_slot],
                    event_signed: event_slot.is_none_or(|slot| verdicts[slot]),
                }
            }
            Err(error) => Checked {
                entry: Err(error),
                signed: false,
                event_signed: false,
            },
        })
        .collect()
}

/// [`check_part`] over `chunk`, using every available core.
fn check_in_parallel(chunk: &[Vec<u8>], verifier: &ConsentVerifier) -> Vec<Checked> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 16);
    let per_thread = chunk.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = chunk
            .chunks(per_thread)
            .map(|part| scope.spawn(move || check_part(part, verifier)))
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

/// Marks the bytes of entries that may hold a membership change: cheaper than decoding
/// every entry. A false positive only costs a decode.
fn may_change_membership(bytes: &[u8]) -> bool {
    const TAG: &[u8] = b"\"membershipChanged\"";
    bytes.windows(TAG.len()).any(|window| window == TAG)
}

/// Audits every entry in `store` against `genesis`, and the access records `records`
/// holds against the banks' commitments.
pub fn audit<S: LogStore>(
    store: &S,
    genesis: &Genesis,
    config: AuditConfig,
    records: &dyn RecordSource,
) -> Result<AuditReport, StoreError> {
    audit_with_progress(store, genesis, config, records, &mut |_, _| {})
}

/// [`audit`], calling `progress(entries checked, entries in the store)` after each chunk.
pub fn audit_with_progress<S: LogStore>(
    store: &S,
    genesis: &Genesis,
    config: AuditConfig,
    records: &dyn RecordSource,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<AuditReport, StoreError> {
    let total: u64 = store.heads()?.values().map(|head| head.seq).sum();
    let verifier = ConsentVerifier::new(100_000);
    let ever_members = ever_members(store, genesis, &verifier)?;

    // Pass 2: decoding, hashing and signatures in parallel, chunk by chunk; then links,
    // events and state in feed order.
    let mut state = State::new(genesis);
    let mut heads: BTreeMap<Did, (u64, Hash32)> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut events: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut entries = 0u64;
    let mut days: BTreeMap<String, DayCount> = BTreeMap::new();
    let mut logged_at: HashMap<Hash32, u64> = HashMap::new();
    let mut timing = timing::Timing::default();
    let mut chunk: Vec<Vec<u8>> = Vec::with_capacity(AUDIT_CHUNK);
    let mut check_chunk = |chunk: &mut Vec<Vec<u8>>| {
        let checked = check_in_parallel(chunk, &verifier);
        chunk.clear();
        for checked in checked {
            entries += 1;
            let (entry, hash) = match checked.entry {
                Ok(decoded) => decoded,
                Err(error) => {
                    problems.push(Problem {
                        origin: String::new(),
                        seq: 0,
                        problem: format!("stored bytes are not an entry: {error}"),
                    });
                    continue;
                }
            };
            *events.entry(entry.event.kind()).or_default() += 1;
            let mut problem = |text: String| {
                problems.push(Problem {
                    origin: entry.origin.to_string(),
                    seq: entry.seq,
                    problem: text,
                })
            };
            let (last_seq, last_hash) = heads
                .get(&entry.origin)
                .copied()
                .unwrap_or((0, Hash32::ZERO));
            if !ever_members.contains_key(&entry.origin) {
                problem("origin is not a member".into());
            } else if !checked.signed {
                problem("signature does not verify".into());
            } else if entry.seq != last_seq + 1 || entry.prev != last_hash {
                problem(format!("does not link to seq {last_seq}"));
            } else {
                // A failed batch verdict is re-checked in full, which names the problem.
                let check = if checked.event_signed {
                    Check::Presigned
                } else {
                    Check::Full
                };
                match validate_event(
                    &entry.event,
                    &entry.origin,
                    state.membership(),
                    &verifier,
                    check,
                ) {
                    Ok(valid) => {
                        let kind = entry.event.kind();
                        if kind == "consentGranted" || kind == "consentRevoked" {
                            let day = DateTime::<Utc>::from_timestamp_millis(entry.time as i64)
                                .unwrap_or_default()
                                .format("%Y-%m-%d")
                                .to_string();
                            let count = days.entry(day.clone()).or_default();
                            count.day = day;
                            if kind == "consentGranted" {
                                count.granted += 1;
                            } else {
                                count.revoked += 1;
                            }
                        }
                        if kind == "consentRevoked" {
                            // The log's time for a revocation: its first entry's, whichever
                            // feed holds it; never the time the revoker names.
                            logged_at
                                .entry(entry.event.id())
                                .and_modify(|at: &mut u64| *at = (*at).min(entry.time))
                                .or_insert(entry.time);
                        }
                        timing.note(&entry);
                        state.apply(entry.event.id(), &valid);
                    }
                    Err(error) => problem(format!("invalid {}: {error}", entry.event.kind())),
                }
            }
            heads.insert(entry.origin.clone(), (entry.seq, hash));
        }
        progress(entries, total.max(entries));
    };
    store.for_each_encoded(&mut |bytes| {
        chunk.push(bytes.to_vec());
        if chunk.len() == AUDIT_CHUNK {
            check_chunk(&mut chunk);
        }
        true
    })?;
    check_chunk(&mut chunk);

    let equivocations = confirmed_equivocations(store)?;

    let checked = accesses::check_commitments(timing.commitments(), records)?;
    problems.extend(checked.problems);
    let accesses_by_app = accesses::accesses_by_app(&state, &checked.records);
    let violations = accesses::violations(&state, &checked.records, &config, &logged_at);
    let late_records = timing.late_records(config.late_bound_ms());

    let consents = state.consent_count();
    let revoked = state
        .consents_ids()
        .filter(|id| state.effective_revocation(id).is_some())
        .count();
    let clean = problems.is_empty()
        && equivocations.is_empty()
        && violations.is_empty()
        && late_records.is_empty();
    Ok(AuditReport {
        entries,
        feeds: heads.len(),
        events,
        consents,
        revoked,
        accesses: checked.records.len(),
        committed_records: state.committed().values().map(|c| c.records).sum(),
        batches_unavailable: checked.unavailable,
        problems,
        equivocations,
        violations,
        late_records,
        timeline: days.into_values().collect(),
        accesses_by_app,
        state_digest: state.digest(),
        clean,
    })
}

/// Pass 1 of the audit: every DID that was ever a member (membership, which decides whose
/// feeds count, may change in any feed).
fn ever_members<S: LogStore>(
    store: &S,
    genesis: &Genesis,
    verifier: &ConsentVerifier,
) -> Result<BTreeMap<Did, ()>, StoreError> {
    // Pass 1: membership, which decides whose feeds count, may change in any feed.
    let mut membership_state = State::new(genesis);
    store.for_each_encoded(&mut |bytes| {
        if may_change_membership(bytes)
            && let Ok(entry) = Entry::decode(bytes)
            && matches!(entry.event, Event::MembershipChanged { .. })
            && entry.verify_signature()
            && let Ok(valid) = validate_event(
                &entry.event,
                &entry.origin,
                membership_state.membership(),
                verifier,
                Check::Full,
            )
        {
            membership_state.apply(entry.event.id(), &valid);
        }
        true
    })?;
    let mut ever_members: BTreeMap<Did, ()> = genesis
        .members
        .iter()
        .map(|m| (m.did.clone(), ()))
        .collect();
    for member in membership_state.membership().iter() {
        ever_members.insert(member.did.clone(), ());
    }
    Ok(ever_members)
}

/// The stored equivocation evidence that checks out: two entries of one origin, both
/// signed, at the same or adjacent seq.
fn confirmed_equivocations<S: LogStore>(store: &S) -> Result<Vec<EquivocationFinding>, StoreError> {
    let mut equivocations = Vec::new();
    for evidence in store.evidence()? {
        let (held, conflicting) = (&evidence.held, &evidence.conflicting);
        let same_slot = held.seq == conflicting.seq || held.seq + 1 == conflicting.seq;
        if held.origin == conflicting.origin
            && held != conflicting
            && same_slot
            && held.verify_signature()
            && conflicting.verify_signature()
        {
            equivocations.push(EquivocationFinding {
                origin: held.origin.to_string(),
                seq: held.seq,
            });
        }
    }

    Ok(equivocations)
}
