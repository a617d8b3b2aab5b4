//! What an authorization in progress holds: what is asked, where it stands, and what the token endpoint answers.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use consentnet_identity::consent::PaymentLimits;
use consentnet_identity::{ConsentId, Did, Permission};
use serde::Serialize;
use serde_json::{Value, json};

use super::{DETAILS_TYPE, REQUEST_URI_LIFETIME_SECS, SESSION_LIFETIME_SECS};

/// What an app asks for, as the client sees it on the consent screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Asked {
    /// The app (the OAuth `client_id`).
    pub app: Did,
    /// Its name in the catalog.
    pub app_name: String,
    /// The approved version the request goes through.
    pub app_version: String,
    /// This bank.
    pub bank: Did,
    /// The permissions asked for.
    pub permissions: BTreeSet<Permission>,
    /// Payment limits, exactly when payments are asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_limits: Option<PaymentLimits>,
    /// The accounts the app names, if any; otherwise the client chooses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Vec<String>>,
    /// Why, in the app's words.
    pub purpose: String,
    /// The end of the validity asked for.
    pub valid_until: DateTime<Utc>,
}

impl Asked {
    /// What a consent on the log grants, as a request would have asked it.
    pub fn of(consent: &consentnet_identity::VerifiedConsent) -> Self {
        Asked {
            app: consent.terms.app.clone(),
            app_name: String::new(),
            app_version: String::new(),
            bank: consent.terms.bank.clone(),
            permissions: consent.terms.permissions.clone(),
            payment_limits: consent.terms.payment_limits.clone(),
            accounts: Some(consent.terms.accounts.clone()),
            purpose: consent.terms.purpose.clone(),
            valid_until: consent.terms.valid_until,
        }
    }

    /// The request as an `authorization_details` entry of type `consentnet`.
    pub fn details(&self, consent: Option<&ConsentId>) -> Value {
        let mut details = json!({
            "type": DETAILS_TYPE,
            "bank": self.bank,
            "permissions": self.permissions,
            "valid_until": self.valid_until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "purpose": self.purpose,
        });
        if let Some(limits) = &self.payment_limits {
            details["payment_limits"] = json!(limits);
        }
        if let Some(accounts) = &self.accounts {
            details["accounts"] = json!(accounts);
        }
        if let Some(id) = consent {
            details["consent_id"] = json!(id.to_string());
        }
        details
    }
}

/// Where an authorization stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Waiting for the client.
    Pending,
    /// A consent is being written to the log (a second approval must wait its turn).
    Approving,
    /// Approved: the consent is on the log and a code was issued for it.
    Approved {
        /// The consent.
        consent: ConsentId,
        /// The code, for the browser's redirect (also kept by hash for the exchange).
        code: String,
        /// When the code stops working.
        code_expires: DateTime<Utc>,
        /// True once exchanged.
        used: bool,
    },
    /// The client said no.
    Denied,
}

/// One authorization in progress.
#[derive(Debug, Clone)]
pub struct Session {
    /// The handle in the `request_uri` (unguessable).
    pub handle: String,
    /// What is asked.
    pub asked: Asked,
    /// Where the browser goes back to.
    pub redirect_uri: String,
    /// The client's `state`, returned unchanged.
    pub state: Option<String>,
    /// The PKCE `code_challenge` (S256).
    pub(super) code_challenge: String,
    /// The form token of the consent page (CSRF).
    pub csrf: String,
    /// The browser the request was opened in (a cookie value), once opened.
    pub browser: Option<String>,
    /// The OBIE consent resource this authorizes, if the app made one first.
    pub intent: Option<String>,
    /// The grant (consent) the new consent merges into or replaces, revoked once the new
    /// one is on the log.
    pub replaces: Option<consentnet_identity::ConsentId>,
    /// When the request was pushed.
    pub created: DateTime<Utc>,
    /// Where it stands.
    pub decision: Decision,
}

impl Session {
    pub(super) fn expired(&self, now: DateTime<Utc>) -> bool {
        let limit = if self.browser.is_some() {
            SESSION_LIFETIME_SECS
        } else {
            REQUEST_URI_LIFETIME_SECS
        };
        match &self.decision {
            Decision::Approved { code_expires, .. } => now > *code_expires,
            _ => now > self.created + Duration::seconds(limit),
        }
    }
}

/// A code exchanged a second time: the grant is refused and the consent it issued must
/// be revoked (RFC 6749 section 4.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReusedCode(pub ConsentId);

/// What the token endpoint answers.
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    /// The access token: the consent id.
    pub access_token: String,
    /// Always `DPoP`.
    pub token_type: &'static str,
    /// Seconds until the consent's validity ends.
    pub expires_in: i64,
    /// What was granted, with the consent id.
    pub authorization_details: Vec<Value>,
    /// The app version the token was issued through (send it as `x-consentnet-app-version`).
    pub app_version: String,
    /// The grant, for grant management: the consent id.
    pub grant_id: String,
}
