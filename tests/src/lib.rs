//! Helpers for the multi-process tests: finding the built binaries, starting nodes as real processes, waiting with deadlines.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub mod apps;
pub mod forms;
pub mod http;
pub mod paths;
pub mod wallet;
pub mod webdriver;

pub use apps::{
    bank_with_portal_and_tsp, link_browser_key, manifest_body, manifest_with_events,
    manifest_with_redirect, mini_app_manifest, mini_app_of, publish, publish_mini_app,
};
pub use http::{
    http_get, http_post_json, http_post_json_with, http_put_bytes, pop_proof, signed_get,
    try_post_json,
};
pub use paths::{Path, Paths};

/// Where the workspace's binaries are: `CONSENTNET_BIN_DIR`, or the profile directory
/// this test executable was built into (`target/<profile>/deps/..`).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CONSENTNET_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the test executable has a path");
    let deps = exe.parent().expect("the test executable is in a directory");
    deps.parent().expect("deps has a parent").to_path_buf()
}

/// The path of a workspace binary, with a message saying how to build it when it is missing.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the binaries first (`cargo build --workspace --bins`), as scripts/test does",
        path.display()
    );
    path
}

/// The passphrase test nodes' keys are encrypted with.
pub const TEST_PASSPHRASE: &str = "consortium test passphrase";

/// A free loopback TCP port (bound, then released for the caller to use), below Linux's
/// ephemeral range (32768 up): a port from that range may be taken as the source port of
/// some outgoing connection before the caller binds it.
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let start = std::process::id() % 10_000;
    for _ in 0..12_000 {
        let offset = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = 20_000 + (start + offset) % 12_000;
        let port = u16::try_from(port).expect("below 32000");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port between 20000 and 32000")
}

/// One member's node folder, made by `consentnet-node init`.
#[derive(Debug, Clone)]
pub struct NodeDir {
    /// The folder with `node.toml`, the key and the log.
    pub dir: PathBuf,
    /// The member line `init` printed.
    pub member: serde_json::Value,
    /// The libp2p port this node always listens on.
    pub p2p_port: u16,
}

impl NodeDir {
    /// Runs `consentnet-node init` in `dir`, serving plain HTTP (the TLS tests use
    /// [`NodeDir::init_with`]).
    pub fn init(dir: PathBuf, role: &str, name: &str) -> Self {
        Self::init_with(dir, role, name, &["--plain-http"])
    }

    /// Runs `consentnet-node init` in `dir` with `extra` arguments.
    pub fn init_with(dir: PathBuf, role: &str, name: &str, extra: &[&str]) -> Self {
        let output = Command::new(bin("consentnet-node"))
            .arg("init")
            .arg(&dir)
            .args(["--role", role, "--name", name, "--http", "127.0.0.1:0"])
            .args(["--operator", "127.0.0.1:0"])
            .args(extra)
            .env("CONSENTNET_NODE_PASSPHRASE", TEST_PASSPHRASE)
            .output()
            .expect("consentnet-node init runs");
        assert!(output.status.success(), "init failed: {output:?}");
        let member = serde_json::from_slice(&output.stdout).expect("init prints the member line");
        let config = dir.join("node.toml");
        let text = std::fs::read_to_string(&config).expect("init wrote node.toml");
        // Sync often, so tests that wait on catch-up finish quickly; every test client is
        // on 127.0.0.1, so the per-IP rate is raised (the rate-limit tests set their own).
        // Checkpoints come once an hour, so tests count exactly the entries they cause
        // (the checkpoint test sets its own interval).
        std::fs::write(
            &config,
            text.replace("sync_interval_ms = 2000", "sync_interval_ms = 300")
                .replace(
                    "checkpoint_interval_ms = 10000",
                    "checkpoint_interval_ms = 3600000",
                )
                .replace("per_ip_per_second = 50", "per_ip_per_second = 100000")
                .replace("per_ip_burst = 200", "per_ip_burst = 100000"),
        )
        .expect("node.toml is writable");
        Self {
            dir,
            member,
            p2p_port: free_port(),
        }
    }

