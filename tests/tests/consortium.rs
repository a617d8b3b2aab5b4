//! Four-node consortiums as real processes on loopback: replication, late joiners, `kill -9` and restart, membership gating, and a peer flooding invalid gossip.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use consentnet_identity::consent::block_on;
use consentnet_identity::{Did, KeyPair, Revocation, issue_consent};
use consentnet_tests::{
    Consortium, NodeDir, NodeProcess, TEST_PASSPHRASE, approval_body, balance_terms, bin_dir,
    http_get, http_post_json, link_client, manifest_body, node_key, obie_get, publish, signed_get,
    wait_connected, wait_converged, wait_for,
};
use serde_json::Value;

const START: Duration = Duration::from_secs(30);
const DEADLINE: Duration = Duration::from_secs(60);

const FOUR: [(&str, &str); 4] = [
    ("bank", "Bank A"),
    ("bank", "Bank B"),
    ("tsp", "TSP One"),
    ("regulator", "Regulator"),
];

/// An account of the seeded sandbox bank every test bank serves.
fn sandbox_account() -> String {
    consentnet_tests::sandbox_account()
}

fn post(node: &NodeProcess, path: &str, body: &Value) -> (u16, Value) {
    http_post_json(&format!("{}{path}", node.http_url), body)
}

/// A consent's status at `node`, read as `reader`.
fn consent_status(node: &NodeProcess, reader: &KeyPair, id: &str) -> String {
    let (code, body) = signed_get(&format!("{}/v1/consents/{id}", node.http_url), reader);
    assert_eq!(code, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn four_nodes_replicate_grants_and_revocations_and_agree() {
    let consortium = Consortium::create(&FOUR);
    let nodes: Vec<NodeProcess> = (0..4).map(|i| consortium.start(i, START)).collect();
    let all: Vec<&NodeProcess> = nodes.iter().collect();
    wait_connected(&all, 3, DEADLINE);

    // A client linked at Bank A grants the TSP's app access there. Only Bank A's node
    // admits the grant; the TSP's node refuses it and stores nothing.
    let app = KeyPair::generate();
    let client = KeyPair::generate();
    let account = sandbox_account();
    link_client(&consortium.nodes[0], &nodes[0], &client, &[&account]);
    let bank_did = Did::parse(consortium.nodes[0].did()).unwrap();
    let terms = balance_terms(app.did(), &bank_did, &account);
    let consent = block_on(issue_consent(&client, &terms)).unwrap();
    let id = consent.id.to_string();
    let entries = nodes[2].status()["log_entries"].clone();
    let (code, refused) = post(&nodes[2], "/v1/consents", &consent.credential);
    assert_eq!(
        (code, &refused["code"]),
        (403, &Value::from("grant_not_at_bank"))
    );
    assert_eq!(nodes[2].status()["log_entries"], entries);
    let (code, receipt) = post(&nodes[0], "/v1/consents", &consent.credential);
    assert_eq!(code, 201, "{receipt}");
    assert_eq!(receipt["receipt"]["origin"], consortium.nodes[0].did());
    assert_eq!(receipt["new"], true);
    wait_for("the grant to be active everywhere", DEADLINE, || {
        nodes
            .iter()
            .all(|n| consent_status(n, &client, &id) == "active")
            .then_some(())
    });

    // The same credential again, at another node: acknowledged with the first receipt.
    let (code, again) = post(&nodes[2], "/v1/consents", &consent.credential);
    assert_eq!(code, 200, "{again}");
    assert_eq!(again["new"], false);
    assert_eq!(again["entry_hash"], receipt["entry_hash"]);
    let (code, body) = signed_get(
        &format!("{}/v1/consents/{id}/receipt", nodes[3].http_url),
        &client,
    );
    assert_eq!(code, 200, "{body}");
    let held: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(held["receipt"], receipt["receipt"]);

    // An app manifest published through Bank B's operator surface shows in Bank A's catalog at the regulator.
    let (code, published) = publish(&nodes[1], &manifest_body(&app, "1.0.0"));
    assert_eq!(code, 201, "{published}");
    wait_for("the app in every catalog", DEADLINE, || {
        nodes
            .iter()
            .all(|n| {
                let url = format!(
                    "{}/v1/catalog?bank={}",
                    n.http_url,
                    consortium.nodes[0].did()
                );
                let (_, body) = http_get(&url);
                serde_json::from_str::<Value>(&body).unwrap()["apps"]
                    .as_array()
                    .is_some_and(|apps| apps.len() == 1)
            })
            .then_some(())
    });

    // The client revokes through the regulator's node; every node sees it revoked.
    let revocation = Revocation::sign(&client, consent.id, Utc::now(), None);
    let (code, body) = post(
        &nodes[3],
        "/v1/revocations",
        &serde_json::to_value(&revocation).unwrap(),
    );
    assert_eq!(code, 201, "{body}");
    wait_for("the revocation everywhere", DEADLINE, || {
        nodes
            .iter()
            .all(|n| consent_status(n, &client, &id) == "revoked")
            .then_some(())
    });
    wait_converged(&all, 3, DEADLINE);
}

#[test]
fn a_late_node_catches_up_and_a_killed_node_loses_nothing_acknowledged() {
    let consortium = Consortium::create(&FOUR);
    let first = consortium.start(0, START);
    let mut second = consortium.start(1, START);
    let third = consortium.start(2, START);
    wait_connected(&[&first, &second, &third], 2, DEADLINE);
    let app = KeyPair::generate();
    for i in 0..10 {
        let (code, body) = publish(&first, &manifest_body(&app, &format!("1.{i}")));
        assert_eq!(code, 201, "{body}");
    }
    // Acknowledged by the second node, which is then killed at once.
    for i in 0..5 {
        let (code, body) = publish(&second, &manifest_body(&app, &format!("2.{i}")));
        assert_eq!(code, 201, "{body}");
    }
    second.kill9();
    for i in 0..5 {
        let (code, body) = publish(&first, &manifest_body(&app, &format!("3.{i}")));
        assert_eq!(code, 201, "{body}");
    }
    let fourth = consortium.start(3, START);
    second = consortium.start(1, START);
    let digest = wait_converged(&[&first, &second, &third, &fourth], 20, DEADLINE);
    let status = second.status();
    assert_eq!(
        status["frontier"][consortium.nodes[1].did()]["seq"],
        5,
        "the killed node kept its acknowledged entries"
    );
    assert_eq!(status["state_digest"], digest);
}

#[test]
fn a_peer_that_is_not_a_member_is_refused() {
    let consortium = Consortium::create(&FOUR[..2]);
    let first = consortium.start(0, START);
    let second = consortium.start(1, START);
    wait_connected(&[&first, &second], 1, DEADLINE);
    let outsider = NodeDir::init(consortium.root.path().join("outsider"), "tsp", "Outsider");
    // The outsider's own genesis lists itself, so it runs; the members' does not.
    outsider.write_genesis(
        "test-consortium",
        &[&consortium.nodes[0], &consortium.nodes[1], &outsider],
    );
    let stranger = NodeProcess::start(&outsider, &[consortium.nodes[0].p2p_address()], START);
    wait_for(
        "the member to refuse the outsider's connection",
        DEADLINE,
        || {
            let (_, metrics) = http_get(&format!("{}/metrics", first.operator_url));
            metrics
                .lines()
                .find_map(|l| l.strip_prefix("consentnet_connections_refused_total "))
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|refused| *refused >= 1)
        },
    );
    let peers = first.status()["peer_ids"].clone();
    assert!(
        !peers
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == outsider.peer_id()),
        "{peers}"
    );
    assert_eq!(stranger.status()["peers"], 0);
}

