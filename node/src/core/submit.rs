//! Submissions to this node's feed: the entitlement check, one durable write per burst (group commit) on the submitter thread, and the gossip of what it wrote.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use consentnet_consent_chain::validate::EventError;
use consentnet_consent_chain::{Appended, Event, Rejected, Sealed, StoreError};
use consentnet_identity::Revocation;

use super::service::{NodeService, now_ms};
use crate::p2p::NetworkHandle;

/// Why a submission was refused. Each maps to one HTTP status and code.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The event failed validation.
    #[error(transparent)]
    Invalid(#[from] EventError),
    /// A revocation by someone who may not revoke that consent.
    #[error("{0} may not revoke this consent: only its issuer or its bank may")]
    NotEntitled(String),
    /// A revocation of a consent whose grant this node does not hold, so who may revoke
    /// it cannot be checked.
    #[error(
        "consent {0} is not on this node's log: send its credential with the revocation ({{\"revocation\", \"credential\"}})"
    )]
    ConsentUnknown(consentnet_identity::ConsentId),
    /// The submission names a time too far from this node's clock.
    #[error(
        "the {what} names {named_ms} ms since the epoch, more than {SUBMISSION_SKEW_MS} ms from this node's clock ({now_ms})"
    )]
    TimeOutsideSkew {
        /// What names the time.
        what: &'static str,
        /// The time named, in ms since the epoch.
        named_ms: i64,
        /// This node's clock, in ms since the epoch.
        now_ms: i64,
    },
    /// This node is not a member of the consortium it was started for.
    #[error("this node is not a member of the consortium")]
    NodeNotMember,
    /// The log could not be written; nothing was acknowledged.
    #[error("the log is unavailable: {0}")]
    Store(#[from] StoreError),
    /// The node is shutting down.
    #[error("the node is shutting down")]
    Stopping,
}

/// How far the time a submission names (a revocation's, a decision's) may be from this
/// node's clock, either side. The log's own time for the event is its entry's.
pub const SUBMISSION_SKEW_MS: u64 = consentnet_consent_chain::MAX_CLOCK_SKEW_MS;

/// Submissions waiting for the submitter thread at most.
const SUBMIT_QUEUE: usize = 1024;
/// Submissions written together at most.
const SUBMIT_BURST: usize = 256;

type Submission = (Event, oneshot::Sender<Result<Submitted, SubmitError>>);

/// Hands submissions to one blocking thread that validates them, writes whatever has
/// queued up with one durable write (group commit) and gossips the new entries of that
/// write together. Cloneable; bounded.
#[derive(Clone, Debug)]
pub struct Submitter {
    queue: mpsc::Sender<Submission>,
}

impl Submitter {
    /// Starts the submitter thread for `service`; new entries are gossiped on `network`
    /// when there is one.
    pub fn start(
        service: Arc<NodeService>,
        network: Option<NetworkHandle>,
    ) -> std::io::Result<Self> {
        let (queue, mut inbox) = mpsc::channel::<Submission>(SUBMIT_QUEUE);
        std::thread::Builder::new()
            .name("submitter".into())
            .spawn(move || {
                while let Some(first) = inbox.blocking_recv() {
                    let mut burst = vec![first];
                    while burst.len() < SUBMIT_BURST {
                        match inbox.try_recv() {
                            Ok(next) => burst.push(next),
                            Err(_) => break,
                        }
                    }
                    let (events, replies): (Vec<Event>, Vec<_>) = burst.into_iter().unzip();
                    let results = service.submit_many(events);
                    let fresh: Vec<Vec<u8>> = results
                        .iter()
                        .filter_map(|result| match result {
                            Ok(submitted) if submitted.new => {
                                Some(submitted.entry.bytes().to_vec())
                            }
                            _ => None,
                        })
                        .collect();
                    for (reply, result) in replies.into_iter().zip(results) {
                        // The caller may have gone; the entry stays acknowledged on the log.
                        let _ = reply.send(result);
                    }
                    if let Some(network) = network.as_ref().filter(|_| !fresh.is_empty()) {
                        network.publish_blocking(fresh);
                    }
                }
            })?;
        Ok(Self { queue })
    }

