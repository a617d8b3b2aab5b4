//! The node and the CLI as real processes on loopback: start, answer, report status, stop cleanly on SIGTERM.

// Test helpers outside #[test] functions unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use consentnet_tests::{Consortium, NodeProcess, bin, http_get};

const DEADLINE: Duration = Duration::from_secs(20);

/// A one-member consortium's node, running.
fn single_node() -> (Consortium, NodeProcess) {
    let consortium = Consortium::create(&[("bank", "Solo Bank")]);
    let node = consortium.start(0, DEADLINE);
    (consortium, node)
}

#[test]
fn node_serves_health_and_stops_cleanly_on_sigterm() {
    let (_consortium, node) = single_node();
    let (status, body) = http_get(&format!("{}/healthz", node.http_url));
    assert_eq!((status, body.as_str()), (200, "ok"));
    // Well inside the node's own 10 s wait for its log to close: nothing holds it open.
    assert_eq!(node.terminate(Duration::from_secs(5)), Some(0));
}

#[test]
fn cli_reads_node_status_as_json() {
    let (_consortium, node) = single_node();
    let output = Command::new(bin("consentnet"))
        .args(["--json", "status", "--operator", &node.operator_url])
        .output()
        .expect("consentnet runs");
    assert!(output.status.success(), "{output:?}");
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(status["peers"], 0);
    assert_eq!(status["log_entries"], 0);
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn cli_names_the_unreachable_node_and_fails_with_code_1() {
    // Bind then drop a listener so the port is known to be closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let output = Command::new(bin("consentnet"))
        .args(["status", "--operator", &url])
        .output()
        .expect("consentnet runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot reach the node at {url}/status")),
        "{stderr}"
    );
}

