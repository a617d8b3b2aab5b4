//! The OAuth error: a code from RFC 6749 and the RFCs that add codes (which gives the HTTP status), and a description for people.

use crate::api::ApiError;

consentnet_bank_adapter::problem_codes! {
    /// The `error` codes the authorization server answers with.
    pub enum OAuthCode {
        /// A missing, repeated or wrong parameter, or an unknown request.
        InvalidRequest = (400, "invalid_request"),
        /// Client authentication failed.
        InvalidClient = (401, "invalid_client"),
        /// The app has no version approved by this bank.
        UnauthorizedClient = (400, "unauthorized_client"),
        /// An unknown scope.
        InvalidScope = (400, "invalid_scope"),
        /// `grant_id` names no active grant of the client here (FAPI Grant Management).
        InvalidGrantId = (400, "invalid_grant_id"),
        /// Malformed or disallowed `authorization_details` (RFC 9396).
        InvalidAuthorizationDetails = (400, "invalid_authorization_details"),
        /// A `response_type` other than `code`.
        UnsupportedResponseType = (400, "unsupported_response_type"),
        /// A request object.
        RequestNotSupported = (400, "request_not_supported"),
        /// A `grant_type` other than `authorization_code`.
        UnsupportedGrantType = (400, "unsupported_grant_type"),
        /// An unknown, expired, reused or mismatched code.
        InvalidGrant = (400, "invalid_grant"),
        /// A missing or bad DPoP proof at the token endpoint (RFC 9449).
        InvalidDpopProof = (400, "invalid_dpop_proof"),
        /// The DPoP proof lacks this server's nonce, or has a stale one: retry with the
        /// one in `DPoP-Nonce` (RFC 9449 section 8).
        UseDpopNonce = (400, "use_dpop_nonce"),
        /// A browser key's request without the DID's signature.
        InvalidProof = (401, "invalid_proof"),
        /// The client pressed Deny (sent back to the app in the redirect).
        AccessDenied = (303, "access_denied"),
        /// The Deny form lacks this request's token or the browser's cookie.
        CsrfMismatch = (403, "csrf_mismatch"),
        /// The client IP is over its rate (with `Retry-After`).
        SlowDown = (429, "slow_down"),
        /// A bounded table is full, or the log cannot be written now.
        TemporarilyUnavailable = (503, "temporarily_unavailable"),
        /// Anything else that went wrong on this server.
        ServerError = (500, "server_error"),
    }
}

/// An OAuth error: the `error` code, which gives the HTTP status, and the
/// `error_description`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    /// The `error` code.
    pub code: OAuthCode,
    /// The `error_description`.
    pub description: String,
}

impl OAuthError {
    /// An error with this code.
    pub fn new(code: OAuthCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// `invalid_request` (400).
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(OAuthCode::InvalidRequest, description)
    }

    /// `invalid_client` (401).
    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(OAuthCode::InvalidClient, description)
    }

    /// `invalid_grant` (400).
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(OAuthCode::InvalidGrant, description)
    }

    /// `unauthorized_client` (400).
    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(OAuthCode::UnauthorizedClient, description)
    }

    /// `invalid_authorization_details` (400, RFC 9396).
    pub fn invalid_details(description: impl Into<String>) -> Self {
        Self::new(OAuthCode::InvalidAuthorizationDetails, description)
    }

    /// `invalid_dpop_proof` (400, RFC 9449).
    pub fn invalid_dpop(description: impl Into<String>) -> Self {
        Self::new(OAuthCode::InvalidDpopProof, description)
    }

    /// `server_error` (500).
    pub fn server_error(description: impl Into<String>) -> Self {
        Self::new(OAuthCode::ServerError, description)
    }
}

impl From<ApiError> for OAuthError {
    /// A refused write to the log, in OAuth's terms: the node API's code stays in the
    /// description.
    fn from(error: ApiError) -> Self {
        let code = match error.code.status() {
            503 => OAuthCode::TemporarilyUnavailable,
            400..=499 => OAuthCode::InvalidRequest,
            _ => OAuthCode::ServerError,
        };
        Self::new(code, format!("{}: {}", error.code, error.message))
    }
}
