//! Any VC 2.0 credential with an `eddsa-rdfc-2022` proof: issued here and verified by an independent W3C implementation (Digital Bazaar's vc, Node.js), issued there and verified here, tampered with and refused, expired and named so, and presented with a challenge and domain.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use chrono::{Duration, Utc};
use consentnet_identity::vcapi::{
    issue_credential, sign_presentation, verify_credential, verify_presentation,
};
use consentnet_identity::{KeyPair, Permission, issue_consent};
use serde_json::{Value, json};

fn no_status(_: &Value, _: &Value) -> Option<Result<bool, String>> {
    None
}

fn interop() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("interop/interop.mjs")
}

fn node_missing() -> bool {
    std::env::var_os("CONSENTNET_NO_NODE").is_some()
}

/// Whether the independent implementation verifies `credential`.
fn they_verify(credential: &Value) -> bool {
    let mut child = Command::new("node")
        .arg(interop())
        .args(["verify", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs (scripts/test sets CONSENTNET_NO_NODE=1 when Node.js is missing)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(credential.to_string().as_bytes())
        .unwrap();
    child.wait_with_output().unwrap().status.success()
}

fn sample(now: chrono::DateTime<Utc>) -> Value {
    json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": "urn:uuid:7d1c8f2a-2b4e-4a8e-9c51-0a1b2c3d4e5f",
        "type": ["VerifiableCredential"],
        "name": "An account link",
        "validFrom": (now - Duration::minutes(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "validUntil": (now + Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "credentialSubject": { "id": KeyPair::generate().did(), "description": "linked at this bank" },
    })
}

#[tokio::test]
async fn a_credential_issued_here_verifies_here_and_there_and_a_tampered_one_nowhere() {
    let bank = KeyPair::generate();
    let now = Utc::now();
    let issued = issue_credential(&bank, &sample(now)).await.unwrap();
    assert_eq!(issued["issuer"], json!(bank.did()));
    let result = verify_credential(&issued, now, &no_status).await;
    assert!(result.verified, "{result:?}");
    assert_eq!(result.checks, ["proof", "validity"]);
    let mut tampered = issued.clone();
    tampered["name"] = json!("Another link");
    let result = verify_credential(&tampered, now, &no_status).await;
    assert!(!result.verified);
    assert!(
        result.errors[0].kind.ends_with("invalid-proof"),
        "{result:?}"
    );
    // Past its validUntil the proof still holds, and the expiry is named.
    let result = verify_credential(&issued, now + Duration::days(2), &no_status).await;
    assert_eq!(
        result
            .errors
            .iter()
            .map(|e| e.kind.rsplit('/').next().unwrap())
            .collect::<Vec<_>>(),
        ["expired"]
    );
    if node_missing() {
        return;
    }
    assert!(
        they_verify(&issued),
        "the independent implementation verifies it"
    );
    assert!(!they_verify(&tampered));
}

#[tokio::test]
async fn credentials_the_independent_implementation_issued_verify_here() {
    if node_missing() {
        return;
    }
    let output = Command::new("node")
        .arg(interop())
        .arg("issue-generic")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let theirs: Value = serde_json::from_slice(&output.stdout).unwrap();
    let result = verify_credential(&theirs, Utc::now(), &no_status).await;
    assert!(result.verified, "{result:?}");
    let mut tampered = theirs.clone();
    tampered["credentialSubject"]["description"] = json!("another subject");
    assert!(
        !verify_credential(&tampered, Utc::now(), &no_status)
            .await
            .verified
    );
}

#[tokio::test]
async fn what_cannot_be_issued_or_verified_is_named() {
    let bank = KeyPair::generate();
    let mut other_issuer = sample(Utc::now());
    other_issuer["issuer"] = json!(KeyPair::generate().did());
    let refused = issue_credential(&bank, &other_issuer).await.unwrap_err();
    assert!(refused.kind.ends_with("wrong-issuer"), "{refused:?}");
    let refused = issue_credential(&bank, &json!(["not", "an", "object"]))
        .await
        .unwrap_err();
    assert!(refused.kind.ends_with("malformed"));
    // A status entry this node cannot read is a warning, not a pass in silence.
    let mut with_status = sample(Utc::now());
    with_status["credentialStatus"] = json!({
        "id": "https://bank.example/status/1#94567",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "94567",
        "statusListCredential": "https://bank.example/status/1",
    });
    let issued = issue_credential(&bank, &with_status).await.unwrap();
    let result = verify_credential(&issued, Utc::now(), &no_status).await;
    assert!(result.verified, "{result:?}");
    assert!(result.checks.contains(&"status"));
    assert!(result.warnings[0].kind.ends_with("status-not-checked"));
    let revoked = verify_credential(&issued, Utc::now(), &|_, _| Some(Ok(true))).await;
    assert!(!revoked.verified);
    assert!(revoked.errors[0].kind.ends_with("revoked"));
}

/// What `scripts/fuzz` found panicking inside the suite or the JSON-LD processor: each
/// is now refused before either reads it, as a malformed document.
#[tokio::test]
async fn inputs_that_made_the_suite_or_the_json_ld_processor_panic_are_refused_first() {
    let (bank, holder, now) = (KeyPair::generate(), KeyPair::generate(), Utc::now());
    let issued = issue_credential(&bank, &sample(now)).await.unwrap();
    let malformed = |result: &consentnet_identity::vcapi::Verification| {
        !result.verified && result.errors[0].kind.ends_with("/malformed")
    };
    let mut far = issued.clone();
    far["proof"]["created"] = json!("202999999999996-12-06T09:19:17Z");
    assert!(malformed(&verify_credential(&far, now, &no_status).await));
    let mut short = issued.clone();
    short["proof"]["created"] = json!("226-12-06T09:19:17Z");
    assert!(malformed(&verify_credential(&short, now, &no_status).await));
    let mut escaped = issued.clone();
    escaped["proof"]["verificationMethod"] = json!(format!("{}%86", bank.did()));
    assert!(malformed(
        &verify_credential(&escaped, now, &no_status).await
    ));
    // Inside a presentation: the credential's own dates are read with the presentation.
    let mut inner = issued.clone();
    inner["validFrom"] = json!("20269999999999999999999999999-12-06T09:18:17Z");
    let presentation = json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiablePresentation"],
        "holder": holder.did(),
        "verifiableCredential": [issued],
    });
    let mut signed = sign_presentation(&holder, &presentation, ("c-1", "v.example"))
        .await
        .unwrap();
    // One credential is given as the value itself, not in an array.
    signed["verifiableCredential"] = inner;
    let options = (Some("c-1"), Some("v.example"));
    let result = verify_presentation(&signed, options, now, &no_status).await;
    assert!(!result.verified);
    assert!(
        result.errors.iter().any(|e| e.kind.ends_with("/malformed")),
        "{result:?}"
    );
    // A consent's status list URL is an IRI too.
    let mut terms = common::budgeting_terms(now);
    terms.status = Some(consentnet_identity::consent::StatusEntry::random(
        "https://bank.example/status/cr%dentials",
    ));
    assert!(issue_consent(&KeyPair::generate(), &terms).await.is_err());
    let mut sent = issue_consent(&KeyPair::generate(), &common::budgeting_terms(now))
        .await
        .unwrap()
        .credential;
    sent["credentialStatus"] = json!({
        "id": "https://bank.example/status/cr%dentials#7",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "7",
        "statusListCredential": "https://bank.example/status/cr%dentials",
    });
    let sent = sent.to_string();
    assert!(
        consentnet_identity::verify_consent(sent.as_bytes())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_consent_verifies_as_any_credential() {
    let (client, now) = (KeyPair::generate(), Utc::now());
    let mut terms = common::budgeting_terms(now);
    terms.permissions.insert(Permission::ReadBalances);
    let consent = issue_consent(&client, &terms).await.unwrap();
    let result = verify_credential(&consent.credential, now, &no_status).await;
    assert!(result.verified, "{result:?}");
}

#[tokio::test]
async fn a_presentation_verifies_with_its_challenge_and_domain_and_every_credential() {
    let (bank, holder, now) = (KeyPair::generate(), KeyPair::generate(), Utc::now());
    let issued = issue_credential(&bank, &sample(now)).await.unwrap();
    let presentation = json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiablePresentation"],
        "holder": holder.did(),
        "verifiableCredential": [issued.clone()],
    });
    let signed = sign_presentation(&holder, &presentation, ("c-123", "verifier.example"))
        .await
        .unwrap();
    let options = (Some("c-123"), Some("verifier.example"));
    let result = verify_presentation(&signed, options, now, &no_status).await;
    assert!(result.verified, "{result:?}");
    assert_eq!(result.credential_results.len(), 1);
    let replayed = verify_presentation(
        &signed,
        (Some("c-456"), Some("verifier.example")),
        now,
        &no_status,
    )
    .await;
    assert!(
        replayed
            .errors
            .iter()
            .any(|e| e.kind.ends_with("challenge"))
    );
    let elsewhere = verify_presentation(
        &signed,
        (Some("c-123"), Some("other.example")),
        now,
        &no_status,
    )
    .await;
    assert!(elsewhere.errors.iter().any(|e| e.kind.ends_with("domain")));
    // Signed by someone other than the holder it names.
    let stranger = KeyPair::generate();
    let impostor = sign_presentation(&stranger, &presentation, ("c-123", "verifier.example"))
        .await
        .unwrap();
    let result = verify_presentation(&impostor, options, now, &no_status).await;
    assert!(!result.verified);
    assert!(
        result.errors.iter().any(|e| e.kind.ends_with("/holder")),
        "{result:?}"
    );
    // A credential inside changed after it was presented: the presentation's proof and
    // the credential's own both fail.
    let mut tampered = signed.clone();
    let held = &mut tampered["verifiableCredential"];
    let held = if held.is_array() { &mut held[0] } else { held };
    held["name"] = json!("Another link");
    let result = verify_presentation(&tampered, options, now, &no_status).await;
    assert!(!result.verified);
    assert!(!result.credential_results[0].verified);
}

#[tokio::test]
async fn a_consent_names_its_status_entry_and_verifies_here_and_there() {
    let (client, now) = (KeyPair::generate(), Utc::now());
    let mut terms = common::budgeting_terms(now);
    terms.status = Some(consentnet_identity::consent::StatusEntry::random(
        "https://bank.example/status/revocation/0",
    ));
    let consent = issue_consent(&client, &terms).await.unwrap();
    let status = &consent.credential["credentialStatus"];
    assert_eq!(status["type"], "BitstringStatusListEntry");
    let index = terms.status.as_ref().unwrap().index;
    assert_eq!(status["statusListIndex"], index.to_string());
    let again = consentnet_identity::verify_consent(consent.credential.to_string().as_bytes())
        .await
        .unwrap();
    assert_eq!(again.terms.status, terms.status);
    // An entry that does not match its own id is refused.
    let mut moved = consent.credential.clone();
    moved["credentialStatus"]["statusListIndex"] = json!((index + 1).to_string());
    assert!(
        consentnet_identity::verify_consent(moved.to_string().as_bytes())
            .await
            .is_err()
    );
}
