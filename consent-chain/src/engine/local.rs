//! Events submitted to this node: validated and sealed into its own feed as one append, or answered with the entry already holding them.

use std::collections::HashMap;

use consentnet_identity::{Hash32, KeyPair};

use super::Engine;
use super::step::Append;
use crate::entry::Sealed;
use crate::replica::{Prepared, Rejected};
use crate::validate::validate_event;

/// What sealing decided for one local event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Local {
    /// Sealed as the append's entry at this index: on the log once the append is written.
    New(usize),
    /// The same event as the append's entry at this index, earlier in the same batch.
    Again(usize),
    /// Already on the log, in this entry (as the runtime's index said).
    Existing(Box<Sealed>),
}

/// Local events sealed: one outcome per event, in order, and the append that puts the
/// new ones on this node's feed (empty when none is new).
#[derive(Debug)]
pub struct Sealing {
    /// One outcome per event.
    pub outcomes: Vec<Result<Local, Rejected>>,
    /// The new entries, chained after this node's head.
    pub append: Append,
}

impl Engine {
    /// Validates `events` and seals the new ones into this node's feed (`key` is the
    /// node key), each given with the entry the runtime's index holds for it, if any.
    /// An invalid event is refused without affecting the others. Nothing changes until
    /// the runtime writes the append and commits it ([`Engine::commit`]).
    pub fn seal_local(
        &self,
        key: &KeyPair,
        events: Vec<(Prepared, Option<Sealed>)>,
        now_ms: u64,
    ) -> Sealing {
        let origin = key.did().clone();
        let mut append = Append::new();
        if self.state.membership().get(&origin).is_none() {
            let outcomes = events
                .iter()
                .map(|_| Err(Rejected::NotMember(origin.to_string())))
                .collect();
            return Sealing { outcomes, append };
        }
        let mut outcomes = Vec::with_capacity(events.len());
        let mut in_batch: HashMap<Hash32, usize> = HashMap::new();
        let mut head = self.heads.get(&origin).copied();
        for (prepared, known) in events {
            let Prepared { event, json, check } = prepared;
            let id = Hash32::of(&json);
            if let Some(&earlier) = in_batch.get(&id) {
                outcomes.push(Ok(Local::Again(earlier)));
                continue;
            }
            if let Some(existing) = known {
                outcomes.push(Ok(Local::Existing(Box::new(existing))));
                continue;
            }
            let membership = self.state.membership();
            match validate_event(&event, &origin, membership, &self.verifier, check) {
                Ok(valid) => {
                    let entry = Sealed::sign(key, head, now_ms, event, Some(json));
                    head = Some(entry.head());
                    let index = append.entries().len();
                    in_batch.insert(id, index);
                    append.push(entry, id, valid);
                    outcomes.push(Ok(Local::New(index)));
                }
                Err(error) => outcomes.push(Err(error.into())),
            }
        }
        Sealing { outcomes, append }
    }
}