#[test]
fn a_peer_flooding_invalid_gossip_is_dropped_and_the_api_keeps_answering() {
    let consortium = Consortium::create(&FOUR[..2]);
    let target = consortium.start(0, START);
    let rogue = Command::new(bin_dir().join("examples").join("rogue_peer"))
        .arg(&consortium.nodes[1].dir)
        .arg("test-consortium")
        .arg(consortium.nodes[0].p2p_address())
        .arg("50")
        .env("CONSENTNET_NODE_PASSPHRASE", TEST_PASSPHRASE)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the rogue peer starts (cargo test builds examples)");
    let output = rogue.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the rogue was not dropped: {stdout}"
    );
    assert!(stdout.contains("\"disconnected\""), "{stdout}");
    let (code, body) = http_get(&format!("{}/healthz", target.http_url));
    assert_eq!((code, body.as_str()), (200, "ok"));
    let status = target.status();
    assert!(
        status["blocked_peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == consortium.nodes[1].peer_id()),
        "{status}"
    );
    assert_eq!(status["log_entries"], 0, "nothing invalid was stored");
    let (_, metrics) = http_get(&format!("{}/metrics", target.operator_url));
    assert!(
        metrics.contains("consentnet_peers_blocked_total 1"),
        "{metrics}"
    );
}

