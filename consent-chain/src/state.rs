//! Consent state: a pure function of the set of accepted events, whatever order they arrived in, with the queries nodes and adapters ask of it.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use consentnet_identity::{ConsentId, Did, Revocation, VerifiedConsent};
use im::{OrdMap, OrdSet};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::event::{AppAction, AppDecision, AppManifest, Approval, MembershipChange};
use crate::genesis::{Genesis, Membership};
use crate::validate::ValidEvent;
use consentnet_identity::Hash32;

mod archive;
mod image;
mod retire;

pub use archive::{Archived, ConsentRecord, NoArchive, Party, Retirement, SetSum};
pub use image::StateImage;

/// A consent's status at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    /// No grant for this id is known.
    Unknown,
    /// Granted, but before `validFrom`.
    NotYetValid,
    /// Usable.
    Active,
    /// At or after `validUntil`.
    Expired,
    /// Revoked by its issuer or its bank.
    Revoked,
}

/// One app version as a bank's catalog shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogEntry {
    /// The manifest.
    pub manifest: AppManifest,
    /// The bank's latest decision, if any.
    pub decision: Option<AppDecision>,
}

/// What one bank has committed to on the log: its access batches and records, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Committed {
    /// Batches committed.
    pub batches: u64,
    /// Records in them.
    pub records: u64,
    /// The highest batch number committed.
    pub last_batch: u64,
}

/// The state derived from the set of accepted events. Its large maps are persistent
/// (structurally shared), so a clone costs O(1) and a writer can publish an immutable
/// copy after each commit for readers to use without any lock.
#[derive(Debug, Clone)]
pub struct State {
    founding: Membership,
    membership: Membership,
    membership_changes: BTreeMap<(u64, Hash32), (MembershipChange, Vec<Approval>)>,
    consents: OrdMap<ConsentId, Arc<VerifiedConsent>>,
    revocations: OrdMap<ConsentId, BTreeMap<Hash32, Revocation>>,
    apps: OrdMap<(Did, String), AppManifest>,
    decisions: OrdMap<(Did, Did, String), (u64, Hash32, AppDecision)>,
    committed: BTreeMap<Did, Committed>,
    by_client: OrdMap<Did, OrdSet<ConsentId>>,
    by_app: OrdMap<Did, OrdSet<ConsentId>>,
    by_bank: OrdMap<Did, OrdSet<ConsentId>>,
    /// Revocations that arrived after their consent was archived, until a snapshot
    /// writes them beside it.
    late: OrdMap<ConsentId, BTreeMap<Hash32, Revocation>>,
    /// Every consent and revocation ever applied, archived or not, for the digest.
    consent_sum: SetSum,
    revocation_sum: SetSum,
}

/// The most ended consents one snapshot moves to the archive.
pub const MAX_RETIRED_PER_SNAPSHOT: usize = 10_000;

impl State {
    /// The state before any event: only the founding members.
    pub fn new(genesis: &Genesis) -> Self {
        let membership = genesis.membership();
        Self {
            founding: membership.clone(),
            membership,
            membership_changes: BTreeMap::new(),
            consents: OrdMap::new(),
            revocations: OrdMap::new(),
            apps: OrdMap::new(),
            decisions: OrdMap::new(),
            committed: BTreeMap::new(),
            by_client: OrdMap::new(),
            by_app: OrdMap::new(),
            by_bank: OrdMap::new(),
            late: OrdMap::new(),
            consent_sum: SetSum::default(),
            revocation_sum: SetSum::default(),
        }
    }

    /// Applies a validated event, for a state that archives nothing.
    pub fn apply(&mut self, event_id: Hash32, event: &ValidEvent) {
        self.apply_with(event_id, event, &NoArchive);
    }

