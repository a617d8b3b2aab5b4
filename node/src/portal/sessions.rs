//! The portal's in-memory sessions, bounded: client sign-in challenges and signed-in sessions, bank admin sessions, and the regulator page's latest audit. A restart signs everyone out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use consentnet_consent_chain::audit::AuditReport;
use consentnet_identity::Did;

use super::html::cookie;
use consentnet_identity::util::lock;

/// How long a sign-in challenge may wait for the wallet, in seconds.
pub const CHALLENGE_LIFETIME_SECS: i64 = 300;
/// How long a signed-in session lasts, in seconds.
pub const SESSION_LIFETIME_SECS: i64 = 3_600;
/// Sign-ins waiting and sessions open, each at most.
pub const MAX_WEB_SESSIONS: usize = 10_000;
pub(super) const CHALLENGE_COOKIE: &str = "consentnet_signin";
pub(super) const SESSION_COOKIE: &str = "consentnet_session";

#[derive(Debug, Clone)]
pub(super) struct Challenge {
    pub(super) created: DateTime<Utc>,
    /// The browser that asked for it (a cookie value).
    pub(super) browser: String,
    /// The DID that answered, once one has.
    pub(super) did: Option<Did>,
}

#[derive(Debug, Clone)]
pub(super) struct WebSession {
    pub(super) did: Did,
    pub(super) csrf: String,
    pub(super) expires: DateTime<Utc>,
}

/// Sign-in challenges and signed-in sessions, in memory (a restart signs everyone out).
#[derive(Debug, Default)]
pub struct Web {
    pub(super) challenges: Mutex<HashMap<String, Challenge>>,
    pub(super) sessions: Mutex<HashMap<String, WebSession>>,
}

impl Web {
    pub(super) fn session(&self, headers: &HeaderMap, now: DateTime<Utc>) -> Option<WebSession> {
        let token = cookie(headers, SESSION_COOKIE)?;
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, s| s.expires > now);
        sessions.get(token).cloned()
    }
}

/// How long a bank admin's page session lasts, in seconds.
pub const ADMIN_SESSION_SECS: i64 = 1_800;
/// Admin sessions open at most.
pub(super) const MAX_ADMIN_SESSIONS: usize = 100;
/// How long the regulator's page reuses an audit before running a new one.
pub const AUDIT_REUSE: StdDuration = StdDuration::from_secs(30);
pub(super) const ADMIN_COOKIE: &str = "consentnet_admin";

#[derive(Debug, Clone)]
pub(super) struct AdminSession {
    pub(super) csrf: String,
    pub(super) expires: DateTime<Utc>,
}

/// Admin sessions and the regulator page's latest audit, in memory.
#[derive(Debug, Default)]
pub struct Console {
    pub(super) admins: Mutex<HashMap<String, AdminSession>>,
    pub(super) audit: tokio::sync::Mutex<Option<(Instant, Arc<AuditReport>)>>,
}

impl Console {
    pub(super) fn admin(&self, headers: &HeaderMap, now: DateTime<Utc>) -> Option<AdminSession> {
        let token = cookie(headers, ADMIN_COOKIE)?;
        let mut admins = lock(&self.admins);
        admins.retain(|_, s| s.expires > now);
        admins.get(token).cloned()
    }
}
