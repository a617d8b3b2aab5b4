//! The access records the audit checks: each commitment on the log against the records a source holds for it (a bank's own store, or what a regulator fetched), then every served record against the consent it was served under.
//!
//! The shared log carries only commitments: a Merkle root, a count and a time range per
//! batch. The records themselves come from a [`RecordSource`]. A batch the source holds
//! that does not match its commitment is a problem; a batch it does not hold is counted
//! as unavailable (its records cannot be judged here).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use consentnet_identity::{Did, Hash32, Validity};

use super::{AppAccesses, AuditConfig, Problem, Violation};
use crate::event::{AccessCommitment, AccessRecord, Outcome};
use crate::merkle::batch_root;
use crate::state::State;
use crate::store::StoreError;

/// Where the audit finds the records a commitment covers.
pub trait RecordSource {
    /// The records of `bank`'s batch `batch`, in order, when this source holds them.
    fn batch(&self, bank: &Did, batch: u64) -> Result<Option<Vec<AccessRecord>>, StoreError>;
}

/// A source with no records: the audit checks the log alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRecords;

impl RecordSource for NoRecords {
    fn batch(&self, _: &Did, _: u64) -> Result<Option<Vec<AccessRecord>>, StoreError> {
        Ok(None)
    }
}

/// Checks commitments one batch at a time, as the audit meets them on the log: each
/// batch is fetched from the source, matched against its commitment, and its records
/// folded into per-app counts and violations. No batch is kept after it is checked, so
/// memory does not grow with the records.
pub(super) struct RecordCheck<'a> {
    state: &'a State,
    config: &'a AuditConfig,
    logged_at: &'a HashMap<Hash32, u64>,
    source: &'a dyn RecordSource,
    found: Found,
    by_app: BTreeMap<String, AppAccesses>,
}

/// What checking the commitments against a source found.
#[derive(Debug, Default)]
pub(super) struct Found {
    /// Records of batches that matched their commitments.
    pub accesses: usize,
    /// Batches that do not match their commitment.
    pub problems: Vec<Problem>,
    /// Committed batches the source does not hold.
    pub unavailable: u64,
    /// Accesses served under unusable consents.
    pub violations: Vec<Violation>,
    /// Served and refused accesses per app, busiest first.
    pub by_app: Vec<AppAccesses>,
}

impl<'a> RecordCheck<'a> {
    /// A check against the final `state`, with each revocation's first log time in
    /// `logged_at`.
    pub(super) fn new(
        state: &'a State,
        config: &'a AuditConfig,
        logged_at: &'a HashMap<Hash32, u64>,
        source: &'a dyn RecordSource,
    ) -> Self {
        Self {
            state,
            config,
            logged_at,
            source,
            found: Found::default(),
            by_app: BTreeMap::new(),
        }
    }

    /// Checks the commitment at feed seq `seq` against the source's records for it.
    pub(super) fn commitment(
        &mut self,
        seq: u64,
        commitment: &AccessCommitment,
    ) -> Result<(), StoreError> {
        let Some(records) = self.source.batch(&commitment.bank, commitment.batch)? else {
            self.found.unavailable += 1;
            return Ok(());
        };
        if !matches(&records, commitment) {
            self.found.problems.push(Problem {
                origin: commitment.bank.to_string(),
                seq,
                problem: format!(
                    "access batch {}: the bank's records do not match its commitment (root, count or time range)",
                    commitment.batch
                ),
            });
            return Ok(());
        }
        self.found.accesses += records.len();
        for record in &records {
            self.count(record);
            if let Some(violation) = self.violation(&commitment.bank, record) {
                self.found.violations.push(violation);
            }
        }
        Ok(())
    }

    /// What was found, with the per-app counts busiest first.
    pub(super) fn finish(mut self) -> Found {
        let mut by_app: Vec<AppAccesses> = std::mem::take(&mut self.by_app).into_values().collect();
        by_app.sort_by_key(|a| std::cmp::Reverse(a.served + a.refused));
        self.found.by_app = by_app;
        self.found
    }

    /// Counts `record` for the app its consent names.
    fn count(&mut self, record: &AccessRecord) {
        let Some(consent) = self.state.consent(&record.consent_id) else {
            return;
        };
        let app = self
            .by_app
            .entry(consent.terms.app.to_string())
            .or_insert_with(|| AppAccesses {
                app: consent.terms.app.to_string(),
                name: self.state.app_name(&consent.terms.app).map(str::to_owned),
                ..AppAccesses::default()
            });
        if record.outcome == Outcome::Served {
            app.served += 1;
        } else {
            app.refused += 1;
        }
    }

    /// Why `bank` should not have served `record`, beyond the propagation bound after a
    /// revocation entered the log; `None` when it was usable or was refused.
    fn violation(&self, bank: &Did, record: &AccessRecord) -> Option<Violation> {
        if record.outcome != Outcome::Served {
            return None;
        }
        let at = DateTime::<Utc>::from_timestamp_millis(record.time as i64).unwrap_or_default();
        let reason = match self.state.consent(&record.consent_id) {
            None => "no such consent on the log".to_owned(),
            Some(consent) if &consent.terms.bank != bank => {
                "consent is for another bank".to_owned()
            }
            Some(consent) => {
                let revoked_at = self
                    .state
                    .verified_revocations(&record.consent_id)
                    .iter()
                    .filter_map(|event_id| self.logged_at.get(event_id).copied())
                    .min();
                match revoked_at {
                    Some(at_ms)
                        if record.time > at_ms.saturating_add(self.config.propagation_bound_ms) =>
                    {
                        format!(
                            "served {} ms after the revocation entered the log",
                            record.time - at_ms
                        )
                    }
                    _ => match consent.validity_at(at) {
                        Validity::NotYetValid => "served before validFrom".to_owned(),
                        Validity::Expired => "served after validUntil".to_owned(),
                        Validity::Active => return None,
                    },
                }
            }
        };
        Some(Violation {
            bank: bank.to_string(),
            consent_id: record.consent_id,
            operation: record.operation.clone(),
            time: record.time,
            reason,
        })
    }
}

/// The records' root, count and time range are the commitment's.
fn matches(records: &[AccessRecord], commitment: &AccessCommitment) -> bool {
    let first = records.iter().map(|r| r.time).min().unwrap_or(0);
    let last = records.iter().map(|r| r.time).max().unwrap_or(0);
    batch_root(records) == commitment.root
        && records.len() == commitment.records as usize
        && (first, last) == (commitment.first, commitment.last)
}
