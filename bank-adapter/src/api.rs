//! The unified Open Banking API (UK OBIE v4.0 account information shapes): routes, the consent check on every call, OBIE bodies and errors, and an access record for every served or refused call.

use std::sync::{Arc, RwLock};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use consentnet_consent_chain::event::Outcome;
use consentnet_identity::{ConsentId, Did, Permission};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::connector::{
    Account, Balance, BankConnector, ConnectorError, CreditDebit, Money, Transaction,
    TransactionQuery,
};
use crate::enforce::{
    Authorized, ConsentSource, Operation, Presented, Refusal, ReplayCache, begin, finish,
};

/// Where the account information API lives.
pub const AIS_BASE: &str = "/open-banking/v4.0/aisp";
/// Transactions per page.
pub const PAGE_SIZE: u32 = 100;
/// The correlation header OBIE requires on every response.
pub const INTERACTION_ID: &str = "x-fapi-interaction-id";
/// The header naming the calling app's version.
pub const APP_VERSION: &str = "x-consentnet-app-version";

/// Receives one access record per served or refused call (the node batches them into
/// its feed). Must not block.
pub trait AccessSink: Send + Sync {
    /// Records that a call under `consent` to `operation` was served or refused at `time`.
    fn record(
        &self,
        consent: ConsentId,
        operation: &'static str,
        time: DateTime<Utc>,
        outcome: Outcome,
    );
}

/// Whether calls pass the consent check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Check {
    /// Every call is checked (decision A3). The only mode the node uses.
    #[default]
    Enforced,
    /// The consent is looked up but nothing is checked. Exists only so the adapter
    /// benchmark can measure what the check costs on the same server; nothing else
    /// builds an adapter with it.
    SkippedForBenchmark,
}

/// The consent named by `id`, unchecked: [`Check::SkippedForBenchmark`] only.
fn unchecked(
    source: &dyn ConsentSource,
    id: Option<ConsentId>,
    now: DateTime<Utc>,
) -> Result<Authorized, crate::enforce::Refusal> {
    let consent = id
        .and_then(|id| source.consent_at(&id, now))
        .map(|(consent, _)| consent);
    match consent {
        Some(consent) => Ok(Authorized {
            permissions: consent.terms.permissions.clone(),
            consent,
        }),
        None => Err(crate::enforce::Refusal::new(
            401,
            "consent_unknown",
            "no such consent",
        )),
    }
}

/// What the API needs: whose bank it is, the consent state, the connector, the records.
pub struct Adapter {
    /// This bank's DID.
    pub bank: Did,
    /// The base URL TSPs address, e.g. `https://api.bank.example` (proofs name full URLs).
    pub public_url: String,
    /// Consent and catalog state.
    pub source: Arc<dyn ConsentSource>,
    /// Which client DIDs hold which accounts (the bank's private links).
    pub holders: Arc<dyn crate::links::AccountHolders>,
    /// Verifies proof signatures, batching those of concurrent calls.
    pub signatures: crate::signatures::SignatureBatcher,
    /// Proof ids seen recently.
    pub replay: ReplayCache,
    /// The bank core, replaceable at run time.
    pub connector: RwLock<Arc<dyn BankConnector>>,
    /// Where access records go.
    pub records: Arc<dyn AccessSink>,
    /// What this bank has paid under each consent.
    pub ledger: Arc<crate::payments::Ledger>,
    /// Always [`Check::Enforced`] outside the adapter benchmark.
    pub check: Check,
}

impl std::fmt::Debug for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adapter")
            .field("bank", &self.bank)
            .finish_non_exhaustive()
    }
}

