//! Cluster faults on real node processes: a bank node killed with `kill -9` in the middle of 10,000 submissions spread over all nodes loses nothing acknowledged, and a node cut off from the others while both sides take grants and revocations converges after healing, with revocations winning.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::Utc;
use consentnet_identity::consent::block_on;
use consentnet_identity::{Did, KeyPair, Revocation, issue_consent};
use consentnet_tests::{
    Consortium, NodeProcess, Paths, balance_terms, http_post_json, link_client, manifest_body,
    node_key, signed_get, try_post_json, wait_connected, wait_converged, wait_for,
};
use serde_json::Value;

const START: Duration = Duration::from_secs(30);
const DEADLINE: Duration = Duration::from_secs(60);
/// Converging after a kill or a partition, on debug builds sharing two cores.
const CONVERGE: Duration = Duration::from_secs(180);

const FOUR: [(&str, &str); 4] = [
    ("bank", "Bank A"),
    ("bank", "Bank B"),
    ("tsp", "TSP One"),
    ("regulator", "Regulator"),
];

const SUBMISSIONS: usize = 10_000;

#[test]
fn a_bank_killed_during_10000_submissions_loses_nothing_acknowledged() {
    let consortium = Consortium::create(&FOUR);
    let nodes: Vec<NodeProcess> = (0..4).map(|i| consortium.start(i, START)).collect();
    let urls: Arc<Vec<RwLock<String>>> = Arc::new(
        nodes
            .iter()
            .map(|n| RwLock::new(n.operator_url.clone()))
            .collect(),
    );
    wait_connected(&nodes.iter().collect::<Vec<_>>(), 3, DEADLINE);
    let mut nodes: Vec<Option<NodeProcess>> = nodes.into_iter().map(Some).collect();

    // One submitter per node (on its operator surface, where manifests are published),
    // each with its own app publishing versions; each retries a
    // submission until a node acknowledges it, and keeps the receipts it got.
    let per_node = SUBMISSIONS / 4;
    let progress: Arc<Vec<AtomicUsize>> = Arc::new((0..4).map(|_| AtomicUsize::new(0)).collect());
    let submitters: Vec<_> = (0..4)
        .map(|k| {
            let (urls, progress) = (urls.clone(), progress.clone());
            std::thread::spawn(move || {
                let app = KeyPair::generate();
                let mut receipts = Vec::with_capacity(per_node);
                let mut failures = 0usize;
                for i in 0..per_node {
                    let body = manifest_body(&app, &format!("{k}.{i}"));
                    let receipt =
                        wait_for("a node to acknowledge the submission", CONVERGE, || {
                            let url = format!("{}/v1/apps", urls[k].read().unwrap());
                            match try_post_json(&url, &body) {
                                Some((200 | 201, receipt)) => Some(receipt),
                                _ => {
                                    failures += 1;
                                    None
                                }
                            }
                        });
                    receipts.push(receipt);
                    progress[k].fetch_add(1, Ordering::SeqCst);
                }
                (receipts, failures)
            })
        })
        .collect();

    // A bank node dies without warning a quarter of the way through its share, and comes
    // back at once on the same folder.
    wait_for("a quarter of the bank's submissions", DEADLINE, || {
        (progress[0].load(Ordering::SeqCst) >= per_node / 4).then_some(())
    });
    nodes[0].take().unwrap().kill9();
    let restarted = consortium.start(0, START);
    *urls[0].write().unwrap() = restarted.operator_url.clone();
    nodes[0] = Some(restarted);

    let mut acknowledged: BTreeMap<String, u64> = BTreeMap::new();
    let mut events = std::collections::HashSet::new();
    let mut retried = 0;
    for submitter in submitters {
        let (receipts, failures) = submitter.join().unwrap();
        retried += failures;
        for receipt in receipts {
            events.insert(receipt["event_id"].as_str().unwrap().to_owned());
            let origin = receipt["receipt"]["origin"].as_str().unwrap().to_owned();
            let seq = receipt["receipt"]["seq"].as_u64().unwrap();
            let top = acknowledged.entry(origin).or_default();
            *top = (*top).max(seq);
        }
    }
    assert_eq!(
        events.len(),
        SUBMISSIONS,
        "every submission acknowledged once"
    );
    assert!(retried > 0, "the kill interrupted some submissions");

    // Feeds have no gaps, so a node holds every acknowledged entry of an origin when its
    // frontier for that origin reaches the highest acknowledged sequence number.
    let nodes: Vec<NodeProcess> = nodes.into_iter().map(Option::unwrap).collect();
    let all: Vec<&NodeProcess> = nodes.iter().collect();
    let digest = wait_converged(&all, SUBMISSIONS as u64, CONVERGE);
    for node in &nodes {
        let status = node.status();
        assert_eq!(status["state_digest"], digest.as_str());
        for (origin, seq) in &acknowledged {
            let held = status["frontier"][origin]["seq"].as_u64().unwrap_or(0);
            assert!(held >= *seq, "{origin}: holds {held}, acknowledged {seq}");
        }
    }
}

