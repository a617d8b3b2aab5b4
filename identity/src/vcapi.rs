//! Any W3C Verifiable Credential secured with an `eddsa-rdfc-2022` Data Integrity proof by a `did:key`, not only consents: verified with its checks, warnings and errors named (the VC-API answer), issued with a node's own key, and presentations verified with their challenge, domain and every credential they hold. JSON-LD contexts come from the bundled set only, never the network.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use ssi_claims::data_integrity::{AnySuite, CryptographicSuite, DataIntegrity, ProofOptions};
use ssi_claims::vc::v2::JsonCredential;
use ssi_claims::vc::v2::syntax::JsonPresentation;
use ssi_claims::{SignatureEnvironment, VerificationParameters};
use ssi_dids_core::DIDResolver as _;
use ssi_verification_methods::{AnyMethod, SingleSecretSigner};

use crate::consent::CRYPTOSUITE;
use crate::keys::KeyPair;

/// The largest credential or presentation taken, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// The most credentials one presentation may hold.
pub const MAX_PRESENTED: usize = 16;

/// Judges a credential's status entry: given the credential and its `credentialStatus`,
/// `Some(revoked)` when the judge can tell, `Some(Err(why))` when the entry is wrong,
/// `None` when it cannot tell (a list it does not hold).
pub type StatusJudge<'a> = &'a dyn Fn(&Value, &Value) -> Option<Result<bool, String>>;

/// A problem found, as RFC 9457 names one: a type URI, a title and a detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// The kind in words.
    pub title: String,
    /// This occurrence.
    pub detail: String,
}

impl Problem {
    fn new(kind: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("https://consentnet.org/problems/{kind}"),
            title: title.to_owned(),
            detail: detail.into(),
        }
    }
}

/// The VC-API verification answer: what was checked, what passed with a warning, what
/// failed; verified only with no error. On the wire it also carries `problemDetails`,
/// the newer VC-API name for errors and warnings together, each problem's type naming
/// which it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(into = "WireVerification")]
pub struct Verification {
    /// True when nothing failed.
    pub verified: bool,
    /// The checks made: `proof`, `validity`, `status`, and for a presentation
    /// `challenge`, `domain` and `credentials`.
    pub checks: Vec<&'static str>,
    /// What did not stop verification but a verifier should know.
    pub warnings: Vec<Problem>,
    /// What failed.
    pub errors: Vec<Problem>,
    /// For a presentation: each credential's own result, in order.
    pub credential_results: Vec<Verification>,
}

/// [`Verification`] as sent: the same fields and `problemDetails`.
#[derive(Serialize)]
struct WireVerification {
    verified: bool,
    checks: Vec<&'static str>,
    warnings: Vec<Problem>,
    errors: Vec<Problem>,
    #[serde(rename = "problemDetails")]
    problem_details: Vec<Problem>,
    #[serde(rename = "credentialResults", skip_serializing_if = "Vec::is_empty")]
    credential_results: Vec<Verification>,
}

impl From<Verification> for WireVerification {
    fn from(v: Verification) -> Self {
        let problem_details = v.errors.iter().chain(&v.warnings).cloned().collect();
        Self {
            verified: v.verified,
            checks: v.checks,
            warnings: v.warnings,
            errors: v.errors,
            problem_details,
            credential_results: v.credential_results,
        }
    }
}

impl Verification {
    fn fail(&mut self, problem: Problem) {
        self.errors.push(problem);
    }

    fn done(mut self) -> Self {
        self.verified = self.errors.is_empty();
        self
    }
}

/// The JSON-LD loader: the bundled W3C contexts and consentnet's, never the network.
fn loader() -> ssi_json_ld::ContextLoader {
    crate::consent::json_ld_loader()
}

