//! The log watched for what apps must be told and what the status list holds: every entry read once, from the first at start (the status list is rebuilt from them; apps are told only of what came after the start: revocations of this bank's consents, this bank's suspensions), and every live consent of this bank indexed by the end of its validity so its expiry is seen when it comes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use consentnet_consent_chain::RangeRequest;
use consentnet_consent_chain::event::AppAction;
use consentnet_consent_chain::{ConsentStatus, Entry, Event, State};
use consentnet_identity::{ConsentId, Did, Revocation, VerifiedConsent};
use tokio::task::JoinHandle;

use super::{Notice, Notifications, Pusher};
use crate::bank::status::StatusLists;
use crate::core::NodeService;

/// How often the log is looked at.
pub const WATCH_EVERY: Duration = Duration::from_millis(200);
/// Entries of one feed read per look at most (the rest on the next).
const ENTRIES_PER_LOOK: u64 = 1_000;

struct Watcher {
    service: Arc<NodeService>,
    notifications: Arc<Notifications>,
    pusher: Pusher,
    status: Arc<StatusLists>,
    bank: Did,
    /// The last entry read of each feed.
    read: BTreeMap<Did, u64>,
    /// Each feed's head when the watch began: entries up to it are history.
    start: BTreeMap<Did, u64>,
    /// This bank's live consents by the end of their validity, and their app.
    live: BTreeSet<(DateTime<Utc>, ConsentId)>,
    apps: HashMap<ConsentId, (DateTime<Utc>, Did)>,
}

impl Watcher {
    fn new(
        service: Arc<NodeService>,
        (notifications, pusher): (Arc<Notifications>, Pusher),
        status: Arc<StatusLists>,
    ) -> Self {
        let bank = service.did().clone();
        let start = service
            .frontier()
            .into_iter()
            .map(|(origin, head)| (origin, head.seq))
            .collect();
        let mut watcher = Self {
            service,
            notifications,
            pusher,
            status,
            bank,
            read: BTreeMap::new(),
            start,
            live: BTreeSet::new(),
            apps: HashMap::new(),
        };
        let state = watcher.service.state();
        let now = Utc::now();
        for id in state.consents_by_bank(&watcher.bank) {
            watcher.index(&state, id, now, true);
        }
        watcher
    }

    /// Indexes consent `id` of this bank until its validity ends: at start, only while it
    /// is live; when its grant is read, whatever the state says already (a revocation
    /// the state holds is an entry still to be read, which will tell the app).
    fn index(&mut self, state: &State, id: ConsentId, now: DateTime<Utc>, at_start: bool) {
        let Some(consent) = state.consent(&id) else {
            return;
        };
        let live = !at_start
            || matches!(
                state.consent_status(&id, now),
                ConsentStatus::Active | ConsentStatus::NotYetValid
            );
        if consent.terms.bank == self.bank && live {
            let until = consent.terms.valid_until;
            self.live.insert((until, id));
            self.apps.insert(id, (until, consent.terms.app.clone()));
        }
    }

    /// Tells `app` of `notice`: queued, and pushed when the app registered an endpoint.
    fn tell(&self, state: &State, app: &Did, notice: &Notice, now: DateTime<Utc>) {
        let (jti, set) = self.notifications.raise(app, notice, now);
        let endpoint = state
            .catalog(&self.bank)
            .into_iter()
            .filter(|entry| &entry.manifest.app == app)
            .filter_map(|entry| {
                entry
                    .manifest
                    .events_uri
                    .map(|uri| (entry.manifest.version, uri))
            })
            .max();
        if let Some((_, uri)) = endpoint
            && !self.pusher.push(app, &uri, &jti, &set)
        {
            tracing::warn!(%app, "the event push queue is full; the event waits for polling");
        }
    }

    /// Reads `entry` into the status list, and, when it is `live` (after the start),
    /// tells apps what it means for them.
    fn apply(&mut self, state: &State, entry: &Entry, now: DateTime<Utc>, live: bool) {
        match &entry.event {
            Event::ConsentGranted { credential } if entry.origin == self.bank => {
                let Ok(consent) =
                    consentnet_identity::VerifiedConsent::from_trusted_store(credential)
                else {
                    return;
                };
                status_granted(&self.status, state, &consent, entry_time(entry, now));
                if live {
                    self.index(state, consent.id, now, false);
                }
            }
            Event::ConsentRevoked { revocation } => {
                let id = revocation.consent_id;
                if !counts(state, revocation) {
                    return;
                }
                self.status.revoked(&id, entry_time(entry, now));
                if !live {
                    return;
                }
                if let Some((until, app)) = self.apps.remove(&id) {
                    self.live.remove(&(until, id));
                    let by_client = state
                        .consent(&id)
                        .is_some_and(|c| c.issuer == revocation.revoker);
                    let notice = Notice::ConsentRevoked {
                        consent: id,
                        by_client,
                    };
                    self.tell(state, &app, &notice, now);
                }
            }
            Event::AppDecided { decision, .. }
                if live && decision.bank == self.bank && decision.action == AppAction::Suspend =>
            {
                let notice = Notice::VersionSuspended {
                    version: decision.version.clone(),
                };
                self.tell(state, &decision.app, &notice, now);
            }
            _ => {}
        }
    }

    /// True once every feed is read up to where it stood at the start.
    fn caught_up(&self) -> bool {
        self.start
            .iter()
            .all(|(origin, head)| self.read.get(origin).copied().unwrap_or(0) >= *head)
    }

