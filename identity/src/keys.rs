//! Ed25519 key pairs and the `did:key` identifiers derived from them.

use std::fmt;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The multicodec prefix of an Ed25519 public key (`ed25519-pub`, 0xed, varint-encoded).
const ED25519_MULTICODEC: [u8; 2] = [0xed, 0x01];

/// Why a DID or key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text is not a `did:key` DID.
    #[error("{0:?} is not a did:key DID")]
    NotDidKey(String),
    /// The `did:key` names a key type other than Ed25519.
    #[error("{0:?} is not an Ed25519 did:key")]
    NotEd25519(String),
    /// The key bytes inside the DID are not a valid Ed25519 public key.
    #[error("{0:?} does not hold a valid Ed25519 public key")]
    InvalidPublicKey(String),
    /// Secret key bytes of the wrong length.
    #[error("an Ed25519 secret key is 32 bytes, got {0}")]
    SecretKeyLength(usize),
}

/// A `did:key` DID for an Ed25519 key, checked to decode to a valid public key. The
/// key is decoded once, when the DID is made, since every signature check needs it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Did {
    text: String,
    // Shared: a decoded key is about 200 bytes, and DIDs are cloned into many maps.
    key: std::sync::Arc<VerifyingKey>,
}

// Identity, order and hashing are the text's; the key follows from it.
impl PartialEq for Did {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Did {}

impl std::hash::Hash for Did {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl PartialOrd for Did {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Did {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.text.cmp(&other.text)
    }
}

impl Did {
    /// Parses and checks a `did:key` DID for an Ed25519 key.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        Ok(Self {
            key: decoded_key(text)?,
            text: text.to_owned(),
        })
    }

    /// The DID of an Ed25519 public key.
    pub fn from_public_key(key: &VerifyingKey) -> Self {
        let mut bytes = Vec::with_capacity(34);
        bytes.extend_from_slice(&ED25519_MULTICODEC);
        bytes.extend_from_slice(key.as_bytes());
        Self {
            text: format!("did:key:z{}", bs58::encode(bytes).into_string()),
            key: (*key).into(),
        }
    }

    /// The DID as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The Ed25519 public key this DID resolves to.
    pub fn public_key(&self) -> VerifyingKey {
        *self.key
    }

    /// The DID URL of this DID's one verification method, `did:key:z…#z…`.
    pub fn verification_method(&self) -> String {
        let fragment = self.text.trim_start_matches("did:key:");
        format!("{}#{}", self.text, fragment)
    }

    /// True when `method` is this DID's [`Did::verification_method`], compared without
    /// building it.
    pub fn is_verification_method(&self, method: &str) -> bool {
        let fragment = self.text.trim_start_matches("did:key:");
        method
            .strip_prefix(self.text.as_str())
            .and_then(|rest| rest.strip_prefix('#'))
            == Some(fragment)
    }
}

impl TryFrom<String> for Did {
    type Error = KeyError;
    fn try_from(text: String) -> Result<Self, KeyError> {
        Ok(Self {
            key: decoded_key(&text)?,
            text,
        })
    }
}

impl From<Did> for String {
    fn from(did: Did) -> String {
        did.text
    }
}

impl fmt::Display for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Did({})", self.text)
    }
}

/// Decodes an Ed25519 `did:key` (optionally with a `#fragment`) to its public key.
pub fn decode_did_key(text: &str) -> Result<VerifyingKey, KeyError> {
    let did = text.split('#').next().unwrap_or(text);
    let encoded = did
        .strip_prefix("did:key:z")
        .ok_or_else(|| KeyError::NotDidKey(text.to_owned()))?;
    let bytes = bs58::decode(encoded)
        .into_vec()
        .map_err(|_| KeyError::NotDidKey(text.to_owned()))?;
    let key = bytes
        .strip_prefix(&ED25519_MULTICODEC[..])
        .ok_or_else(|| KeyError::NotEd25519(text.to_owned()))?;
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| KeyError::InvalidPublicKey(text.to_owned()))?;
    VerifyingKey::from_bytes(&key).map_err(|_| KeyError::InvalidPublicKey(text.to_owned()))
}

/// DIDs decoded at most before the cache of decoded keys starts again.
const DECODED_DIDS: usize = 4096;

/// The key of `text`, from a process-wide cache of recently decoded DIDs: the same few
/// DIDs (members, apps, clients) come back in every entry, and decoding one costs a
/// base58 decode and a point decompression. Failures are not cached.
fn decoded_key(text: &str) -> Result<std::sync::Arc<VerifyingKey>, KeyError> {
    static DECODED: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<VerifyingKey>>>,
    > = std::sync::OnceLock::new();
    let cache = DECODED.get_or_init(Default::default);
    let lock = || crate::util::lock(cache);
    if let Some(key) = lock().get(text) {
        return Ok(key.clone());
    }
    let key = std::sync::Arc::new(decode_did_key(text)?);
    let mut decoded = lock();
    if decoded.len() >= DECODED_DIDS {
        decoded.clear();
    }
    decoded.insert(text.to_owned(), key.clone());
    Ok(key)
}

/// An Ed25519 key pair and its `did:key`. The secret is wiped from memory on drop.
#[derive(Clone)]
pub struct KeyPair {
    signing: SigningKey,
    did: Did,
}

impl KeyPair {
    /// Generates a fresh key pair from the operating system's random source.
    pub fn generate() -> Self {
        Self::from_signing_key(SigningKey::generate(&mut rand_core::OsRng))
    }