impl Adapter {
    /// The connector in service now.
    pub fn connector(&self) -> Arc<dyn BankConnector> {
        self.connector
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Puts `connector` in service; calls already running finish on the old one.
    pub fn replace_connector(&self, connector: Arc<dyn BankConnector>) {
        *self
            .connector
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = connector;
    }
}

/// The account information and payment routes.
pub fn router(adapter: Arc<Adapter>) -> Router {
    let payments = crate::payments::router(adapter.clone());
    let document = Json(crate::openapi::document(&adapter.public_url));
    Router::new()
        .route(
            crate::openapi::DOCUMENT_PATH,
            get(move || async move { document.clone() }),
        )
        .route(&format!("{AIS_BASE}/accounts"), get(accounts))
        .route(&format!("{AIS_BASE}/accounts/{{AccountId}}"), get(account))
        .route(
            &format!("{AIS_BASE}/accounts/{{AccountId}}/balances"),
            get(balances),
        )
        .route(
            &format!("{AIS_BASE}/accounts/{{AccountId}}/transactions"),
            get(transactions),
        )
        .with_state(adapter)
        .merge(payments)
}

/// An OBIE error: status, our specific code (in `Code`), a 4-character `ErrorCode`.
#[derive(Debug)]
pub(crate) struct ObError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ObError {
    pub(crate) fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code,
            message: message.into(),
        }
    }

    /// The OBIE 4-character error code for a status.
    fn error_code(&self) -> &'static str {
        match self.status.as_u16() {
            400 => "U001",
            401 => "U003",
            403 => "U004",
            404 => "U005",
            429 => "U006",
            502 => "U007",
            504 => "U008",
            _ => "U000",
        }
    }

    fn body(&self, interaction: &str) -> Value {
        let message: String = self.message.chars().take(500).collect();
        json!({
            "Id": interaction.chars().take(40).collect::<String>(),
            "Code": self.code,
            "Message": message,
            "Errors": [{ "ErrorCode": self.error_code(), "Message": message }],
        })
    }
}

impl From<ConnectorError> for ObError {
    fn from(error: ConnectorError) -> Self {
        let message = error.to_string();
        match error {
            ConnectorError::NotFound(_) => Self::new(404, "not_found", message),
            ConnectorError::Refused { .. } => Self::new(400, "refused_by_bank", message),
            ConnectorError::IdempotencyConflict => Self::new(409, "idempotency_conflict", message),
            ConnectorError::Timeout => Self::new(504, "bank_timeout", message),
            ConnectorError::Unavailable(_) => Self::new(502, "bank_unavailable", message),
        }
    }
}

/// The interaction id to answer with: the caller's, if sensible, else a fresh UUID v4.
fn interaction_id(headers: &HeaderMap) -> String {
    if let Some(given) = headers.get(INTERACTION_ID).and_then(|v| v.to_str().ok())
        && (1..=100).contains(&given.len())
        && given.bytes().all(|b| b.is_ascii_graphic())
    {
        return given.to_owned();
    }
    let mut bytes = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn respond(status: StatusCode, interaction: &str, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(interaction) {
        response.headers_mut().insert(INTERACTION_ID, value);
    }
    response
}

/// One call through the check, the connector and the record.
pub(crate) struct Call<'a> {
    pub(crate) adapter: &'a Adapter,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) method: &'static str,
    pub(crate) success: StatusCode,
    pub(crate) operation: Operation,
    pub(crate) path: String,
    pub(crate) account: Option<&'a str>,
}

impl<'a> Call<'a> {
    /// A read (`GET`, answered with 200) of `path`.
    pub(crate) fn read(
        adapter: &'a Adapter,
        headers: &'a HeaderMap,
        operation: Operation,
        path: String,
        account: Option<&'a str>,
    ) -> Self {
        Self {
            adapter,
            headers,
            method: "GET",
            success: StatusCode::OK,
            operation,
            path,
            account,
        }
    }

    fn url(&self) -> String {
        format!(
            "{}{}",
            self.adapter.public_url.trim_end_matches('/'),
            self.path
        )
    }

    /// The consent check, with the proof's signature verified by the batcher.
    async fn enforce(
        &self,
        presented: Presented<'_>,
        now: chrono::DateTime<Utc>,
    ) -> Result<Authorized, Refusal> {
        let adapter = self.adapter;
        let (pending, signature) = begin(adapter.source.as_ref(), presented, now)?;
        if !adapter.signatures.verify(signature).await {
            return Err(Refusal::from_proof(
                consentnet_identity::PopError::BadSignature,
            ));
        }
        finish(
            pending,
            adapter.source.as_ref(),
            adapter.holders.as_ref(),
            &adapter.replay,
            &adapter.bank,
            presented,
            now,
        )
    }

