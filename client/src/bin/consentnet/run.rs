//! One function per `consentnet` command: each reads its arguments, talks to nodes over HTTP and prints the answer.

use std::io::{BufRead, Write};

use anyhow::{Context, anyhow, bail};
use consentnet_client::audit;
use consentnet_client::commands::{self, GrantRequest};
use consentnet_client::node_api::NodeClient;
use consentnet_client::tsp::TspClient;
use consentnet_consent_chain::event::{AppAction, AppManifest};
use consentnet_identity::Did;

use crate::Findings;
use crate::args::*;

fn did(name: &str, text: &str) -> anyhow::Result<Did> {
    Did::parse(text).map_err(|e| anyhow!("--{name}: {e}"))
}

/// Prints `value` as JSON, or as indented JSON for people.
pub(crate) fn show(json: bool, value: &serde_json::Value) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(value)?);
    } else {
        println!("{}", serde_json::to_string_pretty(value)?);
    }
    Ok(())
}

fn confirm(question: &str) -> anyhow::Result<bool> {
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

pub fn demo(json: bool, args: &DemoArgs) -> anyhow::Result<()> {
    let DemoArgs {
        keep,
        work_dir,
        bin_dir,
    } = args;
    let bin_dir = match bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .ok_or_else(|| anyhow!("this program's folder is unknown: give --bin-dir"))?
            .to_path_buf(),
    };
    let summary = consentnet_client::demo::run(consentnet_client::demo::DemoOptions {
        bin_dir,
        work_dir: work_dir.clone(),
        keep: *keep,
        quiet_stdout: json,
    });
    if json {
        println!("{}", serde_json::to_string(&summary)?);
    }
    if summary["ok"] != true {
        bail!(
            "the demo failed: {}",
            summary["error"].as_str().unwrap_or("see above")
        );
    }
    if !json {
        println!("\nThe whole journey succeeded.");
    }
    Ok(())
}

pub fn audit_verify(json: bool, args: &AuditVerifyArgs) -> anyhow::Result<()> {
    let AuditVerifyArgs {
        source,
        genesis,
        propagation_bound_ms,
        format,
        out,
        progress,
    } = args;
    let (report, from) = match (&source.operator, &source.data_dir) {
        (Some(node), _) => {
            let client = NodeClient::new(node)?;
            let report = client.get_with(
                &format!("/v1/audit?propagation_bound_ms={propagation_bound_ms}"),
                &[],
            )?;
            (report, format!("the log held by the node at {node}"))
        }
        (None, Some(dir)) => {
            let progress = match progress {
                ProgressArg::Auto => audit::Progress::Auto,
                ProgressArg::Always => audit::Progress::Always,
                ProgressArg::Never => audit::Progress::Never,
            };
            let report = audit::offline(dir, genesis.as_deref(), *propagation_bound_ms, progress)?;
            (report, format!("the log folder {}", dir.display()))
        }
        (None, None) => bail!("give --operator URL or --data-dir DIR"),
    };
    // --json asks for the machine report unless another format is named.
    let format = match (*format, json) {
        (ReportFormat::Text, true) => ReportFormat::Json,
        (chosen, _) => chosen,
    };
    let rendered = match format {
        ReportFormat::Text => {
            format!("{}\n", report["summary"].as_str().unwrap_or("no summary"))
        }
        ReportFormat::Json => format!("{}\n", serde_json::to_string(&report)?),
        ReportFormat::Html => audit::html(&report, &from),
    };
    match out {
        Some(path) => {
            std::fs::write(path, rendered)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "{}; report written to {}",
                report["summary"].as_str().unwrap_or("audited"),
                path.display()
            );
        }
        None => print!("{rendered}"),
    }
    if report["clean"] != true {
        return Err(Findings.into());
    }
    Ok(())
}

pub fn wallet_init(json: bool, wallet: &WalletArg) -> anyhow::Result<()> {
    commands::WalletFile::from_env(&wallet.wallet)?.create()?;
    show(json, &serde_json::json!({ "created": wallet.wallet }))
}

pub fn wallet_new_did(json: bool, args: &WalletNewDidArgs) -> anyhow::Result<()> {
    let WalletNewDidArgs { wallet, label } = args;
    let did = commands::WalletFile::from_env(&wallet.wallet)?.new_did(label)?;
    show(json, &serde_json::json!({ "label": label, "did": did }))
}

