//! What the identity crate's test files share: a consent's terms for a fresh app at a fresh bank.

use chrono::{DateTime, Duration, Utc};
use consentnet_identity::{ConsentTerms, KeyPair, Permission};

/// Terms to read one account's basic details for budgeting, valid from a minute before
/// `now` for 30 days, for a fresh app at a fresh bank.
pub fn budgeting_terms(now: DateTime<Utc>) -> ConsentTerms {
    ConsentTerms {
        app: KeyPair::generate().did().clone(),
        bank: KeyPair::generate().did().clone(),
        accounts: vec!["acc-1".into()],
        permissions: [Permission::ReadAccountsBasic].into(),
        payment_limits: None,
        purpose: "Budgeting".into(),
        valid_from: now - Duration::minutes(1),
        valid_until: now + Duration::days(30),
        proof_key: None,
        status: None,
    }
}
