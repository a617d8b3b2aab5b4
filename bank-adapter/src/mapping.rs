//! The HTTP mapping connector: a bank core reached over HTTP and mapped onto the unified model by a declarative file (base URL, auth, per-operation request templates, JSON field mapping, value maps, date and amount formats, timeouts and retries).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use consentnet_identity::util::percent_encode;
use serde::Deserialize;
use serde_json::Value;

use crate::connector::{
    Account, Balance, BankConnector, ConnectorError, CreditDebit, Money, Page, Payment,
    PaymentOrder, Transaction, TransactionQuery,
};

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

impl Operation {
    fn check(&self, section: &str, required: &[&str]) -> Result<(), String> {
        if !self.path.starts_with('/') {
            return Err(format!("{section}.path: must start with /"));
        }
        for field in required {
            if !self.fields.contains_key(*field) {
                return Err(format!("{section}.fields.{field}: missing"));
            }
        }
        for (field, source) in &self.fields {
            if !required.contains(&field.as_str())
                && !OPTIONAL_FIELDS.contains(&field.as_str())
                && field != "reference"
            {
                return Err(format!("{section}.fields.{field}: not a unified field"));
            }
            if !(source.starts_with('/') || source.starts_with('=')) {
                return Err(format!(
                    "{section}.fields.{field}: {source:?} is neither a /json/pointer nor an =literal"
                ));
            }
        }
        for field in self.values.keys() {
            if !self.fields.contains_key(field) {
                return Err(format!("{section}.values.{field}: no such field"));
            }
        }
        if !matches!(self.amount_format.as_str(), "decimal" | "minor") {
            return Err(format!("{section}.amount_format: decimal or minor"));
        }
        if self.date_format != "rfc3339" && self.date_format.is_empty() {
            return Err(format!("{section}.date_format: a chrono format or rfc3339"));
        }
        Ok(())
    }

    /// The text of `field` in `record`, after the value map.
    fn text(&self, record: &Value, field: &str) -> Result<Option<String>, ConnectorError> {
        let Some(source) = self.fields.get(field) else {
            return Ok(None);
        };
        let raw = if let Some(literal) = source.strip_prefix('=') {
            literal.to_owned()
        } else {
            match record.pointer(source) {
                Some(Value::String(text)) => text.clone(),
                Some(Value::Number(number)) => number.to_string(),
                Some(Value::Bool(flag)) => flag.to_string(),
                Some(Value::Null) | None => return Ok(None),
                Some(_) => return Err(bad(format!("{field} at {source} is not a scalar"))),
            }
        };
        Ok(Some(match self.values.get(field) {
            Some(map) => map
                .get(&raw)
                .cloned()
                .ok_or_else(|| bad(format!("{field}: unmapped bank value {raw:?}")))?,
            None => raw,
        }))
    }

    fn required(&self, record: &Value, field: &str) -> Result<String, ConnectorError> {
        self.text(record, field)?
            .ok_or_else(|| bad(format!("{field} missing at {}", self.fields[field])))
    }

    fn time(&self, record: &Value, field: &str) -> Result<DateTime<Utc>, ConnectorError> {
        let text = self.required(record, field)?;
        let parsed = if self.date_format == "rfc3339" {
            DateTime::parse_from_rfc3339(&text)
                .map(|t| t.with_timezone(&Utc))
                .ok()
        } else {
            NaiveDateTime::parse_from_str(&text, &self.date_format)
                .map(|t| t.and_utc())
                .ok()
                .or_else(|| {
                    NaiveDate::parse_from_str(&text, &self.date_format)
                        .ok()
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                        .map(|t| t.and_utc())
                })
        };
        parsed.ok_or_else(|| {
            bad(format!(
                "{field}: {text:?} is not a {} date",
                self.date_format
            ))
        })
    }

    /// Amount and direction of `record`.
    fn money(&self, record: &Value) -> Result<(Money, CreditDebit), ConnectorError> {
        let currency = self.required(record, "currency")?;
        let text = self.required(record, "amount")?;
        let (negative, magnitude) = match text.strip_prefix('-') {
            Some(rest) => (true, rest.to_owned()),
            None => (false, text.clone()),
        };
        let money = match self.amount_format.as_str() {
            "minor" => magnitude.parse::<i64>().ok().map(|minor| Money {
                minor,
                currency: currency.clone(),
            }),
            _ => Money::parse(&magnitude, &currency),
        }
        .ok_or_else(|| {
            bad(format!(
                "amount: {text:?} is not a {} amount",
                self.amount_format
            ))
        })?;
        let direction = match self.required(record, "credit_debit")?.as_str() {
            "sign" if negative => CreditDebit::Debit,
            "sign" => CreditDebit::Credit,
            "Credit" => CreditDebit::Credit,
            "Debit" => CreditDebit::Debit,
            other => {
                return Err(bad(format!(
                    "credit_debit: {other:?} is not Credit or Debit"
                )));
            }
        };
        Ok((money, direction))
    }

