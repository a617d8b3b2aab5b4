//! What a consent grants: its terms (bank, app, accounts, permissions, purpose, validity window), payment limits and where a consent stands in its window; checked before anything is signed or stored.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::consent::{ConsentError, MAX_ACCOUNTS, MAX_PURPOSE_CHARS, timestamp};
use crate::keys::Did;
use crate::permissions::{Permission, check_permission_set};

/// How often a per-period payment limit resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Period {
    /// Each calendar day.
    Day,
    /// Each calendar week.
    Week,
    /// Each calendar month.
    Month,
    /// Each calendar year.
    Year,
}

/// Limits on the payments a consent allows. Amounts are decimal strings, as in OBIE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentLimits {
    /// ISO 4217 currency code, e.g. `GBP`.
    pub currency: String,
    /// The most one payment may move.
    pub max_per_payment: String,
    /// The most all payments in one period may move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_period: Option<String>,
    /// The period `max_per_period` applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
}

impl PaymentLimits {
    fn check(&self) -> Result<(), ConsentError> {
        let bad = |why: String| Err(ConsentError::PaymentLimits(why));
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return bad(format!(
                "currency {:?} is not an ISO 4217 code",
                self.currency
            ));
        }
        if !is_amount(&self.max_per_payment) {
            return bad(format!(
                "maxPerPayment {:?} is not a positive amount like \"250.00\"",
                self.max_per_payment
            ));
        }
        match (&self.max_per_period, self.period) {
            (Some(amount), Some(_)) if is_amount(amount) => Ok(()),
            (Some(amount), Some(_)) => {
                bad(format!("maxPerPeriod {amount:?} is not a positive amount"))
            }
            (None, None) => Ok(()),
            _ => bad("maxPerPeriod and period go together".into()),
        }
    }
}

/// True for a positive decimal amount with at most 5 fraction digits (OBIE's `OBActiveCurrencyAndAmount_SimpleType`).
fn is_amount(text: &str) -> bool {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    !whole.is_empty()
        && whole.len() <= 13
        && digits(whole)
        && fraction.len() <= 5
        && digits(fraction)
        && (!text.contains('.') || !fraction.is_empty())
        && text.bytes().any(|b| (b'1'..=b'9').contains(&b))
}

/// An account reference must be opaque: 1 to 128 of `A-Z a-z 0-9 . _ : -`, not all
/// digits (that is an account number or PAN), and not IBAN-shaped.
pub(crate) fn check_account_reference(reference: &str) -> Result<(), ConsentError> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"._:-".contains(&b);
    let all_digits = reference.bytes().all(|b| b.is_ascii_digit() || b == b'-');
    let iban_like = reference.len() >= 15
        && reference.len() <= 34
        && reference.as_bytes()[..2].iter().all(u8::is_ascii_uppercase)
        && reference.as_bytes()[2..4].iter().all(u8::is_ascii_digit)
        && reference
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if reference.is_empty()
        || reference.len() > 128
        || !reference.bytes().all(allowed)
        || all_digits
        || iban_like
    {
        return Err(ConsentError::AccountReference(reference.to_owned()));
    }
    Ok(())
}

/// What a consent grants: everything but the issuer and the proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentTerms {
    /// The TSP app the consent is for (`credentialSubject.id`).
    pub app: Did,
    /// The bank that holds the accounts.
    pub bank: Did,
    /// Opaque, bank-issued account references.
    pub accounts: Vec<String>,
    /// The granted permission codes.
    pub permissions: BTreeSet<Permission>,
    /// Payment limits; present exactly when a payment permission is granted.
    pub payment_limits: Option<PaymentLimits>,
    /// Why the app asks, in words the client saw.
    pub purpose: String,
    /// The consent is usable from this instant...
    pub valid_from: DateTime<Utc>,
    /// ...until just before this one.
    pub valid_until: DateTime<Utc>,
    /// The key that signs the app's calls when it is not the app's own
    /// (`credentialSubject.proofKey`): the per-installation key a bank's portal makes
    /// in the client's browser for a mini-app. Absent, the app's DID key signs them.
    pub proof_key: Option<Did>,
    /// Where anyone reads whether the consent was revoked (`credentialStatus`, a W3C
    /// Bitstring Status List entry of the bank's list).
    pub status: Option<crate::status::StatusEntry>,
}

impl ConsentTerms {
    /// The DID whose key must sign every call made under the consent.
    pub fn pop_key(&self) -> &Did {
        self.proof_key.as_ref().unwrap_or(&self.app)
    }

    /// Checks the terms by the same rules a verifier applies.
    pub fn check(&self) -> Result<(), ConsentError> {
        check_permission_set(&self.permissions)?;
        if let Some(status) = &self.status {
            status.check()?;
        }
        if self.accounts.is_empty() || self.accounts.len() > MAX_ACCOUNTS {
            return Err(ConsentError::Malformed(format!(
                "a consent names 1 to {MAX_ACCOUNTS} accounts, not {}",
                self.accounts.len()
            )));
        }
        for account in &self.accounts {
            check_account_reference(account)?;
        }
        let mut seen = BTreeSet::new();
        if let Some(repeat) = self.accounts.iter().find(|a| !seen.insert(*a)) {
            return Err(ConsentError::Malformed(format!(
                "account {repeat:?} is listed twice"
            )));
        }
        let pays = self.permissions.iter().any(|p| p.is_payment());
        match (&self.payment_limits, pays) {
            (Some(limits), true) => limits.check()?,
            (None, false) => {}
            (None, true) => {
                return Err(ConsentError::PaymentLimits(
                    "a payment permission needs payment limits".into(),
                ));
            }
            (Some(_), false) => {
                return Err(ConsentError::PaymentLimits(
                    "payment limits without a payment permission".into(),
                ));
            }
        }
        if self.purpose.trim().is_empty() || self.purpose.chars().count() > MAX_PURPOSE_CHARS {
            return Err(ConsentError::Malformed(format!(
                "purpose must be 1 to {MAX_PURPOSE_CHARS} characters"
            )));
        }
        if self.valid_until <= self.valid_from {
            return Err(ConsentError::ValidityWindow {
                from: timestamp(self.valid_from),
                until: timestamp(self.valid_until),
            });
        }
        Ok(())
    }
}

/// Where a consent stands in its validity window at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Validity {
    /// Before `validFrom`.
    NotYetValid,
    /// Inside the window.
    Active,
    /// At or after `validUntil`.
    Expired,
}
