//! Consent credentials: W3C VC 2.0 documents secured with an `eddsa-rdfc-2022` Data Integrity proof, their validation and their ids.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use ssi_claims::data_integrity::{AnySuite, CryptographicSuite, DataIntegrity, ProofOptions};
use ssi_claims::{SignatureEnvironment, VerificationParameters, vc::v2::JsonCredential};
use ssi_dids_core::DIDResolver as _;
use ssi_verification_methods::{AnyMethod, SingleSecretSigner};

use crate::canonical::{CanonicalError, canonical_json};
use crate::keys::{Did, KeyPair};
use crate::permissions::{PermissionError, parse_permission_set};
pub use crate::status::{STATUS_LIST_ENTRIES, StatusEntry};
pub use crate::terms::{ConsentTerms, PaymentLimits, Period, Validity};

/// The W3C VC Data Model 2.0 context.
pub const VC_V2_CONTEXT: &str = "https://www.w3.org/ns/credentials/v2";
/// consentnet's own JSON-LD context for consent terms. It is an identifier only: the
/// document ships in the repo and is never fetched.
pub const CONSENT_CONTEXT: &str = "https://ns.consentnet.org/consent/v1";
/// The JSON-LD document behind [`CONSENT_CONTEXT`].
pub const CONSENT_CONTEXT_DOCUMENT: &str = include_str!("../contexts/consent-v1.jsonld");
/// The credential type that marks a consent.
pub const CONSENT_TYPE: &str = "OpenBankingConsent";
/// The only cryptosuite accepted on a consent.
pub const CRYPTOSUITE: &str = "eddsa-rdfc-2022";
/// The largest consent credential accepted, in bytes. A real consent is about 1.5 KiB.
pub const MAX_CREDENTIAL_BYTES: usize = 16 * 1024;
/// The most account references one consent may name.
pub const MAX_ACCOUNTS: usize = 64;
pub(crate) const MAX_PURPOSE_CHARS: usize = 500;

/// Why a consent could not be issued or was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    /// The input is larger than [`MAX_CREDENTIAL_BYTES`].
    #[error("consent credential is {size} bytes; the limit is {max}")]
    TooLarge {
        /// The input's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The input is not JSON.
    #[error("consent credential is not valid JSON: {0}")]
    InvalidJson(String),
    /// The JSON does not have the shape of a consent credential.
    #[error("malformed consent credential: {0}")]
    Malformed(String),
    /// `@context` is not exactly the VC 2.0 context followed by consentnet's.
    #[error(
        "unknown or unexpected @context {0}; expected [{VC_V2_CONTEXT:?}, {CONSENT_CONTEXT:?}]"
    )]
    UnknownContext(String),
    /// There is no proof.
    #[error("consent credential has no proof")]
    MissingProof,
    /// The proof uses a cryptosuite other than `eddsa-rdfc-2022`.
    #[error("proof cryptosuite {0:?} is not accepted; only {CRYPTOSUITE} is")]
    UnsupportedCryptosuite(String),
    /// The proof is made by a key that is not the issuer's.
    #[error("proof is made by {method}, which is not a key of the issuer {issuer}")]
    ProofKeyNotIssuer {
        /// The proof's verification method.
        method: String,
        /// The credential's issuer.
        issuer: String,
    },
    /// The proof does not verify.
    #[error("consent proof does not verify: {0}")]
    BadProof(String),
    /// A permission code is unknown, repeated, or the set breaks the OBIE rules.
    #[error(transparent)]
    Permission(#[from] PermissionError),
    /// `validUntil` is not after `validFrom`.
    #[error("validUntil {until} is not after validFrom {from}")]
    ValidityWindow {
        /// validFrom.
        from: String,
        /// validUntil.
        until: String,
    },
    /// An account reference looks like an account number or IBAN, or is empty or too long.
    #[error("account reference {0:?} is not an opaque bank-issued reference")]
    AccountReference(String),
    /// Payment limits are missing where a payment permission is granted, or present without one, or badly formed.
    #[error("payment limits: {0}")]
    PaymentLimits(String),
    /// Signing failed.
    #[error("signing the consent failed: {0}")]
    Signing(String),
}