    /// Applies a validated event. Applying an event again, however it arrived, changes
    /// nothing: every kind is keyed by what it is, so no set of applied event ids is
    /// kept (it would grow with the log). `archive` says which consents and
    /// revocations were moved out of memory already: a grant of one of them is not
    /// held again, and a new revocation of one waits beside it for the next snapshot.
    pub fn apply_with(&mut self, event_id: Hash32, event: &ValidEvent, archive: &dyn Archived) {
        match event {
            ValidEvent::Granted(consent) => {
                if self.consents.contains_key(&consent.id) || archive.holds_consent(&consent.id) {
                    return;
                }
                self.consent_sum.add(b"consent", &[&consent.id.0]);
                self.index_consent(consent.clone());
            }
            ValidEvent::Revoked(revocation) => self.apply_revocation(event_id, revocation, archive),
            ValidEvent::Published(manifest) => {
                self.apps
                    .entry((manifest.app.clone(), manifest.version.clone()))
                    .or_insert_with(|| manifest.clone());
            }
            ValidEvent::Decided(decision) => {
                let key = (
                    decision.bank.clone(),
                    decision.app.clone(),
                    decision.version.clone(),
                );
                let candidate = (decision.time, event_id, decision.clone());
                // The latest decision wins; equal times are broken by event id, so
                // every node picks the same one whatever the arrival order.
                match self.decisions.get(&key) {
                    Some(current) if (current.0, current.1) >= (candidate.0, candidate.1) => {}
                    _ => {
                        self.decisions.insert(key, candidate);
                    }
                }
            }
            ValidEvent::Accessed(commitment) => {
                let counts = self.committed.entry(commitment.bank.clone()).or_default();
                // A bank's commitments come only from its own feed, applied in order:
                // one that does not advance its batch number is one already counted.
                if commitment.batch <= counts.last_batch {
                    return;
                }
                counts.batches = counts.batches.saturating_add(1);
                counts.records = counts.records.saturating_add(u64::from(commitment.records));
                counts.last_batch = counts.last_batch.max(commitment.batch);
            }
            ValidEvent::Membership(change, approvals) => {
                self.membership_changes
                    .insert((change.time, event_id), (change.clone(), approvals.clone()));
                self.recompute_membership();
            }
            ValidEvent::Checkpoint => {}
        }
    }

    fn apply_revocation(
        &mut self,
        event_id: Hash32,
        revocation: &Revocation,
        archive: &dyn Archived,
    ) {
        let id = revocation.consent_id;
        let archived = !self.consents.contains_key(&id) && archive.holds_consent(&id);
        let held = if archived {
            if archive.holds_revocation(&id, &event_id) {
                return;
            }
            self.late.entry(id).or_default()
        } else {
            self.revocations.entry(id).or_default()
        };
        if held.insert(event_id, revocation.clone()).is_none() {
            self.revocation_sum
                .add(b"revocation", &[&id.0, &event_id.0]);
        }
    }

    /// Holds a verified consent, indexed by client, app and bank.
    fn index_consent(&mut self, consent: Arc<VerifiedConsent>) {
        let id = consent.id;
        self.by_client
            .entry(consent.issuer.clone())
            .or_default()
            .insert(id);
        self.by_app
            .entry(consent.terms.app.clone())
            .or_default()
            .insert(id);
        self.by_bank
            .entry(consent.terms.bank.clone())
            .or_default()
            .insert(id);
        self.consents.insert(id, consent);
    }

    /// Membership = founding members, then every change in (time, id) order that has a
    /// quorum of the membership at that point: the same answer for the same set.
    fn recompute_membership(&mut self) {
        let mut membership = self.founding.clone();
        for (change, approvals) in self.membership_changes.values() {
            if membership.valid_approvals(change, approvals) >= membership.quorum() {
                membership.apply(change);
            }
        }
        self.membership = membership;
    }

    /// The current members.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// The verified consent with this id.
    pub fn consent(&self, id: &ConsentId) -> Option<&Arc<VerifiedConsent>> {
        self.consents.get(id)
    }

    /// The revocation that applies to a live consent: the earliest one made by its
    /// issuer or its bank (ties broken by event id).
    pub fn effective_revocation(&self, id: &ConsentId) -> Option<&Revocation> {
        archive::effective(self.consents.get(id)?, self.revocations.get(id)?)
    }

    /// The event ids of a live consent's revocations that verify for it (its issuer's
    /// or its bank's), in id order.
    pub fn verified_revocations(&self, id: &ConsentId) -> Vec<Hash32> {
        let (Some(consent), Some(revocations)) = (self.consents.get(id), self.revocations.get(id))
        else {
            return Vec::new();
        };
        revocations
            .iter()
            .filter(|(_, r)| r.verify_for(consent).is_ok())
            .map(|(event_id, _)| *event_id)
            .collect()
    }

    /// A live consent's status at `at`. A revocation counts from the moment it is known,
    /// whatever time it names: revoking is never delayed. An archived consent is
    /// `Unknown` here; [`ConsentRecord::status`] answers for it.
    pub fn consent_status(&self, id: &ConsentId, at: DateTime<Utc>) -> ConsentStatus {
        let Some(consent) = self.consents.get(id) else {
            return ConsentStatus::Unknown;
        };
        match self.revocations.get(id) {
            Some(revocations) => archive::status(consent, revocations, at),
            None => archive::status(consent, &BTreeMap::new(), at),
        }
    }

    /// A live consent with its revocations.
    pub fn consent_record(&self, id: &ConsentId) -> Option<ConsentRecord> {
        Some(ConsentRecord {
            consent: self.consents.get(id)?.clone(),
            revocations: self.revocations.get(id).cloned().unwrap_or_default(),
        })
    }

