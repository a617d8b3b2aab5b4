//! Linking a client's DID to accounts at a bank node: every defective request is refused with its own status and code and links nothing; only a linked holder's consent is served.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use consentnet_identity::consent::block_on;
use consentnet_identity::{Did, KeyPair, LinkRequest, issue_consent};
use consentnet_tests::{
    Consortium, admin_token, approval_body, balance_terms, http_post_json, http_post_json_with,
    link_client, node_key, obie_get, wait_for,
};
use serde_json::{Value, json};

const START: Duration = Duration::from_secs(30);
const DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn defective_link_requests_are_refused_and_only_a_linked_holders_consent_is_served() {
    let consortium = Consortium::create(&[("bank", "Link Bank"), ("tsp", "Link Fintech")]);
    let bank = consortium.start(0, START);
    let tsp = consortium.start(1, START);
    let bank_dir = &consortium.nodes[0];
    let bank_did = Did::parse(bank_dir.did()).unwrap();
    let token = admin_token(bank_dir);
    let account = consentnet_tests::sandbox_account();
    let codes = format!("{}/v1/admin/link-codes", bank.operator_url);
    let issue = |headers: &[(&str, &str)], body: serde_json::Value| {
        let (status, body) = http_post_json_with(&codes, headers, &body);
        (
            status,
            body["code"].as_str().unwrap_or_default().to_owned(),
            body,
        )
    };
    let good = json!({ "customer": "c-1", "accounts": [account] });

    // Issuing a code: the admin token, known accounts, well-formed fields.
    let with_token = [("x-admin-token", token.as_str())];
    for (headers, body, status, code) in [
        (&[][..], good.clone(), 401, "admin_token_invalid"),
        (
            &[("x-admin-token", "wrong-token-wrong-token")][..],
            good.clone(),
            401,
            "admin_token_invalid",
        ),
        (
            &with_token[..],
            json!({ "customer": "c-1", "accounts": ["acc-nope"] }),
            400,
            "unknown_account",
        ),
        (
            &with_token[..],
            json!({ "customer": "", "accounts": [account] }),
            400,
            "invalid_link_request",
        ),
        (
            &with_token[..],
            json!({ "customer": "c-1" }),
            400,
            "malformed_json",
        ),
    ] {
        let (got, _, body) = issue(headers, body);
        assert_eq!(
            (got, body["code"].as_str().unwrap()),
            (status, code),
            "{body}"
        );
    }
    // A TSP node links nothing.
    let (status, body) = http_post_json_with(
        &format!("{}/v1/admin/link-codes", tsp.operator_url),
        &with_token,
        &good,
    );
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (404, "not_a_bank")
    );

    // Redeeming: the proof must be the named DID's, for this bank, with a live code.
    let (status, code, body) = issue(&with_token, good.clone());
    assert_eq!(status, 201, "{body}");
    let client = KeyPair::generate();
    let stranger = KeyPair::generate();
    let links = format!("{}/v1/links", bank.http_url);
    let mut forged = LinkRequest::sign(&stranger, &bank_did, &code);
    forged.did = client.did().to_string();
    let other_bank = KeyPair::generate();
    for (request, status, code) in [
        (
            serde_json::to_value(&forged).unwrap(),
            401,
            "link_proof_invalid",
        ),
        (
            serde_json::to_value(LinkRequest::sign(&client, other_bank.did(), &code)).unwrap(),
            401,
            "link_proof_invalid",
        ),
        (
            serde_json::to_value(LinkRequest::sign(&client, &bank_did, "0000")).unwrap(),
            403,
            "link_code_unusable",
        ),
        (json!({ "code": code }), 400, "malformed_json"),
    ] {
        let (got, body) = http_post_json(&links, &request);
        assert_eq!(
            (got, body["code"].as_str().unwrap()),
            (status, code),
            "{body}"
        );
    }

    // The app is approved, and a stranger who knows the account reference signs a consent
    // for it: the bank refuses to admit it, because the stranger is not linked as its
    // holder, and the TSP's node admits no grant for another bank. Nothing is stored.
    let app = KeyPair::generate();
    let (status, body) = http_post_json(
        &format!("{}/v1/apps/decisions", bank.http_url),
        &approval_body(&node_key(bank_dir), app.did()),
    );
    assert_eq!(status, 201, "{body}");
    let consent_of = |signer: &KeyPair| {
        block_on(issue_consent(
            signer,
            &balance_terms(app.did(), &bank_did, &account),
        ))
        .unwrap()
    };
    let submit_at = |node: &consentnet_tests::NodeProcess, consent: &Value| {
        let (status, body) = http_post_json(&format!("{}/v1/consents", node.http_url), consent);
        (status, body["code"].as_str().unwrap_or_default().to_owned())
    };
    let path = format!("/accounts/{account}/balances");
    let forged = consent_of(&stranger);
    let entries = bank.status()["log_entries"].clone();
    assert_eq!(
        submit_at(&bank, &forged.credential),
        (403, "consent_issuer_not_linked".to_owned())
    );
    assert_eq!(
        submit_at(&tsp, &forged.credential),
        (403, "grant_not_at_bank".to_owned())
    );
    assert_eq!(bank.status()["log_entries"], entries, "nothing was stored");
    let (_, body) = obie_get(&bank.http_url, &path, &forged.id.to_string(), &app);
    assert_eq!(body["Code"], "consent_unknown");

    // The real holder links (the code was not used up by the refusals) and is served.
    let (status, body) = http_post_json(
        &links,
        &serde_json::to_value(LinkRequest::sign(&client, &bank_did, &code)).unwrap(),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["accounts"][0]["account_id"], account.as_str());
    let granted = consent_of(&client);
    let (status, body) = http_post_json(
        &format!("{}/v1/consents", bank.http_url),
        &granted.credential,
    );
    assert_eq!(status, 201, "{body}");
    let consent = granted.id.to_string();
    wait_for("the holder's consent to be served", DEADLINE, || {
        (obie_get(&bank.http_url, &path, &consent, &app).0 == 200).then_some(())
    });
    // Linking survives a restart of the bank node.
    drop(bank);
    let bank = consortium.start(0, START);
    assert_eq!(obie_get(&bank.http_url, &path, &consent, &app).0, 200);
    // A second client linked through the shared helper works the same way.
    let second = KeyPair::generate();
    link_client(bank_dir, &bank, &second, &[&account]);
}

