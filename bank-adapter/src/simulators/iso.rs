//! The ISO 20022 XML bank-core simulator: balances as camt.052, transactions as camt.053 entries paged by `MsgPgntn/LastPgInd`, payments initiated with pain.001 (its `MsgId` the idempotency key) and answered with pain.002, account details in an acmt-like document, errors as `<Err><Cd>` with ISO reason codes; HTTP Basic authentication.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::{SIM_PAGE, day_range, iso_date};
use crate::connector::{
    BankConnector, ConnectorError, CreditDebit, Money, Payment, PaymentOrder, TransactionQuery,
};
use crate::mapping::xml::{escape, to_json};
use crate::sandbox::SandboxBank;

/// The HTTP Basic credentials the simulator expects.
pub const ISO_CLIENT: (&str, &str) = ("iso-client", "iso-client-secret");

type Bank = State<Arc<SandboxBank>>;

/// The ISO simulator's router.
pub(super) fn router(bank: Arc<SandboxBank>) -> Router {
    Router::new()
        .route("/iso/accounts/{id}", get(account))
        .route("/iso/accounts/{id}/camt052", get(balances))
        .route("/iso/accounts/{id}/camt053", get(statement))
        .route("/iso/payments", post(pay))
        .route("/iso/payments/{id}", get(payment))
        .with_state(bank)
}

fn xml(status: StatusCode, body: String) -> Response {
    let document = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>{body}");
    (
        status,
        [(header::CONTENT_TYPE, "application/xml")],
        document,
    )
        .into_response()
}

/// An error with an ISO reason code.
fn error(status: StatusCode, code: &str, text: &str) -> Response {
    xml(
        status,
        format!(
            "<Document><Err><Cd>{}</Cd><Desc>{}</Desc></Err></Document>",
            escape(code),
            escape(text)
        ),
    )
}

fn authorized(headers: &HeaderMap) -> Option<Response> {
    use base64::Engine as _;
    let expected = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", ISO_CLIENT.0, ISO_CLIENT.1));
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    (given != Some(&format!("Basic {expected}")))
        .then(|| error(StatusCode::UNAUTHORIZED, "AUTH", "HTTP Basic credentials"))
}

fn failure(error_: ConnectorError) -> Response {
    let (status, code) = match &error_ {
        ConnectorError::NotFound(_) => (StatusCode::NOT_FOUND, "NOTFOUND"),
        ConnectorError::IdempotencyConflict => (StatusCode::CONFLICT, "DUPL"),
        ConnectorError::Refused { code, .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            match code.as_str() {
                "insufficient_funds" => "AM04",
                "currency_mismatch" => "AM03",
                _ => "AM12",
            },
        ),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "NARR"),
    };
    error(status, code, &error_.to_string())
}

fn time(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn side(direction: CreditDebit) -> &'static str {
    match direction {
        CreditDebit::Credit => "CRDT",
        CreditDebit::Debit => "DBIT",
    }
}

fn amount(money: &Money) -> String {
    format!(
        "<Amt Ccy=\"{}\">{}</Amt>",
        escape(&money.currency),
        money.decimal()
    )
}

async fn account(bank: Bank, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(refused) = authorized(&headers) {
        return refused;
    }
    let Some(a) = bank.account(&id) else {
        return failure(ConnectorError::NotFound(id));
    };
    let kind = if a.account_sub_type == "Savings" {
        "SVGS"
    } else {
        "CACC"
    };
    xml(
        StatusCode::OK,
        format!(
            "<Document><AcctRpt><Acct><Id><Othr><Id>{}</Id></Othr></Id><Ccy>{}</Ccy><Nm>{}</Nm><Tp><Cd>{kind}</Cd></Tp><Ownr><Nm>{}</Nm></Ownr><Idr Schme=\"{}\">{}</Idr></Acct></AcctRpt></Document>",
            escape(&a.account_id),
            escape(&a.currency),
            escape(a.nickname.as_deref().unwrap_or_default()),
            escape(&a.name),
            escape(&a.scheme_name),
            escape(&a.identification),
        ),
    )
}

async fn balances(bank: Bank, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(refused) = authorized(&headers) {
        return refused;
    }
    let list = match bank.balances(&id) {
        Ok(list) => list,
        Err(e) => return failure(e),
    };
    let entries: String = list
        .iter()
        .map(|b| {
            let kind = if b.kind == "InterimAvailable" { "ITAV" } else { "ITBD" };
            format!(
                "<Bal><Tp><CdOrPrtry><Cd>{kind}</Cd></CdOrPrtry></Tp>{}<CdtDbtInd>{}</CdtDbtInd><Dt><DtTm>{}</DtTm></Dt></Bal>",
                amount(&b.amount),
                side(b.credit_debit),
                time(&b.date_time)
            )
        })
        .collect();
    xml(
        StatusCode::OK,
        format!(
            "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.052.001.08\"><BkToCstmrAcctRpt><GrpHdr><MsgId>{}</MsgId><CreDtTm>{}</CreDtTm></GrpHdr><Rpt><Id>{}</Id><Acct><Id><Othr><Id>{}</Id></Othr></Id></Acct>{entries}</Rpt></BkToCstmrAcctRpt></Document>",
            crate::call::fresh_interaction_id(),
            time(&Utc::now()),
            crate::call::fresh_interaction_id(),
            escape(&id)
        ),
    )
}

#[derive(Debug, Deserialize)]
struct Range {
    from: Option<String>,
    to: Option<String>,
    page: Option<u32>,
}

