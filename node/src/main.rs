//! The `consentnet-node` binary: `init` makes a node key and starter config, `genesis` writes a consortium's genesis file, `run` serves the node until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use consentnet_consent_chain::audit::{AuditConfig, SignatureRule};
use consentnet_consent_chain::{Genesis, Member, RocksStore, Role};
use consentnet_node::api::AppState;
use consentnet_node::audit as offline_audit;
use consentnet_node::config::NodeConfig;
use consentnet_node::core::{self, NodeService, Submitter};
use consentnet_node::p2p::{self, NetworkConfig, peer_id_of};
use consentnet_node::server::tls::ReloadingCert;
use consentnet_node::setup::{self, ADMIN_TOKEN_FILE, TlsSetup};
use consentnet_node::{bank, keystore, server};
use tracing_subscriber::EnvFilter;

/// A consentnet consortium node.
#[derive(Debug, Parser)]
#[command(name = "consentnet-node", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    Bank,
    Tsp,
    Regulator,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Bank => Role::Bank,
            RoleArg::Tsp => Role::Tsp,
            RoleArg::Regulator => Role::Regulator,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a node: an encrypted node key, a starter `node.toml` and `member.json`
    /// (this node's line for the genesis file) in DIR. Never overwrites.
    ///
    /// The key's passphrase comes from CONSENTNET_NODE_PASSPHRASE or --passphrase-file.
    Init {
        /// The node's folder.
        dir: PathBuf,
        /// The member's role in the consortium.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// The member's name, for people.
        #[arg(long)]
        name: String,
        /// Public HTTP address written to the config.
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: SocketAddr,
        /// Operator HTTP address written to the config (keep it on loopback).
        #[arg(long, default_value = "127.0.0.1:8081")]
        operator: SocketAddr,
        /// libp2p listen address written to the config.
        #[arg(long, default_value = "/ip4/0.0.0.0/tcp/7400")]
        p2p: String,
        /// A file holding the key's passphrase (recorded in the config).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        /// Sign the public listener's certificate with the CA in this folder (made by
        /// `tls-ca`). Default: a CA of this node's own, whose certificate `tls/ca.pem`
        /// clients trust.
        #[arg(long, conflicts_with = "plain_http")]
        tls_ca: Option<PathBuf>,
        /// A further DNS name or IP address for the certificate (repeat for several).
        #[arg(long = "tls-name")]
        tls_names: Vec<String>,
        /// Serve plain HTTP instead of HTTPS: for local development only.
        #[arg(long)]
        plain_http: bool,
    },
    /// Make a certificate authority in DIR (`ca.pem` to trust, `ca-key.pem` to keep) for
    /// a test or demo consortium whose nodes `init --tls-ca DIR`. Never overwrites.
    TlsCa {
        /// The new CA's folder.
        dir: PathBuf,
    },
    /// Write a genesis file from members' `member.json` files.
    Genesis {
        /// The network's name.
        #[arg(long)]
        network: String,
        /// Where to write the genesis file.
        #[arg(long)]
        out: PathBuf,
        /// The members' `member.json` files.
        #[arg(required = true)]
        members: Vec<PathBuf>,
    },
    /// Audit a stopped node's log offline: signatures, links, credentials and events,
    /// equivocations, and accesses served under unusable consents. Exit code 0 when clean,
    /// 4 when something was found, 1 when the audit could not run.
    Audit {
        /// The node's config file (for its data folder and genesis).
        #[arg(long, short, conflicts_with_all = ["data_dir", "genesis"], required_unless_present = "data_dir")]
        config: Option<PathBuf>,
        /// A stopped node's log folder (its `data` folder), instead of --config.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The genesis file for --data-dir (default: genesis.json beside the folder).
        #[arg(long, requires = "data_dir")]
        genesis: Option<PathBuf>,
        /// How long after a revocation an access still counts as in time (ms).
        #[arg(long, default_value_t = 1_000)]
        propagation_bound_ms: u64,
        /// Verify every entry's and event's own signature, as ingest does, instead of
        /// one origin signature per linked run of a feed (see docs/LOG.md).
        #[arg(long)]
        every_signature: bool,
        /// Print the whole report as JSON (with its summary) instead of the summary.
        #[arg(long)]
        json: bool,
        /// Draw a progress bar on stderr: auto = when stderr is a terminal.
        #[arg(long, value_enum, default_value = "auto")]
        progress: offline_audit::Progress,
    },
    /// Run the node until SIGTERM or SIGINT.
    ///
    /// Once listening, prints one JSON line to stdout with the bound addresses, e.g.
    /// `{"event":"listening","http":"127.0.0.1:8080","operator":"127.0.0.1:8081","p2p":[...],"peer_id":...}`, so
    /// scripts and tests can use port 0 and learn the real ports. Logs go to stderr.
    Run {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Overrides http.listen.
        #[arg(long)]
        http: Option<SocketAddr>,
        /// Overrides operator.listen.
        #[arg(long)]
        operator: Option<SocketAddr>,
        /// Overrides p2p.listen.
        #[arg(long)]
        p2p: Option<String>,
        /// Overrides p2p.bootstrap (repeat for several peers).
        #[arg(long)]
        bootstrap: Vec<String>,
        /// Write logs as JSON lines instead of text (overrides log.json).
        #[arg(long)]
        log_json: bool,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Init {
            dir,
            role,
            name,
            http,
            operator,
            p2p,
            passphrase_file,
            tls_ca,
            tls_names,
            plain_http,
        } => {
            let tls = match (plain_http, tls_ca) {
                (true, _) => TlsSetup::Plain,
                (false, Some(dir)) => TlsSetup::SharedCa(dir),
                (false, None) => TlsSetup::OwnCa,
            };
            init(
                &dir,
                role.into(),
                &name,
                Listen {
                    http,
                    operator,
                    p2p,
                },
                passphrase_file,
                (tls, tls_names),
            )
        }
        Command::TlsCa { dir } => tls_ca(&dir),
        Command::Genesis {
            network,
            out,
            members,
        } => genesis(&network, &out, &members),
        Command::Audit {
            config,
            data_dir,
            genesis,
            propagation_bound_ms,
            every_signature,
            json,
            progress,
        } => audit(
            config,
            data_dir,
            genesis,
            AuditConfig {
                propagation_bound_ms,
                signatures: SignatureRule::every_if(every_signature),
                ..AuditConfig::default()
            },
            json,
            progress,
        ),
        Command::Run {
            config,
            http,
            operator,
            p2p,
            bootstrap,
            log_json,
        } => {
            let mut config = NodeConfig::load(&config)?;
            if let Some(http) = http {
                config.http.listen = http;
            }
            if let Some(operator) = operator {
                config.operator.listen = operator;
                config.check()?;
            }
            if let Some(p2p) = p2p {
                config.p2p.listen = p2p;
            }
            if !bootstrap.is_empty() {
                config.p2p.bootstrap = bootstrap;
            }
            config.log.json |= log_json;
            init_tracing(config.log.json);
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(run(config))
        }
    }
}

