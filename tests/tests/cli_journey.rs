//! The consentnet CLI against a running two-node consortium (a bank and a TSP): a TSP publishes an app, the bank approves it, a client grants a consent from an encrypted wallet, the TSP reads a balance with a proof the CLI signs, the client revokes, and the next call is refused.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use chrono::Utc;
use consentnet_client::proofs::{ProofError, verify_accesses};
use consentnet_tests::{Consortium, TEST_PASSPHRASE, bin, wait_for};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(60);
const WALLET_PASSPHRASE: &str = "client wallet passphrase";

/// Runs `consentnet --json ARGS`, with `input` on stdin.
fn cli(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(bin("consentnet"))
        .arg("--json")
        .args(args)
        .env("CONSENTNET_WALLET_PASSPHRASE", WALLET_PASSPHRASE)
        .env("CONSENTNET_NODE_PASSPHRASE", TEST_PASSPHRASE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn ok(args: &[&str]) -> Value {
    let output = cli(args, "");
    assert!(
        output.status.success(),
        "consentnet {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn a_client_grants_a_tsp_reads_the_client_revokes_the_tsp_is_refused() {
    let consortium = Consortium::create(&[("bank", "CLI Bank"), ("tsp", "CLI Fintech")]);
    let bank = consortium.start(0, DEADLINE);
    let tsp = consortium.start(1, DEADLINE);
    wait_for("the two nodes to connect", DEADLINE, || {
        (bank.status()["peers"] == 1 && tsp.status()["peers"] == 1).then_some(())
    });
    let dir = tempfile::tempdir().unwrap();
    let wallet = dir.path().join("client.wallet");
    let wallet = wallet.to_str().unwrap();
    let app_wallet = dir.path().join("tsp.wallet");
    let app_wallet = app_wallet.to_str().unwrap();

    // The TSP makes an app identity and publishes a version through its own node's operator surface.
    ok(&["wallet", "init", "--wallet", app_wallet]);
    let app = ok(&[
        "wallet",
        "new-did",
        "--wallet",
        app_wallet,
        "--label",
        "budget-app",
    ]);
    let app_did = app["did"].as_str().unwrap().to_owned();
    let published = ok(&[
        "tsp",
        "publish",
        "--wallet",
        app_wallet,
        "--operator",
        &tsp.operator_url,
        "--as",
        "budget-app",
        "--name",
        "Budget Buddy",
        "--description",
        "Where the money goes",
        "--version",
        "1.0.0",
        "--permission",
        "ReadAccountsBasic",
        "--permission",
        "ReadBalances",
        "--bundle-hash",
        &"ab".repeat(32),
    ]);
    assert_eq!(published["new"], true);

    // The bank approves it, signing with its node key.
    let key_file = consortium.nodes[0].dir.join("node-key.json");
    ok(&[
        "bank",
        "decide",
        "--node",
        &bank.http_url,
        "--key-file",
        key_file.to_str().unwrap(),
        "--app",
        &app_did,
        "--version",
        "1.0.0",
        "--permission",
        "ReadAccountsBasic",
        "--permission",
        "ReadBalances",
    ]);

    // The client browses the bank's catalog and finds the app approved there.
    let bank_did = consortium.nodes[0].did();
    let catalog = wait_for(
        "the approval in the catalog at the TSP's node",
        DEADLINE,
        || {
            let listed = ok(&[
                "catalog",
                "--node",
                &tsp.http_url,
                "--bank",
                bank_did,
                "--approved",
            ]);
            (listed.as_array().map(Vec::len) == Some(1)).then_some(listed)
        },
    );
    assert_eq!(catalog[0]["manifest"]["app"], app_did.as_str());
    let text = Command::new(bin("consentnet"))
        .args(["catalog", "--node", &tsp.http_url, "--bank", bank_did])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("approved for ReadAccountsBasic, ReadBalances"),
        "{text}"
    );

    // The client grants a consent on one sandbox account, through the TSP's node.
    ok(&["wallet", "init", "--wallet", wallet]);
    let client_did = ok(&[
        "wallet",
        "new-did",
        "--wallet",
        wallet,
        "--label",
        "for-budget-buddy",
    ])["did"]
        .as_str()
        .unwrap()
        .to_owned();
    let sandbox = consentnet_bank_adapter::sandbox::SandboxBank::seeded(1, Utc::now());
    let account = sandbox.account_ids()[0].0.clone();

    // The bank's channel issues a link code; the client links the DID with it and gets
    // the account's opaque reference back.
    let token_file = consortium.nodes[0].dir.join("admin-token");
    let issued = ok(&[
        "bank",
        "link-code",
        "--operator",
        &bank.operator_url,
        "--token-file",
        token_file.to_str().unwrap(),
        "--customer",
        "customer-42",
        "--account",
        &account,
    ]);
    let code = issued["code"].as_str().unwrap().to_owned();
    let link_args = [
        "wallet",
        "link",
        "--wallet",
        wallet,
        "--bank",
        &bank.http_url,
        "--as",
        "for-budget-buddy",
        "--code",
        &code,
    ];
    let linked = ok(&link_args);
    assert_eq!(linked["accounts"][0]["account_id"], account.as_str());
    assert_eq!(linked["did"], client_did.as_str());
    // A code links once.
    let again = cli(&link_args, "");
    assert_eq!(again.status.code(), Some(3), "refused by the node");
    assert!(String::from_utf8_lossy(&again.stderr).contains("link_code_unusable"));

    let grant_args = [
        "consent",
        "grant",
        "--wallet",
        wallet,
        "--node",
        &bank.http_url,
        "--as",
        "for-budget-buddy",
        "--bank",
        consortium.nodes[0].did(),
        "--app",
        &app_did,
        "--account",
        &account,
        "--permission",
        "ReadAccountsBasic",
        "--permission",
        "ReadBalances",
        "--until",
        "2029-12-31",
    ];
    // Answering no grants nothing.
    let declined = cli(&grant_args, "n\n");
    assert_eq!(declined.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&declined.stderr)
            .contains("may use: ReadAccountsBasic, ReadBalances")
    );
    let granted = cli(&grant_args, "y\n");
    assert!(
        granted.status.success(),
        "{}",
        String::from_utf8_lossy(&granted.stderr)
    );
    let granted: Value = serde_json::from_slice(&granted.stdout).unwrap();
    let consent = granted["consent_id"].as_str().unwrap().to_owned();

    // The TSP reads the balance at the bank once the grant has reached it.
    let path = format!("/aisp/accounts/{account}/balances");
    let get = || {
        cli(
            &[
                "tsp",
                "get",
                "--wallet",
                app_wallet,
                "--bank",
                &bank.http_url,
                "--as",
                "budget-app",
                "--app-version",
                "1.0.0",
                "--consent",
                &consent,
                &path,
            ],
            "",
        )
    };
    let body = wait_for("the balance through the CLI", DEADLINE, || {
        let output = get();
        output
            .status
            .success()
            .then(|| serde_json::from_slice::<Value>(&output.stdout).unwrap())
    });
    assert_eq!(body["Data"]["Balance"][0]["AccountId"], account.as_str());

    // The client revokes; the bank refuses from then on, with the OBIE code.
    ok(&[
        "consent",
        "revoke",
        "--wallet",
        wallet,
        "--node",
        &tsp.http_url,
        &consent,
    ]);
    let refused = wait_for("the bank to refuse", DEADLINE, || {
        let output = get();
        (output.status.code() == Some(3)).then_some(output)
    });
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("consent_revoked"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let status = ok(&[
        "consent",
        "status",
        "--wallet",
        wallet,
        "--node",
        &bank.http_url,
        &consent,
    ]);
    assert_eq!(status["status"], "revoked");
    let mine = ok(&[
        "consent",
        "list",
        "--wallet",
        wallet,
        "--node",
        &tsp.http_url,
    ]);
    assert_eq!(mine["consents"][0]["consent_id"], consent.as_str());
    assert_eq!(mine["consents"][0]["status"], "revoked");
    // Anyone outside the network: the consent, from a file, through a node's VC-API.
    let held = consentnet_identity::Wallet::open(std::path::Path::new(wallet), WALLET_PASSPHRASE)
        .unwrap()
        .credentials()
        .iter()
        .find(|c| c.label.ends_with(consent.as_str()))
        .unwrap()
        .credential
        .clone();
    let file = dir.path().join("consent.json");
    std::fs::write(&file, held.to_string()).unwrap();
    let file = file.to_str().unwrap();
    let verified = cli(&["consent", "verify", "--node", &tsp.http_url, file], "");
    assert_eq!(
        verified.status.code(),
        Some(4),
        "does not verify: exit code 4"
    );
    let verification: Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(
        verification["errors"][0]["type"]
            .as_str()
            .map(|t| t.ends_with("/revoked")),
        Some(true),
        "{verification}"
    );
    let missing = cli(
        &[
            "consent",
            "verify",
            "--node",
            &tsp.http_url,
            "/nonexistent.json",
        ],
        "",
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent.json"));
    // What the bank did under the consent: the served call and the refused one.
    // They stay with the bank: the TSP's node holds only the bank's commitments.
    let elsewhere = cli(
        &[
            "consent",
            "accesses",
            "--wallet",
            wallet,
            "--node",
            &tsp.http_url,
            &consent,
        ],
        "",
    );
    assert!(String::from_utf8_lossy(&elsewhere.stderr).contains("accesses_at_bank"));
    let accesses = wait_for("the access records at the bank's node", DEADLINE, || {
        let accesses = ok(&[
            "consent",
            "accesses",
            "--wallet",
            wallet,
            "--node",
            &bank.http_url,
            &consent,
        ]);
        let list = accesses["accesses"].as_array().unwrap().clone();
        let served = list.iter().any(|a| a["record"]["outcome"] == "served");
        let refused = list
            .iter()
            .any(|a| a["record"]["code"] == "consent_revoked");
        let committed = accesses["batches"]
            .as_object()
            .unwrap()
            .values()
            .all(|b| !b["commitment"].is_null());
        (served && refused && committed).then_some(accesses)
    });
    // The CLI checked every record against a root the bank signed on its feed; an
    // altered record, or another member's name as the bank, does not verify.
    let count = accesses["accesses"].as_array().unwrap().len();
    assert_eq!(accesses["verified"], count);
    let bank_did = consortium.nodes[0].did();
    assert_eq!(verify_accesses(&accesses, bank_did).unwrap(), count);
    let mut forged = accesses.clone();
    forged["accesses"][0]["record"]["time"] = serde_json::json!(1);
    assert!(matches!(
        verify_accesses(&forged, bank_did),
        Err(ProofError::NotUnderRoot { .. })
    ));
    assert!(matches!(
        verify_accesses(&accesses, consortium.nodes[1].did()),
        Err(ProofError::NotTheBanks { .. })
    ));
    let accesses = accesses["accesses"].as_array().unwrap().clone();
    assert!(
        accesses
            .iter()
            .all(|a| a["bank"] == consortium.nodes[0].did())
    );

    // The audit: online through the bank's node, whose own records are checked against
    // its commitments, then offline on the stopped bank's log and records.
    let report = wait_for("the bank's access records in the audit", DEADLINE, || {
        let report = ok(&["audit", "verify", "--operator", &bank.operator_url]);
        (report["accesses"].as_u64() >= Some(2)).then_some(report)
    });
    // Elsewhere the log holds the commitments only.
    let log_only = ok(&["audit", "verify", "--operator", &tsp.operator_url]);
    assert_eq!(log_only["accesses"], 0, "{log_only}");
    assert!(
        log_only["committed_records"].as_u64() >= Some(2),
        "{log_only}"
    );
    assert_eq!(report["clean"], true, "{report}");
    assert_eq!(
        (report["consents"].as_u64(), report["revoked"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(bank.terminate(DEADLINE), Some(0));
    let offline = Command::new(bin("consentnet-node"))
        .args(["audit", "--config"])
        .arg(consortium.nodes[0].dir.join("node.toml"))
        .output()
        .unwrap();
    assert!(offline.status.success(), "{offline:?}");
    let summary = String::from_utf8_lossy(&offline.stdout);
    assert!(summary.starts_with("CLEAN:"), "{summary}");
    assert!(summary.contains("1 consents, 1 revoked"), "{summary}");

    // The same, with the consentnet CLI on the stopped bank's log folder: no network,
    // a progress bar, and the report for people as an HTML page.
    let data = consortium.nodes[0].dir.join("data");
    let html = consortium.root.path().join("audit.html");
    let output = cli(
        &[
            "audit",
            "verify",
            "--data-dir",
            data.to_str().unwrap(),
            "--format",
            "html",
            "--out",
            html.to_str().unwrap(),
            "--progress",
            "always",
        ],
        "",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("100%"),
        "the progress bar ends full: {stderr}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains(">CLEAN</span>"));
    assert!(page.contains("Consents granted and revoked per day"));
    assert!(
        page.contains("Budget Buddy"),
        "accesses per app name the app"
    );
    let offline = ok(&["audit", "verify", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(offline["state_digest"], report["state_digest"]);
    assert_eq!(offline["timeline"][0]["granted"], 1);
    // A folder that holds no log is refused, and nothing is created in it.
    let empty = consortium.root.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let refused = cli(
        &["audit", "verify", "--data-dir", empty.to_str().unwrap()],
        "",
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("holds no consentnet log"));
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
}