/// A consent from a fresh client linked at the bank member `bank`, submitted at that
/// bank's node (the only one that admits it); returns the client, the id and the
/// credential.
fn grant(
    consortium: &Consortium,
    nodes: &[NodeProcess],
    bank: usize,
    app: &Did,
) -> (KeyPair, String, Value) {
    let client = KeyPair::generate();
    let account = consentnet_tests::sandbox_account();
    link_client(&consortium.nodes[bank], &nodes[bank], &client, &[&account]);
    let bank_did = Did::parse(consortium.nodes[bank].did()).unwrap();
    let consent = block_on(issue_consent(
        &client,
        &balance_terms(app, &bank_did, &account),
    ))
    .unwrap();
    let (code, body) = http_post_json(
        &format!("{}/v1/consents", nodes[bank].http_url),
        &consent.credential,
    );
    assert_eq!(code, 201, "{body}");
    (client, consent.id.to_string(), consent.credential)
}

fn revoke(node: &NodeProcess, client: &KeyPair, id: &str) {
    let id = consentnet_identity::ConsentId::parse(id).unwrap();
    let revocation = Revocation::sign(client, id, Utc::now(), None);
    let (code, body) = http_post_json(
        &format!("{}/v1/revocations", node.http_url),
        &serde_json::to_value(&revocation).unwrap(),
    );
    assert_eq!(code, 201, "{body}");
}

/// A revocation carrying its credential, at a node that does not hold the grant; the
/// answer's status and code.
fn revoke_carrying(
    node: &NodeProcess,
    client: &KeyPair,
    id: &str,
    credential: &Value,
) -> (u16, String) {
    let id = consentnet_identity::ConsentId::parse(id).unwrap();
    let revocation = Revocation::sign(client, id, Utc::now(), None);
    let (code, body) = http_post_json(
        &format!("{}/v1/revocations", node.http_url),
        &serde_json::json!({ "revocation": revocation, "credential": credential }),
    );
    (code, body["code"].as_str().unwrap_or_default().to_owned())
}

