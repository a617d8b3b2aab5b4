//! Bank connectors plugged into a running bank node at run time: both bank-core simulators (real processes) through their shipped mapping files answer the same unified call with the same result; a bad file is refused naming the field and the connector in service stays.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use consentnet_identity::consent::block_on;
use consentnet_identity::{KeyPair, issue_consent};
use consentnet_tests::{
    Consortium, NodeProcess, approval_body, balance_terms, bin, http_post_json, link_client,
    node_key, obie_get, wait_for,
};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(60);
const ADMIN_TOKEN: &str = "an-admin-token-for-tests";

/// PUT or DELETE on the connector admin API.
fn admin(node: &NodeProcess, method: &str, token: &str, body: &str) -> (u16, Value) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let url = format!("{}/v1/admin/connector", node.operator_url);
    let mut response = match method {
        "PUT" => agent.put(&url).header("x-admin-token", token).send(body),
        _ => agent.delete(&url).header("x-admin-token", token).call(),
    }
    .unwrap();
    let status = response.status().as_u16();
    (
        status,
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap(),
    )
}

/// A simulator process, killed on drop.
struct Simulator {
    child: Child,
    url: String,
}

impl Simulator {
    fn start(style: &str) -> Self {
        let mut child = Command::new(bin("consentnet-bankcore"))
            .args(["--style", style, "--seed", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let event: Value = serde_json::from_str(&line).unwrap();
        let url = format!("http://{}", event["http"].as_str().unwrap());
        Self { child, url }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shipped mapping file `name`, pointed at `url`.
fn mapping_text(name: &str, url: &str) -> String {
    let path = std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../bank-adapter/mappings")
    .join(name);
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|line| {
            if line.starts_with("base_url") {
                format!("base_url = \"{url}\"")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn balances(node: &NodeProcess, account: &str, consent: &str, app: &KeyPair) -> (u16, Value) {
    obie_get(
        &node.http_url,
        &format!("/accounts/{account}/balances"),
        consent,
        app,
    )
}

fn connector_is(node: &NodeProcess, name: &str) -> Option<Value> {
    let status = node.status();
    (status["connector"] == name).then_some(status)
}

#[test]
fn simulators_plugged_in_at_run_time_answer_like_the_bank_they_front() {
    let consortium = Consortium::create(&[("bank", "Mapped Bank")]);
    let node_dir = &consortium.nodes[0].dir;
    // Replaces the token `init` wrote, which the config names.
    std::fs::write(node_dir.join("admin-token"), ADMIN_TOKEN).unwrap();
    let node = consortium.start(0, DEADLINE);
    let connectors = consortium.nodes[0].dir.join("connectors");
    std::fs::create_dir_all(&connectors).unwrap();
    wait_for("the sandbox in service", DEADLINE, || {
        connector_is(&node, "sandbox")
    });

    // The bank approves an app; a client grants it balances on one account.
    let bank = node_key(&consortium.nodes[0]);
    let app = KeyPair::generate();
    let body = approval_body(&bank, app.did());
    let (code, answer) = http_post_json(&format!("{}/v1/apps/decisions", node.http_url), &body);
    assert_eq!(code, 201, "{answer}");
    let sandbox = consentnet_bank_adapter::sandbox::SandboxBank::seeded(1, Utc::now());
    let account = sandbox.account_ids()[0].0.clone();
    let client = KeyPair::generate();
    link_client(&consortium.nodes[0], &node, &client, &[&account]);
    let consent = block_on(issue_consent(
        &client,
        &balance_terms(app.did(), bank.did(), &account),
    ))
    .unwrap();
    let (code, answer) = http_post_json(
        &format!("{}/v1/consents", node.http_url),
        &consent.credential,
    );
    assert_eq!(code, 201, "{answer}");
    let id = consent.id.to_string();
    let amounts = |body: &Value| {
        body["Data"]["Balance"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["Type"].clone(),
                    b["Amount"].clone(),
                    b["CreditDebitIndicator"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let (code, direct) = balances(&node, &account, &id, &app);
    assert_eq!(code, 200, "{direct}");

    let legacy = Simulator::start("legacy");
    let berlin = Simulator::start("berlin");
    std::fs::write(
        connectors.join("core.toml"),
        mapping_text("legacy-core.toml", &legacy.url),
    )
    .unwrap();
    wait_for("the legacy core in service", DEADLINE, || {
        connector_is(&node, "legacy-core")
    });
    let (code, through_legacy) = balances(&node, &account, &id, &app);
    assert_eq!(code, 200, "{through_legacy}");
    assert_eq!(amounts(&through_legacy), amounts(&direct));

    // Replaced in place by the Berlin Group core.
    std::fs::write(
        connectors.join("core.toml"),
        mapping_text("berlin-group.toml", &berlin.url) + "\n# replaced\n",
    )
    .unwrap();
    wait_for("the Berlin Group core in service", DEADLINE, || {
        connector_is(&node, "berlin-group")
    });
    let (code, through_berlin) = balances(&node, &account, &id, &app);
    assert_eq!(code, 200, "{through_berlin}");
    assert_eq!(amounts(&through_berlin), amounts(&direct));

    // A bad file is refused, naming the field; the Berlin core stays in service.
    std::fs::write(
        connectors.join("core.toml"),
        mapping_text("berlin-group.toml", &berlin.url)
            .replace("timeout_ms = 2000", "timeout_ms = \"soon\""),
    )
    .unwrap();
    let status = wait_for("the bad file to be refused", DEADLINE, || {
        let status = node.status();
        status["connector_problem"]
            .as_str()
            .is_some_and(|p| p.contains("timeout_ms"))
            .then_some(status)
    });
    assert_eq!(status["connector"], "berlin-group");
    assert_eq!(balances(&node, &account, &id, &app).0, 200);

    // Removed: the sandbox is back.
    std::fs::remove_file(connectors.join("core.toml")).unwrap();
    wait_for("the sandbox back in service", DEADLINE, || {
        connector_is(&node, "sandbox")
    });

    // The admin API does the same, with the admin token only.
    let legacy_text = mapping_text("legacy-core.toml", &legacy.url);
    let (code, body) = admin(&node, "PUT", "wrong-token-wrong-token", &legacy_text);
    assert_eq!(
        (code, body["code"].as_str()),
        (401, Some("admin_token_invalid"))
    );
    let (code, body) = admin(
        &node,
        "PUT",
        ADMIN_TOKEN,
        &legacy_text.replace("[balances]", "[balance]"),
    );
    assert_eq!(
        (code, body["code"].as_str()),
        (400, Some("invalid_mapping")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("balance"),
        "{body}"
    );
    assert_eq!(node.status()["connector"], "sandbox", "nothing changed");
    let (code, body) = admin(&node, "PUT", ADMIN_TOKEN, &legacy_text);
    assert_eq!(
        (code, body["installed"].as_str()),
        (200, Some("legacy-core")),
        "{body}"
    );
    wait_for("the legacy core in service again", DEADLINE, || {
        connector_is(&node, "legacy-core")
    });
    assert_eq!(balances(&node, &account, &id, &app).0, 200);
    let output = Command::new(bin("consentnet"))
        .args([
            "bank",
            "connector",
            "remove",
            "--operator",
            &node.operator_url,
            "--token-file",
        ])
        .arg(node_dir.join("admin-token"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    wait_for("the sandbox back again", DEADLINE, || {
        connector_is(&node, "sandbox")
    });
}

/// Runs `consentnet bank connector ARGS...` against `node`; (success, stdout, stderr).
fn connector_cli(
    node: &NodeProcess,
    token_file: &std::path::Path,
    args: &[&str],
) -> (bool, String, String) {
    let (command, rest) = args.split_first().unwrap();
    let output = Command::new(bin("consentnet"))
        .args([
            "bank",
            "connector",
            command,
            "--operator",
            &node.operator_url,
            "--token-file",
        ])
        .arg(token_file)
        .args(rest)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_mapping_is_dry_run_against_its_core_first_and_core_errors_reach_the_bank_as_what_they_are() {
    let consortium = Consortium::create(&[("bank", "Strict Core Bank")]);
    let node_dir = &consortium.nodes[0].dir;
    let token_file = node_dir.join("admin-token");
    std::fs::write(&token_file, ADMIN_TOKEN).unwrap();
    let node = consortium.start(0, DEADLINE);
    let berlin = Simulator::start("berlin");
    let account = consentnet_tests::sandbox_account();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("berlin.toml");
    std::fs::write(&good, mapping_text("berlin-group.toml", &berlin.url)).unwrap();
    // The core moved under /psd2, and the mapping was not told.
    let moved = dir.path().join("moved.toml");
    std::fs::write(
        &moved,
        mapping_text("berlin-group.toml", &format!("{}/psd2", berlin.url)),
    )
    .unwrap();

    // The dry run, from the node, over a sample account: every read passes.
    let (ok, out, err) = connector_cli(
        &node,
        &token_file,
        &["test", good.to_str().unwrap(), "--account", &account],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("dry run of berlin-group: passed"), "{out}");
    assert!(out.contains("balances of the sample account"), "{out}");
    assert!(out.contains("skipped create_payment"), "{out}");

    // The moved core fails it: the API refuses with the report and installs nothing.
    let (code, body) = admin(
        &node,
        "PUT",
        ADMIN_TOKEN,
        &std::fs::read_to_string(&moved).unwrap(),
    );
    assert_eq!(
        (code, body["code"].as_str()),
        (422, Some("connector_dry_run_failed")),
        "{body}"
    );
    assert_eq!(body["dry_run"]["passed"], false);
    assert!(
        body["dry_run"]["steps"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("404"),
        "{body}"
    );
    assert_eq!(node.status()["connector"], "sandbox", "nothing installed");
    let (ok, out, err) = connector_cli(&node, &token_file, &["put", moved.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("FAILED") && err.contains("nothing was installed"),
        "{out}{err}"
    );
    assert_eq!(node.status()["connector"], "sandbox");

    // Forced in: the operator's link code and the TSP's call say the core refused,
    // never that the account is unknown, and the metrics carry the core's status.
    let (ok, out, err) = connector_cli(
        &node,
        &token_file,
        &["put", moved.to_str().unwrap(), "--force"],
    );
    assert!(ok, "{out}{err}");
    wait_for("the moved mapping in service", DEADLINE, || {
        connector_is(&node, "berlin-group")
    });
    let (code, body) = consentnet_tests::http_post_json_with(
        &format!("{}/v1/admin/link-codes", node.operator_url),
        &[("x-admin-token", ADMIN_TOKEN)],
        &serde_json::json!({ "customer": "c-1", "accounts": [account] }),
    );
    assert_eq!(
        (code, body["code"].as_str()),
        (502, Some("bank_core_failed")),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("404"), "{body}");
    let (_, metrics) = consentnet_tests::http_get(&format!("{}/metrics", node.operator_url));
    assert!(
        metrics.contains("consentnet_bank_core_refusals_total{operation=\"core_consent\",status=\"404\",code=\"none\"}"),
        "{metrics}"
    );

    // A mapping may read secrets only from inside the connectors folder: the admin token
    // does not open every file the node can read.
    let outside = mapping_text("berlin-group.toml", &berlin.url).replace(
        "X-Request-ID = \"{uuid}\"",
        "X-Request-ID = \"{uuid}\"\nX-Secret = \"{file:/etc/hostname}\"",
    );
    let (code, body) = admin(&node, "PUT", ADMIN_TOKEN, &outside);
    assert_eq!(
        (code, body["code"].as_str()),
        (400, Some("invalid_mapping")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("must be inside"),
        "{body}"
    );
    let secrets = node_dir.join("connectors/secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::write(secrets.join("core-key"), "inside-secret\n").unwrap();
    let inside = dir.path().join("inside.toml");
    std::fs::write(
        &inside,
        mapping_text("berlin-group.toml", &berlin.url).replace(
            "X-Request-ID = \"{uuid}\"",
            &format!(
                "X-Request-ID = \"{{uuid}}\"\nX-Secret = \"{{file:{}}}\"",
                secrets.join("core-key").display()
            ),
        ),
    )
    .unwrap();
    let (ok, out, err) = connector_cli(&node, &token_file, &["test", inside.to_str().unwrap()]);
    assert!(ok && out.contains("passed"), "{out}{err}");

    // Put right, with the sample account: installed.
    let (ok, out, err) = connector_cli(
        &node,
        &token_file,
        &["put", good.to_str().unwrap(), "--account", &account],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("\"installed\": \"berlin-group\""), "{out}");
}