    /// This node's DID.
    pub fn did(&self) -> &str {
        self.member["did"].as_str().expect("the member has a DID")
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> &str {
        self.member["peerId"]
            .as_str()
            .expect("the member has a peer id")
    }

    /// The address peers dial.
    pub fn p2p_address(&self) -> String {
        format!(
            "/ip4/127.0.0.1/tcp/{}/p2p/{}",
            self.p2p_port,
            self.peer_id()
        )
    }

    /// Writes the genesis naming `members` into this node's folder.
    pub fn write_genesis(&self, network: &str, members: &[&NodeDir]) {
        let output = Command::new(bin("consentnet-node"))
            .args(["genesis", "--network", network, "--out"])
            .arg(self.dir.join("genesis.json"))
            .args(members.iter().map(|m| m.dir.join("member.json")))
            .output()
            .expect("consentnet-node genesis runs");
        assert!(output.status.success(), "genesis failed: {output:?}");
    }
}

/// A consortium of node folders sharing one genesis, in a temp dir.
pub struct Consortium {
    /// Holds every node's folder.
    pub root: tempfile::TempDir,
    /// The members, in the order given.
    pub nodes: Vec<NodeDir>,
}

impl Consortium {
    /// A consortium of members made elsewhere (in folders under `root`).
    pub fn from_nodes(root: tempfile::TempDir, nodes: Vec<NodeDir>) -> Self {
        Self { root, nodes }
    }

    /// Creates members with these `(role, name)`s and their shared genesis.
    pub fn create(members: &[(&str, &str)]) -> Self {
        let root = tempfile::tempdir().expect("a temp dir");
        let nodes: Vec<NodeDir> = members
            .iter()
            .enumerate()
            .map(|(i, (role, name))| {
                NodeDir::init(root.path().join(format!("node{i}")), role, name)
            })
            .collect();
        let all: Vec<&NodeDir> = nodes.iter().collect();
        for node in &nodes {
            node.write_genesis("test-consortium", &all);
        }
        Self { root, nodes }
    }

    /// Every member's address except `index`'s.
    pub fn bootstrap_for(&self, index: usize) -> Vec<String> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != index)
            .map(|(_, n)| n.p2p_address())
            .collect()
    }

    /// Starts member `index`, bootstrapped with every other member.
    pub fn start(&self, index: usize, deadline: Duration) -> NodeProcess {
        NodeProcess::start(&self.nodes[index], &self.bootstrap_for(index), deadline)
    }
}

/// A `consentnet-node` process that is killed when dropped.
pub struct NodeProcess {
    child: Child,
    /// The public HTTP API's base URL, e.g. `http://127.0.0.1:40123`.
    pub http_url: String,
    /// The operator HTTP API's base URL (status, metrics, audit, admin).
    pub operator_url: String,
}

impl NodeProcess {
    /// Starts `consentnet-node run` for `node` (HTTP on a free port, libp2p on the node's
    /// port) and waits, up to `deadline`, for the JSON line that names its addresses.
    pub fn start(node: &NodeDir, bootstrap: &[String], deadline: Duration) -> Self {
        Self::start_with_operator(node, bootstrap, "127.0.0.1:0", deadline)
    }

    /// [`NodeProcess::start`] with the operator listener bound to `operator`.
    pub fn start_with_operator(
        node: &NodeDir,
        bootstrap: &[String],
        operator: &str,
        deadline: Duration,
    ) -> Self {
        Self::start_on(node, bootstrap, ("127.0.0.1:0", operator), deadline)
    }

    /// [`NodeProcess::start`] with the public and operator listeners bound to `listen`,
    /// e.g. the same port again after a restart.
    pub fn start_on(
        node: &NodeDir,
        bootstrap: &[String],
        (http, operator): (&str, &str),
        deadline: Duration,
    ) -> Self {
        let mut command = Command::new(bin("consentnet-node"));
        command
            .arg("run")
            .arg("--config")
            .arg(node.dir.join("node.toml"))
            .args(["--http", http, "--operator", operator])
            .args(["--p2p", &format!("/ip4/127.0.0.1/tcp/{}", node.p2p_port)])
            .env("CONSENTNET_NODE_PASSPHRASE", TEST_PASSPHRASE)
            .env("CONSENTNET_LOG", "warn");
        for peer in bootstrap {
            command.args(["--bootstrap", peer]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("consentnet-node starts");
        // Owned by the guard at once, so a panic below still kills the process.
        let mut process = Self {
            child,
            http_url: String::new(),
            operator_url: String::new(),
        };
        let stdout = process.child.stdout.take().expect("stdout is piped");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let started = Instant::now();
        loop {
            let left = deadline.saturating_sub(started.elapsed());
            let line = receiver
                .recv_timeout(left)
                .expect("the node printed its listening address before the deadline");
            if let Some(event) = consentnet_client::process::listening_event(&line) {
                let url = event["url"].as_str().expect("url is a string");
                process.http_url = url.to_owned();
                let operator = event["operator"].as_str().expect("operator is a string");
                process.operator_url = format!("http://{operator}");
                return process;
            }
        }
    }

    /// The operating system's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL: no shutdown code runs.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Freezes the process (SIGSTOP): its sockets stay open but nothing answers, as a
    /// partition that drops packets looks to its peers.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Lets a paused process run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -s {name} failed");
    }

    /// A counter from `GET /metrics` (its unlabelled sample), or 0 when absent.
    pub fn metric(&self, name: &str) -> u64 {
        let (code, body) = http_get(&format!("{}/metrics", self.operator_url));
        assert_eq!(code, 200, "{body}");
        body.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0)
    }

