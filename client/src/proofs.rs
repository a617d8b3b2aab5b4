//! Checking a consent's access history as its bank answered it: every record's inclusion proof against the root of the commitment the bank signed in its feed on the shared log.

use consentnet_consent_chain::event::AccessRecord;
use consentnet_consent_chain::merkle::{record_leaf, verify_inclusion};
use consentnet_consent_chain::{Entry, Event, Hash32};
use serde_json::Value;

/// Why an access history does not verify; each names the record or batch.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The answer is not shaped as the node API documents it.
    #[error("the answer is malformed: {0}")]
    Malformed(String),
    /// A batch's commitment is missing (not yet committed) or not a commitment.
    #[error("batch {0} has no commitment entry in the answer")]
    NoCommitment(u64),
    /// The commitment entry is not the bank's, or its signature does not verify.
    #[error("the commitment of batch {batch} is not signed by the bank {bank} in its own feed")]
    NotTheBanks {
        /// The batch.
        batch: u64,
        /// The bank expected.
        bank: String,
    },
    /// A record is not under its batch's committed root.
    #[error("record {index} of batch {batch} is not under the root the bank committed to")]
    NotUnderRoot {
        /// The batch.
        batch: u64,
        /// The record's index in it.
        index: u64,
    },
}

fn field<'a>(value: &'a Value, name: &str) -> Result<&'a Value, ProofError> {
    value
        .get(name)
        .ok_or_else(|| ProofError::Malformed(format!("no {name}")))
}

fn number(value: &Value, name: &str) -> Result<u64, ProofError> {
    field(value, name)?
        .as_u64()
        .ok_or_else(|| ProofError::Malformed(format!("{name} is not a number")))
}

/// Verifies every record of `answer` (a `GET /v1/consents/{id}/accesses` page) came from
/// `bank`: its inclusion proof leads to the root of its batch's commitment, and that
/// commitment entry is signed by `bank` in its own feed. Returns how many verified.
pub fn verify_accesses(answer: &Value, bank: &str) -> Result<usize, ProofError> {
    let accesses = field(answer, "accesses")?
        .as_array()
        .ok_or_else(|| ProofError::Malformed("accesses is not a list".into()))?;
    for access in accesses {
        let batch = number(access, "batch")?;
        let index = number(access, "index")?;
        let commitment = answer
            .pointer(&format!("/batches/{batch}/commitment"))
            .filter(|c| !c.is_null())
            .ok_or(ProofError::NoCommitment(batch))?;
        let entry: Entry = serde_json::from_value(commitment.clone())
            .map_err(|e| ProofError::Malformed(format!("batch {batch}'s commitment: {e}")))?;
        let Event::AccessCommitted { commitment, .. } = &entry.event else {
            return Err(ProofError::NoCommitment(batch));
        };
        let signed = entry.origin.as_str() == bank
            && commitment.bank.as_str() == bank
            && commitment.batch == batch
            && entry.verify_signature();
        if !signed {
            let bank = bank.to_owned();
            return Err(ProofError::NotTheBanks { batch, bank });
        }
        let record: AccessRecord = serde_json::from_value(field(access, "record")?.clone())
            .map_err(|e| ProofError::Malformed(format!("a record: {e}")))?;
        let proof = field(access, "proof")?
            .as_array()
            .ok_or_else(|| ProofError::Malformed("proof is not a list".into()))?
            .iter()
            .map(|h| h.as_str().and_then(Hash32::parse))
            .collect::<Option<Vec<Hash32>>>()
            .ok_or_else(|| ProofError::Malformed("a proof hash is not 64 hex digits".into()))?;
        let size = u64::from(commitment.records);
        if !verify_inclusion(&record_leaf(&record), index, size, &proof, &commitment.root) {
            return Err(ProofError::NotUnderRoot { batch, index });
        }
    }
    Ok(accesses.len())
}
