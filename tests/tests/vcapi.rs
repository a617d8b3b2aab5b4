//! The VC-API on a real node: any party verifies a credential or a presentation (a consent, one the bank issued, one tampered with), the bank's operator issues credentials with the node's own `did:key` and an independent W3C implementation verifies them, and the consent context is served for verifiers to fetch.

#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use consentnet_identity::consent::block_on;
use consentnet_identity::{KeyPair, issue_consent};
use consentnet_tests::{
    Consortium, NodeProcess, admin_token, balance_terms, http_get, http_post_json,
    http_post_json_with,
};
use serde_json::{Value, json};

fn a_credential(subject: &KeyPair) -> Value {
    let now = Utc::now();
    json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential"],
        "name": "An account link",
        "validFrom": (now - chrono::Duration::minutes(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "credentialSubject": { "id": subject.did(), "description": "linked at Verifying Bank" },
    })
}

#[test]
fn any_party_verifies_credentials_and_presentations_and_the_bank_issues_its_own() {
    let consortium = Consortium::create(&[("bank", "Verifying Bank")]);
    let node = &consortium.nodes[0];
    let bank = NodeProcess::start(node, &[], Duration::from_secs(60));
    let url = |path: &str| format!("{}{path}", bank.http_url);

    // The context every consent names is served, cacheable, as JSON-LD.
    let (status, context) = http_get(&url("/contexts/consent/v1"));
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&context).unwrap(),
        serde_json::from_str::<Value>(consentnet_identity::consent::CONSENT_CONTEXT_DOCUMENT)
            .unwrap()
    );

    // A consent verifies as any credential; a tampered one is named invalid.
    let client = KeyPair::generate();
    let bank_did = consentnet_identity::Did::parse(node.did()).unwrap();
    let terms = balance_terms(KeyPair::generate().did(), &bank_did, "acc-1");
    let consent = block_on(issue_consent(&client, &terms)).unwrap().credential;
    let verify = |credential: &Value| {
        http_post_json(
            &url("/credentials/verify"),
            &json!({ "verifiableCredential": credential, "options": {} }),
        )
    };
    let (status, result) = verify(&consent);
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["verified"], true);
    assert_eq!(result["checks"], json!(["proof", "validity"]));
    let mut tampered = consent.clone();
    tampered["credentialSubject"]["purpose"] = json!("Something else");
    let (status, result) = verify(&tampered);
    assert_eq!(status, 400, "{result}");
    assert_eq!(result["verified"], false);
    assert!(
        result["errors"][0]["type"]
            .as_str()
            .unwrap()
            .ends_with("invalid-proof")
    );
    assert_eq!(result["problemDetails"][0], result["errors"][0]);
    let (status, body) = http_post_json(&url("/credentials/verify"), &json!({ "credential": {} }));
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("malformed_json")),
        "{body}"
    );

    // The bank's operator issues with the node's own key; no one else may.
    let subject = KeyPair::generate();
    let issue = format!("{}/credentials/issue", bank.operator_url);
    let request = json!({ "credential": a_credential(&subject), "options": {} });
    let (status, body) = http_post_json(&issue, &request);
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("admin_token_invalid"))
    );
    let token = admin_token(node);
    let headers = [("x-admin-token", token.as_str())];
    let (status, issued) = http_post_json_with(&issue, &headers, &request);
    assert_eq!(status, 201, "{issued}");
    let issued = issued["verifiableCredential"].clone();
    assert_eq!(issued["issuer"], node.did());
    assert_eq!(verify(&issued).0, 200);
    // Blank nodes alike and linked to each other (a poison graph) are refused before
    // they are canonicalized: eight held a core for 6 s, each one more ten times that.
    let mut poison = issued.clone();
    poison["credentialSubject"]["name"] = json!(
        (0..10)
            .map(|i| json!({
                "id": format!("_:b{i}"),
                "name": (0..10).filter(|j| *j != i).map(|j| json!({"id": format!("_:b{j}")})).collect::<Vec<_>>(),
            }))
            .collect::<Vec<_>>()
    );
    let (status, result) = verify(&poison);
    assert_eq!(status, 400, "{result}");
    assert!(
        result["errors"][0]["type"]
            .as_str()
            .unwrap()
            .ends_with("/unbounded-canonicalization"),
        "{result}"
    );
    let mut foreign = request.clone();
    foreign["credential"]["issuer"] = json!(KeyPair::generate().did());
    let (status, body) = http_post_json_with(&issue, &headers, &foreign);
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("credential_not_issued")),
        "{body}"
    );

    // A presentation of it, by its subject, for this verifier's challenge and domain.
    let presentation = json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiablePresentation"],
        "holder": subject.did(),
        "verifiableCredential": [issued.clone()],
    });
    let signed = block_on(consentnet_identity::vcapi::sign_presentation(
        &subject,
        &presentation,
        ("challenge-7", "verifier.example"),
    ))
    .unwrap();
    let present = |challenge: &str| {
        http_post_json(
            &url("/presentations/verify"),
            &json!({
                "verifiablePresentation": signed,
                "options": { "challenge": challenge, "domain": "verifier.example" },
            }),
        )
    };
    let (status, result) = present("challenge-7");
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["credentialResults"][0]["verified"], true);
    let (status, result) = present("challenge-8");
    assert_eq!(status, 400, "{result}");

    // An independent W3C implementation verifies what the node issued.
    if std::env::var_os("CONSENTNET_NO_NODE").is_some() {
        eprintln!("Node.js is not installed: the independent implementation was not run");
        return;
    }
    let interop = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("../identity/interop/interop.mjs");
    let mut child = Command::new("node")
        .arg(&interop)
        .args(["verify", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(issued.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );

    // And the node verifies what the independent implementation issued; not once changed.
    let output = Command::new("node")
        .arg(&interop)
        .arg("issue-generic")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let theirs: Value = serde_json::from_slice(&output.stdout).unwrap();
    let (status, result) = verify(&theirs);
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["verified"], true);
    let mut tampered = theirs.clone();
    tampered["credentialSubject"]["description"] = json!("another subject");
    let (status, result) = verify(&tampered);
    assert_eq!(status, 400, "{result}");
}
