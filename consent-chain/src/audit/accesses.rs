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

/// What checking the commitments against a source found.
#[derive(Debug, Default)]
pub(super) struct CheckedRecords {
    /// Records of batches that matched their commitments, with their bank.
    pub records: Vec<(Did, AccessRecord)>,
    /// Batches that do not match their commitment.
    pub problems: Vec<Problem>,
    /// Committed batches the source does not hold.
    pub unavailable: u64,
}

/// Checks every commitment (with the feed seq holding it) against `source`.
pub(super) fn check_commitments(
    commitments: &[(u64, AccessCommitment)],
    source: &dyn RecordSource,
) -> Result<CheckedRecords, StoreError> {
    let mut checked = CheckedRecords::default();
    for (seq, commitment) in commitments {
        let Some(records) = source.batch(&commitment.bank, commitment.batch)? else {
            checked.unavailable += 1;
            continue;
        };
        let first = records.iter().map(|r| r.time).min().unwrap_or(0);
        let last = records.iter().map(|r| r.time).max().unwrap_or(0);
        let matches = batch_root(&records) == commitment.root
            && records.len() == commitment.records as usize
            && (first, last) == (commitment.first, commitment.last);
        if matches {
            let bank = &commitment.bank;
            checked
                .records
                .extend(records.into_iter().map(|r| (bank.clone(), r)));
        } else {
            checked.problems.push(Problem {
                origin: commitment.bank.to_string(),
                seq: *seq,
                problem: format!(
                    "access batch {}: the bank's records do not match its commitment (root, count or time range)",
                    commitment.batch
                ),
            });
        }
    }
    Ok(checked)
}

/// Served and refused accesses per app, busiest first.
pub(super) fn accesses_by_app(state: &State, records: &[(Did, AccessRecord)]) -> Vec<AppAccesses> {
    let mut by_app: BTreeMap<String, AppAccesses> = BTreeMap::new();
    for (_, record) in records {
        let Some(consent) = state.consent(&record.consent_id) else {
            continue;
        };
        let app = by_app
            .entry(consent.terms.app.to_string())
            .or_insert_with(|| AppAccesses {
                app: consent.terms.app.to_string(),
                name: state.app_name(&consent.terms.app).map(str::to_owned),
                ..AppAccesses::default()
            });
        if record.outcome == Outcome::Served {
            app.served += 1;
        } else {
            app.refused += 1;
        }
    }
    let mut accesses_by_app: Vec<AppAccesses> = by_app.into_values().collect();
    accesses_by_app.sort_by_key(|a| std::cmp::Reverse(a.served + a.refused));

    accesses_by_app
}

/// Accesses served under a consent that was not usable at that time, beyond the
/// propagation bound after a revocation entered the log (`logged_at`: each revocation
/// event's first entry time).
pub(super) fn violations(
    state: &State,
    records: &[(Did, AccessRecord)],
    config: &AuditConfig,
    logged_at: &HashMap<Hash32, u64>,
) -> Vec<Violation> {
    let mut violations = Vec::new();
    for (bank, record) in records {
        if record.outcome != Outcome::Served {
            continue;
        }
        let at = DateTime::<Utc>::from_timestamp_millis(record.time as i64).unwrap_or_default();
        let reason = match state.consent(&record.consent_id) {
            None => Some("no such consent on the log".to_owned()),
            Some(consent) if &consent.terms.bank != bank => {
                Some("consent is for another bank".to_owned())
            }
            Some(consent) => {
                let revoked_at = state
                    .verified_revocations(&record.consent_id)
                    .iter()
                    .filter_map(|event_id| logged_at.get(event_id).copied())
                    .min();
                match revoked_at {
                    Some(at_ms)
                        if record.time > at_ms.saturating_add(config.propagation_bound_ms) =>
                    {
                        Some(format!(
                            "served {} ms after the revocation entered the log",
                            record.time - at_ms
                        ))
                    }
                    _ => match consent.validity_at(at) {
                        Validity::NotYetValid => Some("served before validFrom".to_owned()),
                        Validity::Expired => Some("served after validUntil".to_owned()),
                        Validity::Active => None,
                    },
                }
            }
        };
        if let Some(reason) = reason {
            violations.push(Violation {
                bank: bank.to_string(),
                consent_id: record.consent_id,
                operation: record.operation.clone(),
                time: record.time,
                reason,
            });
        }
    }

    violations
}
