//! The OAuth error: an HTTP status, the RFC 6749 `error` code and a description for people.

/// An OAuth error (RFC 6749 section 5.2 and the RFCs that add codes): the HTTP status,
/// the `error` code and a description for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    /// The HTTP status.
    pub status: u16,
    /// The `error` code.
    pub code: &'static str,
    /// The `error_description`.
    pub description: String,
}

impl OAuthError {
    /// An error with any status and code.
    pub fn new(status: u16, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
        }
    }

    /// `invalid_request` (400).
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", description)
    }

    /// `invalid_client` (401).
    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(401, "invalid_client", description)
    }

    /// `invalid_grant` (400).
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(400, "invalid_grant", description)
    }

    /// `unauthorized_client` (400).
    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(400, "unauthorized_client", description)
    }

    /// `invalid_authorization_details` (400, RFC 9396).
    pub fn invalid_details(description: impl Into<String>) -> Self {
        Self::new(400, "invalid_authorization_details", description)
    }

    /// `invalid_dpop_proof` (400, RFC 9449).
    pub fn invalid_dpop(description: impl Into<String>) -> Self {
        Self::new(400, "invalid_dpop_proof", description)
    }

    /// `server_error` (500).
    pub fn server_error(description: impl Into<String>) -> Self {
        Self::new(500, "server_error", description)
    }
}
