//! The mapping connector's unified side: each connector operation as requests to the bank core and its answers read into unified records by the mapping file.

use chrono::{DateTime, Utc};
use consentnet_identity::util::percent_encode;
use serde_json::Value;

use crate::connector::{
    Account, Balance, BankConnector, Beneficiary, ConnectorError, DirectDebit, Money, Page, Party,
    Payment, PaymentOrder, Product, ScheduledOrder, ScheduledPayment, StandingOrder,
    StandingOrderOrder, Statement, Transaction, TransactionQuery,
};

use super::*;

impl MappingConnector {
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

    /// A payment from a bank answer (at the operation's `root`, if it has one); `order`
    /// when the caller knows it, else read back.
    fn payment_from(
        &self,
        op: &Operation,
        answer: &Value,
        order: Option<&PaymentOrder>,
    ) -> Result<Payment, ConnectorError> {
        let record = match op.root.as_str() {
            "" => answer,
            root => answer
                .pointer(root)
                .ok_or_else(|| bad(format!("no payment at {root}")))?,
        };
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
        let path = op.path.replace("{account}", &percent_encode(id, b""));
        let Some(answer) = self.get(op, "account", &path)? else {
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
        let path = op
            .path
            .replace("{account}", &percent_encode(account_id, b""));
        let answer = self
            .get(op, "balances", &path)?
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
                .get(op, "transactions", &path)?
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
        let values = self.values(None, Some(idempotency_key));
        let body = super::template::fill_body(&fill(template, order, op), &values)
            .ok_or_else(|| bad("create_payment.body: a placeholder has no value".into()))?;
        let request = super::http::Request {
            op,
            name: "create_payment",
            path: &op.path,
            post: Some((&body, Some(idempotency_key))),
        };
        match self.request(request) {
            Ok(answer) => self.payment_from(op, &answer, Some(order)),
            Err(ConnectorError::NotFound(_)) => {
                Err(ConnectorError::NotFound(order.debtor_account.clone()))
            }
            Err(error) => Err(error),
        }
    }

    fn payment(&self, payment_id: &str) -> Result<Payment, ConnectorError> {
        let (_, op) = self.payments()?;
        let path = op
            .path
            .replace("{payment}", &percent_encode(payment_id, b""));
        let answer = self
            .get(op, "payment", &path)?
            .ok_or_else(|| ConnectorError::NotFound(payment_id.to_owned()))?;
        self.payment_from(op, &answer, None)
    }

    fn create_scheduled_payment(
        &self,
        idempotency_key: &str,
        order: &ScheduledOrder,
    ) -> Result<ScheduledPayment, ConnectorError> {
        self.schedule(idempotency_key, order)
    }

    fn scheduled_payment(&self, id: &str) -> Result<ScheduledPayment, ConnectorError> {
        self.scheduled_one(id)
    }

    fn create_standing_order(
        &self,
        idempotency_key: &str,
        order: &StandingOrderOrder,
    ) -> Result<StandingOrder, ConnectorError> {
        self.set_up(idempotency_key, order)
    }

    fn standing_order(&self, id: &str) -> Result<StandingOrder, ConnectorError> {
        self.standing_one(id)
    }

    fn beneficiaries(&self, account_id: &str) -> Result<Vec<Beneficiary>, ConnectorError> {
        self.read_beneficiaries(account_id)
    }

    fn direct_debits(&self, account_id: &str) -> Result<Vec<DirectDebit>, ConnectorError> {
        self.read_direct_debits(account_id)
    }

    fn standing_orders(&self, account_id: &str) -> Result<Vec<StandingOrder>, ConnectorError> {
        self.read_standing_orders(account_id)
    }

    fn scheduled_payments(
        &self,
        account_id: &str,
    ) -> Result<Vec<ScheduledPayment>, ConnectorError> {
        self.read_scheduled(account_id)
    }

    fn statements(&self, account_id: &str) -> Result<Vec<Statement>, ConnectorError> {
        self.read_statements(account_id)
    }

    fn parties(&self, account_id: &str) -> Result<Vec<Party>, ConnectorError> {
        self.read_parties(account_id)
    }

    fn product(&self, account_id: &str) -> Result<Product, ConnectorError> {
        self.read_product(account_id)
    }

    fn core_refusals(&self) -> Vec<crate::connector::CoreRefusalCount> {
        self.refusals.counts()
    }
}
