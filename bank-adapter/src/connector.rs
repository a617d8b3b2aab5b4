//! The `BankConnector` trait every bank core sits behind, the unified records it returns (accounts, balances, transactions, payments), and its errors.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod future;
mod resources;

pub use future::{ScheduledOrder, StandingOrderOrder};
pub use resources::*;

/// An amount in minor units (pence, cents) with its ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// Minor units; never negative (direction is [`CreditDebit`]).
    pub minor: i64,
    /// ISO 4217 code, e.g. `GBP`.
    pub currency: String,
}

impl Money {
    /// The OBIE decimal form, e.g. `12.30`.
    pub fn decimal(&self) -> String {
        format!("{}.{:02}", self.minor / 100, self.minor % 100)
    }

    /// Parses an OBIE decimal amount (`^\d{1,13}(\.\d{1,5})?$`, at most two decimals
    /// kept as minor units).
    pub fn parse(amount: &str, currency: &str) -> Option<Self> {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let (whole, fraction) = match amount.split_once('.') {
            Some((whole, fraction)) if digits(fraction) => (whole, fraction),
            Some(_) => return None,
            None => (amount, ""),
        };
        if !digits(whole) || whole.len() > 13 || fraction.len() > 2 {
            return None;
        }
        let cents = match fraction.len() {
            0 => 0,
            1 => fraction.parse::<i64>().ok()? * 10,
            _ => fraction.parse::<i64>().ok()?,
        };
        let valid_currency =
            currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase());
        valid_currency.then_some(())?;
        Some(Self {
            minor: whole
                .parse::<i64>()
                .ok()?
                .checked_mul(100)?
                .checked_add(cents)?,
            currency: currency.to_owned(),
        })
    }
}

/// Money in or out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CreditDebit {
    /// Money in.
    Credit,
    /// Money out.
    Debit,
}

/// An account as the unified API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The bank-issued opaque reference used in consents and paths.
    pub account_id: String,
    /// ISO 4217 currency.
    pub currency: String,
    /// `Personal` or `Business`.
    pub account_type: String,
    /// `CurrentAccount`, `Savings`, ...
    pub account_sub_type: String,
    /// The holder's nickname for it.
    pub nickname: Option<String>,
    /// Scheme of `identification`, e.g. `UK.OBIE.SortCodeAccountNumber` or `UK.OBIE.IBAN`.
    pub scheme_name: String,
    /// The account number in that scheme (shown only with a Detail permission).
    pub identification: String,
    /// The name on the account.
    pub name: String,
}

/// A balance of one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// The account.
    pub account_id: String,
    /// How much.
    pub amount: Money,
    /// In credit or overdrawn.
    pub credit_debit: CreditDebit,
    /// OBIE balance type, e.g. `InterimAvailable`, `InterimBooked`.
    pub kind: String,
    /// When it was taken.
    pub date_time: DateTime<Utc>,
}

/// One transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// Unique within the bank.
    pub transaction_id: String,
    /// The account.
    pub account_id: String,
    /// How much.
    pub amount: Money,
    /// In or out.
    pub credit_debit: CreditDebit,
    /// `Booked` or `Pending`.
    pub status: String,
    /// When it was booked.
    pub booking_date_time: DateTime<Utc>,
    /// What it was, for the holder.
    pub information: String,
}

/// A page request for transactions, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransactionQuery {
    /// Booked at or after.
    pub from: Option<DateTime<Utc>>,
    /// Booked at or before.
    pub to: Option<DateTime<Utc>>,
    /// The page, from 1.
    pub page: u32,
    /// Items per page.
    pub page_size: u32,
}

/// Largest page of transactions a connector serves.
pub const MAX_PAGE_SIZE: u32 = 1_000;

impl TransactionQuery {
    /// True when `transaction` was booked inside the query's range.
    pub fn matches(&self, transaction: &Transaction) -> bool {
        self.from
            .is_none_or(|from| transaction.booking_date_time >= from)
            && self.to.is_none_or(|to| transaction.booking_date_time <= to)
    }