impl From<CanonicalError> for ConsentError {
    fn from(error: CanonicalError) -> Self {
        ConsentError::Malformed(error.to_string())
    }
}

/// A consent's id: SHA-256 of the signed credential's canonical JSON.
pub type ConsentId = crate::hash::Hash32;

/// The id of a signed credential (its canonical JSON hashed).
pub fn consent_id(credential: &Value) -> Result<ConsentId, ConsentError> {
    Ok(crate::hash::Hash32::of(&canonical_json(credential)?))
}

/// A consent credential whose proof, issuer and terms have been checked.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedConsent {
    /// The consent id.
    pub id: ConsentId,
    /// The client DID that issued and signed it.
    pub issuer: Did,
    /// What it grants.
    pub terms: ConsentTerms,
    /// The signed credential as JSON.
    pub credential: Value,
}

impl VerifiedConsent {
    /// Where the consent stands at `now` (revocation is the log's business, not this type's).
    pub fn validity_at(&self, now: DateTime<Utc>) -> Validity {
        if now < self.terms.valid_from {
            Validity::NotYetValid
        } else if now >= self.terms.valid_until {
            Validity::Expired
        } else {
            Validity::Active
        }
    }

    /// The signed credential as compact JSON text.
    pub fn to_json(&self) -> String {
        self.credential.to_string()
    }
}

/// The credential fields as they appear on the wire, before the proof is checked.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireCredential {
    #[serde(rename = "@context")]
    context: Value,
    id: String,
    #[serde(rename = "type")]
    types: Vec<String>,
    issuer: String,
    valid_from: String,
    valid_until: String,
    credential_subject: WireSubject,
    #[serde(default)]
    credential_status: Option<crate::status::WireStatus>,
    proof: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireSubject {
    id: String,
    bank: String,
    accounts: Vec<String>,
    permissions: Vec<String>,
    #[serde(default)]
    payment_limits: Option<PaymentLimits>,
    purpose: String,
    #[serde(default)]
    proof_key: Option<String>,
}

pub(crate) fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(crate) fn parse_time(field: &str, text: &str) -> Result<DateTime<Utc>, ConsentError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ConsentError::Malformed(format!("{field} {text:?} is not an RFC 3339 date-time"))
        })
}

fn did_field(field: &str, text: &str) -> Result<Did, ConsentError> {
    Did::parse(text).map_err(|e| ConsentError::Malformed(format!("{field}: {e}")))
}

/// The JSON-LD loader: the bundled W3C contexts plus consentnet's, never the network.
pub(crate) fn json_ld_loader() -> ssi_json_ld::ContextLoader {
    let map = HashMap::from([(
        CONSENT_CONTEXT.to_owned(),
        CONSENT_CONTEXT_DOCUMENT.to_owned(),
    )]);
    ssi_json_ld::ContextLoader::empty()
        .with_static_loader()
        .with_context_map_from(map)
        .unwrap_or_else(|_| unreachable!("the bundled context is valid JSON with a valid IRI"))
}

/// Builds the unsigned credential for `terms` issued by `issuer`.
fn unsigned_credential(issuer: &Did, terms: &ConsentTerms) -> Value {
    let mut subject = json!({
        "id": terms.app,
        "bank": terms.bank,
        "accounts": terms.accounts,
        "permissions": terms.permissions.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        "purpose": terms.purpose,
    });
    if let Some(limits) = &terms.payment_limits {
        subject["paymentLimits"] = json!(limits);
    }
    if let Some(key) = &terms.proof_key {
        subject["proofKey"] = json!(key);
    }
    let mut credential = json!({
        "@context": [VC_V2_CONTEXT, CONSENT_CONTEXT],
        "id": crate::util::random_urn_uuid(),
        "type": ["VerifiableCredential", CONSENT_TYPE],
        "issuer": issuer,
        "validFrom": timestamp(terms.valid_from),
        "validUntil": timestamp(terms.valid_until),
        "credentialSubject": subject,
    });
    if let Some(status) = &terms.status {
        credential["credentialStatus"] = status.to_json();
    }
    credential
}

