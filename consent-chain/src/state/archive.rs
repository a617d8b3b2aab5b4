//! Ended consents kept on disk instead of in memory: what a snapshot moves to the archive, how the state asks whether an event is about an archived consent, a consent resolved from either place, and the order-independent sums the digest covers them by.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use consentnet_identity::{ConsentId, Did, Hash32, Revocation, Validity, VerifiedConsent};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::ConsentStatus;

/// A set's digest that does not depend on the order members were added in: the sum of
/// their tagged SHA-256 hashes, mod 2^256. The state adds each consent and revocation
/// once, when it first applies it, so moving one to the archive changes nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetSum(Hash32);

impl SetSum {
    /// Adds the member named by `parts` (hashed together under `tag`).
    pub fn add(&mut self, tag: &[u8], parts: &[&[u8]]) {
        let mut hasher = Sha256::new();
        hasher.update(tag);
        for part in parts {
            hasher.update(part);
        }
        let term: [u8; 32] = hasher.finalize().into();
        let mut carry = 0u16;
        for (sum, add) in self.0.0.iter_mut().zip(term).rev() {
            let total = u16::from(*sum) + u16::from(add) + carry;
            *sum = total.to_le_bytes()[0];
            carry = total >> 8;
        }
    }

    /// The sum's bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0.0
    }
}

/// Which party a consent is listed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Party {
    /// The client that issued it.
    Client,
    /// The app it was granted to.
    App,
    /// The bank whose accounts it names.
    Bank,
}

impl Party {
    /// The party of this kind a consent names.
    pub fn of(self, consent: &VerifiedConsent) -> &Did {
        match self {
            Party::Client => &consent.issuer,
            Party::App => &consent.terms.app,
            Party::Bank => &consent.terms.bank,
        }
    }
}

/// Revocations by event id, as written to the archive.
pub type RevocationRows = Vec<(Hash32, Revocation)>;

/// What one snapshot write moves from memory to the archive, in the same durable batch
/// as the snapshot that no longer holds it.
#[derive(Debug, Clone, Default)]
pub struct Retirement {
    /// The archive generation the rows belong to. Rows of any other generation are
    /// deleted in the same batch: they belong to a state rebuilt since.
    pub generation: u64,
    /// Ended consents, each with the revocations applied to it.
    pub consents: Vec<(Arc<VerifiedConsent>, RevocationRows)>,
    /// Revocations that arrived after their consent was archived.
    pub revocations: RevocationRows,
}

impl Retirement {
    /// True when it moves nothing.
    pub fn is_empty(&self) -> bool {
        self.consents.is_empty() && self.revocations.is_empty()
    }
}

/// What the state asks of the archive while applying an event: whether it is about a
/// consent (or a revocation) already counted there.
pub trait Archived {
    /// The consent is archived.
    fn holds_consent(&self, id: &ConsentId) -> bool;
    /// This revocation (by event id) of the consent is archived.
    fn holds_revocation(&self, id: &ConsentId, event_id: &Hash32) -> bool;
}

/// No archive: a state that never retires consents (the audit's, a test's).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoArchive;

impl Archived for NoArchive {
    fn holds_consent(&self, _: &ConsentId) -> bool {
        false
    }
    fn holds_revocation(&self, _: &ConsentId, _: &Hash32) -> bool {
        false
    }
}

/// One consent with every revocation applied to it, live or archived: what status,
/// receipt and history queries answer from.
#[derive(Debug, Clone)]
pub struct ConsentRecord {
    /// The verified consent.
    pub consent: Arc<VerifiedConsent>,
    /// Its revocations by event id, whoever signed them.
    pub revocations: BTreeMap<Hash32, Revocation>,
}

impl ConsentRecord {
    /// The revocation that applies: the earliest one made by its issuer or its bank
    /// (ties broken by event id).
    pub fn effective_revocation(&self) -> Option<&Revocation> {
        effective(&self.consent, &self.revocations)
    }

    /// The consent's status at `at` (see [`super::State::consent_status`]).
    pub fn status(&self, at: DateTime<Utc>) -> ConsentStatus {
        status(&self.consent, &self.revocations, at)
    }
}

/// The earliest revocation in `revocations` that verifies for `consent`.
pub(super) fn effective<'a>(
    consent: &VerifiedConsent,
    revocations: &'a BTreeMap<Hash32, Revocation>,
) -> Option<&'a Revocation> {
    revocations
        .iter()
        .filter(|(_, r)| r.verify_for(consent).is_ok())
        .min_by_key(|(event_id, r)| (r.time, **event_id))
        .map(|(_, r)| r)
}

/// A consent's status at `at`, given its revocations. A revocation counts from the
/// moment it is known, whatever time it names: revoking is never delayed.
pub(super) fn status(
    consent: &VerifiedConsent,
    revocations: &BTreeMap<Hash32, Revocation>,
    at: DateTime<Utc>,
) -> ConsentStatus {
    if effective(consent, revocations).is_some() {
        return ConsentStatus::Revoked;
    }
    match consent.validity_at(at) {
        Validity::NotYetValid => ConsentStatus::NotYetValid,
        Validity::Active => ConsentStatus::Active,
        Validity::Expired => ConsentStatus::Expired,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_sum_is_the_same_whatever_the_order_and_differs_with_the_members() {
        let (mut forward, mut backward, mut fewer) =
            (SetSum::default(), SetSum::default(), SetSum::default());
        let members: Vec<[u8; 1]> = (0u8..50).map(|n| [n]).collect();
        for member in &members {
            forward.add(b"t", &[member]);
        }
        for member in members.iter().rev() {
            backward.add(b"t", &[member]);
        }
        for member in &members[1..] {
            fewer.add(b"t", &[member]);
        }
        assert_eq!(forward, backward);
        assert_ne!(forward, fewer);
        assert_ne!(forward, SetSum::default());
    }

    #[test]
    fn a_set_sum_carries_across_bytes() {
        let mut sum = SetSum(Hash32([0xff; 32]));
        sum.add(b"", &[]);
        let mut term = SetSum::default();
        term.add(b"", &[]);
        // 2^256 - 1 + t = t - 1 (mod 2^256).
        let mut expected = term.0.0;
        for byte in expected.iter_mut().rev() {
            let (value, borrow) = byte.overflowing_sub(1);
            *byte = value;
            if !borrow {
                break;
            }
        }
        assert_eq!(sum.bytes(), &expected);
    }
}
