//! The `consentnet` command line: wallet, TSP, bank admin and regulator commands, speaking HTTP to nodes.

mod args;
mod connector;
mod run;

use std::process::ExitCode;

use clap::Parser;
use consentnet_client::node_api::NodeApiError;

use args::*;

const EXIT_FAILURE: u8 = 1;
const EXIT_REFUSED: u8 = 3;
const EXIT_FINDINGS: u8 = 4;

/// The audit found problems.
#[derive(Debug, thiserror::Error)]
#[error("the audit found problems")]
pub struct Findings;

/// A credential or presentation did not verify.
#[derive(Debug, thiserror::Error)]
#[error("it does not verify: {0}")]
pub struct NotVerified(pub String);

/// Ends the process quietly when stdout is a closed pipe (`consentnet wallet list | head`):
/// the standard print macros panic on a write error, and a reader that stopped reading is
/// no failure of this program.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    if let Some(path) = &cli.ca_file {
        consentnet_client::node_api::trust_ca_file(path);
    }
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("consentnet: {error:#}");
            let refused = error
                .downcast_ref::<NodeApiError>()
                .is_some_and(|e| matches!(e, NodeApiError::Refused { .. }));
            let found = error.downcast_ref::<Findings>().is_some()
                || error.downcast_ref::<NotVerified>().is_some();
            let code = if found {
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

/// Runs the command `cli` names.
fn run(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Demo(args) => run::demo(cli.json, args),
        Command::Audit(AuditCommand::Verify(args)) => run::audit_verify(cli.json, args),
        Command::Wallet(WalletCommand::Init(wallet)) => run::wallet_init(cli.json, wallet),
        Command::Wallet(WalletCommand::NewDid(args)) => run::wallet_new_did(cli.json, args),
        Command::Catalog(args) => run::catalog(cli.json, args),
        Command::Wallet(WalletCommand::Link(args)) => run::wallet_link(cli.json, args),
        Command::Wallet(WalletCommand::SignIn(args)) => run::wallet_sign_in(cli.json, args),
        Command::Wallet(WalletCommand::ExportJwk(args)) => run::wallet_export_jwk(args),
        Command::Wallet(WalletCommand::Approve(args)) => run::wallet_approve(cli.json, args),
        Command::Bank(BankCommand::LinkCode(args)) => run::bank_link_code(cli.json, args),
        Command::Wallet(WalletCommand::List(wallet)) => run::wallet_list(cli.json, wallet),
        Command::Consent(ConsentCommand::Grant(args)) => run::consent_grant(cli.json, args),
        Command::Consent(ConsentCommand::Revoke(args)) => run::consent_revoke(cli.json, args),
        Command::Consent(ConsentCommand::List(args)) => run::consent_list(cli.json, args),
        Command::Consent(ConsentCommand::Accesses(args)) => run::consent_accesses(cli.json, args),
        Command::Consent(ConsentCommand::Status(args)) => run::consent_status(cli.json, args),
        Command::Consent(ConsentCommand::Verify(args)) => run::consent_verify(cli.json, args),
        Command::Tsp(TspCommand::Publish(args)) => run::tsp_publish(cli.json, args),
        Command::Tsp(TspCommand::Get(args)) => run::tsp_get(cli.json, args),
        Command::Bank(BankCommand::Connector(command)) => {
            connector::bank_connector(cli.json, command)
        }
        Command::Bank(BankCommand::Decide(args)) => run::bank_decide(cli.json, args),
        Command::Status(args) => run::status(cli.json, args),
    }
}
