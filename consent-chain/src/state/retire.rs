//! Moving ended consents out of memory: which ones a snapshot takes to the archive, and the state once that write is durable.

use chrono::{DateTime, Utc};
use consentnet_identity::{ConsentId, Did, Validity};
use im::{OrdMap, OrdSet};

use super::{MAX_RETIRED_PER_SNAPSHOT, Retirement, State};

impl State {
    /// What the next snapshot moves to the archive (generation `generation`): consents
    /// ended at `now` (revoked, or past `validUntil`), at most
    /// [`MAX_RETIRED_PER_SNAPSHOT`], each with its revocations, and every late
    /// revocation. Changes nothing; [`State::retired`] does once the write is durable.
    pub fn retirement(&self, now: DateTime<Utc>, generation: u64) -> Retirement {
        let consents = self
            .consents
            .values()
            .filter(|consent| {
                consent.validity_at(now) == Validity::Expired
                    || self.effective_revocation(&consent.id).is_some()
            })
            .take(MAX_RETIRED_PER_SNAPSHOT)
            .map(|consent| {
                let revocations = self
                    .revocations
                    .get(&consent.id)
                    .map(|held| held.iter().map(|(id, r)| (*id, r.clone())).collect())
                    .unwrap_or_default();
                (consent.clone(), revocations)
            })
            .collect();
        let revocations = self
            .late
            .values()
            .flat_map(|held| held.iter().map(|(id, r)| (*id, r.clone())))
            .collect();
        Retirement {
            generation,
            consents,
            revocations,
        }
    }

    /// Drops from memory what `retirement` wrote to the archive. A revocation of a
    /// retired consent applied after the retirement was taken stays, as a late one,
    /// for the next snapshot to write.
    pub fn retired(&mut self, retirement: &Retirement) {
        for (consent, written) in &retirement.consents {
            let id = consent.id;
            if self.consents.remove(&id).is_none() {
                continue;
            }
            unindex(&mut self.by_client, &consent.issuer, &id);
            unindex(&mut self.by_app, &consent.terms.app, &id);
            unindex(&mut self.by_bank, &consent.terms.bank, &id);
            if let Some(mut held) = self.revocations.remove(&id) {
                for (event_id, _) in written {
                    held.remove(event_id);
                }
                if !held.is_empty() {
                    self.late.entry(id).or_default().append(&mut held);
                }
            }
        }
        for (event_id, revocation) in &retirement.revocations {
            let id = revocation.consent_id;
            let emptied = self.late.get_mut(&id).is_some_and(|held| {
                held.remove(event_id);
                held.is_empty()
            });
            if emptied {
                self.late.remove(&id);
            }
        }
    }
}

fn unindex(index: &mut OrdMap<Did, OrdSet<ConsentId>>, party: &Did, id: &ConsentId) {
    let emptied = index.get_mut(party).is_some_and(|ids| {
        ids.remove(id);
        ids.is_empty()
    });
    if emptied {
        index.remove(party);
    }
}
