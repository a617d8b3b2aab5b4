//! The TSP SDK: an app's signed calls to banks' unified Open Banking API (consent id plus a proof signed by the app key), with paging and money parsed.

use chrono::{DateTime, Utc};
use consentnet_identity::{KeyPair, PopRequest, sign_pop};
use serde_json::Value;

use crate::node_api::{NodeApiError, NodeClient};

/// Where the unified API lives on a bank node.
pub const API_BASE: &str = "/open-banking/v4.0";

/// The most pages [`TspClient::transactions`] follows, so a misbehaving bank cannot keep
/// an app paging forever.
pub const MAX_PAGES: usize = 1_000;

/// Why an SDK call failed.
#[derive(Debug, thiserror::Error)]
pub enum TspError {
    /// The bank refused or could not be reached.
    #[error(transparent)]
    Bank(#[from] NodeApiError),
    /// The bank's answer lacks what the API promises.
    #[error("the bank's answer to {path} is not as the API promises: {reason}")]
    Unexpected {
        /// The path called.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// Paging did not end.
    #[error("the bank kept paging {path} beyond {MAX_PAGES} pages")]
    TooManyPages {
        /// The path called.
        path: String,
    },
}

/// An amount in minor units (pence, cents) with its currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount {
    /// Minor units; negative for debits where a sign applies.
    pub minor: i64,
    /// ISO 4217 code.
    pub currency: String,
}

impl Amount {
    /// Parses an OBIE amount object `{"Amount": "12.30", "Currency": "GBP"}`.
    pub fn from_obie(value: &Value) -> Option<Self> {
        let text = value["Amount"].as_str()?;
        let currency = value["Currency"].as_str()?.to_owned();
        let (units, fraction) = text.split_once('.').unwrap_or((text, ""));
        if fraction.len() > 2 || units.is_empty() {
            return None;
        }
        let units: i64 = units.parse().ok()?;
        let fraction: i64 = format!("{fraction:0<2}").parse().ok()?;
        Some(Self {
            minor: units.checked_mul(100)?.checked_add(fraction)?,
            currency,
        })
    }
}

/// Formats minor units as a decimal, e.g. `-1234` as `-12.34`.
pub fn decimal(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        minor.unsigned_abs() / 100,
        minor.unsigned_abs() % 100
    )
}

/// One booked transaction, as the app sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booked {
    /// Positive for credits, negative for debits.
    pub amount: Amount,
    /// When it was booked.
    pub at: DateTime<Utc>,
}

/// An app's handle on one bank's unified API.
#[derive(Debug, Clone)]
pub struct TspClient {
    bank: NodeClient,
    app_key: KeyPair,
    app_version: String,
}

impl TspClient {
    /// Calls the bank node at `bank` as version `app_version` of the app whose key is `app_key`.
    pub fn new(bank: NodeClient, app_key: KeyPair, app_version: impl Into<String>) -> Self {
        Self {
            bank,
            app_key,
            app_version: app_version.into(),
        }
    }

    /// GETs `path` (under [`API_BASE`], query allowed) under `consent`, with a fresh proof.
    pub fn get(&self, path: &str, consent: &str) -> Result<Value, NodeApiError> {
        let full = format!("{API_BASE}{path}");
        let url = self.bank.url(&full);
        let proof = sign_pop(
            &self.app_key,
            PopRequest {
                method: "GET",
                url: url.split('?').next().unwrap_or(&url),
                access_token: consent,
            },
            Utc::now(),
        );
        let authorization = format!("ConsentNet {consent}");
        self.bank.get_with(
            &full,
            &[
                ("authorization", &authorization),
                ("dpop", &proof),
                ("x-consentnet-app-version", &self.app_version),
            ],
        )
    }

    /// The accounts the consent covers: `Data.Account`.
    pub fn accounts(&self, consent: &str) -> Result<Vec<Value>, TspError> {
        let path = "/aisp/accounts";
        let answer = self.get(path, consent)?;
        list(&answer, path, "Account")
    }

    /// The first balance of `account` (the bank's main balance for it).
    pub fn balance(&self, consent: &str, account: &str) -> Result<Amount, TspError> {
        let path = format!("/aisp/accounts/{account}/balances");
        let answer = self.get(&path, consent)?;
        let balances = list(&answer, &path, "Balance")?;
        let first = balances.first().ok_or_else(|| TspError::Unexpected {
            path: path.clone(),
            reason: "no balance".into(),
        })?;
        let mut amount =
            Amount::from_obie(&first["Amount"]).ok_or_else(|| TspError::Unexpected {
                path: path.clone(),
                reason: "the balance has no readable Amount".into(),
            })?;
        if first["CreditDebitIndicator"] == "Debit" {
            amount.minor = -amount.minor;
        }
        Ok(amount)
    }

    /// Every transaction of `account` booked since `from`, following the `Next` links.
    pub fn transactions(
        &self,
        consent: &str,
        account: &str,
        from: DateTime<Utc>,
    ) -> Result<Vec<Booked>, TspError> {
        let first = format!(
            "/aisp/accounts/{account}/transactions?fromBookingDateTime={}",
            from.format("%Y-%m-%dT%H:%M:%S")
        );
        let mut next = Some(first.clone());
        let mut booked = Vec::new();
        for _ in 0..MAX_PAGES {
            let Some(path) = next.take() else {
                return Ok(booked);
            };
            let answer = self.get(&path, consent)?;
            for item in list(&answer, &path, "Transaction")? {
                let unexpected = |reason: &str| TspError::Unexpected {
                    path: path.clone(),
                    reason: reason.into(),
                };
                let mut amount = Amount::from_obie(&item["Amount"])
                    .ok_or_else(|| unexpected("a transaction has no readable Amount"))?;
                if item["CreditDebitIndicator"] == "Debit" {
                    amount.minor = -amount.minor;
                }
                let at = item["BookingDateTime"]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .ok_or_else(|| unexpected("a transaction has no BookingDateTime"))?
                    .with_timezone(&Utc);
                booked.push(Booked { amount, at });
            }
            next = answer["Links"]["Next"]
                .as_str()
                .and_then(|link| link.split_once(API_BASE))
                .map(|(_, rest)| rest.to_owned());
        }
        Err(TspError::TooManyPages { path: first })
    }
}

/// `Data.<field>` of an OBIE answer as a list.
fn list(answer: &Value, path: &str, field: &str) -> Result<Vec<Value>, TspError> {
    answer["Data"][field]
        .as_array()
        .cloned()
        .ok_or_else(|| TspError::Unexpected {
            path: path.to_owned(),
            reason: format!("no Data.{field} list"),
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn amounts_parse_to_minor_units_and_back() {
        let parse =
            |text: &str| Amount::from_obie(&serde_json::json!({"Amount": text, "Currency": "GBP"}));
        assert_eq!(parse("12.3").unwrap().minor, 1230);
        assert_eq!(parse("12.34").unwrap().minor, 1234);
        assert_eq!(parse("7").unwrap().minor, 700);
        assert_eq!(parse("0.05").unwrap().minor, 5);
        assert!(
            parse("1.234").is_none(),
            "more than two decimals is refused"
        );
        assert!(parse("abc").is_none());
        assert!(parse(".5").is_none());
        assert_eq!(decimal(-1234), "-12.34");
        assert_eq!(decimal(5), "0.05");
    }
}