pub fn wallet_export_jwk(args: &WalletNewDidArgs) -> anyhow::Result<()> {
    let WalletNewDidArgs { wallet, label } = args;
    let key = commands::WalletFile::from_env(&wallet.wallet)?.key(label)?;
    let b64 = consentnet_identity::b64url;
    let jwk = serde_json::json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64(key.did().public_key().as_bytes()),
        "d": b64(&key.secret_bytes()[..]),
    });
    eprintln!("the private key of {label} ({}): keep it secret", key.did());
    println!("{jwk}");
    Ok(())
}

pub fn catalog(json: bool, args: &CatalogArgs) -> anyhow::Result<()> {
    let CatalogArgs {
        node,
        bank,
        approved,
    } = args;
    let bank = did("bank", bank)?;
    let node = NodeClient::new(&node.node)?;
    let catalog = node.get_with(&format!("/v1/catalog?bank={bank}"), &[])?;
    let apps: Vec<&serde_json::Value> = catalog["apps"]
        .as_array()
        .map(|apps| apps.iter().collect())
        .unwrap_or_default();
    let decision = |app: &serde_json::Value| -> String {
        use consentnet_consent_chain::event::AppDecision;
        match serde_json::from_value::<AppDecision>(app["decision"].clone()) {
            Err(_) => "not decided".into(),
            Ok(AppDecision {
                action:
                    AppAction::Approve {
                        permissions,
                        rate_limit: None,
                        ..
                    },
                ..
            }) => format!(
                "approved for {}",
                permissions
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Ok(_) => "suspended".into(),
        }
    };
    let shown: Vec<&serde_json::Value> = apps
        .into_iter()
        .filter(|app| !approved || decision(app).starts_with("approved"))
        .collect();
    if json {
        println!("{}", serde_json::to_string(&shown)?);
    } else if shown.is_empty() {
        println!("no apps in the catalog of {bank}");
    } else {
        for app in shown {
            let manifest = &app["manifest"];
            println!(
                "{} {} ({}): {}\n  app {}\n  asks for {}\n  {}",
                manifest["name"].as_str().unwrap_or("?"),
                manifest["version"].as_str().unwrap_or("?"),
                manifest["platform"].as_str().unwrap_or("?"),
                manifest["description"].as_str().unwrap_or(""),
                manifest["app"].as_str().unwrap_or("?"),
                manifest["requestedPermissions"]
                    .as_array()
                    .map(|p| p
                        .iter()
                        .filter_map(|p| p.as_str())
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default(),
                decision(app),
            );
        }
    }
    Ok(())
}

pub fn wallet_link(json: bool, args: &WalletLinkArgs) -> anyhow::Result<()> {
    let WalletLinkArgs {
        wallet,
        bank,
        label,
        code,
    } = args;
    let wallet = commands::WalletFile::from_env(&wallet.wallet)?;
    let bank = NodeClient::new(bank)?;
    show(
        json,
        &commands::link_and_remember(&bank, &wallet, label, code)?,
    )
}

pub fn wallet_sign_in(json: bool, args: &WalletSignInArgs) -> anyhow::Result<()> {
    let WalletSignInArgs {
        wallet,
        challenge,
        node,
        label,
    } = args;
    let wallet = commands::WalletFile::from_env(&wallet.wallet)?;
    let node = NodeClient::new(node)?;
    show(
        json,
        &commands::sign_in(&node, &wallet, challenge, label.as_deref())?,
    )
}

pub fn wallet_approve(json: bool, args: &WalletApproveArgs) -> anyhow::Result<()> {
    let WalletApproveArgs {
        wallet,
        request,
        bank,
        label,
        accounts,
        yes,
    } = args;
    let wallet = commands::WalletFile::from_env(&wallet.wallet)?;
    let bank = NodeClient::new(bank)?;
    let approval = commands::prepare_approval(&bank, &wallet, request, label.as_deref(), accounts)?;
    eprintln!("{}", approval.describe());
    if !yes && !confirm("Grant this consent?")? {
        bail!("not granted");
    }
    show(json, &commands::approve(&bank, &wallet, &approval)?)
}

pub fn bank_link_code(json: bool, args: &BankLinkCodeArgs) -> anyhow::Result<()> {
    let BankLinkCodeArgs {
        operator,
        token_file,
        customer,
        accounts,
    } = args;
    let token = commands::admin_token(token_file)?;
    let node = NodeClient::new(&operator.operator)?;
    show(
        json,
        &commands::link_code(&node, &token, customer, accounts)?,
    )
}

pub fn wallet_list(json: bool, wallet: &WalletArg) -> anyhow::Result<()> {
    let wallet = commands::WalletFile::from_env(&wallet.wallet)?.open()?;
    let dids: Vec<_> = wallet
        .identities()
        .iter()
        .map(|i| serde_json::json!({ "label": i.label, "did": i.did }))
        .collect();
    let consents: Vec<_> = wallet.credentials().iter().map(|c| &c.label).collect();
    show(
        json,
        &serde_json::json!({ "dids": dids, "credentials": consents }),
    )
}

pub fn consent_grant(json: bool, args: &ConsentGrantArgs) -> anyhow::Result<()> {
    let ConsentGrantArgs {
        wallet,
        node,
        label,
        bank,
        app,
        accounts,
        permissions,
        until,
        purpose,
        yes,
    } = args;
    let request = GrantRequest {
        bank: did("bank", bank)?,
        app: did("app", app)?,
        accounts: accounts.clone(),
        permissions: commands::permissions(permissions)?,
        purpose: purpose.clone(),
        until: *until,
    };
    eprintln!("{}", request.describe());
    if !yes && !confirm("Grant this consent?")? {
        bail!("not granted");
    }
    let node = NodeClient::new(&node.node)?;
    show(
        json,
        &commands::consent_grant(
            &node,
            &commands::WalletFile::from_env(&wallet.wallet)?,
            label,
            &request,
        )?,
    )
}

pub fn consent_revoke(json: bool, args: &ConsentRevokeArgs) -> anyhow::Result<()> {
    let ConsentRevokeArgs {
        wallet,
        node,
        consent,
    } = args;
    let node = NodeClient::new(&node.node)?;
    show(
        json,
        &commands::consent_revoke(
            &node,
            &commands::WalletFile::from_env(&wallet.wallet)?,
            consent,
        )?,
    )
}

pub fn consent_list(json: bool, args: &ConsentListArgs) -> anyhow::Result<()> {
    let ConsentListArgs { wallet, node } = args;
    let wallet = commands::WalletFile::from_env(&wallet.wallet)?.open()?;
    let node = NodeClient::new(&node.node)?;
    let mut consents = Vec::new();
    for stored in commands::held_consents(&wallet) {
        let Ok(id) = consentnet_identity::consent_id(&stored.credential) else {
            continue;
        };
        let status = commands::consent_read(&node, &wallet, &id.to_string(), "")?;
        consents.push(serde_json::json!({
            "consent_id": id.to_string(),
            "status": status["status"],
            "grant": status["grant"],
        }));
    }
    show(json, &serde_json::json!({ "consents": consents }))
}

pub fn consent_accesses(json: bool, args: &ConsentAccessesArgs) -> anyhow::Result<()> {
    let ConsentAccessesArgs {
        wallet,
        node,
        consent,
    } = args;
    let wallet = commands::WalletFile::from_env(&wallet.wallet)?.open()?;
    let node = NodeClient::new(&node.node)?;
    let mut answer = commands::consent_read(&node, &wallet, consent, "/accesses")?;
    // The bank answers; check that every record is under a root it signed on the log.
    let bank = node.identity()?.did;
    let verified = consentnet_client::proofs::verify_accesses(&answer, &bank)
        .map_err(|e| anyhow::anyhow!("the bank's access history does not verify: {e}"))?;
    answer["verified"] = serde_json::json!(verified);
    show(json, &answer)
}

pub fn consent_status(json: bool, args: &ConsentStatusArgs) -> anyhow::Result<()> {
    let ConsentStatusArgs {
        wallet,
        node,
        consent,
    } = args;
    let wallet = commands::WalletFile::from_env(&wallet.wallet)?.open()?;
    let node = NodeClient::new(&node.node)?;
    show(json, &commands::consent_read(&node, &wallet, consent, "")?)
}

pub fn consent_verify(json: bool, args: &ConsentVerifyArgs) -> anyhow::Result<()> {
    use consentnet_client::vcapi;
    let ConsentVerifyArgs {
        node,
        file,
        challenge,
        domain,
    } = args;
    let size = std::fs::metadata(file)
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    if size > vcapi::MAX_DOCUMENT_BYTES as u64 {
        bail!(
            "{} is {size} bytes; a node verifies documents of at most {} bytes",
            file.display(),
            vcapi::MAX_DOCUMENT_BYTES
        );
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let document: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    let node = NodeClient::new(&node.node)?;
    let options = (challenge.as_deref(), domain.as_deref());
    let verification = vcapi::verify(&node, &document, options)?;
    show(json, &verification)?;
    if verification["verified"] != true {
        let why = vcapi::first_error(&verification).unwrap_or("not verified");
        return Err(crate::NotVerified(why.to_owned()).into());
    }
    Ok(())
}

pub fn tsp_publish(json: bool, args: &TspPublishArgs) -> anyhow::Result<()> {
    let TspPublishArgs {
        wallet,
        operator,
        token_file,
        label,
        name,
        description,
        version,
        platform,
        redirect_uris,
        permissions,
        bundle_hash,
        bundle,
        origins,
    } = args;
    let wallet = commands::WalletFile::from_env(&wallet.wallet)?.open()?;
    let key = commands::key_by_label(&wallet, label)?;
    let node = NodeClient::new(&operator.operator)?;
    let token = token_file
        .as_deref()
        .map(commands::admin_token)
        .transpose()?;
    let (bundle_hash, mini_app) = match bundle {
        Some(dir) => {
            let mini_app = publish_bundle(&node, token.as_deref(), dir, origins)?;
            (mini_app.index_hash().to_string(), Some(Box::new(mini_app)))
        }
        None => (bundle_hash.clone().unwrap_or_default(), None),
    };
    let manifest = AppManifest {
        app: key.did().clone(),
        name: name.clone(),
        description: description.clone(),
        version: version.clone(),
        platform: commands::platform(platform)?,
        redirect_uris: redirect_uris.clone(),
        events_uri: None,
        requested_permissions: commands::permissions(permissions)?,
        bundle_hash,
        mini_app,
    };
    show(
        json,
        &commands::publish(&node, token.as_deref(), &key, manifest)?,
    )
}

/// Reads a mini-app's folder (adding the SDK when it lacks one), uploads its files and
/// answers the manifest's `miniApp` section.
fn publish_bundle(
    node: &NodeClient,
    token: Option<&str>,
    dir: &std::path::Path,
    origins: &[String],
) -> anyhow::Result<consentnet_consent_chain::miniapp::MiniApp> {
    use consentnet_client::bundle;
    let mut files = bundle::read_dir(dir)?;
    if !files.iter().any(|(path, _)| path == bundle::SDK_PATH) {
        files.push((bundle::SDK_PATH.to_owned(), bundle::SDK.to_vec()));
        files.sort_by(|a, b| a.0.cmp(&b.0));
    }
    let mini_app = bundle::mini_app(&files, origins.to_vec());
    mini_app
        .check(&mini_app.index_hash().to_string())
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    bundle::upload(node, token, &files)?;
    Ok(mini_app)
}

pub fn tsp_get(json: bool, args: &TspGetArgs) -> anyhow::Result<()> {
    let TspGetArgs {
        wallet,
        bank,
        label,
        app_version,
        consent,
        path,
    } = args;
    let wallet = commands::WalletFile::from_env(&wallet.wallet)?.open()?;
    let key = commands::key_by_label(&wallet, label)?;
    let bank = TspClient::new(NodeClient::new(bank)?, key, app_version.clone());
    show(json, &bank.get(path, consent)?)
}

pub fn bank_decide(json: bool, args: &BankDecideArgs) -> anyhow::Result<()> {
    let BankDecideArgs {
        node,
        key_file,
        app,
        version,
        permissions,
        suspend,
        rate,
        burst,
    } = args;
    let key = commands::node_key_from_env(key_file)?;
    let rate_limit = match (rate, burst) {
        (Some(0), _) | (_, Some(0)) => bail!("--rate and --burst are at least 1"),
        (Some(per_second), Some(burst)) => Some(consentnet_consent_chain::event::RateLimit {
            per_second: *per_second,
            burst: *burst,
        }),
        _ => None,
    };
    let action = if *suspend {
        AppAction::Suspend
    } else if permissions.is_empty() {
        bail!("give --permission (repeat) to approve, or --suspend");
    } else {
        AppAction::Approve {
            permissions: commands::permissions(permissions)?,
            rate_limit,
            origins: Default::default(),
        }
    };
    let body = commands::app_decision(&key, did("app", app)?, version, action)?;
    let node = NodeClient::new(&node.node)?;
    show(json, &node.post("/v1/apps/decisions", &body)?)
}

pub fn status(json: bool, args: &StatusArgs) -> anyhow::Result<()> {
    let StatusArgs { operator } = args;
    let status = NodeClient::new(&operator.operator)?.status()?;
    if json {
        println!("{}", serde_json::to_string(&status)?);
    } else {
        println!("node        {}", operator.operator);
        println!("version     {}", status.version);
        println!("peers       {}", status.peers);
        println!("log entries {}", status.log_entries);
        println!("did         {}", status.did);
        println!("role        {}", status.role.as_deref().unwrap_or("-"));
        println!("state       {}", status.state_digest);
        if let Some(connector) = &status.connector {
            println!("connector   {connector}");
        }
    }
    Ok(())
}
