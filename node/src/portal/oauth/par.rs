//! Pushed authorization requests (RFC 9126): the request is checked and what it asks for is read from `scope` and `authorization_details`.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use consentnet_consent_chain::State;
use consentnet_consent_chain::event::AppAction;
use consentnet_identity::consent::{PaymentLimits, Period};
use consentnet_identity::permissions::check_permission_set;
use consentnet_identity::{Did, Permission, b64url_decode};
use serde_json::Value;

use super::error::{OAuthCode, OAuthError};
use super::intents::Intent;
use super::params::Params;
use super::server::AuthServer;
use super::session::{Asked, Decision, Session};
use super::{
    ACCOUNTS_SCOPE, DEFAULT_VALIDITY_DAYS, DETAILS_TYPE, MAX_SESSIONS, MAX_VALIDITY_DAYS,
    REQUEST_URI_LIFETIME_SECS, REQUEST_URI_PREFIX,
};
use consentnet_identity::util::{lock, random_hex};

impl AuthServer {
    /// A pushed authorization request (RFC 9126) from `client`, already authenticated
    /// for `/oauth/par`, with the DPoP proof it carried if any: checks the request, the
    /// proof and `dpop_jkt`, and the bank's approval of the app; returns the
    /// `request_uri` and its lifetime.
    pub fn push(
        &self,
        state: &State,
        (client, dpop): (Did, Option<&str>),
        params: &Params,
        now: DateTime<Utc>,
    ) -> Result<(String, i64), OAuthError> {
        self.dpop_binding(&client, dpop, params, now)?;
        if params.get("request_uri").is_some() {
            return Err(OAuthError::invalid_request(
                "request_uri must not be pushed (RFC 9126 section 2.1)",
            ));
        }
        if params.get("request").is_some() {
            return Err(OAuthError::new(
                OAuthCode::RequestNotSupported,
                "request objects are not supported; send the parameters as a form",
            ));
        }
        match params.require("response_type")? {
            "code" => {}
            other => {
                return Err(OAuthError::new(
                    OAuthCode::UnsupportedResponseType,
                    format!("response_type {other:?} is not supported; use code"),
                ));
            }
        }
        let redirect_uri = params.require("redirect_uri")?;
        // FAPI 2.0: no authorization response over plain HTTP, but to a native app's
        // loopback listener (RFC 8252 section 7.3).
        if redirect_uri.starts_with("http://")
            && !consentnet_consent_chain::validate::https_or_loopback(redirect_uri)
        {
            return Err(OAuthError::invalid_request(
                "redirect_uri: http:// is allowed on a loopback address only; use https://",
            ));
        }
        let challenge = params.get("code_challenge").ok_or_else(|| {
            OAuthError::invalid_request("PKCE is required: send code_challenge (S256)")
        })?;
        if params.get("code_challenge_method") != Some("S256") {
            return Err(OAuthError::invalid_request(
                "code_challenge_method must be S256",
            ));
        }
        if challenge.len() != 43 || b64url_decode(challenge).is_none() {
            return Err(OAuthError::invalid_request(
                "code_challenge must be the base64url SHA-256 of the code_verifier (43 characters)",
            ));
        }
        let client_state = params.get("state").map(str::to_owned);
        if client_state.as_ref().is_some_and(|s| s.len() > 512) {
            return Err(OAuthError::invalid_request(
                "state is longer than 512 characters",
            ));
        }
        let intent = self.pushed_intent(params, &client, now)?;
        let mut asked = match &intent {
            Some(intent) => self.asked_for(params, &client, intent)?,
            None => self.asked(params, &client, now)?,
        };
        let replaces = self.grant_action(state, &client, params, &mut asked, now)?;
        // The app must be approved here, through a version that registered this redirect.
        let approved: Vec<(String, BTreeSet<Permission>, bool)> = state
            .catalog(&self.bank)
            .into_iter()
            .filter(|entry| entry.manifest.app == client)
            .filter_map(|entry| match entry.decision.map(|d| d.action) {
                Some(AppAction::Approve { permissions, .. }) => Some((
                    entry.manifest.version.clone(),
                    permissions,
                    entry
                        .manifest
                        .redirect_uris
                        .iter()
                        .any(|r| r == redirect_uri),
                )),
                _ => None,
            })
            .collect();
        if approved.is_empty() {
            return Err(OAuthError::unauthorized_client(format!(
                "{client} has no version approved by this bank"
            )));
        }
        let (version, allowed, _) = approved
            .into_iter()
            .filter(|(_, _, registered)| *registered)
            .max_by(|a, b| a.0.cmp(&b.0))
            .ok_or_else(|| {
                OAuthError::invalid_request(
                    "redirect_uri is not registered in the manifest of an approved version",
                )
            })?;
        let refused: Vec<&str> = asked
            .permissions
            .iter()
            .filter(|p| !allowed.contains(p))
            .map(|p| p.as_str())
            .collect();
        if !refused.is_empty() {
            let why = format!("this bank does not allow the app {}", refused.join(", "));
            // Asked by scope, it is the scope that is refused (RFC 6749 section 4.1.2.1).
            return Err(if params.get("authorization_details").is_none() {
                OAuthError::new(OAuthCode::InvalidScope, why)
            } else {
                OAuthError::invalid_details(why)
            });
        }
        asked.app_version = version;
        asked.app_name = state.app_name(&client).unwrap_or_default().to_owned();
        let handle = random_hex(16);
        let session = Session {
            handle: handle.clone(),
            asked,
            redirect_uri: redirect_uri.to_owned(),
            state: client_state,
            code_challenge: challenge.to_owned(),
            csrf: random_hex(16),
            browser: None,
            intent: intent.map(|i| i.id),
            replaces,
            created: now,
            decision: Decision::Pending,
        };
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, s| !s.expired(now));
        if sessions.len() >= MAX_SESSIONS {
            return Err(OAuthError::new(
                OAuthCode::TemporarilyUnavailable,
                "too many authorizations in progress; retry shortly",
            ));
        }
        sessions.insert(handle.clone(), session);
        Ok((
            format!("{REQUEST_URI_PREFIX}{handle}"),
            REQUEST_URI_LIFETIME_SECS,
        ))
    }

    /// The DPoP key the code will be bound to (RFC 9449 section 10): a proof sent with
    /// the request must be the client's own and fresh, and `dpop_jkt`, when given, must
    /// be the thumbprint of the client's key, the only key this server binds tokens to
    /// (so every code is bound to it, whether or not the client said so).
    fn dpop_binding(
        &self,
        client: &Did,
        dpop: Option<&str>,
        params: &Params,
        now: DateTime<Utc>,
    ) -> Result<(), OAuthError> {
        if dpop.is_some() {
            let request = consentnet_identity::PopRequest {
                method: "POST",
                url: &self.url("/oauth/par"),
                access_token: "",
            };
            self.check_proof(client, dpop, request, now)
                .map_err(super::dpop::ProofRefusal::oauth)?;
        }
        if let Some(jkt) = params.get("dpop_jkt") {
            let own = consentnet_identity::jose::jwk_thumbprint(client);
            if !consentnet_identity::util::constant_time_eq(jkt.as_bytes(), own.as_bytes()) {
                return Err(OAuthError::invalid_dpop(
                    "dpop_jkt is not the thumbprint of the client's key, the key its tokens are bound to",
                ));
            }
        }
        Ok(())
    }

    /// What the request asks for, from `authorization_details` and `scope`.
    fn asked(
        &self,
        params: &Params,
        client: &Did,
        now: DateTime<Utc>,
    ) -> Result<Asked, OAuthError> {
        let mut permissions = BTreeSet::new();
        let mut payment_limits = None;
        let mut accounts = None;
        let mut purpose = None;
        let mut valid_until = now + Duration::days(DEFAULT_VALIDITY_DAYS);
        if let Some(scope) = params.get("scope") {
            for value in scope.split(' ').filter(|s| !s.is_empty()) {
                match value {
                    "openid" => {}
                    "accounts" => permissions.extend(ACCOUNTS_SCOPE),
                    "payments" => {
                        permissions.insert(Permission::CreateDomesticPayments);
                        payment_limits = Some(default_payment_limits());
                    }
                    other => {
                        return Err(OAuthError::new(
                            OAuthCode::InvalidScope,
                            format!("scope {other:?} is unknown; use accounts and/or payments"),
                        ));
                    }
                }
            }
        }
        if let Some(text) = params.get("authorization_details") {
            let details: Vec<Value> = consentnet_identity::strict::from_str(text).map_err(|e| {
                OAuthError::invalid_details(format!(
                    "authorization_details is not a JSON array: {e}"
                ))
            })?;
            let [detail] = details.as_slice() else {
                return Err(OAuthError::invalid_details(
                    "send exactly one authorization_details entry",
                ));
            };
            let object = detail.as_object().ok_or_else(|| {
                OAuthError::invalid_details("an authorization_details entry is a JSON object")
            })?;
            for (name, value) in object {
                match name.as_str() {
                    "type" if value == DETAILS_TYPE => {}
                    "type" => {
                        return Err(OAuthError::invalid_details(format!(
                            "type must be {DETAILS_TYPE:?}"
                        )));
                    }
                    "bank" if value.as_str() == Some(self.bank.as_str()) => {}
                    "bank" => {
                        return Err(OAuthError::invalid_details(format!(
                            "bank must be this bank, {}",
                            self.bank
                        )));
                    }
                    "permissions" => {
                        let codes: Vec<String> =
                            serde_json::from_value(value.clone()).map_err(|_| {
                                OAuthError::invalid_details("permissions is a list of codes")
                            })?;
                        for code in codes {
                            permissions.insert(code.parse::<Permission>().map_err(|e| {
                                OAuthError::invalid_details(format!("permissions: {e}"))
                            })?);
                        }
                    }
                    "payment_limits" => {
                        payment_limits =
                            Some(serde_json::from_value(value.clone()).map_err(|e| {
                                OAuthError::invalid_details(format!("payment_limits: {e}"))
                            })?);
                    }
                    "accounts" => {
                        accounts = Some(serde_json::from_value(value.clone()).map_err(|_| {
                            OAuthError::invalid_details("accounts is a list of account ids")
                        })?);
                    }
                    "purpose" => {
                        purpose = Some(
                            value
                                .as_str()
                                .ok_or_else(|| OAuthError::invalid_details("purpose is a string"))?
                                .to_owned(),
                        );
                    }
                    "valid_until" => {
                        valid_until = parse_until(value).ok_or_else(|| {
                            OAuthError::invalid_details(
                                "valid_until is an RFC 3339 time or a date (YYYY-MM-DD)",
                            )
                        })?;
                    }
                    other => {
                        return Err(OAuthError::invalid_details(format!(
                            "unknown field {other:?} in the {DETAILS_TYPE} entry"
                        )));
                    }
                }
            }
            if !object.contains_key("type") {
                return Err(OAuthError::invalid_details(format!(
                    "the entry needs type {DETAILS_TYPE:?}"
                )));
            }
        }
        if permissions.is_empty() {
            return Err(OAuthError::invalid_request(
                "say what is asked: scope (accounts, payments) or authorization_details",
            ));
        }
        check_permission_set(&permissions)
            .map_err(|e| OAuthError::invalid_details(e.to_string()))?;
        let pays = permissions.iter().any(|p| p.is_payment());
        if pays != payment_limits.is_some() {
            return Err(OAuthError::invalid_details(
                "payment_limits go with a payment permission, and only with one",
            ));
        }
        if valid_until <= now {
            return Err(OAuthError::invalid_details("valid_until is in the past"));
        }
        if valid_until > now + Duration::days(MAX_VALIDITY_DAYS) {
            return Err(OAuthError::invalid_details(format!(
                "valid_until is more than {MAX_VALIDITY_DAYS} days away"
            )));
        }
        let purpose = purpose.unwrap_or_else(|| "Access granted through OAuth".to_owned());
        if purpose.trim().is_empty() || purpose.chars().count() > 200 {
            return Err(OAuthError::invalid_details(
                "purpose must be 1 to 200 characters",
            ));
        }
        Ok(Asked {
            app: client.clone(),
            app_name: String::new(),
            app_version: String::new(),
            bank: self.bank.clone(),
            permissions,
            payment_limits,
            accounts,
            purpose,
            valid_until,
        })
    }
}

