//! The `consentnet-bankcore` binary: runs one bank-core simulator (Berlin Group, legacy or ISO 20022 style) over a seeded sandbox ledger, for demos and tests of the mapping connector.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use consentnet_bank_adapter::sandbox::SandboxBank;
use consentnet_bank_adapter::simulators::{Style, router};

/// A bank-core simulator with its own API shape.
#[derive(Debug, Parser)]
#[command(name = "consentnet-bankcore", version, about, long_about)]
struct Cli {
    /// Which API to speak.
    #[arg(long, value_enum, required_unless_present = "list_accounts")]
    style: Option<StyleArg>,
    /// Print the ledger's synthetic accounts as JSON and exit, instead of serving. A
    /// node's embedded sandbox bank with the same seed holds the same accounts.
    #[arg(long)]
    list_accounts: bool,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Seed of the sandbox ledger behind it (the same seed gives the same accounts as a
    /// node's embedded sandbox bank).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StyleArg {
    /// Berlin Group NextGenPSD2 1.3.9 account information.
    Berlin,
    /// A legacy core: upper-case fields, pence, dd/mm/yyyy, an API key.
    Legacy,
    /// An ISO 20022 XML core: camt.052, camt.053, pain.001/002, HTTP Basic.
    Iso,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.list_accounts {
        use std::io::Write as _;
        let bank = SandboxBank::seeded(cli.seed, chrono::Utc::now());
        let mut out = std::io::stdout().lock();
        for (id, _) in bank.account_ids() {
            if let Some(account) = bank.account(&id) {
                let line = serde_json::json!({
                        "account": account.account_id,
                        "holder": account.name,
                        "currency": account.currency,
                        "type": account.account_sub_type,
                });
                // A closed pipe (e.g. `| head`) just ends the listing.
                if writeln!(out, "{line}").is_err() {
                    break;
                }
            }
        }
        return Ok(());
    }
    let Some(style) = cli.style else {
        anyhow::bail!("give --style berlin, legacy or iso");
    };
    let style_name = format!("{style:?}").to_lowercase();
    let style = match style {
        StyleArg::Berlin => Style::Berlin,
        StyleArg::Legacy => Style::Legacy,
        StyleArg::Iso => Style::Iso,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(cli.listen)
            .await
            .with_context(|| format!("binding {}", cli.listen))?;
        let bound = listener.local_addr()?;
        println!(
            "{}",
            serde_json::json!({ "event": "listening", "http": bound.to_string(), "style": style_name })
        );
        let bank = Arc::new(SandboxBank::seeded(cli.seed, chrono::Utc::now()));
        axum::serve(listener, router(style, bank).into_make_service())
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("serving")
    })
}
