//! Revocation statements: signed by the consent's issuer or its bank, refused otherwise.

// Test helpers outside #[test] functions unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use consentnet_identity::revocation::MAX_REVOCATION_BYTES;
use consentnet_identity::{
    ConsentTerms, KeyPair, Permission, Revocation, RevocationError, VerifiedConsent, issue_consent,
};

struct Setup {
    client: KeyPair,
    bank: KeyPair,
    consent: VerifiedConsent,
}

async fn setup() -> Setup {
    let client = KeyPair::generate();
    let bank = KeyPair::generate();
    let terms = ConsentTerms {
        app: KeyPair::generate().did().clone(),
        bank: bank.did().clone(),
        accounts: vec!["acc-1".into()],
        permissions: BTreeSet::from([Permission::ReadAccountsBasic]),
        payment_limits: None,
        purpose: "Budgeting".into(),
        valid_from: Utc::now(),
        valid_until: Utc::now() + Duration::days(30),
        proof_key: None,
        status: None,
    };
    let consent = issue_consent(&client, &terms).await.unwrap();
    Setup {
        client,
        bank,
        consent,
    }
}

#[tokio::test]
async fn issuer_revocation_round_trips_and_verifies() {
    let s = setup().await;
    let revocation = Revocation::sign(&s.client, s.consent.id, Utc::now(), None);
    let parsed = Revocation::from_json(revocation.to_json().as_bytes()).unwrap();
    assert_eq!(parsed, revocation);
    parsed.verify_for(&s.consent).unwrap();
}

#[tokio::test]
async fn the_bank_may_revoke_for_fraud() {
    let s = setup().await;
    let revocation = Revocation::sign(&s.bank, s.consent.id, Utc::now(), Some("fraud".into()));
    let parsed = Revocation::from_json(revocation.to_json().as_bytes()).unwrap();
    parsed.verify_for(&s.consent).unwrap();
    assert_eq!(parsed.reason.as_deref(), Some("fraud"));
}

#[tokio::test]
async fn anyone_else_is_not_entitled() {
    let s = setup().await;
    let stranger = KeyPair::generate();
    let revocation = Revocation::sign(&stranger, s.consent.id, Utc::now(), None);
    assert_eq!(
        revocation.verify_for(&s.consent).unwrap_err(),
        RevocationError::NotEntitled(stranger.did().to_string())
    );
}

#[tokio::test]
async fn a_revocation_for_another_consent_does_not_apply() {
    let s = setup().await;
    let other = setup().await;
    let revocation = Revocation::sign(&s.client, other.consent.id, Utc::now(), None);
    assert!(matches!(
        revocation.verify_for(&s.consent),
        Err(RevocationError::WrongConsent { .. })
    ));
}

#[tokio::test]
async fn altered_fields_break_the_signature() {
    let s = setup().await;
    let revocation = Revocation::sign(&s.client, s.consent.id, Utc::now(), None);
    let mut json: serde_json::Value = serde_json::from_str(&revocation.to_json()).unwrap();
    json["time"] = serde_json::json!("2030-01-01T00:00:00Z");
    assert_eq!(
        Revocation::from_json(json.to_string().as_bytes()).unwrap_err(),
        RevocationError::BadSignature(s.client.did().to_string())
    );
}

#[test]
fn malformed_and_oversized_input_is_refused() {
    assert!(matches!(
        Revocation::from_json(b"[]"),
        Err(RevocationError::Malformed(_))
    ));
    let big = vec![b' '; MAX_REVOCATION_BYTES + 1];
    assert!(matches!(
        Revocation::from_json(&big),
        Err(RevocationError::TooLarge { .. })
    ));
}
