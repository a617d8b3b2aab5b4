//! The HTTP mapping connector: a bank core reached over HTTP and mapped onto the unified model by a declarative file (base URL, auth, headers, the core's own consent, per-operation request templates, JSON field mapping, value maps, date and amount formats, error codes, timeouts and retries).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::connector::{ConnectorError, PaymentOrder};

mod connector;
mod errors;
mod future;
mod http;
mod operation;
mod resources;
pub mod template;
pub mod tls;
pub mod xml;

pub use errors::{ErrorOutcome, Errors};
pub use http::MappingConnector;

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
    /// Headers sent with every request: name -> template (see [`template`]).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// TLS to the core: a private CA and a client certificate (mutual TLS).
    pub tls: Option<tls::TlsFiles>,
    /// The certificates `tls` names, read when the file is parsed.
    #[serde(skip)]
    pub(crate) tls_material: tls::TlsMaterial,
    /// The core's own consent, when its requests must carry one (`{core_consent}`).
    pub core_consent: Option<CoreConsent>,
    /// How the core's error answers read.
    #[serde(default)]
    pub errors: Errors,
    /// The secret files the templates read, loaded when the file is parsed.
    #[serde(skip)]
    pub(crate) secrets: template::Secrets,
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
    /// Optional account information resources, each a list read like transactions
    /// (one page), with `{account}` in its path; a resource not given is not offered.
    /// Their unified fields are in `mapping/resources.rs` and docs/ADAPTER.md.
    pub beneficiaries: Option<Operation>,
    /// Direct debits.
    pub direct_debits: Option<Operation>,
    /// Standing orders.
    pub standing_orders: Option<Operation>,
    /// Scheduled payments.
    pub scheduled_payments: Option<Operation>,
    /// Statements.
    pub statements: Option<Operation>,
    /// Parties.
    pub parties: Option<Operation>,
    /// The product (`root` points at one object).
    pub product: Option<Operation>,
    /// How to schedule a payment for a later date (a POST, body placeholders as
    /// `create_payment`'s and `{execution}`); with `scheduled_payment`, or neither.
    pub create_scheduled_payment: Option<Operation>,
    /// How to read a scheduled payment back, with `{id}` in its path.
    pub scheduled_payment: Option<Operation>,
    /// How to set up a standing order (a POST, body placeholders as `create_payment`'s
    /// and `{frequency}`, `{first}`, `{final}`, `{count}`, `{recurring_amount}`,
    /// `{final_amount}`); with `standing_order`, or neither.
    pub create_standing_order: Option<Operation>,
    /// How to read a standing order back, with `{id}` in its path.
    pub standing_order: Option<Operation>,
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

/// The core's own consent resource: created with a POST when a request first needs it,
/// and again once when the core says it is no longer valid.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoreConsent {
    /// Where to POST.
    pub path: String,
    /// The JSON body template.
    pub body: String,
    /// JSON pointer to the new consent's id in the answer.
    pub id: String,
    /// Headers of this request only.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The request as an operation, built when the file is parsed.
    #[serde(skip)]
    pub(crate) operation: Operation,
}

/// One request and how to read its answer.
#[derive(Debug, Clone, Default, Deserialize)]
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
    /// For `create_payment`: the header that carries the idempotency key as it is (or
    /// give a header template with `{idempotency_key}` or `{idempotency_uuid}`).
    pub idempotency_header: Option<String>,
    /// For `create_payment`: a JSON pointer to the bank's reason in a refusal.
    pub refusal_code: Option<String>,
    /// Headers of this operation's requests: name -> template (see [`template`]).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `json` (the default) or `xml`: how the core's answers and this operation's body
    /// are written. XML answers are read as a JSON tree (see [`xml`]) for the pointers.
    pub format: Option<String>,
}

impl Operation {
    /// True when the core speaks XML for this operation.
    pub fn is_xml(&self) -> bool {
        self.format.as_deref() == Some("xml")
    }
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
        let mut mapping: Mapping = toml::from_str(text).map_err(|e| error(e.to_string()))?;
        mapping.check_templates().map_err(error)?;
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
        mapping.check_resources().map_err(error)?;
        if let Some(files) = &mapping.tls {
            if !mapping.base_url.starts_with("https://") {
                return Err(error("tls: needs an https:// base_url".into()));
            }
            mapping.tls_material = files.load().map_err(error)?;
        }
        if !mapping.account.path.contains("{account}") {
            return Err(error("account.path: must contain {account}".into()));
        }
        match (&mapping.create_payment, &mapping.payment) {
            (None, None) => {}
            (Some(create), Some(read)) => future::check_write(
                ("create_payment", create, CREATED_FIELDS),
                ("payment", read, PAYMENT_FIELDS, OPTIONAL_FIELDS),
                ("{payment}", &|text| text),
            )
            .map_err(error)?,
            (Some(_), None) => return Err(error("payment: needed with create_payment".into())),
            (None, Some(_)) => return Err(error("create_payment: needed with payment".into())),
        }
        mapping.check_future().map_err(error)?;
        Ok(mapping)
    }
}

