//! The `consentnet` command line: wallet, TSP, bank admin and regulator commands, speaking HTTP to nodes.

use std::process::ExitCode;

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use clap::{Parser, Subcommand};
use consentnet_client::audit;
use consentnet_client::commands::{self, GrantRequest};
use consentnet_client::node_api::{NodeApiError, NodeClient};
use consentnet_client::tsp::TspClient;
use consentnet_consent_chain::event::{AppAction, AppManifest};
use consentnet_identity::Did;

/// The consentnet command line.
///
/// Exit codes: 0 success, 2 usage error, 3 refused by the node, 4 the audit found
/// problems, 1 any other failure.
/// Wallet passphrases come from CONSENTNET_WALLET_PASSPHRASE; a bank's node key
/// passphrase from CONSENTNET_NODE_PASSPHRASE.
#[derive(Debug, Parser)]
#[command(name = "consentnet", version, about, long_about)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole journey on a six-member consortium of real node processes started on
    /// this machine: apps published and approved, consents at three banks (two behind
    /// bank cores plugged in at run time), an affordability summary through the unified
    /// API, a revocation, replication and the regulator's audit. `--json` prints every
    /// step's outcome.
    Demo {
        /// Leave the consortium running at the end and print how to stop it.
        #[arg(long)]
        keep: bool,
        /// An empty folder for the members' data (default: a temp folder, removed at the
        /// end unless --keep).
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// Where consentnet-node and consentnet-bankcore are (default: next to this
        /// program).
        #[arg(long)]
        bin_dir: Option<PathBuf>,
    },
    /// Show a node's status: version, peers and log size.
    Status {
        /// The node's HTTP API, e.g. http://127.0.0.1:8080.
        #[arg(long, env = "CONSENTNET_NODE", default_value = "http://127.0.0.1:8080")]
        node: String,
    },
    /// Browse a bank's app catalog: every published app version with the bank's decision
    /// on it (approved with which operations, suspended, or not yet decided).
    Catalog {
        #[command(flatten)]
        node: NodeArg,
        /// The bank's DID.
        #[arg(long)]
        bank: String,
        /// Show approved versions only.
        #[arg(long)]
        approved: bool,
    },
    /// The bank client's wallet of DIDs and consents (encrypted).
    #[command(subcommand)]
    Wallet(WalletCommand),
    /// Grant, revoke and look up consents.
    #[command(subcommand)]
    Consent(ConsentCommand),
    /// A TSP's app: publish versions, call banks' unified API.
    #[command(subcommand)]
    Tsp(TspCommand),
    /// A bank's decisions about apps.
    #[command(subcommand)]
    Bank(BankCommand),
    /// The regulator's audit of the whole log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify every signature, hash link, credential and event of the log, and every
    /// access a bank served against the consent's state at that moment. Online through a
    /// node (--node), or offline on a stopped node's log folder (--data-dir), with no
    /// network. Exit code 4 when something was found.
    Verify {
        #[command(flatten)]
        source: AuditSource,
        /// The genesis file for --data-dir (default: genesis.json beside the folder).
        #[arg(long, requires = "data_dir")]
        genesis: Option<PathBuf>,
        /// How long after a revocation an access still counts as in time (ms).
        #[arg(long, default_value_t = 1_000)]
        propagation_bound_ms: u64,
        /// text (a summary), json (the whole report) or html (a page with charts).
        #[arg(long, value_enum, default_value = "text")]
        format: ReportFormat,
        /// Write the report to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Draw a progress bar on stderr (offline audits): auto = when stderr is a
        /// terminal.
        #[arg(long, value_enum, default_value = "auto")]
        progress: ProgressArg,
    },
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct AuditSource {
    /// A node's HTTP API: the node audits its copy of the log.
    #[arg(long)]
    node: Option<String>,
    /// A stopped node's log folder (its `data` folder), audited here.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReportFormat {
    Text,
    Json,
    Html,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ProgressArg {
    Auto,
    Always,
    Never,
}

#[derive(Debug, clap::Args)]
struct WalletArg {
    /// The wallet file.
    #[arg(long, env = "CONSENTNET_WALLET")]
    wallet: PathBuf,
}

#[derive(Debug, clap::Args)]
struct NodeArg {
    /// The node's HTTP API.
    #[arg(long, env = "CONSENTNET_NODE", default_value = "http://127.0.0.1:8080")]
    node: String,
}

#[derive(Debug, Subcommand)]
enum WalletCommand {
    /// Create an empty wallet.
    Init(WalletArg),
    /// Add a DID (use one per relationship: banks and apps cannot then link you).
    NewDid {
        #[command(flatten)]
        wallet: WalletArg,
        /// A label for it.
        #[arg(long)]
        label: String,
    },
    /// List the wallet's DIDs and consents.
    List(WalletArg),
    /// Link a wallet DID to your accounts at a bank, with the one-time code the bank gave
    /// you (in its app or online banking). The bank keeps the link privately and answers
    /// with the opaque references of your accounts, to name in consents.
    Link {
        #[command(flatten)]
        wallet: WalletArg,
        /// The bank node's HTTP API.
        #[arg(long)]
        bank: String,
        /// The wallet DID to link (its label); use a separate DID per bank.
        #[arg(long = "as")]
        label: String,
        /// The link code from the bank.
        #[arg(long)]
        code: String,
    },
    /// Approve an app's OAuth request shown on a bank's consent screen: the wallet signs
    /// a consent for exactly what is shown (or less: fewer accounts) and sends it to the bank.
    Approve {
        #[command(flatten)]
        wallet: WalletArg,
        /// The request id from the consent screen.
        request: String,
        /// The bank node's HTTP API (the consent screen's address).
        #[arg(long)]
        bank: String,
        /// The wallet DID that signs (its label). Default: the DID linked at that bank.
        #[arg(long = "as")]
        label: Option<String>,
        /// An account to grant (repeat for several). Default: the accounts the app named,
        /// or else every account linked at that bank.
        #[arg(long = "account")]
        accounts: Vec<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Sign in to a node's portal: sign the one-time challenge its sign-in page shows;
    /// the browser showing it is then signed in as that DID.
    SignIn {
        #[command(flatten)]
        wallet: WalletArg,
        /// The challenge from the sign-in page.
        challenge: String,
        /// The node's HTTP API (the sign-in page's address).
        #[arg(long)]
        node: String,
        /// The wallet DID to sign in as (its label). Default: the DID linked at that bank.
        #[arg(long = "as")]
        label: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ConsentCommand {
    /// Sign a consent for an app at a bank and submit it.
    Grant {
        #[command(flatten)]
        wallet: WalletArg,
        #[command(flatten)]
        node: NodeArg,
        /// The wallet DID that grants (its label).
        #[arg(long = "as")]
        label: String,
        /// The bank's DID.
        #[arg(long)]
        bank: String,
        /// The app's DID.
        #[arg(long)]
        app: String,
        /// An account reference at the bank (repeat for several).
        #[arg(long = "account", required = true)]
        accounts: Vec<String>,
        /// An OBIE permission code (repeat for several).
        #[arg(long = "permission", required = true)]
        permissions: Vec<String>,
        /// Last day the consent may be used (YYYY-MM-DD, UTC).
        #[arg(long)]
        until: chrono::NaiveDate,
        /// Why, in words the client understands.
        #[arg(long, default_value = "Account information")]
        purpose: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Revoke a consent held in the wallet.
    Revoke {
        #[command(flatten)]
        wallet: WalletArg,
        #[command(flatten)]
        node: NodeArg,
        /// The consent id.
        consent: String,
    },
    /// A consent's status.
    Status {
        #[command(flatten)]
        node: NodeArg,
        /// The consent id.
        consent: String,
    },
    /// The consents in the wallet, with their status on the node.
    List {
        #[command(flatten)]
        wallet: WalletArg,
        #[command(flatten)]
        node: NodeArg,
    },
    /// The access records banks made under a consent: every call served or refused.
    Accesses {
        #[command(flatten)]
        node: NodeArg,
        /// The consent id.
        consent: String,
    },
}

#[derive(Debug, Subcommand)]
enum TspCommand {
    /// Publish a version of an app, signed by the app's DID (a wallet DID).
    Publish {
        #[command(flatten)]
        wallet: WalletArg,
        #[command(flatten)]
        node: NodeArg,
        /// The app's DID (its wallet label).
        #[arg(long = "as")]
        label: String,
        /// App name.
        #[arg(long)]
        name: String,
        /// What it does.
        #[arg(long)]
        description: String,
        /// Version.
        #[arg(long)]
        version: String,
        /// web or mobile.
        #[arg(long, default_value = "web")]
        platform: String,
        /// A redirect URI (repeat for several).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A permission the app asks for (repeat).
        #[arg(long = "permission", required = true)]
        permissions: Vec<String>,
        /// SHA-256 of the app bundle (64 hex digits).
        #[arg(long)]
        bundle_hash: String,
    },
    /// GET a path of a bank's unified API with a consent; the CLI signs the proof.
    Get {
        #[command(flatten)]
        wallet: WalletArg,
        /// The bank node's HTTP API.
        #[arg(long)]
        bank: String,
        /// The app's DID (its wallet label).
        #[arg(long = "as")]
        label: String,
        /// The app version making the call.
        #[arg(long)]
        app_version: String,
        /// The consent id.
        #[arg(long)]
        consent: String,
        /// The path under /open-banking/v4.0, e.g. /aisp/accounts.
        path: String,
    },
}

#[derive(Debug, Subcommand)]
enum ConnectorCommand {
    /// Put a mapping file's bank core in service (checked by the node first).
    Put {
        #[command(flatten)]
        node: NodeArg,
        /// The file holding the node's admin token.
        #[arg(long)]
        token_file: PathBuf,
        /// The mapping file (TOML).
        mapping: PathBuf,
    },
    /// Remove every mapped core: the embedded sandbox bank comes back.
    Remove {
        #[command(flatten)]
        node: NodeArg,
        /// The file holding the node's admin token.
        #[arg(long)]
        token_file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum BankCommand {
    /// Change the bank core behind a bank node at run time.
    #[command(subcommand)]
    Connector(ConnectorCommand),
    /// Issue a one-time code that links a client's DID to a customer's accounts (what the
    /// bank's own app shows a customer who signed in there). Valid for 15 minutes.
    LinkCode {
        #[command(flatten)]
        node: NodeArg,
        /// The file holding the node's admin token.
        #[arg(long)]
        token_file: PathBuf,
        /// The bank's own identifier for the customer.
        #[arg(long)]
        customer: String,
        /// An account reference of the customer (repeat for several).
        #[arg(long = "account", required = true)]
        accounts: Vec<String>,
    },
    /// Approve an app version with the permissions it may use here, or suspend it.
    Decide {
        #[command(flatten)]
        node: NodeArg,
        /// The bank node's key file (node-key.json).
        #[arg(long)]
        key_file: PathBuf,
        /// The app's DID.
        #[arg(long)]
        app: String,
        /// The app version.
        #[arg(long)]
        version: String,
        /// A permission the app may use at this bank (repeat).
        #[arg(long = "permission", conflicts_with = "suspend")]
        permissions: Vec<String>,
        /// Suspend the version instead.
        #[arg(long)]
        suspend: bool,
    },
}

const EXIT_FAILURE: u8 = 1;
const EXIT_REFUSED: u8 = 3;
const EXIT_FINDINGS: u8 = 4;

/// The audit found problems.
#[derive(Debug, thiserror::Error)]
#[error("the audit found problems")]
struct Findings;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("consentnet: {error:#}");
            let refused = error
                .downcast_ref::<NodeApiError>()
                .is_some_and(|e| matches!(e, NodeApiError::Refused { .. }));
            let code = if error.downcast_ref::<Findings>().is_some() {
                EXIT_FINDINGS
            } else if refused {
                EXIT_REFUSED
            } else {
                EXIT_FAILURE
            };
            ExitCode::from(code)
        }
    }
}

fn did(name: &str, text: &str) -> anyhow::Result<Did> {
    Did::parse(text).map_err(|e| anyhow!("--{name}: {e}"))
}

/// Prints `value` as JSON, or as indented JSON for people.
fn show(json: bool, value: &serde_json::Value) -> anyhow::Result<()> {
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

fn run(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Demo {
            keep,
            work_dir,
            bin_dir,
        } => {
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
                quiet_stdout: cli.json,
            });
            if cli.json {
                println!("{}", serde_json::to_string(&summary)?);
            }
            if summary["ok"] != true {
                bail!(
                    "the demo failed: {}",
                    summary["error"].as_str().unwrap_or("see above")
                );
            }
            if !cli.json {
                println!("\nThe whole journey succeeded.");
            }
            Ok(())
        }
        Command::Audit(AuditCommand::Verify {
            source,
            genesis,
            propagation_bound_ms,
            format,
            out,
            progress,
        }) => {
            let (report, from) = match (&source.node, &source.data_dir) {
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
                    let report =
                        audit::offline(dir, genesis.as_deref(), *propagation_bound_ms, progress)?;
                    (report, format!("the log folder {}", dir.display()))
                }
                (None, None) => bail!("give --node URL or --data-dir DIR"),
            };
            // --json asks for the machine report unless another format is named.
            let format = match (*format, cli.json) {
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
        Command::Wallet(WalletCommand::Init(wallet)) => {
            commands::WalletFile::from_env(&wallet.wallet)?.create()?;
            show(cli.json, &serde_json::json!({ "created": wallet.wallet }))
        }
        Command::Wallet(WalletCommand::NewDid { wallet, label }) => {
            let did = commands::WalletFile::from_env(&wallet.wallet)?.new_did(label)?;
            show(cli.json, &serde_json::json!({ "label": label, "did": did }))
        }
        Command::Catalog {
            node,
            bank,
            approved,
        } => {
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
                        action: AppAction::Approve { permissions },
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
            if cli.json {
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
        Command::Wallet(WalletCommand::Link {
            wallet,
            bank,
            label,
            code,
        }) => {
            let wallet = commands::WalletFile::from_env(&wallet.wallet)?;
            let bank = NodeClient::new(bank)?;
            show(
                cli.json,
                &commands::link_and_remember(&bank, &wallet, label, code)?,
            )
        }
        Command::Wallet(WalletCommand::SignIn {
            wallet,
            challenge,
            node,
            label,
        }) => {
            let wallet = commands::WalletFile::from_env(&wallet.wallet)?;
            let node = NodeClient::new(node)?;
            show(
                cli.json,
                &commands::sign_in(&node, &wallet, challenge, label.as_deref())?,
            )
        }
        Command::Wallet(WalletCommand::Approve {
            wallet,
            request,
            bank,
            label,
            accounts,
            yes,
        }) => {
            let wallet = commands::WalletFile::from_env(&wallet.wallet)?;
            let bank = NodeClient::new(bank)?;
            let approval =
                commands::prepare_approval(&bank, &wallet, request, label.as_deref(), accounts)?;
            eprintln!("{}", approval.describe());
            if !yes && !confirm("Grant this consent?")? {
                bail!("not granted");
            }
            show(cli.json, &commands::approve(&bank, &wallet, &approval)?)
        }
        Command::Bank(BankCommand::LinkCode {
            node,
            token_file,
            customer,
            accounts,
        }) => {
            let token = commands::admin_token(token_file)?;
            let node = NodeClient::new(&node.node)?;
            show(
                cli.json,
                &commands::link_code(&node, &token, customer, accounts)?,
            )
        }
        Command::Wallet(WalletCommand::List(wallet)) => {
            let wallet = commands::WalletFile::from_env(&wallet.wallet)?.open()?;
            let dids: Vec<_> = wallet
                .identities()
                .iter()
                .map(|i| serde_json::json!({ "label": i.label, "did": i.did }))
                .collect();
            let consents: Vec<_> = wallet.credentials().iter().map(|c| &c.label).collect();
            show(
                cli.json,
                &serde_json::json!({ "dids": dids, "credentials": consents }),
            )
        }
        Command::Consent(ConsentCommand::Grant {
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
        }) => {
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
                cli.json,
                &commands::consent_grant(
                    &node,
                    &commands::WalletFile::from_env(&wallet.wallet)?,
                    label,
                    &request,
                )?,
            )
        }
        Command::Consent(ConsentCommand::Revoke {
            wallet,
            node,
            consent,
        }) => {
            let node = NodeClient::new(&node.node)?;
            show(
                cli.json,
                &commands::consent_revoke(
                    &node,
                    &commands::WalletFile::from_env(&wallet.wallet)?,
                    consent,
                )?,
            )
        }
        Command::Consent(ConsentCommand::List { wallet, node }) => {
            let wallet = commands::WalletFile::from_env(&wallet.wallet)?.open()?;
            let node = NodeClient::new(&node.node)?;
            let mut consents = Vec::new();
            for stored in commands::held_consents(&wallet) {
                let Ok(id) = consentnet_identity::ConsentId::of(&stored.credential) else {
                    continue;
                };
                let status = node.get_with(&format!("/v1/consents/{id}"), &[])?;
                consents.push(serde_json::json!({
                    "consent_id": id.to_string(),
                    "status": status["status"],
                    "grant": status["grant"],
                }));
            }
            show(cli.json, &serde_json::json!({ "consents": consents }))
        }
        Command::Consent(ConsentCommand::Accesses { node, consent }) => {
            let node = NodeClient::new(&node.node)?;
            show(
                cli.json,
                &node.get_with(&format!("/v1/consents/{consent}/accesses"), &[])?,
            )
        }
        Command::Consent(ConsentCommand::Status { node, consent }) => {
            let node = NodeClient::new(&node.node)?;
            show(
                cli.json,
                &node.get_with(&format!("/v1/consents/{consent}"), &[])?,
            )
        }
        Command::Tsp(TspCommand::Publish {
            wallet,
            node,
            label,
            name,
            description,
            version,
            platform,
            redirect_uris,
            permissions,
            bundle_hash,
        }) => {
            let wallet = commands::WalletFile::from_env(&wallet.wallet)?.open()?;
            let key = commands::key_by_label(&wallet, label)?;
            let manifest = AppManifest {
                app: key.did().clone(),
                name: name.clone(),
                description: description.clone(),
                version: version.clone(),
                platform: commands::platform(platform)?,
                redirect_uris: redirect_uris.clone(),
                requested_permissions: commands::permissions(permissions)?,
                bundle_hash: bundle_hash.clone(),
            };
            let node = NodeClient::new(&node.node)?;
            show(
                cli.json,
                &node.post("/v1/apps", &commands::app_manifest(&key, manifest)?)?,
            )
        }
        Command::Tsp(TspCommand::Get {
            wallet,
            bank,
            label,
            app_version,
            consent,
            path,
        }) => {
            let wallet = commands::WalletFile::from_env(&wallet.wallet)?.open()?;
            let key = commands::key_by_label(&wallet, label)?;
            let bank = TspClient::new(NodeClient::new(bank)?, key, app_version.clone());
            show(cli.json, &bank.get(path, consent)?)
        }
        Command::Bank(BankCommand::Connector(command)) => {
            let (node, token_file) = match command {
                ConnectorCommand::Put {
                    node, token_file, ..
                }
                | ConnectorCommand::Remove { node, token_file } => (node, token_file),
            };
            let token = commands::admin_token(token_file)?;
            let headers = [("x-admin-token", token.as_str())];
            let node = NodeClient::new(&node.node)?;
            let answer = match command {
                ConnectorCommand::Put { mapping, .. } => {
                    let text = std::fs::read_to_string(mapping)
                        .map_err(|e| anyhow!("reading {}: {e}", mapping.display()))?;
                    node.put_text("/v1/admin/connector", &headers, &text)?
                }
                ConnectorCommand::Remove { .. } => node.delete("/v1/admin/connector", &headers)?,
            };
            show(cli.json, &answer)
        }
        Command::Bank(BankCommand::Decide {
            node,
            key_file,
            app,
            version,
            permissions,
            suspend,
        }) => {
            let key = commands::node_key_from_env(key_file)?;
            let action = if *suspend {
                AppAction::Suspend
            } else if permissions.is_empty() {
                bail!("give --permission (repeat) to approve, or --suspend");
            } else {
                AppAction::Approve {
                    permissions: commands::permissions(permissions)?,
                }
            };
            let body = commands::app_decision(&key, did("app", app)?, version, action)?;
            let node = NodeClient::new(&node.node)?;
            show(cli.json, &node.post("/v1/apps/decisions", &body)?)
        }
        Command::Status { node } => {
            let status = NodeClient::new(node)?.status()?;
            if cli.json {
                println!("{}", serde_json::to_string(&status)?);
            } else {
                println!("node        {node}");
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
    }
}