async fn statement(
    bank: Bank,
    Path(id): Path<String>,
    Query(range): Query<Range>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = authorized(&headers) {
        return refused;
    }
    let (from, to) = day_range(
        iso_date(range.from.as_deref()),
        iso_date(range.to.as_deref()),
    );
    let page = range.page.unwrap_or(1).max(1);
    let query = TransactionQuery {
        from,
        to,
        page,
        page_size: SIM_PAGE,
    };
    let found = match bank.transactions(&id, &query) {
        Ok(found) => found,
        Err(e) => return failure(e),
    };
    let entries: String = found
        .items
        .iter()
        .map(|t| {
            format!(
                "<Ntry><NtryRef>{}</NtryRef>{}<CdtDbtInd>{}</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts><BookgDt><DtTm>{}</DtTm></BookgDt><AddtlNtryInf>{}</AddtlNtryInf></Ntry>",
                escape(&t.transaction_id),
                amount(&t.amount),
                side(t.credit_debit),
                time(&t.booking_date_time),
                escape(&t.information)
            )
        })
        .collect();
    xml(
        StatusCode::OK,
        format!(
            "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.08\"><BkToCstmrStmt><GrpHdr><MsgId>{}</MsgId><CreDtTm>{}</CreDtTm><MsgPgntn><PgNb>{page}</PgNb><LastPgInd>{}</LastPgInd></MsgPgntn></GrpHdr><Stmt><Id>{}</Id><Acct><Id><Othr><Id>{}</Id></Othr></Id></Acct>{entries}</Stmt></BkToCstmrStmt></Document>",
            crate::call::fresh_interaction_id(),
            time(&Utc::now()),
            !found.more,
            crate::call::fresh_interaction_id(),
            escape(&id)
        ),
    )
}

/// The text at `pointer` in a pain.001 read as a tree.
fn text(tree: &Value, pointer: &str) -> String {
    tree.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The order of a pain.001 and its `MsgId`.
fn order(body: &str) -> Option<(String, PaymentOrder)> {
    let tree = to_json(body).ok()?;
    let tx = "/Document/CstmrCdtTrfInitn/PmtInf/CdtTrfTxInf";
    let amount = Money::parse(
        &text(&tree, &format!("{tx}/Amt/InstdAmt/$")),
        &text(&tree, &format!("{tx}/Amt/InstdAmt/@Ccy")),
    )?;
    let key = text(&tree, "/Document/CstmrCdtTrfInitn/GrpHdr/MsgId");
    (!key.is_empty()).then_some(())?;
    Some((
        key,
        PaymentOrder {
            debtor_account: text(
                &tree,
                "/Document/CstmrCdtTrfInitn/PmtInf/DbtrAcct/Id/Othr/Id",
            ),
            creditor_scheme: text(&tree, &format!("{tx}/CdtrAcct/Id/Othr/SchmeNm/Prtry")),
            creditor_identification: text(&tree, &format!("{tx}/CdtrAcct/Id/Othr/Id")),
            creditor_name: text(&tree, &format!("{tx}/Cdtr/Nm")),
            amount,
            reference: text(&tree, &format!("{tx}/RmtInf/Ustrd")),
        },
    ))
}

fn report(payment: &Payment) -> String {
    let o = &payment.order;
    let status = if payment.status == "AcceptedSettlementCompleted" {
        "ACSC"
    } else {
        "PDNG"
    };
    format!(
        "<StsId>{}</StsId><TxSts>{status}</TxSts><AccptncDtTm>{}</AccptncDtTm><DbtrAcct><Id><Othr><Id>{}</Id></Othr></Id></DbtrAcct><InstdAmt Ccy=\"{}\">{}</InstdAmt><Cdtr><Nm>{}</Nm></Cdtr><CdtrAcct><Id><Othr><Id>{}</Id><SchmeNm><Prtry>{}</Prtry></SchmeNm></Othr></Id></CdtrAcct><RmtInf><Ustrd>{}</Ustrd></RmtInf>",
        escape(&payment.payment_id),
        time(&payment.created),
        escape(&o.debtor_account),
        escape(&o.amount.currency),
        o.amount.decimal(),
        escape(&o.creditor_name),
        escape(&o.creditor_identification),
        escape(&o.creditor_scheme),
        escape(&o.reference),
    )
}

async fn pay(bank: Bank, headers: HeaderMap, body: String) -> Response {
    if let Some(refused) = authorized(&headers) {
        return refused;
    }
    let Some((key, order)) = order(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "FF01",
            "not a pain.001 this core can read",
        );
    };
    match bank.create_payment(&key, &order) {
        Ok(payment) => xml(
            StatusCode::CREATED,
            format!(
                "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.002.001.10\"><CstmrPmtStsRpt><GrpHdr><MsgId>{}</MsgId><CreDtTm>{}</CreDtTm></GrpHdr><OrgnlGrpInfAndSts><OrgnlMsgId>{}</OrgnlMsgId><GrpSts>ACCP</GrpSts></OrgnlGrpInfAndSts><OrgnlPmtInfAndSts><TxInfAndSts>{}</TxInfAndSts></OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>",
                crate::call::fresh_interaction_id(),
                time(&Utc::now()),
                escape(&key),
                report(&payment)
            ),
        ),
        Err(e) => failure(e),
    }
}

async fn payment(bank: Bank, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(refused) = authorized(&headers) {
        return refused;
    }
    match bank.payment(&id) {
        Ok(payment) => xml(
            StatusCode::OK,
            format!("<Document><PmtRpt>{}</PmtRpt></Document>", report(&payment)),
        ),
        Err(e) => failure(e),
    }
}