/// A consent's status at `node`, read as `reader` (a regulator sees every consent).
fn status_of(node: &NodeProcess, reader: &KeyPair, id: &str) -> String {
    let (code, body) = signed_get(&format!("{}/v1/consents/{id}", node.http_url), reader);
    if code != 200 {
        return format!("http {code}");
    }
    serde_json::from_str::<Value>(&body).unwrap()["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_partitioned_node_and_the_rest_both_take_writes_and_converge_after_healing() {
    let consortium = Consortium::create(&FOUR);
    let paths = Paths::between(&consortium);
    let nodes: Vec<NodeProcess> = (0..4)
        .map(|i| {
            NodeProcess::start(
                &consortium.nodes[i],
                &paths.bootstrap_for(&consortium, i),
                START,
            )
        })
        .collect();
    let all: Vec<&NodeProcess> = nodes.iter().collect();
    wait_connected(&all, 3, DEADLINE);
    let app = KeyPair::generate();
    let regulator = node_key(&consortium.nodes[3]);

    // Before the cut: a consent at bank B that everyone holds.
    let (early_client, early, _) = grant(&consortium, &nodes, 1, app.did());
    wait_converged(&all, 1, DEADLINE);

    // Bank B is cut off from everyone.
    paths.isolate(1);
    wait_for("bank B to lose every peer", DEADLINE, || {
        (nodes[1].status()["peers"] == 0
            && [0, 2, 3].iter().all(|&i| nodes[i].status()["peers"] == 2))
        .then_some(())
    });

    // Both sides take writes. The majority grants at bank A and revokes the early
    // consent; the isolated bank grants one of its own. It cannot take the revocation of
    // bank A's consent, which it has never seen: only bank A admits that grant, so the
    // credential the revocation carries does not make it verifiable there.
    let (majority_client, majority, majority_credential) = grant(&consortium, &nodes, 0, app.did());
    revoke(&nodes[3], &early_client, &early);
    let (_, minority, _) = grant(&consortium, &nodes, 1, app.did());
    assert_eq!(
        revoke_carrying(&nodes[1], &majority_client, &majority, &majority_credential),
        (422, "revocation_unverifiable".to_owned())
    );
    // Each side sees only its own writes (the revocation made at the regulator's node
    // reaches bank A by gossip).
    wait_for("the revocation at bank A", DEADLINE, || {
        (status_of(&nodes[0], &regulator, &early) == "revoked").then_some(())
    });
    assert_eq!(status_of(&nodes[1], &regulator, &early), "active");
    assert_eq!(status_of(&nodes[0], &regulator, &majority), "active");
    assert_eq!(status_of(&nodes[0], &regulator, &minority), "unknown");
    let majority_entries = nodes[0].status()["log_entries"].as_u64().unwrap();
    let minority_entries = nodes[1].status()["log_entries"].as_u64().unwrap();
    assert_eq!((majority_entries, minority_entries), (3, 2));

    // Healed: every node ends with all four entries and one digest, and the revocation
    // the isolated bank refused is taken there once the grant has arrived.
    paths.rejoin(1);
    wait_converged(&all, 4, CONVERGE);
    revoke(&nodes[1], &majority_client, &majority);
    let digest = wait_converged(&all, 5, CONVERGE);
    for node in &nodes {
        assert_eq!(node.status()["state_digest"], digest.as_str());
        assert_eq!(status_of(node, &regulator, &early), "revoked");
        assert_eq!(status_of(node, &regulator, &majority), "revoked");
        assert_eq!(status_of(node, &regulator, &minority), "active");
    }
}

/// Opens `count` TCP connections from `source` to `port` on loopback and holds them open,
/// sending nothing: a stranger squatting on the handshake slots.
fn squat(
    source: &str,
    port: u16,
    count: usize,
) -> (tokio::runtime::Runtime, Vec<tokio::net::TcpStream>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let streams = runtime.block_on(async {
        let mut streams = Vec::new();
        for _ in 0..count {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
            if let Ok(stream) = socket
                .connect(format!("127.0.0.1:{port}").parse().unwrap())
                .await
            {
                streams.push(stream);
            }
        }
        streams
    });
    (runtime, streams)
}

#[test]
fn a_stranger_holding_idle_connections_to_the_p2p_port_does_not_lock_a_member_out() {
    let consortium = Consortium::create(&[("bank", "Squatted Bank"), ("tsp", "Member TSP")]);
    let first = consortium.start(0, START);
    let (_runtime, streams) = squat("127.0.0.2", consortium.nodes[0].p2p_port, 64);
    assert!(!streams.is_empty(), "the stranger reached the port");
    // The member dials in while the stranger holds its connections: it gets in well
    // before any of the stranger's handshakes could time out (5 s).
    let second = consortium.start(1, START);
    wait_connected(&[&first, &second], 1, Duration::from_secs(4));
    drop(streams);
}