    fn records<'a>(&self, answer: &'a Value) -> Result<&'a [Value], ConnectorError> {
        let root = if self.root.is_empty() {
            answer
        } else {
            answer
                .pointer(&self.root)
                .ok_or_else(|| bad(format!("no list at {}", self.root)))?
        };
        root.as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| bad(format!("{} is not a list", self.root)))
    }

    fn has_more(&self, answer: &Value) -> bool {
        let Some(pointer) = &self.more else {
            return false;
        };
        !matches!(
            answer.pointer(pointer),
            None | Some(Value::Null) | Some(Value::Bool(false))
        ) && answer.pointer(pointer) != Some(&Value::String("N".into()))
    }
}

fn bad(message: String) -> ConnectorError {
    ConnectorError::Unavailable(format!("bad answer from the bank core: {message}"))
}

/// A connector configured by a [`Mapping`].
pub struct MappingConnector {
    mapping: Mapping,
    agent: ureq::Agent,
    /// The OAuth bearer token and when to stop using it.
    token: std::sync::Mutex<Option<(String, std::time::Instant)>>,
}

impl std::fmt::Debug for MappingConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappingConnector")
            .field("name", &self.mapping.name)
            .finish_non_exhaustive()
    }
}

impl MappingConnector {
    /// A connector for `mapping`.
    pub fn new(mapping: Mapping) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_millis(mapping.timeout_ms)))
            .build()
            .new_agent();
        Self {
            mapping,
            agent,
            token: std::sync::Mutex::new(None),
        }
    }

    /// The mapping in use.
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    /// The OAuth bearer token, fetched when there is none or it is about to expire.
    fn bearer(&self, refresh: bool) -> Result<String, ConnectorError> {
        let Some(oauth) = &self.mapping.oauth else {
            return Err(ConnectorError::Unavailable("no OAuth client".into()));
        };
        let mut cached = self
            .token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !refresh
            && let Some((token, until)) = cached.as_ref()
            && std::time::Instant::now() < *until
        {
            return Ok(token.clone());
        }
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", oauth.client_id, oauth.client_secret));
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &oauth.scope {
            form.push(("scope", scope));
        }
        let mut response = self
            .agent
            .post(&oauth.token_url)
            .header("authorization", &format!("Basic {basic}"))
            .send_form(form)
            .map_err(|e| match e {
                ureq::Error::Timeout(_) => ConnectorError::Timeout,
                other => ConnectorError::Unavailable(format!("token endpoint: {other}")),
            })?;
        let status = response.status().as_u16();
        let body: Value = response
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_json()
            .map_err(|e| bad(format!("token answer: {e}")))?;
        let token = body["access_token"]
            .as_str()
            .filter(|_| status == 200)
            .ok_or_else(|| {
                ConnectorError::Unavailable(format!("token endpoint answered {status}"))
            })?
            .to_owned();
        // Renew a little before the bank would refuse it.
        let lifetime = body["expires_in"]
            .as_u64()
            .unwrap_or(300)
            .saturating_sub(10);
        *cached = Some((
            token.clone(),
            std::time::Instant::now() + Duration::from_secs(lifetime),
        ));
        Ok(token)
    }

    /// The authentication header for a request, if any.
    fn auth_header(&self, refresh: bool) -> Result<Option<(String, String)>, ConnectorError> {
        if let Some(auth) = &self.mapping.auth {
            return Ok(Some((auth.header.clone(), auth.value.clone())));
        }
        if self.mapping.oauth.is_some() {
            return Ok(Some((
                "authorization".into(),
                format!("Bearer {}", self.bearer(refresh)?),
            )));
        }
        Ok(None)
    }

    /// Sends a request with retries (after a timeout, a connection failure or a 5xx);
    /// returns the status and the JSON body, if any.
    fn call(
        &self,
        path: &str,
        body: Option<(&str, &str, &str)>,
    ) -> Result<(u16, Option<Value>), ConnectorError> {
        let url = format!("{}{path}", self.mapping.base_url.trim_end_matches('/'));
        let mut backoff = Duration::from_millis(self.mapping.backoff_ms);
        let mut attempt = 0;
        let mut refreshed = false;
        loop {
            let auth = self.auth_header(false)?;
            let sent = match body {
                // (idempotency header, its value, JSON body): a retry repeats the key.
                Some((header, key, json)) => {
                    let mut request = self
                        .agent
                        .post(&url)
                        .header("content-type", "application/json")
                        .header(header, key);
                    if let Some((name, value)) = &auth {
                        request = request.header(name, value);
                    }
                    request.send(json)
                }
                None => {
                    let mut request = self.agent.get(&url);
                    if let Some((name, value)) = &auth {
                        request = request.header(name, value);
                    }
                    request.call()
                }
            };
            let outcome = match sent {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    if status == 401 && self.mapping.oauth.is_some() && !refreshed {
                        // The token may have been revoked or expired early: once more.
                        refreshed = true;
                        self.bearer(true)?;
                        continue;
                    }
                    if !(500..=599).contains(&status) {
                        let bytes = response
                            .body_mut()
                            .with_config()
                            .limit(MAX_ANSWER_BYTES)
                            .read_to_vec()
                            .map_err(|e| bad(e.to_string()))?;
                        let parsed = serde_json::from_slice(&bytes).ok();
                        if (200..300).contains(&status) && parsed.is_none() {
                            return Err(bad("not JSON".into()));
                        }
                        return Ok((status, parsed));
                    }
                    ConnectorError::Unavailable(format!("{url} answered {status}"))
                }
                Err(ureq::Error::Timeout(_)) => ConnectorError::Timeout,
                Err(error) => ConnectorError::Unavailable(error.to_string()),
            };
            if attempt >= self.mapping.retries {
                return Err(outcome);
            }
            attempt += 1;
            std::thread::sleep(backoff);
            backoff *= 2;
        }
    }

    /// GETs `path`; `Ok(None)` for a 404.
    fn get(&self, path: &str) -> Result<Option<Value>, ConnectorError> {
        match self.call(path, None)? {
            (200..=299, body) => Ok(body),
            (404, _) => Ok(None),
            (status, _) => Err(ConnectorError::Unavailable(format!(
                "{path} answered {status}"
            ))),
        }
    }

    /// The operation for payments, or the refusal a read-only mapping gives.
    fn payments(&self) -> Result<(&Operation, &Operation), ConnectorError> {
        match (&self.mapping.create_payment, &self.mapping.payment) {
            (Some(create), Some(read)) => Ok((create, read)),
            _ => Err(ConnectorError::Refused {
                code: "not_supported".into(),
                message: format!(
                    "{} is mapped for account information only",
                    self.mapping.name
                ),
            }),
        }
    }

    /// A payment from a bank answer; `order` when the caller knows it, else read back.
    fn payment_from(
        &self,
        op: &Operation,
        record: &Value,
        order: Option<&PaymentOrder>,
    ) -> Result<Payment, ConnectorError> {
        let order = match order {
            Some(order) => order.clone(),
            None => {
                let currency = op.required(record, "currency")?;
                let text = op.required(record, "amount")?;
                let amount = match op.amount_format.as_str() {
                    "minor" => text.parse::<i64>().ok().map(|minor| Money {
                        minor,
                        currency: currency.clone(),
                    }),
                    _ => Money::parse(&text, &currency),
                }
                .ok_or_else(|| bad(format!("amount: {text:?}")))?;
                PaymentOrder {
                    debtor_account: op.required(record, "debtor_account")?,
                    creditor_scheme: op.required(record, "creditor_scheme")?,
                    creditor_identification: op.required(record, "creditor_identification")?,
                    creditor_name: op.required(record, "creditor_name")?,
                    amount,
                    reference: op.text(record, "reference")?.unwrap_or_default(),
                }
            }
        };
        Ok(Payment {
            payment_id: op.required(record, "payment_id")?,
            order,
            status: op.required(record, "status")?,
            created: op.time(record, "created")?,
        })
    }

    fn account_one(&self, id: &str) -> Result<Option<Account>, ConnectorError> {
        let op = &self.mapping.account;
        let Some(answer) = self.get(&op.path.replace("{account}", &percent_encode(id, b"")))?
        else {
            return Ok(None);
        };
        let record = if op.root.is_empty() {
            &answer
        } else {
            answer
                .pointer(&op.root)
                .ok_or_else(|| bad(format!("no account at {}", op.root)))?
        };
        Ok(Some(Account {
            account_id: op.required(record, "account_id")?,
            currency: op.required(record, "currency")?,
            account_type: op
                .text(record, "account_type")?
                .unwrap_or_else(|| "Personal".into()),
            account_sub_type: op.required(record, "account_sub_type")?,
            nickname: op.text(record, "nickname")?,
            scheme_name: op.required(record, "scheme_name")?,
            identification: op.required(record, "identification")?,
            name: op.required(record, "name")?,
        }))
    }
}