#[test]
fn a_tsp_reads_a_balance_at_the_bank_until_the_consent_is_revoked_and_the_regulator_sees_it() {
    let consortium = Consortium::create(&FOUR[..]);
    let nodes: Vec<NodeProcess> = (0..4).map(|i| consortium.start(i, START)).collect();
    let all: Vec<&NodeProcess> = nodes.iter().collect();
    wait_connected(&all, 3, DEADLINE);
    let (bank, tsp, regulator) = (&nodes[0], &nodes[2], &nodes[3]);
    let bank_key = node_key(&consortium.nodes[0]);

    // The bank approves the app; a client grants it balances on one sandbox account.
    let app = KeyPair::generate();
    let (code, body) = publish(tsp, &manifest_body(&app, "1.0.0"));
    assert_eq!(code, 201, "{body}");
    let body = approval_body(&bank_key, app.did());
    let (code, answer) = post(bank, "/v1/apps/decisions", &body);
    assert_eq!(code, 201, "{answer}");
    let sandbox = consentnet_bank_adapter::sandbox::SandboxBank::seeded(1, Utc::now());
    let account = sandbox.account_ids()[0].0.clone();
    let client = KeyPair::generate();
    link_client(&consortium.nodes[0], bank, &client, &[&account]);
    let terms = balance_terms(app.did(), bank_key.did(), &account);
    let consent = block_on(issue_consent(&client, &terms)).unwrap();
    let id = consent.id.to_string();
    let (code, body) = post(bank, "/v1/consents", &consent.credential);
    assert_eq!(code, 201, "{body}");

    // Once the grant is on the bank's log, the balance is served.
    let path = format!("/accounts/{account}/balances");
    let body = wait_for("the bank to serve the balance", DEADLINE, || {
        let (status, body) = obie_get(&bank.http_url, &path, &id, &app);
        (status == 200).then_some(body)
    });
    assert_eq!(body["Data"]["Balance"][0]["AccountId"], account.as_str());

    // The client revokes at the regulator's node; the bank refuses from then on.
    let revocation = Revocation::sign(&client, consent.id, Utc::now(), None);
    let (code, body) = post(
        regulator,
        "/v1/revocations",
        &serde_json::to_value(&revocation).unwrap(),
    );
    assert_eq!(code, 201, "{body}");
    wait_for("the bank to refuse the revoked consent", DEADLINE, || {
        let (status, body) = obie_get(&bank.http_url, &path, &id, &app);
        (status == 401 && body["Code"] == "consent_revoked").then_some(())
    });

    // The bank's commitments reach every member; its records (served and refused) reach
    // only the regulator, which fetches each committed batch and audits it against its
    // commitment. The TSP's node holds the commitments alone.
    let audit_of = |node: &NodeProcess| {
        let (code, body) = http_get(&format!("{}/v1/audit", node.operator_url));
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };
    let report = wait_for(
        "the bank's records audited at the regulator",
        DEADLINE,
        || {
            let report = audit_of(regulator);
            (report["accesses"].as_u64() >= Some(2) && report["batches_unavailable"] == 0)
                .then_some(report)
        },
    );
    assert_eq!(report["clean"], true, "{report}");
    assert!(regulator.metric("consentnet_access_batches_fetched_total") >= 1);
    let elsewhere = audit_of(tsp);
    assert_eq!(elsewhere["accesses"], 0, "{elsewhere}");
    assert!(
        elsewhere["committed_records"].as_u64() >= Some(2),
        "{elsewhere}"
    );
    assert_eq!(tsp.metric("consentnet_access_batches_fetched_total"), 0);

    // Offline, on the stopped regulator's folder: the same records judged.
    let mut nodes = nodes;
    assert_eq!(nodes.remove(3).terminate(DEADLINE), Some(0));
    let offline = Command::new(consentnet_tests::bin("consentnet-node"))
        .args(["audit", "--json", "--config"])
        .arg(consortium.nodes[3].dir.join("node.toml"))
        .output()
        .unwrap();
    assert!(offline.status.success(), "{offline:?}");
    let offline: Value = serde_json::from_slice(&offline.stdout).unwrap();
    assert_eq!(offline["clean"], true, "{offline}");
    assert_eq!(offline["accesses"], report["accesses"], "{offline}");
}

#[test]
fn an_equivocating_member_is_caught_by_every_honest_node_and_by_the_audit() {
    let consortium = Consortium::create(&FOUR[..3]);
    let first = consortium.start(0, START);
    let second = consortium.start(1, START);
    wait_connected(&[&first, &second], 1, DEADLINE);
    // The third member signs two different entries for the same place in its feed, and
    // shows them only to the first node.
    let rogue_dir = &consortium.nodes[2];
    let mut rogue = Command::new(bin_dir().join("examples").join("rogue_peer"))
        .arg(&rogue_dir.dir)
        .arg("test-consortium")
        .arg(consortium.nodes[0].p2p_address())
        .arg("0")
        .arg("equivocate")
        .env("CONSENTNET_NODE_PASSPHRASE", TEST_PASSPHRASE)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the rogue peer starts (cargo test builds examples)");
    wait_for(
        "both honest nodes to flag the equivocator",
        DEADLINE,
        || {
            [&first, &second]
                .iter()
                .all(|node| {
                    node.status()["equivocators"]
                        .as_array()
                        .is_some_and(|list| list.iter().any(|d| d == rogue_dir.did()))
                })
                .then_some(())
        },
    );
    let _ = rogue.kill();
    let _ = rogue.wait();
    // The second node never saw the second fork itself: it holds the evidence it was sent.
    let (code, body) = http_get(&format!("{}/v1/audit", second.operator_url));
    assert_eq!(code, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["clean"], false);
    assert_eq!(report["equivocations"][0]["origin"], rogue_dir.did());
}

