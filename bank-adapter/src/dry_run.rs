//! A connector's dry run before it goes into service: each operation tried against the bank core (an unknown account and payment must read as unknown, a sample account must read in full, nothing that moves money runs), with a readable report.

use std::time::Instant;

use serde::Serialize;

use crate::connector::{BankConnector, ConnectorError, TransactionQuery};

/// An account and payment reference no core holds.
pub const UNKNOWN: &str = "consentnet-dry-run-no-such-resource";

/// One operation's try.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// What was tried, e.g. `balances of the sample account`.
    pub operation: String,
    /// `passed`, `failed` or `skipped`.
    pub result: &'static str,
    /// What came back, for people.
    pub detail: String,
    /// How long it took, in milliseconds.
    pub ms: u64,
}

/// The whole dry run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DryRun {
    /// The connector's name.
    pub connector: String,
    /// True when no step failed.
    pub passed: bool,
    /// Each step, in order.
    pub steps: Vec<Step>,
}

fn step<T>(
    steps: &mut Vec<Step>,
    operation: &str,
    run: impl FnOnce() -> Result<T, ConnectorError>,
    judge: impl FnOnce(Result<T, ConnectorError>) -> Result<String, String>,
) {
    let started = Instant::now();
    let outcome = judge(run());
    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (result, detail) = match outcome {
        Ok(detail) => ("passed", detail),
        Err(detail) => ("failed", detail),
    };
    steps.push(Step {
        operation: operation.to_owned(),
        result,
        detail,
        ms,
    });
}

/// Tries each operation of `connector`; `sample` is an account the core holds.
/// `payments` says whether the connector is mapped for payments.
pub fn dry_run(connector: &dyn BankConnector, sample: Option<&str>, payments: bool) -> DryRun {
    let mut steps = Vec::new();
    step(
        &mut steps,
        "account: an unknown account reads as unknown",
        || connector.accounts(&[UNKNOWN.to_owned()]),
        |result| match result {
            Ok(found) if found.is_empty() => Ok("unknown, as it should be".into()),
            Ok(_) => Err("the core returned an account for a reference it cannot hold".into()),
            Err(error) => Err(error.to_string()),
        },
    );
    match sample {
        Some(account) => sample_steps(connector, account, &mut steps),
        None => steps.push(Step {
            operation: "account, balances, transactions of a sample account".into(),
            result: "skipped",
            detail: "name a sample account the core holds to try them".into(),
            ms: 0,
        }),
    }
    if payments {
        step(
            &mut steps,
            "payment: an unknown payment reads as unknown",
            || connector.payment(UNKNOWN),
            |result| match result {
                Err(ConnectorError::NotFound(_)) => Ok("unknown, as it should be".into()),
                Ok(_) => Err("the core returned a payment for a reference it cannot hold".into()),
                Err(error) => Err(error.to_string()),
            },
        );
        steps.push(Step {
            operation: "create_payment".into(),
            result: "skipped",
            detail: "a dry run never moves money".into(),
            ms: 0,
        });
    }
    DryRun {
        connector: connector.name().to_owned(),
        passed: steps.iter().all(|s| s.result != "failed"),
        steps,
    }
}

fn sample_steps(connector: &dyn BankConnector, account: &str, steps: &mut Vec<Step>) {
    step(
        steps,
        "account: the sample account",
        || connector.accounts(&[account.to_owned()]),
        |result| match result {
            Ok(found) => match found.first() {
                Some(a) => Ok(format!(
                    "{} {} in {}",
                    a.account_sub_type, a.account_type, a.currency
                )),
                None => Err("the core does not know the sample account".into()),
            },
            Err(error) => Err(error.to_string()),
        },
    );
    step(
        steps,
        "balances of the sample account",
        || connector.balances(account),
        |result| match result {
            Ok(balances) => Ok(format!("{} balances", balances.len())),
            Err(error) => Err(error.to_string()),
        },
    );
    let query = TransactionQuery {
        page: 1,
        page_size: 10,
        ..Default::default()
    };
    step(
        steps,
        "transactions of the sample account",
        || connector.transactions(account, &query),
        |result| match result {
            Ok(page) => Ok(format!(
                "{} on the first page{}",
                page.items.len(),
                if page.more { ", more after" } else { "" }
            )),
            Err(error) => Err(error.to_string()),
        },
    );
}
