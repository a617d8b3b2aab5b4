//! Mini-app bundles across real node processes on loopback: a TSP's operator uploads the files under their hashes (bytes that do not match are refused), a manifest naming files the node lacks is refused with nothing written, and once published every bank fetches the files from members over libp2p and stores exactly the published bytes, while the TSP fetches nothing.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use consentnet_consent_chain::miniapp::{BundleFile, MiniApp};
use consentnet_identity::{Hash32, KeyPair};
use consentnet_tests::{
    Consortium, NodeProcess, http_put_bytes, mini_app_manifest, publish, wait_connected, wait_for,
};

const START: Duration = Duration::from_secs(30);
const DEADLINE: Duration = Duration::from_secs(60);

const FILES: [(&str, &[u8]); 2] = [
    ("app.js", b"document.body.textContent = 'hello';"),
    ("index.html", b"<!doctype html><script src=app.js></script>"),
];

fn mini_app() -> MiniApp {
    MiniApp {
        files: FILES
            .iter()
            .map(|(path, bytes)| BundleFile {
                path: (*path).into(),
                size: bytes.len() as u64,
                sha256: Hash32::of(bytes),
            })
            .collect(),
        origins: vec![],
    }
}

fn put(node: &NodeProcess, hash: &Hash32, bytes: &[u8]) -> (u16, serde_json::Value) {
    http_put_bytes(
        &format!("{}/v1/bundles/files/{hash}", node.operator_url),
        bytes,
    )
}

fn log_entries(node: &NodeProcess) -> u64 {
    node.status()["log_entries"].as_u64().unwrap()
}

#[test]
fn a_published_mini_app_reaches_every_bank_byte_for_byte_and_nothing_unpublished_does() {
    let consortium = Consortium::create(&[("bank", "Bank"), ("tsp", "TSP")]);
    let bank = consortium.start(0, START);
    let tsp = consortium.start(1, START);
    wait_connected(&[&bank, &tsp], 1, DEADLINE);
    let app = KeyPair::generate();
    let (script, page) = (FILES[0], FILES[1]);

    // Bytes under another file's hash are refused, and nothing is kept.
    let (status, body) = put(&tsp, &Hash32::of(page.1), script.1);
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("bundle_hash_mismatch")),
        "{body}"
    );
    let (status, body) = put(&tsp, &Hash32::of(b"x"), b"");
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("bundle_file_size")),
        "{body}"
    );
    let (status, body) = http_put_bytes(
        &format!("{}/v1/bundles/files/nothex", tsp.operator_url),
        b"x",
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_hash")),
        "{body}"
    );

    // A manifest naming a file the TSP's node does not hold is refused; the log is unchanged.
    let (status, body) = put(&tsp, &Hash32::of(page.1), page.1);
    assert_eq!(status, 201, "{body}");
    let before = log_entries(&tsp);
    let manifest = mini_app_manifest(&app, "1.0", mini_app());
    let (status, body) = publish(&tsp, &manifest);
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("bundle_files_missing")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("app.js"),
        "{body}"
    );
    assert_eq!(log_entries(&tsp), before);

    // A manifest whose bundle hash is not its file list's is refused as invalid.
    let mut forged = manifest.clone();
    forged["manifest"]["bundleHash"] = serde_json::json!("ab".repeat(32));
    let (status, body) = publish(&tsp, &forged);
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_event")),
        "{body}"
    );

    // Uploaded whole, the version publishes, and the bank fetches both files.
    let (status, body) = put(&tsp, &Hash32::of(script.1), script.1);
    assert_eq!(status, 201, "{body}");
    let (status, body) = put(&tsp, &Hash32::of(script.1), script.1);
    assert_eq!(
        (status, body["stored"].as_bool()),
        (200, Some(false)),
        "{body}"
    );
    let (status, body) = publish(&tsp, &manifest);
    assert_eq!(status, 201, "{body}");
    wait_for("the bank to fetch both files", DEADLINE, || {
        (bank.metric("consentnet_bundle_files_fetched_total") == 2).then_some(())
    });
    let bundles = consortium.nodes[0].dir.join("bundles");
    for (_, bytes) in FILES {
        let held = std::fs::read(bundles.join(Hash32::of(bytes).to_string())).unwrap();
        assert_eq!(held, bytes);
    }
    // Exactly the published files, and a TSP fetches nobody's bundles.
    assert_eq!(std::fs::read_dir(&bundles).unwrap().count(), 2);
    assert_eq!(tsp.metric("consentnet_bundle_files_fetched_total"), 0);
}
