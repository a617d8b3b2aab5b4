//! Documents whose RDF canonicalization would run away (blank nodes that look alike linked to each other, "poison graphs"): refused before the canonicalizer runs, by the VC-API verifier, the issuer and the consent verifier, while wide documents of alike blank nodes still verify.

#![allow(clippy::unwrap_used)]

mod common;

use chrono::{Duration, Utc};
use consentnet_identity::rdf_bound::{CanonError, check_document};
use consentnet_identity::vcapi::{issue_credential, verify_credential};
use consentnet_identity::{KeyPair, issue_consent, verify_consent};
use serde_json::{Value, json};

fn no_status(_: &Value, _: &Value) -> Option<Result<bool, String>> {
    None
}

/// `n` blank nodes, each linked to every other: canonicalizing 8 took 6 s, each one more ten times that.
fn clique(n: usize) -> Value {
    let node = |i: usize| {
        let others: Vec<Value> = (0..n)
            .filter(|j| *j != i)
            .map(|j| json!({ "id": format!("_:b{j}") }))
            .collect();
        json!({ "id": format!("_:b{i}"), "name": others })
    };
    json!((0..n).map(node).collect::<Vec<_>>())
}

/// `k` alike objects holding `m` alike objects each, no ids: 2 x 14 exhausts any memory.
fn nested(k: usize, m: usize) -> Value {
    let leaf = || json!({ "name": "x" });
    let middle = || json!({ "name": (0..m).map(|_| leaf()).collect::<Vec<_>>() });
    json!((0..k).map(|_| middle()).collect::<Vec<_>>())
}

fn credential_with(subject_name: Value) -> Value {
    let now = Utc::now();
    json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential"],
        "validFrom": (now - Duration::minutes(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "credentialSubject": { "id": "did:example:holder", "name": subject_name },
    })
}

fn refused(problem_type: &str) -> bool {
    problem_type.ends_with("/unbounded-canonicalization")
}

#[tokio::test]
async fn poison_graphs_are_refused_before_they_are_canonicalized() {
    let issuer = KeyPair::generate();
    for poison in [clique(8), nested(2, 14), nested(4, 4)] {
        let unsigned = credential_with(poison.clone());
        assert_eq!(
            check_document(&unsigned).await,
            Err(CanonError::AlikeBlankNodes)
        );
        let problem = issue_credential(&issuer, &unsigned).await.unwrap_err();
        assert!(refused(&problem.kind), "{problem:?}");
        // Put into a signed credential: refused before the proof is looked at.
        let mut signed = issue_credential(&issuer, &credential_with(json!("x")))
            .await
            .unwrap();
        signed["credentialSubject"]["name"] = poison;
        let result = verify_credential(&signed, Utc::now(), &no_status).await;
        assert!(!result.verified);
        assert!(refused(&result.errors[0].kind), "{result:?}");
    }
}

#[tokio::test]
async fn wide_documents_of_alike_blank_nodes_still_verify() {
    let issuer = KeyPair::generate();
    let leaves: Vec<Value> = (0..200).map(|_| json!({ "name": "x" })).collect();
    let wide = issue_credential(&issuer, &credential_with(json!(leaves)))
        .await
        .unwrap();
    assert!(
        verify_credential(&wide, Utc::now(), &no_status)
            .await
            .verified
    );
    // Objects holding alike objects are fine when they differ themselves.
    let told_apart: Vec<Value> = (0..5)
        .map(|i| json!({ "description": format!("item {i}"), "name": [{ "name": "y" }, { "name": "y" }] }))
        .collect();
    assert!(
        issue_credential(&issuer, &credential_with(json!(told_apart)))
            .await
            .is_ok()
    );
    let many: Vec<Value> = (0..300)
        .map(|i| json!({ "name": format!("{i}") }))
        .collect();
    assert_eq!(
        check_document(&credential_with(json!(many))).await,
        Err(CanonError::TooManyBlankNodes(301))
    );
}

#[tokio::test]
async fn a_consent_carrying_a_poison_graph_in_its_proof_is_refused() {
    let (client, now) = (KeyPair::generate(), Utc::now());
    let terms = common::budgeting_terms(now);
    let consent = issue_consent(&client, &terms).await.unwrap();
    for poison in [clique(8), nested(2, 14)] {
        let mut tampered = consent.credential.clone();
        tampered["proof"]["name"] = poison;
        assert!(
            verify_consent(tampered.to_string().as_bytes())
                .await
                .is_err()
        );
    }
}
