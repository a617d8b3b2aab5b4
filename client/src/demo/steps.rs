//! The demo's steps, one function each: what each does to the consortium, what it narrates, and the detail it records.

use std::fs::File;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use chrono::{NaiveDate, Utc};
use consentnet_consent_chain::event::{AppAction, AppManifest, Platform};
use consentnet_identity::{KeyPair, Permission};
use serde_json::{Value, json};

use super::flows::Flows;
use super::miniapps;
use super::processes::{Processes, listening_line, run_ok, wait_for};
use super::{
    BANKS, BERLIN_MAPPING, BUDGET_BUDDY, CLIENT_NAME, DEADLINE, Journey, LEGACY_MAPPING, LENDWISE,
    MEMBERS, Member, NODE_PASSPHRASE, REGULATOR, WINDOW_DAYS,
};
use crate::commands::{self, GrantRequest, WalletFile};
use crate::node_api::{NodeApiError, NodeClient};
use crate::tsp::{TspClient, decimal};

/// The two fintechs' wallets and what each app asks for.
pub(super) struct Apps {
    pub(super) lendwise_wallet: WalletFile,
    pub(super) buddy_wallet: WalletFile,
    pub(super) cardwise_wallet: WalletFile,
    pub(super) credit_permissions: Vec<Permission>,
    pub(super) budget_permissions: Vec<Permission>,
    /// Budget Buddy's version asks for payments too: its mini-app invests.
    pub(super) invest_permissions: Vec<Permission>,
}

/// The apps' keys, once published.
pub(super) struct AppKeys {
    pub(super) lendwise_key: KeyPair,
    pub(super) buddy_key: KeyPair,
}

/// Lendwise's client for one bank's unified API.
fn lendwise_at(members: &[Member], keys: &AppKeys, bank: usize) -> TspClient {
    TspClient::new(
        members[bank].node.clone(),
        keys.lendwise_key.clone(),
        "1.0.0",
    )
}

/// The HTTP base URL a process's listening line names for `listener` (`http`, `operator`).
fn listener_url(line: &Value, listener: &str, what: &str) -> anyhow::Result<String> {
    let address = line[listener]
        .as_str()
        .ok_or_else(|| anyhow!("the {what} reported no {listener} address"))?;
    Ok(format!("http://{address}"))
}

