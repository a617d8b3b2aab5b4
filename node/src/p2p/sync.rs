//! Range sync: answering a peer's frontier and range requests from the log, and taking in its answers.

use libp2p::PeerId;

use consentnet_consent_chain::Sealed;
use consentnet_consent_chain::replica::MAX_RANGE;

use consentnet_identity::Did;

use super::LogPeer;
use super::counters::Counters;
use super::event_loop::Command;
use super::wire::{SyncRequest, SyncResponse};

/// Answers a peer's sync request from the log; `from` is the peer's member DID.
pub(super) fn answer(log: &dyn LogPeer, from: Option<&Did>, request: SyncRequest) -> SyncResponse {
    match request {
        SyncRequest::Batch(batch) => match from.and_then(|did| log.access_batch(did, batch)) {
            Some(records) => SyncResponse::Batch(batch, records),
            None => SyncResponse::Refused("access batches are served to regulators only".into()),
        },
        SyncRequest::BundleFile(hash) => SyncResponse::BundleFile(
            hash,
            log.bundle_file(&hash)
                .map(|bytes| consentnet_identity::b64url(&bytes)),
        ),
        SyncRequest::Frontier => SyncResponse::Frontier(log.frontier()),
        SyncRequest::Range(range) => match log.serve(&range) {
            Ok(entries) => SyncResponse::Entries(
                entries
                    .into_iter()
                    .map(|bytes| {
                        String::from_utf8(bytes)
                            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
                    })
                    .collect(),
            ),
            Err(error) => SyncResponse::Refused(error.to_string()),
        },
    }
}

/// Takes in a peer's sync answer; returns the follow-up commands. `from` is the peer's
/// member DID.
pub(super) fn absorb(
    log: &dyn LogPeer,
    peer: PeerId,
    from: Option<&Did>,
    response: SyncResponse,
) -> Vec<Command> {
    match response {
        SyncResponse::Batch(batch, records) => {
            let Some(bank) = from else {
                return Vec::new();
            };
            if !log.keep_batch(bank, batch, &records) {
                return vec![Command::Strike(
                    peer,
                    format!("unwanted or malformed access batch {batch}"),
                )];
            }
            Counters::bump(&log.counters().access_batches_fetched);
            // Go on with this bank's next batch at once, while there is one.
            log.wanted_from(bank)
                .map(|next| Command::Request {
                    peer,
                    request: SyncRequest::Batch(next),
                })
                .into_iter()
                .collect()
        }
        SyncResponse::Frontier(theirs) => log
            .wants(&theirs)
            .into_iter()
            .map(|range| Command::Request {
                peer,
                request: SyncRequest::Range(range),
            })
            .collect(),
        SyncResponse::Entries(texts) => {
            if texts.len() > MAX_RANGE as usize {
                return vec![Command::Strike(peer, "oversized range answer".into())];
            }
            let full = texts.len() == MAX_RANGE as usize;
            log.counters()
                .sync_entries_received
                .fetch_add(texts.len() as u64, std::sync::atomic::Ordering::Relaxed);
            let mut entries = Vec::with_capacity(texts.len());
            let mut follow = Vec::new();
            for text in texts {
                match Sealed::decode(text.as_bytes()) {
                    Ok(entry) => entries.push(entry),
                    Err(error) => follow.push(Command::Strike(peer, error.to_string())),
                }
            }
            let outcome = log.receive_entries(entries);
            log.counters()
                .sync_entries_stored
                .fetch_add(outcome.stored as u64, std::sync::atomic::Ordering::Relaxed);
            for evidence in &outcome.evidence {
                if let Ok(bytes) = serde_json::to_vec(evidence) {
                    follow.push(Command::PublishEvidence(bytes));
                }
            }
            if outcome.rejected > 0 {
                follow.push(Command::Strike(
                    peer,
                    format!("{} invalid entries in a range answer", outcome.rejected),
                ));
            }
            if full && outcome.stored > 0 {
                // The answer was cut at its limit: keep going until this peer has
                // nothing more for us. An answer that was not cut reached the peer's
                // head as it stood; what it appended since arrives by gossip (or at the
                // next periodic exchange), so asking again would only chase the live
                // head and fetch every new entry twice.
                follow.push(Command::Request {
                    peer,
                    request: SyncRequest::Frontier,
                });
            }
            follow
        }
        SyncResponse::BundleFile(hash, Some(text)) => {
            let kept = consentnet_identity::b64url_decode(&text)
                .ok_or_else(|| "bundle file not in base64url".to_owned())
                .and_then(|bytes| log.keep_bundle_file(&hash, &bytes));
            match kept {
                Ok(()) => {
                    Counters::bump(&log.counters().bundle_files_fetched);
                    Vec::new()
                }
                Err(why) => vec![Command::Strike(peer, format!("bundle file {hash}: {why}"))],
            }
        }
        // Not held there: the next round asks another member.
        SyncResponse::BundleFile(_, None) => Vec::new(),
        SyncResponse::Refused(reason) => {
            tracing::debug!(%peer, reason, "sync request refused");
            Vec::new()
        }
    }
}
