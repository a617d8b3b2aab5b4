//! A replica's reads of consents wherever they are: live in memory, or moved to the store's archive once ended.

use std::collections::BTreeMap;
use std::sync::Arc;

use consentnet_identity::{ConsentId, Did, VerifiedConsent};

use super::Replica;
use crate::state::{ConsentRecord, Party};
use crate::store::{LogStore, StoreError, archive};

impl<S: LogStore> Replica<S> {
    /// A consent with every revocation applied to it, live or archived; `None` when no
    /// grant of it is known.
    pub fn consent_record(&self, id: &ConsentId) -> Result<Option<ConsentRecord>, StoreError> {
        if let Some(record) = self.state.consent_record(id) {
            return Ok(Some(record));
        }
        let generation = self.snapshot.archive;
        let Some(credential) = archive::consent(&self.store, generation, id)? else {
            return Ok(None);
        };
        let consent = VerifiedConsent::from_trusted_store(&credential).map_err(|error| {
            StoreError::Corrupt(format!("an archived consent does not parse: {error}"))
        })?;
        let mut revocations: BTreeMap<_, _> = archive::revocations(&self.store, generation, id)?
            .into_iter()
            .collect();
        if let Some(late) = self.state.late_revocations(id) {
            revocations.extend(late.iter().map(|(id, r)| (*id, r.clone())));
        }
        Ok(Some(ConsentRecord {
            consent: Arc::new(consent),
            revocations,
        }))
    }

    /// Up to `limit` archived consents naming `did` as `party`, in id order, after
    /// `after`.
    pub fn archived_of(
        &self,
        party: Party,
        did: &Did,
        after: Option<&ConsentId>,
        limit: usize,
    ) -> Result<Vec<ConsentId>, StoreError> {
        archive::of_party(&self.store, self.snapshot.archive, party, did, after, limit)
    }
}