    /// The query's page of `transactions` (newest first, as given) that match it, the
    /// page size held to [`MAX_PAGE_SIZE`]: the filtering and paging every connector
    /// shares.
    pub fn page<'a>(
        &self,
        transactions: impl Iterator<Item = &'a Transaction>,
    ) -> Page<Transaction> {
        let size = self.page_size.clamp(1, MAX_PAGE_SIZE) as usize;
        let skip = (self.page.max(1) as usize - 1).saturating_mul(size);
        let mut matching = transactions.filter(|t| self.matches(t));
        let items: Vec<Transaction> = matching.by_ref().skip(skip).take(size).cloned().collect();
        let more = matching.next().is_some();
        Page { items, more }
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// True when a later page exists.
    pub more: bool,
}

/// A domestic payment order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentOrder {
    /// The paying account (a reference in the consent).
    pub debtor_account: String,
    /// Creditor account scheme, e.g. `UK.OBIE.SortCodeAccountNumber`.
    pub creditor_scheme: String,
    /// Creditor account number in that scheme.
    pub creditor_identification: String,
    /// Creditor name.
    pub creditor_name: String,
    /// How much.
    pub amount: Money,
    /// Reference shown to the creditor.
    pub reference: String,
}

/// A payment made by the bank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// The bank's id for it.
    pub payment_id: String,
    /// What was asked.
    pub order: PaymentOrder,
    /// OBIE status, e.g. `AcceptedSettlementCompleted`.
    pub status: String,
    /// When it was made.
    pub created: DateTime<Utc>,
}

/// Why a connector could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// No such account or payment.
    #[error("not found: {0}")]
    NotFound(String),
    /// The bank refused the request (e.g. insufficient funds); `code` is machine-readable.
    #[error("refused by the bank ({code}): {message}")]
    Refused {
        /// e.g. `insufficient_funds`.
        code: String,
        /// For people.
        message: String,
    },
    /// The same idempotency key was used for a different order.
    #[error("idempotency key reused for a different payment")]
    IdempotencyConflict,
    /// The bank core does not offer this resource.
    #[error("this bank does not offer {}", .0.name())]
    NotOffered(Resource),
    /// The bank core did not answer in time.
    #[error("the bank core timed out")]
    Timeout,
    /// The bank core is unreachable or answered something unusable.
    #[error("the bank core failed: {0}")]
    Unavailable(String),
    /// The bank core answered with an error status the mapping does not read as one of
    /// the outcomes above: its own status and error code (`none` when it gave none).
    #[error("the bank core refused the request ({status} {code})")]
    CoreRefused {
        /// The core's HTTP status.
        status: u16,
        /// The core's own error code, as its answer names it.
        code: String,
    },
}

/// How many calls a connector's bank core refused, by operation, status and code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreRefusalCount {
    /// The connector operation, e.g. `balances`.
    pub operation: String,
    /// The core's HTTP status.
    pub status: u16,
    /// The core's own error code (`other` once too many distinct codes were seen).
    pub code: String,
    /// How many.
    pub count: u64,
}

/// What a connector may pass on to the bank core about the call it serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallContext {
    /// The client's IP address, when the client is present (`x-fapi-customer-ip-address`).
    pub psu_ip: Option<std::net::IpAddr>,
    /// The call's `x-fapi-interaction-id`.
    pub interaction_id: Option<String>,
}

std::thread_local! {
    static CONTEXT: std::cell::RefCell<CallContext> = std::cell::RefCell::default();
}

/// Runs `f` (a connector call, on this thread) with `context` visible to the connector.
pub fn with_context<T>(context: CallContext, f: impl FnOnce() -> T) -> T {
    let previous = CONTEXT.with(|c| c.replace(context));
    let result = f();
    CONTEXT.with(|c| c.replace(previous));
    result
}

/// The context of the call this thread is serving (empty outside [`with_context`]).
pub fn context() -> CallContext {
    CONTEXT.with(|c| c.borrow().clone())
}

/// A bank's core, seen through the unified model. Implementations are blocking and
/// thread-safe; the adapter calls them off its async workers.
pub trait BankConnector: Send + Sync {
    /// A short name for logs, e.g. `sandbox`.
    fn name(&self) -> &str;

