//! The unified Open Banking API (UK OBIE v4.0 account information shapes): routes, the consent check on every call, OBIE bodies and errors, and an access record for every served or refused call.

use std::sync::{Arc, RwLock};

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use consentnet_consent_chain::event::Outcome;
use consentnet_identity::{ConsentId, Did, Permission};
use serde_json::{Value, json};

use crate::call::Call;
pub use crate::call::Check;
use crate::connector::{Account, Balance, BankConnector, CreditDebit, Money, Transaction};
use crate::enforce::{ConsentSource, Gate, Operation, ReplayCache};
use crate::problem::{ObCode, ObError};

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
    /// Refusals kept on this node, never recorded: those whose proof never verified,
    /// and calls over the app's rate.
    pub unproven: crate::unproven::UnprovenRefusals,
    /// Each app's rate at this bank.
    pub limits: AppLimits,
    /// Signs the payment answers (`x-jws-signature`); without it they go unsigned.
    pub signer: Option<crate::jws::Signer>,
    /// The bank's OBIE consent resources, once its authorization server is up.
    pub resources: std::sync::OnceLock<Arc<dyn ConsentResources>>,
    /// DPoP nonces: offered on every `401`, checked when a proof carries one, required
    /// when the operator says so.
    pub nonces: crate::nonce::DpopNonces,
}

/// The OBIE payment consent resources the bank's authorization server made: a payment
/// may name one as its `Data.ConsentId`, as a TSP written for UK Open Banking does.
pub trait ConsentResources: Send + Sync {
    /// The consent the payment resource `id` of `app` was authorised into, and the
    /// initiation it fixed.
    fn payment_resource(&self, app: &Did, id: &str) -> Option<(ConsentId, Value)>;
}

/// The unified API's rate limits: one token bucket per app, at the rate the bank's
/// decision sets or this default.
#[derive(Debug)]
pub struct AppLimits {
    /// The rate of an app whose decision sets none.
    pub default: crate::limits::Rate,
    /// The apps' buckets.
    pub buckets: crate::limits::TokenBuckets<Did>,
}

impl AppLimits {
    /// Limits with `default` for apps whose decision sets no rate.
    pub fn new(default: crate::limits::Rate) -> Self {
        Self {
            default,
            buckets: crate::limits::TokenBuckets::default(),
        }
    }
}

impl Default for AppLimits {
    /// 100 calls a second with bursts of 400: the node's default.
    fn default() -> Self {
        Self::new(crate::limits::Rate {
            per_second: 100,
            burst: 400,
        })
    }
}

impl std::fmt::Debug for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adapter")
            .field("bank", &self.bank)
            .finish_non_exhaustive()
    }
}

impl Adapter {
    /// The consent check as this bank runs it.
    pub fn gate(&self) -> Gate<'_> {
        Gate {
            source: self.source.as_ref(),
            holders: self.holders.as_ref(),
            replay: &self.replay,
            bank: &self.bank,
        }
    }

    /// The connector in service now.
    pub fn connector(&self) -> Arc<dyn BankConnector> {
        consentnet_identity::util::read(&self.connector).clone()
    }

    /// Puts `connector` in service; calls already running finish on the old one.
    pub fn replace_connector(&self, connector: Arc<dyn BankConnector>) {
        *consentnet_identity::util::write(&self.connector) = connector;
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
        .merge(crate::ais::routes())
        .with_state(adapter)
        .merge(payments)
        .route(
            "/open-banking/{*rest}",
            axum::routing::any(crate::fapi::unknown),
        )
        .layer(axum::middleware::from_fn(crate::fapi::headers))
}

/// A one-page OBIE read answer around `data` (`Links.Self` is added by [`Call::run`]).
pub(crate) fn one_page(data: Value) -> Value {
    json!({ "Data": data, "Links": {}, "Meta": { "TotalPages": 1 } })
}

pub(crate) fn amount(money: &Money) -> Value {
    json!({ "Amount": money.decimal(), "Currency": money.currency })
}

pub(crate) fn indicator(direction: CreditDebit) -> &'static str {
    match direction {
        CreditDebit::Credit => "Credit",
        CreditDebit::Debit => "Debit",
    }
}

pub(crate) fn time(at: &DateTime<Utc>) -> String {
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

pub(crate) fn balance_json(balance: &Balance) -> Value {
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

pub(crate) fn transaction_json(transaction: &Transaction, detail: bool) -> Value {
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
        let account = accounts.first().ok_or_else(|| {
            ObError::new(ObCode::ResourceNotFound, format!("no account {wanted}"))
        })?;
        Ok(one_page(
            json!({ "Account": [account_json(account, detail)] }),
        ))
    })
    .await
}

/// True when `Content-Type` is `application/json`, with or without parameters.
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}
