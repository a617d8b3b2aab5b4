//! The mapping connector: a bank core reached over HTTP (auth, timeouts, retries, bounded answers) and mapped onto the unified model by its mapping file.

use std::time::Duration;

use chrono::{DateTime, Utc};
use consentnet_identity::util::percent_encode;
use serde_json::Value;

use crate::connector::{
    Account, Balance, BankConnector, ConnectorError, Money, Page, Payment, PaymentOrder,
    Transaction, TransactionQuery,
};

use super::*;

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
        let mut cached = consentnet_identity::util::lock(&self.token);
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
