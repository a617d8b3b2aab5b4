//! Consent state: a pure function of the set of accepted events, whatever order they arrived in, with the queries nodes and adapters ask of it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use consentnet_identity::{ConsentId, Did, Revocation, Validity, VerifiedConsent};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::event::{AppAction, AppDecision, AppManifest, Approval, MembershipChange};
use crate::genesis::{Genesis, Membership};
use crate::validate::ValidEvent;
use consentnet_identity::Hash32;

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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Committed {
    /// Batches committed.
    pub batches: u64,
    /// Records in them.
    pub records: u64,
    /// The highest batch number committed.
    pub last_batch: u64,
}

/// The state derived from the set of accepted events.
#[derive(Debug, Clone)]
pub struct State {
    founding: Membership,
    membership: Membership,
    membership_changes: BTreeMap<(u64, Hash32), (MembershipChange, Vec<Approval>)>,
    events: BTreeSet<Hash32>,
    consents: BTreeMap<ConsentId, Arc<VerifiedConsent>>,
    revocations: BTreeMap<ConsentId, BTreeMap<Hash32, Revocation>>,
    apps: BTreeMap<(Did, String), AppManifest>,
    decisions: BTreeMap<(Did, Did, String), (u64, Hash32, AppDecision)>,
    committed: BTreeMap<Did, Committed>,
    by_client: HashMap<Did, BTreeSet<ConsentId>>,
    by_app: HashMap<Did, BTreeSet<ConsentId>>,
    by_bank: HashMap<Did, BTreeSet<ConsentId>>,
}

impl State {
    /// The state before any event: only the founding members.
    pub fn new(genesis: &Genesis) -> Self {
        let membership = genesis.membership();
        Self {
            founding: membership.clone(),
            membership,
            membership_changes: BTreeMap::new(),
            events: BTreeSet::new(),
            consents: BTreeMap::new(),
            revocations: BTreeMap::new(),
            apps: BTreeMap::new(),
            decisions: BTreeMap::new(),
            committed: BTreeMap::new(),
            by_client: HashMap::new(),
            by_app: HashMap::new(),
            by_bank: HashMap::new(),
        }
    }

    /// True when the event with this id has been applied.
    pub fn contains(&self, event_id: &Hash32) -> bool {
        self.events.contains(event_id)
    }

    /// Applies a validated event. Returns false (and changes nothing) for an event
    /// already applied, however it arrived.
    pub fn apply(&mut self, event_id: Hash32, event: &ValidEvent) -> bool {
        if !self.events.insert(event_id) {
            return false;
        }
        match event {
            ValidEvent::Granted(consent) => {
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
                self.consents.insert(id, consent.clone());
            }
            ValidEvent::Revoked(revocation) => {
                self.revocations
                    .entry(revocation.consent_id)
                    .or_default()
                    .insert(event_id, revocation.clone());
            }
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
        true
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

    /// The revocation that applies to a consent: the earliest one made by its issuer or
    /// its bank (ties broken by event id).
    pub fn effective_revocation(&self, id: &ConsentId) -> Option<&Revocation> {
        let consent = self.consents.get(id)?;
        self.revocations
            .get(id)?
            .iter()
            .filter(|(_, r)| r.verify_for(consent).is_ok())
            .min_by_key(|(event_id, r)| (r.time, **event_id))
            .map(|(_, r)| r)
    }

    /// The event ids of a consent's revocations that verify for it (its issuer's or its
    /// bank's), in id order.
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

    /// A consent's status at `at`. A revocation counts from the moment it is known,
    /// whatever time it names: revoking is never delayed.
    pub fn consent_status(&self, id: &ConsentId, at: DateTime<Utc>) -> ConsentStatus {
        let Some(consent) = self.consents.get(id) else {
            return ConsentStatus::Unknown;
        };
        if self.effective_revocation(id).is_some() {
            return ConsentStatus::Revoked;
        }
        match consent.validity_at(at) {
            Validity::NotYetValid => ConsentStatus::NotYetValid,
            Validity::Active => ConsentStatus::Active,
            Validity::Expired => ConsentStatus::Expired,
        }
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

    /// How many events have been applied.
    pub fn event_count(&self) -> usize {
        self.events.len()
    }

    /// The ids of every known consent.
    pub fn consents_ids(&self) -> impl Iterator<Item = &ConsentId> {
        self.consents.keys()
    }

    /// How many consents are known.
    pub fn consent_count(&self) -> usize {
        self.consents.len()
    }

    /// The state digest: SHA-256 over the sorted ids of every applied event. State is a
    /// pure function of that set, so two nodes with the same events agree on it.
    pub fn digest(&self) -> Hash32 {
        let mut hasher = Sha256::new();
        hasher.update(b"consentnet/state/v1\n");
        for id in &self.events {
            hasher.update(id.0);
        }
        Hash32(hasher.finalize().into())
    }
}
