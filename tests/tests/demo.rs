//! `consentnet demo`, the README's first command: the whole journey succeeds on real processes and reports every step; `--keep` leaves a working consortium behind.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use consentnet_tests::{bin, http_get, wait_for};

fn demo(args: &[&str]) -> (std::process::Output, serde_json::Value) {
    let output = Command::new(bin("consentnet"))
        .arg("--json")
        .arg("demo")
        .args(args)
        .output()
        .unwrap();
    let summary = serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
    (output, summary)
}

#[test]
fn the_demo_runs_the_whole_journey_and_reports_every_step() {
    let (output, summary) = demo(&[]);
    assert!(
        output.status.success(),
        "{summary:#}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(summary["ok"], true);
    let steps: Vec<&str> = summary["steps"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|s| assert_eq!(s["ok"], true, "{s}"))
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "create_members",
            "start_nodes",
            "plug_in_cores",
            "publish_apps",
            "link_accounts",
            "grant_consents",
            "affordability",
            "second_app",
            "revoke",
            "outsider",
            "replicate",
            "audit",
            "stop"
        ]
    );
    assert_eq!(summary["nodes"].as_array().unwrap().len(), 6);
    // Three banks' data through one API: each with transactions and a summary.
    let banks = summary["affordability"]["banks"].as_array().unwrap();
    assert_eq!(banks.len(), 3);
    for bank in banks {
        assert!(bank["transactions"].as_u64().unwrap() > 0, "{bank}");
        assert!(bank["summary"]["monthly_income"].is_string(), "{bank}");
    }
    let step = |name: &str| {
        summary["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == name)
            .unwrap()["detail"]
            .clone()
    };
    assert_eq!(
        step("second_app")["transactions_refused"],
        "permission_missing"
    );
    assert_eq!(step("revoke")["refused_with"], "consent_revoked");
    assert_eq!(step("revoke")["still_served"].as_array().unwrap().len(), 2);
    // Outside the network: the bank's VC-API from its status list, the regulator's from
    // its log, both through the W3C VC-API.
    let outsider = step("outsider");
    assert_eq!(
        (&outsider["at_bank"], &outsider["at_regulator"]),
        (&serde_json::json!("revoked"), &serde_json::json!("revoked"))
    );
    assert!(
        outsider["status_list"]
            .as_str()
            .unwrap()
            .contains("/status/revocation/0"),
        "{outsider}"
    );
    assert!(summary["revocation_propagation_ms"].as_f64().unwrap() > 0.0);
    let audit = &summary["audit"];
    assert_eq!(audit["clean"], true);
    assert_eq!(audit["consents"], 4);
    assert_eq!(audit["revoked"], 1);
    assert_eq!(audit["violations"], 0);
    assert!(
        audit["accesses_committed"].as_u64().unwrap() >= 6,
        "{audit}"
    );
    assert_eq!(
        audit["accesses"], audit["accesses_committed"],
        "the regulator checked them all"
    );
    // Without --keep, nothing is left behind.
    let work = summary["work_dir"].as_str().unwrap();
    assert!(!std::path::Path::new(work).exists(), "{work} was removed");
}