    /// Rebuilds a key pair from its 32 secret bytes.
    pub fn from_secret_bytes(secret: &[u8]) -> Result<Self, KeyError> {
        let secret: &[u8; 32] = secret
            .try_into()
            .map_err(|_| KeyError::SecretKeyLength(secret.len()))?;
        Ok(Self::from_signing_key(SigningKey::from_bytes(secret)))
    }

    fn from_signing_key(signing: SigningKey) -> Self {
        let did = Did::from_public_key(&signing.verifying_key());
        Self { signing, did }
    }

    /// The key's DID.
    pub fn did(&self) -> &Did {
        &self.did
    }

    /// The public key.
    pub fn public_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// The 32 secret bytes, in a buffer wiped on drop. Only the wallet should need them.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    /// Signs `message` with Ed25519.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// The key as a JWK with its private part, for signing through `ssi`.
    pub(crate) fn private_jwk(&self) -> ssi_jwk::JWK {
        let secret = self.secret_bytes();
        ssi_jwk::JWK::from(ssi_jwk::Params::OKP(ssi_jwk::OctetParams {
            curve: "Ed25519".to_owned(),
            public_key: ssi_jwk::Base64urlUInt(self.public_key().as_bytes().to_vec()),
            private_key: Some(ssi_jwk::Base64urlUInt(secret.to_vec())),
        }))
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        f.debug_struct("KeyPair")
            .field("did", &self.did)
            .finish_non_exhaustive()
    }
}

/// Verifies an Ed25519 signature by the key behind `did`.
pub fn verify_signature(did: &Did, message: &[u8], signature: &[u8]) -> bool {
    let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
        return false;
    };
    did.public_key().verify_strict(message, &signature).is_ok()
}

/// One signature to check: the signer's key, the signed bytes, the signature bytes.
#[derive(Debug, Clone)]
pub struct SignatureCheck {
    /// The signer's public key.
    pub signer: VerifyingKey,
    /// The signed bytes.
    pub message: Vec<u8>,
    /// The 64-byte signature.
    pub signature: Vec<u8>,
}

impl SignatureCheck {
    /// Verifies this one signature alone, as strictly as [`verify_signature`].
    pub fn verify(&self) -> bool {
        ed25519_dalek::Signature::from_slice(&self.signature)
            .is_ok_and(|signature| self.signer.verify_strict(&self.message, &signature).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_matches_what_ssi_generates() {
        let key = KeyPair::generate();
        let public = ssi_jwk::JWK::from(key.public_key());
        let expected = did_method_key::DIDKey::generate(&public).unwrap();
        assert_eq!(key.did().as_str(), expected.as_str());
        let url = did_method_key::DIDKey::generate_url(&public).unwrap();
        assert_eq!(key.did().verification_method(), url.as_str());
        assert!(key.did().is_verification_method(url.as_str()));
        let other = KeyPair::generate();
        assert!(!other.did().is_verification_method(url.as_str()));
        let method = key.did().verification_method();
        assert!(!key.did().is_verification_method(key.did().as_str()));
        assert!(
            !key.did()
                .is_verification_method(&method[..method.len() - 1])
        );
        assert!(!key.did().is_verification_method(&format!("{method}x")));
    }

    #[test]
    fn did_round_trips_to_the_same_public_key() {
        let key = KeyPair::generate();
        let parsed = Did::parse(key.did().as_str()).unwrap();
        assert_eq!(parsed.public_key(), key.public_key());
        let json = serde_json::to_string(&parsed).unwrap();
        assert_eq!(serde_json::from_str::<Did>(&json).unwrap(), parsed);
    }

    #[test]
    fn secret_bytes_round_trip() {
        let key = KeyPair::generate();
        let again = KeyPair::from_secret_bytes(&key.secret_bytes()[..]).unwrap();
        assert_eq!(again.did(), key.did());
        assert_eq!(
            KeyPair::from_secret_bytes(&[0; 31]).unwrap_err(),
            KeyError::SecretKeyLength(31)
        );
    }

    #[test]
    fn rejects_dids_that_are_not_ed25519_did_keys() {
        assert!(matches!(
            Did::parse("did:web:bank.example"),
            Err(KeyError::NotDidKey(_))
        ));
        assert!(matches!(
            Did::parse("did:key:z0OIl"),
            Err(KeyError::NotDidKey(_))
        ));
        // A P-256 did:key (multicodec 0x1200).
        let p256 = "did:key:zDnaerDaTF5BXEavCrfRZEk316dpbLsfPDZ3WJ5hRTPFU2169";
        assert!(matches!(Did::parse(p256), Err(KeyError::NotEd25519(_))));
        let short = format!(
            "did:key:z{}",
            bs58::encode([0xed, 0x01, 1, 2, 3]).into_string()
        );
        assert!(matches!(
            Did::parse(&short),
            Err(KeyError::InvalidPublicKey(_))
        ));
        let parsed: Result<Did, _> = serde_json::from_str("\"did:example:123\"");
        assert!(parsed.is_err());
    }

    #[test]
    fn signatures_verify_only_for_the_signer_and_message() {
        let key = KeyPair::generate();
        let other = KeyPair::generate();
        let signature = key.sign(b"message");
        assert!(verify_signature(key.did(), b"message", &signature));
        assert!(!verify_signature(key.did(), b"messagE", &signature));
        assert!(!verify_signature(other.did(), b"message", &signature));
        assert!(!verify_signature(key.did(), b"message", &signature[..63]));
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let key = KeyPair::generate();
        let shown = format!("{key:?}");
        let secret_b58 = bs58::encode(&key.secret_bytes()[..]).into_string();
        assert!(!shown.contains(&secret_b58));
        assert!(shown.contains(key.did().as_str()));
    }
}
