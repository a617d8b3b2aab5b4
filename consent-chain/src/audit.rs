//! Offline audit of a whole store: every entry and event vouched for by its signer's key, every hash link and event re-checked, equivocations confirmed, banks' access records checked against their commitments, and accesses served under consents that were not usable.

use std::collections::{BTreeMap, HashSet};

use consentnet_identity::{ConsentId, ConsentVerifier, Did};
use serde::Serialize;

use crate::entry::Entry;
use crate::event::{AccessCommitment, Event};
use crate::genesis::Genesis;
use crate::state::State;
use crate::store::{LogStore, StoreError};
use crate::validate::{Check, validate_event};
use consentnet_identity::Hash32;
use replay::{AUDIT_CHUNK, Replay};

mod accesses;
mod replay;
mod signatures;
mod timing;

pub use accesses::{NoRecords, RecordSource};
pub use signatures::SignatureRule;
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
    /// Which signatures are verified.
    pub signatures: SignatureRule,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            propagation_bound_ms: 1_000,
            checkpoint_interval_ms: 10_000,
            signatures: SignatureRule::Chained,
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

/// Marks the bytes of entries that may hold an event whose quoted JSON tag is `tag`:
/// cheaper than decoding every entry. A false positive only costs a decode.
fn may_hold(bytes: &[u8], tag: &[u8]) -> bool {
    memchr::memmem::find(bytes, tag).is_some()
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
    let mut replay = Replay::new(genesis, &ever_members, &verifier, config.signatures);
    let mut chunk: Vec<Vec<u8>> = Vec::with_capacity(AUDIT_CHUNK);
    store.for_each_encoded(&mut |bytes| {
        chunk.push(bytes.to_vec());
        if chunk.len() == AUDIT_CHUNK {
            replay.chunk(std::mem::replace(
                &mut chunk,
                Vec::with_capacity(AUDIT_CHUNK),
            ));
            progress(replay.entries, total.max(replay.entries));
        }
        true
    })?;
    replay.chunk(chunk);
    progress(replay.entries, total.max(replay.entries));

    let equivocations = confirmed_equivocations(store)?;

    // Pass 3: each applied commitment, once the state is final, against the records.
    let coverage = std::mem::take(&mut replay.timing).coverage();
    let mut check = accesses::RecordCheck::new(&replay.state, &config, &replay.logged_at, records);
    let mut late_records = Vec::new();
    let (rejected, undecodable) = (&replay.rejected, &replay.undecodable);
    for_each_commitment(store, rejected, undecodable, &mut |seq, commitment| {
        late_records.extend(coverage.late(seq, commitment, config.late_bound_ms()));
        check.commitment(seq, commitment)
    })?;
    let found = check.finish();

    let Replay {
        state,
        heads,
        mut problems,
        events,
        entries,
        days,
        ..
    } = replay;
    problems.extend(found.problems);
    let consents = state.consent_count();
    let revoked = state
        .consents_ids()
        .filter(|id| state.effective_revocation(id).is_some())
        .count();
    let clean = problems.is_empty()
        && equivocations.is_empty()
        && found.violations.is_empty()
        && late_records.is_empty();
    Ok(AuditReport {
        entries,
        feeds: heads.len(),
        events,
        consents,
        revoked,
        accesses: found.accesses,
        committed_records: state.committed().values().map(|c| c.records).sum(),
        batches_unavailable: found.unavailable,
        problems,
        equivocations,
        violations: found.violations,
        late_records,
        timeline: days.into_values().collect(),
        accesses_by_app: found.by_app,
        state_digest: state.digest(),
        clean,
    })
}

/// Where pass 3 reads an access commitment and its position, without the canonical
/// check: pass 2 made it on the same bytes, and named the ones that failed it.
#[derive(serde::Deserialize)]
struct Positioned {
    origin: Did,
    seq: u64,
    event: Event,
}

/// Pass 3 of the audit: calls `visit(seq, commitment)` for every access commitment in
/// store order that pass 2 applied (not in `rejected`, and not among the `undecodable`
/// entries, by their place in store order), decoding only entries that may hold one.
/// Stops at `visit`'s first error.
fn for_each_commitment<S: LogStore>(
    store: &S,
    rejected: &HashSet<(Did, u64)>,
    undecodable: &HashSet<u64>,
    visit: &mut dyn FnMut(u64, &AccessCommitment) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut failed = None;
    let mut place = 0u64;
    store.for_each_encoded(&mut |bytes| {
        place += 1;
        if !may_hold(bytes, b"\"accessCommitted\"") || undecodable.contains(&place) {
            return true;
        }
        let Ok(entry) = serde_json::from_slice::<Positioned>(bytes) else {
            return true;
        };
        let Event::AccessCommitted { commitment, .. } = &entry.event else {
            return true;
        };
        if !rejected.is_empty() && rejected.contains(&(entry.origin.clone(), entry.seq)) {
            return true;
        }
        match visit(entry.seq, commitment) {
            Ok(()) => true,
            Err(error) => {
                failed = Some(error);
                false
            }
        }
    })?;
    failed.map_or(Ok(()), Err)
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
        if may_hold(bytes, b"\"membershipChanged\"")
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
