//! Mini-app bundles across real node processes on loopback: a TSP's operator uploads the files under their hashes (bytes that do not match are refused), a manifest naming files the node lacks is refused with nothing written, and once published every bank fetches the files from members over libp2p and stores exactly the published bytes, while the TSP fetches nothing; the bank's page reviews a new version file by file against the version it approved last, and an approval allows only the origins ticked.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use consentnet_consent_chain::miniapp::MiniApp;
use consentnet_identity::{Hash32, KeyPair};
use consentnet_tests::forms::{admin_session, encode, get, post_form};
use consentnet_tests::{
    Consortium, NodeProcess, admin_token, bank_with_portal_and_tsp, http_get, http_put_bytes,
    mini_app_manifest, mini_app_of, publish, publish_mini_app, wait_connected, wait_for,
};

const START: Duration = Duration::from_secs(30);
const DEADLINE: Duration = Duration::from_secs(60);

const FILES: [(&str, &[u8]); 2] = [
    ("app.js", b"document.body.textContent = 'hello';"),
    ("index.html", b"<!doctype html><script src=app.js></script>"),
];

fn mini_app() -> MiniApp {
    mini_app_of(&FILES, &[])
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

/// The change the bank's page shows for `path` in `app`'s `version`.
fn shown_change(html: &str, app: &KeyPair, version: &str, path: &str) -> String {
    let start = format!("data-app=\"{}\" data-version=\"{version}\"", app.did());
    let section = html.split(&start).nth(1).unwrap();
    let section = section.split("</form>").next().unwrap();
    let row = section
        .split(&format!("data-path=\"{path}\" data-change=\""))
        .nth(1)
        .unwrap_or_else(|| panic!("no row for {path}: {section}"));
    row.split('"').next().unwrap().to_owned()
}

#[test]
fn a_bank_reviews_a_version_against_the_one_it_approved_last_and_allows_only_the_origins_it_ticks()
{
    let (consortium, bank, tsp) = bank_with_portal_and_tsp();
    let app = KeyPair::generate();
    let origins = [
        "https://api.lendwise.example",
        "https://cdn.lendwise.example",
    ];
    publish_mini_app(&tsp, &app, "1.0", &FILES, &origins);
    wait_for("the bank to fetch version 1.0", DEADLINE, || {
        (bank.metric("consentnet_bundle_files_fetched_total") == 2).then_some(())
    });

    // Approved with the first origin ticked: only that one is on the log.
    let page_url = format!("{}/portal/bank", bank.operator_url);
    let (cookie, csrf, _) = admin_session(&page_url, &admin_token(&consortium.nodes[0]));
    let did = app.did().to_string();
    let approve = |version: &str, extra: &[(&str, &str)]| {
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("app", did.as_str()),
            ("version", version),
            ("perm_ReadAccountsBasic", "on"),
            ("action", "approve"),
        ];
        form.extend_from_slice(extra);
        post_form(
            &format!("{page_url}/decisions"),
            &[("cookie", &cookie)],
            &form,
        )
    };
    assert_eq!(
        approve("1.0", &[("origin_0", "on"), ("origin_7", "on")]).status,
        303
    );
    let (_, catalog) = http_get(&format!(
        "{}/v1/catalog?bank={}",
        bank.http_url,
        encode(consortium.nodes[0].did())
    ));
    let catalog: serde_json::Value = serde_json::from_str(&catalog).unwrap();
    let decision = &catalog["apps"][0]["decision"];
    assert_eq!(
        decision["origins"],
        serde_json::json!([origins[0]]),
        "{decision}"
    );

    // Version 1.1 changes app.js and adds a file; index.html is as approved.
    let files: [(&str, &[u8]); 3] = [
        (
            "app.js",
            b"document.body.textContent = 'hello';\nfetchBalances();",
        ),
        ("index.html", FILES[1].1),
        ("style.css", b"body { margin: 0 }"),
    ];
    publish_mini_app(&tsp, &app, "1.1", &files, &[]);
    wait_for(
        "the bank to fetch version 1.1's new files",
        DEADLINE,
        || (bank.metric("consentnet_bundle_files_fetched_total") == 4).then_some(()),
    );
    let html = get(&page_url, Some(&cookie))
        .body
        .as_str()
        .unwrap()
        .to_owned();
    assert!(html.contains("Compared with version 1.0"), "{html}");
    assert_eq!(shown_change(&html, &app, "1.1", "index.html"), "unchanged");
    assert_eq!(shown_change(&html, &app, "1.1", "app.js"), "changed");
    assert_eq!(shown_change(&html, &app, "1.1", "style.css"), "added");

    // The changed file reads as a line diff against 1.0's.
    let review = format!(
        "{page_url}/review?app={}&version=1.1&path=app.js",
        encode(&did)
    );
    let diff = get(&review, Some(&cookie))
        .body
        .as_str()
        .unwrap()
        .to_owned();
    let kept = "<span class=\"same\">  document.body.textContent = &#39;hello&#39;;</span>";
    assert!(diff.contains(kept), "{diff}");
    assert!(
        diff.contains("<span class=\"added\">+ fetchBalances();</span>"),
        "{diff}"
    );
    // Without the admin session the review is refused.
    assert_eq!(get(&review, None).status, 401);
}
