//! Checkpoints: at most once an interval, and only when the other feeds moved, this node signs the heads it holds of every other member's feed, so the log records when peers saw each entry.
//!
//! A bank stamps its own access records; the audit trusts no member's clock alone. A
//! checkpoint by a peer at time T that covers a bank's entry shows the entry existed by
//! T, in the peer's clock. The audit flags records stamped far earlier than the first
//! peer checkpoint that covers them. The node's own feed is left out, so two nodes'
//! checkpoints are different events even when they hold the same log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use consentnet_consent_chain::{Event, FeedHead};
use consentnet_identity::Did;

use super::{NodeService, Submitter};

/// The heads of every feed but this node's own.
pub fn others_frontier(service: &NodeService) -> BTreeMap<Did, FeedHead> {
    let mut frontier = service.frontier();
    frontier.remove(service.did());
    frontier
}

/// Starts the checkpoint writer: every `interval_ms`, a checkpoint when the other feeds
/// moved since the last one written. Ends when aborted.
pub fn start_checkpoints(
    service: Arc<NodeService>,
    submitter: Submitter,
    interval_ms: u64,
) -> tokio::task::JoinHandle<()> {
    let interval = Duration::from_millis(interval_ms);
    tokio::spawn(async move {
        // The first checkpoint comes one interval after start, once peers had a chance
        // to be heard from.
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: BTreeMap<Did, FeedHead> = BTreeMap::new();
        loop {
            tick.tick().await;
            let frontier = others_frontier(&service);
            if frontier.is_empty() || frontier == last {
                continue;
            }
            match submitter
                .submit(Event::Checkpoint {
                    frontier: frontier.clone(),
                })
                .await
            {
                Ok(_) => last = frontier,
                // The store refuses writes (a full disk, say): try again next interval.
                Err(error) => tracing::warn!(%error, "writing a checkpoint"),
            }
        }
    })
}
