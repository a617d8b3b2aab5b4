//! The HTTP mapping connector: a bank core reached over HTTP and mapped onto the unified model by a declarative file (base URL, auth, per-operation request templates, JSON field mapping, value maps, date and amount formats, timeouts and retries).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::connector::{ConnectorError, Money, PaymentOrder};

mod connector;
mod operation;

pub use connector::MappingConnector;

/// Pages of a bank's transaction list fetched for one call at most.
pub const MAX_PAGES: u32 = 100;
/// Largest answer read from a bank core, in bytes.
pub const MAX_ANSWER_BYTES: u64 = 4 << 20;

/// Why a mapping file is refused. The message names the field.
#[derive(Debug, thiserror::Error)]
#[error("mapping {name}: {message}")]
pub struct MappingError {
    /// The file or mapping name.
    pub name: String,
    /// What is wrong, naming the field.
    pub message: String,
}

/// A mapping file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// A short name for logs.
    pub name: String,
    /// The bank core's base URL.
    pub base_url: String,
    /// Per-request timeout, in milliseconds (100 to 60000). Default 5000.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Retries after a timeout, a connection failure or a 5xx (0 to 5). Default 2.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// First backoff before a retry, doubled each time, in milliseconds. Default 100.
    #[serde(default = "default_backoff")]
    pub backoff_ms: u64,
    /// A header sent with every request, e.g. an API key or a bearer token.
    pub auth: Option<AuthHeader>,
    /// OAuth 2.0 client credentials: a bearer token is fetched from `token_url`, kept
    /// until shortly before it expires, and fetched again after a 401.
    pub oauth: Option<OAuthClient>,
    /// How to read one account.
    pub account: Operation,
    /// How to read an account's balances.
    pub balances: Operation,
    /// How to read an account's transactions.
    pub transactions: Operation,
    /// How to make a payment (a POST); with `payment`, or neither: without them the
    /// connector is read-only and refuses payments as `not_supported`.
    pub create_payment: Option<Operation>,
    /// How to read a payment back, with `{payment}` in its path.
    pub payment: Option<Operation>,
}

fn default_timeout() -> u64 {
    5_000
}
fn default_retries() -> u32 {
    2
}
fn default_backoff() -> u64 {
    100
}

impl std::fmt::Debug for AuthHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The value is a credential: never print it.
        f.debug_struct("AuthHeader")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

/// OAuth 2.0 client credentials (RFC 6749 section 4.4).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthClient {
    /// The token endpoint.
    pub token_url: String,
    /// The client id.
    pub client_id: String,
    /// The client secret (sent with HTTP Basic authentication).
    pub client_secret: String,
    /// Scope to ask for, if the bank needs one.
    pub scope: Option<String>,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("OAuthClient")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A fixed header.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthHeader {
    /// Header name.
    pub header: String,
    /// Header value.
    pub value: String,
}

/// One request and how to read its answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    /// Path and query, with `{account}`, and for transactions `{from}`, `{to}`, `{page}`.
    pub path: String,
    /// JSON pointer to the object (single answers) or array (lists) holding the records.
    #[serde(default)]
    pub root: String,
    /// For lists: JSON pointer to a value that is present and not `false`/`"N"`/`null`
    /// when another page exists.
    pub more: Option<String>,
    /// How `{from}`/`{to}` are written and dates are read: a chrono format, or
    /// `rfc3339`. Default `rfc3339`.
    #[serde(default = "default_date_format")]
    pub date_format: String,
    /// How `{from}`/`{to}` are written, when it differs from `date_format`.
    pub query_date_format: Option<String>,
    /// `decimal` (e.g. `"-12.30"`, sign = direction when `credit_debit = "=sign"`) or
    /// `minor` (integer pence/cents). Default `decimal`.
    #[serde(default = "default_amount_format")]
    pub amount_format: String,
    /// Unified field -> `/json/pointer` into the record, or `=literal`.
    pub fields: BTreeMap<String, String>,
    /// Unified field -> (bank value -> unified value).
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// For `create_payment`: the JSON body template, with `{debtor}`,
    /// `{creditor_scheme}`, `{creditor_identification}`, `{creditor_name}`, `{amount}`,
    /// `{currency}` and `{reference}`.
    pub body: Option<String>,
    /// For `create_payment`: the header that carries the idempotency key.
    pub idempotency_header: Option<String>,
    /// For `create_payment`: a JSON pointer to the bank's reason in a refusal.
    pub refusal_code: Option<String>,
}

fn default_date_format() -> String {
    "rfc3339".into()
}
fn default_amount_format() -> String {
    "decimal".into()
}

