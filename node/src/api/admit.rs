//! Grant admission: the one rule that decides whether a submitted consent may enter the shared log through this node.
//!
//! A consent is admitted only by the node of the bank it names, and only when that bank
//! knows the signer as the holder of every account it names (its private account
//! links). Anyone can make a DID and sign a consent; only a bank's customer's consent is
//! stored and replicated. Other nodes refuse it before anything is stored, and gossip
//! refuses a grant in any feed but its bank's.

use std::sync::Arc;

use consentnet_consent_chain::Role;
use consentnet_consent_chain::validate::verify_credential;
use consentnet_identity::VerifiedConsent;
use serde_json::Value;

use super::{ApiCode, ApiError, AppState, blocking};

/// Verifies `credential` (through the replica's cache, so storing it costs no second
/// check) and checks that this node may admit it.
pub(crate) async fn admit_grant(
    state: &AppState,
    credential: &Value,
) -> Result<Arc<VerifiedConsent>, ApiError> {
    let verifier = state.service.read(|replica| replica.verifier());
    let credential = credential.clone();
    let consent = blocking(move || verify_credential(&verifier, &credential))
        .await?
        .map_err(|e| ApiError::new(ApiCode::InvalidConsent, e.to_string()))?;
    let bank = &consent.terms.bank;
    let is_bank = state
        .service
        .state()
        .membership()
        .has_role(bank, Role::Bank);
    if !is_bank {
        return Err(ApiError::new(
            ApiCode::UnknownBank,
            format!("consent names {bank}, which is not a bank in this consortium"),
        ));
    }
    if bank != state.service.did() {
        return Err(ApiError::new(
            ApiCode::GrantNotAtBank,
            format!(
                "consents for {} are admitted only by that bank's node; submit it there",
                consent.terms.bank
            ),
        ));
    }
    let held = state
        .links
        .as_ref()
        .map(|links| links.accounts_of(&consent.issuer))
        .unwrap_or_default();
    if held.is_empty() {
        return Err(ApiError::new(
            ApiCode::ConsentIssuerNotLinked,
            "the consent's signer is not linked at this bank; redeem a link code from the bank first",
        ));
    }
    held_below_limit(state, &consent)?;
    if let Some(account) = consent.terms.accounts.iter().find(|a| !held.contains(a)) {
        return Err(ApiError::new(
            ApiCode::ConsentIssuerNotLinked,
            format!(
                "the consent's signer is not linked at this bank as the holder of account {account}"
            ),
        ));
    }
    Ok(consent)
}

/// Refuses `consent` when its client already holds as many consents at this bank as
/// the bank allows (a consent already on the log is let through again).
fn held_below_limit(state: &AppState, consent: &VerifiedConsent) -> Result<(), ApiError> {
    let Some(bank) = &state.bank else {
        return Ok(());
    };
    let limit = bank.max_consents_per_client;
    let log = state.service.state();
    if log.consent(&consent.id).is_some() {
        return Ok(());
    }
    let held = log
        .consents_by_client(&consent.issuer)
        .iter()
        .filter_map(|id| log.consent(id))
        .filter(|held| held.terms.bank == consent.terms.bank)
        .count();
    if held >= limit {
        return Err(ApiError::new(
            ApiCode::ConsentLimitReached,
            format!(
                "the client holds {held} consents at this bank, the most it allows; revoked and expired ones count until they retire from the log"
            ),
        ));
    }
    Ok(())
}