/// The public HTTP base URL a process's listening line names.
fn http_url(line: &Value, what: &str) -> anyhow::Result<String> {
    listener_url(line, "http", what)
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

/// The demo consortium's throw-away CA: it signs every node's certificate, and the
/// demo's clients trust it (as `consentnet --ca-file` or `CONSENTNET_CA_FILE` would).
pub(super) fn ca_file(work: &Path) -> std::path::PathBuf {
    work.join("ca").join("ca.pem")
}

/// Creates six members: an encrypted node key, a certificate from the demo's CA, a
/// config and a shared genesis each.
pub(super) fn create_members(node_bin: &Path, work: &Path) -> anyhow::Result<Value> {
    run_ok(
        Command::new(node_bin).arg("tls-ca").arg(work.join("ca")),
        "consentnet-node tls-ca",
    )?;
    for (i, (name, role)) in MEMBERS.iter().enumerate() {
        let dir = work.join(format!("node{i}"));
        run_ok(
            Command::new(node_bin)
                .arg("init")
                .arg(&dir)
                .args(["--role", role, "--name", name])
                .args(["--http", "127.0.0.1:0", "--operator", "127.0.0.1:0"])
                .args(["--p2p", "/ip4/127.0.0.1/tcp/0"])
                .arg("--tls-ca")
                .arg(work.join("ca"))
                .env("CONSENTNET_NODE_PASSPHRASE", NODE_PASSPHRASE),
            &format!("consentnet-node init {name}"),
        )?;
        // Every member serves the portal pages; banks also run OAuth for TSPs.
        let config = dir.join("node.toml");
        let text = std::fs::read_to_string(&config)
            .with_context(|| format!("reading {}", config.display()))?;
        std::fs::write(&config, text.replace("enabled = false", "enabled = true"))
            .with_context(|| format!("writing {}", config.display()))?;
    }
    for i in 0..MEMBERS.len() {
        run_ok(
            Command::new(node_bin)
                .args(["genesis", "--network", "demo", "--out"])
                .arg(work.join(format!("node{i}/genesis.json")))
                .args((0..MEMBERS.len()).map(|m| work.join(format!("node{m}/member.json")))),
            "consentnet-node genesis",
        )?;
    }
    Ok(json!({ "members": MEMBERS.len() }))
}

/// Starts the six nodes; each dials the ones already running.
pub(super) fn start_nodes(
    processes: &mut Processes,
    node_bin: &Path,
    work: &Path,
    members: &mut Vec<Member>,
) -> anyhow::Result<Value> {
    for (i, (name, role)) in MEMBERS.iter().enumerate() {
        let dir = work.join(format!("node{i}"));
        let out = dir.join("node.out");
        let log = dir.join("node.log");
        let mut command = Command::new(node_bin);
        command
            .arg("run")
            .arg("--config")
            .arg(dir.join("node.toml"))
            .env("CONSENTNET_NODE_PASSPHRASE", NODE_PASSPHRASE)
            .stdout(File::create(&out)?)
            .stderr(File::create(&log)?);
        for earlier in members.iter() {
            command.args(["--bootstrap", &earlier.p2p]);
        }
        let label = format!("node{i}");
        processes.spawn(&label, &mut command)?;
        let line = listening_line(processes, &label, &out, &log)?;
        let http = line["url"]
            .as_str()
            .ok_or_else(|| anyhow!("node{i} reported no public URL"))?
            .to_owned();
        let operator_url = listener_url(&line, "operator", "node")?;
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
            node: NodeClient::trusting(&http, &ca_file(work))?,
            operator: NodeClient::new(&operator_url)?,
            http,
            operator_url,
            p2p,
        });
    }
    let everyone = MEMBERS.len() - 1;
    wait_for("every node connecting to the five others", || {
        members
            .iter()
            .all(|m| m.operator.status().is_ok_and(|s| s.peers >= everyone))
            .then_some(())
    })?;
    Ok(json!({
        "nodes": members
            .iter()
            .map(|m| json!({ "name": m.name, "role": m.role, "http": m.http, "operator": m.operator_url, "did": m.did }))
            .collect::<Vec<_>>()
    }))
}

/// Plugs the Berlin Group-style and legacy cores in at run time, by mapping file.
pub(super) fn plug_in_cores(
    j: &Journey,
    processes: &mut Processes,
    core_bin: &Path,
    work: &Path,
    members: &[Member],
) -> anyhow::Result<Value> {
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
            Command::new(core_bin)
                .args(["--style", style, "--seed", &(bank + 1).to_string()])
                .stdout(File::create(&out)?)
                .stderr(File::create(&log)?),
        )?;
        let line = listening_line(processes, &label, &out, &log)?;
        let core = http_url(&line, "bank core")?;
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
        wait_for(
            &format!("{} putting {mapping} in service", members[bank].name),
            || {
                members[bank]
                    .operator
                    .status()
                    .ok()
                    .filter(|s| s.connector.as_deref() == Some(mapping))
            },
        )?;
        j.say(&format!(
            "   {}: {style}-style core at {core}, mapped by bank-adapter/mappings/{mapping}.toml",
            members[bank].name
        ));
        plugged.push(json!({ "bank": members[bank].name, "core": core, "connector": mapping }));
    }
    Ok(json!({ "cores": plugged }))
}

