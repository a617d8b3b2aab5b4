//! Client credentials (RFC 6749 section 4.4): a short-lived, DPoP-bound token an app uses for its own consent resources, not a client's data; bounded in number, kept only until it expires.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use consentnet_bank_adapter::{ObCode, ObError};
use consentnet_identity::{Did, PopRequest};
use serde_json::{Value, json};

use super::dpop::ProofRefusal;
use super::error::{OAuthCode, OAuthError};
use super::params::Params;
use super::server::AuthServer;
use consentnet_identity::util::{lock, random_hex};

/// How long a client credentials token lasts, in seconds.
pub const CLIENT_TOKEN_LIFETIME_SECS: i64 = 600;
/// Live client credentials tokens at most, over every app.
pub const MAX_CLIENT_TOKENS: usize = 10_000;
/// Live tokens one app may hold; a new one replaces its oldest.
pub const MAX_CLIENT_TOKENS_PER_APP: usize = 10;

/// A live token: its app and when it expires (seconds).
#[derive(Debug, Clone)]
pub struct ClientToken {
    app: Did,
    expires: i64,
}

/// Live tokens by value.
pub type ClientTokens = HashMap<String, ClientToken>;

fn refused(code: ObCode, message: impl Into<String>) -> ObError {
    ObError::new(code, message)
}

impl AuthServer {
    /// `grant_type=client_credentials` for the authenticated `client`, with a DPoP proof
    /// by its key: a token for its consent resources.
    pub(super) fn client_credentials(
        &self,
        client: &Did,
        params: &Params,
        dpop: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Value, OAuthError> {
        let scope = params.get("scope").unwrap_or("accounts");
        for value in scope.split(' ').filter(|s| !s.is_empty()) {
            if !matches!(
                value,
                "accounts"
                    | "payments"
                    | "openid"
                    | "grant_management_query"
                    | "grant_management_revoke"
            ) {
                return Err(OAuthError::new(
                    OAuthCode::InvalidScope,
                    format!(
                        "scope {value:?} is not offered with client credentials; use accounts or payments"
                    ),
                ));
            }
        }
        let request = PopRequest {
            method: "POST",
            url: &self.url("/oauth/token"),
            access_token: "",
        };
        self.check_proof(client, dpop, request, now)
            .map_err(ProofRefusal::oauth)?;
        let token = format!("cc-{}", random_hex(24));
        let now_secs = now.timestamp();
        let mut tokens = lock(&self.client_tokens);
        tokens.retain(|_, t| t.expires > now_secs);
        let mut own: Vec<(String, i64)> = tokens
            .iter()
            .filter(|(_, t)| &t.app == client)
            .map(|(k, t)| (k.clone(), t.expires))
            .collect();
        own.sort_by_key(|(_, expires)| *expires);
        let surplus = (own.len() + 1).saturating_sub(MAX_CLIENT_TOKENS_PER_APP);
        for (old, _) in own.into_iter().take(surplus) {
            tokens.remove(&old);
        }
        if tokens.len() >= MAX_CLIENT_TOKENS {
            return Err(OAuthError::new(
                OAuthCode::TemporarilyUnavailable,
                "too many client tokens are live; retry shortly",
            ));
        }
        tokens.insert(
            token.clone(),
            ClientToken {
                app: client.clone(),
                expires: now_secs + CLIENT_TOKEN_LIFETIME_SECS,
            },
        );
        Ok(json!({
            "access_token": token,
            "token_type": "DPoP",
            "expires_in": CLIENT_TOKEN_LIFETIME_SECS,
            "scope": scope,
        }))
    }

    /// The app a consent-resource call comes from: `Authorization: DPoP <client token>`
    /// and a fresh proof by the app's key for this method and URL.
    pub fn client_of(
        &self,
        authorization: Option<&str>,
        proof: Option<&str>,
        method: &str,
        url: &str,
        now: DateTime<Utc>,
    ) -> Result<Did, ObError> {
        let token = authorization
            .ok_or_else(|| {
                refused(
                    ObCode::MissingAuthorization,
                    "Authorization: DPoP <client credentials token> is required",
                )
            })?
            .strip_prefix("DPoP ")
            .ok_or_else(|| {
                refused(
                    ObCode::InvalidAuthorization,
                    "Authorization must be DPoP <client credentials token>",
                )
            })?
            .trim();
        let app = lock(&self.client_tokens)
            .get(token)
            .filter(|t| t.expires > now.timestamp())
            .map(|t| t.app.clone())
            .ok_or_else(|| {
                refused(
                    ObCode::InvalidAuthorization,
                    "the client credentials token is unknown or has expired; get a new one",
                )
            })?;
        let request = PopRequest {
            method,
            url,
            access_token: token,
        };
        self.check_proof(&app, proof, request, now)
            .map_err(|refusal| match refusal {
                ProofRefusal::Missing => refused(ObCode::MissingProof, "a DPoP proof is required"),
                ProofRefusal::Invalid(error) => ObError::from_proof(error),
                ProofRefusal::Replayed => {
                    refused(ObCode::ProofReplayed, "the DPoP proof was already used")
                }
                ProofRefusal::Nonce(error) => refused(ObCode::UseDpopNonce, error.to_string()),
                ProofRefusal::Busy(error) => {
                    refused(ObCode::RateLimited, error.description).retry_after(1)
                }
            })?;
        Ok(app)
    }
}
