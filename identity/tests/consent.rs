//! Consent credentials: issue and verify round trips, and one test per rejection with its specific error.

// Test helpers outside #[test] functions unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use chrono::{Duration, TimeZone, Utc};
use consentnet_identity::consent::{CONSENT_CONTEXT, MAX_CREDENTIAL_BYTES, VC_V2_CONTEXT};
use consentnet_identity::{
    ConsentError, ConsentId, ConsentTerms, ConsentVerifier, KeyPair, PaymentLimits, Period,
    Permission, PermissionError, Validity, issue_consent, verify_consent,
};
use serde_json::{Value, json};

fn terms(app: &KeyPair, bank: &KeyPair) -> ConsentTerms {
    ConsentTerms {
        app: app.did().clone(),
        bank: bank.did().clone(),
        accounts: vec!["acc-7f3a9c".into(), "acc-19be02".into()],
        permissions: BTreeSet::from([
            Permission::ReadAccountsDetail,
            Permission::ReadBalances,
            Permission::ReadTransactionsDetail,
            Permission::ReadTransactionsCredits,
            Permission::ReadTransactionsDebits,
        ]),
        payment_limits: None,
        purpose: "Affordability check for a loan application".into(),
        valid_from: Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap(),
        valid_until: Utc.with_ymd_and_hms(2027, 2, 1, 9, 0, 0).unwrap(),
        proof_key: None,
        status: None,
    }
}

struct Parties {
    client: KeyPair,
    app: KeyPair,
    bank: KeyPair,
}

fn parties() -> Parties {
    Parties {
        client: KeyPair::generate(),
        app: KeyPair::generate(),
        bank: KeyPair::generate(),
    }
}

async fn issued() -> (Parties, Value) {
    let p = parties();
    let consent = issue_consent(&p.client, &terms(&p.app, &p.bank))
        .await
        .unwrap();
    let credential = consent.credential.clone();
    (p, credential)
}

async fn verify_value(value: &Value) -> Result<consentnet_identity::VerifiedConsent, ConsentError> {
    verify_consent(value.to_string().as_bytes()).await
}

#[tokio::test]
async fn issued_consent_verifies_and_round_trips() {
    let p = parties();
    let wanted = terms(&p.app, &p.bank);
    let issued = issue_consent(&p.client, &wanted).await.unwrap();
    assert_eq!(issued.issuer, *p.client.did());
    assert_eq!(issued.terms, wanted);
    let proof = &issued.credential["proof"];
    assert_eq!(proof["type"], "DataIntegrityProof");
    assert_eq!(proof["cryptosuite"], "eddsa-rdfc-2022");
    assert_eq!(
        proof["verificationMethod"],
        p.client.did().verification_method()
    );
    assert_eq!(
        issued.credential["@context"],
        json!([VC_V2_CONTEXT, CONSENT_CONTEXT])
    );
    assert_eq!(
        issued.credential["credentialSubject"]["id"],
        p.app.did().as_str()
    );

    let verified = verify_consent(issued.to_json().as_bytes()).await.unwrap();
    assert_eq!(verified, issued);
    // Pretty-printed or re-ordered, it is the same credential with the same id.
    let pretty = serde_json::to_string_pretty(&issued.credential).unwrap();
    assert_eq!(
        verify_consent(pretty.as_bytes()).await.unwrap().id,
        issued.id
    );
    assert_eq!(ConsentId::parse(&issued.id.to_string()), Some(issued.id));
}

#[tokio::test]
async fn payment_consent_with_limits_round_trips() {
    let p = parties();
    let mut wanted = terms(&p.app, &p.bank);
    wanted.permissions = BTreeSet::from([Permission::CreateDomesticPayments]);
    wanted.payment_limits = Some(PaymentLimits {
        currency: "GBP".into(),
        max_per_payment: "250.00".into(),
        max_per_period: Some("1000.00".into()),
        period: Some(Period::Month),
    });
    let issued = issue_consent(&p.client, &wanted).await.unwrap();
    let verified = verify_consent(issued.to_json().as_bytes()).await.unwrap();
    assert_eq!(verified.terms.payment_limits, wanted.payment_limits);
}

