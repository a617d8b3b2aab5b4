//! An entry from a peer: refused, buffered until its gap fills, compared with the stored entry at its position, or appended with the buffered successors it unblocks.

use consentnet_identity::Hash32;

use super::Engine;
use super::step::{Append, Step, evidence, stored};
use crate::entry::{Entry, Sealed};
use crate::event::FeedHead;
use crate::replica::{Received, Rejected, Signatures};
use crate::state::Archived;
use crate::store::StoreError;
use crate::validate::{Check, validate_event};

impl Engine {
    /// Decides what to do with an entry from a peer whose signatures were verified as
    /// `signatures` says ([`crate::replica::verify_sealed`]). An event whose own
    /// signature did not verify there is checked in full, so the error names what is
    /// wrong.
    pub fn receive(&mut self, entry: Sealed, signatures: Signatures) -> Step {
        let check = match self.admit(&entry, signatures) {
            Ok(check) => check,
            Err(error) => return Step::Done(Err(error)),
        };
        let head = self.heads.get(&entry.origin).copied();
        let head_seq = head.map_or(0, |h| h.seq);
        if entry.seq <= head_seq {
            return Step::Compare {
                seq: entry.seq,
                entry,
            };
        }
        if entry.seq > head_seq + 1 {
            return self.buffer(entry, check, head_seq);
        }
        if entry.prev != head.map_or(Hash32::ZERO, |h| h.hash) {
            // The next entry names another predecessor than the one held: a fork.
            return match head {
                Some(head) => Step::Compare {
                    seq: head.seq,
                    entry,
                },
                None => Step::Done(stored(Vec::new())),
            };
        }
        self.extend(entry, check, head)
    }

    /// Continues [`Step::Compare`]: `held` is what the runtime's store holds at the
    /// position it was asked for. The same entry is a duplicate; another is evidence.
    pub fn compared(&mut self, held: Option<Entry>, entry: Sealed) -> Step {
        let Some(held) = held else {
            let missing = StoreError::Corrupt(format!(
                "{}#{} is below the head but missing",
                entry.origin, entry.seq
            ));
            return Step::Done(Err(missing.into()));
        };
        if held == *entry.entry() {
            return Step::Done(Ok(Received::Duplicate));
        }
        evidence(held, entry.into_entry())
    }

    /// Continues [`Step::Append`] once the runtime has written it durably: applies it,
    /// then reports the stored entries, or the fork found after them.
    pub fn appended(&mut self, mut append: Append, archive: &dyn Archived) -> Step {
        let fork = append.fork.take();
        let mut entries = self.commit(append, archive);
        match (fork, entries.pop()) {
            (Some(conflicting), Some(held)) => {
                evidence(held.into_entry(), conflicting.into_entry())
            }
            (_, last) => {
                entries.extend(last);
                Step::Done(stored(entries))
            }
        }
    }

    /// Holds an entry beyond a gap in its feed, bounded, until the gap fills.
    fn buffer(&mut self, entry: Sealed, check: Check, head_seq: u64) -> Step {
        let key = (entry.origin.clone(), entry.seq);
        if let Some((buffered, _)) = self.pending.get(&key) {
            if buffered.entry() == entry.entry() {
                return Step::Done(Ok(Received::Duplicate));
            }
            return evidence(buffered.entry().clone(), entry.into_entry());
        }
        if self.pending.len() >= self.max_pending {
            return Step::Done(Err(Rejected::PendingFull(self.pending.len())));
        }
        let (origin, from, to) = (entry.origin.clone(), head_seq + 1, entry.seq - 1);
        self.pending.insert(key, (entry, check));
        Step::Done(Ok(Received::Buffered { origin, from, to }))
    }

    /// The next entry of its feed and every buffered successor it unblocks, checked, as
    /// one write. A successor that fails its check is dropped; one that names another
    /// predecessor is reported as a fork after the write.
    fn extend(&mut self, entry: Sealed, check: Check, head: Option<FeedHead>) -> Step {
        let origin = entry.origin.clone();
        let mut append = Append::new();
        let mut next = Some((entry, check));
        let mut running_head = head;
        while let Some((candidate, check)) = next.take() {
            if candidate.prev != running_head.map_or(Hash32::ZERO, |h| h.hash) {
                append.fork = Some(candidate);
                break;
            }
            let valid = validate_event(
                &candidate.event,
                &candidate.origin,
                self.state.membership(),
                &self.verifier,
                check,
            );
            match valid {
                Ok(valid) => {
                    running_head = Some(candidate.head());
                    let (seq, id) = (candidate.seq, candidate.event_id());
                    append.push(candidate, id, valid);
                    next = self.pending.remove(&(origin.clone(), seq + 1));
                }
                Err(source) if append.is_empty() => {
                    return Step::Done(Err(Rejected::Event {
                        origin: candidate.origin.to_string(),
                        seq: candidate.seq,
                        source,
                    }));
                }
                Err(_) => break,
            }
        }
        Step::Append(append)
    }
}