impl AuthServer {
    /// The OBIE consent resource a pushed request names, by `openbanking_intent_id` or
    /// in `claims` (as OBIE clients send it), if any; it must be the app's and waiting.
    fn pushed_intent(
        &self,
        params: &Params,
        client: &Did,
        now: DateTime<Utc>,
    ) -> Result<Option<Intent>, OAuthError> {
        let from_claims = match params.get("claims") {
            None => None,
            Some(text) => {
                let claims: Value = serde_json::from_str(text)
                    .map_err(|e| OAuthError::invalid_request(format!("claims is not JSON: {e}")))?;
                ["id_token", "userinfo"].iter().find_map(|part| {
                    claims[*part]["openbanking_intent_id"]["value"]
                        .as_str()
                        .map(str::to_owned)
                })
            }
        };
        let Some(id) = params
            .get("openbanking_intent_id")
            .map(str::to_owned)
            .or(from_claims)
        else {
            return Ok(None);
        };
        self.awaiting_intent(client, &id, now)
            .map(Some)
            .ok_or_else(|| {
                OAuthError::invalid_request(format!(
                    "openbanking_intent_id {id:?} is not a consent of this app waiting for authorisation"
                ))
            })
    }

    /// What a request for the consent resource `intent` asks: the resource's own terms.
    fn asked_for(
        &self,
        params: &Params,
        client: &Did,
        intent: &Intent,
    ) -> Result<Asked, OAuthError> {
        if params.get("authorization_details").is_some() {
            return Err(OAuthError::invalid_details(
                "a request for a consent resource takes its terms from the resource, not authorization_details",
            ));
        }
        for value in params.get("scope").unwrap_or_default().split(' ') {
            if !matches!(value, "" | "openid" | "accounts" | "payments") {
                return Err(OAuthError::new(
                    OAuthCode::InvalidScope,
                    format!("scope {value:?} does not go with a consent resource"),
                ));
            }
        }
        let mut asked = Asked {
            app: client.clone(),
            app_name: String::new(),
            app_version: String::new(),
            bank: self.bank.clone(),
            permissions: intent.permissions.clone(),
            payment_limits: None,
            accounts: None,
            purpose: "Account access asked for through Open Banking".into(),
            valid_until: intent.valid_until(),
        };
        if let (Some(initiation), Some(kind)) = (&intent.initiation, intent.payment_kind()) {
            // Exactly what the initiation pays: its amounts, within its dates.
            let ask = kind
                .ask(initiation)
                .map_err(|e| OAuthError::invalid_details(e.message))?;
            asked.payment_limits = Some(ask.limits);
            asked.accounts = initiation["DebtorAccount"]["Identification"]
                .as_str()
                .map(|debtor| vec![debtor.to_owned()]);
            asked.purpose = ask.purpose;
        }
        Ok(asked)
    }
}

/// The limits the `payments` scope asks for.
pub fn default_payment_limits() -> PaymentLimits {
    PaymentLimits {
        currency: "GBP".into(),
        max_per_payment: "250.00".into(),
        max_per_period: Some("1000.00".into()),
        period: Some(Period::Month),
    }
}

pub(super) fn parse_until(value: &Value) -> Option<DateTime<Utc>> {
    let text = value.as_str()?;
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(23, 59, 59)?.and_utc())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn until_takes_a_time_or_a_whole_day() {
        let day = parse_until(&json!("2027-01-31")).unwrap();
        assert_eq!(day.to_rfc3339(), "2027-01-31T23:59:59+00:00");
        assert!(parse_until(&json!("2027-01-31T10:00:00Z")).is_some());
        assert!(parse_until(&json!("soon")).is_none());
    }
}
