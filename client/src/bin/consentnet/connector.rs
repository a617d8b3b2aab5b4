//! `consentnet bank connector`: a mapping file dry-run against its core from the bank node, put in service, or removed, with the dry run's report for people.

use anyhow::anyhow;
use consentnet_client::commands;
use consentnet_client::node_api::NodeClient;
use consentnet_identity::util::percent_encode;
use serde_json::json;

use crate::args::*;
use crate::run::show;

pub fn bank_connector(json: bool, command: &ConnectorCommand) -> anyhow::Result<()> {
    let (operator, token_file) = match command {
        ConnectorCommand::Put(ConnectorPutArgs {
            operator,
            token_file,
            ..
        })
        | ConnectorCommand::Test(ConnectorPutArgs {
            operator,
            token_file,
            ..
        })
        | ConnectorCommand::Remove(ConnectorRemoveArgs {
            operator,
            token_file,
        }) => (operator, token_file),
    };
    let token = commands::admin_token(token_file)?;
    let headers = [("x-admin-token", token.as_str())];
    let node = NodeClient::new(&operator.operator)?;
    let answer = match command {
        ConnectorCommand::Put(args) | ConnectorCommand::Test(args) => {
            let text = std::fs::read_to_string(&args.mapping)
                .map_err(|e| anyhow!("reading {}: {e}", args.mapping.display()))?;
            let report = node.post_with(
                "/v1/admin/connector/test",
                &headers,
                &json!({ "mapping": text, "account": args.account }),
            )?;
            let passed = report["passed"] == true;
            if !json {
                print!("{}", dry_run_text(&report));
            }
            let ConnectorCommand::Put(_) = command else {
                if json {
                    show(true, &report)?;
                }
                anyhow::ensure!(passed, "the dry run failed");
                return Ok(());
            };
            anyhow::ensure!(
                passed || args.force,
                "the dry run failed, so nothing was installed (fix the mapping, or --force)"
            );
            let mut path = format!("/v1/admin/connector?force={}", args.force);
            if let Some(account) = &args.account {
                path.push_str(&format!("&account={}", percent_encode(account, b"")));
            }
            node.put_text(&path, &headers, &text)?
        }
        ConnectorCommand::Remove(_) => node.delete("/v1/admin/connector", &headers)?,
    };
    show(json, &answer)
}

/// A dry-run report as lines for a terminal.
fn dry_run_text(report: &serde_json::Value) -> String {
    let passed = report["passed"] == true;
    let mut out = format!(
        "dry run of {}: {}\n",
        report["connector"].as_str().unwrap_or("?"),
        if passed { "passed" } else { "FAILED" }
    );
    for step in report["steps"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {:<7} {} ({} ms): {}\n",
            step["result"].as_str().unwrap_or("?"),
            step["operation"].as_str().unwrap_or("?"),
            step["ms"],
            step["detail"].as_str().unwrap_or("")
        ));
    }
    out
}
