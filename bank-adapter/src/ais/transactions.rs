//! The transaction listings: one account's, every consented account's together, and a statement's; filtered by booking time, paged, and cut to the credits, debits and detail the consent grants.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use chrono::{DateTime, NaiveDateTime, Utc};
use consentnet_identity::Permission;
use consentnet_identity::util::percent_encode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{find_statement, path_of, route_of};
use crate::api::{Adapter, PAGE_SIZE, transaction_json};
use crate::call::Call;
use crate::connector::{CreditDebit, MAX_PAGE_SIZE, Page, Transaction, TransactionQuery};
use crate::enforce::{Authorized, Operation};
use crate::problem::{ObCode, ObError};

/// The query of the transaction endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransactionsQuery {
    from_booking_date_time: Option<String>,
    to_booking_date_time: Option<String>,
    page: Option<u32>,
}

type Asked = Result<Query<TransactionsQuery>, QueryRejection>;

pub(super) fn routes() -> Router<Arc<Adapter>> {
    Router::new()
        .route(&route_of(Operation::Transactions), get(account))
        .route(&route_of(Operation::BulkTransactions), get(bulk))
        .route(&route_of(Operation::StatementTransactions), get(statement))
}

/// OBIE date-times: with or without a zone (a zone is ignored), or a bare date.
pub(super) fn date_time(name: &str, text: &str) -> Result<DateTime<Utc>, ObError> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.naive_local().and_utc());
    }
    if let Ok(at) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S") {
        return Ok(at.and_utc());
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    Err(ObError::new(
        ObCode::InvalidDateTime,
        format!("{name}: {text:?} is not an ISO 8601 date-time"),
    ))
}

/// The query read: its range, page, and the filters to repeat in paging links.
struct Range {
    query: TransactionQuery,
    filters: String,
}

fn range(asked: Asked) -> Result<Range, ObError> {
    let Query(query) = asked.map_err(|e| ObError::new(ObCode::InvalidQuery, e.body_text()))?;
    let from = query
        .from_booking_date_time
        .as_deref()
        .map(|t| date_time("fromBookingDateTime", t))
        .transpose()?;
    let to = query
        .to_booking_date_time
        .as_deref()
        .map(|t| date_time("toBookingDateTime", t))
        .transpose()?;
    let filters: String = [
        query
            .from_booking_date_time
            .as_ref()
            .map(|t| format!("fromBookingDateTime={}", percent_encode(t, b":"))),
        query
            .to_booking_date_time
            .as_ref()
            .map(|t| format!("toBookingDateTime={}", percent_encode(t, b":"))),
    ]
    .into_iter()
    .flatten()
    .map(|p| format!("{p}&"))
    .collect();
    Ok(Range {
        query: TransactionQuery {
            from,
            to,
            page: query.page.unwrap_or(1).max(1),
            page_size: PAGE_SIZE,
        },
        filters,
    })
}

/// The OBIE answer for one page: the credits, debits and detail the consent grants, and
/// `Next`/`Prev` links that repeat the filters.
fn answer(found: &Page<Transaction>, authorized: &Authorized, base: &str, range: &Range) -> Value {
    let permissions = &authorized.permissions;
    let detail = permissions.contains(&Permission::ReadTransactionsDetail);
    let credits = permissions.contains(&Permission::ReadTransactionsCredits);
    let debits = permissions.contains(&Permission::ReadTransactionsDebits);
    let list: Vec<Value> = found
        .items
        .iter()
        .filter(|t| match t.credit_debit {
            CreditDebit::Credit => credits,
            CreditDebit::Debit => debits,
        })
        .map(|t| transaction_json(t, detail))
        .collect();
    let (page, filters) = (range.query.page, &range.filters);
    let mut links = json!({});
    if found.more {
        links["Next"] = json!(format!("{base}?{filters}page={}", page + 1));
    }
    if page > 1 {
        links["Prev"] = json!(format!("{base}?{filters}page={}", page - 1));
    }
    json!({ "Data": { "Transaction": list }, "Links": links, "Meta": {} })
}

async fn account(
    State(adapter): State<Arc<Adapter>>,
    Path(id): Path<String>,
    asked: Asked,
    headers: HeaderMap,
) -> Response {
    let path = path_of(Operation::Transactions, &id, "");
    let call = Call::read(&adapter, &headers, Operation::Transactions, path, Some(&id));
    let base = call.url();
    let wanted = id.clone();
    call.run(move |connector, authorized| {
        let range = range(asked)?;
        let found = connector.transactions(&wanted, &range.query)?;
        Ok(answer(&found, &authorized, &base, &range))
    })
    .await
}

/// Every consented account's transactions in the range, newest first, paged here. Each
/// account gives at most its newest [`MAX_PAGE_SIZE`] of the range; a narrower range
/// reaches older ones.
async fn bulk(State(adapter): State<Arc<Adapter>>, asked: Asked, headers: HeaderMap) -> Response {
    let path = path_of(Operation::BulkTransactions, "", "");
    let call = Call::read(&adapter, &headers, Operation::BulkTransactions, path, None);
    let base = call.url();
    call.run(move |connector, authorized| {
        let range = range(asked)?;
        let each = TransactionQuery {
            page: 1,
            page_size: MAX_PAGE_SIZE,
            ..range.query.clone()
        };
        let mut all = Vec::new();
        let mut truncated = false;
        for account in &authorized.consent.terms.accounts {
            match connector.transactions(account, &each) {
                Ok(found) => {
                    truncated |= found.more;
                    all.extend(found.items);
                }
                Err(crate::connector::ConnectorError::NotFound(_)) => {}
                Err(error) => return Err(error.into()),
            }
        }
        all.sort_by_key(|t| std::cmp::Reverse(t.booking_date_time));
        let page = TransactionQuery {
            from: None,
            to: None,
            ..range.query.clone()
        }
        .page(all.iter());
        let found = Page {
            more: page.more || (truncated && page.items.len() as u32 == PAGE_SIZE),
            items: page.items,
        };
        Ok(answer(&found, &authorized, &base, &range))
    })
    .await
}

/// A statement's transactions: those booked in its period (and in the query's range).
async fn statement(
    State(adapter): State<Arc<Adapter>>,
    Path((id, statement)): Path<(String, String)>,
    asked: Asked,
    headers: HeaderMap,
) -> Response {
    let path = path_of(Operation::StatementTransactions, &id, &statement);
    let call = Call::read(
        &adapter,
        &headers,
        Operation::StatementTransactions,
        path,
        Some(&id),
    );
    let base = call.url();
    let wanted = id.clone();
    call.run(move |connector, authorized| {
        let mut range = range(asked)?;
        let found = find_statement(connector.as_ref(), &wanted, &statement)?;
        let query = &mut range.query;
        query.from = Some(query.from.map_or(found.start, |from| from.max(found.start)));
        query.to = Some(query.to.map_or(found.end, |to| to.min(found.end)));
        let page = connector.transactions(&wanted, &range.query)?;
        Ok(answer(&page, &authorized, &base, &range))
    })
    .await
}
