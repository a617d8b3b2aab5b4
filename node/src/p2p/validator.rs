//! The gossip validator: one blocking thread judges gossiped messages in bursts through the log and sends each verdict back to the event loop.

use std::sync::Arc;

use libp2p::PeerId;
use libp2p::gossipsub::MessageId;
use tokio::sync::mpsc;

use super::event_loop::Command;
use super::{BURST_ENTRIES, LogPeer, VALIDATING};

/// A gossiped message waiting for its verdict.
pub(super) struct Gossiped {
    pub(super) id: MessageId,
    pub(super) source: PeerId,
    pub(super) data: Vec<u8>,
}

/// Judges gossiped entries on one blocking thread, in bursts: whatever has queued up
/// since the last burst (up to [`VALIDATING`] messages and about [`BURST_ENTRIES`]
/// entries) goes through the engine under one lock and one durable write per feed.
/// Verdicts go back to the event loop as commands.
pub(super) fn run_validator(
    log: Arc<dyn LogPeer>,
    mut queue: mpsc::Receiver<Gossiped>,
    commands: mpsc::Sender<Command>,
) {
    let entries_in = |message: &Gossiped| message.data.iter().filter(|b| **b == b'\n').count() + 1;
    while let Some(first) = queue.blocking_recv() {
        let mut entries = entries_in(&first);
        let mut burst = vec![first];
        while burst.len() < VALIDATING && entries < BURST_ENTRIES {
            match queue.try_recv() {
                Ok(next) => {
                    entries += entries_in(&next);
                    burst.push(next);
                }
                Err(_) => break,
            }
        }
        let messages: Vec<&[u8]> = burst.iter().map(|m| m.data.as_slice()).collect();
        let verdicts = log.receive_gossip_batch(&messages);
        for (message, verdict) in burst.into_iter().zip(verdicts) {
            let command = Command::Validated {
                id: message.id,
                source: message.source,
                verdict,
            };
            if commands.blocking_send(command).is_err() {
                return;
            }
        }
    }
}