/// The addresses `init` writes to a new config.
struct Listen {
    http: SocketAddr,
    operator: SocketAddr,
    p2p: String,
}

fn init(
    dir: &Path,
    role: Role,
    name: &str,
    listen: Listen,
    passphrase_file: Option<PathBuf>,
    (tls, tls_names): (TlsSetup, Vec<String>),
) -> anyhow::Result<()> {
    let config_path = dir.join("node.toml");
    let member_path = dir.join("member.json");
    for path in [
        &config_path,
        &member_path,
        &dir.join(ADMIN_TOKEN_FILE),
        &dir.join(setup::TLS_DIR),
    ] {
        if path.exists() {
            bail!(
                "{} already exists; init never overwrites a node",
                path.display()
            );
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut config = NodeConfig::default();
    config.http.listen = listen.http;
    config.operator.listen = listen.operator;
    config.p2p.listen = listen.p2p;
    let passphrase_file = passphrase_file
        .map(|path| std::path::absolute(&path))
        .transpose()
        .context("resolving the passphrase file's path")?;
    config.node.passphrase_file = passphrase_file.clone();
    config.operator.admin_token_file = Some(ADMIN_TOKEN_FILE.into());
    config.http.plain_http = matches!(tls, TlsSetup::Plain);
    let names = setup::certificate_names(listen.http, &tls_names);
    if let Some((cert, key)) = setup::write_tls(dir, &tls, &names)? {
        config.http.tls_cert_file = Some(cert);
        config.http.tls_key_file = Some(key);
    }
    config.check()?;
    let passphrase = keystore::passphrase(passphrase_file.as_deref())?;
    let key = keystore::create(&dir.join(&config.node.key_file), &passphrase)?;
    let member = Member {
        did: key.did().clone(),
        role,
        peer_id: peer_id_of(key.did()).to_string(),
        name: name.to_owned(),
    };
    let member_json = serde_json::to_string_pretty(&member)?;
    std::fs::write(&member_path, format!("{member_json}\n"))
        .with_context(|| format!("writing {}", member_path.display()))?;
    setup::write_admin_token(&dir.join(ADMIN_TOKEN_FILE))?;
    std::fs::write(&config_path, config.starter_toml())
        .with_context(|| format!("writing {}", config_path.display()))?;
    println!("{}", serde_json::to_string(&member)?);
    eprintln!(
        "created {} (config), {} (encrypted key), {} (operator admin token) and {} (this node's genesis entry)",
        config_path.display(),
        dir.join(&config.node.key_file).display(),
        dir.join(ADMIN_TOKEN_FILE).display(),
        member_path.display()
    );
    Ok(())
}

/// `tls-ca DIR`: a CA for a demo or test consortium.
fn tls_ca(dir: &Path) -> anyhow::Result<()> {
    if dir.join(setup::CA_KEY_FILE).exists() || dir.join(setup::CA_CERT_FILE).exists() {
        bail!(
            "{} already holds a CA; tls-ca never overwrites",
            dir.display()
        );
    }
    setup::write_ca(dir)?;
    eprintln!(
        "created the CA {} (trust it) and {} (keep it private)",
        dir.join(setup::CA_CERT_FILE).display(),
        dir.join(setup::CA_KEY_FILE).display()
    );
    Ok(())
}

fn genesis(network: &str, out: &Path, members: &[PathBuf]) -> anyhow::Result<()> {
    let members = members
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str::<Member>(&text)
                .with_context(|| format!("{} is not a member file", path.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let genesis = Genesis {
        network: network.to_owned(),
        members,
    };
    let text = serde_json::to_string_pretty(&genesis)?;
    Genesis::parse(&text).context("the genesis would be invalid")?;
    std::fs::write(out, format!("{text}\n"))
        .with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "wrote {} with {} members",
        out.display(),
        genesis.members.len()
    );
    Ok(())
}

/// The offline audit: of the log named by a node's config, or of a log folder.
fn audit(
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    genesis: Option<PathBuf>,
    audit_config: AuditConfig,
    json: bool,
    progress: offline_audit::Progress,
) -> anyhow::Result<()> {
    let (data_dir, genesis, records) = match (config, data_dir) {
        (Some(path), _) => {
            let config = NodeConfig::load(&path)?;
            (
                config.node.data_dir,
                Some(config.node.genesis),
                Some(config.adapter.records_dir),
            )
        }
        (None, Some(dir)) => (dir, genesis, None),
        (None, None) => bail!("give --config FILE or --data-dir DIR"),
    };
    let report = offline_audit::offline(
        &data_dir,
        genesis.as_deref(),
        records.as_deref(),
        audit_config,
        progress,
    )?;
    if json {
        let mut value = serde_json::to_value(&report)?;
        value["summary"] = serde_json::json!(report.summary());
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("{}", report.summary());
    }
    if !report.clean {
        std::process::exit(4);
    }
    Ok(())
}

fn init_tracing(json: bool) {
    let given = std::env::var("CONSENTNET_LOG").unwrap_or_else(|_| "info".to_owned());
    // gossipsub warns once per message it cannot queue for a slow or vanished peer, with
    // the whole message; sync repairs what it drops, so only its errors are logged
    // unless CONSENTNET_LOG names it.
    let directives = if given.contains("libp2p_gossipsub") {
        given
    } else {
        format!("{given},libp2p_gossipsub=error")
    };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(config: NodeConfig) -> anyhow::Result<()> {
    let genesis = Genesis::load(&config.node.genesis)?;
    let passphrase = keystore::passphrase(config.node.passphrase_file.as_deref())?;
    let key_file = config.node.key_file.clone();
    let key = tokio::task::spawn_blocking(move || keystore::open(&key_file, &passphrase))
        .await
        .context("opening the node key")??;
    let store = RocksStore::open(&config.node.data_dir)
        .with_context(|| format!("opening the log in {}", config.node.data_dir.display()))?;
    let service = Arc::new(NodeService::open(store, genesis, key.clone())?);
    if service.genesis().membership().get(key.did()).is_none() {
        bail!(
            "this node ({}) is not a member in {}",
            key.did(),
            config.node.genesis.display()
        );
    }

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let network_config = NetworkConfig::from_section(&config.p2p, &service.genesis().network)?;
    let (network, p2p_addrs, network_task) =
        p2p::start(&key, service.clone(), network_config, stopped).await?;

    let admin_token = config.operator.admin_token()?;
    let (tls, cert_watch) = match (&config.http.tls_cert_file, &config.http.tls_key_file) {
        (Some(cert), Some(key)) if !config.http.plain_http => {
            let cert = Arc::new(ReloadingCert::load(cert, key)?);
            let acceptor = server::tls::acceptor(cert.clone())?;
            (Some(acceptor), Some(tokio::spawn(server::tls::watch(cert))))
        }
        _ => (None, None),
    };
    let public = bind(config.http.listen, "the public HTTP API").await?;
    let operator = bind(config.operator.listen, "the operator HTTP API").await?;
    let bound = public.local_addr().context("reading the bound address")?;
    let operator_bound = operator.local_addr().context("reading the bound address")?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let public_url = config
        .http
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{bound}"));
    let shutdown = shutdown_signal()?;
    server::print_listening(bound, &public_url, operator_bound, &p2p_addrs, key.did());
    let submitter = Submitter::start(service.clone(), Some(network.clone()))
        .context("starting the submitter")?;
    let every = config.p2p.checkpoint_interval_ms;
    let checkpoints = core::start_checkpoints(service.clone(), submitter.clone(), every);
    let role = service
        .genesis()
        .membership()
        .get(key.did())
        .map(|m| m.role);
    let is_bank = role == Some(Role::Bank);
    // Banks fetch every published mini-app's files: they review and host them.
    service
        .hold_bundles(&config.node.bundles_dir, is_bank)
        .context("opening the bundle folder")?;
    if role == Some(Role::Regulator) {
        service.fetch_records_into(config.adapter.records_dir.clone());
    }
    let links = is_bank
        .then(|| consentnet_node::bank::open_links(&config.adapter))
        .transpose()?;
    let (bank, adapter_routes, bank_tasks) = if let Some(links) = &links {
        let (bank, routes, tasks) = bank::start(
            &config.adapter,
            bank::app_rate(&config.limits),
            admin_token.clone(),
            service.clone(),
            submitter.clone(),
            public_url.clone(),
            links.clone(),
        )?;
        tracing::info!(%public_url, "serving the unified Open Banking API");
        if config.http.public_url.is_none() && !bound.ip().is_loopback() {
            tracing::warn!(
                %public_url,
                "http.public_url is not set: consents name a revocation status list at the \
                 bound address, which a change of address or port leaves behind"
            );
        }
        (Some(bank), Some(routes), Some(tasks))
    } else {
        (None, None, None)
    };
    let state = AppState {
        service: service.clone(),
        submitter,
        network: Some(network),
        bank,
        links,
        public_url: public_url.clone(),
    };
    // The routers hold the log: they must not outlive the servers, or the log cannot close
    // at shutdown.
    let surfaces = server::surfaces(state, adapter_routes, &config, &public_url, admin_token)?;
    let listeners = server::Listeners {
        public,
        tls,
        operator,
        limits: server::listener::ConnectionLimits {
            header_timeout: std::time::Duration::from_millis(config.http.header_timeout_ms),
            per_ip: config.http.max_connections_per_ip,
            total: config.http.max_connections,
        },
    };
    server::serve(listeners, surfaces, shutdown).await;
    if let Some(watch) = cert_watch {
        watch.abort();
    }
    checkpoints.abort();
    let _ = checkpoints.await;
    if let Some(tasks) = bank_tasks {
        tasks.stop().await;
    }
    let _ = stop.send(true);
    let _ = network_task.await;
    close(service).await;
    tracing::info!("node stopped");
    Ok(())
}

/// Binds one HTTP listener, naming it in the error.
async fn bind(address: SocketAddr, what: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("binding {what} to {address}"))
}

/// Waits (at most 10 s) for the submitter and validator threads to let go of the log once
/// their queues close, then closes it.
async fn close(service: Arc<NodeService>) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while Arc::strong_count(&service) > 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    match Arc::try_unwrap(service) {
        Ok(service) => service.close(),
        Err(_) => tracing::warn!("log still in use at shutdown; it closes on exit"),
    }
}

/// Resolves on the first SIGTERM or SIGINT, so in-flight requests finish before exit.
/// The handlers are installed when this is called, before the node says it listens: a
/// signal sent right after the listening line still shuts the node down cleanly.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("shutdown requested");
    })
}
