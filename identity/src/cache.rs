//! A bounded cache of verified consents keyed by consent id, so the hot path costs a hash and a lookup, not a JSON-LD canonicalization.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::consent::{ConsentError, ConsentId, VerifiedConsent, parse_bounded, verify_consent};

/// Verifies consent credentials once and remembers them by id. Evicts the oldest entry
/// when full. Safe to share between threads.
#[derive(Debug)]
pub struct ConsentVerifier {
    capacity: usize,
    entries: Mutex<Entries>,
    full_verifications: AtomicU64,
    hits: AtomicU64,
}

#[derive(Debug, Default)]
struct Entries {
    by_id: HashMap<ConsentId, Arc<VerifiedConsent>>,
    order: VecDeque<ConsentId>,
}

impl ConsentVerifier {
    /// A verifier that remembers at most `capacity` consents (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::default(),
            full_verifications: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        }
    }

    fn entries(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding the lock cannot leave the map inconsistent (each
        // operation is a single insert or remove), so a poisoned lock is still usable.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Verifies a credential, or returns the remembered result for the same credential
    /// (same canonical JSON, so the same consent id) without canonicalizing it again.
    pub async fn verify(&self, bytes: &[u8]) -> Result<Arc<VerifiedConsent>, ConsentError> {
        let value = parse_bounded(bytes)?;
        let id = crate::consent::consent_id(&value)?;
        if let Some(hit) = self.get(&id) {
            return Ok(hit);
        }
        self.full_verifications.fetch_add(1, Ordering::Relaxed);
        let verified = Arc::new(verify_consent(bytes).await?);
        self.insert(verified.clone());
        Ok(verified)
    }

    /// The remembered consent with this id, if any: the adapter's hot path.
    pub fn get(&self, id: &ConsentId) -> Option<Arc<VerifiedConsent>> {
        let hit = self.entries().by_id.get(id).cloned();
        if hit.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    /// Remembers a consent verified elsewhere (e.g. one this process issued).
    pub fn insert(&self, consent: Arc<VerifiedConsent>) {
        let mut entries = self.entries();
        if entries.by_id.insert(consent.id, consent.clone()).is_none() {
            entries.order.push_back(consent.id);
        }
        while entries.by_id.len() > self.capacity {
            match entries.order.pop_front() {
                Some(oldest) => {
                    entries.by_id.remove(&oldest);
                }
                None => break,
            }
        }
    }

    /// How many consents are remembered.
    pub fn len(&self) -> usize {
        self.entries().by_id.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many full verifications (with JSON-LD canonicalization) have run.
    pub fn full_verifications(&self) -> u64 {
        self.full_verifications.load(Ordering::Relaxed)
    }

    /// How many lookups were answered from the cache.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
}