    /// Runs the check, then `serve`; records the outcome; answers in OBIE shapes.
    pub(crate) async fn run<F>(self, serve: F) -> Response
    where
        F: FnOnce(Arc<dyn BankConnector>, Authorized) -> Result<Value, ObError> + Send + 'static,
    {
        let interaction = interaction_id(self.headers);
        let header = |name: &str| self.headers.get(name).and_then(|v| v.to_str().ok());
        let url = self.url();
        let now = Utc::now();
        let presented = Presented {
            operation: self.operation,
            method: self.method,
            url: &url,
            account: self.account,
            authorization: header("authorization"),
            proof: header("dpop"),
            app_version: header(APP_VERSION),
        };
        let consent_id = presented
            .authorization
            .and_then(|a| a.split_whitespace().nth(1))
            .and_then(ConsentId::parse);
        let record = |outcome: Outcome| {
            if let Some(id) = consent_id {
                self.adapter
                    .records
                    .record(id, self.operation.name(), now, outcome);
            }
        };
        let checked = match self.adapter.check {
            Check::Enforced => self.enforce(presented, now).await,
            Check::SkippedForBenchmark => unchecked(self.adapter.source.as_ref(), consent_id, now),
        };
        let authorized = match checked {
            Ok(authorized) => authorized,
            Err(refusal) => {
                record(Outcome::Refused {
                    code: refusal.code.to_owned(),
                });
                let error = ObError::new(refusal.status, refusal.code, refusal.message);
                return respond(error.status, &interaction, error.body(&interaction));
            }
        };
        let connector = self.adapter.connector();
        let served = tokio::task::spawn_blocking(move || serve(connector, authorized))
            .await
            .unwrap_or_else(|e| Err(ObError::new(502, "bank_unavailable", e.to_string())));
        match served {
            Ok(mut body) => {
                record(Outcome::Served);
                body["Links"]["Self"] = json!(url);
                respond(self.success, &interaction, body)
            }
            Err(error) => {
                record(Outcome::Refused {
                    code: error.code.to_owned(),
                });
                respond(error.status, &interaction, error.body(&interaction))
            }
        }
    }
}

/// A one-page OBIE read answer around `data` (`Links.Self` is added by [`Call::run`]).
fn one_page(data: Value) -> Value {
    json!({ "Data": data, "Links": {}, "Meta": { "TotalPages": 1 } })
}

fn amount(money: &Money) -> Value {
    json!({ "Amount": money.decimal(), "Currency": money.currency })
}

fn indicator(direction: CreditDebit) -> &'static str {
    match direction {
        CreditDebit::Credit => "Credit",
        CreditDebit::Debit => "Debit",
    }
}

fn time(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, false)
}

fn account_json(account: &Account, detail: bool) -> Value {
    let code = match account.account_sub_type.as_str() {
        "CurrentAccount" => "CACC",
        "Savings" => "SVGS",
        _ => "OTHR",
    };
    let mut body = json!({
        "AccountId": account.account_id,
        "Status": "Enabled",
        "Currency": account.currency,
        "AccountCategory": account.account_type,
        "AccountTypeCode": code,
    });
    if let Some(nickname) = &account.nickname {
        body["Nickname"] = json!(nickname);
    }
    if detail {
        body["Account"] = json!([{
            "SchemeName": account.scheme_name,
            "Identification": account.identification,
            "Name": account.name,
        }]);
    }
    body
}

fn balance_json(balance: &Balance) -> Value {
    let kind = match balance.kind.as_str() {
        "InterimAvailable" => "ITAV",
        "InterimBooked" => "ITBD",
        "ClosingAvailable" => "CLAV",
        "ClosingBooked" => "CLBD",
        _ => "INFO",
    };
    json!({
        "AccountId": balance.account_id,
        "CreditDebitIndicator": indicator(balance.credit_debit),
        "Type": kind,
        "DateTime": time(&balance.date_time),
        "Amount": amount(&balance.amount),
    })
}

fn transaction_json(transaction: &Transaction, detail: bool) -> Value {
    let status = match transaction.status.as_str() {
        "Booked" => "BOOK",
        "Pending" => "PDNG",
        _ => "INFO",
    };
    let mut body = json!({
        "AccountId": transaction.account_id,
        "TransactionId": transaction.transaction_id,
        "CreditDebitIndicator": indicator(transaction.credit_debit),
        "Status": status,
        "BookingDateTime": time(&transaction.booking_date_time),
        "Amount": amount(&transaction.amount),
    });
    if detail && !transaction.information.is_empty() {
        body["TransactionInformation"] = json!(
            transaction
                .information
                .chars()
                .take(500)
                .collect::<String>()
        );
    }
    body
}