#[test]
fn cli_usage_errors_exit_with_code_2() {
    let output = Command::new(bin("consentnet"))
        .args(["status", "--no-such-flag"])
        .output()
        .expect("consentnet runs");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn both_binaries_report_their_version() {
    for name in ["consentnet", "consentnet-node", "consentnet-bankcore"] {
        let output = Command::new(bin(name)).arg("--version").output().unwrap();
        assert!(output.status.success());
        let text = String::from_utf8_lossy(&output.stdout);
        assert_eq!(text.trim(), format!("{name} {}", env!("CARGO_PKG_VERSION")));
    }
}

#[test]
fn cli_ends_quietly_when_its_output_pipe_closes() {
    let dir = tempfile::tempdir().unwrap();
    let wallet = dir.path().join("w.wallet");
    let cli = |args: &[&str]| {
        let mut command = Command::new(bin("consentnet"));
        command
            .args(args)
            .arg("--wallet")
            .arg(&wallet)
            .env("CONSENTNET_WALLET_PASSPHRASE", "a passphrase for this test");
        command
    };
    assert!(cli(&["wallet", "init"]).output().unwrap().status.success());
    // The reader goes away before the wallet is open (its key derivation takes a while),
    // so the listing is written into a closed pipe, like `consentnet wallet list | head`.
    let mut child = cli(&["wallet", "list"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
}

#[test]
fn the_operator_surface_is_not_on_the_public_listener() {
    let (_consortium, node) = single_node();
    for path in ["/status", "/metrics", "/v1/audit"] {
        let (status, body) = http_get(&format!("{}{path}", node.http_url));
        assert_eq!(status, 404, "{path} on the public listener: {body}");
        let (status, body) = http_get(&format!("{}{path}", node.operator_url));
        assert_ne!(status, 404, "{path} on the operator listener: {body}");
    }
    let (status, body) = http_get(&format!("{}/.well-known/consentnet-node", node.http_url));
    assert_eq!(status, 200, "{body}");
}

#[test]
fn an_operator_listener_reachable_from_other_machines_needs_the_admin_token() {
    let consortium = Consortium::create(&[("regulator", "Open Regulator")]);
    let node = NodeProcess::start_with_operator(&consortium.nodes[0], &[], "0.0.0.0:0", DEADLINE);
    let port = node.operator_url.rsplit(':').next().unwrap();
    let status_url = format!("http://127.0.0.1:{port}/status");
    let (status, body) = http_get(&status_url);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("admin_token_invalid"), "{body}");
    let token = consentnet_tests::admin_token(&consortium.nodes[0]);
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let wrong = agent
        .get(&status_url)
        .header("x-admin-token", "not-the-token-at-all")
        .call()
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    for (name, value) in [
        ("x-admin-token", token.clone()),
        ("authorization", format!("Bearer {token}")),
    ] {
        let answer = agent.get(&status_url).header(name, &value).call().unwrap();
        assert_eq!(answer.status().as_u16(), 200, "with {name}");
    }
}

#[test]
fn a_node_refuses_to_open_its_operator_listener_to_other_machines_without_a_token() {
    let consortium = Consortium::create(&[("tsp", "Careless Fintech")]);
    let config = consortium.nodes[0].dir.join("node.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("admin_token_file = \"admin-token\"", ""),
    )
    .unwrap();
    let output = Command::new(bin("consentnet-node"))
        .args(["run", "--config"])
        .arg(&config)
        .args(["--operator", "0.0.0.0:0"])
        .env(
            "CONSENTNET_NODE_PASSPHRASE",
            consentnet_tests::TEST_PASSPHRASE,
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("operator.admin_token_file"), "{stderr}");
}

#[test]
fn one_client_address_over_its_rate_gets_429_with_retry_after_in_each_surfaces_shape() {
    let consortium = Consortium::create(&[("bank", "Busy Bank")]);
    let config = consortium.nodes[0].dir.join("node.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text
        .replace("per_ip_per_second = 100000", "per_ip_per_second = 1")
        .replace("per_ip_burst = 100000", "per_ip_burst = 3")
        .replace("enabled = false", "enabled = true");
    std::fs::write(&config, text).unwrap();
    let node = consortium.start(0, DEADLINE);
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut answers = Vec::new();
    for path in [
        "/healthz",
        "/v1/catalog?bank=x",
        "/.well-known/consentnet-node",
        "/v1/catalog?bank=x",
        "/portal",
        "/.well-known/oauth-authorization-server",
    ] {
        let mut response = agent
            .get(&format!("{}{path}", node.http_url))
            .call()
            .unwrap();
        let status = response.status().as_u16();
        let retry = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.body_mut().read_to_string().unwrap();
        answers.push((path, status, retry, body));
    }
    // The burst of 3 is served; then each surface refuses in its own shape.
    for (path, status, _, body) in &answers[..3] {
        assert_ne!(*status, 429, "{path}: {body}");
    }
    for (path, status, retry, body) in &answers[3..] {
        assert_eq!(*status, 429, "{path}: {body}");
        assert_eq!(retry.as_deref(), Some("1"), "{path}");
    }
    assert!(
        answers[3].3.contains("\"code\":\"rate_limited\""),
        "{}",
        answers[3].3
    );
    assert!(
        answers[4].3.contains("data-error=\"rate_limited\""),
        "{}",
        answers[4].3
    );
    assert!(
        answers[5].3.contains("\"error\":\"slow_down\""),
        "{}",
        answers[5].3
    );
    // The operator listener is not limited.
    for _ in 0..10 {
        assert_eq!(http_get(&format!("{}/status", node.operator_url)).0, 200);
    }
}

#[test]
fn a_client_slow_to_send_its_headers_or_idle_after_a_request_is_disconnected() {
    use std::io::{Read, Write};
    let consortium = Consortium::create(&[("tsp", "Patient Fintech")]);
    let config = consortium.nodes[0].dir.join("node.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("header_timeout_ms = 10000", "header_timeout_ms = 500"),
    )
    .unwrap();
    let node = consortium.start(0, DEADLINE);
    let address = node.http_url.trim_start_matches("http://").to_owned();
    let closed_within = |stream: &mut std::net::TcpStream| {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let started = std::time::Instant::now();
        let mut rest = Vec::new();
        let read = stream.read_to_end(&mut rest);
        (read.is_ok(), started.elapsed(), rest)
    };
    // Half a request line, then nothing (slowloris): closed soon after 500 ms.
    let mut slow = std::net::TcpStream::connect(&address).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let (closed, after, _) = closed_within(&mut slow);
    assert!(closed && after < Duration::from_secs(4), "{after:?}");
    // A whole request on a keep-alive connection, then idle: the answer, then closed.
    let mut idle = std::net::TcpStream::connect(&address).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (closed, after, answer) = closed_within(&mut idle);
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    assert!(closed && after < Duration::from_secs(4), "{after:?}");
}
