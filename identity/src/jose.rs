//! Compact JWS with Ed25519 (`alg` `Ed25519` or `EdDSA`) as OAuth clients send them: public keys as JWKs and their RFC 7638 thumbprints, and signed JWTs checked against a DID's key.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::keys::{Did, KeyPair, verify_signature};
use crate::{b64url, b64url_decode};

/// The JOSE algorithm names accepted for an Ed25519 signature: `Ed25519`, the fully
/// specified name of RFC 9864, and `EdDSA`, which it deprecates and which older clients
/// still send. Signatures made here say `EdDSA`, which every verifier still understands.
pub const ALGORITHMS: [&str; 2] = ["Ed25519", "EdDSA"];

/// The largest compact JWS accepted, in bytes.
pub const MAX_JWS_BYTES: usize = 8 * 1024;

/// Why a JWS or JWK is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    /// Not a compact JWS (or JWK) of the expected shape.
    #[error("malformed JWS: {0}")]
    Malformed(String),
    /// The algorithm is not EdDSA.
    #[error("alg must be EdDSA, not {0:?}")]
    WrongAlgorithm(String),
    /// The JWK is not an Ed25519 public key.
    #[error("the key must be an Ed25519 public JWK (kty OKP, crv Ed25519, x)")]
    UnsupportedKey,
    /// The signature does not verify with the expected key.
    #[error("signature does not verify for {0}")]
    BadSignature(String),
}

/// The public JWK of `did`'s Ed25519 key: `{"kty":"OKP","crv":"Ed25519","x":…}`.
pub fn public_jwk(did: &Did) -> Value {
    json!({ "kty": "OKP", "crv": "Ed25519", "x": b64url(did.public_key().as_bytes()) })
}

/// The DID of the Ed25519 key in `jwk`; other members (`kid`, `use`, ...) are ignored,
/// and a JWK with a private part (`d`) is refused so no secret is ever accepted.
pub fn did_from_jwk(jwk: &Value) -> Result<Did, JoseError> {
    let field = |name: &str| jwk.get(name).and_then(Value::as_str);
    if field("kty") != Some("OKP") || field("crv") != Some("Ed25519") || jwk.get("d").is_some() {
        return Err(JoseError::UnsupportedKey);
    }
    let x = field("x")
        .and_then(b64url_decode)
        .ok_or(JoseError::UnsupportedKey)?;
    let bytes: [u8; 32] = x.try_into().map_err(|_| JoseError::UnsupportedKey)?;
    let key =
        ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| JoseError::UnsupportedKey)?;
    Ok(Did::from_public_key(&key))
}

/// The RFC 7638 thumbprint of `did`'s key, as DPoP's `cnf.jkt` names a key.
pub fn jwk_thumbprint(did: &Did) -> String {
    // Required members only, in lexicographic order, no whitespace (RFC 7638 section 3).
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        b64url(did.public_key().as_bytes())
    );
    b64url(&Sha256::digest(canonical.as_bytes()))
}

/// A compact JWS split into its decoded header and claims, not yet verified.
#[derive(Debug, Clone)]
pub struct Jws {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The claims (payload as a JSON object).
    pub claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

impl Jws {
    /// Splits and decodes `token`; checks its size, shape and `alg` only.
    pub fn decode(token: &str) -> Result<Self, JoseError> {
        if token.len() > MAX_JWS_BYTES {
            return Err(JoseError::Malformed(format!(
                "{} bytes; the limit is {MAX_JWS_BYTES}",
                token.len()
            )));
        }
        let malformed = |why: &str| JoseError::Malformed(why.to_owned());
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("a compact JWS has three parts"));
        };
        let object = |part: &str, what: &str| -> Result<Map<String, Value>, JoseError> {
            let bytes = b64url_decode(part)
                .ok_or_else(|| JoseError::Malformed(format!("{what} is not base64url")))?;
            match crate::strict::from_slice(&bytes) {
                Ok(Value::Object(map)) => Ok(map),
                _ => Err(JoseError::Malformed(format!("{what} is not a JSON object"))),
            }
        };
        let header_map = object(header, "header")?;
        let claims_map = object(claims, "payload")?;
        match header_map.get("alg").and_then(Value::as_str) {
            Some(alg) if ALGORITHMS.contains(&alg) => {}
            other => return Err(JoseError::WrongAlgorithm(other.unwrap_or("").to_owned())),
        }
        if header_map.contains_key("crit") {
            return Err(malformed("no critical header extensions are understood"));
        }
        let signature =
            b64url_decode(signature).ok_or_else(|| malformed("signature is not base64url"))?;
        Ok(Self {
            header: header_map,
            claims: claims_map,
            signing_input: token[..header.len() + 1 + claims.len()].to_owned(),
            signature,
        })
    }

    /// Checks the signature with `signer`'s key.
    pub fn verify(&self, signer: &Did) -> Result<(), JoseError> {
        if verify_signature(signer, self.signing_input.as_bytes(), &self.signature) {
            Ok(())
        } else {
            Err(JoseError::BadSignature(signer.to_string()))
        }
    }

    /// A string claim.
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A numeric date claim (seconds since the Unix epoch).
    pub fn claim_time(&self, name: &str) -> Option<i64> {
        self.claims.get(name).and_then(Value::as_i64)
    }
}

