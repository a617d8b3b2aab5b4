//! `consentnet demo`: starts a six-member consortium of real node processes on this machine and runs the whole journey against it, narrating each step and recording its outcome.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use chrono::{Days, Utc};
use consentnet_consent_chain::event::{AppAction, AppManifest, Platform};
use consentnet_identity::Permission;
use serde_json::{Value, json};

use crate::commands::{self, GrantRequest, WalletFile};
use crate::node_api::{NodeApiError, NodeClient};
use crate::tsp::{Booked, TspClient, decimal};

/// The passphrase of the demo nodes' keys: a demo value, never for real use.
const NODE_PASSPHRASE: &str = "demo node passphrase, not for production";
/// The passphrase of the demo wallets: a demo value, never for real use.
const WALLET_PASSPHRASE: &str = "demo wallet passphrase, not for production";
/// The bank-core mapping files the demo plugs in, as shipped in `bank-adapter/mappings`.
const BERLIN_MAPPING: &str = include_str!("../../bank-adapter/mappings/berlin-group.toml");
const LEGACY_MAPPING: &str = include_str!("../../bank-adapter/mappings/legacy-core.toml");
/// How long the demo waits for any one thing to happen before it calls the step failed.
const DEADLINE: Duration = Duration::from_secs(30);
/// The client whose accounts the journey uses (every seeded bank has her).
const CLIENT_NAME: &str = "Amelia Hart";
/// How far back the affordability summary looks.
const WINDOW_DAYS: u64 = 90;

/// What `consentnet demo` was asked to do.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where the binaries `consentnet-node` and `consentnet-bankcore` are.
    pub bin_dir: PathBuf,
    /// Where the members' folders go; a fresh temp folder when `None`.
    pub work_dir: Option<PathBuf>,
    /// Leave the consortium running at the end.
    pub keep: bool,
    /// Narrate to stderr instead of stdout (stdout is for the JSON summary).
    pub quiet_stdout: bool,
}

/// One step's outcome.
#[derive(Debug, Clone)]
struct Step {
    name: &'static str,
    ok: bool,
    millis: u128,
    detail: Value,
}

/// The members: index, name and role.
const MEMBERS: [(&str, &str); 6] = [
    ("Sandbox Bank", "bank"),
    ("Berlin Bank", "bank"),
    ("Legacy Bank", "bank"),
    ("Lendwise", "tsp"),
    ("Budget Buddy", "tsp"),
    ("Financial Conduct Regulator", "regulator"),
];
const BANKS: [usize; 3] = [0, 1, 2];
const LENDWISE: usize = 3;
const BUDGET_BUDDY: usize = 4;
const REGULATOR: usize = 5;

/// A running member.
struct Member {
    name: &'static str,
    role: &'static str,
    dir: PathBuf,
    did: String,
    http: String,
    p2p: String,
    node: NodeClient,
}

/// Child processes: stopped when the demo ends, unless they are to be kept.
struct Processes {
    children: Vec<(String, Child)>,
    keep: bool,
}

impl Processes {
    fn spawn(&mut self, name: &str, command: &mut Command) -> anyhow::Result<u32> {
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let pid = child.id();
        self.children.push((name.to_owned(), child));
        Ok(pid)
    }

    /// Is `name` still running?
    fn running(&mut self, name: &str) -> bool {
        self.children
            .iter_mut()
            .find(|(n, _)| n == name)
            .is_some_and(|(_, child)| matches!(child.try_wait(), Ok(None)))
    }