impl Mapping {
    /// Parses and checks a mapping file's text, as [`Mapping::parse`], with every file it
    /// reads (secrets, certificates, keys) required to lie inside `root`: whoever may
    /// install a mapping may not make the node read, and send to a core, any other file.
    pub fn parse_in(name: &str, text: &str, root: &std::path::Path) -> Result<Self, MappingError> {
        let mapping = Self::parse(name, text)?;
        let error = |message: String| MappingError {
            name: name.to_owned(),
            message,
        };
        let root = root
            .canonicalize()
            .map_err(|e| error(format!("{}: {e}", root.display())))?;
        let tls = mapping.tls.iter().flat_map(|t| {
            [&t.ca_file, &t.client_cert_file, &t.client_key_file]
                .into_iter()
                .flatten()
        });
        for file in mapping.secrets.paths().chain(tls) {
            let inside = std::path::Path::new(file)
                .canonicalize()
                .is_ok_and(|path| path.starts_with(&root));
            if !inside {
                return Err(error(format!(
                    "{file}: secret and certificate files must be inside {}",
                    root.display()
                )));
            }
        }
        Ok(mapping)
    }

    /// Checks every header template, the core consent and the error pointer; reads the
    /// secret files the templates name.
    fn check_templates(&mut self) -> Result<(), String> {
        let mut secrets = template::Secrets::default();
        let mut sets: Vec<(String, &BTreeMap<String, String>)> =
            vec![("headers".into(), &self.headers)];
        for (section, op) in self.operations() {
            sets.push((format!("{section}.headers"), &op.headers));
        }
        for (section, headers) in sets {
            for (name, value) in headers {
                axum::http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("{section}.{name}: not a header name"))?;
                template::check(value, &[], &mut secrets)
                    .map_err(|e| format!("{section}.{name}: {e}"))?;
                if template::uses(value, "core_consent") && self.core_consent.is_none() {
                    return Err(format!(
                        "{section}.{name}: {{core_consent}} needs a [core_consent] section"
                    ));
                }
            }
        }
        if let Some(auth) = &self.auth {
            template::check(&auth.value, &[], &mut secrets)
                .map_err(|e| format!("auth.value: {e}"))?;
        }
        if let Some(pointer) = &self.errors.code
            && !pointer.starts_with('/')
        {
            return Err("errors.code: a /json/pointer".into());
        }
        if let Some(consent) = &mut self.core_consent {
            check_core_consent(consent, &mut secrets)?;
        }
        self.secrets = secrets;
        Ok(())
    }

    /// Every operation with its section name.
    fn operations(&self) -> Vec<(&'static str, &Operation)> {
        let mut all = vec![
            ("account", &self.account),
            ("balances", &self.balances),
            ("transactions", &self.transactions),
        ];
        all.extend(
            self.create_payment
                .as_ref()
                .map(|op| ("create_payment", op)),
        );
        all.extend(self.payment.as_ref().map(|op| ("payment", op)));
        for (name, op) in [
            ("create_scheduled_payment", &self.create_scheduled_payment),
            ("scheduled_payment", &self.scheduled_payment),
            ("create_standing_order", &self.create_standing_order),
            ("standing_order", &self.standing_order),
        ] {
            all.extend(op.as_ref().map(|op| (name, op)));
        }
        for resource in resources::RESOURCES {
            all.extend(self.section(resource).map(|op| (resource.name(), op)));
        }
        all
    }
}

fn check_core_consent(
    consent: &mut CoreConsent,
    secrets: &mut template::Secrets,
) -> Result<(), String> {
    if !consent.path.starts_with('/') {
        return Err("core_consent.path: must start with /".into());
    }
    if !consent.id.starts_with('/') {
        return Err("core_consent.id: a /json/pointer".into());
    }
    for (name, value) in &consent.headers {
        axum::http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("core_consent.headers.{name}: not a header name"))?;
        template::check(value, &[], secrets)
            .map_err(|e| format!("core_consent.headers.{name}: {e}"))?;
    }
    let sample = template::Values {
        now: chrono::Utc::now(),
        psu_ip: Some("192.0.2.1".into()),
        interaction_id: Some(template::uuid()),
        core_consent: None,
        idempotency_key: None,
        secrets,
    };
    let body = template::fill_body(&consent.body, &sample)
        .ok_or("core_consent.body: may not use {core_consent} or {idempotency_key}")?;
    serde_json::from_str::<Value>(&body)
        .map_err(|e| format!("core_consent.body: not a JSON template: {e}"))?;
    consent.operation = Operation {
        path: consent.path.clone(),
        headers: consent.headers.clone(),
        ..Default::default()
    };
    Ok(())
}

pub(super) fn bad(message: String) -> ConnectorError {
    ConnectorError::Unavailable(format!("bad answer from the bank core: {message}"))
}

/// The request body from its template: each `{placeholder}` gets the order's value,
/// escaped for a JSON string or for XML as the operation's format says (`{amount}` is a
/// bare number in the `minor` format).
pub(super) fn fill(template: &str, order: &PaymentOrder, op: &Operation) -> String {
    let escaped = |value: &str| {
        if op.is_xml() {
            return xml::escape(value);
        }
        let quoted = serde_json::to_string(value).unwrap_or_default();
        quoted[1..quoted.len().saturating_sub(1).max(1)].to_owned()
    };
    let amount = match op.amount_format.as_str() {
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