/// Signs `claims` as a compact JWS with `key`, the header carrying `alg: EdDSA` plus
/// the members of `header`.
pub fn sign_jws(key: &KeyPair, header: &Value, claims: &Value) -> String {
    let mut full = json!({ "alg": "EdDSA" });
    if let (Some(full), Some(extra)) = (full.as_object_mut(), header.as_object()) {
        for (name, value) in extra {
            full.insert(name.clone(), value.clone());
        }
    }
    let encode = |value: &Value| {
        b64url(&serde_json::to_vec(value).unwrap_or_else(|_| unreachable!("JSON values encode")))
    };
    let signing_input = format!("{}.{}", encode(&full), encode(claims));
    let signature = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", b64url(&signature))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_jwk_round_trips_to_the_same_did_and_a_private_jwk_is_refused() {
        let key = KeyPair::generate();
        let jwk = public_jwk(key.did());
        assert_eq!(&did_from_jwk(&jwk).unwrap(), key.did());
        let mut private = jwk.clone();
        private["d"] = json!("AAAA");
        assert_eq!(did_from_jwk(&private), Err(JoseError::UnsupportedKey));
        let mut other_curve = jwk;
        other_curve["crv"] = json!("X25519");
        assert_eq!(did_from_jwk(&other_curve), Err(JoseError::UnsupportedKey));
    }

    #[test]
    fn the_thumbprint_matches_rfc_8037_appendix_a3() {
        // RFC 8037 A.3: the thumbprint of the example Ed25519 key.
        let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        let key =
            ed25519_dalek::VerifyingKey::from_bytes(&b64url_decode(x).unwrap().try_into().unwrap())
                .unwrap();
        assert_eq!(
            jwk_thumbprint(&Did::from_public_key(&key)),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn a_signed_jws_verifies_for_its_signer_only() {
        let (key, other) = (KeyPair::generate(), KeyPair::generate());
        let token = sign_jws(
            &key,
            &json!({"typ": "JWT"}),
            &json!({"iss": "me", "exp": 5}),
        );
        let jws = Jws::decode(&token).unwrap();
        assert_eq!(jws.claim_str("iss"), Some("me"));
        assert_eq!(jws.claim_time("exp"), Some(5));
        jws.verify(key.did()).unwrap();
        assert!(matches!(
            jws.verify(other.did()),
            Err(JoseError::BadSignature(_))
        ));
        let none = format!(
            "{}.{}.",
            b64url(br#"{"alg":"none"}"#),
            b64url(br#"{"iss":"me"}"#)
        );
        assert!(matches!(
            Jws::decode(&none),
            Err(JoseError::WrongAlgorithm(_))
        ));
    }

    #[test]
    fn an_assertion_naming_ed25519_as_rfc_9864_does_is_read_like_one_naming_eddsa() {
        let key = KeyPair::generate();
        for alg in ALGORITHMS {
            let token = sign_jws(&key, &json!({ "alg": alg }), &json!({ "iss": "me" }));
            Jws::decode(&token).unwrap().verify(key.did()).unwrap();
        }
        let es256 = sign_jws(&key, &json!({ "alg": "ES256" }), &json!({ "iss": "me" }));
        assert!(matches!(
            Jws::decode(&es256),
            Err(JoseError::WrongAlgorithm(alg)) if alg == "ES256"
        ));
    }
}
