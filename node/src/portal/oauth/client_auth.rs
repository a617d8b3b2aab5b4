//! Client authentication by `private_key_jwt` (RFC 7523): the assertion is signed by the app's DID key, fresh, for this server, and used once.

use chrono::{DateTime, Utc};
use consentnet_identity::Did;
use consentnet_identity::jose::Jws;
use serde_json::Value;

use super::error::OAuthError;
use super::params::Params;
use super::server::AuthServer;
use super::{ASSERTION_TYPE, LEEWAY_SECS, MAX_ASSERTION_LIFETIME_SECS};
use consentnet_identity::util::lock;

impl AuthServer {
    /// `private_key_jwt` (RFC 7523): the assertion is signed by the key of the DID that is
    /// the `client_id`, names this server or `endpoint` as audience, is unexpired and used
    /// once, and the app is in the catalog (`in_catalog`, asked only once the signature
    /// verified, so a caller can check the signature before taking the log's lock and
    /// hold it only for the lookup). Returns the app's DID.
    pub fn authenticate(
        &self,
        in_catalog: impl FnOnce(&Did) -> bool,
        params: &Params,
        endpoint: &str,
        now: DateTime<Utc>,
    ) -> Result<Did, OAuthError> {
        match params.get("client_assertion_type") {
            Some(ASSERTION_TYPE) => {}
            Some(other) => {
                return Err(OAuthError::invalid_client(format!(
                    "client_assertion_type {other:?} is not supported; use {ASSERTION_TYPE}"
                )));
            }
            None => {
                return Err(OAuthError::invalid_client(
                    "client authentication is required: private_key_jwt with the app's DID key",
                ));
            }
        }
        let assertion = params
            .get("client_assertion")
            .ok_or_else(|| OAuthError::invalid_client("client_assertion is required"))?;
        let jws = Jws::decode(assertion)
            .map_err(|e| OAuthError::invalid_client(format!("client_assertion: {e}")))?;
        let issuer = jws
            .claim_str("iss")
            .ok_or_else(|| OAuthError::invalid_client("client_assertion has no iss"))?;
        if jws.claim_str("sub") != Some(issuer) {
            return Err(OAuthError::invalid_client(
                "client_assertion's sub must equal its iss (the client_id)",
            ));
        }
        if let Some(client_id) = params.get("client_id")
            && client_id != issuer
        {
            return Err(OAuthError::invalid_client(
                "client_id differs from the client_assertion's iss",
            ));
        }
        let client = Did::parse(issuer).map_err(|e| {
            OAuthError::invalid_client(format!("client_id must be the app's did:key: {e}"))
        })?;
        jws.verify(&client)
            .map_err(|e| OAuthError::invalid_client(format!("client_assertion: {e}")))?;
        let audience_ok = match jws.claims.get("aud") {
            Some(Value::String(aud)) => aud == &self.issuer || aud == endpoint,
            Some(Value::Array(auds)) => auds
                .iter()
                .any(|a| a.as_str() == Some(&self.issuer) || a.as_str() == Some(endpoint)),
            _ => false,
        };
        if !audience_ok {
            return Err(OAuthError::invalid_client(format!(
                "client_assertion's aud must name {} or {endpoint}",
                self.issuer
            )));
        }
        let now_secs = now.timestamp();
        let expires = jws
            .claim_time("exp")
            .ok_or_else(|| OAuthError::invalid_client("client_assertion has no exp"))?;
        if expires < now_secs - LEEWAY_SECS {
            return Err(OAuthError::invalid_client("client_assertion has expired"));
        }
        if expires > now_secs + MAX_ASSERTION_LIFETIME_SECS {
            return Err(OAuthError::invalid_client(format!(
                "client_assertion expires more than {MAX_ASSERTION_LIFETIME_SECS} s from now"
            )));
        }
        // FAPI 2.0: up to 10 s ahead is a clock offset; 60 s or more is refused.
        for claim in ["iat", "nbf"] {
            if jws
                .claim_time(claim)
                .is_some_and(|at| at >= now_secs + LEEWAY_SECS)
            {
                return Err(OAuthError::invalid_client(format!(
                    "client_assertion's {claim} is {LEEWAY_SECS} s or more in the future"
                )));
            }
        }
        let jti = jws
            .claim_str("jti")
            .filter(|j| (1..=128).contains(&j.len()))
            .ok_or_else(|| OAuthError::invalid_client("client_assertion needs a jti"))?;
        if !in_catalog(&client) {
            return Err(OAuthError::invalid_client(format!(
                "{client} has published no app to the catalog"
            )));
        }
        lock(&self.assertions).first_use(&format!("{client} {jti}"), expires, now_secs)?;
        Ok(client)
    }
}
