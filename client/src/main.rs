//! The `consentnet` command line: wallet, TSP, bank admin and regulator commands, speaking HTTP to nodes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use consentnet_client::node_api::{NodeApiError, NodeClient};

/// The consentnet command line.
///
/// Exit codes: 0 success, 2 usage error, 3 refused by the node, 1 any other failure.
/// At this milestone it reads a node's status; the wallet, TSP, bank admin and
/// regulator commands arrive in later milestones.
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
    /// Show a node's status: version, peers and log size.
    Status {
        /// The node's HTTP API, e.g. http://127.0.0.1:8080.
        #[arg(long, env = "CONSENTNET_NODE", default_value = "http://127.0.0.1:8080")]
        node: String,
    },
}

const EXIT_FAILURE: u8 = 1;
const EXIT_REFUSED: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("consentnet: {error:#}");
            let refused = error
                .downcast_ref::<NodeApiError>()
                .is_some_and(|e| matches!(e, NodeApiError::Refused { .. }));
            ExitCode::from(if refused { EXIT_REFUSED } else { EXIT_FAILURE })
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Status { node } => {
            let status = NodeClient::new(node)?.status()?;
            if cli.json {
                println!("{}", serde_json::to_string(&status)?);
            } else {
                println!("node        {node}");
                println!("version     {}", status.version);
                println!("peers       {}", status.peers);
                println!("log entries {}", status.log_entries);
            }
            Ok(())
        }
    }
}