#[test]
fn a_client_holds_at_most_the_banks_limit_of_consents_and_revoked_ones_count_until_they_retire() {
    let consortium = Consortium::create(&[("bank", "Limit Bank")]);
    let node = &consortium.nodes[0];
    let config = node.dir.join("node.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("max_consents_per_client = 1000"));
    std::fs::write(
        &config,
        text.replace(
            "max_consents_per_client = 1000",
            "max_consents_per_client = 2",
        ),
    )
    .unwrap();
    let bank = consortium.start(0, START);
    let account = consentnet_tests::sandbox_account();
    let client = KeyPair::generate();
    link_client(node, &bank, &client, &[&account]);
    let bank_did = Did::parse(node.did()).unwrap();
    let grant = |purpose: &str| {
        let mut terms = balance_terms(KeyPair::generate().did(), &bank_did, &account);
        terms.purpose = purpose.into();
        block_on(issue_consent(&client, &terms)).unwrap()
    };
    let submit = |credential: &Value| {
        let (status, body) = http_post_json(&format!("{}/v1/consents", bank.http_url), credential);
        (status, body["code"].as_str().unwrap_or_default().to_owned())
    };
    let first = grant("first");
    assert_eq!(submit(&first.credential).0, 201);
    let second = grant("second");
    assert_eq!(submit(&second.credential).0, 201);
    // The third is refused; one already on the log is still acknowledged.
    assert_eq!(
        submit(&grant("third").credential),
        (409, "consent_limit_reached".to_owned())
    );
    assert_eq!(submit(&first.credential).0, 200);
    // Revoking does not make room: the revoked consent stays in every member's state
    // until it retires.
    let revocation = consentnet_identity::Revocation::sign(&client, first.id, Utc::now(), None);
    let (status, body) = http_post_json(
        &format!("{}/v1/revocations", bank.http_url),
        &serde_json::to_value(&revocation).unwrap(),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        submit(&grant("fourth").credential),
        (409, "consent_limit_reached".to_owned())
    );
    // Another client is not held back by this one.
    let other = KeyPair::generate();
    link_client(node, &bank, &other, &[&account]);
    let terms = balance_terms(KeyPair::generate().did(), &bank_did, &account);
    let theirs = block_on(issue_consent(&other, &terms)).unwrap();
    assert_eq!(submit(&theirs.credential).0, 201);
}