    /// Submits `event`; resolves once it is durable (or refused).
    pub async fn submit(&self, event: Event) -> Result<Submitted, SubmitError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((event, reply))
            .await
            .map_err(|_| SubmitError::Stopping)?;
        answer.await.map_err(|_| SubmitError::Stopping)?
    }
}

/// A durable submission: the signed entry that holds the event (the receipt).
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The entry holding the event, in this or another node's feed, with its bytes.
    pub entry: Sealed,
    /// False when the event was already on the log.
    pub new: bool,
}

impl NodeService {
    /// Validates `event` and appends it to this node's feed, durably.
    pub fn submit(&self, event: Event) -> Result<Submitted, SubmitError> {
        self.submit_many(vec![event])
            .pop()
            .unwrap_or_else(|| unreachable!("one result per event"))
    }

    /// [`NodeService::submit`] for several events with one durable write (group
    /// commit); one result per event, in order.
    pub fn submit_many(&self, events: Vec<Event>) -> Vec<Result<Submitted, SubmitError>> {
        let mut results: Vec<Option<Result<Submitted, SubmitError>>> = Vec::new();
        let mut accepted = Vec::with_capacity(events.len());
        let mut slots = Vec::with_capacity(events.len());
        for event in events {
            let checked = match &event {
                Event::ConsentRevoked { revocation } => self
                    .check_revoker(revocation)
                    .and_then(|()| check_time("revocation", revocation.time.timestamp_millis())),
                Event::AppDecided { decision, .. } => {
                    check_time("decision", i64::try_from(decision.time).unwrap_or(i64::MAX))
                }
                _ => Ok(()),
            };
            match checked {
                Ok(()) => {
                    slots.push(results.len());
                    accepted.push(event);
                    results.push(None);
                }
                Err(error) => results.push(Some(Err(error))),
            }
        }
        // A store that refused writes is reopened first: writes resume once space is back.
        self.recover();
        // Canonical JSON and a batch check of the events' own signatures, outside the lock.
        let prepared = consentnet_consent_chain::replica::prepare_events(accepted);
        let appended = self.write(|replica| replica.append_prepared(&self.key, prepared, now_ms()));
        let refused = appended
            .iter()
            .any(|result| matches!(result, Err(Rejected::Store(_))));
        if refused {
            self.note_write(false);
        } else if appended.iter().any(|r| matches!(r, Ok(Appended::New(_)))) {
            self.note_write(true);
        }
        for (slot, result) in slots.into_iter().zip(appended) {
            results[slot] = Some(match result {
                Ok(Appended::New(entry)) => Ok(Submitted { entry, new: true }),
                Ok(Appended::Existing(entry)) => Ok(Submitted { entry, new: false }),
                Err(Rejected::InvalidEvent(error)) => Err(SubmitError::Invalid(error)),
                Err(Rejected::Store(error)) => Err(SubmitError::Store(error)),
                Err(Rejected::NotMember(_)) => Err(SubmitError::NodeNotMember),
                Err(other) => Err(SubmitError::Store(StoreError::Corrupt(other.to_string()))),
            });
        }
        let results: Vec<_> = results.into_iter().flatten().collect();
        for result in &results {
            self.metrics.submission(result.is_ok());
        }
        results
    }

    /// A revocation must name a consent whose grant is on the log, and come from its
    /// issuer or its bank.
    fn check_revoker(&self, revocation: &Revocation) -> Result<(), SubmitError> {
        let record = self
            .read(|replica| replica.consent_record(&revocation.consent_id))
            .map_err(SubmitError::Store)?;
        match record {
            None => Err(SubmitError::ConsentUnknown(revocation.consent_id)),
            Some(record)
                if revocation.revoker != record.consent.issuer
                    && revocation.revoker != record.consent.terms.bank =>
            {
                Err(SubmitError::NotEntitled(revocation.revoker.to_string()))
            }
            Some(_) => Ok(()),
        }
    }
}

/// A time a submission names must be within [`SUBMISSION_SKEW_MS`] of this node's clock.
fn check_time(what: &'static str, named_ms: i64) -> Result<(), SubmitError> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    if named_ms.abs_diff(now_ms) > SUBMISSION_SKEW_MS {
        return Err(SubmitError::TimeOutsideSkew {
            what,
            named_ms,
            now_ms,
        });
    }
    Ok(())
}