/// The terms as a credential of `issuer`, secured with an `eddsa-rdfc-2022` proof made
/// by `signer`. A macro rather than a function: the suite's signing bounds name the
/// resolver and environment types, which a macro leaves to inference.
macro_rules! secure {
    ($issuer:expr, $terms:expr, $signer:expr) => {
        async {
            let issuer: &Did = $issuer;
            let unsigned: JsonCredential =
                serde_json::from_value(unsigned_credential(issuer, $terms))
                    .map_err(|e| ConsentError::Signing(e.to_string()))?;
            let method = iref::IriBuf::new(issuer.verification_method())
                .map_err(|e| ConsentError::Signing(e.to_string()))?;
            let resolver = did_method_key::DIDKey.into_vm_resolver::<AnyMethod>();
            let environment = SignatureEnvironment {
                json_ld_loader: json_ld_loader(),
                eip712_loader: (),
            };
            let signed = AnySuite::EdDsaRdfc2022
                .sign_with(
                    environment,
                    unsigned,
                    &resolver,
                    $signer,
                    ProofOptions::from_method(method.into()),
                    Default::default(),
                )
                .await
                .map_err(|e| ConsentError::Signing(e.to_string()))?;
            serde_json::to_value(&signed).map_err(|e| ConsentError::Signing(e.to_string()))
        }
    };
}

/// Issues a consent: checks the terms, then signs them as the client `issuer` with an
/// `eddsa-rdfc-2022` Data Integrity proof.
pub async fn issue_consent(
    issuer: &KeyPair,
    terms: &ConsentTerms,
) -> Result<VerifiedConsent, ConsentError> {
    let terms = whole_seconds(terms)?;
    let credential = secure!(
        issuer.did(),
        &terms,
        SingleSecretSigner::new(issuer.private_jwk()).into_local()
    )
    .await?;
    Ok(VerifiedConsent {
        id: crate::consent::consent_id(&credential)?,
        issuer: issuer.did().clone(),
        terms,
        credential,
    })
}

/// The terms at whole seconds (the wire format carries seconds), checked.
fn whole_seconds(terms: &ConsentTerms) -> Result<ConsentTerms, ConsentError> {
    let mut terms = terms.clone();
    terms.valid_from = parse_time("validFrom", &timestamp(terms.valid_from))?;
    terms.valid_until = parse_time("validUntil", &timestamp(terms.valid_until))?;
    terms.check()?;
    Ok(terms)
}

/// A consent credential complete but for its issuer's signature, for a signer that holds
/// the key elsewhere (a browser's WebCrypto key): it signs [`PreparedConsent::message`]
/// with Ed25519, and [`complete_consent`] puts the signature in.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedConsent {
    /// The credential, its proof holding a placeholder value.
    pub credential: Value,
    /// The exact bytes the issuer's key must sign (the suite's hash data).
    pub message: Vec<u8>,
}

impl PreparedConsent {
    /// The answer a bank gives a browser that asked for it: `{credential, message}`,
    /// the message in base64url.
    pub fn to_wire(&self) -> Value {
        json!({
            "credential": self.credential,
            "message": crate::b64url(&self.message),
        })
    }
}

/// The `proofValue` a prepared consent carries until it is completed: the multibase
/// (base58btc) encoding of 64 zero bytes.
fn placeholder_proof_value() -> String {
    format!("z{}", bs58::encode([0u8; 64]).into_string())
}

/// Captures the bytes the suite asks to sign and answers with a placeholder signature.
struct Capture(std::sync::Arc<std::sync::Mutex<Option<Vec<u8>>>>);

