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
