//! When peers saw each bank's access records: other members' checkpoints bound when an entry existed, and records stamped far earlier than the first peer that saw them are findings.
//!
//! A bank stamps its own records, so its clock alone proves nothing: a bank that served a
//! revoked consent could stamp the access before the revocation. Every member signs
//! checkpoints of the feeds it holds (`Event::Checkpoint`); the first checkpoint by
//! another member that covers a batch shows, in that member's clock, that the batch
//! existed by then. A batch whose oldest record is stamped more than the bound before
//! that is reported, so no stamp can move further back than the bound.

use std::collections::{BTreeMap, HashMap};

use consentnet_identity::Did;
use serde::Serialize;

use crate::entry::Entry;
use crate::event::{AccessCommitment, Event};

/// An access batch whose records are stamped much earlier than any peer saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LateRecords {
    /// The bank whose feed holds the batch.
    pub bank: String,
    /// The batch's entry in that feed.
    pub seq: u64,
    /// Records in the batch.
    pub records: usize,
    /// The oldest record's stamp, ms since the Unix epoch (the bank's clock).
    pub stamped: u64,
    /// The member whose checkpoint first covered the batch.
    pub seen_by: String,
    /// That checkpoint's time, ms since the Unix epoch (that member's clock).
    pub seen_at: u64,
    /// How much later than the stamp the batch was first seen, in ms.
    pub late_ms: u64,
}

/// What the audit collects about timing as it reads the log: per origin, (checkpoint
/// time, head seq covered, observer) for every other member's checkpoint.
#[derive(Debug, Default)]
pub(super) struct Timing {
    sightings: HashMap<Did, Vec<(u64, u64, Did)>>,
}

impl Timing {
    /// Notes a valid entry: a checkpoint's coverage of other feeds.
    pub(super) fn note(&mut self, entry: &Entry) {
        if let Event::Checkpoint { frontier } = &entry.event {
            for (origin, head) in frontier.iter().filter(|(o, _)| **o != entry.origin) {
                self.sightings.entry(origin.clone()).or_default().push((
                    entry.time,
                    head.seq,
                    entry.origin.clone(),
                ));
            }
        }
    }

    /// When each feed's positions were first covered by a peer's checkpoint.
    pub(super) fn coverage(self) -> Coverage {
        // Per origin, sightings by time with the highest seq covered so far: the first
        // index reaching a seq is the first time any peer is known to have held it.
        let mut covered: BTreeMap<Did, Vec<(u64, u64, Did)>> = BTreeMap::new();
        for (origin, mut seen) in self.sightings {
            seen.sort_by_key(|(time, _, _)| *time);
            let mut highest = 0;
            for sighting in &mut seen {
                highest = highest.max(sighting.1);
                sighting.1 = highest;
            }
            covered.insert(origin, seen);
        }
        Coverage { covered }
    }
}

/// Per origin, sightings by time with the highest seq covered by then.
#[derive(Debug, Default)]
pub(super) struct Coverage {
    covered: BTreeMap<Did, Vec<(u64, u64, Did)>>,
}

impl Coverage {
    /// The batch at feed seq `seq` when a peer first saw it more than `bound_ms` after its
    /// oldest stamp. A batch no peer's checkpoint covers yet is not judged.
    pub(super) fn late(
        &self,
        seq: u64,
        commitment: &AccessCommitment,
        bound_ms: u64,
    ) -> Option<LateRecords> {
        let seen = self.covered.get(&commitment.bank)?;
        let first = seen.partition_point(|(_, covers, _)| *covers < seq);
        let (seen_at, _, by) = seen.get(first)?;
        let late_ms = seen_at.saturating_sub(commitment.first);
        (late_ms > bound_ms).then(|| LateRecords {
            bank: commitment.bank.to_string(),
            seq,
            records: commitment.records as usize,
            stamped: commitment.first,
            seen_by: by.to_string(),
            seen_at: *seen_at,
            late_ms,
        })
    }
}
