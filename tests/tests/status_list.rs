//! A consent's revocation status, readable by anyone outside the network (W3C Bitstring Status List v1.0): the bank's list credential, signed by the bank, derived from its log, read before and after a revocation by an independent implementation (Digital Bazaar's vc with its Bitstring Status List library), as it stood at a past time, and each index held by one consent only.

#![allow(clippy::unwrap_used)]

use std::io::Read as _;
use std::process::Command;
use std::time::Duration;

use chrono::Utc;
use consentnet_identity::consent::{StatusEntry, block_on};
use consentnet_identity::{KeyPair, Revocation, issue_consent};
use consentnet_tests::{
    Consortium, NodeProcess, balance_terms, http_get, http_post_json, link_client, wait_for,
};
use serde_json::{Value, json};

/// The bit of `index` in a list credential's `encodedList`.
fn bit(list: &Value, index: u32) -> bool {
    let encoded = list["credentialSubject"]["encodedList"].as_str().unwrap();
    assert!(encoded.starts_with('u'), "multibase base64url");
    let compressed = consentnet_identity::b64url_decode(&encoded[1..]).unwrap();
    let mut bits = Vec::new();
    flate2_decode(&compressed, &mut bits);
    assert!(bits.len() * 8 >= 131_072, "at least 131,072 entries");
    bits[(index / 8) as usize] & (0x80 >> (index % 8)) != 0
}

fn flate2_decode(compressed: &[u8], out: &mut Vec<u8>) {
    // GZIP by hand would be a second implementation to trust; the node's own decoder is
    // not exported, so the test reads it with the same crate.
    let mut decoder = flate2::read::GzDecoder::new(compressed);
    decoder.read_to_end(out).unwrap();
}

/// What the independent implementation says of `consent` with `list`: (verified, revoked).
fn they_say(consent: &Value, list: &Value) -> (bool, bool) {
    let dir = tempfile::tempdir().unwrap();
    let (consent_file, list_file) = (
        dir.path().join("consent.json"),
        dir.path().join("list.json"),
    );
    std::fs::write(&consent_file, consent.to_string()).unwrap();
    std::fs::write(&list_file, list.to_string()).unwrap();
    let interop = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("../identity/interop/interop.mjs");
    let output = Command::new("node")
        .arg(interop)
        .arg("verify-status")
        .args([&consent_file, &list_file])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stderr)));
    (report["verified"] == true, report["revoked"] == true)
}

/// The node's own `POST /credentials/verify` of `credential`.
fn verify_here(url: &dyn Fn(&str) -> String, credential: &Value) -> (u16, Value) {
    http_post_json(
        &url("/credentials/verify"),
        &json!({ "verifiableCredential": credential }),
    )
}

