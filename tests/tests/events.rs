//! Event notifications from a real bank node to TSPs: a revoked consent pushed to the endpoint the app registered (RFC 8935) as a SET the bank signed, a suspension pushed too, and an expiry and a revocation waiting for an app that polls (RFC 8936) until it acknowledges them; no event names the client.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, Read as _, Write as _};
use std::sync::mpsc;
use std::time::Duration;

use chrono::Utc;
use consentnet_consent_chain::event::{AppAction, AppDecision};
use consentnet_identity::consent::block_on;
use consentnet_identity::jose::Jws;
use consentnet_identity::{ConsentId, Did, KeyPair, Revocation, issue_consent};
use consentnet_tests::{
    Consortium, NodeProcess, approval_body, balance_terms, http_post_json, link_client,
    manifest_body, manifest_with_events, node_key, pop_proof, publish,
};
use serde_json::{Value, json};

const START: Duration = Duration::from_secs(60);
const DEADLINE: Duration = Duration::from_secs(10);

/// A stand-in for an app's event endpoint: takes each SET with `202` and hands over the
/// content type and the body.
fn event_endpoint() -> (String, mpsc::Receiver<(String, String)>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = std::io::BufReader::new(&stream);
            let (mut length, mut content_type, mut line) = (0usize, String::new(), String::new());
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                let lower = line.to_ascii_lowercase();
                if let Some(value) = lower.strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
                if let Some(value) = lower.strip_prefix("content-type:") {
                    content_type = value.trim().to_owned();
                }
                line.clear();
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let _ = write!(
                &stream,
                "HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            let _ = sender.send((content_type, String::from_utf8_lossy(&body).into_owned()));
        }
    });
    (url, receiver)
}

struct Bank {
    consortium: Consortium,
    process: NodeProcess,
    key: KeyPair,
    did: Did,
    account: String,
}

fn bank() -> Bank {
    let consortium = Consortium::create(&[("bank", "Eventful Bank")]);
    consentnet_tests::forms::enable_portal(&consortium.nodes[0]);
    let process = NodeProcess::start(&consortium.nodes[0], &[], START);
    let key = node_key(&consortium.nodes[0]);
    let did = key.did().clone();
    let account = consentnet_tests::sandbox_account();
    Bank {
        consortium,
        process,
        key,
        did,
        account,
    }
}

/// Publishes `manifest` of `app` and approves it for balances.
fn approved(bank: &Bank, app: &KeyPair, manifest: &Value) {
    let (status, body) = publish(&bank.process, manifest);
    assert_eq!(status, 201, "{body}");
    let (status, body) = http_post_json(
        &format!("{}/v1/apps/decisions", bank.process.http_url),
        &approval_body(&bank.key, app.did()),
    );
    assert_eq!(status, 201, "{body}");
}

/// A consent of a new client for `app`, on the log, valid until `until`.
fn consent(bank: &Bank, app: &KeyPair, until: chrono::DateTime<Utc>) -> (KeyPair, String) {
    let client = KeyPair::generate();
    link_client(
        &bank.consortium.nodes[0],
        &bank.process,
        &client,
        &[&bank.account],
    );
    let mut terms = balance_terms(app.did(), &bank.did, &bank.account);
    terms.valid_from = Utc::now() - chrono::Duration::minutes(1);
    terms.valid_until = until;
    let consent = block_on(issue_consent(&client, &terms)).unwrap();
    let (status, body) = http_post_json(
        &format!("{}/v1/consents", bank.process.http_url),
        &consent.credential,
    );
    assert_eq!(status, 201, "{body}");
    (client, consent.id.to_string())
}

/// The SET's claims, checked to be signed by the bank; and that it names no client.
fn verified(bank: &Bank, set: &str, client: Option<&KeyPair>) -> Value {
    let jws = Jws::decode(set).unwrap();
    jws.verify(&bank.did).unwrap();
    assert_eq!(jws.header["typ"], "secevent+jwt");
    if let Some(client) = client {
        assert!(!set.contains(client.did().as_str()));
        let claims = serde_json::to_string(&jws.claims).unwrap();
        assert!(!claims.contains(client.did().as_str()), "{claims}");
        assert!(!claims.contains(&bank.account), "{claims}");
    }
    Value::Object(jws.claims)
}

/// `POST /open-banking/v4.0/events` by `app` acknowledging `ack`.
fn poll(bank: &Bank, app: &KeyPair, token: &str, ack: &[&str]) -> Value {
    let url = format!("{}/open-banking/v4.0/events", bank.process.http_url);
    let proof = pop_proof(app, "POST", &url, token);
    let mut response = consentnet_tests::forms::agent()
        .post(&url)
        .header("authorization", &format!("DPoP {token}"))
        .header("dpop", &proof)
        .header("content-type", "application/json")
        .send(json!({ "maxEvents": 10, "returnImmediately": true, "ack": ack }).to_string())
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap()
}