    /// The accounts among `ids` that exist, in the order given.
    fn accounts(&self, ids: &[String]) -> Result<Vec<Account>, ConnectorError>;

    /// The balances of one account.
    fn balances(&self, account_id: &str) -> Result<Vec<Balance>, ConnectorError>;

    /// One page of an account's transactions, newest first.
    fn transactions(
        &self,
        account_id: &str,
        query: &TransactionQuery,
    ) -> Result<Page<Transaction>, ConnectorError>;

    /// Makes a payment once per `idempotency_key`: a repeat with the same key and order
    /// returns the first payment; with another order, [`ConnectorError::IdempotencyConflict`].
    fn create_payment(
        &self,
        idempotency_key: &str,
        order: &PaymentOrder,
    ) -> Result<Payment, ConnectorError>;

    /// A payment made earlier.
    fn payment(&self, payment_id: &str) -> Result<Payment, ConnectorError>;

    /// Schedules a payment once per `idempotency_key` (a repeat with the same order
    /// answers the first; another order is [`ConnectorError::IdempotencyConflict`]).
    fn create_scheduled_payment(
        &self,
        _idempotency_key: &str,
        _order: &ScheduledOrder,
    ) -> Result<ScheduledPayment, ConnectorError> {
        Err(ConnectorError::NotOffered(Resource::NewScheduledPayments))
    }

    /// A payment scheduled earlier.
    fn scheduled_payment(&self, _id: &str) -> Result<ScheduledPayment, ConnectorError> {
        Err(ConnectorError::NotOffered(Resource::NewScheduledPayments))
    }

    /// Sets up a standing order once per `idempotency_key`, as for scheduled payments.
    fn create_standing_order(
        &self,
        _idempotency_key: &str,
        _order: &StandingOrderOrder,
    ) -> Result<StandingOrder, ConnectorError> {
        Err(ConnectorError::NotOffered(Resource::NewStandingOrders))
    }

    /// A standing order set up earlier.
    fn standing_order(&self, _id: &str) -> Result<StandingOrder, ConnectorError> {
        Err(ConnectorError::NotOffered(Resource::NewStandingOrders))
    }

    /// The account's saved payees.
    fn beneficiaries(&self, _account_id: &str) -> Result<Vec<Beneficiary>, ConnectorError> {
        Err(ConnectorError::NotOffered(Resource::Beneficiaries))
    }

    /// The account's direct debit mandates.
    fn direct_debits(&self, _account_id: &str) -> Result<Vec<DirectDebit>, ConnectorError> {
        Err(ConnectorError::NotOffered(Resource::DirectDebits))
    }

    /// The account's standing orders.
    fn standing_orders(&self, _account_id: &str) -> Result<Vec<StandingOrder>, ConnectorError> {
        Err(ConnectorError::NotOffered(Resource::StandingOrders))
    }

    /// The account's scheduled one-off payments.
    fn scheduled_payments(
        &self,
        _account_id: &str,
    ) -> Result<Vec<ScheduledPayment>, ConnectorError> {
        Err(ConnectorError::NotOffered(Resource::ScheduledPayments))
    }

    /// The account's statements, newest first.
    fn statements(&self, _account_id: &str) -> Result<Vec<Statement>, ConnectorError> {
        Err(ConnectorError::NotOffered(Resource::Statements))
    }

    /// The account's parties.
    fn parties(&self, _account_id: &str) -> Result<Vec<Party>, ConnectorError> {
        Err(ConnectorError::NotOffered(Resource::Parties))
    }

    /// The account's product.
    fn product(&self, _account_id: &str) -> Result<Product, ConnectorError> {
        Err(ConnectorError::NotOffered(Resource::Product))
    }

    /// The calls the bank core refused so far, for the bank's metrics.
    fn core_refusals(&self) -> Vec<CoreRefusalCount> {
        Vec::new()
    }
}

/// The shared test suite every connector runs: what the unified API relies on.
pub mod conformance;
