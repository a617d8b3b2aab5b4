//! Interoperability with an independent W3C implementation (Digital Bazaar's vc and eddsa-rdfc-2022, run by Node.js): each side verifies the other's consent credentials.

// Test helpers outside #[test] functions unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use chrono::{Duration, Utc};
use consentnet_identity::{
    ConsentError, ConsentTerms, KeyPair, Permission, issue_consent, verify_consent,
};
use serde_json::{Value, json};

const FIXTURE: &str = include_str!("fixtures/consent-digitalbazaar.json");

#[tokio::test]
async fn a_consent_signed_by_the_independent_implementation_verifies_here() {
    let consent = verify_consent(FIXTURE.as_bytes()).await.unwrap();
    assert_eq!(
        consent.issuer.as_str(),
        "did:key:z6MkvDqGT54cXesYGvABpF1UapVNwjCqRcafi4Px6Thv5T3Z"
    );
    assert_eq!(consent.terms.accounts, ["acc-7f3a9c"]);
    assert!(
        consent
            .terms
            .permissions
            .contains(&Permission::ReadBalances)
    );

    let mut tampered: Value = serde_json::from_str(FIXTURE).unwrap();
    tampered["credentialSubject"]["permissions"] = json!(["ReadAccountsDetail"]);
    assert!(matches!(
        verify_consent(tampered.to_string().as_bytes()).await,
        Err(ConsentError::BadProof(_))
    ));
}

fn interop_dir() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("interop")
}

/// Runs the independent verifier on `credential`; returns whether it verified.
fn verified_by_independent_implementation(credential: &Value) -> bool {
    let mut child = Command::new("node")
        .arg(interop_dir().join("interop.mjs"))
        .args(["verify", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs (scripts/test sets CONSENTNET_NO_NODE=1 when Node.js is missing)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(credential.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|_| panic!("the verifier printed no report: {stdout} {stderr}"));
    assert_eq!(
        report["verified"].as_bool(),
        Some(output.status.success()),
        "{report}"
    );
    report["verified"] == true
}

#[tokio::test]
async fn the_independent_implementation_verifies_our_consent() {
    if std::env::var_os("CONSENTNET_NO_NODE").is_some() {
        eprintln!("Node.js is not installed: the independent implementation was not run");
        return;
    }
    assert!(
        interop_dir().join("node_modules").is_dir(),
        "run `npm ci` in identity/interop first (scripts/test does)"
    );
    let terms = ConsentTerms {
        app: KeyPair::generate().did().clone(),
        bank: KeyPair::generate().did().clone(),
        accounts: vec!["acc-7f3a9c".into()],
        permissions: BTreeSet::from([
            Permission::ReadAccountsBasic,
            Permission::ReadTransactionsBasic,
            Permission::ReadTransactionsCredits,
        ]),
        payment_limits: None,
        purpose: "Interop check".into(),
        valid_from: Utc::now() - Duration::hours(1),
        valid_until: Utc::now() + Duration::days(90),
        proof_key: None,
        status: None,
    };
    let consent = issue_consent(&KeyPair::generate(), &terms).await.unwrap();
    assert!(verified_by_independent_implementation(&consent.credential));

    let mut tampered = consent.credential.clone();
    tampered["credentialSubject"]["accounts"] = json!(["acc-other"]);
    assert!(!verified_by_independent_implementation(&tampered));

    // A mini-app's consent names the key that signs its calls; that term is signed too.
    let installation = KeyPair::generate();
    let held = ConsentTerms {
        proof_key: Some(installation.did().clone()),
        status: None,
        ..terms
    };
    let consent = issue_consent(&KeyPair::generate(), &held).await.unwrap();
    assert!(verified_by_independent_implementation(&consent.credential));
    let mut swapped = consent.credential.clone();
    swapped["credentialSubject"]["proofKey"] = json!(KeyPair::generate().did());
    assert!(!verified_by_independent_implementation(&swapped));
}