    /// Revocations of an archived consent that arrived after it was archived and are
    /// not written beside it yet.
    pub fn late_revocations(&self, id: &ConsentId) -> Option<&BTreeMap<Hash32, Revocation>> {
        self.late.get(id)
    }

    /// Consents issued by a client DID.
    pub fn consents_by_client(&self, client: &Did) -> Vec<ConsentId> {
        self.by_client
            .get(client)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Consents granted to an app.
    pub fn consents_by_app(&self, app: &Did) -> Vec<ConsentId> {
        self.by_app
            .get(app)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Consents for accounts at a bank.
    pub fn consents_by_bank(&self, bank: &Did) -> Vec<ConsentId> {
        self.by_bank
            .get(bank)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Every app version with this bank's latest decision on it.
    pub fn catalog(&self, bank: &Did) -> Vec<CatalogEntry> {
        self.apps
            .iter()
            .map(|((app, version), manifest)| CatalogEntry {
                manifest: manifest.clone(),
                decision: self
                    .decisions
                    .get(&(bank.clone(), app.clone(), version.clone()))
                    .map(|(_, _, d)| d.clone()),
            })
            .collect()
    }

    /// What `bank` currently allows `app` (any version): the approved permissions of
    /// its latest decision on any version, or `None` if unapproved or suspended.
    pub fn app_action(&self, bank: &Did, app: &Did, version: &str) -> Option<&AppAction> {
        self.decisions
            .get(&(bank.clone(), app.clone(), version.to_owned()))
            .map(|(_, _, d)| &d.action)
    }

    /// Every published app version's manifest, by app and version.
    pub fn manifests(&self) -> impl Iterator<Item = &AppManifest> {
        self.apps.values()
    }

    /// The manifest of `app`'s `version`, if published.
    pub fn manifest(&self, app: &Did, version: &str) -> Option<&AppManifest> {
        self.apps.get(&(app.clone(), version.to_owned()))
    }

    /// The version of `app` other than `except` that `bank` approved most recently and
    /// still approves, with its manifest: what a review of a new version compares with.
    pub fn last_approved(&self, bank: &Did, app: &Did, except: &str) -> Option<&AppManifest> {
        self.decisions
            .iter()
            .filter(|((b, a, version), (_, _, decision))| {
                b == bank
                    && a == app
                    && version != except
                    && matches!(decision.action, AppAction::Approve { .. })
            })
            .max_by_key(|(_, (_, _, decision))| decision.time)
            .and_then(|((_, _, version), _)| self.manifest(app, version))
    }

    /// The name `app` gave itself in its latest-published version's manifest.
    pub fn app_name(&self, app: &Did) -> Option<&str> {
        self.apps
            .iter()
            .filter(|((did, _), _)| did == app)
            .max_by(|((_, a), _), ((_, b), _)| a.cmp(b))
            .map(|(_, manifest)| manifest.name.as_str())
    }

    /// What each bank has committed to: counts only. The records stay with the bank.
    pub fn committed(&self) -> &BTreeMap<Did, Committed> {
        &self.committed
    }

    /// The ids of every known consent.
    pub fn consents_ids(&self) -> impl Iterator<Item = &ConsentId> {
        self.consents.keys()
    }

    /// How many consents are known.
    pub fn consent_count(&self) -> usize {
        self.consents.len()
    }

    /// The state digest: SHA-256 over what the state holds (membership changes, every
    /// consent and revocation ever applied, app versions, decisions, commitment
    /// counts). Consents and revocations enter as order-independent sums, so moving
    /// ended ones to the archive changes nothing. State is a pure function of the set
    /// of events, so two nodes with the same events agree on it, whatever order and
    /// feeds they came through.
    pub fn digest(&self) -> Hash32 {
        let mut hasher = Sha256::new();
        hasher.update(b"consentnet/state/v3\n");
        for (time, id) in self.membership_changes.keys() {
            hasher.update(time.to_be_bytes());
            hasher.update(id.0);
        }
        hasher.update(b"consents\n");
        hasher.update(self.consent_sum.bytes());
        hasher.update(b"revocations\n");
        hasher.update(self.revocation_sum.bytes());
        hasher.update(b"apps\n");
        for manifest in self.apps.values() {
            hasher.update(Hash32::of(&serde_json::to_vec(manifest).unwrap_or_default()).0);
        }
        hasher.update(b"decisions\n");
        for (_, event_id, _) in self.decisions.values() {
            hasher.update(event_id.0);
        }
        hasher.update(b"committed\n");
        for (bank, counts) in &self.committed {
            hasher.update(bank.as_str().as_bytes());
            hasher.update([0]);
            for n in [counts.batches, counts.records, counts.last_batch] {
                hasher.update(n.to_be_bytes());
            }
        }
        Hash32(hasher.finalize().into())
    }
}