/// The fintechs publish their apps; every bank approves them.
pub(super) fn publish_apps(j: &Journey, members: &[Member], apps: &Apps) -> anyhow::Result<Value> {
    let mut keys = Vec::new();
    for (wallet, member, name, description, permissions, bundle) in [
        (
            &apps.lendwise_wallet,
            LENDWISE,
            "Lendwise Credit Check",
            "Checks what a loan applicant can afford from their bank data",
            &apps.credit_permissions,
            &miniapps::CREDIT_CHECK,
        ),
        (
            &apps.buddy_wallet,
            BUDGET_BUDDY,
            "Budget Buddy",
            "Shows where the money goes, and invests what is spare",
            &apps.invest_permissions,
            &miniapps::INVEST,
        ),
        (
            &apps.cardwise_wallet,
            LENDWISE,
            "Cardwise",
            "Recommends the credit card that fits your spending",
            &apps.credit_permissions,
            &miniapps::CARDS,
        ),
    ] {
        wallet.create()?;
        wallet.new_did("app")?;
        let key = wallet.key("app")?;
        let mini_app = bundle.upload(&members[member].operator)?;
        let manifest = AppManifest {
            app: key.did().clone(),
            name: name.into(),
            description: description.into(),
            version: "1.0.0".into(),
            platform: Platform::Web,
            redirect_uris: vec![super::oauth_example::REDIRECT.into()],
            events_uri: None,
            requested_permissions: permissions.iter().copied().collect(),
            bundle_hash: mini_app.index_hash().to_string(),
            mini_app: Some(Box::new(mini_app)),
        };
        commands::publish(&members[member].operator, None, &key, manifest)?;
        for &bank in &BANKS {
            let bank_key =
                commands::node_key(&members[bank].dir.join("node-key.json"), NODE_PASSPHRASE)?;
            let body = commands::app_decision(
                &bank_key,
                key.did().clone(),
                "1.0.0",
                AppAction::Approve {
                    permissions: permissions.iter().copied().collect(),
                    rate_limit: None,
                    origins: Default::default(),
                },
            )?;
            members[bank].node.post("/v1/apps/decisions", &body)?;
        }
        j.say(&format!(
            "   {name} 1.0.0 by {}, a mini-app for banks' portals: {}; approved by the three banks",
            members[member].name,
            permission_names(permissions)
        ));
        keys.push((name, key));
    }
    let catalog = wait_for(
        "the regulator's copy of every bank's catalog listing both apps",
        || {
            let sizes: Vec<usize> = BANKS
                .iter()
                .filter_map(|&bank| {
                    let path = format!("/v1/catalog?bank={}", members[bank].did);
                    let catalog = members[REGULATOR].node.get_with(&path, &[]).ok()?;
                    catalog["apps"].as_array().map(Vec::len)
                })
                .collect();
            (sizes.len() == BANKS.len() && sizes.iter().all(|&n| n >= keys.len())).then_some(sizes)
        },
    )?;
    Ok(json!({
        "apps": keys.iter().map(|(_, k)| k.did().to_string()).collect::<Vec<_>>(),
        "mini_apps": keys.iter().map(|(name, k)| json!([name, k.did()])).collect::<Vec<_>>(),
        "catalog_sizes": catalog,
    }))
}

/// The client links a new DID per bank with a one-time code.
pub(super) fn link_accounts(
    j: &Journey,
    core_bin: &Path,
    members: &[Member],
    client_wallet: &WalletFile,
) -> anyhow::Result<Value> {
    client_wallet.create()?;
    let mut accounts = Vec::new();
    for &bank in &BANKS {
        // The bank's own channel knows its customer's accounts; the simulator's
        // listing stands in for it.
        let output = Command::new(core_bin)
            .args(["--list-accounts", "--seed", &(bank + 1).to_string()])
            .output()?;
        let held: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|a| a["holder"] == CLIENT_NAME)
            .filter_map(|a| a["account"].as_str().map(str::to_owned))
            .collect();
        let token = commands::admin_token(&members[bank].dir.join("admin-token"))?;
        let code = commands::link_code(&members[bank].operator, &token, CLIENT_NAME, &held)?;
        let code = code["code"]
            .as_str()
            .ok_or_else(|| anyhow!("no link code"))?;
        let label = format!("at {}", members[bank].name);
        client_wallet.new_did(&label)?;
        // Kept in the wallet, so the client can approve OAuth requests there later.
        let linked = commands::link_and_remember(&members[bank].node, client_wallet, &label, code)?;
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
}