impl BankConnector for MappingConnector {
    fn name(&self) -> &str {
        &self.mapping.name
    }

    fn accounts(&self, ids: &[String]) -> Result<Vec<Account>, ConnectorError> {
        let mut found = Vec::new();
        for id in ids {
            found.extend(self.account_one(id)?);
        }
        Ok(found)
    }

    fn balances(&self, account_id: &str) -> Result<Vec<Balance>, ConnectorError> {
        let op = &self.mapping.balances;
        let answer = self
            .get(
                &op.path
                    .replace("{account}", &percent_encode(account_id, b"")),
            )?
            .ok_or_else(|| ConnectorError::NotFound(account_id.to_owned()))?;
        op.records(&answer)?
            .iter()
            .map(|record| {
                let (amount, credit_debit) = op.money(record)?;
                Ok(Balance {
                    account_id: account_id.to_owned(),
                    amount,
                    credit_debit,
                    kind: op.required(record, "kind")?,
                    date_time: op.time(record, "date_time")?,
                })
            })
            .collect()
    }

    fn transactions(
        &self,
        account_id: &str,
        query: &TransactionQuery,
    ) -> Result<Page<Transaction>, ConnectorError> {
        let op = &self.mapping.transactions;
        let query_format = op.query_date_format.as_deref().unwrap_or(&op.date_format);
        let format = |at: Option<DateTime<Utc>>| match at {
            None => String::new(),
            Some(at) if query_format == "rfc3339" => percent_encode(&at.to_rfc3339(), b""),
            Some(at) => percent_encode(&at.format(query_format).to_string(), b""),
        };
        // The bank's own paging differs from the unified one: read every page of the
        // range, then page here.
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let path = op
                .path
                .replace("{account}", &percent_encode(account_id, b""))
                .replace("{from}", &format(query.from))
                .replace("{to}", &format(query.to))
                .replace("{page}", &page.to_string());
            let answer = self
                .get(&path)?
                .ok_or_else(|| ConnectorError::NotFound(account_id.to_owned()))?;
            for record in op.records(&answer)? {
                let (amount, credit_debit) = op.money(record)?;
                all.push(Transaction {
                    transaction_id: op.required(record, "transaction_id")?,
                    account_id: account_id.to_owned(),
                    amount,
                    credit_debit,
                    status: op
                        .text(record, "status")?
                        .unwrap_or_else(|| "Booked".into()),
                    booking_date_time: op.time(record, "booking_date_time")?,
                    information: op.text(record, "information")?.unwrap_or_default(),
                });
            }
            if !op.has_more(&answer) {
                break;
            }
        }
        Ok(query.page(all.iter()))
    }

    fn create_payment(
        &self,
        idempotency_key: &str,
        order: &PaymentOrder,
    ) -> Result<Payment, ConnectorError> {
        let (op, _) = self.payments()?;
        let template = op.body.as_deref().unwrap_or_default();
        let header = op.idempotency_header.as_deref().unwrap_or_default();
        let body = fill(template, order, &op.amount_format);
        let (status, answer) = self.call(&op.path, Some((header, idempotency_key, &body)))?;
        let refusal = || {
            op.refusal_code
                .as_deref()
                .and_then(|pointer| answer.as_ref()?.pointer(pointer)?.as_str())
                .unwrap_or("refused")
                .to_owned()
        };
        match status {
            200..=299 => {
                let answer = answer.ok_or_else(|| bad("no body".into()))?;
                self.payment_from(op, &answer, Some(order))
            }
            404 => Err(ConnectorError::NotFound(order.debtor_account.clone())),
            409 => Err(ConnectorError::IdempotencyConflict),
            400..=499 => Err(ConnectorError::Refused {
                code: refusal(),
                message: format!("{} refused the payment ({status})", self.mapping.name),
            }),
            other => Err(ConnectorError::Unavailable(format!("answered {other}"))),
        }
    }

    fn payment(&self, payment_id: &str) -> Result<Payment, ConnectorError> {
        let (_, op) = self.payments()?;
        let answer = self
            .get(
                &op.path
                    .replace("{payment}", &percent_encode(payment_id, b"")),
            )?
            .ok_or_else(|| ConnectorError::NotFound(payment_id.to_owned()))?;
        self.payment_from(op, &answer, None)
    }
}

/// The request body from its template: each `{placeholder}` gets the order's value,
/// escaped for a JSON string (`{amount}` is a bare number in the `minor` format).
fn fill(template: &str, order: &PaymentOrder, amount_format: &str) -> String {
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
