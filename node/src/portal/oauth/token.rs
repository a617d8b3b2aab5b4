//! The token endpoint (code with PKCE and a DPoP proof, reuse detection), introspection and revocation of consents as tokens.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use consentnet_consent_chain::{ConsentStatus, State};
use consentnet_identity::jose::jwk_thumbprint;
use consentnet_identity::{ConsentId, Did, PopRequest, VerifiedConsent};
use serde_json::{Value, json};

use super::error::{OAuthCode, OAuthError};
use super::params::Params;
use super::server::{AuthServer, is_pkce_text, s256};
use super::session::{Asked, Decision, ReusedCode, TokenResponse};
use consentnet_identity::util::{constant_time_eq as bytes_eq, lock};

impl AuthServer {
    /// The token request (authorization code grant with PKCE and a DPoP proof by the
    /// app's key). `Err(Ok(_))` is a refusal; `Err(Err(reused))` is a code used twice,
    /// whose consent must be revoked before `invalid_grant` is answered.
    /// `in_catalog` is asked as by [`AuthServer::authenticate`].
    pub fn token(
        &self,
        in_catalog: impl FnOnce(&Did) -> bool,
        params: &Params,
        dpop: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<TokenResponse, Result<OAuthError, ReusedCode>> {
        let endpoint = self.url("/oauth/token");
        let client = self
            .authenticate(in_catalog, params, &endpoint, now)
            .map_err(Ok)?;
        match params.require("grant_type").map_err(Ok)? {
            "authorization_code" => {}
            other => {
                return Err(Ok(OAuthError::new(
                    OAuthCode::UnsupportedGrantType,
                    format!("grant_type {other:?} is not supported; use authorization_code"),
                )));
            }
        }
        let code = params.require("code").map_err(Ok)?;
        let mut sessions = lock(&self.sessions);
        let session = sessions
            .values_mut()
            .find(|s| matches!(&s.decision, Decision::Approved { code: c, .. } if bytes_eq(c.as_bytes(), code.as_bytes())))
            .ok_or_else(|| Ok(OAuthError::invalid_grant("the code is unknown or has expired")))?;
        let Decision::Approved {
            consent,
            code_expires,
            used,
            ..
        } = &mut session.decision
        else {
            unreachable!("found by its code");
        };
        // Another client presenting the code learns nothing and revokes nothing: only the
        // client it was issued to can show that the code leaked from it.
        if session.asked.app != client {
            return Err(Ok(OAuthError::invalid_grant(
                "the code was issued to another client",
            )));
        }
        if *used {
            return Err(Err(ReusedCode(*consent)));
        }
        if now > *code_expires {
            return Err(Ok(OAuthError::invalid_grant("the code has expired")));
        }
        if params.get("redirect_uri") != Some(session.redirect_uri.as_str()) {
            return Err(Ok(OAuthError::invalid_grant(
                "redirect_uri differs from the authorization request's",
            )));
        }
        let verifier = params.require("code_verifier").map_err(Ok)?;
        if !is_pkce_text(verifier)
            || !bytes_eq(s256(verifier).as_bytes(), session.code_challenge.as_bytes())
        {
            return Err(Ok(OAuthError::invalid_grant(
                "code_verifier does not match the code_challenge",
            )));
        }
        let request = PopRequest {
            method: "POST",
            url: &endpoint,
            access_token: "",
        };
        self.check_proof(&client, dpop, request, now)
            .map_err(|refusal| Ok(refusal.oauth()))?;
        *used = true;
        let consent = *consent;
        Ok(TokenResponse {
            access_token: consent.to_string(),
            token_type: "DPoP",
            expires_in: (session.asked.valid_until - now).num_seconds().max(0),
            authorization_details: vec![session.asked.details(Some(&consent))],
            app_version: session.asked.app_version.clone(),
            grant_id: consent.to_string(),
        })
    }

    /// Token introspection (RFC 7662) for the authenticated `client`: active only for
    /// its own usable consents at this bank; anything else is `{"active": false}`.
    pub fn introspect(
        &self,
        state: &State,
        client: &Did,
        token: &str,
        now: DateTime<Utc>,
    ) -> Value {
        let Some((consent, status)) = self.owned(state, client, token, now) else {
            return json!({ "active": false });
        };
        if status != ConsentStatus::Active {
            return json!({ "active": false });
        }
        let asked = Asked::of(&consent);
        json!({
            "active": true,
            "iss": self.issuer,
            "client_id": client,
            "sub": consent.issuer,
            "token_type": "DPoP",
            "iat": consent.terms.valid_from.timestamp(),
            "nbf": consent.terms.valid_from.timestamp(),
            "exp": consent.terms.valid_until.timestamp(),
            "cnf": { "jkt": jwk_thumbprint(client) },
            "authorization_details": [asked.details(Some(&consent.id))],
        })
    }

    /// Token revocation (RFC 7009): the consent to revoke when `token` is one of
    /// `client`'s usable consents at this bank; `None` when there is nothing to do.
    pub fn revocable(
        &self,
        state: &State,
        client: &Did,
        token: &str,
        now: DateTime<Utc>,
    ) -> Option<ConsentId> {
        let (consent, status) = self.owned(state, client, token, now)?;
        matches!(status, ConsentStatus::Active | ConsentStatus::NotYetValid).then_some(consent.id)
    }

    fn owned(
        &self,
        state: &State,
        client: &Did,
        token: &str,
        now: DateTime<Utc>,
    ) -> Option<(Arc<VerifiedConsent>, ConsentStatus)> {
        let id = ConsentId::parse(token.trim())?;
        let consent = state.consent(&id)?.clone();
        if &consent.terms.app != client || consent.terms.bank != self.bank {
            return None;
        }
        let status = state.consent_status(&id, now);
        Some((consent, status))
    }
}