    /// `GET /status` as JSON.
    pub fn status(&self) -> serde_json::Value {
        let (code, body) = http_get(&format!("{}/status", self.operator_url));
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).expect("status is JSON")
    }

    /// Sends SIGTERM and waits, up to `deadline`, for the process to exit; returns its exit code.
    pub fn terminate(mut self, deadline: Duration) -> Option<i32> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
        let started = Instant::now();
        while started.elapsed() < deadline {
            if let Some(status) = self.child.try_wait().expect("waiting on the node") {
                return status.code();
            }
            std::thread::park_timeout(Duration::from_millis(20));
        }
        panic!("the node did not exit within {deadline:?} of SIGTERM");
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it returns `Some`, or panics naming `what` after `deadline`.
pub fn wait_for<T>(what: &str, deadline: Duration, check: impl FnMut() -> Option<T>) -> T {
    consentnet_client::process::wait_until(what, deadline, check)
        .unwrap_or_else(|timed_out| panic!("timed out: {timed_out}"))
}

/// The node key of a member, from its encrypted key file (a bank signs decisions with it).
pub fn node_key(node: &NodeDir) -> consentnet_identity::KeyPair {
    let wallet =
        consentnet_identity::Wallet::open(&node.dir.join("node-key.json"), TEST_PASSPHRASE)
            .expect("the node key opens");
    let did = wallet.identities()[0].did.clone();
    wallet.key_pair(&did).expect("the node key is in its file")
}

/// The first account of the embedded sandbox bank every test bank node serves (seed 1).
pub fn sandbox_account() -> String {
    consentnet_bank_adapter::sandbox::SandboxBank::seeded(1, chrono::Utc::now()).account_ids()[0]
        .0
        .clone()
}

/// The permissions the tests' app asks for and banks allow: accounts and balances.
pub fn balance_permissions() -> std::collections::BTreeSet<consentnet_identity::Permission> {
    use consentnet_identity::Permission;
    [Permission::ReadAccountsBasic, Permission::ReadBalances]
        .into_iter()
        .collect()
}

/// Consent terms for `app` to read accounts and balances of `account` at `bank`, valid
/// from 2026 to 2030.
pub fn balance_terms(
    app: &consentnet_identity::Did,
    bank: &consentnet_identity::Did,
    account: &str,
) -> consentnet_identity::ConsentTerms {
    use chrono::TimeZone;
    consentnet_identity::ConsentTerms {
        app: app.clone(),
        bank: bank.clone(),
        accounts: vec![account.to_owned()],
        permissions: balance_permissions(),
        payment_limits: None,
        purpose: "Budgeting".into(),
        valid_from: chrono::Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("a valid date"),
        valid_until: chrono::Utc
            .with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
            .single()
            .expect("a valid date"),
        proof_key: None,
        status: None,
    }
}

/// The body of `POST /v1/apps/decisions`: `bank` approves `app` 1.0.0 for accounts and
/// balances.
pub fn approval_body(
    bank: &consentnet_identity::KeyPair,
    app: &consentnet_identity::Did,
) -> serde_json::Value {
    decision_body(bank, app, "1.0.0")
}

