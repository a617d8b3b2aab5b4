//! `consentnet demo`: starts a six-member consortium of real node processes on this machine and runs the whole journey against it, narrating each step and recording its outcome.

mod audit_step;
mod flows;
pub mod miniapps;
mod oauth_example;
mod outsider_step;
mod processes;
mod steps;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use chrono::{Days, Utc};
use consentnet_identity::Permission;
use serde_json::{Value, json};

use crate::commands::WalletFile;
use crate::node_api::NodeClient;
use processes::Processes;
use steps::{AppKeys, Apps};

/// The passphrase of the demo nodes' keys: a demo value, never for real use.
const NODE_PASSPHRASE: &str = "demo node passphrase, not for production";
/// The passphrase of the demo wallets: a demo value, never for real use.
const WALLET_PASSPHRASE: &str = "demo wallet passphrase, not for production";
/// The bank-core mapping files the demo plugs in, as shipped in `bank-adapter/mappings`.
const BERLIN_MAPPING: &str = include_str!("../../../bank-adapter/mappings/berlin-group.toml");
const LEGACY_MAPPING: &str = include_str!("../../../bank-adapter/mappings/legacy-core.toml");
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
    operator_url: String,
    p2p: String,
    node: NodeClient,
    operator: NodeClient,
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

/// Runs every step in order; the first failure ends the journey.
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
        |_| steps::create_members(&node_bin, work),
    )?;
    let mut members: Vec<Member> = Vec::new();
    let started = journey.step(
        "start_nodes",
        "starting the six nodes; each dials the ones already running over libp2p",
        |_| steps::start_nodes(processes, &node_bin, work, &mut members),
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
        |j| steps::plug_in_cores(j, processes, &core_bin, work, &members),
    )?;
    let apps = Apps {
        lendwise_wallet: WalletFile::new(work.join("lendwise.wallet"), WALLET_PASSPHRASE),
        buddy_wallet: WalletFile::new(work.join("budget-buddy.wallet"), WALLET_PASSPHRASE),
        cardwise_wallet: WalletFile::new(work.join("cardwise.wallet"), WALLET_PASSPHRASE),
        credit_permissions: vec![
            Permission::ReadAccountsBasic,
            Permission::ReadBalances,
            Permission::ReadTransactionsDetail,
            Permission::ReadTransactionsCredits,
            Permission::ReadTransactionsDebits,
        ],
        budget_permissions: vec![Permission::ReadAccountsBasic, Permission::ReadBalances],
        invest_permissions: vec![
            Permission::ReadAccountsBasic,
            Permission::ReadBalances,
            Permission::CreateDomesticPayments,
        ],
    };
    let client_wallet = WalletFile::new(work.join("client.wallet"), WALLET_PASSPHRASE);
    let published = journey.step(
        "publish_apps",
        "the fintechs publish their apps as mini-apps, each bundle's files by hash, signed by each app's DID; every bank fetches the files and approves them with the operations it allows",
        |j| steps::publish_apps(j, &members, &apps),
    )?;
    let mini_apps: Vec<(String, String)> = serde_json::from_value(published["mini_apps"].clone())?;
    let keys = AppKeys {
        lendwise_key: apps.lendwise_wallet.key("app")?,
        buddy_key: apps.buddy_wallet.key("app")?,
    };
    let accounts = journey.step(
        "link_accounts",
        &format!("{CLIENT_NAME} banks at all three. Each bank's own app gives her a one-time link code; her wallet links a new DID per bank with it, and the bank answers with opaque references to her accounts"),
        |j| steps::link_accounts(j, &core_bin, &members, &client_wallet),
    )?;
    let accounts: Vec<String> = serde_json::from_value(accounts)?;
    let until = Utc::now()
        .date_naive()
        .checked_add_days(Days::new(365))
        .ok_or_else(|| anyhow!("no date a year from now"))?;
    let consents = journey.step(
        "grant_consents",
        "with the DID linked at each bank, her wallet signs a consent for Lendwise there, and one for Budget Buddy at the Sandbox Bank; they go on the log through the fintechs' nodes",
        |j| steps::grant_consents(j, &members, &apps, &keys, &client_wallet, &accounts, until),
    )?;
    let consents: Vec<String> = serde_json::from_value(consents)?;
    let summary = journey.step(
        "affordability",
        &format!("Lendwise pulls accounts, balances and {WINDOW_DAYS} days of transactions from all three banks through the one unified API"),
        |j| steps::affordability(j, &members, &keys, &consents, &accounts),
    )?;
    journey.step(
        "second_app",
        "Budget Buddy, from the other fintech, reads the Sandbox Bank balance under its own consent",
        |j| steps::second_app(j, &members, &keys, &consents, &accounts),
    )?;
    let revocation = journey.step(
        "revoke",
        "the client revokes Lendwise's consent at the Berlin Bank, from the regulator's node; the next call there is refused",
        |j| steps::revoke(j, &members, &keys, &client_wallet, &consents, &accounts),
    )?;
    journey.step(
        "outsider",
        "anyone outside the network checks the revoked consent through the W3C VC-API: its bank answers from its revocation status list, the regulator's node from its log",
        |j| outsider_step::outsider(j, &members, &client_wallet, &consents[1]),
    )?;
    journey.step(
        "replicate",
        "every node holds the same log, the banks' signed commitments to their access records included",
        |j| steps::replicate(j, &members),
    )?;
    let audit = journey.step(
        "audit",
        "the regulator audits the whole log: every entry and event vouched for by its signer's key, every hash link and credential, every bank's access records (fetched from the bank) against its commitments, and every access served against the consent's state at that moment",
        |j| audit_step::audit(j, &members, work),
    )?;
    let nodes = started["nodes"].clone();
    let oauth = oauth_example::values(&nodes, keys.buddy_key.did(), work);
    finish(journey, processes, work, (&nodes, &oauth), &mini_apps)?;
    Ok(json!({
        "nodes": nodes,
        "kept": journey.options.keep,
        "oauth_example": oauth,
        "affordability": summary,
        "revocation_propagation_ms": revocation["propagation_ms"],
        "audit": audit,
    }))
}

/// The end of the journey: with `--keep`, where the portals are and how to stop the
/// consortium; otherwise every process stopped cleanly.
fn finish(
    journey: &mut Journey,
    processes: &mut Processes,
    work: &Path,
    (nodes, oauth): (&Value, &Value),
    mini_apps: &[(String, String)],
) -> anyhow::Result<()> {
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
                let operator = node["operator"].as_str()?;
                match node["role"].as_str()? {
                    "bank" => Some(format!(
                        "  {}: {url}/portal (consents, catalog), {operator}/portal/bank (admin), OAuth at {url}/.well-known/oauth-authorization-server",
                        node["name"].as_str().unwrap_or_default()
                    )),
                    "regulator" => Some(format!("  regulator: {operator}/portal/regulator")),
                    _ => None,
                }
            })
            .collect();
        journey.say(&format!(
            "\nThe portal pages:\n{}\nThe mini-apps in each bank's portal (link a browser key at the bank's /portal/link first):\n{}\nThe consortium keeps running (--keep). Stop it with: kill $(cat {})",
            portals.join("\n"),
            miniapps::portal_urls(nodes, mini_apps).join("\n"),
            work.join("pids").display()
        ));
        journey.say(&oauth_example::text(oauth));
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
    Ok(())
}