    /// One look: the entries new since the last, then the consents whose validity ended.
    fn look(&mut self) {
        // The heads first: the state published after them holds every entry up to them.
        let frontier = self.service.frontier();
        let state = self.service.state();
        let now = Utc::now();
        for (origin, head) in frontier {
            let from = self.read.get(&origin).copied().unwrap_or(0) + 1;
            if head.seq < from {
                continue;
            }
            let to = head.seq.min(from + ENTRIES_PER_LOOK - 1);
            let request = RangeRequest {
                origin: origin.clone(),
                from,
                to,
            };
            let entries = match self.service.read(|replica| replica.serve(&request)) {
                Ok(entries) => entries,
                Err(error) => {
                    tracing::warn!(%error, "the log could not be read for event notifications");
                    continue;
                }
            };
            let history = self.start.get(&origin).copied().unwrap_or(0);
            for entry in &entries {
                self.apply(&state, entry, now, entry.seq > history);
            }
            let last = entries.last().map_or(to, |e| e.seq);
            self.read.insert(origin, last);
        }
        while let Some(&(until, id)) = self.live.first() {
            if until >= now {
                break;
            }
            self.live.pop_first();
            if let Some((_, app)) = self.apps.remove(&id) {
                self.tell(&state, &app, &Notice::ConsentExpired { consent: id }, now);
            }
        }
    }
}

/// Watches the log of the bank node `service`: reads it from the first entry into the
/// status list, then every [`WATCH_EVERY`] raises what apps must be told into
/// `notifications`, pushing through `pusher`. Events from before the start are not
/// raised again.
pub fn watch_log(
    service: Arc<NodeService>,
    (notifications, pusher): (Arc<Notifications>, Pusher),
    status: Arc<StatusLists>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut watcher = Watcher::new(service, (notifications, pusher), status);
        // The history first, as fast as it reads; the status list is ready after it.
        while !watcher.caught_up() {
            watcher.look();
            tokio::task::yield_now().await;
        }
        watcher.status.set_ready();
        let mut every = tokio::time::interval(WATCH_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            watcher.look();
        }
    })
}

/// When `entry` reached the log (`now` for a time out of range).
fn entry_time(entry: &Entry, now: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(i64::try_from(entry.time).unwrap_or(0)).unwrap_or(now)
}

/// Whether `revocation` counts: the log takes any signed revocation (a member could
/// gossip a stranger's), and only the consent's issuer's or its bank's revokes it.
fn counts(state: &State, revocation: &Revocation) -> bool {
    state
        .consent(&revocation.consent_id)
        .is_some_and(|consent| revocation.verify_for(consent).is_ok())
}

/// A grant of this bank read at `at`: its status entry is held, and set at once when a
/// revocation that counts reached the log before it.
fn status_granted(
    status: &StatusLists,
    state: &State,
    consent: &VerifiedConsent,
    at: DateTime<Utc>,
) {
    let Some(entry) = &consent.terms.status else {
        return;
    };
    status.granted(consent.id, entry);
    if state.effective_revocation(&consent.id).is_some() {
        status.revoked(&consent.id, at);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use consentnet_consent_chain::validate::ValidEvent;
    use consentnet_consent_chain::{Genesis, Member, Role};
    use consentnet_identity::consent::{StatusEntry, block_on};
    use consentnet_identity::{ConsentTerms, Hash32, KeyPair, Permission, issue_consent};

    fn bank_state(bank: &KeyPair) -> State {
        State::new(&Genesis {
            network: "watch-test".into(),
            members: vec![Member {
                did: bank.did().clone(),
                role: Role::Bank,
                peer_id: crate::p2p::peer_id_of(bank.did()).to_string(),
                name: "Bank".into(),
            }],
        })
    }

    #[test]
    fn only_a_revocation_by_the_issuer_or_the_bank_sets_a_bit_and_one_before_its_grant_does_once_granted()
     {
        let (bank, client, stranger) = (
            KeyPair::generate(),
            KeyPair::generate(),
            KeyPair::generate(),
        );
        let lists = StatusLists::new("https://bank.example");
        let now = Utc::now();
        let terms = ConsentTerms {
            app: KeyPair::generate().did().clone(),
            bank: bank.did().clone(),
            accounts: vec!["acc-1".into()],
            permissions: [Permission::ReadAccountsBasic].into(),
            payment_limits: None,
            purpose: "Budgeting".into(),
            valid_from: now - chrono::Duration::minutes(1),
            valid_until: now + chrono::Duration::days(1),
            proof_key: None,
            status: Some(StatusEntry {
                list: lists.url(),
                index: 3,
            }),
        };
        let consent = Arc::new(block_on(issue_consent(&client, &terms)).unwrap());
        let mut state = bank_state(&bank);
        let forged = Revocation::sign(&stranger, consent.id, now, None);
        assert!(!counts(&state, &forged), "no grant yet");
        state.apply(Hash32([1; 32]), &ValidEvent::Granted(consent.clone()));
        status_granted(&lists, &state, &consent, now);
        assert!(
            !counts(&state, &forged),
            "a stranger's revocation does not count"
        );
        assert!(!lists.is_revoked(0, 3));
        assert!(counts(
            &state,
            &Revocation::sign(&bank, consent.id, now, None)
        ));
        let by_client = Revocation::sign(&client, consent.id, now, None);
        assert!(counts(&state, &by_client));
        // The revocation came first: the grant, once read, sets the bit.
        let late = StatusLists::new("https://bank.example");
        state.apply(Hash32([2; 32]), &ValidEvent::Revoked(by_client));
        status_granted(&late, &state, &consent, now);
        assert!(late.is_revoked(0, 3));
    }
}
