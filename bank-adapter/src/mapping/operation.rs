//! Reading a bank core's answer through an operation's mapping: the records, each field by its JSON pointer, money, times and paging, with errors that name the field.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;

use crate::connector::{ConnectorError, CreditDebit, Money};

use super::*;

impl Operation {
    pub(super) fn check(&self, section: &str, required: &[&str]) -> Result<(), String> {
        self.check_fields(section, required, OPTIONAL_FIELDS)
    }

    /// Checks the operation with its own required and optional unified fields.
    pub(super) fn check_fields(
        &self,
        section: &str,
        required: &[&str],
        optional: &[&str],
    ) -> Result<(), String> {
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
                && !optional.contains(&field.as_str())
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
        if !matches!(self.format.as_deref(), None | Some("json") | Some("xml")) {
            return Err(format!("{section}.format: json or xml"));
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
    pub(super) fn text(
        &self,
        record: &Value,
        field: &str,
    ) -> Result<Option<String>, ConnectorError> {
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

    pub(super) fn required(&self, record: &Value, field: &str) -> Result<String, ConnectorError> {
        self.text(record, field)?
            .ok_or_else(|| bad(format!("{field} missing at {}", self.fields[field])))
    }

    pub(super) fn time(
        &self,
        record: &Value,
        field: &str,
    ) -> Result<DateTime<Utc>, ConnectorError> {
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

    /// The money at the `amount` and `currency` fields, its sign dropped.
    pub(super) fn amount_of(
        &self,
        record: &Value,
        amount: &str,
        currency: &str,
    ) -> Result<Money, ConnectorError> {
        Ok(self.signed(record, amount, currency)?.0)
    }

    /// An optional time field.
    pub(super) fn time_if(
        &self,
        record: &Value,
        field: &str,
    ) -> Result<Option<DateTime<Utc>>, ConnectorError> {
        match self.text(record, field)? {
            Some(_) => self.time(record, field).map(Some),
            None => Ok(None),
        }
    }

    /// Amount and direction of `record`.
    pub(super) fn money(&self, record: &Value) -> Result<(Money, CreditDebit), ConnectorError> {
        let (money, negative) = self.signed(record, "amount", "currency")?;
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

    /// The money at the `amount` and `currency` fields, and whether it was negative.
    fn signed(
        &self,
        record: &Value,
        amount: &str,
        currency: &str,
    ) -> Result<(Money, bool), ConnectorError> {
        let currency = self.required(record, currency)?;
        let text = self.required(record, amount)?;
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
                "{amount}: {text:?} is not a {} amount",
                self.amount_format
            ))
        })?;
        Ok((money, negative))
    }

    pub(super) fn records<'a>(&self, answer: &'a Value) -> Result<&'a [Value], ConnectorError> {
        let root = if self.root.is_empty() {
            answer
        } else if self.is_xml() {
            // In XML a list of none is no element at all.
            match answer.pointer(&self.root) {
                Some(root) => root,
                None => return Ok(&[]),
            }
        } else {
            answer
                .pointer(&self.root)
                .ok_or_else(|| bad(format!("no list at {}", self.root)))?
        };
        // In XML a list of one is the element itself.
        if self.is_xml() && root.is_object() {
            return Ok(std::slice::from_ref(root));
        }
        if self.is_xml() && root.is_string() {
            return Ok(&[]);
        }
        root.as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| bad(format!("{} is not a list", self.root)))
    }

    pub(super) fn has_more(&self, answer: &Value) -> bool {
        let Some(pointer) = &self.more else {
            return false;
        };
        // `!/pointer`: a last-page indicator (ISO 20022 `LastPgInd`): more unless true.
        if let Some(last) = pointer.strip_prefix('!') {
            let is_last = match answer.pointer(last) {
                Some(Value::Bool(flag)) => *flag,
                Some(Value::String(text)) => text == "true",
                // No indicator: take it as the last page rather than page forever.
                _ => true,
            };
            return !is_last;
        }
        !matches!(
            answer.pointer(pointer),
            None | Some(Value::Null) | Some(Value::Bool(false))
        ) && answer.pointer(pointer) != Some(&Value::String("N".into()))
    }
}