/// The client signs a consent for Lendwise at each bank and one for Budget Buddy.
pub(super) fn grant_consents(
    j: &Journey,
    members: &[Member],
    apps: &Apps,
    keys: &AppKeys,
    client_wallet: &WalletFile,
    accounts: &[String],
    until: NaiveDate,
) -> anyhow::Result<Value> {
    let mut consents = Vec::new();
    for (i, &bank) in BANKS.iter().enumerate() {
        let label = format!("at {}", members[bank].name);
        let request = GrantRequest {
            bank: consentnet_identity::Did::parse(&members[bank].did)?,
            app: keys.lendwise_key.did().clone(),
            accounts: vec![accounts[i].clone()],
            permissions: apps.credit_permissions.iter().copied().collect(),
            purpose: "Loan affordability check".into(),
            until,
        };
        let granted =
            commands::consent_grant(&members[bank].node, client_wallet, &label, &request)?;
        let id = granted["consent_id"]
            .as_str()
            .ok_or_else(|| anyhow!("no consent id"))?
            .to_owned();
        j.say(&format!(
            "   Lendwise at {}: consent {}... until {until}",
            members[bank].name,
            &id[..16]
        ));
        consents.push(id);
    }
    let label = "at Sandbox Bank";
    let request = GrantRequest {
        bank: consentnet_identity::Did::parse(&members[0].did)?,
        app: keys.buddy_key.did().clone(),
        accounts: vec![accounts[0].clone()],
        permissions: apps.budget_permissions.iter().copied().collect(),
        purpose: "Budgeting".into(),
        until,
    };
    let granted = commands::consent_grant(&members[0].node, client_wallet, label, &request)?;
    let id = granted["consent_id"]
        .as_str()
        .ok_or_else(|| anyhow!("no consent id"))?
        .to_owned();
    j.say(&format!(
        "   Budget Buddy at Sandbox Bank: consent {}... until {until}",
        &id[..16]
    ));
    consents.push(id);
    Ok(json!(consents))
}

/// Lendwise pulls accounts, balances and transactions from all three banks.
pub(super) fn affordability(
    j: &Journey,
    members: &[Member],
    keys: &AppKeys,
    consents: &[String],
    accounts: &[String],
) -> anyhow::Result<Value> {
    let from = Utc::now() - chrono::Duration::days(WINDOW_DAYS as i64);
    let mut per_bank = Vec::new();
    let mut combined = Flows::default();
    for (i, &bank) in BANKS.iter().enumerate() {
        let api = lendwise_at(members, keys, bank);
        // The consent reaches the bank by gossip; the first call may come first.
        let listed = wait_for(
            &format!("{} serving the consent", members[bank].name),
            || api.accounts(&consents[i]).ok(),
        )?;
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
    Ok(
        json!({ "currency": "GBP", "window_days": WINDOW_DAYS, "banks": per_bank, "combined": combined.json() }),
    )
}

/// Budget Buddy reads a balance and is refused what its consent does not cover.
pub(super) fn second_app(
    j: &Journey,
    members: &[Member],
    keys: &AppKeys,
    consents: &[String],
    accounts: &[String],
) -> anyhow::Result<Value> {
    let api = TspClient::new(members[0].node.clone(), keys.buddy_key.clone(), "1.0.0");
    let balance = wait_for("the Sandbox Bank serving Budget Buddy", || {
        api.balance(&consents[3], &accounts[0]).ok()
    })?;
    // Its consent does not reach transactions: the bank refuses.
    let refused = api
        .get(
            &format!("/aisp/accounts/{}/transactions", accounts[0]),
            &consents[3],
        )
        .err()
        .and_then(|e| refusal_code(&e))
        .ok_or_else(|| anyhow!("Budget Buddy read transactions without the permission"))?;
    j.say(&format!(
        "   balance {} {}; transactions refused ({refused}): not in its consent",
        decimal(balance.minor),
        balance.currency
    ));
    Ok(
        json!({ "balance": decimal(balance.minor), "currency": balance.currency, "transactions_refused": refused }),
    )
}

/// The client revokes one consent; the bank refuses the next call under it.
pub(super) fn revoke(
    j: &Journey,
    members: &[Member],
    keys: &AppKeys,
    client_wallet: &WalletFile,
    consents: &[String],
    accounts: &[String],
) -> anyhow::Result<Value> {
    let api = lendwise_at(members, keys, 1);
    let started = Instant::now();
    commands::consent_revoke(&members[REGULATOR].node, client_wallet, &consents[1])?;
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
    ensure!(
        code == "consent_revoked",
        "the Berlin Bank refused with {code}, not consent_revoked"
    );
    let still: Vec<String> = [0usize, 2]
        .iter()
        .map(|&bank| {
            lendwise_at(members, keys, bank)
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
}

/// Every node holds the same log.
pub(super) fn replicate(j: &Journey, members: &[Member]) -> anyhow::Result<Value> {
    let (entries, digest) = wait_for("all six nodes agreeing on the log", || {
        let statuses: Vec<_> = members
            .iter()
            .filter_map(|m| m.operator.status().ok())
            .collect();
        let first = statuses.first()?;
        // Three apps, nine decisions, four consents, one revocation, access records.
        (statuses.len() == members.len()
            && first.log_entries >= 18
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
}
