//! Proof of possession for API calls: DPoP-style JWS (RFC 9449 claims) signed by the TSP app's DID key, and their verification.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys::{Did, KeyPair, SignatureCheck, verify_signature};
use crate::{b64url, b64url_decode};

/// The JWS `typ` of a proof, as in RFC 9449.
pub const POP_TYPE: &str = "dpop+jwt";
/// The largest proof accepted, in bytes.
pub const MAX_POP_BYTES: usize = 4 * 1024;

/// Why a proof of possession is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PopError {
    /// The proof is larger than [`MAX_POP_BYTES`].
    #[error("proof is {0} bytes; the limit is {MAX_POP_BYTES}")]
    TooLarge(usize),
    /// Not a compact JWS with the expected header and claims.
    #[error("malformed proof: {0}")]
    Malformed(String),
    /// `typ` is not `dpop+jwt` or `alg` is neither `Ed25519` nor `EdDSA`.
    #[error("proof header must have typ {POP_TYPE} and alg Ed25519 (or EdDSA)")]
    WrongHeader,
    /// The proof names a key other than the one expected.
    #[error("proof is signed with {found}, expected the key of {expected}")]
    WrongKey {
        /// The `kid` in the proof.
        found: String,
        /// The DID whose key was expected.
        expected: String,
    },
    /// The signature does not verify.
    #[error("proof signature does not verify")]
    BadSignature,
    /// `htm` differs from the request's method.
    #[error("proof is for method {found}, the request is {expected}")]
    MethodMismatch {
        /// The proof's `htm`.
        found: String,
        /// The request's method.
        expected: String,
    },
    /// `htu` differs from the request's URL.
    #[error("proof is for URL {found}, the request is {expected}")]
    UrlMismatch {
        /// The proof's `htu`.
        found: String,
        /// The request's URL.
        expected: String,
    },
    /// `iat` is outside the freshness window.
    #[error("proof issued at {iat} is outside the window of {window_secs} s around {now}")]
    Stale {
        /// The proof's `iat`.
        iat: i64,
        /// The verifier's clock.
        now: i64,
        /// The accepted distance either side of now.
        window_secs: i64,
    },
    /// `ath` is not the hash of the presented access token.
    #[error("proof is bound to another access token")]
    TokenMismatch,
}

/// The proof's header names its key either as the DID URL (`kid`, what consentnet's
/// own clients send) or as the public JWK (`jwk`, what RFC 9449 clients send).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    typ: String,
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jwk: Option<serde_json::Value>,
}

/// The claims of a proof (RFC 9449 section 4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopClaims {
    /// A unique id, for the verifier's replay cache.
    pub jti: String,
    /// The HTTP method.
    pub htm: String,
    /// The HTTP URL, without query and fragment.
    pub htu: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Base64url SHA-256 of the access token (here, the consent id); absent when the
    /// proof goes with no token (at an OAuth token endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ath: Option<String>,
    /// The server's nonce (RFC 9449 section 8), when it gave one; the verifier checks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// The request a proof is checked against.
#[derive(Debug, Clone, Copy)]
pub struct PopRequest<'a> {
    /// The HTTP method, e.g. `GET`.
    pub method: &'a str,
    /// The full URL as the client addressed it; query and fragment are ignored.
    pub url: &'a str,
    /// The access token presented with the proof (the consent id); empty when none is
    /// (a proof sent to an OAuth token endpoint), and then the proof must carry no `ath`.
    pub access_token: &'a str,
}

fn without_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

fn token_hash(access_token: &str) -> String {
    b64url(&Sha256::digest(access_token.as_bytes()))
}

/// Signs a proof for `request` with the app's key, issued at `now`, with a fresh random `jti`.
pub fn sign_pop(key: &KeyPair, request: PopRequest<'_>, now: DateTime<Utc>) -> String {
    let jti: [u8; 16] = crate::util::random_bytes();
    let claims = PopClaims {
        jti: b64url(&jti),
        htm: request.method.to_ascii_uppercase(),
        htu: without_query(request.url).to_owned(),
        iat: now.timestamp(),
        ath: (!request.access_token.is_empty()).then(|| token_hash(request.access_token)),
        nonce: None,
    };
    sign_claims(key, &claims)
}

/// Signs `claims` as a proof with the app's key, whatever they say (for clients that
/// build their own claims, and tests of odd ones).
pub fn sign_claims(key: &KeyPair, claims: &PopClaims) -> String {
    let header = Header {
        typ: POP_TYPE.to_owned(),
        alg: "EdDSA".to_owned(),
        kid: Some(key.did().verification_method()),
        jwk: None,
    };
    let signing_input = format!("{}.{}", encode_json(&header), encode_json(&claims));
    let signature = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", b64url(&signature))
}

fn encode_json<T: Serialize>(value: &T) -> String {
    let json = serde_json::to_vec(value).unwrap_or_else(|_| unreachable!("plain fields serialize"));
    b64url(&json)
}

/// Verifies a proof for `request`, signed by `signer`, made within `window_secs` of `now`.
/// The signature is checked before anything the proof claims is trusted.
pub fn verify_pop(
    proof: &str,
    signer: &Did,
    request: PopRequest<'_>,
    now: DateTime<Utc>,
    window_secs: i64,
) -> Result<PopClaims, PopError> {
    let parsed = parse(proof, signer)?;
    if !verify_signature(signer, parsed.signing_input.as_bytes(), &parsed.signature) {
        return Err(PopError::BadSignature);
    }
    check_claims(parsed.claims_b64, request, now, window_secs)
}

