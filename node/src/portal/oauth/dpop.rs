//! The authorization server's DPoP proofs (RFC 9449): each signed by the client's own key, for the endpoint called, fresh, used once, with this server's nonce when it requires one; and the key's thumbprint a pushed request binds its code to.

use chrono::{DateTime, Utc};
use consentnet_bank_adapter::nonce::NonceError;
use consentnet_identity::{Did, PopClaims, PopRequest, verify_pop};

use super::LEEWAY_SECS;
use super::error::{OAuthCode, OAuthError};
use super::server::AuthServer;
use consentnet_identity::util::lock;

/// Why a proof at the authorization server is refused, before it is said as an error of
/// the endpoint's family (OAuth or OBIE).
pub(super) enum ProofRefusal {
    /// No proof.
    Missing,
    /// Not signed by the client's key, or not for this request.
    Invalid(consentnet_identity::PopError),
    /// Seen before.
    Replayed,
    /// The server's nonce is missing or stale.
    Nonce(NonceError),
    /// The replay table is full.
    Busy(OAuthError),
}

impl ProofRefusal {
    /// The refusal in OAuth's words (RFC 9449 sections 5 and 8).
    pub(super) fn oauth(self) -> OAuthError {
        match self {
            ProofRefusal::Missing => {
                OAuthError::invalid_dpop("a DPoP proof signed by the app's key is required")
            }
            ProofRefusal::Invalid(error) => OAuthError::invalid_dpop(error.to_string()),
            ProofRefusal::Replayed => OAuthError::invalid_dpop("the DPoP proof was already used"),
            ProofRefusal::Nonce(error) => {
                OAuthError::new(OAuthCode::UseDpopNonce, error.to_string())
            }
            ProofRefusal::Busy(error) => error,
        }
    }
}

impl AuthServer {
    /// Checks the DPoP proof `proof` of `client` for `method` on `url` (with
    /// `access_token`, or none at the token endpoint and PAR): its key, its request, its
    /// freshness, its nonce, and that it was not used before.
    pub(super) fn check_proof(
        &self,
        client: &Did,
        proof: Option<&str>,
        request: PopRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<PopClaims, ProofRefusal> {
        let proof = proof.ok_or(ProofRefusal::Missing)?;
        let claims =
            verify_pop(proof, client, request, now, LEEWAY_SECS).map_err(ProofRefusal::Invalid)?;
        self.nonces
            .check(claims.nonce.as_deref(), now)
            .map_err(ProofRefusal::Nonce)?;
        lock(&self.proofs)
            .first_use(
                &format!("{client} {}", claims.jti),
                now.timestamp() + LEEWAY_SECS,
                now.timestamp(),
            )
            .map_err(|error| {
                if error.code == OAuthCode::TemporarilyUnavailable {
                    ProofRefusal::Busy(error)
                } else {
                    ProofRefusal::Replayed
                }
            })?;
        Ok(claims)
    }

    /// A fresh nonce for a `DPoP-Nonce` header.
    pub fn dpop_nonce(&self, now: DateTime<Utc>) -> String {
        self.nonces.issue(now)
    }

    /// `response` of a resource this server guards, with a fresh nonce on a `401` (and on
    /// every answer when nonces are required), as RFC 9449 section 9 has it.
    pub fn offer_nonce(&self, mut response: axum::response::Response) -> axum::response::Response {
        let unauthorized = response.status() == axum::http::StatusCode::UNAUTHORIZED;
        if (unauthorized || self.nonces.required())
            && let Ok(value) = axum::http::HeaderValue::from_str(&self.dpop_nonce(Utc::now()))
        {
            response
                .headers_mut()
                .insert(consentnet_bank_adapter::nonce::DPOP_NONCE, value);
        }
        response
    }
}

/// `router` with a fresh DPoP nonce on its `401`s (and on every answer when nonces are
/// required), from `server`.
pub(super) fn offering_nonces(
    router: axum::Router,
    server: std::sync::Arc<AuthServer>,
) -> axum::Router {
    router.layer(axum::middleware::map_response(
        move |response: axum::response::Response| {
            let server = server.clone();
            async move { server.offer_nonce(response) }
        },
    ))
}