const ACCOUNT_FIELDS: &[&str] = &[
    "account_id",
    "currency",
    "account_sub_type",
    "scheme_name",
    "identification",
    "name",
];
const BALANCE_FIELDS: &[&str] = &["amount", "currency", "credit_debit", "kind", "date_time"];
const TRANSACTION_FIELDS: &[&str] = &[
    "transaction_id",
    "amount",
    "currency",
    "credit_debit",
    "booking_date_time",
];
const OPTIONAL_FIELDS: &[&str] = &["nickname", "account_type", "status", "information"];
const CREATED_FIELDS: &[&str] = &["payment_id", "status", "created"];
const PAYMENT_FIELDS: &[&str] = &[
    "payment_id",
    "status",
    "created",
    "debtor_account",
    "creditor_scheme",
    "creditor_identification",
    "creditor_name",
    "amount",
    "currency",
];

impl Mapping {
    /// Parses and checks a mapping file's text (TOML).
    pub fn parse(name: &str, text: &str) -> Result<Self, MappingError> {
        let error = |message: String| MappingError {
            name: name.to_owned(),
            message,
        };
        let mapping: Mapping = toml::from_str(text).map_err(|e| error(e.to_string()))?;
        if !(mapping.base_url.starts_with("http://") || mapping.base_url.starts_with("https://")) {
            return Err(error("base_url: an http:// or https:// URL".into()));
        }
        if !(100..=60_000).contains(&mapping.timeout_ms) {
            return Err(error("timeout_ms: 100 to 60000".into()));
        }
        if mapping.retries > 5 {
            return Err(error("retries: 0 to 5".into()));
        }
        if let Some(oauth) = &mapping.oauth {
            if mapping.auth.is_some() {
                return Err(error("oauth: give either auth or oauth, not both".into()));
            }
            if !(oauth.token_url.starts_with("http://") || oauth.token_url.starts_with("https://"))
            {
                return Err(error("oauth.token_url: an http:// or https:// URL".into()));
            }
        }
        if mapping.backoff_ms > 10_000 {
            return Err(error("backoff_ms: at most 10000".into()));
        }
        for (section, operation, required) in [
            ("account", &mapping.account, ACCOUNT_FIELDS),
            ("balances", &mapping.balances, BALANCE_FIELDS),
            ("transactions", &mapping.transactions, TRANSACTION_FIELDS),
        ] {
            operation.check(section, required).map_err(error)?;
        }
        if !mapping.account.path.contains("{account}") {
            return Err(error("account.path: must contain {account}".into()));
        }
        match (&mapping.create_payment, &mapping.payment) {
            (None, None) => {}
            (Some(create), Some(read)) => {
                create
                    .check("create_payment", CREATED_FIELDS)
                    .map_err(error)?;
                read.check("payment", PAYMENT_FIELDS).map_err(error)?;
                if !read.path.contains("{payment}") {
                    return Err(error("payment.path: must contain {payment}".into()));
                }
                if create
                    .idempotency_header
                    .as_deref()
                    .is_none_or(str::is_empty)
                {
                    return Err(error("create_payment.idempotency_header: missing".into()));
                }
                let template = create
                    .body
                    .as_deref()
                    .ok_or_else(|| error("create_payment.body: missing".into()))?;
                let sample = PaymentOrder {
                    debtor_account: "acc".into(),
                    creditor_scheme: "UK.OBIE.IBAN".into(),
                    creditor_identification: "GB00".into(),
                    creditor_name: "Name \"quoted\"".into(),
                    amount: Money {
                        minor: 1_234,
                        currency: "GBP".into(),
                    },
                    reference: "ref".into(),
                };
                serde_json::from_str::<Value>(&fill(template, &sample, &create.amount_format))
                    .map_err(|e| error(format!("create_payment.body: not a JSON template: {e}")))?;
            }
            (Some(_), None) => return Err(error("payment: needed with create_payment".into())),
            (None, Some(_)) => return Err(error("create_payment: needed with payment".into())),
        }
        Ok(mapping)
    }
}

pub(super) fn bad(message: String) -> ConnectorError {
    ConnectorError::Unavailable(format!("bad answer from the bank core: {message}"))
}

/// The request body from its template: each `{placeholder}` gets the order's value,
/// escaped for a JSON string (`{amount}` is a bare number in the `minor` format).
pub(super) fn fill(template: &str, order: &PaymentOrder, amount_format: &str) -> String {
    let escaped = |value: &str| {
        let quoted = serde_json::to_string(value).unwrap_or_default();
        quoted[1..quoted.len().saturating_sub(1).max(1)].to_owned()
    };
    let amount = match amount_format {
        "minor" => order.amount.minor.to_string(),
        _ => order.amount.decimal(),
    };
    template
        .replace("{debtor}", &escaped(&order.debtor_account))
        .replace("{creditor_scheme}", &escaped(&order.creditor_scheme))
        .replace(
            "{creditor_identification}",
            &escaped(&order.creditor_identification),
        )
        .replace("{creditor_name}", &escaped(&order.creditor_name))
        .replace("{currency}", &escaped(&order.amount.currency))
        .replace("{reference}", &escaped(&order.reference))
        .replace("{amount}", &amount)
}
