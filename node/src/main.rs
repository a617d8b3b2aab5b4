//! The `consentnet-node` binary: `init` makes a node key and starter config, `genesis` writes a consortium's genesis file, `run` serves the node until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use consentnet_bank_adapter::api::Adapter;
use consentnet_bank_adapter::enforce::ReplayCache;
use consentnet_bank_adapter::sandbox::SandboxBank;
use consentnet_consent_chain::{Genesis, Member, RocksStore, Role};
use consentnet_node::bank;
use consentnet_node::config::NodeConfig;
use consentnet_node::http::{AppState, app};
use consentnet_node::keystore;
use consentnet_node::network::{self, NetworkConfig, peer_id_of};
use consentnet_node::service::{NodeService, Submitter};
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
        /// HTTP API address written to the config.
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: SocketAddr,
        /// libp2p listen address written to the config.
        #[arg(long, default_value = "/ip4/0.0.0.0/tcp/7400")]
        p2p: String,
        /// A file holding the key's passphrase (recorded in the config).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
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
    /// Audit a stopped node's log offline: every signature, link, credential and event,
    /// equivocations, and accesses served under unusable consents. Exit code 0 when clean,
    /// 4 when something was found, 1 when the audit could not run.
    Audit {
        /// The node's config file (for its data folder and genesis).
        #[arg(long, short)]
        config: PathBuf,
        /// How long after a revocation an access still counts as in time (ms).
        #[arg(long, default_value_t = 1_000)]
        propagation_bound_ms: u64,
        /// Print the whole report as JSON instead of the summary.
        #[arg(long)]
        json: bool,
    },
    /// Run the node until SIGTERM or SIGINT.
    ///
    /// Once listening, prints one JSON line to stdout with the bound addresses, e.g.
    /// `{"event":"listening","http":"127.0.0.1:8080","p2p":[...],"peer_id":...}`, so
    /// scripts and tests can use port 0 and learn the real ports. Logs go to stderr.
    Run {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Overrides http.listen.
        #[arg(long)]
        http: Option<SocketAddr>,
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
            p2p,
            passphrase_file,
        } => init(&dir, role.into(), &name, http, p2p, passphrase_file),
        Command::Genesis {
            network,
            out,
            members,
        } => genesis(&network, &out, &members),
        Command::Audit {
            config,
            propagation_bound_ms,
            json,
        } => {
            let config = NodeConfig::load(&config)?;
            let genesis = Genesis::load(&config.node.genesis)?;
            let store = RocksStore::open(&config.node.data_dir).with_context(|| {
                format!(
                    "opening the log in {} (a running node holds it: stop it, or use `consentnet audit --node URL`)",
                    config.node.data_dir.display()
                )
            })?;
            let report = consentnet_consent_chain::audit::audit(
                &store,
                &genesis,
                consentnet_consent_chain::audit::AuditConfig {
                    propagation_bound_ms,
                },
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{}", report.summary());
            }
            if !report.clean {
                std::process::exit(4);
            }
            Ok(())
        }
        Command::Run {
            config,
            http,
            p2p,
            bootstrap,
            log_json,
        } => {
            let mut config = NodeConfig::load(&config)?;
            if let Some(http) = http {
                config.http.listen = http;
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

fn init(
    dir: &Path,
    role: Role,
    name: &str,
    http: SocketAddr,
    p2p: String,
    passphrase_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let config_path = dir.join("node.toml");
    let member_path = dir.join("member.json");
    for path in [&config_path, &member_path] {
        if path.exists() {
            bail!(
                "{} already exists; init never overwrites a node",
                path.display()
            );
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut config = NodeConfig::default();
    config.http.listen = http;
    config.p2p.listen = p2p;
    let passphrase_file = passphrase_file
        .map(|path| std::path::absolute(&path))
        .transpose()
        .context("resolving the passphrase file's path")?;
    config.node.passphrase_file = passphrase_file.clone();
    if role == Role::Bank {
        config.adapter.admin_token_file = Some(ADMIN_TOKEN_FILE.into());
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
    if role == Role::Bank {
        write_admin_token(&dir.join(ADMIN_TOKEN_FILE))?;
    }
    std::fs::write(&config_path, config.starter_toml())
        .with_context(|| format!("writing {}", config_path.display()))?;
    println!("{}", serde_json::to_string(&member)?);
    eprintln!(
        "created {} (config), {} (encrypted key) and {} (this node's genesis entry)",
        config_path.display(),
        dir.join(&config.node.key_file).display(),
        member_path.display()
    );
    Ok(())
}

/// The bank admin API's token file `init` makes for bank nodes.
const ADMIN_TOKEN_FILE: &str = "admin-token";

/// Writes a fresh random admin token (64 hex digits), readable by the owner only.
fn write_admin_token(path: &Path) -> anyhow::Result<()> {
    use rand_core::RngCore;
    use std::io::Write;
    let mut raw = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut raw);
    let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut file| file.write_all(format!("{token}\n").as_bytes()))
        .with_context(|| format!("writing the admin token {}", path.display()))
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
    let network_config = NetworkConfig::from_section(&config.p2p)?;
    let (network, p2p_addrs, network_task) =
        network::start(&key, service.clone(), network_config, stopped).await?;

    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("binding the HTTP API to {}", config.http.listen))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    let peer_id = peer_id_of(key.did());
    println!(
        "{}",
        serde_json::json!({
            "event": "listening",
            "http": bound.to_string(),
            "p2p": p2p_addrs.iter().map(|a| format!("{a}/p2p/{peer_id}")).collect::<Vec<_>>(),
            "peer_id": peer_id.to_string(),
            "did": key.did().to_string(),
        })
    );
    tracing::info!(%bound, %peer_id, "node listening");
    let submitter = Submitter::start(service.clone(), Some(network.clone()))
        .context("starting the submitter")?;
    let is_bank = service
        .genesis()
        .membership()
        .has_role(key.did(), Role::Bank);
    let mut adapter_routes = None;
    let mut bank_adapter = None;
    let mut bank_links = None;
    let mut connector_admin = None;
    let mut recorder_task = None;
    let mut watcher_task: Option<tokio::task::JoinHandle<()>> = None;
    if is_bank {
        let public_url = config
            .adapter
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"));
        let (records, recorder) = bank::start_recorder(service.clone(), submitter.clone());
        recorder_task = Some(recorder);
        let sandbox: Arc<dyn consentnet_bank_adapter::connector::BankConnector> = Arc::new(
            SandboxBank::seeded(config.adapter.sandbox_seed, chrono::Utc::now()),
        );
        let links = Arc::new(
            consentnet_bank_adapter::links::Links::open(&config.adapter.links_file)
                .context("opening the account links")?,
        );
        bank_links = Some(links.clone());
        let adapter = Adapter {
            bank: key.did().clone(),
            public_url: public_url.clone(),
            source: Arc::new(bank::LogConsents(service.clone())),
            holders: links,
            replay: ReplayCache::new(config.adapter.replay_cache),
            signatures: consentnet_bank_adapter::signatures::SignatureBatcher::new(),
            connector: std::sync::RwLock::new(sandbox.clone()),
            records: Arc::new(records),
            ledger: Arc::new(
                consentnet_bank_adapter::payments::Ledger::open(&config.adapter.payments_journal)
                    .with_context(|| {
                    format!(
                        "opening the payments journal {}",
                        config.adapter.payments_journal.display()
                    )
                })?,
            ),
            check: Default::default(),
        };
        let adapter = Arc::new(adapter);
        let token = match &config.adapter.admin_token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading the admin token file {}", path.display()))?
                    .trim()
                    .to_owned(),
            ),
            None => None,
        };
        if token.as_ref().is_some_and(|t| t.len() < 16) {
            bail!("the admin token must be at least 16 characters");
        }
        connector_admin = Some(bank::ConnectorAdmin {
            dir: config.adapter.connectors_dir.clone(),
            token,
        });
        let problem = bank::ConnectorProblem::default();
        watcher_task = Some(bank::watch_connectors(
            adapter.clone(),
            config.adapter.connectors_dir.clone(),
            sandbox,
            problem.clone(),
        ));
        adapter_routes = Some(consentnet_bank_adapter::api::router(adapter.clone()));
        bank_adapter = Some((adapter, problem));
        tracing::info!(%public_url, "serving the unified Open Banking API");
    }
    let portal_links = bank_links.clone();
    let state = AppState {
        service: service.clone(),
        submitter,
        network: Some(network),
        admin: connector_admin,
        links: bank_links,
        adapter: bank_adapter,
    };
    let mut router = app(state.clone(), config.http.max_body_bytes);
    if let Some(routes) = adapter_routes {
        router = router.merge(routes);
    }
    if config.portal.enabled {
        let issuer = config
            .adapter
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"));
        let portal = consentnet_node::portal::Portal {
            app: state,
            server: Arc::new(consentnet_node::oauth::AuthServer::new(
                &issuer,
                key.did().clone(),
            )),
            links: portal_links,
            web: Arc::default(),
            console: Arc::default(),
        };
        // Only a bank authorizes access to accounts; every node serves the pages.
        if portal.links.is_some() {
            router = router.merge(consentnet_node::portal::routes(portal.clone()));
            tracing::info!(%issuer, "serving the OAuth 2.0 authorization server");
        }
        router = router
            .merge(consentnet_node::pages::routes(portal.clone()))
            .merge(consentnet_node::console::routes(portal))
            .layer(axum::extract::DefaultBodyLimit::max(
                config.http.max_body_bytes,
            ));
        tracing::info!(%issuer, "serving the portal pages under /portal");
    } else {
        // The state holds the log: it must not outlive the server, or the log cannot
        // close at shutdown.
        drop(state);
    }
    // `into_make_service` turns the routes into services once; serving the router itself
    // would rebuild every route for each new connection.
    axum::serve(listener, router.into_make_service())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving the HTTP API")?;
    // The watcher holds the adapter; once it goes, the access-record queue closes and
    // the recorder writes what it holds, then ends.
    if let Some(watcher) = watcher_task {
        watcher.abort();
        let _ = watcher.await;
    }
    if let Some(recorder) = recorder_task {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), recorder).await;
    }
    let _ = stop.send(true);
    let _ = network_task.await;
    // The submitter and validator threads let go of the log once their queues close.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while Arc::strong_count(&service) > 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    match Arc::try_unwrap(service) {
        Ok(service) => service.close(),
        Err(_) => tracing::warn!("log still in use at shutdown; it closes on exit"),
    }
    tracing::info!("node stopped");
    Ok(())
}

/// Resolves on the first SIGTERM or SIGINT, so in-flight requests finish before exit.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM; only SIGINT stops the node");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("shutdown requested");
}