/// The bank approves `app` 1.0.0 for accounts and balances.
fn approve_at(bank: &NodeProcess, bank_key: &KeyPair, app: &KeyPair) {
    let (code, answer) = post(
        bank,
        "/v1/apps/decisions",
        &approval_body(bank_key, app.did()),
    );
    assert_eq!(code, 201, "{answer}");
}

#[test]
fn a_revocation_at_any_node_is_enforced_by_every_bank_within_the_propagation_bound() {
    const BOUND: Duration = Duration::from_secs(1);
    let consortium = Consortium::create(&FOUR);
    let nodes: Vec<NodeProcess> = (0..4).map(|i| consortium.start(i, START)).collect();
    let all: Vec<&NodeProcess> = nodes.iter().collect();
    wait_connected(&all, 3, DEADLINE);
    let app = KeyPair::generate();
    let client = KeyPair::generate();
    let account = consentnet_tests::sandbox_account();
    // One consent at each bank, granted at that bank's node.
    let mut consents = Vec::new();
    for bank in [0, 1] {
        let bank_key = node_key(&consortium.nodes[bank]);
        approve_at(&nodes[bank], &bank_key, &app);
        link_client(&consortium.nodes[bank], &nodes[bank], &client, &[&account]);
        let terms = balance_terms(app.did(), bank_key.did(), &account);
        let consent = block_on(issue_consent(&client, &terms)).unwrap();
        let (code, body) = post(&nodes[bank], "/v1/consents", &consent.credential);
        assert_eq!(code, 201, "{body}");
        consents.push((bank, consent));
    }
    let path = format!("/accounts/{account}/balances");
    for (bank, consent) in &consents {
        wait_for("each bank to serve its consent", DEADLINE, || {
            (obie_get(&nodes[*bank].http_url, &path, &consent.id.to_string(), &app).0 == 200)
                .then_some(())
        });
    }
    // Both revoked at the regulator's node; each bank must refuse within the bound.
    for (bank, consent) in &consents {
        let revocation = Revocation::sign(&client, consent.id, Utc::now(), None);
        let (code, body) = post(
            &nodes[3],
            "/v1/revocations",
            &serde_json::to_value(&revocation).unwrap(),
        );
        assert_eq!(code, 201, "{body}");
        let acknowledged = std::time::Instant::now();
        wait_for("the bank to refuse the revoked consent", BOUND, || {
            let (status, body) =
                obie_get(&nodes[*bank].http_url, &path, &consent.id.to_string(), &app);
            (status == 401 && body["Code"] == "consent_revoked").then_some(())
        });
        assert!(
            acknowledged.elapsed() < BOUND,
            "bank {bank} took {:?}",
            acknowledged.elapsed()
        );
    }
}

#[test]
fn a_member_signs_a_checkpoint_of_the_other_feeds_once_they_move() {
    let consortium = Consortium::create(&FOUR[..2]);
    // Bank B checkpoints every second (the test default is once an hour).
    let config = consortium.nodes[1].dir.join("node.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let fast = text.replace(
        "checkpoint_interval_ms = 3600000",
        "checkpoint_interval_ms = 1000",
    );
    assert_ne!(fast, text, "the harness sets the checkpoint interval");
    std::fs::write(&config, fast).unwrap();
    let first = consortium.start(0, START);
    let second = consortium.start(1, START);
    wait_connected(&[&first, &second], 1, DEADLINE);
    let (bank_a, bank_b) = (consortium.nodes[0].did(), consortium.nodes[1].did());
    let own_seq = |node: &NodeProcess, origin: &str| {
        node.status()["frontier"][origin]["seq"]
            .as_u64()
            .unwrap_or(0)
    };
    // Nothing has moved: no checkpoint.
    assert_eq!(own_seq(&second, bank_b), 0);
    // Bank A's feed moves; bank B signs that it holds it.
    let (code, body) = publish(&first, &manifest_body(&KeyPair::generate(), "1.0.0"));
    assert_eq!(code, 201, "{body}");
    wait_for("bank B's checkpoint to reach bank A", DEADLINE, || {
        (own_seq(&first, bank_b) == 1).then_some(())
    });
    let (code, body) = http_get(&format!("{}/v1/audit", first.operator_url));
    assert_eq!(code, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["events"]["checkpoint"], 1, "{report}");
    assert_eq!(report["clean"], true, "{report}");
    assert_eq!(own_seq(&first, bank_a), 1);
}
