//! Consent and catalog state for the adapter's check, read from the node's own log.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use consentnet_bank_adapter::enforce::ConsentSource;
use consentnet_consent_chain::ConsentStatus;
use consentnet_consent_chain::event::AppAction;
use consentnet_identity::{ConsentId, Did, VerifiedConsent};

use crate::core::NodeService;

/// Consent and catalog state read from the node's log.
#[derive(Debug, Clone)]
pub struct LogConsents(pub Arc<NodeService>);

impl ConsentSource for LogConsents {
    fn consent_at(
        &self,
        id: &ConsentId,
        at: DateTime<Utc>,
    ) -> Option<(Arc<VerifiedConsent>, ConsentStatus)> {
        // The published state: the check of a live consent never waits on a synced
        // write. An ended one may be in the archive, read through a store view (the
        // replica's lock is taken only to make it).
        if let Some(found) = self.0.state().consent_at(id, at) {
            return Some(found);
        }
        match self.0.consent_record(id) {
            Ok(record) => record.map(|record| (record.consent.clone(), record.status(at))),
            Err(error) => {
                tracing::warn!(%error, "the archive of ended consents could not be read");
                None
            }
        }
    }

    fn app_decision(&self, bank: &Did, app: &Did, version: &str) -> Option<AppAction> {
        self.0.state().app_decision(bank, app, version)
    }
}
