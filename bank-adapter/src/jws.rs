//! OBIE message signing of the bank's answers: a detached JWS over the response body in `x-jws-signature`, signed with the bank's DID key (EdDSA), with the OBIE `iat`, `iss` and `tan` claims critical, so a TSP can prove what the bank answered.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use consentnet_identity::{Did, b64url};
use serde_json::json;

/// The response header carrying the signature.
pub const JWS_SIGNATURE: &str = "x-jws-signature";
/// The trust anchor named in `tan`.
pub const TRUST_ANCHOR: &str = "consentnet";
/// Largest body signed, in bytes (larger answers are not made by the signed routes).
pub const MAX_SIGNED_BODY: usize = 1 << 20;

/// Signs bytes with the bank's key.
pub type Sign = Arc<dyn Fn(&[u8]) -> [u8; 64] + Send + Sync>;

/// The bank's signer: its DID and the signing function.
#[derive(Clone)]
pub struct Signer {
    /// The bank.
    pub bank: Did,
    /// Signs with the bank's key.
    pub sign: Sign,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("bank", &self.bank)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// The detached JWS (`header..signature`) over `body`, made at `iat` (seconds).
    pub fn detached(&self, body: &[u8], iat: i64) -> String {
        let header = json!({
            "alg": "EdDSA",
            "typ": "JOSE",
            "cty": "application/json",
            "kid": self.bank.verification_method(),
            "http://openbanking.org.uk/iat": iat,
            "http://openbanking.org.uk/iss": self.bank.as_str(),
            "http://openbanking.org.uk/tan": TRUST_ANCHOR,
            "crit": ["http://openbanking.org.uk/iat", "http://openbanking.org.uk/iss", "http://openbanking.org.uk/tan"],
        });
        let header = b64url(&serde_json::to_vec(&header).unwrap_or_default());
        let signing_input = format!("{header}.{}", b64url(body));
        format!(
            "{header}..{}",
            b64url(&(self.sign)(signing_input.as_bytes()))
        )
    }
}

/// The layer: every answer with a body gets `x-jws-signature` over it.
pub async fn sign_answers(State(signer): State<Signer>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_SIGNED_BODY).await else {
        return Response::from_parts(parts, Body::empty());
    };
    if !bytes.is_empty() {
        let signature = signer.detached(&bytes, chrono::Utc::now().timestamp());
        if let Ok(value) = HeaderValue::from_str(&signature) {
            parts.headers.insert(JWS_SIGNATURE, value);
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// True when `signature` is `bank`'s detached JWS over `body` (for clients and tests).
pub fn verify_detached(bank: &Did, body: &[u8], signature: &str) -> bool {
    let Some((header, rest)) = signature.split_once("..") else {
        return false;
    };
    let Some(sig) = consentnet_identity::b64url_decode(rest) else {
        return false;
    };
    let signing_input = format!("{header}.{}", b64url(body));
    consentnet_identity::keys::verify_signature(bank, signing_input.as_bytes(), &sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detached_signature_verifies_only_over_its_own_body() {
        let key = Arc::new(consentnet_identity::KeyPair::generate());
        let signing = key.clone();
        let signer = Signer {
            bank: key.did().clone(),
            sign: Arc::new(move |bytes| signing.sign(bytes)),
        };
        let signature = signer.detached(b"{\"Data\":{}}", 1_800_000_000);
        assert!(signature.contains(".."));
        assert!(verify_detached(key.did(), b"{\"Data\":{}}", &signature));
        assert!(!verify_detached(
            key.did(),
            b"{\"Data\":{\"x\":1}}",
            &signature
        ));
        let other = consentnet_identity::KeyPair::generate();
        assert!(!verify_detached(other.did(), b"{\"Data\":{}}", &signature));
    }
}