#[test]
fn a_revocation_shows_in_the_banks_status_list_for_anyone_to_check() {
    let consortium = Consortium::create(&[("bank", "Status Bank")]);
    let node = &consortium.nodes[0];
    // The list is named by the node's public URL: the same address after a restart.
    let listen = format!("127.0.0.1:{}", consentnet_tests::free_port());
    let start =
        || NodeProcess::start_on(node, &[], (&listen, "127.0.0.1:0"), Duration::from_secs(60));
    let bank = start();
    let url = |path: &str| format!("{}{path}", bank.http_url);
    let (_, identity) = http_get(&url("/.well-known/consentnet-node"));
    let identity: Value = serde_json::from_str(&identity).unwrap();
    let list_url = identity["status_list"].as_str().unwrap().to_owned();
    assert_eq!(list_url, format!("http://{listen}/status/revocation/0"));

    let account = consentnet_tests::sandbox_account();
    let client = KeyPair::generate();
    link_client(node, &bank, &client, &[&account]);
    let bank_did = consentnet_identity::Did::parse(node.did()).unwrap();
    let app = KeyPair::generate();
    let mut terms = balance_terms(app.did(), &bank_did, &account);
    terms.status = Some(StatusEntry::random(&list_url));
    let index = terms.status.as_ref().unwrap().index;
    let consent = block_on(issue_consent(&client, &terms)).unwrap();
    let list = || {
        let (status, body) = http_get(&url("/status/revocation/0"));
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };
    wait_for(
        "the status list rebuilt from the log",
        Duration::from_secs(10),
        || (http_get(&url("/status/revocation/0")).0 == 200).then_some(()),
    );
    let (status, body) = http_post_json(&url("/v1/consents"), &consent.credential);
    assert_eq!(status, 201, "{body}");

    // The list: the bank's, signed by it, with a ttl, and the consent's bit clear.
    let before = list();
    assert_eq!(before["issuer"], node.did());
    assert_eq!(before["credentialSubject"]["ttl"], 60_000);
    assert!(!bit(&before, index));
    let (status, verified) = http_post_json(
        &url("/credentials/verify"),
        &json!({ "verifiableCredential": before }),
    );
    assert_eq!(
        status, 200,
        "the list verifies as the bank's credential: {verified}"
    );
    let node_available = std::env::var_os("CONSENTNET_NO_NODE").is_none();
    if node_available {
        assert_eq!(they_say(&consent.credential, &before), (true, false));
    }
    // The bank's own VC-API reads the entry from its own list: checked, no warning.
    let (status, verified) = verify_here(&url, &consent.credential);
    assert_eq!(status, 200, "{verified}");
    assert!(
        verified["checks"]
            .as_array()
            .unwrap()
            .contains(&json!("status"))
    );
    assert_eq!(verified["warnings"], json!([]), "{verified}");

    // The same index for another consent is refused; so is another bank's list.
    let mut twin = terms.clone();
    twin.purpose = "Another budget".into();
    let twin = block_on(issue_consent(&client, &twin)).unwrap();
    let (status, body) = http_post_json(&url("/v1/consents"), &twin.credential);
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("status_index_taken")),
        "{body}"
    );
    let mut foreign = terms.clone();
    foreign.status = Some(StatusEntry::random(
        "https://elsewhere.example/status/revocation/0",
    ));
    let foreign = block_on(issue_consent(&client, &foreign)).unwrap();
    let (status, body) = http_post_json(&url("/v1/consents"), &foreign.credential);
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("status_list_foreign")),
        "{body}"
    );

    // The client revokes: the bit is set within the watch interval, for everyone.
    let revoked_after = Utc::now();
    let revocation = Revocation::sign(&client, consent.id, Utc::now(), None);
    let (status, body) = http_post_json(
        &url("/v1/revocations"),
        &serde_json::to_value(&revocation).unwrap(),
    );
    assert_eq!(status, 201, "{body}");
    let after = wait_for("the bit set", Duration::from_secs(5), || {
        let now = list();
        bit(&now, index).then_some(now)
    });
    if node_available {
        assert_eq!(they_say(&consent.credential, &after), (true, true));
    }
    let (status, verified) = verify_here(&url, &consent.credential);
    assert_eq!(status, 400, "{verified}");
    assert!(
        verified["errors"][0]["type"]
            .as_str()
            .unwrap()
            .ends_with("/revoked"),
        "{verified}"
    );
    // As it stood before the revocation, for a regulator looking back.
    let at = (revoked_after - chrono::Duration::seconds(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (status, past) = http_get(&url(&format!("/status/revocation/0?at={at}")));
    assert_eq!(status, 200, "{past}");
    assert!(!bit(&serde_json::from_str(&past).unwrap(), index));
    let (status, _) = http_get(&url("/status/revocation/0?at=yesterday"));
    assert_eq!(status, 400);
    // Only lists the bank opened are served (the next opens when this one is half taken).
    for unopened in ["1", "00", "x"] {
        let (status, body) = http_get(&url(&format!("/status/revocation/{unopened}")));
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("status_list_unknown"), "{body}");
    }

    // A restart rebuilds the list from the log: the bit, its time and the held index.
    drop(bank);
    let bank = start();
    let url = |path: &str| format!("{}{path}", bank.http_url);
    let (_, identity) = http_get(&url("/.well-known/consentnet-node"));
    let identity: Value = serde_json::from_str(&identity).unwrap();
    assert_eq!(identity["status_list"], list_url, "the list keeps its URL");
    let rebuilt = wait_for("the list rebuilt", Duration::from_secs(10), || {
        let (status, body) = http_get(&url("/status/revocation/0"));
        (status == 200).then(|| serde_json::from_str::<Value>(&body).unwrap())
    });
    assert!(bit(&rebuilt, index));
    let (_, past) = http_get(&url(&format!("/status/revocation/0?at={at}")));
    assert!(!bit(&serde_json::from_str(&past).unwrap(), index));
    let (status, body) = http_post_json(&url("/v1/consents"), &twin.credential);
    assert_eq!(status, 409, "{body}");
}
