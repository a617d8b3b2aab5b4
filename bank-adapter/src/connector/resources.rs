//! The unified records of an account's standing arrangements and documents: beneficiaries, direct debits, standing orders, scheduled payments, statements, parties and the product, as every connector returns them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{CreditDebit, Money};

/// The other side of a beneficiary, standing order or scheduled payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counterparty {
    /// Account scheme, e.g. `UK.OBIE.SortCodeAccountNumber`.
    pub scheme_name: String,
    /// The account number in that scheme (shown only with a Detail permission).
    pub identification: String,
    /// The name on the account.
    pub name: String,
}

/// A payee the holder saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beneficiary {
    /// The bank's id for it.
    pub beneficiary_id: String,
    /// The account it belongs to.
    pub account_id: String,
    /// The reference the holder pays it with.
    pub reference: String,
    /// Whom it pays.
    pub creditor: Counterparty,
}

/// A direct debit mandate on the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectDebit {
    /// The bank's id for it.
    pub direct_debit_id: String,
    /// The account it debits.
    pub account_id: String,
    /// The creditor's reference for the mandate.
    pub mandate_id: String,
    /// The creditor's name.
    pub name: String,
    /// Still collecting.
    pub active: bool,
    /// The last collection, if any.
    pub previous_payment: Option<(Money, DateTime<Utc>)>,
}

/// A standing order from the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandingOrder {
    /// The bank's id for it.
    pub standing_order_id: String,
    /// The account it pays from.
    pub account_id: String,
    /// OBIE frequency code, e.g. `MNTH`, `WEEK`.
    pub frequency: String,
    /// Reference shown to the creditor.
    pub reference: String,
    /// When the first payment was made.
    pub first_payment: DateTime<Utc>,
    /// When the next one is due, while active.
    pub next_payment: Option<DateTime<Utc>>,
    /// Each payment.
    pub amount: Money,
    /// Still paying.
    pub active: bool,
    /// Whom it pays.
    pub creditor: Counterparty,
}

/// A one-off payment the holder scheduled for later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledPayment {
    /// The bank's id for it.
    pub scheduled_payment_id: String,
    /// The account it pays from.
    pub account_id: String,
    /// When it will be executed.
    pub execution: DateTime<Utc>,
    /// How much.
    pub amount: Money,
    /// Reference shown to the creditor.
    pub reference: String,
    /// Whom it pays.
    pub creditor: Counterparty,
}

/// A statement of the account for a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// The bank's id for it.
    pub statement_id: String,
    /// The account.
    pub account_id: String,
    /// The period's start.
    pub start: DateTime<Utc>,
    /// The period's end.
    pub end: DateTime<Utc>,
    /// When the statement was made.
    pub created: DateTime<Utc>,
    /// The balance at the end of the period (shown only with a Detail permission).
    pub closing_balance: Option<(Money, CreditDebit)>,
}

/// A party to an account: a holder, or someone acting for one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    /// The bank's id for the party.
    pub party_id: String,
    /// `Sole`, `Joint` or `Delegate`.
    pub party_type: String,
    /// The party's name.
    pub name: String,
    /// OBIE account role, e.g. `UK.OBIE.Principal`.
    pub account_role: String,
}

/// The product an account is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// The account.
    pub account_id: String,
    /// The bank's id for the product.
    pub product_id: String,
    /// Its marketing name.
    pub name: String,
    /// OBIE product type, e.g. `PersonalCurrentAccount`; any other name is shown as
    /// `Other` with this name.
    pub product_type: String,
}

/// The account information resources a core may offer beyond accounts, balances and
/// transactions, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// Beneficiaries.
    Beneficiaries,
    /// Direct debits.
    DirectDebits,
    /// Standing orders.
    StandingOrders,
    /// Scheduled payments.
    ScheduledPayments,
    /// Statements.
    Statements,
    /// Parties.
    Parties,
    /// The product.
    Product,
    /// Offers.
    Offers,
    /// Scheduling new one-off payments.
    NewScheduledPayments,
    /// Setting up new standing orders.
    NewStandingOrders,
}

impl Resource {
    /// The name in errors and mapping files, e.g. `direct_debits`.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Beneficiaries => "beneficiaries",
            Resource::DirectDebits => "direct_debits",
            Resource::StandingOrders => "standing_orders",
            Resource::ScheduledPayments => "scheduled_payments",
            Resource::Statements => "statements",
            Resource::Parties => "parties",
            Resource::Product => "product",
            Resource::Offers => "offers",
            Resource::NewScheduledPayments => "create_scheduled_payment",
            Resource::NewStandingOrders => "create_standing_order",
        }
    }
}
