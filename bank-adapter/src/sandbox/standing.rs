//! The sandbox bank's standing arrangements and documents, derived from each account and the bank's seeding time alone: the holder as party, the product, and for GBP current accounts the commitments an affordability check must see (rent and savings standing orders, bills by direct debit, saved payees, a scheduled payment), plus monthly statements.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use crate::connector::{
    Account, Beneficiary, Counterparty, CreditDebit, DirectDebit, Money, Party, Product,
    ScheduledPayment, StandingOrder, Statement,
};

/// Direct debits of a GBP current account: creditor, reference, monthly pence.
const BILLS: [(&str, &str, i64); 3] = [
    ("Council Tax", "CTAX", 15_800),
    ("Octopus Energy", "OCTO", 9_500),
    ("Vodafone", "VODA", 2_400),
];

/// Statements kept: one per 30 days of history.
pub const STATEMENTS: i64 = 3;

/// A stable id for `what` of `account`.
fn id(prefix: &str, account: &Account, what: &str) -> String {
    let digest = Sha256::digest(format!("{}/{what}", account.account_id));
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}-{hex}")
}

fn gbp(minor: i64) -> Money {
    Money {
        minor,
        currency: "GBP".into(),
    }
}

fn payee(name: &str, account: &Account, what: &str) -> Counterparty {
    let digest = Sha256::digest(format!("{}/payee/{what}", account.account_id));
    let digits: String = digest[..7]
        .iter()
        .map(|b| format!("{:02}", b % 100))
        .collect();
    Counterparty {
        scheme_name: "UK.OBIE.SortCodeAccountNumber".into(),
        identification: digits[..14].to_owned(),
        name: name.to_owned(),
    }
}

/// True for the accounts that carry commitments: GBP current accounts.
fn pays_bills(account: &Account) -> bool {
    account.currency == "GBP" && account.account_sub_type == "CurrentAccount"
}

/// The first of the month on or after `at`, at 09:00.
fn next_first(at: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::Datelike as _;
    let (year, month) = match at.month() {
        12 => (at.year() + 1, 1),
        m => (at.year(), m + 1),
    };
    chrono::NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|d| d.and_hms_opt(9, 0, 0))
        .map_or(at, |t| t.and_utc())
}

/// The standing orders: rent to a landlord and a monthly transfer to savings.
pub fn standing_orders(account: &Account, opened: DateTime<Utc>) -> Vec<StandingOrder> {
    if !pays_bills(account) {
        return Vec::new();
    }
    [
        ("Harbour Lettings", "RENT FLAT 2", 95_000),
        ("Own Savings", "SAVE", 20_000),
    ]
    .iter()
    .map(|(name, reference, pence)| StandingOrder {
        standing_order_id: id("so", account, reference),
        account_id: account.account_id.clone(),
        frequency: "MNTH".into(),
        reference: (*reference).into(),
        first_payment: opened - Duration::days(400),
        next_payment: Some(next_first(opened)),
        amount: gbp(*pence),
        active: true,
        creditor: payee(name, account, reference),
    })
    .collect()
}

/// The direct debits, each last collected on the 1st before `opened`.
pub fn direct_debits(account: &Account, opened: DateTime<Utc>) -> Vec<DirectDebit> {
    if !pays_bills(account) {
        return Vec::new();
    }
    let last = next_first(opened) - Duration::days(31);
    BILLS
        .iter()
        .map(|(name, mandate, pence)| DirectDebit {
            direct_debit_id: id("dd", account, mandate),
            account_id: account.account_id.clone(),
            mandate_id: format!("{mandate}-{}", &account.account_id[4..10]),
            name: (*name).into(),
            active: true,
            previous_payment: Some((gbp(*pence), last)),
        })
        .collect()
}

/// The saved payees: the standing orders' creditors and a friend.
pub fn beneficiaries(account: &Account) -> Vec<Beneficiary> {
    if !pays_bills(account) {
        return Vec::new();
    }
    [
        ("Harbour Lettings", "RENT FLAT 2"),
        ("Sam Carter", "DINNER"),
    ]
    .iter()
    .map(|(name, reference)| Beneficiary {
        beneficiary_id: id("ben", account, name),
        account_id: account.account_id.clone(),
        reference: (*reference).into(),
        creditor: payee(name, account, reference),
    })
    .collect()
}

/// One scheduled payment, a week after `opened`.
pub fn scheduled_payments(account: &Account, opened: DateTime<Utc>) -> Vec<ScheduledPayment> {
    if !pays_bills(account) {
        return Vec::new();
    }
    vec![ScheduledPayment {
        scheduled_payment_id: id("sp", account, "car"),
        account_id: account.account_id.clone(),
        execution: opened + Duration::days(7),
        amount: gbp(45_000),
        reference: "CAR SERVICE".into(),
        creditor: payee("Northside Garage", account, "car"),
    }]
}

/// The statement periods: 30 days each, newest first, the last ending at `opened`.
pub fn statement_periods(account: &Account, opened: DateTime<Utc>) -> Vec<Statement> {
    (0..STATEMENTS)
        .map(|k| {
            let end = opened - Duration::days(30 * k);
            let start = end - Duration::days(30);
            Statement {
                statement_id: id("st", account, &k.to_string()),
                account_id: account.account_id.clone(),
                start,
                end,
                created: end,
                closing_balance: None,
            }
        })
        .collect()
}

/// The closing balance of a statement, from the balance now and the money since.
pub fn closing(currency: &str, balance: i64) -> (Money, CreditDebit) {
    let direction = if balance < 0 {
        CreditDebit::Debit
    } else {
        CreditDebit::Credit
    };
    let money = Money {
        minor: balance.checked_abs().unwrap_or(i64::MAX),
        currency: currency.to_owned(),
    };
    (money, direction)
}

/// The holder, the one party of a sandbox account.
pub fn parties(account: &Account) -> Vec<Party> {
    let digest = Sha256::digest(format!("party/{}", account.name));
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    vec![Party {
        party_id: format!("pty-{hex}"),
        party_type: "Sole".into(),
        name: account.name.clone(),
        account_role: "UK.OBIE.Principal".into(),
    }]
}

/// The account's product.
pub fn product(account: &Account) -> Product {
    let (product_id, name, product_type) = match account.account_sub_type.as_str() {
        "Savings" => ("EASY-SAVER", "Easy Saver", "Savings"),
        _ if account.currency == "GBP" => (
            "CLASSIC-CA",
            "Classic Current Account",
            "PersonalCurrentAccount",
        ),
        _ => ("WORLD-CA", "World Currency Account", "CurrencyAccount"),
    };
    Product {
        account_id: account.account_id.clone(),
        product_id: product_id.into(),
        name: name.into(),
        product_type: product_type.into(),
    }
}
