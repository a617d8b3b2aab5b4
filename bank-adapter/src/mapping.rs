//! The HTTP mapping connector: a bank core reached over HTTP and mapped onto the unified model by a declarative file (base URL, auth, per-operation request templates, JSON field mapping, value maps, date and amount formats, timeouts and retries).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
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
    /// How to read one account.
    pub account: Operation,
    /// How to read an account's balances.
    pub balances: Operation,
    /// How to read an account's transactions.
    pub transactions: Operation,
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

/// A fixed header.
#[derive(Debug, Clone, Deserialize)]
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
            if !required.contains(&field.as_str()) && !OPTIONAL_FIELDS.contains(&field.as_str()) {
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

/// Escapes a value placed into a path or query.
fn escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A connector configured by a [`Mapping`].
pub struct MappingConnector {
    mapping: Mapping,
    agent: ureq::Agent,
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
        Self { mapping, agent }
    }

    /// The mapping in use.
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    /// GETs `path` with retries; `Ok(None)` for a 404.
    fn get(&self, path: &str) -> Result<Option<Value>, ConnectorError> {
        let url = format!("{}{path}", self.mapping.base_url.trim_end_matches('/'));
        let mut backoff = Duration::from_millis(self.mapping.backoff_ms);
        let mut attempt = 0;
        loop {
            let mut request = self.agent.get(&url);
            if let Some(auth) = &self.mapping.auth {
                request = request.header(&auth.header, &auth.value);
            }
            let outcome = match request.call() {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    match status {
                        200..=299 => {
                            let body = response
                                .body_mut()
                                .with_config()
                                .limit(MAX_ANSWER_BYTES)
                                .read_to_vec()
                                .map_err(|e| bad(e.to_string()))?;
                            return serde_json::from_slice(&body)
                                .map(Some)
                                .map_err(|e| bad(format!("not JSON: {e}")));
                        }
                        404 => return Ok(None),
                        500..=599 => {
                            ConnectorError::Unavailable(format!("{url} answered {status}"))
                        }
                        _ => {
                            return Err(ConnectorError::Unavailable(format!(
                                "{url} answered {status}"
                            )));
                        }
                    }
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

    fn account_one(&self, id: &str) -> Result<Option<Account>, ConnectorError> {
        let op = &self.mapping.account;
        let Some(answer) = self.get(&op.path.replace("{account}", &escape(id)))? else {
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
            .get(&op.path.replace("{account}", &escape(account_id)))?
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
            Some(at) if query_format == "rfc3339" => escape(&at.to_rfc3339()),
            Some(at) => escape(&at.format(query_format).to_string()),
        };
        // The bank's own paging differs from the unified one: read every page of the
        // range, then page here.
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let path = op
                .path
                .replace("{account}", &escape(account_id))
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
        all.retain(|t| {
            query.from.is_none_or(|from| t.booking_date_time >= from)
                && query.to.is_none_or(|to| t.booking_date_time <= to)
        });
        let size = query.page_size.clamp(1, 1_000) as usize;
        let skip = (query.page.max(1) as usize - 1).saturating_mul(size);
        let items: Vec<Transaction> = all.iter().skip(skip).take(size).cloned().collect();
        let more = all.len() > skip + items.len();
        Ok(Page { items, more })
    }

    fn create_payment(&self, _: &str, _: &PaymentOrder) -> Result<Payment, ConnectorError> {
        Err(ConnectorError::Refused {
            code: "not_supported".into(),
            message: format!(
                "{} is mapped for account information only",
                self.mapping.name
            ),
        })
    }

    fn payment(&self, payment_id: &str) -> Result<Payment, ConnectorError> {
        Err(ConnectorError::NotFound(payment_id.to_owned()))
    }
}