/// `$claims` secured with `$key`'s `eddsa-rdfc-2022` proof, its options set by
/// `$options`. A macro: the suite's signing bounds name types a function would have to
/// spell out.
macro_rules! sign {
    ($key:expr, $claims:expr, $options:expr) => {
        async {
            let key: &KeyPair = $key;
            let method = iref::IriBuf::new(key.did().verification_method())
                .map_err(|e| Problem::new("signing", "Signing failed", e.to_string()))?;
            let resolver = did_method_key::DIDKey.into_vm_resolver::<AnyMethod>();
            let environment = SignatureEnvironment {
                json_ld_loader: loader(),
                eip712_loader: (),
            };
            let signer = SingleSecretSigner::new(key.private_jwk()).into_local();
            let mut proof_options = ProofOptions::from_method(method.into());
            ($options)(&mut proof_options);
            let signed = AnySuite::EdDsaRdfc2022
                .sign_with(
                    environment,
                    $claims,
                    &resolver,
                    signer,
                    proof_options,
                    Default::default(),
                )
                .await
                .map_err(|e| {
                    Problem::new(
                        "signing",
                        "Signing failed",
                        format!("the document cannot be signed (unknown terms or context?): {e}"),
                    )
                })?;
            serde_json::to_value(&signed)
                .map_err(|e| Problem::new("signing", "Signing failed", e.to_string()))
        }
    };
}

fn time(value: &Value, field: &str) -> Result<Option<DateTime<Utc>>, Problem> {
    match value.get(field) {
        None => Ok(None),
        Some(text) => text
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| Some(t.with_timezone(&Utc)))
            .ok_or_else(|| {
                Problem::new(
                    "malformed",
                    "Malformed document",
                    format!("{field} is not an XML Schema dateTime with a zone"),
                )
            }),
    }
}

/// The proof is one `eddsa-rdfc-2022` Data Integrity proof by a `did:key`.
fn proof_shape(document: &Value) -> Result<(), Problem> {
    let proof = &document["proof"];
    if proof.is_array() {
        return Err(Problem::new(
            "unsupported-proof",
            "Unsupported proof",
            "only a single proof is verified here",
        ));
    }
    if proof["type"] != "DataIntegrityProof" || proof["cryptosuite"] != CRYPTOSUITE {
        return Err(Problem::new(
            "unsupported-proof",
            "Unsupported proof",
            format!("the proof must be a DataIntegrityProof with cryptosuite {CRYPTOSUITE}"),
        ));
    }
    let method = proof["verificationMethod"].as_str().unwrap_or_default();
    if !method.starts_with("did:key:") {
        return Err(Problem::new(
            "unsupported-proof",
            "Unsupported proof",
            "the proof's verificationMethod must be a did:key",
        ));
    }
    Ok(())
}

/// Verifies the proof of `$document` read as a `$claims` (a credential or a
/// presentation), judged at `$at`. A macro, like [`sign`], for the suite's bounds.
macro_rules! verify_proof {
    ($claims:ty, $document:expr, $at:expr, $what:literal) => {
        async {
            let secured: DataIntegrity<$claims, AnySuite> =
                serde_json::from_value($document.clone()).map_err(|e| {
                    Problem::new(
                        "malformed",
                        concat!("Malformed ", $what),
                        format!(concat!("not a VC 2.0 ", $what, ": {}"), e),
                    )
                })?;
            let resolver = did_method_key::DIDKey.into_vm_resolver::<AnyMethod>();
            let parameters = VerificationParameters::from_resolver(resolver)
                .with_json_ld_loader(loader())
                .with_date_time($at);
            match secured.verify(parameters).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(invalid)) => Err(Problem::new(
                    "invalid-proof",
                    "Invalid proof",
                    invalid.to_string(),
                )),
                Err(error) => Err(Problem::new(
                    "invalid-proof",
                    "Invalid proof",
                    error.to_string(),
                )),
            }
        }
    };
}

/// The times the suite reads in `document`, nested credentials and proofs included
/// (`validFrom`, `validUntil`, `created`, `expires`), are RFC 3339 date-times: it
/// unwraps what it parses, so a year of thirty digits in a presentation's credential
/// would panic inside it (found by `scripts/fuzz`).
fn suite_times(document: &Value) -> Result<(), Problem> {
    const TIMES: [&str; 4] = ["validFrom", "validUntil", "created", "expires"];
    match document {
        Value::Array(items) => items.iter().try_for_each(suite_times),
        Value::Object(map) => {
            for field in TIMES {
                time(document, field)?;
            }
            map.values().try_for_each(suite_times)
        }
        _ => Ok(()),
    }
}

