//! Event notifications to TSPs: a consent revoked or expired at this bank, or an app version suspended here, becomes a Security Event Token (RFC 8417) signed by the bank, kept in a bounded queue per app until the app acknowledges it (aggregated polling, RFC 8936) or its push endpoint takes it (RFC 8935). No event carries personal data.

mod push;
mod set;
mod watch;

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use consentnet_identity::util::lock;
use consentnet_identity::{ConsentId, Did};

pub use push::{PUSH_ATTEMPTS, PUSH_QUEUE, Pusher};
pub use set::{EVENT_CONSENT_REVOKED, EVENT_RESOURCE_UPDATE, EVENT_VERSION_SUSPENDED};
pub use watch::{WATCH_EVERY, watch_log};

/// Events kept for one app at most: the oldest go first when more come.
pub const MAX_QUEUED_PER_APP: usize = 1_000;
/// Apps with events waiting, at most: an app beyond it loses its oldest event first.
pub const MAX_APPS: usize = 10_000;
/// How long an unacknowledged event is kept.
pub const EVENT_RETENTION_DAYS: i64 = 7;
/// Events answered by one poll at most.
pub const MAX_EVENTS_PER_POLL: usize = 100;

/// What happened, as an app is told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A consent of the app was revoked; `by_client` when its client revoked it.
    ConsentRevoked {
        /// The consent (the grant).
        consent: ConsentId,
        /// True when the client revoked it, false when the bank did.
        by_client: bool,
    },
    /// A consent of the app reached the end of its validity.
    ConsentExpired {
        /// The consent (the grant).
        consent: ConsentId,
    },
    /// This bank suspended a version of the app.
    VersionSuspended {
        /// The version.
        version: String,
    },
}

struct Queued {
    jti: String,
    set: String,
    at: DateTime<Utc>,
}

/// The events waiting for each app at this bank.
pub struct Notifications {
    queues: Mutex<HashMap<Did, VecDeque<Queued>>>,
    signer: consentnet_bank_adapter::jws::Signer,
    issuer: String,
}

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifications")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Notifications {
    /// Notifications signed by the bank with `signer`, naming `issuer` (the bank's
    /// public URL) as their issuer.
    pub fn new(signer: consentnet_bank_adapter::jws::Signer, issuer: &str) -> Self {
        Self {
            queues: Mutex::default(),
            signer,
            issuer: issuer.trim_end_matches('/').to_owned(),
        }
    }

    /// Queues `notice` for `app` as a signed SET; answers its `jti` and the SET.
    pub fn raise(&self, app: &Did, notice: &Notice, now: DateTime<Utc>) -> (String, String) {
        let (jti, token) = set::sign(&self.signer, &self.issuer, app, notice, now);
        let mut queues = lock(&self.queues);
        let cutoff = now - Duration::days(EVENT_RETENTION_DAYS);
        queues.retain(|_, queue| {
            queue.retain(|q| q.at >= cutoff);
            !queue.is_empty()
        });
        if !queues.contains_key(app) && queues.len() >= MAX_APPS {
            // Full: the app with the oldest waiting event gives one up.
            let oldest = queues
                .iter()
                .filter_map(|(app, queue)| queue.front().map(|q| (q.at, app.clone())))
                .min();
            if let Some((_, other)) = oldest
                && let Some(queue) = queues.get_mut(&other)
            {
                queue.pop_front();
                if queue.is_empty() {
                    queues.remove(&other);
                }
            }
        }
        let queue = queues.entry(app.clone()).or_default();
        if queue.len() >= MAX_QUEUED_PER_APP {
            queue.pop_front();
            tracing::warn!(%app, "an app's event queue is full; its oldest event is dropped");
        }
        queue.push_back(Queued {
            jti: jti.clone(),
            set: token.clone(),
            at: now,
        });
        (jti, token)
    }

    /// Drops the events `app` acknowledges (by `jti`), then answers up to `max` of those
    /// still waiting, oldest first, and whether more wait.
    pub fn poll(&self, app: &Did, ack: &[String], max: usize) -> (Vec<(String, String)>, bool) {
        let mut queues = lock(&self.queues);
        let Some(queue) = queues.get_mut(app) else {
            return (Vec::new(), false);
        };
        queue.retain(|q| !ack.contains(&q.jti));
        let answer: Vec<(String, String)> = queue
            .iter()
            .take(max.min(MAX_EVENTS_PER_POLL))
            .map(|q| (q.jti.clone(), q.set.clone()))
            .collect();
        let more = queue.len() > answer.len();
        if queue.is_empty() {
            queues.remove(app);
        }
        (answer, more)
    }

    /// Drops one event of `app`, delivered by push.
    pub fn delivered(&self, app: &Did, jti: &str) {
        self.poll(app, &[jti.to_owned()], 0);
    }

    /// The bank these events are signed by.
    pub fn bank(&self) -> &Did {
        &self.signer.bank
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use consentnet_identity::KeyPair;

    fn notifications() -> (Notifications, KeyPair) {
        let bank = KeyPair::generate();
        let key = bank.clone();
        let signer = consentnet_bank_adapter::jws::Signer {
            bank: bank.did().clone(),
            sign: std::sync::Arc::new(move |bytes| key.sign(bytes)),
        };
        (Notifications::new(signer, "https://bank.example/"), bank)
    }

    #[test]
    fn events_wait_per_app_until_acknowledged_and_the_queue_is_bounded() {
        let (notifications, _) = notifications();
        let (app, other) = (KeyPair::generate(), KeyPair::generate());
        let now = Utc::now();
        let notice = Notice::VersionSuspended {
            version: "1.0".into(),
        };
        let (first, _) = notifications.raise(app.did(), &notice, now);
        notifications.raise(app.did(), &notice, now);
        let (events, more) = notifications.poll(app.did(), &[], 1);
        assert_eq!((events.len(), more), (1, true));
        assert_eq!(events[0].0, first, "oldest first");
        let (events, more) = notifications.poll(app.did(), &[first], 10);
        assert_eq!((events.len(), more), (1, false));
        assert!(
            notifications.poll(other.did(), &[], 10).0.is_empty(),
            "apps see their own only"
        );
        for _ in 0..MAX_QUEUED_PER_APP + 5 {
            notifications.raise(other.did(), &notice, now);
        }
        let mut seen = 0;
        loop {
            let (events, more) = notifications.poll(other.did(), &[], MAX_EVENTS_PER_POLL);
            let acks: Vec<String> = events.iter().map(|(jti, _)| jti.clone()).collect();
            seen += acks.len();
            notifications.poll(other.did(), &acks, 0);
            if !more {
                break;
            }
        }
        assert_eq!(seen, MAX_QUEUED_PER_APP);
        // Old events are dropped after the retention.
        notifications.raise(
            app.did(),
            &notice,
            now - Duration::days(EVENT_RETENTION_DAYS + 1),
        );
        notifications.raise(other.did(), &notice, now);
        let (events, _) = notifications.poll(app.did(), &[], 10);
        assert_eq!(
            events.len(),
            1,
            "only the one event within the retention is left"
        );
    }
}