/// The body of `POST /v1/apps/decisions`: `bank` approves `version` of `app` for
/// accounts and balances.
pub fn decision_body(
    bank: &consentnet_identity::KeyPair,
    app: &consentnet_identity::Did,
    version: &str,
) -> serde_json::Value {
    use consentnet_consent_chain::event::{AppAction, AppDecision};
    let decision = AppDecision {
        bank: bank.did().clone(),
        app: app.clone(),
        version: version.into(),
        action: AppAction::Approve {
            permissions: balance_permissions(),
            rate_limit: None,
            origins: Default::default(),
        },
        time: u64::try_from(chrono::Utc::now().timestamp_millis()).expect("now is after 1970"),
    };
    let mut body =
        serde_json::to_value(consentnet_consent_chain::Event::app_decided(bank, decision))
            .expect("a decision serializes");
    if let Some(object) = body.as_object_mut() {
        object.remove("type");
    }
    body
}

/// A GET of `path` (under `/open-banking/v4.0/aisp`) at a bank node's unified API, as
/// app version 1.0.0 under `consent`, with a proof signed by `app`.
pub fn obie_get(
    bank_url: &str,
    path: &str,
    consent: &str,
    app: &consentnet_identity::KeyPair,
) -> (u16, serde_json::Value) {
    obie_get_version(bank_url, path, consent, app, "1.0.0")
}

/// [`obie_get`] as app `version`.
pub fn obie_get_version(
    bank_url: &str,
    path: &str,
    consent: &str,
    app: &consentnet_identity::KeyPair,
    version: &str,
) -> (u16, serde_json::Value) {
    let url = format!("{bank_url}/open-banking/v4.0/aisp{path}");
    let proof = consentnet_identity::sign_pop(
        app,
        consentnet_identity::PopRequest {
            method: "GET",
            url: &url,
            access_token: consent,
        },
        chrono::Utc::now(),
    );
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .new_agent();
    let mut response = agent
        .get(&url)
        .header("authorization", format!("ConsentNet {consent}"))
        .header("dpop", proof)
        .header("x-consentnet-app-version", version)
        .call()
        .expect("the HTTP call completes");
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .expect("the body is text");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// Links `client` at the bank node `bank` (member folder `node`) as the holder of
/// `accounts`: a link code from the bank's admin API (token from the folder), redeemed
/// on its public API with a proof signed by the client.
pub fn link_client(
    node: &NodeDir,
    bank: &NodeProcess,
    client: &consentnet_identity::KeyPair,
    accounts: &[&str],
) {
    let bank_url = &bank.http_url;
    let (status, code) = http_post_json_with(
        &format!("{}/v1/admin/link-codes", bank.operator_url),
        &[("x-admin-token", &admin_token(node))],
        &serde_json::json!({ "customer": "test customer", "accounts": accounts }),
    );
    assert_eq!(status, 201, "{code}");
    let bank = consentnet_identity::Did::parse(node.did()).expect("the bank's DID");
    let request = consentnet_identity::LinkRequest::sign(
        client,
        &bank,
        code["code"].as_str().expect("a code"),
    );
    let (status, body) = http_post_json(
        &format!("{bank_url}/v1/links"),
        &serde_json::to_value(&request).expect("serializes"),
    );
    assert_eq!(status, 201, "{body}");
}

/// A bank node's admin token, from the file `consentnet-node init` wrote.
pub fn admin_token(node: &NodeDir) -> String {
    std::fs::read_to_string(node.dir.join("admin-token"))
        .expect("init wrote the bank's admin token")
        .trim()
        .to_owned()
}

/// Waits until every node has `peers` connected peers.
pub fn wait_connected(nodes: &[&NodeProcess], peers: u64, deadline: Duration) {
    wait_for(
        &format!("every node to have {peers} peers"),
        deadline,
        || {
            nodes
                .iter()
                .all(|n| n.status()["peers"].as_u64() == Some(peers))
                .then_some(())
        },
    );
}

/// Waits until every node holds `entries` entries and all report one state digest;
/// returns the digest.
pub fn wait_converged(nodes: &[&NodeProcess], entries: u64, deadline: Duration) -> String {
    wait_for(
        &format!("all nodes to hold {entries} entries with one state digest"),
        deadline,
        || {
            let statuses: Vec<serde_json::Value> = nodes.iter().map(|n| n.status()).collect();
            let digests: std::collections::HashSet<&str> = statuses
                .iter()
                .filter_map(|s| s["state_digest"].as_str())
                .collect();
            let all_there = statuses
                .iter()
                .all(|s| s["log_entries"].as_u64() == Some(entries));
            (all_there && digests.len() == 1)
                .then(|| digests.into_iter().next().unwrap_or_default().to_owned())
        },
    )
}
