//! The account information resources beyond one account's details, balances and transactions: each per-account list, its bulk form over the consent's accounts, statements, parties and products, routed through the same consent check.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use chrono::{DateTime, Utc};
use consentnet_identity::Permission;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{AIS_BASE, Adapter, balance_json, one_page};
use crate::call::Call;
use crate::connector::{BankConnector, ConnectorError, Resource};
use crate::enforce::{Authorized, Operation};
use crate::problem::{ObCode, ObError};

mod bodies;
mod transactions;

/// The records of one account for a listing, as OBIE bodies, within the asked period.
type Build = fn(&dyn BankConnector, &str, &Authorized, &Period) -> Result<Vec<Value>, ObError>;

/// The statement filters (`fromStatementDateTime`, `toStatementDateTime`); the other
/// listings take no query.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PeriodQuery {
    from_statement_date_time: Option<String>,
    to_statement_date_time: Option<String>,
}

/// The statement period asked for: statements starting at or after `from` and ending
/// at or before `to`.
#[derive(Debug, Default, Clone, Copy)]
struct Period {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

type AskedPeriod = Result<Query<PeriodQuery>, QueryRejection>;

fn period(asked: AskedPeriod) -> Result<Period, ObError> {
    let Query(query) = asked.map_err(|e| ObError::new(ObCode::InvalidQuery, e.body_text()))?;
    let parse = |name: &str, text: &Option<String>| {
        text.as_deref()
            .map(|t| transactions::date_time(name, t))
            .transpose()
    };
    Ok(Period {
        from: parse("fromStatementDateTime", &query.from_statement_date_time)?,
        to: parse("toStatementDateTime", &query.to_statement_date_time)?,
    })
}

/// A resource listed per account and in bulk.
#[derive(Clone, Copy)]
struct Listing {
    each: Operation,
    bulk: Operation,
    /// The array's name in `Data`, e.g. `Beneficiary`.
    key: &'static str,
    build: Build,
}

fn has(authorized: &Authorized, permission: Permission) -> bool {
    authorized.permissions.contains(&permission)
}

const LISTINGS: [Listing; 8] = [
    Listing {
        each: Operation::Balances,
        bulk: Operation::BulkBalances,
        key: "Balance",
        build: |c, a, _, _| Ok(c.balances(a)?.iter().map(balance_json).collect()),
    },
    Listing {
        each: Operation::Beneficiaries,
        bulk: Operation::BulkBeneficiaries,
        key: "Beneficiary",
        build: |c, a, auth, _| {
            let detail = has(auth, Permission::ReadBeneficiariesDetail);
            Ok(c.beneficiaries(a)?
                .iter()
                .map(|b| bodies::beneficiary(b, detail))
                .collect())
        },
    },
    Listing {
        each: Operation::DirectDebits,
        bulk: Operation::BulkDirectDebits,
        key: "DirectDebit",
        build: |c, a, _, _| {
            Ok(c.direct_debits(a)?
                .iter()
                .map(bodies::direct_debit)
                .collect())
        },
    },
    Listing {
        each: Operation::StandingOrders,
        bulk: Operation::BulkStandingOrders,
        key: "StandingOrder",
        build: |c, a, auth, _| {
            let detail = has(auth, Permission::ReadStandingOrdersDetail);
            Ok(c.standing_orders(a)?
                .iter()
                .map(|o| bodies::standing_order(o, detail))
                .collect())
        },
    },
    Listing {
        each: Operation::ScheduledPayments,
        bulk: Operation::BulkScheduledPayments,
        key: "ScheduledPayment",
        build: |c, a, auth, _| {
            let detail = has(auth, Permission::ReadScheduledPaymentsDetail);
            Ok(c.scheduled_payments(a)?
                .iter()
                .map(|p| bodies::scheduled_payment(p, detail))
                .collect())
        },
    },
    Listing {
        each: Operation::Statements,
        bulk: Operation::BulkStatements,
        key: "Statement",
        build: |c, a, auth, period| {
            let detail = has(auth, Permission::ReadStatementsDetail);
            Ok(c.statements(a)?
                .iter()
                .filter(|s| period.from.is_none_or(|from| s.start >= from))
                .filter(|s| period.to.is_none_or(|to| s.end <= to))
                .map(|s| bodies::statement(s, detail))
                .collect())
        },
    },
    Listing {
        each: Operation::Product,
        bulk: Operation::BulkProducts,
        key: "Product",
        build: |c, a, _, _| Ok(vec![bodies::product(&c.product(a)?)]),
    },
    Listing {
        each: Operation::Offers,
        bulk: Operation::BulkOffers,
        key: "Offer",
        build: |_, _, _, _| Err(ConnectorError::NotOffered(Resource::Offers).into()),
    },
];

/// The path of `operation` with its ids filled in, under the AIS base.
fn path_of(operation: Operation, account: &str, statement: &str) -> String {
    let template = operation.name().trim_start_matches("GET /aisp");
    format!(
        "{AIS_BASE}{}",
        template
            .replace("{AccountId}", account)
            .replace("{StatementId}", statement)
    )
}

/// The route path of `operation`, as axum writes it.
fn route_of(operation: Operation) -> String {
    format!(
        "{AIS_BASE}{}",
        operation.name().trim_start_matches("GET /aisp")
    )
}

/// The routes of this module.
pub fn routes() -> Router<Arc<Adapter>> {
    let mut router = Router::new();
    for listing in LISTINGS {
        router = router
            .route(
                &route_of(listing.each),
                get(move |state, path, query, headers| each(state, path, query, headers, listing)),
            )
            .route(
                &route_of(listing.bulk),
                get(move |state, query, headers| bulk(state, query, headers, listing)),
            );
    }
    router
        .route(&route_of(Operation::Parties), get(parties))
        .route(&route_of(Operation::AccountParty), get(account_party))
        .route(&route_of(Operation::Party), get(own_party))
        .route(&route_of(Operation::Statement), get(statement))
        .route(&route_of(Operation::StatementFile), get(statement_file))
        .merge(transactions::routes())
}

async fn each(
    State(adapter): State<Arc<Adapter>>,
    Path(id): Path<String>,
    asked: AskedPeriod,
    headers: HeaderMap,
    listing: Listing,
) -> Response {
    let path = path_of(listing.each, &id, "");
    let call = Call::read(&adapter, &headers, listing.each, path, Some(&id));
    let wanted = id.clone();
    call.run(move |connector, authorized| {
        let period = period(asked)?;
        let list = (listing.build)(connector.as_ref(), &wanted, &authorized, &period)?;
        Ok(one_page(json!({ listing.key: list })))
    })
    .await
}

/// The records of every account in the consent; an account the core no longer knows is
/// left out.
async fn bulk(
    State(adapter): State<Arc<Adapter>>,
    asked: AskedPeriod,
    headers: HeaderMap,
    listing: Listing,
) -> Response {
    let path = path_of(listing.bulk, "", "");
    let call = Call::read(&adapter, &headers, listing.bulk, path, None);
    call.run(move |connector, authorized| {
        let period = period(asked)?;
        let mut list = Vec::new();
        for account in &authorized.consent.terms.accounts {
            match (listing.build)(connector.as_ref(), account, &authorized, &period) {
                Ok(records) => list.extend(records),
                Err(error) if error.code == ObCode::ResourceNotFound => {}
                Err(error) => return Err(error),
            }
        }
        Ok(one_page(json!({ listing.key: list })))
    })
    .await
}

async fn parties(
    State(adapter): State<Arc<Adapter>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = path_of(Operation::Parties, &id, "");
    let call = Call::read(&adapter, &headers, Operation::Parties, path, Some(&id));
    let wanted = id.clone();
    call.run(move |connector, _| {
        let list: Vec<Value> = connector
            .parties(&wanted)?
            .iter()
            .map(bodies::party)
            .collect();
        Ok(one_page(json!({ "Party": list })))
    })
    .await
}

/// The account's principal party (its first party when none is marked principal).
fn principal(connector: &dyn BankConnector, account: &str) -> Result<Value, ObError> {
    let parties = connector.parties(account)?;
    let party = parties
        .iter()
        .find(|p| p.account_role == "UK.OBIE.Principal")
        .or(parties.first())
        .ok_or_else(|| ObError::new(ObCode::ResourceNotFound, format!("no party of {account}")))?;
    Ok(bodies::party(party))
}

async fn account_party(
    State(adapter): State<Arc<Adapter>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = path_of(Operation::AccountParty, &id, "");
    let call = Call::read(&adapter, &headers, Operation::AccountParty, path, Some(&id));
    let wanted = id.clone();
    call.run(move |connector, _| {
        Ok(one_page(
            json!({ "Party": principal(connector.as_ref(), &wanted)? }),
        ))
    })
    .await
}

/// `GET /party`: the client's own party, the principal of the consent's first account
/// (the client holds every account of its consent).
async fn own_party(State(adapter): State<Arc<Adapter>>, headers: HeaderMap) -> Response {
    let path = path_of(Operation::Party, "", "");
    let call = Call::read(&adapter, &headers, Operation::Party, path, None);
    call.run(move |connector, authorized| {
        let first = authorized.consent.terms.accounts.first().ok_or_else(|| {
            ObError::new(ObCode::ResourceNotFound, "the consent names no account")
        })?;
        Ok(one_page(
            json!({ "Party": principal(connector.as_ref(), first)? }),
        ))
    })
    .await
}

/// The statement `statement` of `account`, or `404 not_found`.
fn find_statement(
    connector: &dyn BankConnector,
    account: &str,
    statement: &str,
) -> Result<crate::connector::Statement, ObError> {
    connector
        .statements(account)?
        .into_iter()
        .find(|s| s.statement_id == statement)
        .ok_or_else(|| {
            ObError::new(
                ObCode::ResourceNotFound,
                format!("no statement {statement}"),
            )
        })
}

async fn statement(
    State(adapter): State<Arc<Adapter>>,
    Path((id, statement)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = path_of(Operation::Statement, &id, &statement);
    let call = Call::read(&adapter, &headers, Operation::Statement, path, Some(&id));
    let wanted = id.clone();
    call.run(move |connector, authorized| {
        let found = find_statement(connector.as_ref(), &wanted, &statement)?;
        let detail = has(&authorized, Permission::ReadStatementsDetail);
        Ok(one_page(
            json!({ "Statement": [bodies::statement(&found, detail)] }),
        ))
    })
    .await
}

/// Statement files are not offered: the statement is found (or not), then `not_offered`.
async fn statement_file(
    State(adapter): State<Arc<Adapter>>,
    Path((id, statement)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = path_of(Operation::StatementFile, &id, &statement);
    let call = Call::read(
        &adapter,
        &headers,
        Operation::StatementFile,
        path,
        Some(&id),
    );
    let wanted = id.clone();
    call.run(move |connector, _| {
        find_statement(connector.as_ref(), &wanted, &statement)?;
        Err(ObError::new(
            ObCode::NotOffered,
            "this bank does not offer statement files; the statement and its transactions are served",
        ))
    })
    .await
}
