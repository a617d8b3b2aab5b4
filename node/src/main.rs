//! The `consentnet-node` binary: parses flags, serves the node HTTP API and shuts down cleanly on SIGTERM or SIGINT.

use std::net::SocketAddr;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// A consentnet consortium node.
///
/// At this milestone a node serves its HTTP API (`/healthz`, `/status`) and holds no
/// log and no peers; consent replication arrives in later milestones.
#[derive(Debug, Parser)]
#[command(name = "consentnet-node", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the node until SIGTERM or SIGINT.
    ///
    /// Once listening, prints one JSON line to stdout with the bound address, e.g.
    /// `{"event":"listening","http":"127.0.0.1:8080"}`, so scripts and tests can
    /// use port 0 and learn the real port. Logs go to stderr.
    Run {
        /// Address for the node HTTP API; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: SocketAddr,
        /// Write logs as JSON lines instead of text.
        #[arg(long)]
        log_json: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { http, log_json } => {
            init_tracing(log_json);
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(run(http))
        }
    }
}

fn init_tracing(json: bool) {
    let filter =
        EnvFilter::try_from_env("CONSENTNET_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(http: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(http)
        .await
        .with_context(|| format!("binding the HTTP API to {http}"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    println!(
        "{}",
        serde_json::json!({ "event": "listening", "http": bound.to_string() })
    );
    tracing::info!(%bound, "node HTTP API listening");
    axum::serve(listener, consentnet_node::http::app())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving the HTTP API")?;
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