/// Refuses a document over [`MAX_DOCUMENT_BYTES`].
fn within_size(document: &Value) -> Result<(), Problem> {
    if serde_json::to_vec(document).map_or(true, |b| b.len() > MAX_DOCUMENT_BYTES) {
        return Err(Problem::new(
            "too-large",
            "Document too large",
            format!("at most {MAX_DOCUMENT_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// Refuses a document whose canonicalization could run away (`rdf_bound`), before the
/// suite canonicalizes it.
async fn bounded(document: &Value) -> Result<(), Problem> {
    suite_times(document)?;
    crate::rdf_bound::check_document(document)
        .await
        .map_err(|e| match e {
            crate::rdf_bound::CanonError::Expansion(why) => {
                Problem::new("malformed", "Not JSON-LD the bundled contexts expand", why)
            }
            other => Problem::new(
                "unbounded-canonicalization",
                "Too costly to canonicalize",
                other.to_string(),
            ),
        })
}

/// Verifies a credential's proof (judged at `at`, so only the proof counts).
async fn credential_proof(document: &Value, at: DateTime<Utc>) -> Result<(), Problem> {
    proof_shape(document)?;
    bounded(document).await?;
    verify_proof!(JsonCredential, document, at, "credential").await
}

/// Verifies any credential secured with an `eddsa-rdfc-2022` proof by a `did:key`: the
/// proof (`proof`), its validity period at `now` (`validity`), and its status entry
/// when it has one (`status`, judged by `status`, which answers `Some(revoked)` for a
/// list it can read and `None` for one it cannot).
pub async fn verify_credential(
    document: &Value,
    now: DateTime<Utc>,
    status: StatusJudge<'_>,
) -> Verification {
    let mut result = Verification::default();
    if let Err(problem) = within_size(document) {
        result.fail(problem);
        return result.done();
    }
    let (from, until) = match (time(document, "validFrom"), time(document, "validUntil")) {
        (Ok(from), Ok(until)) => (from, until),
        (Err(problem), _) | (_, Err(problem)) => {
            result.fail(problem);
            return result.done();
        }
    };
    result.checks.push("proof");
    if let Err(problem) = credential_proof(document, from.unwrap_or(now)).await {
        result.fail(problem);
    }
    result.checks.push("validity");
    if from.is_some_and(|from| now < from) {
        result.fail(Problem::new(
            "not-yet-valid",
            "Not yet valid",
            "validFrom is in the future",
        ));
    }
    if until.is_some_and(|until| now >= until) {
        result.fail(Problem::new("expired", "Expired", "validUntil has passed"));
    }
    if let Some(entry) = document.get("credentialStatus") {
        result.checks.push("status");
        match status(document, entry) {
            Some(Ok(false)) => {}
            Some(Ok(true)) => result.fail(Problem::new(
                "revoked",
                "Revoked",
                "the status list marks the credential revoked",
            )),
            Some(Err(why)) => result.fail(Problem::new("status", "Status unreadable", why)),
            None => result.warnings.push(Problem::new(
                "status-not-checked",
                "Status not checked",
                "the status list is not one this node holds; it fetches no other",
            )),
        }
    }
    result.done()
}

/// Signs `credential` as `key`'s `did:key` with an `eddsa-rdfc-2022` proof; the issuer is
/// set to that DID (one naming another issuer is refused).
pub async fn issue_credential(key: &KeyPair, credential: &Value) -> Result<Value, Problem> {
    let mut unsigned = credential.clone();
    let object = unsigned.as_object_mut().ok_or_else(|| {
        Problem::new(
            "malformed",
            "Malformed credential",
            "a credential is a JSON object",
        )
    })?;
    if object.contains_key("proof") {
        return Err(Problem::new(
            "malformed",
            "Malformed credential",
            "the credential to issue must carry no proof",
        ));
    }
    match object.get("issuer") {
        None => {
            object.insert("issuer".into(), json!(key.did()));
        }
        Some(issuer) if issuer == &json!(key.did()) => {}
        Some(_) => {
            return Err(Problem::new(
                "wrong-issuer",
                "Wrong issuer",
                format!("this node issues as {} only", key.did()),
            ));
        }
    }
    within_size(&unsigned)?;
    bounded(&unsigned).await?;
    let parsed: JsonCredential = serde_json::from_value(unsigned).map_err(|e| {
        Problem::new(
            "malformed",
            "Malformed credential",
            format!("not a VC 2.0 credential: {e}"),
        )
    })?;
    sign!(key, parsed, |_: &mut ProofOptions<_, _>| {}).await
}

/// Signs `presentation` as its holder `key` for authentication, with the verifier's
/// `challenge` and `domain` (what a wallet does when asked to present).
pub async fn sign_presentation(
    key: &KeyPair,
    presentation: &Value,
    (challenge, domain): (&str, &str),
) -> Result<Value, Problem> {
    bounded(presentation).await?;
    let parsed: JsonPresentation = serde_json::from_value(presentation.clone()).map_err(|e| {
        Problem::new(
            "malformed",
            "Malformed presentation",
            format!("not a VC 2.0 presentation: {e}"),
        )
    })?;
    sign!(key, parsed, |options: &mut ProofOptions<_, _>| {
        options.proof_purpose = ssi_verification_methods::ProofPurpose::Authentication;
        options.challenge = Some(challenge.to_owned());
        options.domains = vec![domain.to_owned()];
    })
    .await
}

/// Verifies a presentation: its proof by its holder's `did:key` for authentication, with
/// the `challenge` and `domain` the verifier gave, then every credential it holds.
pub async fn verify_presentation(
    document: &Value,
    (challenge, domain): (Option<&str>, Option<&str>),
    now: DateTime<Utc>,
    status: StatusJudge<'_>,
) -> Verification {
    let mut result = Verification::default();
    if let Err(problem) = within_size(document) {
        result.fail(problem);
        return result.done();
    }
    let proof = &document["proof"];
    result.checks.push("challenge");
    if let Some(expected) = challenge
        && proof["challenge"].as_str() != Some(expected)
    {
        result.fail(Problem::new(
            "challenge",
            "Challenge mismatch",
            "the proof's challenge is not the one given",
        ));
    }
    result.checks.push("domain");
    if let Some(expected) = domain
        && proof["domain"].as_str() != Some(expected)
        && !proof["domain"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d == expected))
    {
        result.fail(Problem::new(
            "domain",
            "Domain mismatch",
            "the proof's domain is not the one given",
        ));
    }
    result.checks.push("proof");
    if proof["proofPurpose"] != "authentication" {
        result.fail(Problem::new(
            "invalid-proof",
            "Invalid proof",
            "a presentation's proof is for authentication",
        ));
    }
    let verified = match proof_shape(document) {
        Err(problem) => Err(problem),
        Ok(()) => presentation_proof(document, now).await,
    };
    if let Err(problem) = verified {
        result.fail(problem);
    }
    result.checks.push("holder");
    if let Err(problem) = holder_signed(document) {
        result.fail(problem);
    }
    let credentials: Vec<Value> = match &document["verifiableCredential"] {
        Value::Null => Vec::new(),
        Value::Array(list) => list.clone(),
        one => vec![one.clone()],
    };
    result.checks.push("credentials");
    if credentials.len() > MAX_PRESENTED {
        result.fail(Problem::new(
            "too-large",
            "Too many credentials",
            format!("at most {MAX_PRESENTED} credentials in a presentation"),
        ));
        return result.done();
    }
    for credential in &credentials {
        let inner = Box::pin(verify_credential(credential, now, status)).await;
        if !inner.verified {
            result.fail(Problem::new(
                "credential",
                "A credential did not verify",
                format!(
                    "credential {} did not verify",
                    credential["id"].as_str().unwrap_or("without an id")
                ),
            ));
        }
        result.credential_results.push(inner);
    }
    result.done()
}

/// A presentation naming its `holder` (a DID, or an object with one as `id`) is signed
/// by a key of that DID.
fn holder_signed(document: &Value) -> Result<(), Problem> {
    let holder = match &document["holder"] {
        Value::Null => return Ok(()),
        Value::String(holder) => holder.as_str(),
        other => other["id"].as_str().unwrap_or_default(),
    };
    let method = document["proof"]["verificationMethod"]
        .as_str()
        .unwrap_or_default();
    if method.split('#').next() == Some(holder) && !holder.is_empty() {
        return Ok(());
    }
    Err(Problem::new(
        "holder",
        "Holder mismatch",
        format!("the presentation names holder {holder:?} but its proof is by {method:?}"),
    ))
}

async fn presentation_proof(document: &Value, now: DateTime<Utc>) -> Result<(), Problem> {
    bounded(document).await?;
    verify_proof!(JsonPresentation, document, now, "presentation").await
}
