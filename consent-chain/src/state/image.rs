//! The state as a serializable image: what a persisted snapshot holds, and the state rebuilt from one without re-verifying what was verified before it was stored.

use std::collections::BTreeMap;
use std::sync::Arc;

use consentnet_identity::{ConsentError, ConsentId, Did, Hash32, Revocation, VerifiedConsent};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Committed, SetSum, State};
use crate::event::{AppDecision, AppManifest, Approval, MembershipChange};
use crate::genesis::Genesis;

/// Everything [`State`] holds, in a form that serializes. Indexes are derived again on load.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateImage {
    membership_changes: Vec<(u64, Hash32, MembershipChange, Vec<Approval>)>,
    /// The signed credentials of every consent.
    consents: Vec<Value>,
    revocations: Vec<(ConsentId, Hash32, Revocation)>,
    apps: Vec<AppManifest>,
    decisions: Vec<(u64, Hash32, AppDecision)>,
    committed: Vec<(Did, Committed)>,
    /// Revocations of archived consents not yet written beside them.
    late: Vec<(Hash32, Revocation)>,
    /// The digest's sums over every consent and revocation ever applied.
    consent_sum: SetSum,
    revocation_sum: SetSum,
}

impl State {
    /// This state's image.
    pub fn image(&self) -> StateImage {
        StateImage {
            membership_changes: self
                .membership_changes
                .iter()
                .map(|((time, id), (change, approvals))| {
                    (*time, *id, change.clone(), approvals.clone())
                })
                .collect(),
            consents: self
                .consents
                .values()
                .map(|consent| consent.credential.clone())
                .collect(),
            revocations: self
                .revocations
                .iter()
                .flat_map(|(consent, by_event)| {
                    by_event
                        .iter()
                        .map(|(event_id, revocation)| (*consent, *event_id, revocation.clone()))
                })
                .collect(),
            apps: self.apps.values().cloned().collect(),
            decisions: self.decisions.values().cloned().collect(),
            committed: self
                .committed
                .iter()
                .map(|(bank, counts)| (bank.clone(), *counts))
                .collect(),
            late: self
                .late
                .values()
                .flat_map(|held| held.iter().map(|(id, r)| (*id, r.clone())))
                .collect(),
            consent_sum: self.consent_sum,
            revocation_sum: self.revocation_sum,
        }
    }

    /// The state an image describes, over `genesis`. Credentials are read back as this
    /// node's own store holds them: their shape and terms are checked, their proofs
    /// (verified before they were stored) are not.
    pub fn from_image(genesis: &Genesis, image: StateImage) -> Result<Self, ConsentError> {
        let mut state = State::new(genesis);
        for (time, id, change, approvals) in image.membership_changes {
            state
                .membership_changes
                .insert((time, id), (change, approvals));
        }
        state.recompute_membership();
        for credential in &image.consents {
            let consent = Arc::new(VerifiedConsent::from_trusted_store(credential)?);
            state.index_consent(consent);
        }
        for (consent, event_id, revocation) in image.revocations {
            state
                .revocations
                .entry(consent)
                .or_default()
                .insert(event_id, revocation);
        }
        for manifest in image.apps {
            state
                .apps
                .insert((manifest.app.clone(), manifest.version.clone()), manifest);
        }
        for (time, event_id, decision) in image.decisions {
            let key = (
                decision.bank.clone(),
                decision.app.clone(),
                decision.version.clone(),
            );
            state.decisions.insert(key, (time, event_id, decision));
        }
        state.committed = image.committed.into_iter().collect::<BTreeMap<_, _>>();
        for (event_id, revocation) in image.late {
            state
                .late
                .entry(revocation.consent_id)
                .or_default()
                .insert(event_id, revocation);
        }
        state.consent_sum = image.consent_sum;
        state.revocation_sum = image.revocation_sum;
        Ok(state)
    }
}
