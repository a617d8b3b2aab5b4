//! An authorization from the consent screen to the code: opened in one browser, denied, or approved by the client's wallet with a consent on the log.

use chrono::{DateTime, Duration, Utc};
use consentnet_bank_adapter::links::AccountHolders;
use consentnet_identity::{ConsentId, VerifiedConsent};

use super::error::{OAuthCode, OAuthError};
use super::server::AuthServer;
use super::session::{Decision, Session};
use super::{CODE_LIFETIME_SECS, LEEWAY_SECS, REQUEST_URI_PREFIX};
use consentnet_identity::util::{constant_time_eq as bytes_eq, lock, random_hex};

impl AuthServer {
    /// The session behind `request_uri`, for `client_id`, opened in the browser holding
    /// `browser` (a cookie value; `None` the first time, and a new one is assigned).
    /// Returns the session and the cookie value to set, if new.
    pub fn open(
        &self,
        client_id: &str,
        request_uri: &str,
        browser: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(Session, Option<String>), OAuthError> {
        let handle = request_uri
            .strip_prefix(REQUEST_URI_PREFIX)
            .ok_or_else(|| OAuthError::invalid_request("request_uri was not issued here"))?;
        let mut sessions = lock(&self.sessions);
        let session = sessions
            .get_mut(handle)
            .filter(|s| !s.expired(now))
            .ok_or_else(|| {
                OAuthError::invalid_request("request_uri is unknown or has expired; start again")
            })?;
        if session.asked.app.as_str() != client_id {
            return Err(OAuthError::invalid_request(
                "client_id does not match the pushed request",
            ));
        }
        match (&session.browser, browser) {
            (None, _) => {
                let cookie = random_hex(16);
                session.browser = Some(cookie.clone());
                Ok((session.clone(), Some(cookie)))
            }
            (Some(bound), Some(given)) if bound == given => Ok((session.clone(), None)),
            (Some(_), _) => Err(OAuthError::invalid_request(
                "this authorization is open in another browser",
            )),
        }
    }

    /// The session `handle` as the wallet sees it, if it is in progress.
    pub fn session(&self, handle: &str, now: DateTime<Utc>) -> Option<Session> {
        lock(&self.sessions)
            .get(handle)
            .filter(|s| !s.expired(now))
            .cloned()
    }

    /// The client says no on the consent page; `csrf` and `browser` must be the page's.
    pub fn deny(
        &self,
        handle: &str,
        csrf: Option<&str>,
        browser: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Session, OAuthError> {
        let mut sessions = lock(&self.sessions);
        let session = sessions
            .get_mut(handle)
            .filter(|s| !s.expired(now))
            .ok_or_else(|| OAuthError::invalid_request("this authorization has expired"))?;
        let csrf_ok = csrf.is_some_and(|c| bytes_eq(c.as_bytes(), session.csrf.as_bytes()));
        let browser_ok = matches!((&session.browser, browser), (Some(b), Some(g)) if bytes_eq(b.as_bytes(), g.as_bytes()));
        if !csrf_ok || !browser_ok {
            return Err(OAuthError::new(
                OAuthCode::CsrfMismatch,
                "the form did not come from this authorization's consent page",
            ));
        }
        if session.decision != Decision::Pending {
            return Err(OAuthError::invalid_request(
                "this authorization is already decided",
            ));
        }
        session.decision = Decision::Denied;
        let denied = session.clone();
        drop(sessions);
        if let Some(intent) = &denied.intent {
            self.intent_decided(intent, None, now);
        }
        Ok(denied)
    }

    /// The wallet approves `handle` with `consent`: it must grant what was asked (or
    /// less), to this app, at this bank, on accounts its issuer holds here. On success the
    /// session waits in `Approving` until [`AuthServer::approved`] or [`AuthServer::release`].
    pub fn begin_approval(
        &self,
        handle: &str,
        consent: &VerifiedConsent,
        holders: &dyn AccountHolders,
        now: DateTime<Utc>,
    ) -> Result<(), OAuthError> {
        let mut sessions = lock(&self.sessions);
        let session = sessions
            .get_mut(handle)
            .filter(|s| !s.expired(now))
            .ok_or_else(|| OAuthError::invalid_request("this authorization has expired"))?;
        if session.decision != Decision::Pending {
            return Err(OAuthError::invalid_request(
                "this authorization is already decided",
            ));
        }
        let asked = &session.asked;
        let terms = &consent.terms;
        let refuse = |why: String| Err(OAuthError::invalid_request(why));
        if terms.app != asked.app {
            return refuse(format!(
                "the consent is for {}, not {}",
                terms.app, asked.app
            ));
        }
        if terms.proof_key.is_some() {
            return refuse(
                "an app's OAuth consent is held by the app's own key: no proofKey".into(),
            );
        }
        if terms.bank != asked.bank {
            return refuse(format!(
                "the consent is for bank {}, not this bank",
                terms.bank
            ));
        }
        if !terms.permissions.is_subset(&asked.permissions) {
            return refuse("the consent grants permissions that were not asked for".into());
        }
        if terms.payment_limits.is_some() && terms.payment_limits != asked.payment_limits {
            return refuse("the consent's payment limits differ from those asked for".into());
        }
        if terms.valid_until > asked.valid_until + Duration::seconds(LEEWAY_SECS) {
            return refuse("the consent lasts longer than asked".into());
        }
        if let Some(named) = &asked.accounts
            && terms.accounts.iter().any(|a| !named.contains(a))
        {
            return refuse("the consent names accounts the app did not ask for".into());
        }
        if let Some(account) = terms
            .accounts
            .iter()
            .find(|a| !holders.holds(&consent.issuer, a))
        {
            return refuse(format!(
                "{} is not linked to account {account} at this bank",
                consent.issuer
            ));
        }
        session.decision = Decision::Approving;
        Ok(())
    }

    /// The consent of an approval is durable on the log: issue the code. Answers the
    /// grant it replaces, if the request merged into or replaced one.
    pub fn approved(
        &self,
        handle: &str,
        consent: ConsentId,
        now: DateTime<Utc>,
    ) -> Option<ConsentId> {
        let mut intent = None;
        let mut replaces = None;
        if let Some(session) = lock(&self.sessions).get_mut(handle) {
            replaces = session.replaces;
            session.decision = Decision::Approved {
                consent,
                code: random_hex(16),
                code_expires: now + Duration::seconds(CODE_LIFETIME_SECS),
                used: false,
            };
            intent = session.intent.clone();
        }
        if let Some(intent) = intent {
            self.intent_decided(&intent, Some(consent), now);
        }
        replaces
    }

    /// The consent of an approval could not be written: the session waits again.
    pub fn release(&self, handle: &str) {
        if let Some(session) = lock(&self.sessions).get_mut(handle)
            && session.decision == Decision::Approving
        {
            session.decision = Decision::Pending;
        }
    }
}
