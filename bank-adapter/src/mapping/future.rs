//! Future-dated orders in a mapping file: the `create_scheduled_payment`/`scheduled_payment` and `create_standing_order`/`standing_order` sections, their checks, their body placeholders, and the core's answers read into unified records.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use consentnet_identity::util::percent_encode;
use serde_json::Value;

use super::resources::{scheduled_payment, standing_order};
use super::*;
use crate::connector::{
    ConnectorError, Money, PaymentOrder, Resource, ScheduledOrder, ScheduledPayment, StandingOrder,
    StandingOrderOrder,
};

/// The fields a creation answer must give.
const SCHEDULED_CREATED: &[&str] = &["scheduled_payment_id"];
const STANDING_CREATED: &[&str] = &["standing_order_id"];
/// The fields a read back must give (those of the account information sections, and the
/// paying account).
const SCHEDULED_READ: &[&str] = &[
    "scheduled_payment_id",
    "debtor_account",
    "execution",
    "amount",
    "currency",
    "creditor_scheme",
    "creditor_identification",
    "creditor_name",
];
const STANDING_READ: &[&str] = &[
    "standing_order_id",
    "debtor_account",
    "frequency",
    "amount",
    "currency",
    "first_payment",
    "creditor_scheme",
    "creditor_identification",
    "creditor_name",
];

