//! Work done outside the replica's lock before it decides: entries' signatures verified in one batch, and local events' canonical JSON and signatures prepared.

use crate::entry::Sealed;
use crate::event::Event;
use crate::validate::Check;

/// Which signatures of an entry verified: its origin's, and its event's own (true for an
/// event without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signatures {
    /// The origin's signature over the entry.
    pub entry: bool,
    /// The event's own signature.
    pub event: bool,
}

/// Verifies the origin and event signatures of sealed `entries` together (Ed25519
/// batch verification, a failing batch re-checked one by one; the signed bytes are
/// slices of each entry's canonical bytes): one verdict per entry, for
/// [`Replica::receive_sealed`].
pub fn verify_sealed<'a>(entries: impl IntoIterator<Item = &'a Sealed>) -> Vec<Signatures> {
    let mut checks = Vec::new();
    let mut slots = Vec::new();
    for entry in entries {
        checks.push(entry.signature_check());
        let entry_slot = checks.len() - 1;
        let event_slot = entry.event_signature_check().map(|check| {
            checks.push(check);
            checks.len() - 1
        });
        slots.push((entry_slot, event_slot));
    }
    let verdicts = consentnet_identity::verify_many(&checks);
    slots
        .into_iter()
        .map(|(entry_slot, event_slot)| Signatures {
            entry: verdicts[entry_slot],
            // An event without its own signature has nothing more to verify.
            event: event_slot.is_none_or(|slot| verdicts[slot]),
        })
        .collect()
}

/// An event to append, prepared by [`prepare_events`].
#[derive(Debug, Clone)]
pub struct Prepared {
    pub(crate) event: Event,
    /// The event's canonical JSON.
    pub(crate) json: Vec<u8>,
    /// [`Check::Presigned`] when the event's own signature verified in the batch,
    /// [`Check::Full`] otherwise (so a bad one is refused by name).
    pub(crate) check: Check,
}

/// Prepares events for [`super::Replica::append_prepared`]: each event's canonical JSON, and
/// the events' own signatures (app manifests, decisions, access batches) verified
/// together in one batch. Needs no replica, so it can run outside the replica's lock.
pub fn prepare_events(events: Vec<Event>) -> Vec<Prepared> {
    let jsons: Vec<Vec<u8>> = events.iter().map(Event::canonical).collect();
    let mut checks = Vec::new();
    let mut slots = Vec::with_capacity(events.len());
    for (event, json) in events.iter().zip(&jsons) {
        slots.push(event.signature_check_of_canonical(json).map(|check| {
            checks.push(check);
            checks.len() - 1
        }));
    }
    let verdicts = consentnet_identity::verify_many(&checks);
    events
        .into_iter()
        .zip(jsons)
        .zip(slots)
        .map(|((event, json), slot)| Prepared {
            event,
            json,
            check: match slot {
                Some(slot) if verdicts[slot] => Check::Presigned,
                _ => Check::Full,
            },
        })
        .collect()
}