#[tokio::test]
async fn a_proof_key_is_signed_with_the_terms_and_names_who_signs_the_calls() {
    let p = parties();
    let installation = KeyPair::generate();
    let mut wanted = terms(&p.app, &p.bank);
    wanted.proof_key = Some(installation.did().clone());
    let held = issue_consent(&p.client, &wanted).await.unwrap();
    assert_eq!(
        held.credential["credentialSubject"]["proofKey"],
        installation.did().as_str()
    );
    let verified = verify_consent(held.to_json().as_bytes()).await.unwrap();
    assert_eq!(verified.terms.pop_key(), installation.did());
    assert_eq!(&verified.terms.app, p.app.did());
    // Another key named after signing breaks the proof: the key is part of what was signed.
    let mut swapped = held.credential.clone();
    swapped["credentialSubject"]["proofKey"] = json!(KeyPair::generate().did());
    let error = verify_value(&swapped).await.unwrap_err();
    assert!(matches!(error, ConsentError::BadProof(_)), "{error:?}");
    // Without one, the app's own key signs the calls.
    let (plain, credential) = issued().await;
    let verified = verify_value(&credential).await.unwrap();
    assert_eq!(verified.terms.pop_key(), plain.app.did());
}

#[tokio::test]
async fn validity_follows_the_window() {
    let (_, credential) = issued().await;
    let consent = verify_value(&credential).await.unwrap();
    let from = consent.terms.valid_from;
    let until = consent.terms.valid_until;
    assert_eq!(
        consent.validity_at(from - Duration::seconds(1)),
        Validity::NotYetValid
    );
    assert_eq!(consent.validity_at(from), Validity::Active);
    assert_eq!(
        consent.validity_at(until - Duration::seconds(1)),
        Validity::Active
    );
    assert_eq!(consent.validity_at(until), Validity::Expired);
}

#[tokio::test]
async fn tampered_terms_fail_the_proof() {
    let (_, mut credential) = issued().await;
    credential["credentialSubject"]["accounts"] = json!(["acc-someone-else"]);
    let error = verify_value(&credential).await.unwrap_err();
    assert!(matches!(error, ConsentError::BadProof(_)), "{error:?}");
}

#[tokio::test]
async fn tampered_proof_value_fails() {
    let (_, mut credential) = issued().await;
    let value = credential["proof"]["proofValue"]
        .as_str()
        .unwrap()
        .to_owned();
    let flipped = if value.ends_with('A') { "B" } else { "A" };
    credential["proof"]["proofValue"] = json!(format!("{}{flipped}", &value[..value.len() - 1]));
    let error = verify_value(&credential).await.unwrap_err();
    assert!(matches!(error, ConsentError::BadProof(_)), "{error:?}");
}

#[tokio::test]
async fn missing_proof_is_refused() {
    let (_, mut credential) = issued().await;
    credential.as_object_mut().unwrap().remove("proof");
    assert!(matches!(
        verify_value(&credential).await,
        Err(ConsentError::MissingProof)
    ));
}

