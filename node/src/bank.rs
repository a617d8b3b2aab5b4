//! The bank role: the node serves the unified Open Banking API, reading consents from its own log and writing every served or refused call into its feed as signed access batches.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use consentnet_bank_adapter::api::AccessSink;
use consentnet_bank_adapter::enforce::ConsentSource;
use consentnet_consent_chain::ConsentStatus;
use consentnet_consent_chain::event::{AccessBatch, AccessRecord, AppAction, Outcome};
use consentnet_identity::{ConsentId, Did, VerifiedConsent};
use tokio::sync::mpsc;

use crate::network::NetworkHandle;
use crate::service::{NodeService, Submitter};

/// Records per access batch: a batch must fit in one entry (64 KiB).
pub const BATCH_RECORDS: usize = 250;
/// How long a record may wait for its batch.
pub const BATCH_DELAY: Duration = Duration::from_millis(250);
/// Records waiting to be batched at most.
pub const RECORD_QUEUE: usize = 65_536;

/// Consent and catalog state read from the node's log.
#[derive(Debug, Clone)]
pub struct LogConsents(pub Arc<NodeService>);

impl ConsentSource for LogConsents {
    fn consent_at(
        &self,
        id: &ConsentId,
        at: DateTime<Utc>,
    ) -> Option<(Arc<VerifiedConsent>, ConsentStatus)> {
        self.0.read(|replica| replica.state().consent_at(id, at))
    }

    fn app_decision(&self, bank: &Did, app: &Did, version: &str) -> Option<AppAction> {
        self.0
            .read(|replica| replica.state().app_decision(bank, app, version))
    }
}

/// Queues access records for the batcher. Never blocks a request: when the queue is
/// full the record is counted as dropped and logged.
#[derive(Debug, Clone)]
pub struct FeedRecords {
    queue: mpsc::Sender<AccessRecord>,
    service: Arc<NodeService>,
}

impl AccessSink for FeedRecords {
    fn record(
        &self,
        consent: ConsentId,
        operation: &'static str,
        time: DateTime<Utc>,
        outcome: Outcome,
    ) {
        let record = AccessRecord {
            consent_id: consent,
            operation: operation.to_owned(),
            time: u64::try_from(time.timestamp_millis()).unwrap_or(0),
            outcome,
        };
        if self.queue.try_send(record).is_err() {
            self.service.metrics.access_record_dropped();
            tracing::error!("access record queue full: a record was dropped");
        }
    }
}

/// Starts the batcher: records are signed into access batches and appended to this
/// node's feed, then gossiped.
pub fn start_recorder(
    service: Arc<NodeService>,
    submitter: Submitter,
    network: Option<NetworkHandle>,
) -> FeedRecords {
    let (queue, mut inbox) = mpsc::channel::<AccessRecord>(RECORD_QUEUE);
    let sink = FeedRecords {
        queue,
        service: service.clone(),
    };
    tokio::spawn(async move {
        while let Some(first) = inbox.recv().await {
            let mut records = vec![first];
            let deadline = tokio::time::sleep(BATCH_DELAY);
            tokio::pin!(deadline);
            while records.len() < BATCH_RECORDS {
                tokio::select! {
                    next = inbox.recv() => match next {
                        Some(record) => records.push(record),
                        None => break,
                    },
                    () = &mut deadline => break,
                }
            }
            let batch = AccessBatch {
                bank: service.did().clone(),
                records,
            };
            match submitter.submit(service.access_event(batch)).await {
                Ok(submitted) => {
                    if submitted.new
                        && let Some(network) = &network
                    {
                        network.publish(&submitted.entry).await;
                    }
                }
                Err(error) => tracing::error!(%error, "access batch not written"),
            }
        }
    });
    sink
}
