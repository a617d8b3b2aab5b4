//! Signed statements: an Ed25519 signature over a domain tag and the canonical JSON of a value, for every signed record that is not a credential.

use serde_json::Value;

use crate::canonical::{CanonicalError, canonical_json};
use crate::keys::{Did, KeyPair, SignatureCheck, verify_signature};
use crate::{b64url, b64url_decode};

/// The bytes a statement signature covers: `consentnet/<domain>/v1\n` then the canonical JSON.
pub fn statement_bytes(domain: &str, value: &Value) -> Result<Vec<u8>, CanonicalError> {
    Ok(statement_bytes_of_canonical(
        domain,
        &canonical_json(value)?,
    ))
}

/// [`statement_bytes`] for a value already in canonical JSON (`canonical`), which the
/// caller vouches for: signing or checking these bytes is signing or checking the value.
pub fn statement_bytes_of_canonical(domain: &str, canonical: &[u8]) -> Vec<u8> {
    let mut bytes = format!("consentnet/{domain}/v1\n").into_bytes();
    bytes.extend_from_slice(canonical);
    bytes
}

/// [`sign_statement`] over a value already in canonical JSON.
pub fn sign_canonical_statement(key: &KeyPair, domain: &str, canonical: &[u8]) -> String {
    b64url(&key.sign(&statement_bytes_of_canonical(domain, canonical)))
}

/// [`statement_check`] over a value already in canonical JSON.
pub fn canonical_statement_check(
    signer: &Did,
    domain: &str,
    canonical: &[u8],
    signature: &str,
) -> SignatureCheck {
    SignatureCheck {
        signer: signer.public_key(),
        message: statement_bytes_of_canonical(domain, canonical),
        signature: b64url_decode(signature).unwrap_or_default(),
    }
}

/// Signs `value` under `domain`; returns the base64url signature.
pub fn sign_statement(
    key: &KeyPair,
    domain: &str,
    value: &Value,
) -> Result<String, CanonicalError> {
    Ok(b64url(&key.sign(&statement_bytes(domain, value)?)))
}

/// True when `signature` (base64url) is `signer`'s signature over `value` under `domain`.
pub fn verify_statement(signer: &Did, domain: &str, value: &Value, signature: &str) -> bool {
    let (Ok(bytes), Some(signature)) = (statement_bytes(domain, value), b64url_decode(signature))
    else {
        return false;
    };
    verify_signature(signer, &bytes, &signature)
}

/// The check [`verify_statement`] makes, as a [`SignatureCheck`] for
/// [`crate::verify_many`]. A signature that is not base64url becomes one that fails.
pub fn statement_check(
    signer: &Did,
    domain: &str,
    value: &Value,
    signature: &str,
) -> Result<SignatureCheck, CanonicalError> {
    Ok(SignatureCheck {
        signer: signer.public_key(),
        message: statement_bytes(domain, value)?,
        signature: b64url_decode(signature).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_statement_verifies_only_under_its_domain_signer_and_value() {
        let key = KeyPair::generate();
        let value = json!({"b": 1, "a": "x"});
        let signature = sign_statement(&key, "app-manifest", &value).unwrap();
        assert!(verify_statement(
            key.did(),
            "app-manifest",
            &value,
            &signature
        ));
        let reordered: Value = serde_json::from_str(r#"{"a":"x","b":1}"#).unwrap();
        assert!(verify_statement(
            key.did(),
            "app-manifest",
            &reordered,
            &signature
        ));
        assert!(!verify_statement(
            key.did(),
            "app-decision",
            &value,
            &signature
        ));
        assert!(!verify_statement(
            key.did(),
            "app-manifest",
            &json!({"b": 2, "a": "x"}),
            &signature
        ));
        assert!(!verify_statement(
            KeyPair::generate().did(),
            "app-manifest",
            &value,
            &signature
        ));
        assert!(!verify_statement(
            key.did(),
            "app-manifest",
            &value,
            "not base64!"
        ));
    }
}
