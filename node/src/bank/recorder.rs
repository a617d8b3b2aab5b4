//! Access-record batching: every served or refused call is queued without blocking the request, signed into access batches of at most 250 records or 250 ms, and appended to the bank's feed.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use consentnet_bank_adapter::api::AccessSink;
use consentnet_consent_chain::event::{AccessBatch, AccessRecord, Outcome};
use consentnet_identity::ConsentId;
use tokio::sync::mpsc;

use crate::core::{NodeService, Submitter};

/// Records per access batch: a batch must fit in one entry (64 KiB).
pub const BATCH_RECORDS: usize = 250;
/// How long a record may wait for its batch.
pub const BATCH_DELAY: Duration = Duration::from_millis(250);
/// Records waiting to be batched at most.
pub const RECORD_QUEUE: usize = 65_536;

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
/// node's feed, then gossiped. The task ends, after writing what it holds, once every
/// [`FeedRecords`] is dropped.
pub fn start_recorder(
    service: Arc<NodeService>,
    submitter: Submitter,
) -> (FeedRecords, tokio::task::JoinHandle<()>) {
    let (queue, mut inbox) = mpsc::channel::<AccessRecord>(RECORD_QUEUE);
    let sink = FeedRecords {
        queue,
        service: service.clone(),
    };
    let task = tokio::spawn(async move {
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
            // The submitter gossips the new entry.
            if let Err(error) = submitter.submit(service.access_event(batch)).await {
                tracing::error!(%error, "access batch not written");
            }
        }
    });
    (sink, task)
}