/// `at` as the operation writes dates (`date_format`, or RFC 3339).
fn date(op: &Operation, at: DateTime<Utc>) -> Result<String, ConnectorError> {
    if op.date_format == "rfc3339" {
        return Ok(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    }
    let mut text = String::new();
    write!(text, "{}", at.format(&op.date_format)).map_err(|_| {
        bad(format!(
            "date_format: {:?} cannot write dates",
            op.date_format
        ))
    })?;
    Ok(text)
}

fn amount(op: &Operation, money: &Money) -> String {
    match op.amount_format.as_str() {
        "minor" => money.minor.to_string(),
        _ => money.decimal(),
    }
}

/// The core's frequency code for an OBIE one: through the `standing_order` section's
/// `values.frequency` table read backwards when it has one (a code it lacks is one the
/// core does not offer).
fn frequency(op: &Operation, code: &str) -> Result<String, ConnectorError> {
    let Some(table) = op.values.get("frequency") else {
        return Ok(code.to_owned());
    };
    table
        .iter()
        .find(|(_, unified)| unified.as_str() == code)
        .map(|(core, _)| core.clone())
        .ok_or_else(|| ConnectorError::Refused {
            code: "frequency_not_offered".into(),
            message: format!("the bank core takes no standing order paid {code}"),
        })
}

/// A sample order, to check a body template fills into valid JSON or XML.
fn sample() -> PaymentOrder {
    PaymentOrder {
        debtor_account: "acc".into(),
        creditor_scheme: "UK.OBIE.IBAN".into(),
        creditor_identification: "GB00".into(),
        creditor_name: "Name \"quoted\"".into(),
        amount: Money {
            minor: 1_234,
            currency: "GBP".into(),
        },
        reference: "ref".into(),
    }
}

/// Checks a write section (`create_payment` and the like) and the section that reads its
/// orders back: their fields, `{placeholder}` in the read path, an idempotency key sent,
/// and a body template that fills (with `extra`) into valid JSON or XML.
pub(super) fn check_write(
    (name, create, created): (&str, &Operation, &[&str]),
    (read_name, read, read_fields, optional): (&str, &Operation, &[&str], &[&str]),
    (placeholder, extra): (&str, &dyn Fn(String) -> String),
) -> Result<(), String> {
    create.check(name, created)?;
    read.check_fields(read_name, read_fields, optional)?;
    if !read.path.contains(placeholder) {
        return Err(format!("{read_name}.path: must contain {placeholder}"));
    }
    let keyed = |v: &String| v.contains("{idempotency_key}") || v.contains("{idempotency_uuid}");
    let keyed_header =
        create.headers.values().any(keyed) || create.body.as_ref().is_some_and(keyed);
    if create
        .idempotency_header
        .as_deref()
        .is_none_or(str::is_empty)
        && !keyed_header
    {
        return Err(format!(
            "{name}.idempotency_header: missing (or a header or body with {{idempotency_key}} or {{idempotency_uuid}})"
        ));
    }
    let template = create
        .body
        .as_deref()
        .ok_or_else(|| format!("{name}.body: missing"))?;
    let filled = extra(fill(template, &sample(), create));
    if create.is_xml() {
        xml::to_json(&filled).map_err(|e| format!("{name}.body: not an XML template: {e}"))?;
    } else {
        serde_json::from_str::<Value>(&filled)
            .map_err(|e| format!("{name}.body: not a JSON template: {e}"))?;
    }
    Ok(())
}

impl Mapping {
    /// Checks the future-dated sections the file gives: each creation section with its
    /// read section, or neither.
    pub(super) fn check_future(&self) -> Result<(), String> {
        let sample_dates = |text: String| {
            ["{execution}", "{first}", "{final}"]
                .iter()
                .fold(text, |t, p| t.replace(p, "2027-01-01"))
                .replace("{count}", "3")
                .replace("{frequency}", "MNTH")
                .replace("{recurring_amount}", "12.34")
                .replace("{final_amount}", "12.34")
        };
        let pairs: [(_, (_, _, _, &[&str])); 2] = [
            (
                (
                    "create_scheduled_payment",
                    &self.create_scheduled_payment,
                    SCHEDULED_CREATED,
                ),
                (
                    "scheduled_payment",
                    &self.scheduled_payment,
                    SCHEDULED_READ,
                    &["reference"],
                ),
            ),
            (
                (
                    "create_standing_order",
                    &self.create_standing_order,
                    STANDING_CREATED,
                ),
                (
                    "standing_order",
                    &self.standing_order,
                    STANDING_READ,
                    &["next_payment", "reference", "status"],
                ),
            ),
        ];
        for ((name, create, created), (read_name, read, fields, optional)) in pairs {
            match (create, read) {
                (None, None) => {}
                (Some(create), Some(read)) => check_write(
                    (name, create, created),
                    (read_name, read, fields, optional),
                    ("{id}", &sample_dates),
                )?,
                (Some(_), None) => return Err(format!("{read_name}: needed with {name}")),
                (None, Some(_)) => return Err(format!("{name}: needed with {read_name}")),
            }
        }
        Ok(())
    }
}

/// The record at the operation's `root` of `answer`.
fn at_root(op: &Operation, name: &str, answer: Value) -> Result<Value, ConnectorError> {
    match op.root.as_str() {
        "" => Ok(answer),
        root => answer
            .pointer(root)
            .cloned()
            .ok_or_else(|| bad(format!("{name}: no record at {root}"))),
    }
}

impl MappingConnector {
    /// POSTs a future-dated order's body to `op` under `key`; the core's record.
    fn post_order(
        &self,
        (name, op): (&'static str, &Operation),
        key: &str,
        body: String,
    ) -> Result<Value, ConnectorError> {
        let values = self.values(None, Some(key));
        let body = super::template::fill_body(&body, &values)
            .ok_or_else(|| bad(format!("{name}.body: a placeholder has no value")))?;
        let request = super::http::Request {
            op,
            name,
            path: &op.path,
            post: Some((&body, Some(key))),
        };
        let answer = self.request(request)?;
        at_root(op, name, answer)
    }

    /// GETs the order `id` from `op`: the core's record.
    fn get_order(
        &self,
        (name, op): (&'static str, &Operation),
        id: &str,
    ) -> Result<Value, ConnectorError> {
        let path = op.path.replace("{id}", &percent_encode(id, b""));
        let answer = self
            .get(op, name, &path)?
            .ok_or_else(|| ConnectorError::NotFound(id.to_owned()))?;
        at_root(op, name, answer)
    }

    pub(super) fn schedule(
        &self,
        key: &str,
        scheduled: &ScheduledOrder,
    ) -> Result<ScheduledPayment, ConnectorError> {
        let (Some(op), Some(_)) = (
            &self.mapping.create_scheduled_payment,
            &self.mapping.scheduled_payment,
        ) else {
            return Err(ConnectorError::NotOffered(Resource::NewScheduledPayments));
        };
        let body = fill(op.body.as_deref().unwrap_or_default(), &scheduled.order, op)
            .replace("{execution}", &date(op, scheduled.execution)?);
        let record = self.post_order(("create_scheduled_payment", op), key, body)?;
        Ok(scheduled.record(op.required(&record, "scheduled_payment_id")?))
    }

    pub(super) fn scheduled_one(&self, id: &str) -> Result<ScheduledPayment, ConnectorError> {
        let op = self
            .mapping
            .scheduled_payment
            .as_ref()
            .ok_or(ConnectorError::NotOffered(Resource::NewScheduledPayments))?;
        let record = self.get_order(("scheduled_payment", op), id)?;
        scheduled_payment(op, &record, op.required(&record, "debtor_account")?)
    }

    pub(super) fn set_up(
        &self,
        key: &str,
        standing: &StandingOrderOrder,
    ) -> Result<StandingOrder, ConnectorError> {
        let (Some(op), Some(read)) = (
            &self.mapping.create_standing_order,
            &self.mapping.standing_order,
        ) else {
            return Err(ConnectorError::NotOffered(Resource::NewStandingOrders));
        };
        let last = standing.dates.last().copied().unwrap_or(standing.first);
        let body = fill(op.body.as_deref().unwrap_or_default(), &standing.order, op)
            .replace("{first}", &date(op, standing.first)?)
            .replace("{final}", &date(op, last)?)
            .replace("{count}", &standing.dates.len().to_string())
            .replace("{frequency}", &frequency(read, &standing.frequency)?)
            .replace(
                "{recurring_amount}",
                &amount(op, &standing.recurring_amount),
            )
            .replace("{final_amount}", &amount(op, &standing.final_amount));
        let record = self.post_order(("create_standing_order", op), key, body)?;
        Ok(standing.record(op.required(&record, "standing_order_id")?, Utc::now()))
    }

    pub(super) fn standing_one(&self, id: &str) -> Result<StandingOrder, ConnectorError> {
        let op = self
            .mapping
            .standing_order
            .as_ref()
            .ok_or(ConnectorError::NotOffered(Resource::NewStandingOrders))?;
        let record = self.get_order(("standing_order", op), id)?;
        standing_order(op, &record, op.required(&record, "debtor_account")?)
    }
}
