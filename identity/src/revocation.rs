//! Revocation statements: a consent's issuer (or the bank it names) signs the consent id and a time.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::consent::{ConsentId, VerifiedConsent};
use crate::keys::{Did, KeyPair, verify_signature};
use crate::statement::statement_bytes;

/// The signing domain: these bytes can never be mistaken for another signed message.
const DOMAIN: &str = "revocation";
/// The largest revocation statement accepted, in bytes.
pub const MAX_REVOCATION_BYTES: usize = 4 * 1024;
const MAX_REASON_CHARS: usize = 200;

/// Why a revocation is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevocationError {
    /// The input is larger than [`MAX_REVOCATION_BYTES`].
    #[error("revocation is {size} bytes; the limit is {max}")]
    TooLarge {
        /// The input's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The input is not a revocation statement.
    #[error("malformed revocation: {0}")]
    Malformed(String),
    /// The signature is not the revoker's.
    #[error("revocation signature does not verify for {0}")]
    BadSignature(String),
    /// The revocation names another consent.
    #[error("revocation names consent {named}, not {expected}")]
    WrongConsent {
        /// The consent the revocation names.
        named: ConsentId,
        /// The consent it was checked against.
        expected: ConsentId,
    },
    /// The revoker is neither the consent's issuer nor its bank.
    #[error("{0} may not revoke this consent: only its issuer or its bank may")]
    NotEntitled(String),
}

/// A signed statement that a consent is revoked from `time` on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Revocation {
    /// The revoked consent.
    pub consent_id: ConsentId,
    /// Who revokes: the consent's issuer, or the bank it names.
    pub revoker: Did,
    /// When the revocation was made.
    pub time: DateTime<Utc>,
    /// An optional reason, e.g. `fraud` for a bank's revocation. Never personal data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Base64url Ed25519 signature over the domain tag and the canonical JSON of the other fields.
    pub signature: String,
}

impl Revocation {
    fn signed_bytes(
        consent_id: &ConsentId,
        revoker: &Did,
        time: &DateTime<Utc>,
        reason: Option<&str>,
    ) -> Vec<u8> {
        let mut fields = json!({
            "consentId": consent_id,
            "revoker": revoker,
            "time": time.to_rfc3339_opts(SecondsFormat::Millis, true),
        });
        if let Some(reason) = reason {
            fields["reason"] = json!(reason);
        }
        statement_bytes(DOMAIN, &fields).unwrap_or_else(|_| unreachable!("strings only"))
    }

    /// Signs a revocation of `consent_id` by `revoker`, made at `time`.
    pub fn sign(
        revoker: &KeyPair,
        consent_id: ConsentId,
        time: DateTime<Utc>,
        reason: Option<String>,
    ) -> Self {
        // Millisecond precision on the wire, so the signed bytes survive a round trip.
        let time = DateTime::from_timestamp_millis(time.timestamp_millis()).unwrap_or(time);
        let bytes = Self::signed_bytes(&consent_id, revoker.did(), &time, reason.as_deref());
        Self {
            consent_id,
            revoker: revoker.did().clone(),
            time,
            reason,
            signature: crate::b64url(&revoker.sign(&bytes)),
        }
    }

    /// Parses a revocation from JSON bytes and checks its signature.
    pub fn from_json(bytes: &[u8]) -> Result<Self, RevocationError> {
        if bytes.len() > MAX_REVOCATION_BYTES {
            return Err(RevocationError::TooLarge {
                size: bytes.len(),
                max: MAX_REVOCATION_BYTES,
            });
        }
        let revocation: Self = crate::strict::from_slice(bytes)
            .map_err(|e| RevocationError::Malformed(e.to_string()))?;
        revocation.verify_signature()?;
        Ok(revocation)
    }

    /// Checks the reason's bounds and that the revoker signed these fields.
    pub fn verify_signature(&self) -> Result<(), RevocationError> {
        if !self.time.timestamp_subsec_nanos().is_multiple_of(1_000_000) {
            return Err(RevocationError::Malformed(
                "time carries more than millisecond precision".into(),
            ));
        }
        if let Some(reason) = &self.reason
            && reason.chars().count() > MAX_REASON_CHARS
        {
            return Err(RevocationError::Malformed(format!(
                "reason is longer than {MAX_REASON_CHARS} characters"
            )));
        }
        let bytes = Self::signed_bytes(
            &self.consent_id,
            &self.revoker,
            &self.time,
            self.reason.as_deref(),
        );
        let signature = crate::b64url_decode(&self.signature)
            .ok_or_else(|| RevocationError::Malformed("signature is not base64url".into()))?;
        if verify_signature(&self.revoker, &bytes, &signature) {
            Ok(())
        } else {
            Err(RevocationError::BadSignature(self.revoker.to_string()))
        }
    }

    /// Checks the signature and that this revocation may revoke `consent`.
    pub fn verify_for(&self, consent: &VerifiedConsent) -> Result<(), RevocationError> {
        self.verify_signature()?;
        if self.consent_id != consent.id {
            return Err(RevocationError::WrongConsent {
                named: self.consent_id,
                expected: consent.id,
            });
        }
        if self.revoker != consent.issuer && self.revoker != consent.terms.bank {
            return Err(RevocationError::NotEntitled(self.revoker.to_string()));
        }
        Ok(())
    }

    /// The revocation as compact JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| unreachable!("plain fields serialize"))
    }
}