#[test]
fn keep_leaves_the_consortium_running_and_says_how_to_stop_it() {
    let root = tempfile::tempdir().unwrap();
    let work = root.path().join("demo");
    let (output, summary) = demo(&["--keep", "--work-dir", work.to_str().unwrap()]);
    let pids = std::fs::read_to_string(work.join("pids")).unwrap_or_default();
    // Stops the kept processes however the assertions below end.
    struct Stop(String);
    impl Drop for Stop {
        fn drop(&mut self) {
            for pid in self.0.split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
    }
    let _stop = Stop(pids.clone());
    assert!(
        output.status.success(),
        "{summary:#}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(summary["kept"], true);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("kill $(cat"),
        "says how to stop it"
    );
    assert_eq!(
        pids.split_whitespace().count(),
        8,
        "six nodes and two cores"
    );
    // Every node still answers after the demo has exited.
    for node in summary["nodes"].as_array().unwrap() {
        let url = format!("{}/status", node["operator"].as_str().unwrap());
        let (code, _) = http_get(&url);
        assert_eq!(code, 200, "{url}");
    }
    // The public listeners serve HTTPS with certificates from the demo's throw-away CA: a
    // client trusting that CA reads who the node is; one trusting only the public roots
    // is refused at the handshake.
    let ca = work.join("ca").join("ca.pem");
    for node in summary["nodes"].as_array().unwrap() {
        let url = node["http"].as_str().unwrap();
        assert!(url.starts_with("https://127.0.0.1:"), "{url}");
        let client = consentnet_client::node_api::NodeClient::trusting(url, &ca).unwrap();
        assert_eq!(
            client.identity().unwrap().did,
            node["did"].as_str().unwrap()
        );
    }
    // The three mini-apps run in every bank's portal: their URLs are printed, and each
    // bank fetches their eight distinct files (SDK and stylesheet shared) from the fintechs.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("/portal/apps/did%3Akey").count(),
        0,
        "DIDs keep their colons"
    );
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains("/portal/apps/did:key:"))
            .count(),
        9,
        "{stderr}"
    );
    for node in summary["nodes"].as_array().unwrap() {
        if node["role"] != "bank" {
            continue;
        }
        let metrics = format!("{}/metrics", node["operator"].as_str().unwrap());
        wait_for(
            "a bank to fetch every mini-app file",
            Duration::from_secs(30),
            || {
                let (_, body) = http_get(&metrics);
                body.lines()
                    .any(|l| l == "consentnet_bundle_files_fetched_total 8")
                    .then_some(())
            },
        );
    }
    oauth_example_runs(&summary["oauth_example"], &stderr);
    let url = summary["nodes"][0]["http"].as_str().unwrap();
    let stranger = consentnet_client::node_api::NodeClient::new(url).unwrap();
    assert!(
        matches!(
            stranger.identity(),
            Err(consentnet_client::node_api::NodeApiError::Unreachable { .. })
        ),
        "a client that does not trust the demo's CA must not connect"
    );
    let regulator = summary["nodes"][5]["http"]
        .as_str()
        .unwrap()
        .trim_start_matches("https://")
        .to_owned();
    for pid in pids.split_whitespace() {
        Command::new("kill").args(["-TERM", pid]).status().unwrap();
    }
    wait_for("the kept nodes to stop", Duration::from_secs(20), || {
        std::net::TcpStream::connect(&regulator)
            .is_err()
            .then_some(())
    });
}

#[test]
fn a_work_dir_with_files_in_it_is_refused_and_left_alone() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("precious.txt"), "keep me").unwrap();
    let (output, summary) = demo(&["--work-dir", root.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        summary["error"].as_str().unwrap().contains("is not empty"),
        "{summary}"
    );
    assert_eq!(
        std::fs::read_to_string(root.path().join("precious.txt")).unwrap(),
        "keep me"
    );
}

/// The worked OAuth example a kept demo prints runs as printed: openid-client, with the
/// app's key from the CLI, through the first bank's authorization server and unified API,
/// told of the revocation by polling.
fn oauth_example_runs(example: &serde_json::Value, printed: &str) {
    let value = |name: &str| example[name].as_str().unwrap().to_owned();
    for name in ["issuer", "client_id", "redirect_uri"] {
        assert!(
            printed.contains(&value(name)),
            "the example names its {name}"
        );
    }
    if std::env::var_os("CONSENTNET_NO_NODE").is_some() {
        eprintln!("Node.js is not installed: the OAuth example was not run");
        return;
    }
    let passphrase = "demo wallet passphrase, not for production";
    assert!(printed.contains(passphrase));
    let jwk = Command::new(bin("consentnet"))
        .args([
            "wallet",
            "export-jwk",
            "--wallet",
            &value("app_wallet"),
            "--label",
            "app",
        ])
        .env("CONSENTNET_WALLET_PASSPHRASE", passphrase)
        .output()
        .unwrap();
    assert!(jwk.status.success(), "{jwk:?}");
    let client = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("oauth-js/client.mjs");
    let output = Command::new("node")
        .arg(client)
        .env("NODE_EXTRA_CA_CERTS", value("ca_file"))
        .env("CONSENTNET_CA_FILE", value("ca_file"))
        .env("CONSENTNET_WALLET_PASSPHRASE", passphrase)
        .env("ISSUER", value("issuer"))
        .env("CLIENT_ID", value("client_id"))
        .env("REDIRECT_URI", value("redirect_uri"))
        .env("CONSENTNET", bin("consentnet"))
        .env("WALLET", value("client_wallet"))
        .env("CLIENT_JWK", String::from_utf8(jwk.stdout).unwrap().trim())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the example failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["served"], 200, "{summary}");
    assert_eq!(summary["told_by"], "polling", "{summary}");
    assert_eq!(summary["error"], "invalid_token", "{summary}");
}