impl<M: ssi_verification_methods::VerificationMethod> ssi_verification_methods::Signer<M>
    for Capture
{
    type MessageSigner = Capture;

    async fn for_method(
        &self,
        _method: std::borrow::Cow<'_, M>,
    ) -> Result<Option<Capture>, ssi_claims::SignatureError> {
        Ok(Some(Capture(self.0.clone())))
    }
}

impl<A: ssi_crypto::algorithm::SignatureAlgorithmType> ssi_verification_methods::MessageSigner<A>
    for Capture
{
    async fn sign(
        self,
        _algorithm: A::Instance,
        message: &[u8],
    ) -> Result<Vec<u8>, ssi_claims::MessageSignatureError> {
        *crate::util::lock(&self.0) = Some(message.to_vec());
        Ok(vec![0u8; 64])
    }
}

/// Prepares a consent of `issuer` on `terms` for an outside signer (see [`PreparedConsent`]).
pub async fn prepare_consent(
    issuer: &Did,
    terms: &ConsentTerms,
) -> Result<PreparedConsent, ConsentError> {
    let terms = whole_seconds(terms)?;
    let captured = std::sync::Arc::new(std::sync::Mutex::new(None));
    let credential = secure!(
        issuer,
        &terms,
        ssi_verification_methods::LocalSigner(Capture(captured.clone()))
    )
    .await?;
    if credential["proof"]["proofValue"].as_str() != Some(placeholder_proof_value().as_str()) {
        return Err(ConsentError::Signing(
            "the proof does not carry the signature as base58btc multibase".into(),
        ));
    }
    let message = crate::util::lock(&captured)
        .take()
        .ok_or_else(|| ConsentError::Signing("nothing was signed".into()))?;
    Ok(PreparedConsent {
        credential,
        message,
    })
}

/// Puts the issuer's Ed25519 `signature` of a prepared consent's message into its proof,
/// then verifies the whole credential as any consent is verified.
pub async fn complete_consent(
    prepared: &Value,
    signature: &[u8],
) -> Result<VerifiedConsent, ConsentError> {
    if prepared["proof"]["proofValue"].as_str() != Some(placeholder_proof_value().as_str()) {
        return Err(ConsentError::Malformed(
            "not a prepared consent waiting for its signature".into(),
        ));
    }
    if signature.len() != 64 {
        return Err(ConsentError::Malformed(format!(
            "an Ed25519 signature is 64 bytes, not {}",
            signature.len()
        )));
    }
    let mut credential = prepared.clone();
    credential["proof"]["proofValue"] =
        json!(format!("z{}", bs58::encode(signature).into_string()));
    let bytes =
        serde_json::to_vec(&credential).map_err(|e| ConsentError::Signing(e.to_string()))?;
    verify_consent(&bytes).await
}

/// Parses credential bytes as JSON after checking them against [`MAX_CREDENTIAL_BYTES`].
pub(crate) fn parse_bounded(bytes: &[u8]) -> Result<Value, ConsentError> {
    if bytes.len() > MAX_CREDENTIAL_BYTES {
        return Err(ConsentError::TooLarge {
            size: bytes.len(),
            max: MAX_CREDENTIAL_BYTES,
        });
    }
    crate::strict::from_slice(bytes).map_err(|e| ConsentError::InvalidJson(e.to_string()))
}

