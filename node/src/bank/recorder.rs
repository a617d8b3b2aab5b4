//! Access-record batching: every served or refused call is queued without blocking the request, batched (at most 4096 records or 2 s) into the bank's own record store, and each batch's signed commitment appended to the bank's feed.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use consentnet_bank_adapter::api::AccessSink;
use consentnet_consent_chain::event::{AccessCommitment, AccessRecord, Outcome};
use consentnet_consent_chain::merkle::batch_root;
use consentnet_consent_chain::store::records::RecordStore;
use consentnet_identity::ConsentId;
use tokio::sync::mpsc;

use crate::core::{NodeService, Submitter};

/// Records per access batch at most. The records stay in the bank's store, and each batch
/// costs every member one commitment entry (about 600 bytes), so under load a batch of
/// 4096 costs the shared log about 150 bytes per 1000 calls.
pub const BATCH_RECORDS: usize = 4096;
/// How long a record may wait for its batch (the audit allows for it).
pub const BATCH_DELAY: Duration = Duration::from_secs(2);
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

/// Starts the batcher: records are batched into the bank's own record store, and each
/// batch's commitment (its Merkle root, count and time range, signed by the bank) is
/// appended to this node's feed, then gossiped. Batches stored but not committed (a crash
/// between the two writes) are committed first. The task ends, after writing what it
/// holds, once every [`FeedRecords`] is dropped.
pub fn start_recorder(
    service: Arc<NodeService>,
    submitter: Submitter,
    store: Arc<RecordStore>,
) -> (FeedRecords, tokio::task::JoinHandle<()>) {
    let (queue, mut inbox) = mpsc::channel::<AccessRecord>(RECORD_QUEUE);
    let sink = FeedRecords {
        queue,
        service: service.clone(),
    };
    let task = tokio::spawn(async move {
        let recorder = Recorder {
            service,
            submitter,
            store,
        };
        let mut next = recorder.commit_pending().await;
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
            if recorder.store_batch(next, records).await {
                recorder.commit(next).await;
                next += 1;
            }
        }
    });
    (sink, task)
}

/// What the batcher writes with.
struct Recorder {
    service: Arc<NodeService>,
    submitter: Submitter,
    store: Arc<RecordStore>,
}

impl Recorder {
    /// Commits every stored batch past the last one on the log; returns the next batch
    /// number.
    async fn commit_pending(&self) -> u64 {
        let bank = self.service.did().clone();
        let on_log = self
            .service
            .state()
            .committed()
            .get(&bank)
            .map_or(0, |c| c.last_batch);
        let store = self.store.clone();
        let stored = tokio::task::spawn_blocking(move || store.last_batch())
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
            .unwrap_or(0);
        for batch in on_log + 1..=stored {
            self.commit(batch).await;
        }
        on_log.max(stored) + 1
    }

    /// Writes batch `batch` to the record store, durably; false (records counted as
    /// dropped) when the store refuses it.
    async fn store_batch(&self, batch: u64, records: Vec<AccessRecord>) -> bool {
        let (store, count) = (self.store.clone(), records.len());
        match tokio::task::spawn_blocking(move || store.put_batch(batch, &records)).await {
            Ok(Ok(())) => true,
            outcome => {
                for _ in 0..count {
                    self.service.metrics.access_record_dropped();
                }
                tracing::error!(batch, ?outcome, "access batch not stored");
                false
            }
        }
    }

    /// Appends the commitment of stored batch `batch` and notes the entry holding it.
    async fn commit(&self, batch: u64) {
        let store = self.store.clone();
        let Ok(Ok(Some(records))) = tokio::task::spawn_blocking(move || store.batch(batch)).await
        else {
            tracing::error!(batch, "a stored access batch could not be read back");
            return;
        };
        let commitment = AccessCommitment {
            bank: self.service.did().clone(),
            batch,
            root: batch_root(&records),
            records: u32::try_from(records.len()).unwrap_or(u32::MAX),
            first: records.iter().map(|r| r.time).min().unwrap_or(0),
            last: records.iter().map(|r| r.time).max().unwrap_or(0),
        };
        // The submitter gossips the new entry.
        match self
            .submitter
            .submit(self.service.access_event(commitment))
            .await
        {
            Ok(submitted) => {
                let (store, seq) = (self.store.clone(), submitted.entry.entry().seq);
                let noted = tokio::task::spawn_blocking(move || store.put_committed(batch, seq));
                if !matches!(noted.await, Ok(Ok(()))) {
                    tracing::warn!(batch, "the commitment's entry could not be noted");
                }
            }
            // Stored but not committed: committed when the node starts again.
            Err(error) => tracing::error!(%error, batch, "access commitment not written"),
        }
    }
}
