//! A replica's reads of consents wherever they are: live in memory, or moved to the store's archive once ended.

use consentnet_identity::{ConsentId, Did};

use super::Replica;
use crate::state::{ConsentRecord, Party};
use crate::store::{LogStore, StoreError, archive};

impl<S: LogStore> Replica<S> {
    /// A consent with every revocation applied to it, live or archived; `None` when no
    /// grant of it is known.
    pub fn consent_record(&self, id: &ConsentId) -> Result<Option<ConsentRecord>, StoreError> {
        archive::record(&self.store, self.snapshot.archive, self.state(), id)
    }

    /// The archive generation this replica's archived consents are under, for reads
    /// of the archive through a view of the store.
    pub fn archive_generation(&self) -> u64 {
        self.snapshot.archive
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