#[tokio::test]
async fn proof_by_a_key_that_is_not_the_issuers_is_refused() {
    let (_, mut credential) = issued().await;
    let impostor = KeyPair::generate();
    credential["issuer"] = json!(impostor.did());
    let error = verify_value(&credential).await.unwrap_err();
    assert!(
        matches!(error, ConsentError::ProofKeyNotIssuer { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn other_cryptosuites_are_refused() {
    let (_, mut credential) = issued().await;
    credential["proof"]["cryptosuite"] = json!("eddsa-jcs-2022");
    let error = verify_value(&credential).await.unwrap_err();
    assert!(
        matches!(&error, ConsentError::UnsupportedCryptosuite(s) if s == "eddsa-jcs-2022"),
        "{error:?}"
    );
}

#[tokio::test]
async fn unknown_permission_code_is_refused() {
    let (_, mut credential) = issued().await;
    credential["credentialSubject"]["permissions"] = json!(["ReadAccountsBasic", "ReadEverything"]);
    let error = verify_value(&credential).await.unwrap_err();
    assert!(
        matches!(&error, ConsentError::Permission(PermissionError::Unknown(code)) if code == "ReadEverything"),
        "{error:?}"
    );
}

#[tokio::test]
async fn forbidden_permission_sets_are_refused_on_issue_and_verify() {
    let p = parties();
    let mut wanted = terms(&p.app, &p.bank);
    wanted.permissions = BTreeSet::from([
        Permission::ReadAccountsBasic,
        Permission::ReadTransactionsBasic,
    ]);
    let error = issue_consent(&p.client, &wanted).await.unwrap_err();
    assert!(
        matches!(
            error,
            ConsentError::Permission(PermissionError::Forbidden(_))
        ),
        "{error:?}"
    );

    let (_, mut credential) = issued().await;
    credential["credentialSubject"]["permissions"] = json!(["ReadBalances"]);
    let error = verify_value(&credential).await.unwrap_err();
    assert!(
        matches!(
            error,
            ConsentError::Permission(PermissionError::Forbidden(_))
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn valid_until_before_valid_from_is_refused() {
    let p = parties();
    let mut wanted = terms(&p.app, &p.bank);
    wanted.valid_until = wanted.valid_from - Duration::days(1);
    let error = issue_consent(&p.client, &wanted).await.unwrap_err();
    assert!(
        matches!(error, ConsentError::ValidityWindow { .. }),
        "{error:?}"
    );

    let (_, mut credential) = issued().await;
    credential["validUntil"] = json!("2020-01-01T00:00:00Z");
    let error = verify_value(&credential).await.unwrap_err();
    assert!(
        matches!(error, ConsentError::ValidityWindow { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn unknown_context_is_refused() {
    let (_, mut credential) = issued().await;
    credential["@context"] = json!([VC_V2_CONTEXT, "https://evil.example/context/v1"]);
    let error = verify_value(&credential).await.unwrap_err();
    assert!(
        matches!(error, ConsentError::UnknownContext(_)),
        "{error:?}"
    );

    credential["@context"] =
        json!([VC_V2_CONTEXT, CONSENT_CONTEXT, {"extra": "https://x.example/#extra"}]);
    let error = verify_value(&credential).await.unwrap_err();
    assert!(
        matches!(error, ConsentError::UnknownContext(_)),
        "{error:?}"
    );
}

#[tokio::test]
async fn oversized_input_is_refused_before_parsing() {
    let big = vec![b' '; MAX_CREDENTIAL_BYTES + 1];
    let error = verify_consent(&big).await.unwrap_err();
    assert!(
        matches!(error, ConsentError::TooLarge { size, max } if size == MAX_CREDENTIAL_BYTES + 1 && max == MAX_CREDENTIAL_BYTES),
        "{error:?}"
    );
    let verifier = ConsentVerifier::new(8);
    assert!(matches!(
        verifier.verify(&big).await,
        Err(ConsentError::TooLarge { .. })
    ));
}

#[tokio::test]
async fn not_json_and_wrong_shapes_are_refused() {
    assert!(matches!(
        verify_consent(b"{not json").await,
        Err(ConsentError::InvalidJson(_))
    ));
    let (_, mut credential) = issued().await;
    credential["credentialSubject"]["accountNumber"] = json!("12345678");
    assert!(matches!(
        verify_value(&credential).await,
        Err(ConsentError::Malformed(_))
    ));
    let (_, mut credential) = issued().await;
    credential["type"] = json!(["VerifiableCredential"]);
    assert!(matches!(
        verify_value(&credential).await,
        Err(ConsentError::Malformed(_))
    ));
}

#[tokio::test]
async fn account_numbers_and_ibans_are_refused_as_references() {
    let p = parties();
    for bad in [
        "12345678",
        "40-47-84-12345678",
        "GB33BUKB20201555555555",
        "",
        "acc with space",
    ] {
        let mut wanted = terms(&p.app, &p.bank);
        wanted.accounts = vec![bad.into()];
        let error = issue_consent(&p.client, &wanted).await.unwrap_err();
        assert!(
            matches!(&error, ConsentError::AccountReference(r) if r == bad),
            "{bad:?} gave {error:?}"
        );
    }
}

#[tokio::test]
async fn payment_limits_must_match_the_payment_permission() {
    let p = parties();
    let limits = PaymentLimits {
        currency: "GBP".into(),
        max_per_payment: "250.00".into(),
        max_per_period: None,
        period: None,
    };
    let mut without_permission = terms(&p.app, &p.bank);
    without_permission.payment_limits = Some(limits.clone());
    let mut without_limits = terms(&p.app, &p.bank);
    without_limits
        .permissions
        .insert(Permission::CreateDomesticPayments);
    let mut bad_currency = without_limits.clone();
    bad_currency.payment_limits = Some(PaymentLimits {
        currency: "pounds".into(),
        ..limits.clone()
    });
    let mut bad_amount = without_limits.clone();
    bad_amount.payment_limits = Some(PaymentLimits {
        max_per_payment: "-5".into(),
        ..limits
    });
    for wanted in [without_permission, without_limits, bad_currency, bad_amount] {
        let error = issue_consent(&p.client, &wanted).await.unwrap_err();
        assert!(matches!(error, ConsentError::PaymentLimits(_)), "{error:?}");
    }
}

#[tokio::test]
async fn the_cache_verifies_each_credential_once() {
    let (_, credential) = issued().await;
    let verifier = ConsentVerifier::new(8);
    let text = credential.to_string();
    let first = verifier.verify(text.as_bytes()).await.unwrap();
    let pretty = serde_json::to_string_pretty(&credential).unwrap();
    let second = verifier.verify(pretty.as_bytes()).await.unwrap();
    assert!(std::sync::Arc::ptr_eq(&first, &second));
    assert_eq!(verifier.full_verifications(), 1);
    assert_eq!(verifier.hits(), 1);
    assert_eq!(verifier.get(&first.id).unwrap().id, first.id);

    // A tampered credential has another id, so it is verified in full and refused.
    let mut tampered = credential.clone();
    tampered["credentialSubject"]["purpose"] = json!("Something else entirely");
    assert!(matches!(
        verifier.verify(tampered.to_string().as_bytes()).await,
        Err(ConsentError::BadProof(_))
    ));
    assert_eq!(verifier.full_verifications(), 2);
    assert_eq!(verifier.len(), 1);
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let verifier = ConsentVerifier::new(2);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (_, credential) = issued().await;
        ids.push(
            verifier
                .verify(credential.to_string().as_bytes())
                .await
                .unwrap()
                .id,
        );
    }
    assert_eq!(verifier.len(), 2);
    assert!(
        verifier.get(&ids[0]).is_none(),
        "the oldest entry is evicted"
    );
    assert!(verifier.get(&ids[2]).is_some());
}

#[tokio::test]
async fn a_consent_prepared_for_an_outside_signer_verifies_once_the_issuer_signs_its_message() {
    use consentnet_identity::consent::{complete_consent, prepare_consent};
    let p = parties();
    let terms = terms(&p.app, &p.bank);
    let prepared = prepare_consent(p.client.did(), &terms).await.unwrap();
    // The placeholder is no signature: the prepared credential does not verify as is.
    assert!(verify_value(&prepared.credential).await.is_err());
    // Someone else's signature of the message is refused; the issuer's completes it.
    let forged = p.app.sign(&prepared.message);
    assert!(
        complete_consent(&prepared.credential, &forged)
            .await
            .is_err()
    );
    assert!(
        complete_consent(&prepared.credential, &[1; 12])
            .await
            .is_err()
    );
    let signature = p.client.sign(&prepared.message);
    let consent = complete_consent(&prepared.credential, &signature)
        .await
        .unwrap();
    assert_eq!(&consent.issuer, p.client.did());
    assert_eq!(consent.terms.permissions, terms.permissions);
    // The completed credential verifies from its bytes, as any consent does.
    let again = verify_value(&consent.credential).await.unwrap();
    assert_eq!(again.id, consent.id);
    // A completed credential cannot be completed again with another signature.
    assert!(
        complete_consent(&consent.credential, &signature)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_proof_dated_beyond_any_calendar_is_refused_not_a_panic() {
    // Found by the fuzzer (`scripts/fuzz`): a thirty-digit year in `proof.created`.
    let (_, credential) = issued().await;
    for created in [
        "20269999999999999999999999-12-02T01:20:52.267Z",
        "yesterday",
        "2026-13-45T99:99:99Z",
    ] {
        let mut forged = credential.clone();
        forged["proof"]["created"] = json!(created);
        let result = verify_value(&forged).await;
        assert!(
            matches!(&result, Err(ConsentError::Malformed(m)) if m.contains("proof.created")),
            "{created}: {result:?}"
        );
    }
    let mut forged = credential.clone();
    forged["proof"]["created"] = json!(12);
    assert!(matches!(
        verify_value(&forged).await,
        Err(ConsentError::Malformed(_))
    ));
}

#[tokio::test]
async fn an_id_that_is_not_a_plain_urn_uuid_is_refused_not_a_panic() {
    // Found by the fuzzer (`scripts/fuzz`): a `%` in the id reached the JSON-LD processor.
    let (_, credential) = issued().await;
    for id in [
        "urn:uuid:49685bee%ee73-4816-904c-4d930c60cf98",
        "urn:uuid:49685bee-ee73-4816-904c",
        "urn:uuid:49685bee-ee73-4816-904c-4d930c60cf9g",
    ] {
        let mut forged = credential.clone();
        forged["id"] = json!(id);
        let result = verify_value(&forged).await;
        assert!(
            matches!(&result, Err(ConsentError::Malformed(m)) if m.contains("urn:uuid")),
            "{id}: {result:?}"
        );
    }
}
