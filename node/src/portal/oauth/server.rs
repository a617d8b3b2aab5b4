//! The authorization server's state (sessions, seen ids, consent resources, client tokens), its metadata, and the small helpers its steps share: tokens, PKCE, constant-time comparison.

use consentnet_identity::jose::ALGORITHMS;
use std::collections::HashMap;
use std::sync::Mutex;

use consentnet_identity::{Did, b64url};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::DETAILS_TYPE;
use super::seen::SeenIds;
use super::session::Session;

/// The authorization server of one bank.
#[derive(Debug)]
pub struct AuthServer {
    /// The issuer identifier: the bank's public URL.
    pub issuer: String,
    pub(super) bank: Did,
    pub(super) sessions: Mutex<HashMap<String, Session>>,
    pub(super) assertions: Mutex<SeenIds>,
    pub(super) proofs: Mutex<SeenIds>,
    pub(super) intents: Mutex<super::intents::Intents>,
    pub(super) client_tokens: Mutex<super::client_tokens::ClientTokens>,
    pub(super) journal: Mutex<Option<super::intents_journal::Journal>>,
    pub(super) nonces: consentnet_bank_adapter::nonce::DpopNonces,
}

pub(super) fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// The PKCE S256 transform of a verifier (RFC 7636 section 4.2).
pub fn s256(verifier: &str) -> String {
    b64url(&sha256(verifier))
}

pub(super) fn is_pkce_text(text: &str) -> bool {
    (43..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

impl AuthServer {
    /// The authorization server of `bank`, at `issuer` (no trailing slash).
    pub fn new(issuer: &str, bank: Did) -> Self {
        Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            bank,
            sessions: Mutex::default(),
            assertions: Mutex::default(),
            proofs: Mutex::default(),
            intents: Mutex::default(),
            client_tokens: Mutex::default(),
            journal: Mutex::default(),
            nonces: Default::default(),
        }
    }

    /// The server keeping its consent resources in the journal at `path`: those kept
    /// there are replayed now.
    pub fn with_journal(
        self,
        path: &std::path::Path,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Self, super::intents_journal::JournalError> {
        let (journal, intents) = super::intents_journal::Journal::open(path, now)?;
        *consentnet_identity::util::lock(&self.intents) = intents;
        *consentnet_identity::util::lock(&self.journal) = Some(journal);
        Ok(self)
    }

    /// The same server, requiring a nonce in every DPoP proof when `required`.
    pub fn with_nonces(mut self, required: bool) -> Self {
        self.nonces = consentnet_bank_adapter::nonce::DpopNonces::new(required);
        self
    }

    /// The URL of an endpoint of this server, e.g. `/oauth/token`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// The authorization server metadata (RFC 8414).
    pub fn metadata(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "pushed_authorization_request_endpoint": self.url("/oauth/par"),
            "require_pushed_authorization_requests": true,
            "authorization_endpoint": self.url("/oauth/authorize"),
            "token_endpoint": self.url("/oauth/token"),
            "introspection_endpoint": self.url("/oauth/introspect"),
            "revocation_endpoint": self.url("/oauth/revoke"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ALGORITHMS,
            "introspection_endpoint_auth_methods_supported": ["private_key_jwt"],
            "introspection_endpoint_auth_signing_alg_values_supported": ALGORITHMS,
            "revocation_endpoint_auth_methods_supported": ["private_key_jwt"],
            "revocation_endpoint_auth_signing_alg_values_supported": ALGORITHMS,
            "dpop_signing_alg_values_supported": ALGORITHMS,
            "authorization_details_types_supported": [DETAILS_TYPE],
            "scopes_supported": ["openid", "accounts", "payments"],
            "authorization_response_iss_parameter_supported": true,
            "grant_management_endpoint": self.url(super::grants::GRANTS_PATH),
            "grant_management_actions_supported": ["create", "merge", "replace"],
            "grant_management_action_required": false,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_pkce_transform_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