#[test]
fn a_revocation_and_a_suspension_are_pushed_to_the_apps_endpoint_signed_by_the_bank() {
    let bank = bank();
    let (endpoint, pushed) = event_endpoint();
    let app = KeyPair::generate();
    approved(
        &bank,
        &app,
        &manifest_with_events(&app, "1.0.0", "https://budget.example/callback", &endpoint),
    );
    let (client, id) = consent(&bank, &app, Utc::now() + chrono::Duration::days(30));
    let revocation = Revocation::sign(&client, ConsentId::parse(&id).unwrap(), Utc::now(), None);
    let (status, body) = http_post_json(
        &format!("{}/v1/revocations", bank.process.http_url),
        &serde_json::to_value(&revocation).unwrap(),
    );
    assert_eq!(status, 201, "{body}");
    let (content_type, set) = pushed.recv_timeout(DEADLINE).unwrap();
    assert_eq!(content_type, "application/secevent+jwt");
    let claims = verified(&bank, &set, Some(&client));
    assert_eq!(claims["aud"], app.did().as_str());
    let event = &claims["events"]["urn:uk:org:openbanking:events:consent-authorization-revoked"];
    assert_eq!(event["subject"]["http://openbanking.org.uk/rid"], id);
    assert_eq!(event["initiator"], "client");

    // The bank suspends the version: the app hears of it too.
    let decision = AppDecision {
        bank: bank.did.clone(),
        app: app.did().clone(),
        version: "1.0.0".into(),
        action: AppAction::Suspend,
        time: u64::try_from(Utc::now().timestamp_millis()).unwrap(),
    };
    let mut body = serde_json::to_value(consentnet_consent_chain::Event::app_decided(
        &bank.key, decision,
    ))
    .unwrap();
    body.as_object_mut().unwrap().remove("type");
    let (status, answer) = http_post_json(
        &format!("{}/v1/apps/decisions", bank.process.http_url),
        &body,
    );
    assert_eq!(status, 201, "{answer}");
    let (_, set) = pushed.recv_timeout(DEADLINE).unwrap();
    let claims = verified(&bank, &set, None);
    let event = &claims["events"]["https://consentnet.org/events/app-version-suspended"];
    assert_eq!(event["subject"]["version"], "1.0.0");
    // Taken by push, nothing waits for polling.
    let token = consentnet_tests::forms::client_token(&bank.process.http_url, &app, "accounts");
    let waiting = poll(&bank, &app, &token, &[]);
    assert_eq!(waiting["sets"], json!({}), "{waiting}");
}

#[test]
fn an_app_that_polls_takes_expiries_and_revocations_until_it_acknowledges_them() {
    let bank = bank();
    let app = KeyPair::generate();
    approved(&bank, &app, &manifest_body(&app, "1.0.0"));
    let (_, soon) = consent(&bank, &app, Utc::now() + chrono::Duration::seconds(2));
    let (client, later) = consent(&bank, &app, Utc::now() + chrono::Duration::days(30));
    let revocation = Revocation::sign(&client, ConsentId::parse(&later).unwrap(), Utc::now(), None);
    let (status, body) = http_post_json(
        &format!("{}/v1/revocations", bank.process.http_url),
        &serde_json::to_value(&revocation).unwrap(),
    );
    assert_eq!(status, 201, "{body}");
    let token = consentnet_tests::forms::client_token(&bank.process.http_url, &app, "accounts");
    // Both wait for the app: the revocation at once, the expiry once its time is past.
    let sets = consentnet_tests::wait_for("both events", DEADLINE, || {
        let sets = poll(&bank, &app, &token, &[])["sets"].clone();
        (sets.as_object().unwrap().len() == 2).then_some(sets)
    });
    let mut kinds = Vec::new();
    for set in sets.as_object().unwrap().values() {
        let claims = verified(&bank, set.as_str().unwrap(), Some(&client));
        let (kind, event) = claims["events"].as_object().unwrap().iter().next().unwrap();
        let rid = &event["subject"]["http://openbanking.org.uk/rid"];
        kinds.push((kind.clone(), rid.as_str().unwrap().to_owned()));
    }
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            (
                "urn:uk:org:openbanking:events:consent-authorization-revoked".to_owned(),
                later.clone()
            ),
            (
                "urn:uk:org:openbanking:events:resource-update".to_owned(),
                soon.clone()
            ),
        ]
    );
    // Another app sees none of them; acknowledged, they are gone.
    let other = KeyPair::generate();
    approved(&bank, &other, &manifest_body(&other, "1.0.0"));
    let other_token =
        consentnet_tests::forms::client_token(&bank.process.http_url, &other, "accounts");
    assert_eq!(poll(&bank, &other, &other_token, &[])["sets"], json!({}));
    let jtis: Vec<&str> = sets
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let after = poll(&bank, &app, &token, &jtis);
    assert_eq!(after["sets"], json!({}));
    assert_eq!(after["moreAvailable"], false);
}