    /// SIGTERM to each, then waits; returns the names that did not exit with code 0.
    fn stop_all(&mut self) -> Vec<String> {
        for (_, child) in &self.children {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let started = Instant::now();
        let mut unclean = Vec::new();
        for (name, child) in self.children.drain(..).collect::<Vec<_>>().iter_mut() {
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        // Bank cores are plain servers and end on the signal itself.
                        if !status.success() && !name.starts_with("core") {
                            unclean.push(format!("{name} ({status})"));
                        }
                        break;
                    }
                    Ok(None) if started.elapsed() < DEADLINE => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        unclean.push(format!("{name} (killed after {DEADLINE:?})"));
                        break;
                    }
                }
            }
        }
        unclean
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        if !self.keep {
            for (_, child) in &mut self.children {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Polls `check` until it returns `Some`, or fails naming `what` after [`DEADLINE`].
fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return Ok(value);
        }
        if started.elapsed() > DEADLINE {
            bail!("{what} did not happen within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The demo's narration and its record of steps.
struct Journey {
    options: DemoOptions,
    steps: Vec<Step>,
}

impl Journey {
    fn say(&self, line: &str) {
        if self.options.quiet_stdout {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }

    /// Runs one numbered step, recording its outcome; the first failure ends the journey.
    fn step(
        &mut self,
        name: &'static str,
        title: &str,
        body: impl FnOnce(&Journey) -> anyhow::Result<Value>,
    ) -> anyhow::Result<Value> {
        self.say(&format!("{}. {title}", self.steps.len() + 1));
        let started = Instant::now();
        let outcome = body(self);
        let millis = started.elapsed().as_millis();
        let (ok, detail) = match &outcome {
            Ok(detail) => (true, detail.clone()),
            Err(error) => (false, json!({ "error": format!("{error:#}") })),
        };
        self.steps.push(Step {
            name,
            ok,
            millis,
            detail,
        });
        outcome.with_context(|| format!("step {name} failed"))
    }
}

/// Runs the demo. Returns the machine-readable summary; `ok` in it says whether every
/// step passed (the error of a failed step is in its `detail`).
pub fn run(options: DemoOptions) -> Value {
    let mut journey = Journey {
        options: options.clone(),
        steps: Vec::new(),
    };
    let mut processes = Processes {
        children: Vec::new(),
        keep: options.keep,
    };
    let work = match prepare_work_dir(options.work_dir.as_deref()) {
        Ok(work) => work,
        Err(error) => {
            return json!({ "ok": false, "error": format!("{error:#}"), "steps": [] });
        }
    };
    let outcome = journey_steps(&mut journey, &mut processes, &work);
    let steps: Vec<Value> = journey
        .steps
        .iter()
        .map(|s| json!({ "step": s.name, "ok": s.ok, "ms": s.millis as u64, "detail": s.detail }))
        .collect();
    let mut summary = json!({
        "ok": outcome.is_ok(),
        "work_dir": work,
        "steps": steps,
    });
    match outcome {
        Ok(extra) => {
            if let (Some(summary), Some(extra)) = (summary.as_object_mut(), extra.as_object()) {
                summary.extend(extra.clone());
            }
        }
        Err(error) => summary["error"] = json!(format!("{error:#}")),
    }
    if !options.keep || summary["ok"] != true {
        drop(processes);
        if options.work_dir.is_none() {
            let _ = std::fs::remove_dir_all(&work);
        }
    } else {
        // Kept: the processes outlive this command.
        processes.children.clear();
    }
    summary
}

fn prepare_work_dir(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = match given {
        Some(dir) => dir.to_path_buf(),
        None => std::env::temp_dir().join(format!(
            "consentnet-demo-{}-{}",
            std::process::id(),
            Utc::now().timestamp_millis()
        )),
    };
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!("--work-dir {} is not empty", dir.display());
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

fn binary(options: &DemoOptions, name: &str) -> anyhow::Result<PathBuf> {
    let path = options.bin_dir.join(name);
    ensure!(
        path.is_file(),
        "{} is missing: build the binaries first (cargo build --bins), or give --bin-dir",
        path.display()
    );
    Ok(path)
}

/// Waits for a process's `"event":"listening"` line in `out`; returns it.
fn listening_line(
    processes: &mut Processes,
    name: &str,
    out: &Path,
    log: &Path,
) -> anyhow::Result<Value> {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(out).unwrap_or_default();
        if let Some(line) = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["event"] == "listening")
        {
            return Ok(line);
        }
        if !processes.running(name) {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            bail!(
                "{name} exited before listening: {}",
                log.lines().last().unwrap_or("")
            );
        }
        ensure!(
            started.elapsed() < DEADLINE,
            "{name} did not report its address within {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn journey_steps(
    journey: &mut Journey,
    processes: &mut Processes,
    work: &Path,
) -> anyhow::Result<Value> {
    let node_bin = binary(&journey.options, "consentnet-node")?;
    let core_bin = binary(&journey.options, "consentnet-bankcore")?;
    journey.say(
        "Six consortium members, each running its own consentnet node as a separate process:\n\
         three banks, two fintechs (TSPs) and a regulator. The Berlin Bank and the Legacy Bank\n\
         run cores with their own APIs; their nodes map them onto the same unified Open\n\
         Banking API at run time.\n",
    );

    journey.step(
        "create_members",
        "creating six members: an encrypted node key, a config and a shared genesis each",
        |_| {
            for (i, (name, role)) in MEMBERS.iter().enumerate() {
                let dir = work.join(format!("node{i}"));
                let output = Command::new(&node_bin)
                    .arg("init")
                    .arg(&dir)
                    .args(["--role", role, "--name", name])
                    .args(["--http", "127.0.0.1:0", "--p2p", "/ip4/127.0.0.1/tcp/0"])
                    .env("CONSENTNET_NODE_PASSPHRASE", NODE_PASSPHRASE)
                    .output()
                    .context("running consentnet-node init")?;
                ensure!(
                    output.status.success(),
                    "consentnet-node init {name}: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
                // Every member serves the portal pages; banks also run OAuth for TSPs.
                let config = dir.join("node.toml");
                let text = std::fs::read_to_string(&config)
                    .with_context(|| format!("reading {}", config.display()))?;
                std::fs::write(&config, text.replace("enabled = false", "enabled = true"))
                    .with_context(|| format!("writing {}", config.display()))?;
            }
            for i in 0..MEMBERS.len() {
                let output = Command::new(&node_bin)
                    .args(["genesis", "--network", "demo", "--out"])
                    .arg(work.join(format!("node{i}/genesis.json")))
                    .args((0..MEMBERS.len()).map(|m| work.join(format!("node{m}/member.json"))))
                    .output()
                    .context("running consentnet-node genesis")?;
                ensure!(
                    output.status.success(),
                    "consentnet-node genesis: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
            Ok(json!({ "members": MEMBERS.len() }))
        },
    )?;

    let mut members: Vec<Member> = Vec::new();
    let started = journey.step(
        "start_nodes",
        "starting the six nodes; each dials the ones already running over libp2p",
        |_| {
            for (i, (name, role)) in MEMBERS.iter().enumerate() {
                let dir = work.join(format!("node{i}"));
                let out = dir.join("node.out");
                let log = dir.join("node.log");
                let mut command = Command::new(&node_bin);
                command
                    .arg("run")
                    .arg("--config")
                    .arg(dir.join("node.toml"))
                    .env("CONSENTNET_NODE_PASSPHRASE", NODE_PASSPHRASE)
                    .stdout(File::create(&out)?)
                    .stderr(File::create(&log)?);
                for earlier in &members {
                    command.args(["--bootstrap", &earlier.p2p]);
                }
                let label = format!("node{i}");
                processes.spawn(&label, &mut command)?;
                let line = listening_line(processes, &label, &out, &log)?;
                let http = format!(
                    "http://{}",
                    line["http"].as_str().ok_or_else(|| anyhow!("no http address"))?
                );
                let p2p = line["p2p"][0]
                    .as_str()
                    .ok_or_else(|| anyhow!("no libp2p address"))?
                    .to_owned();
                let member: Value =
                    serde_json::from_str(&std::fs::read_to_string(dir.join("member.json"))?)?;
                members.push(Member {
                    name,
                    role,
                    dir,
                    did: member["did"]
                        .as_str()
                        .ok_or_else(|| anyhow!("member.json names no DID"))?
                        .to_owned(),
                    node: NodeClient::new(&http)?,
                    http,
                    p2p,
                });
            }
            let everyone = MEMBERS.len() - 1;
            wait_for("every node connecting to the five others", || {
                members
                    .iter()
                    .all(|m| m.node.status().is_ok_and(|s| s.peers >= everyone))
                    .then_some(())
            })?;
            Ok(json!({
                "nodes": members
                    .iter()
                    .map(|m| json!({ "name": m.name, "role": m.role, "http": m.http, "did": m.did }))
                    .collect::<Vec<_>>()
            }))
        },
    )?;
    for member in &members {
        journey.say(&format!(
            "   {:<28} {:<9} {}",
            member.name, member.role, member.http
        ));
    }

    journey.step(
        "plug_in_cores",
        "plugging the Berlin Group-style and legacy cores in at run time (a mapping file dropped into each bank's connectors folder)",
        |j| {
            let mut plugged = Vec::new();
            for (bank, style, mapping, text) in [
                (1usize, "berlin", "berlin-group", BERLIN_MAPPING),
                (2, "legacy", "legacy-core", LEGACY_MAPPING),
            ] {
                let label = format!("core{bank}");
                let out = work.join(format!("{label}.out"));
                let log = work.join(format!("{label}.log"));
                processes.spawn(
                    &label,
                    Command::new(&core_bin)
                        .args(["--style", style, "--seed", &(bank + 1).to_string()])
                        .stdout(File::create(&out)?)
                        .stderr(File::create(&log)?),
                )?;
                let line = listening_line(processes, &label, &out, &log)?;
                let core = format!(
                    "http://{}",
                    line["http"].as_str().ok_or_else(|| anyhow!("no core address"))?
                );
                let file = text
                    .lines()
                    .map(|l| {
                        if l.starts_with("base_url = ") {
                            format!("base_url = \"{core}\"")
                        } else {
                            l.to_owned()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                let connectors = members[bank].dir.join("connectors");
                std::fs::create_dir_all(&connectors)?;
                // Written aside, then renamed: the watcher never reads half a file.
                std::fs::write(connectors.join(".core.toml.part"), file)?;
                std::fs::rename(
                    connectors.join(".core.toml.part"),
                    connectors.join("core.toml"),
                )?;
                wait_for(&format!("{} putting {mapping} in service", members[bank].name), || {
                    members[bank]
                        .node
                        .status()
                        .ok()
                        .filter(|s| s.connector.as_deref() == Some(mapping))
                })?;
                j.say(&format!(
                    "   {}: {style}-style core at {core}, mapped by bank-adapter/mappings/{mapping}.toml",
                    members[bank].name
                ));
                plugged.push(json!({ "bank": members[bank].name, "core": core, "connector": mapping }));
            }
            Ok(json!({ "cores": plugged }))
        },
    )?;

    let lendwise_wallet = WalletFile::new(work.join("lendwise.wallet"), WALLET_PASSPHRASE);
    let buddy_wallet = WalletFile::new(work.join("budget-buddy.wallet"), WALLET_PASSPHRASE);
    let client_wallet = WalletFile::new(work.join("client.wallet"), WALLET_PASSPHRASE);
    let credit_permissions: Vec<Permission> = vec![
        Permission::ReadAccountsBasic,
        Permission::ReadBalances,
        Permission::ReadTransactionsDetail,
        Permission::ReadTransactionsCredits,
        Permission::ReadTransactionsDebits,
    ];
    let budget_permissions = vec![Permission::ReadAccountsBasic, Permission::ReadBalances];

    let (lendwise_key, buddy_key) = journey.step(
        "publish_apps",
        "the fintechs publish their apps, signed by each app's DID; every bank approves them with the operations it allows",
        |j| {
            let mut keys = Vec::new();
            for (wallet, member, name, description, permissions) in [
                (
                    &lendwise_wallet,
                    LENDWISE,
                    "Lendwise Credit Check",
                    "Checks what a loan applicant can afford from their bank data",
                    &credit_permissions,
                ),
                (
                    &buddy_wallet,
                    BUDGET_BUDDY,
                    "Budget Buddy",
                    "Shows where the money goes",
                    &budget_permissions,
                ),
            ] {
                wallet.create()?;
                wallet.new_did("app")?;
                let key = wallet.key("app")?;
                let manifest = AppManifest {
                    app: key.did().clone(),
                    name: name.into(),
                    description: description.into(),
                    version: "1.0.0".into(),
                    platform: Platform::Web,
                    redirect_uris: vec![],
                    requested_permissions: permissions.iter().copied().collect(),
                    bundle_hash: "ab".repeat(32),
                };
                members[member]
                    .node
                    .post("/v1/apps", &commands::app_manifest(&key, manifest)?)?;
                for &bank in &BANKS {
                    let bank_key = commands::node_key(
                        &members[bank].dir.join("node-key.json"),
                        NODE_PASSPHRASE,
                    )?;
                    let body = commands::app_decision(
                        &bank_key,
                        key.did().clone(),
                        "1.0.0",
                        AppAction::Approve {
                            permissions: permissions.iter().copied().collect(),
                        },
                    )?;
                    members[bank].node.post("/v1/apps/decisions", &body)?;
                }
                j.say(&format!(
                    "   {name} 1.0.0 by {}: {}; approved by the three banks",
                    members[member].name,
                    permission_names(permissions)
                ));
                keys.push(key);
            }
            let catalog = wait_for("the regulator's copy of every bank's catalog listing both apps", || {
                let sizes: Vec<usize> = BANKS
                    .iter()
                    .filter_map(|&bank| {
                        let path = format!("/v1/catalog?bank={}", members[bank].did);
                        let catalog = members[REGULATOR].node.get_with(&path, &[]).ok()?;
                        catalog["apps"].as_array().map(Vec::len)
                    })
                    .collect();
                (sizes.len() == BANKS.len() && sizes.iter().all(|&n| n >= 2)).then_some(sizes)
            })?;
            Ok(json!({ "apps": keys.iter().map(|k| k.did().to_string()).collect::<Vec<_>>(), "catalog_sizes": catalog }))
        },
    )
    .and_then(|_| Ok((lendwise_wallet.key("app")?, buddy_wallet.key("app")?)))?;

    let accounts = journey.step(
        "link_accounts",
        &format!("{CLIENT_NAME} banks at all three. Each bank's own app gives her a one-time link code; her wallet links a new DID per bank with it, and the bank answers with opaque references to her accounts"),
        |j| {
            client_wallet.create()?;
            let mut accounts = Vec::new();
            for &bank in &BANKS {
                // The bank's own channel knows its customer's accounts; the simulator's
                // listing stands in for it.
                let output = Command::new(&core_bin)
                    .args(["--list-accounts", "--seed", &(bank + 1).to_string()])
                    .output()?;
                let held: Vec<String> = String::from_utf8_lossy(&output.stdout)
                    .lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .filter(|a| a["holder"] == CLIENT_NAME)
                    .filter_map(|a| a["account"].as_str().map(str::to_owned))
                    .collect();
                let token = commands::admin_token(&members[bank].dir.join("admin-token"))?;
                let code = commands::link_code(&members[bank].node, &token, CLIENT_NAME, &held)?;
                let code = code["code"].as_str().ok_or_else(|| anyhow!("no link code"))?;
                let label = format!("at {}", members[bank].name);
                client_wallet.new_did(&label)?;
                let linked = commands::link(&members[bank].node, &client_wallet.key(&label)?, code)?;
                let current = linked["accounts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|a| a["account_sub_type"] == "CurrentAccount" && a["currency"] == "GBP")
                    .and_then(|a| a["account_id"].as_str().map(str::to_owned))
                    .ok_or_else(|| anyhow!("{} linked no GBP current account", members[bank].name))?;
                j.say(&format!(
                    "   {}: {} accounts linked; GBP current account {current}",
                    members[bank].name,
                    linked["accounts"].as_array().map_or(0, Vec::len)
                ));
                accounts.push(current);
            }
            Ok(json!(accounts))
        },
    )?;
    let accounts: Vec<String> = serde_json::from_value(accounts)?;

    let until = Utc::now()
        .date_naive()
        .checked_add_days(Days::new(365))
        .ok_or_else(|| anyhow!("no date a year from now"))?;
    let consents = journey.step(
        "grant_consents",
        "with the DID linked at each bank, her wallet signs a consent for Lendwise there, and one for Budget Buddy at the Sandbox Bank; they go on the log through the fintechs' nodes",
        |j| {
            let mut consents = Vec::new();
            for (i, &bank) in BANKS.iter().enumerate() {
                let label = format!("at {}", members[bank].name);
                let request = GrantRequest {
                    bank: consentnet_identity::Did::parse(&members[bank].did)?,
                    app: lendwise_key.did().clone(),
                    accounts: vec![accounts[i].clone()],
                    permissions: credit_permissions.iter().copied().collect(),
                    purpose: "Loan affordability check".into(),
                    until,
                };
                let granted = commands::consent_grant(&members[LENDWISE].node, &client_wallet, &label, &request)?;
                let id = granted["consent_id"].as_str().ok_or_else(|| anyhow!("no consent id"))?.to_owned();
                j.say(&format!("   Lendwise at {}: consent {}... until {until}", members[bank].name, &id[..16]));
                consents.push(id);
            }
            let label = "at Sandbox Bank";
            let request = GrantRequest {
                bank: consentnet_identity::Did::parse(&members[0].did)?,
                app: buddy_key.did().clone(),
                accounts: vec![accounts[0].clone()],
                permissions: budget_permissions.iter().copied().collect(),
                purpose: "Budgeting".into(),
                until,
            };
            let granted = commands::consent_grant(&members[BUDGET_BUDDY].node, &client_wallet, label, &request)?;
            let id = granted["consent_id"].as_str().ok_or_else(|| anyhow!("no consent id"))?.to_owned();
            j.say(&format!("   Budget Buddy at Sandbox Bank: consent {}... until {until}", &id[..16]));
            consents.push(id);
            Ok(json!(consents))
        },
    )?;
    let consents: Vec<String> = serde_json::from_value(consents)?;

    let lendwise_at =
        |bank: usize| TspClient::new(members[bank].node.clone(), lendwise_key.clone(), "1.0.0");
    let from = Utc::now() - chrono::Duration::days(WINDOW_DAYS as i64);
    let summary = journey.step(
        "affordability",
        &format!("Lendwise pulls accounts, balances and {WINDOW_DAYS} days of transactions from all three banks through the one unified API"),
        |j| {
            let mut per_bank = Vec::new();
            let mut combined = Flows::default();
            for (i, &bank) in BANKS.iter().enumerate() {
                let api = lendwise_at(bank);
                // The consent reaches the bank by gossip; the first call may come first.
                let listed = wait_for(&format!("{} serving the consent", members[bank].name), || {
                    api.accounts(&consents[i]).ok()
                })?;
                let balance = api.balance(&consents[i], &accounts[i])?;
                let booked = api.transactions(&consents[i], &accounts[i], from)?;
                let flows = Flows::of(balance.minor, &booked);
                combined.add(&flows);
                j.say(&format!(
                    "   {:<13} {} account(s), {} transactions: {}",
                    members[bank].name,
                    listed.len(),
                    booked.len(),
                    flows.describe()
                ));
                per_bank.push(json!({ "bank": members[bank].name, "accounts": listed.len(), "transactions": booked.len(), "summary": flows.json() }));
            }
            j.say(&format!("   {:<13} {}", "combined", combined.describe()));
            j.say(&format!(
                "   a monthly repayment of up to {} GBP leaves half the surplus spare",
                decimal((combined.monthly(combined.income - combined.spending) / 2).max(0))
            ));
            Ok(json!({ "currency": "GBP", "window_days": WINDOW_DAYS, "banks": per_bank, "combined": combined.json() }))
        },
    )?;

    let buddy = journey.step(
        "second_app",
        "Budget Buddy, from the other fintech, reads the Sandbox Bank balance under its own consent",
        |j| {
            let api = TspClient::new(members[0].node.clone(), buddy_key.clone(), "1.0.0");
            let balance = wait_for("the Sandbox Bank serving Budget Buddy", || {
                api.balance(&consents[3], &accounts[0]).ok()
            })?;
            // Its consent does not reach transactions: the bank refuses.
            let refused = api
                .get(&format!("/aisp/accounts/{}/transactions", accounts[0]), &consents[3])
                .err()
                .and_then(|e| refusal_code(&e))
                .ok_or_else(|| anyhow!("Budget Buddy read transactions without the permission"))?;
            j.say(&format!(
                "   balance {} {}; transactions refused ({refused}): not in its consent",
                decimal(balance.minor),
                balance.currency
            ));
            Ok(json!({ "balance": decimal(balance.minor), "currency": balance.currency, "transactions_refused": refused }))
        },
    )?;
    let _ = buddy;

    let revocation = journey.step(
        "revoke",
        "the client revokes Lendwise's consent at the Berlin Bank, from the regulator's node; the next call there is refused",
        |j| {
            let api = lendwise_at(1);
            let started = Instant::now();
            commands::consent_revoke(&members[REGULATOR].node, &client_wallet, &consents[1])?;
            let acknowledged = started.elapsed();
            let code = loop {
                match api.balance(&consents[1], &accounts[1]) {
                    Err(crate::tsp::TspError::Bank(error)) if refusal_code(&error).is_some() => {
                        break refusal_code(&error).unwrap_or_default();
                    }
                    _ if started.elapsed() > DEADLINE => {
                        bail!("the Berlin Bank still served the revoked consent after {DEADLINE:?}")
                    }
                    _ => std::thread::sleep(Duration::from_millis(5)),
                }
            };
            let propagation = started.elapsed();
            ensure!(code == "consent_revoked", "the Berlin Bank refused with {code}, not consent_revoked");
            let still: Vec<String> = [0usize, 2]
                .iter()
                .map(|&bank| {
                    lendwise_at(bank)
                        .balance(&consents[bank], &accounts[bank])
                        .map(|b| format!("{} {} {}", members[bank].name, decimal(b.minor), b.currency))
                })
                .collect::<Result<_, _>>()?;
            j.say(&format!(
                "   revoked at the regulator's node (durable in {} ms); the Berlin Bank refused with {code} {} ms after the revocation was sent",
                acknowledged.as_millis(),
                propagation.as_millis()
            ));
            j.say(&format!("   still served: {}", still.join(", ")));
            Ok(json!({
                "refused_with": code,
                "acknowledged_ms": acknowledged.as_secs_f64() * 1e3,
                "propagation_ms": propagation.as_secs_f64() * 1e3,
                "still_served": still,
            }))
        },
    )?;

    journey.step(
        "replicate",
        "every node holds the same log, the banks' signed access records included",
        |j| {
            let (entries, digest) = wait_for("all six nodes agreeing on the log", || {
                let statuses: Vec<_> = members
                    .iter()
                    .filter_map(|m| m.node.status().ok())
                    .collect();
                let first = statuses.first()?;
                // Two apps, six decisions, four consents, one revocation, access records.
                (statuses.len() == members.len()
                    && first.log_entries >= 14
                    && statuses.iter().all(|s| {
                        s.state_digest == first.state_digest && s.log_entries == first.log_entries
                    }))
                .then(|| (first.log_entries, first.state_digest.clone()))
            })?;
            j.say(&format!(
                "   {entries} entries on each of the six nodes, state digest {}...",
                &digest[..16]
            ));
            Ok(json!({ "entries": entries, "state_digest": digest }))
        },
    )?;

    let audit = journey.step(
        "audit",
        "the regulator audits the whole log: every signature, hash link and credential, and every access a bank served against the consent's state at that moment",
        |j| {
            let report = members[REGULATOR].node.get_with("/v1/audit", &[])?;
            j.say(&format!("   {}", report["summary"].as_str().unwrap_or("no summary")));
            let page = work.join("audit.html");
            std::fs::write(&page, crate::audit::html(&report, "the regulator's node"))?;
            if j.options.keep {
                j.say(&format!("   the report for people, with charts: {}", page.display()));
            }
            ensure!(report["clean"] == true, "the audit found problems");
            Ok(json!({
                "clean": true,
                "entries": report["entries"],
                "consents": report["consents"],
                "revoked": report["revoked"],
                "accesses": report["accesses"],
                "violations": report["violations"].as_array().map_or(0, Vec::len),
                "report": page,
            }))
        },
    )?;

    let nodes = started["nodes"].clone();
    if journey.options.keep {
        let pids: Vec<String> = processes
            .children
            .iter()
            .map(|(_, c)| c.id().to_string())
            .collect();
        std::fs::write(work.join("pids"), pids.join(" ") + "\n")?;
        let portals: Vec<String> = nodes
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|node| {
                let url = node["http"].as_str()?;
                match node["role"].as_str()? {
                    "bank" => Some(format!(
                        "  {}: {url}/portal (consents, catalog), {url}/portal/bank (admin), OAuth at {url}/.well-known/oauth-authorization-server",
                        node["name"].as_str().unwrap_or_default()
                    )),
                    "regulator" => Some(format!("  regulator: {url}/portal/regulator")),
                    _ => None,
                }
            })
            .collect();
        journey.say(&format!(
            "\nThe portal pages:\n{}\nThe consortium keeps running (--keep). Stop it with: kill $(cat {})",
            portals.join("\n"),
            work.join("pids").display()
        ));
    } else {
        journey.step("stop", "stopping the nodes and the bank cores", |j| {
            let unclean = processes.stop_all();
            ensure!(
                unclean.is_empty(),
                "did not stop cleanly: {}",
                unclean.join(", ")
            );
            j.say("   every node flushed its log and stopped cleanly");
            Ok(json!({ "clean": true }))
        })?;
    }
    Ok(json!({
        "nodes": nodes,
        "kept": journey.options.keep,
        "affordability": summary,
        "revocation_propagation_ms": revocation["propagation_ms"],
        "audit": audit,
    }))
}

/// The OBIE error code of a refusal, if the bank refused.
fn refusal_code(error: &NodeApiError) -> Option<String> {
    match error {
        NodeApiError::Refused { code, .. } => Some(code.clone()),
        _ => None,
    }
}

fn permission_names(permissions: &[Permission]) -> String {
    permissions
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Money in and out over the window, and the balance at both ends (minor units).
#[derive(Debug, Default, Clone, Copy)]
struct Flows {
    income: i64,
    spending: i64,
    opening: i64,
    closing: i64,
}

impl Flows {
    fn of(closing: i64, booked: &[Booked]) -> Self {
        let income: i64 = booked.iter().map(|b| b.amount.minor.max(0)).sum();
        let spending: i64 = booked.iter().map(|b| (-b.amount.minor).max(0)).sum();
        Self {
            income,
            spending,
            opening: closing - income + spending,
            closing,
        }
    }

    fn add(&mut self, other: &Flows) {
        self.income += other.income;
        self.spending += other.spending;
        self.opening += other.opening;
        self.closing += other.closing;
    }

    /// A per-month figure from a window total.
    fn monthly(&self, total: i64) -> i64 {
        total * 30 / WINDOW_DAYS as i64
    }

    fn describe(&self) -> String {
        format!(
            "income {}/month, spending {}/month, balance {} -> {} ({})",
            decimal(self.monthly(self.income)),
            decimal(self.monthly(self.spending)),
            decimal(self.opening),
            decimal(self.closing),
            if self.closing >= self.opening {
                "rising"
            } else {
                "falling"
            }
        )
    }

    fn json(&self) -> Value {
        json!({
            "income": decimal(self.income),
            "spending": decimal(self.spending),
            "monthly_income": decimal(self.monthly(self.income)),
            "monthly_spending": decimal(self.monthly(self.spending)),
            "opening_balance": decimal(self.opening),
            "closing_balance": decimal(self.closing),
            "trend": if self.closing >= self.opening { "rising" } else { "falling" },
        })
    }
}