/// Parses a credential and checks everything but the proof's signature; returns the
/// parsed value, the issuer and the terms.
fn check_structure(bytes: &[u8]) -> Result<(Value, Did, ConsentTerms), ConsentError> {
    let value = parse_bounded(bytes)?;
    let wire: WireCredential = serde_json::from_value(value.clone())
        .map_err(|e| ConsentError::Malformed(e.to_string()))?;
    if wire.context != json!([VC_V2_CONTEXT, CONSENT_CONTEXT]) {
        return Err(ConsentError::UnknownContext(wire.context.to_string()));
    }
    if wire.types != ["VerifiableCredential", CONSENT_TYPE] {
        return Err(ConsentError::Malformed(format!(
            "type must be [\"VerifiableCredential\", \"{CONSENT_TYPE}\"], got {:?}",
            wire.types
        )));
    }
    if !crate::util::is_urn_uuid(&wire.id) {
        return Err(ConsentError::Malformed(format!(
            "id {:?} is not a urn:uuid",
            wire.id
        )));
    }
    let issuer = did_field("issuer", &wire.issuer)?;
    let subject = wire.credential_subject;
    let terms = ConsentTerms {
        app: did_field("credentialSubject.id", &subject.id)?,
        bank: did_field("credentialSubject.bank", &subject.bank)?,
        accounts: subject.accounts,
        permissions: parse_permission_set(&subject.permissions)?,
        payment_limits: subject.payment_limits,
        purpose: subject.purpose,
        valid_from: parse_time("validFrom", &wire.valid_from)?,
        valid_until: parse_time("validUntil", &wire.valid_until)?,
        proof_key: subject
            .proof_key
            .map(|key| did_field("credentialSubject.proofKey", &key))
            .transpose()?,
        status: wire
            .credential_status
            .map(crate::status::WireStatus::entry)
            .transpose()?,
    };
    terms.check()?;
    crate::consent_proof::check(wire.proof, &issuer)?;
    Ok((value, issuer, terms))
}

/// Verifies a consent credential given as JSON bytes: size, shape, context, terms,
/// that the proof is the issuer's, and the proof itself (JSON-LD canonicalization and
/// one Ed25519 check). Time is not judged here: a not-yet-valid or expired consent
/// verifies, and [`VerifiedConsent::validity_at`] says where it stands.
pub async fn verify_consent(bytes: &[u8]) -> Result<VerifiedConsent, ConsentError> {
    let (value, issuer, terms) = check_structure(bytes)?;
    crate::ld_input::check(&value).map_err(ConsentError::Malformed)?;
    let id = crate::consent::consent_id(&value)?;
    let secured: DataIntegrity<JsonCredential, AnySuite> = serde_json::from_value(value.clone())
        .map_err(|e| ConsentError::Malformed(e.to_string()))?;
    let resolver = did_method_key::DIDKey.into_vm_resolver::<AnyMethod>();
    // Judge the claims at validFrom, so ssi's own window check passes; usability at a
    // given time is decided by the caller with `validity_at`.
    let parameters = VerificationParameters::from_resolver(resolver)
        .with_json_ld_loader(json_ld_loader())
        .with_date_time(terms.valid_from);
    match secured.verify(parameters).await {
        Ok(Ok(())) => Ok(VerifiedConsent {
            id,
            issuer,
            terms,
            credential: value,
        }),
        Ok(Err(invalid)) => Err(ConsentError::BadProof(invalid.to_string())),
        Err(error) => Err(ConsentError::BadProof(error.to_string())),
    }
}

impl VerifiedConsent {
    /// Rebuilds a consent that this process verified before it stored it (read back from
    /// its own log), checking its shape and terms but not the proof again. Never use it
    /// on input from outside: that is what [`verify_consent`] is for.
    pub fn from_trusted_store(credential: &Value) -> Result<Self, ConsentError> {
        let bytes =
            serde_json::to_vec(credential).map_err(|e| ConsentError::Malformed(e.to_string()))?;
        let (value, issuer, terms) = check_structure(&bytes)?;
        Ok(Self {
            id: crate::consent::consent_id(&value)?,
            issuer,
            terms,
            credential: value,
        })
    }
}

/// [`verify_consent`] for callers without an async runtime, such as the log's sans-IO
/// engine. Verification does no I/O (contexts are bundled, `did:key` resolves locally),
/// so the future completes without waiting on anything outside this thread.
pub fn verify_consent_blocking(bytes: &[u8]) -> Result<VerifiedConsent, ConsentError> {
    block_on(verify_consent(bytes))
}

/// Drives a future that never waits on I/O (signing or verifying a consent) to
/// completion on this thread, for callers without an async runtime.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    loop {
        match future.as_mut().poll(&mut context) {
            Poll::Ready(output) => return output,
            Poll::Pending => std::thread::park(),
        }
    }
}