/// Everything [`verify_pop`] checks except the signature, which it returns as a
/// [`SignatureCheck`] for the caller to verify, e.g. in a batch with others
/// ([`crate::verify_many`]). The claims must not be acted on before that check passes.
pub fn check_pop(
    proof: &str,
    signer: &Did,
    request: PopRequest<'_>,
    now: DateTime<Utc>,
    window_secs: i64,
) -> Result<(PopClaims, SignatureCheck), PopError> {
    let parsed = parse(proof, signer)?;
    let claims = check_claims(parsed.claims_b64, request, now, window_secs)?;
    Ok((
        claims,
        SignatureCheck {
            signer: signer.public_key(),
            message: parsed.signing_input.as_bytes().to_vec(),
            signature: parsed.signature,
        },
    ))
}

/// The DID whose key a proof's header names (by `kid` or `jwk`), before anything is
/// verified: a verifier that accepts several signers learns whom to check the proof
/// against, then calls [`verify_pop`] with that DID, which checks the signature.
pub fn proof_signer(proof: &str) -> Result<Did, PopError> {
    let (header, _) = split_header(proof)?;
    let method = header_key(header)?;
    let did = method.split('#').next().unwrap_or(&method);
    Did::parse(did).map_err(|e| PopError::Malformed(format!("kid: {e}")))
}

/// A compact JWS split and its header checked.
struct Parsed<'a> {
    signing_input: &'a str,
    claims_b64: &'a str,
    signature: Vec<u8>,
}

/// The proof's header, checked for `typ` and `alg`, and the three parts of the JWS.
fn split_header(proof: &str) -> Result<(Header, [&str; 3]), PopError> {
    if proof.len() > MAX_POP_BYTES {
        return Err(PopError::TooLarge(proof.len()));
    }
    let malformed = |why: &str| PopError::Malformed(why.to_owned());
    let mut parts = proof.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("a compact JWS has three parts"));
    };
    let header_bytes =
        b64url_decode(header_b64).ok_or_else(|| malformed("header is not base64url"))?;
    let header: Header = serde_json::from_slice(&header_bytes)
        .map_err(|e| PopError::Malformed(format!("header: {e}")))?;
    if header.typ != POP_TYPE || !crate::jose::ALGORITHMS.contains(&header.alg.as_str()) {
        return Err(PopError::WrongHeader);
    }
    Ok((header, [header_b64, claims_b64, signature_b64]))
}

/// The verification method the header names, by `kid` or by `jwk`.
fn header_key(header: Header) -> Result<String, PopError> {
    match (header.kid, header.jwk) {
        (Some(kid), None) => Ok(kid),
        (None, Some(jwk)) => Ok(crate::jose::did_from_jwk(&jwk)
            .map_err(|e| PopError::Malformed(e.to_string()))?
            .verification_method()),
        _ => Err(PopError::Malformed(
            "the header names its key by exactly one of kid and jwk".to_owned(),
        )),
    }
}

fn parse<'a>(proof: &'a str, signer: &Did) -> Result<Parsed<'a>, PopError> {
    let malformed = |why: &str| PopError::Malformed(why.to_owned());
    let (header, [header_b64, claims_b64, signature_b64]) = split_header(proof)?;
    let named = header_key(header)?;
    if !signer.is_verification_method(&named) {
        return Err(PopError::WrongKey {
            found: named,
            expected: signer.to_string(),
        });
    }
    let signature =
        b64url_decode(signature_b64).ok_or_else(|| malformed("signature is not base64url"))?;
    Ok(Parsed {
        signing_input: &proof[..header_b64.len() + 1 + claims_b64.len()],
        claims_b64,
        signature,
    })
}

fn check_claims(
    claims_b64: &str,
    request: PopRequest<'_>,
    now: DateTime<Utc>,
    window_secs: i64,
) -> Result<PopClaims, PopError> {
    let malformed = |why: &str| PopError::Malformed(why.to_owned());
    let claims_bytes =
        b64url_decode(claims_b64).ok_or_else(|| malformed("claims are not base64url"))?;
    let claims: PopClaims = serde_json::from_slice(&claims_bytes)
        .map_err(|e| PopError::Malformed(format!("claims: {e}")))?;
    if !claims.htm.eq_ignore_ascii_case(request.method) {
        return Err(PopError::MethodMismatch {
            found: claims.htm,
            expected: request.method.to_owned(),
        });
    }
    if claims.htu != without_query(request.url) {
        return Err(PopError::UrlMismatch {
            found: claims.htu,
            expected: without_query(request.url).to_owned(),
        });
    }
    let now_secs = now.timestamp();
    // `iat` is the sender's: any i64 may come, so the distance is taken without overflow.
    if claims.iat.abs_diff(now_secs) > window_secs.unsigned_abs() {
        return Err(PopError::Stale {
            iat: claims.iat,
            now: now_secs,
            window_secs,
        });
    }
    let expected_ath = (!request.access_token.is_empty()).then(|| token_hash(request.access_token));
    if claims.ath != expected_ath {
        return Err(PopError::TokenMismatch);
    }
    if claims.jti.is_empty() || claims.jti.len() > 64 {
        return Err(malformed("jti must be 1 to 64 characters"));
    }
    Ok(claims)
}