async fn accounts(State(adapter): State<Arc<Adapter>>, headers: HeaderMap) -> Response {
    let call = Call::read(
        &adapter,
        &headers,
        Operation::Accounts,
        format!("{AIS_BASE}/accounts"),
        None,
    );
    call.run(|connector, authorized| {
        let detail = authorized
            .permissions
            .contains(&Permission::ReadAccountsDetail);
        let accounts = connector.accounts(&authorized.consent.terms.accounts)?;
        let list: Vec<Value> = accounts.iter().map(|a| account_json(a, detail)).collect();
        Ok(one_page(json!({ "Account": list })))
    })
    .await
}

async fn account(
    State(adapter): State<Arc<Adapter>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let call = Call::read(
        &adapter,
        &headers,
        Operation::Account,
        format!("{AIS_BASE}/accounts/{id}"),
        Some(&id),
    );
    let wanted = id.clone();
    call.run(move |connector, authorized| {
        let detail = authorized
            .permissions
            .contains(&Permission::ReadAccountsDetail);
        let accounts = connector.accounts(std::slice::from_ref(&wanted))?;
        let account = accounts
            .first()
            .ok_or_else(|| ObError::new(404, "not_found", format!("no account {wanted}")))?;
        Ok(one_page(
            json!({ "Account": [account_json(account, detail)] }),
        ))
    })
    .await
}

async fn balances(
    State(adapter): State<Arc<Adapter>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let call = Call::read(
        &adapter,
        &headers,
        Operation::Balances,
        format!("{AIS_BASE}/accounts/{id}/balances"),
        Some(&id),
    );
    let wanted = id.clone();
    call.run(move |connector, _| {
        let list: Vec<Value> = connector
            .balances(&wanted)?
            .iter()
            .map(balance_json)
            .collect();
        Ok(one_page(json!({ "Balance": list })))
    })
    .await
}

/// The query of the transactions endpoint.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransactionsQuery {
    from_booking_date_time: Option<String>,
    to_booking_date_time: Option<String>,
    page: Option<u32>,
}

/// OBIE date-times: with or without a zone (a zone is ignored), or a bare date.
fn booking_time(name: &str, text: &str) -> Result<DateTime<Utc>, ObError> {
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
        400,
        "invalid_date_time",
        format!("{name}: {text:?} is not an ISO 8601 date-time"),
    ))
}

/// Escapes a query value for a link.
fn escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

async fn transactions(
    State(adapter): State<Arc<Adapter>>,
    Path(id): Path<String>,
    query: Result<Query<TransactionsQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let call = Call::read(
        &adapter,
        &headers,
        Operation::Transactions,
        format!("{AIS_BASE}/accounts/{id}/transactions"),
        Some(&id),
    );
    let base = call.url();
    let wanted = id.clone();
    call.run(move |connector, authorized| {
        let Query(query) = query.map_err(|e| ObError::new(400, "invalid_query", e.body_text()))?;
        let from = query
            .from_booking_date_time
            .as_deref()
            .map(|t| booking_time("fromBookingDateTime", t))
            .transpose()?;
        let to = query
            .to_booking_date_time
            .as_deref()
            .map(|t| booking_time("toBookingDateTime", t))
            .transpose()?;
        let page = query.page.unwrap_or(1).max(1);
        let found = connector.transactions(
            &wanted,
            &TransactionQuery {
                from,
                to,
                page,
                page_size: PAGE_SIZE,
            },
        )?;
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
        let mut links = json!({});
        let filters: String = [
            query
                .from_booking_date_time
                .as_ref()
                .map(|t| format!("fromBookingDateTime={}", escape(t))),
            query
                .to_booking_date_time
                .as_ref()
                .map(|t| format!("toBookingDateTime={}", escape(t))),
        ]
        .into_iter()
        .flatten()
        .map(|p| format!("{p}&"))
        .collect();
        if found.more {
            links["Next"] = json!(format!("{base}?{filters}page={}", page + 1));
        }
        if page > 1 {
            links["Prev"] = json!(format!("{base}?{filters}page={}", page - 1));
        }
        Ok(json!({ "Data": { "Transaction": list }, "Links": links, "Meta": {} }))
    })
    .await
}
