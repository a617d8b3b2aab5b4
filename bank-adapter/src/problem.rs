//! Machine-readable error codes as enums, and the Open Banking API's one error type: every refusal of the consent check and every error of a served call has its code in [`ObCode`], with its HTTP status, and is answered in the OBIE error shape.

use consentnet_identity::PopError;
use serde_json::{Value, json};

use crate::connector::ConnectorError;

/// Defines an enum of error codes, each with its wire code and HTTP status:
/// `as_str`, `status`, `ALL` (every code, for the check of the documentation) and
/// `Display`. Every HTTP surface family (node API, Open Banking, OAuth) has one.
#[macro_export]
macro_rules! problem_codes {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = ($status:literal, $code:literal),)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every code, in the order defined.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The machine-readable code on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $code,)+
                }
            }

            /// The HTTP status it is answered with.
            pub const fn status(self) -> u16 {
                match self {
                    $($name::$variant => $status,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

problem_codes! {
    /// The codes the unified Open Banking API answers with (`Code` in the error body).
    pub enum ObCode {
        /// No `Authorization` header.
        MissingAuthorization = (401, "missing_authorization"),
        /// Not `ConsentNet <id>` or `DPoP <id>`, or the id is not 64 hex digits.
        InvalidAuthorization = (401, "invalid_authorization"),
        /// No DPoP proof.
        MissingProof = (401, "missing_proof"),
        /// No `x-consentnet-app-version`.
        MissingAppVersion = (400, "missing_app_version"),
        /// The consent is not on this node's log.
        ConsentUnknown = (401, "consent_unknown"),
        /// The proof does not parse.
        ProofMalformed = (401, "proof_malformed"),
        /// The proof is not signed by the consent subject's key.
        ProofWrongKey = (401, "proof_wrong_key"),
        /// The proof's signature does not verify.
        ProofBadSignature = (401, "proof_bad_signature"),
        /// The proof names another method.
        ProofMethodMismatch = (401, "proof_method_mismatch"),
        /// The proof names another URL.
        ProofUrlMismatch = (401, "proof_url_mismatch"),
        /// The proof is too old or from the future.
        ProofStale = (401, "proof_stale"),
        /// The proof is bound to another consent id.
        ProofTokenMismatch = (401, "proof_token_mismatch"),
        /// The proof was used before.
        ProofReplayed = (401, "proof_replayed"),
        /// The proof lacks the server's DPoP nonce, or carries a stale one: retry with the
        /// one in `DPoP-Nonce` (RFC 9449 section 9).
        UseDpopNonce = (401, "use_dpop_nonce"),
        /// The replay cache has no room.
        ReplayCacheFull = (429, "replay_cache_full"),
        /// The app is over its rate at this bank.
        RateLimited = (429, "rate_limited"),
        /// The consent's validity has not begun.
        ConsentNotYetValid = (403, "consent_not_yet_valid"),
        /// The consent's validity has ended: its token is no longer valid (RFC 6750
        /// `invalid_token`).
        ConsentExpired = (401, "consent_expired"),
        /// The consent was revoked: its token is no longer valid.
        ConsentRevoked = (401, "consent_revoked"),
        /// The consent is for another bank.
        ConsentOtherBank = (403, "consent_other_bank"),
        /// The consent's issuer is not linked here as the accounts' holder.
        ConsentIssuerNotHolder = (403, "consent_issuer_not_holder"),
        /// The account in the path is not in the consent.
        AccountNotInConsent = (403, "account_not_in_consent"),
        /// No granted permission covers the endpoint.
        PermissionMissing = (403, "permission_missing"),
        /// This bank has not approved the app version.
        AppNotApproved = (403, "app_not_approved"),
        /// This bank suspended the app version.
        AppSuspended = (403, "app_suspended"),
        /// This bank does not allow the app the covering permission.
        PermissionNotAllowedForApp = (403, "permission_not_allowed_for_app"),
        /// A query parameter is malformed.
        InvalidQuery = (400, "invalid_query"),
        /// A date-time parameter is not ISO 8601.
        InvalidDateTime = (400, "invalid_date_time"),
        /// The body is not the JSON expected.
        MalformedJson = (400, "malformed_json"),
        /// An account access consent request lacks or misstates a field.
        InvalidConsentRequest = (400, "invalid_consent_request"),
        /// `Data.Initiation` lacks or misstates a field.
        InvalidInitiation = (400, "invalid_initiation"),
        /// The body names another consent than the one presented.
        ConsentIdMismatch = (400, "consent_id_mismatch"),
        /// No consent resource of the calling app has that id (another app's answers
        /// the same).
        ConsentResourceUnknown = (403, "consent_resource_unknown"),
        /// The consent resource is not authorised (funds confirmation).
        ConsentNotAuthorised = (403, "consent_not_authorised"),
        /// The consent names several accounts and the payment none.
        DebtorAccountRequired = (400, "debtor_account_required"),
        /// The body is not sent as `application/json`.
        UnsupportedMediaType = (415, "unsupported_media_type"),
        /// The body is larger than the endpoint accepts.
        BodyTooLarge = (413, "body_too_large"),
        /// No `x-idempotency-key`.
        MissingIdempotencyKey = (400, "missing_idempotency_key"),
        /// The consent carries no payment limits.
        NoPaymentLimits = (403, "no_payment_limits"),
        /// The payment would exceed the consent's limits.
        PaymentLimitExceeded = (403, "payment_limit_exceeded"),
        /// A future-dated payment would fall due after the consent ends.
        ScheduleOutsideConsent = (403, "schedule_outside_consent"),
        /// The payments journal cannot be written.
        LedgerUnavailable = (503, "ledger_unavailable"),
        /// The path names no resource of the unified API.
        NotFound = (404, "not_found"),
        /// The id in the path names nothing under this consent (OBIE's
        /// `UK.OBIE.Resource.NotFound`, a 400).
        ResourceNotFound = (400, "resource_not_found"),
        /// The bank core refused the request.
        RefusedByBank = (400, "refused_by_bank"),
        /// This bank does not offer the resource (an optional OBIE endpoint).
        NotOffered = (404, "not_offered"),
        /// The idempotency key was used for another request.
        IdempotencyConflict = (409, "idempotency_conflict"),
        /// The bank core did not answer in time.
        BankTimeout = (504, "bank_timeout"),
        /// The bank core is unreachable or answered nonsense.
        BankUnavailable = (502, "bank_unavailable"),
        /// The bank core answered with an error the bank's mapping does not expect.
        BankCoreRefused = (502, "bank_core_refused"),
        /// An `x-fapi-*` request header is malformed or repeated.
        InvalidFapiHeader = (400, "invalid_fapi_header"),
    }
}

/// An Open Banking error: its code (which gives the HTTP status) and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ObError {
    /// The specific reason, e.g. [`ObCode::ConsentRevoked`].
    pub code: ObCode,
    /// For people.
    pub message: String,
    /// For a `429`: when to ask again, in seconds (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl ObError {
    /// An error with this code and message.
    pub fn new(code: ObCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error, telling the caller to ask again after `seconds`.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// A refused proof of possession.
    pub fn from_proof(error: PopError) -> Self {
        let code = match &error {
            PopError::TooLarge(_) | PopError::Malformed(_) | PopError::WrongHeader => {
                ObCode::ProofMalformed
            }
            PopError::WrongKey { .. } => ObCode::ProofWrongKey,
            PopError::BadSignature => ObCode::ProofBadSignature,
            PopError::MethodMismatch { .. } => ObCode::ProofMethodMismatch,
            PopError::UrlMismatch { .. } => ObCode::ProofUrlMismatch,
            PopError::Stale { .. } => ObCode::ProofStale,
            PopError::TokenMismatch => ObCode::ProofTokenMismatch,
        };
        Self::new(code, error.to_string())
    }

    /// The `WWW-Authenticate` challenge a `401` carries (RFC 6750 section 3, RFC 9449
    /// section 7.1): the DPoP scheme with the algorithms taken, and the error unless the
    /// request carried no credentials at all.
    pub fn challenge(&self) -> Option<String> {
        let algs = consentnet_identity::jose::ALGORITHMS.join(" ");
        // A token that does not reach the resource (RFC 6750 section 3.1).
        if matches!(
            self.code,
            ObCode::PermissionMissing
                | ObCode::AccountNotInConsent
                | ObCode::PermissionNotAllowedForApp
        ) {
            return Some(format!(
                "DPoP error=\"insufficient_scope\", algs=\"{algs}\""
            ));
        }
        if self.status() != 401 {
            return None;
        }
        let error = match self.code {
            ObCode::MissingAuthorization => return Some(format!("DPoP algs=\"{algs}\"")),
            ObCode::MissingProof
            | ObCode::ProofMalformed
            | ObCode::ProofWrongKey
            | ObCode::ProofBadSignature
            | ObCode::ProofMethodMismatch
            | ObCode::ProofUrlMismatch
            | ObCode::ProofStale
            | ObCode::ProofTokenMismatch
            | ObCode::ProofReplayed => "invalid_dpop_proof",
            ObCode::UseDpopNonce => "use_dpop_nonce",
            _ => "invalid_token",
        };
        // A quoted-string: printable ASCII without quotes or backslashes.
        let description: String = self
            .message
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .filter(|c| !matches!(c, '"' | '\\'))
            .take(200)
            .collect();
        Some(format!(
            "DPoP error=\"{error}\", error_description=\"{description}\", algs=\"{algs}\""
        ))
    }

    /// The OBIE 4-character error code for the status.
    fn error_code(&self) -> &'static str {
        match self.status() {
            400 => "U001",
            401 => "U003",
            403 => "U004",
            404 => "U005",
            429 => "U006",
            502 => "U007",
            504 => "U008",
            _ => "U000",
        }
    }

    /// The OBIE error body, with the interaction id.
    pub fn body(&self, interaction: &str) -> Value {
        let message: String = self.message.chars().take(500).collect();
        json!({
            "Id": interaction.chars().take(40).collect::<String>(),
            "Code": self.code.as_str(),
            "Message": message,
            "Errors": [{ "ErrorCode": self.error_code(), "Message": message }],
        })
    }
}

impl From<ConnectorError> for ObError {
    fn from(error: ConnectorError) -> Self {
        if matches!(error, ConnectorError::CoreRefused { .. }) {
            // The core's own status and code are for the bank's logs and metrics.
            return Self::new(
                ObCode::BankCoreRefused,
                "the bank's core refused the request; the bank's operator can see why",
            );
        }
        let message = error.to_string();
        let code = match error {
            ConnectorError::NotFound(_) => ObCode::ResourceNotFound,
            ConnectorError::NotOffered(_) => ObCode::NotOffered,
            ConnectorError::Refused { .. } => ObCode::RefusedByBank,
            ConnectorError::IdempotencyConflict => ObCode::IdempotencyConflict,
            ConnectorError::Timeout => ObCode::BankTimeout,
            ConnectorError::Unavailable(_) | ConnectorError::CoreRefused { .. } => {
                ObCode::BankUnavailable
            }
        };
        Self::new(code, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_distinct_snake_case_with_an_error_status() {
        let codes: std::collections::BTreeSet<&str> =
            ObCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(codes.len(), ObCode::ALL.len());
        for code in ObCode::ALL {
            assert!(
                code.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
            assert!((400..600).contains(&code.status()), "{code}");
            assert_eq!(code.to_string(), code.as_str());
        }
    }

    #[test]
    fn the_body_is_in_the_obie_shape() {
        let body = ObError::new(ObCode::AppSuspended, "suspended").body("abc");
        assert_eq!(body["Code"], "app_suspended");
        assert_eq!(body["Errors"][0]["ErrorCode"], "U004");
        assert_eq!(body["Id"], "abc");
    }

    #[test]
    fn every_401_carries_the_dpop_challenge_naming_its_error() {
        let challenge = |code: ObCode, message: &str| ObError::new(code, message).challenge();
        assert_eq!(
            challenge(ObCode::MissingAuthorization, "none").as_deref(),
            Some("DPoP algs=\"Ed25519 EdDSA\"")
        );
        assert_eq!(
            challenge(ObCode::ConsentRevoked, "consent \"x\" revoked").as_deref(),
            Some(
                "DPoP error=\"invalid_token\", error_description=\"consent x revoked\", algs=\"Ed25519 EdDSA\""
            )
        );
        assert!(
            challenge(ObCode::ProofStale, "old")
                .unwrap()
                .starts_with("DPoP error=\"invalid_dpop_proof\"")
        );
        assert_eq!(challenge(ObCode::AppSuspended, "no"), None);
        assert_eq!(
            challenge(ObCode::PermissionMissing, "no").as_deref(),
            Some("DPoP error=\"insufficient_scope\", algs=\"Ed25519 EdDSA\"")
        );
        for code in ObCode::ALL {
            let insufficient = matches!(
                code,
                ObCode::PermissionMissing
                    | ObCode::AccountNotInConsent
                    | ObCode::PermissionNotAllowedForApp
            );
            assert_eq!(
                challenge(*code, "m").is_some(),
                code.status() == 401 || insufficient,
                "{code}"
            );
        }
    }
}
