//! What to ask a peer for, given its frontier: ranges past this engine's heads, and positions where the peer's head may contradict an entry held.

use std::collections::BTreeMap;

use consentnet_identity::{Did, Hash32};

use super::Engine;
use crate::event::FeedHead;
use crate::replica::{MAX_RANGE, RangeRequest};

/// The engine's wants from one peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wants {
    /// Ranges to ask for, at most [`MAX_RANGE`] entries each.
    pub ranges: Vec<RangeRequest>,
    /// Peer heads behind this engine's: where the stored entry at that position has
    /// another hash, the runtime asks for the peer's entry there too, because receiving
    /// it exposes the equivocation ([`Wants::resolve`]).
    pub compare: Vec<(Did, FeedHead)>,
}

impl Wants {
    /// The range requests, with each compared position whose stored hash
    /// (`stored_hash`, from the runtime's store) differs from the peer's.
    pub fn resolve(
        self,
        mut stored_hash: impl FnMut(&Did, u64) -> Option<Hash32>,
    ) -> Vec<RangeRequest> {
        let mut ranges = self.ranges;
        for (origin, head) in self.compare {
            if stored_hash(&origin, head.seq).is_some_and(|hash| hash != head.hash) {
                ranges.push(single(origin, head.seq));
            }
        }
        ranges
    }
}

fn single(origin: Did, seq: u64) -> RangeRequest {
    RangeRequest {
        origin,
        from: seq,
        to: seq,
    }
}

impl Engine {
    /// What to ask a peer with frontier `theirs` for. A peer head at this engine's head
    /// is compared here; one behind it is left to the runtime ([`Wants::compare`]).
    /// Feeds of non-members, and contradictions in feeds already known to fork, are
    /// not asked for.
    pub fn wants(&self, theirs: &BTreeMap<Did, FeedHead>) -> Wants {
        let mut wants = Wants::default();
        for (origin, their_head) in theirs {
            if self.state.membership().get(origin).is_none() || their_head.seq == 0 {
                continue;
            }
            let mine = self.heads.get(origin).copied();
            let mine_seq = mine.map_or(0, |h| h.seq);
            if their_head.seq > mine_seq {
                let from = mine_seq + 1;
                wants.ranges.push(RangeRequest {
                    origin: origin.clone(),
                    from,
                    to: their_head.seq.min(from + MAX_RANGE - 1),
                });
            } else if self.equivocators.contains(origin) {
                continue;
            } else if their_head.seq == mine_seq {
                if mine.is_some_and(|h| h.hash != their_head.hash) {
                    wants.ranges.push(single(origin.clone(), their_head.seq));
                }
            } else {
                wants.compare.push((origin.clone(), *their_head));
            }
        }
        wants
    }
}
