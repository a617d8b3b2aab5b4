//! Which signatures the audit verifies: by default an entry is vouched for by its origin's signature on it or on the next entry of its feed that names its hash, so a linked run of one feed costs one check at its end; `Every` checks each signature as ingest does.

use consentnet_identity::SignatureCheck;
use serde::Serialize;

use crate::entry::Sealed;

/// How many signatures the audit verifies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SignatureRule {
    /// The origin's signature where no later linked entry vouches for an entry (the end
    /// of each linked run of a feed), and every event signature made by someone other
    /// than the entry's origin. An entry is authentic when its origin signed it or
    /// signed a later entry of its feed that names it, by hash, through the chain; an
    /// event its origin signed is vouched for by that same key. Forging either needs the
    /// origin's key or a SHA-256 collision.
    #[default]
    Chained,
    /// Every entry's and every event's own signature, as a node checks what it ingests:
    /// also finds a signature its own signer's key left bad inside a chain that key
    /// went on to sign.
    Every,
}

impl SignatureRule {
    /// [`SignatureRule::Every`] when `every`, else the default.
    pub fn every_if(every: bool) -> Self {
        if every { Self::Every } else { Self::Chained }
    }
}

/// What the audit learned of one decoded entry's signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Vouched {
    /// The origin signed this entry, or a later linked entry of its feed.
    pub entry: bool,
    /// The event's own signature holds, or is its origin's and so vouched for by the
    /// entry (true for events without one).
    pub event: bool,
}

/// True when `next` is the entry after `this` in its feed and names its hash.
fn links(this: &Sealed, next: &Sealed) -> bool {
    next.origin == this.origin
        && this.seq.checked_add(1) == Some(next.seq)
        && next.prev == this.hash()
}

/// Verifies many signatures, one verdict per check, in order (on every core).
pub(super) type Verify<'a> = &'a (dyn Fn(Vec<SignatureCheck>) -> Vec<bool> + Sync);

/// The event signature checks `rule` asks for, by entry.
fn event_checks(
    entries: &[Option<&Sealed>],
    rule: SignatureRule,
) -> (Vec<usize>, Vec<SignatureCheck>) {
    entries
        .iter()
        .enumerate()
        .filter_map(|(i, entry)| {
            let entry = (*entry)?;
            let by_origin = entry.event.signer() == Some(&entry.origin);
            if rule == SignatureRule::Chained && by_origin {
                return None;
            }
            Some((i, entry.event_signature_check()?))
        })
        .unzip()
}

/// The entries of each linked run (`linked`: the next entry names this one) whose end
/// did not verify (`own`).
fn runs_with_failed_ends(linked: &[bool], own: &[Option<bool>]) -> Vec<usize> {
    let mut failed_run = false;
    let mut fallback = Vec::new();
    for i in (0..linked.len()).rev() {
        if !linked[i] {
            failed_run = own[i] == Some(false);
        } else if failed_run {
            fallback.push(i);
        }
    }
    fallback
}

/// What `rule` finds of the signatures of `entries`, consecutive entries in store order
/// (feed by feed, in seq order; `None` for bytes that are not an entry), verified with
/// `verify`.
pub(super) fn vouch(
    entries: &[Option<&Sealed>],
    rule: SignatureRule,
    verify: Verify,
) -> Vec<Vouched> {
    let count = entries.len();
    let linked: Vec<bool> = (0..count)
        .map(
            |i| match (entries[i], entries.get(i + 1).copied().flatten()) {
                (Some(this), Some(next)) => rule == SignatureRule::Chained && links(this, next),
                _ => false,
            },
        )
        .collect();
    // Round 1: the end of each linked run, and the events' signatures.
    let ends: Vec<usize> = (0..count)
        .filter(|&i| !linked[i] && entries[i].is_some())
        .collect();
    let (event_at, mut checks) = event_checks(entries, rule);
    let events = checks.len();
    checks.extend(
        ends.iter()
            .filter_map(|&i| entries[i].map(Sealed::signature_check)),
    );
    let mut verdicts = verify(checks);
    let mut own = vec![None; count];
    for (&i, verdict) in ends.iter().zip(verdicts.split_off(events)) {
        own[i] = Some(verdict);
    }
    // Round 2: a run whose end does not verify vouches for nothing; each entry is checked.
    let fallback = runs_with_failed_ends(&linked, &own);
    if !fallback.is_empty() {
        let checks = fallback
            .iter()
            .filter_map(|&i| entries[i].map(Sealed::signature_check))
            .collect();
        for (&i, verdict) in fallback.iter().zip(verify(checks)) {
            own[i] = Some(verdict);
        }
    }

    let mut vouched = vec![
        Vouched {
            entry: false,
            event: true,
        };
        count
    ];
    for i in (0..count).rev() {
        let by_next = linked[i] && vouched[i + 1].entry;
        vouched[i].entry = entries[i].is_some() && (own[i] == Some(true) || by_next);
    }
    for (i, verdict) in event_at.into_iter().zip(verdicts) {
        vouched[i].event = verdict;
    }
    vouched
}
