//! Who reads the log: a proof signed by a DID key (the client's, the app's, the bank's node key or a regulator's) for this node's public URL, and which consents that DID may read.

use axum::http::HeaderMap;
use chrono::Utc;
use consentnet_consent_chain::{Role, State as ConsentState};
use consentnet_identity::{Did, PopRequest, VerifiedConsent, proof_signer, verify_pop};

use super::{ApiCode, ApiError, AppState};

/// The header a signed read carries its proof in (the DPoP header of RFC 9449).
pub const READ_PROOF_HEADER: &str = "dpop";
/// How far a read proof's `iat` may be from the node's clock, either side.
pub const READ_PROOF_WINDOW_SECS: i64 = 60;

/// The DID that signed this read, once its proof verifies for `GET {public_url}{path}`.
pub(super) fn reader(state: &AppState, headers: &HeaderMap, path: &str) -> Result<Did, ApiError> {
    let proof = headers
        .get(READ_PROOF_HEADER)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                ApiCode::ReadProofRequired,
                "reads of consents need a DPoP proof signed by the client, the app, the bank or a regulator",
            )
        })?;
    let invalid = |e: consentnet_identity::PopError| {
        ApiError::new(ApiCode::ReadProofInvalid, format!("DPoP proof: {e}"))
    };
    let signer = proof_signer(proof).map_err(invalid)?;
    let url = format!("{}{path}", state.public_url.trim_end_matches('/'));
    let request = PopRequest {
        method: "GET",
        url: &url,
        access_token: "",
    };
    verify_pop(proof, &signer, request, Utc::now(), READ_PROOF_WINDOW_SECS).map_err(invalid)?;
    Ok(signer)
}

/// True when `reader` is a regulator member, who may read every consent.
pub(super) fn is_regulator(state: &ConsentState, reader: &Did) -> bool {
    state.membership().has_role(reader, Role::Regulator)
}

/// True when `reader` may read `consent`: its client, its app, its bank, or a regulator.
pub(super) fn may_read(state: &ConsentState, reader: &Did, consent: &VerifiedConsent) -> bool {
    *reader == consent.issuer
        || *reader == consent.terms.app
        || *reader == consent.terms.bank
        || is_regulator(state, reader)
}
