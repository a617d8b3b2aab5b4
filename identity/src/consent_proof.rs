//! The shape a consent's proof must have before the suite reads it: one Data Integrity proof by the issuer's own key, for assertion, with string fields only and known ones.

use serde_json::Value;

use crate::Did;
use crate::consent::{CRYPTOSUITE, ConsentError, parse_time};

/// The fields a consent's proof may carry, each a string: nothing else reaches the
/// canonicalizer (a nested object there could make it run away; see `rdf_bound`).
const PROOF_FIELDS: [&str; 9] = [
    "id",
    "type",
    "cryptosuite",
    "created",
    "expires",
    "verificationMethod",
    "proofPurpose",
    "proofValue",
    "nonce",
];

fn proof_fields(proof: &serde_json::Map<String, Value>) -> Result<(), ConsentError> {
    for (field, value) in proof {
        if !PROOF_FIELDS.contains(&field.as_str()) {
            return Err(ConsentError::Malformed(format!(
                "proof.{field} is not a field of a Data Integrity proof"
            )));
        }
        if !value.is_string() {
            return Err(ConsentError::Malformed(format!(
                "proof.{field} is not a string"
            )));
        }
    }
    Ok(())
}

/// Checks `proof` (the credential's `proof`, if any) as a proof of `issuer`'s.
pub(crate) fn check(proof: Option<Value>, issuer: &Did) -> Result<(), ConsentError> {
    let proof = proof.ok_or(ConsentError::MissingProof)?;
    let proof = match proof {
        Value::Object(map) => map,
        Value::Array(_) => {
            return Err(ConsentError::Malformed(
                "exactly one proof is accepted".into(),
            ));
        }
        _ => return Err(ConsentError::Malformed("proof is not an object".into())),
    };
    proof_fields(&proof)?;
    let suite = proof
        .get("cryptosuite")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if proof.get("type").and_then(Value::as_str) != Some("DataIntegrityProof")
        || suite != CRYPTOSUITE
    {
        return Err(ConsentError::UnsupportedCryptosuite(suite.to_owned()));
    }
    let method = proof
        .get("verificationMethod")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if method.split('#').next() != Some(issuer.as_str()) || method != issuer.verification_method() {
        return Err(ConsentError::ProofKeyNotIssuer {
            method: method.to_owned(),
            issuer: issuer.to_string(),
        });
    }
    // The proof's own times are read by the suite: they must be dates it can hold (a year
    // of thirty digits is refused here, not left to overflow inside it).
    for field in ["created", "expires"] {
        if let Some(value) = proof.get(field) {
            let text = value
                .as_str()
                .ok_or_else(|| ConsentError::Malformed(format!("proof.{field} is not a string")))?;
            parse_time(&format!("proof.{field}"), text)?;
        }
    }
    if proof.get("proofPurpose").and_then(Value::as_str) != Some("assertionMethod") {
        return Err(ConsentError::Malformed(
            "proofPurpose must be assertionMethod".into(),
        ));
    }
    Ok(())
}
