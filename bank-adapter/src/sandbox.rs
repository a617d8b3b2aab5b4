//! The sandbox bank: the embedded default connector, seeded with synthetic customers, accounts in several currencies and transaction histories; payments move money and show up in transactions.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use crate::connector::{
    Account, Balance, BankConnector, Beneficiary, ConnectorError, CreditDebit, DirectDebit, Money,
    Page, Party, Payment, PaymentOrder, Product, ScheduledOrder, ScheduledPayment, StandingOrder,
    StandingOrderOrder, Statement, Transaction, TransactionQuery,
};

mod orders;
mod standing;

/// Largest page of transactions served.
pub use crate::connector::MAX_PAGE_SIZE;

/// A small deterministic generator, so a seed always gives the same bank.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Held {
    account: Account,
    /// Minor units; negative when overdrawn.
    balance: i64,
    /// Newest last.
    transactions: Vec<Transaction>,
}

#[derive(Default)]
struct Ledger {
    accounts: BTreeMap<String, Held>,
    payments: HashMap<String, Payment>,
    by_key: HashMap<String, String>,
    orders: orders::Orders,
    next: u64,
}

/// The sandbox bank.
pub struct SandboxBank {
    ledger: Mutex<Ledger>,
    /// When it was seeded: its histories end, and its schedules are set, here.
    opened: DateTime<Utc>,
}

impl std::fmt::Debug for SandboxBank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxBank").finish_non_exhaustive()
    }
}

const CUSTOMERS: [&str; 4] = ["Amelia Hart", "Oliver Grant", "Priya Shah", "Tomasz Nowak"];
const SPENDING: [(&str, i64, i64); 8] = [
    ("Tesco Stores", 800, 9_500),
    ("Transport for London", 180, 1_200),
    ("Pret A Manger", 350, 1_400),
    ("Amazon Marketplace", 999, 12_000),
    ("Octopus Energy", 4_500, 14_000),
    ("Spotify", 1_199, 1_199),
    ("Boots Pharmacy", 250, 3_800),
    ("Shell Petrol", 3_000, 8_500),
];

/// An opaque account reference: no account number can be read from it.
fn reference(seed: u64, customer: usize, slot: usize) -> String {
    let digest = Sha256::digest(format!("sandbox/{seed}/{customer}/{slot}"));
    format!(
        "acc-{}",
        digest[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

impl SandboxBank {
    /// A bank with the same customers, accounts and histories for the same `seed`,
    /// with histories ending at `now`.
    pub fn seeded(seed: u64, now: DateTime<Utc>) -> Self {
        // Spread the seed over every bit first: nearby seeds give unrelated ledgers.
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut ledger = Ledger::default();
        for (c, name) in CUSTOMERS.iter().enumerate() {
            let plans: [(&str, &str, &str); 3] = [
                ("GBP", "CurrentAccount", "UK.OBIE.SortCodeAccountNumber"),
                ("GBP", "Savings", "UK.OBIE.SortCodeAccountNumber"),
                (["EUR", "USD"][c % 2], "CurrentAccount", "UK.OBIE.IBAN"),
            ];
            for (slot, (currency, sub_type, scheme)) in plans.iter().enumerate() {
                let account_id = reference(seed, c, slot);
                let identification = match *scheme {
                    "UK.OBIE.IBAN" => {
                        format!("GB{:02}CNET{:014}", 10 + c, rng.below(10u64.pow(14)))
                    }
                    _ => format!("40{:04}{:08}", rng.below(10_000), rng.below(100_000_000)),
                };
                let opening = 100_000 + rng.below(900_000) as i64;
                let mut held = Held {
                    account: Account {
                        account_id: account_id.clone(),
                        currency: (*currency).to_owned(),
                        account_type: "Personal".into(),
                        account_sub_type: (*sub_type).to_owned(),
                        nickname: Some(format!("{} {}", currency, sub_type)),
                        scheme_name: (*scheme).to_owned(),
                        identification,
                        name: (*name).to_owned(),
                    },
                    balance: opening,
                    transactions: Vec::new(),
                };
                let count = if *sub_type == "Savings" { 6 } else { 40 };
                let mut events: Vec<(DateTime<Utc>, i64, CreditDebit, String)> = (0..count)
                    .map(|i| {
                        let at = now - Duration::minutes(rng.below(90 * 24 * 60) as i64 + 1);
                        if *sub_type == "Savings" || i % 13 == 0 {
                            let amount = 50_000 + rng.below(200_000) as i64;
                            (
                                at,
                                amount,
                                CreditDebit::Credit,
                                "Salary ACME LTD".to_owned(),
                            )
                        } else {
                            let (merchant, low, high) =
                                SPENDING[rng.below(SPENDING.len() as u64) as usize];
                            let amount = low + rng.below((high - low + 1) as u64) as i64;
                            (at, amount, CreditDebit::Debit, merchant.to_owned())
                        }
                    })
                    .collect();
                events.sort_by_key(|(at, ..)| *at);
                for (at, amount, direction, information) in events {
                    ledger.next += 1;
                    held.balance += match direction {
                        CreditDebit::Credit => amount,
                        CreditDebit::Debit => -amount,
                    };
                    held.transactions.push(Transaction {
                        transaction_id: format!("txn-{:08}", ledger.next),
                        account_id: account_id.clone(),
                        amount: Money {
                            minor: amount,
                            currency: (*currency).to_owned(),
                        },
                        credit_debit: direction,
                        status: "Booked".into(),
                        booking_date_time: at,
                        information,
                    });
                }
                ledger.accounts.insert(account_id, held);
            }
        }
        Self {
            ledger: Mutex::new(ledger),
            opened: now,
        }
    }

    /// Every account reference, with its holder's name: for demos and tests.
    pub fn account_ids(&self) -> Vec<(String, String)> {
        self.ledger()
            .accounts
            .values()
            .map(|h| (h.account.account_id.clone(), h.account.name.clone()))
            .collect()
    }

    /// The account with this reference, unfiltered.
    pub fn account(&self, id: &str) -> Option<Account> {
        self.ledger().accounts.get(id).map(|h| h.account.clone())
    }

    /// The account, or `NotFound`.
    fn known(&self, id: &str) -> Result<Account, ConnectorError> {
        self.account(id).ok_or_else(|| not_found(id))
    }

    /// The account's balance at `at`: now, less what moved after.
    fn balance_at(&self, id: &str, at: DateTime<Utc>) -> Option<i64> {
        let ledger = self.ledger();
        let held = ledger.accounts.get(id)?;
        let since: i64 = held
            .transactions
            .iter()
            .filter(|t| t.booking_date_time > at)
            .map(|t| match t.credit_debit {
                CreditDebit::Credit => t.amount.minor,
                CreditDebit::Debit => -t.amount.minor,
            })
            .sum();
        held.balance.checked_sub(since)
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // Every mutation completes before the guard drops; a panic cannot leave half a payment.
        consentnet_identity::util::lock(&self.ledger)
    }
}

fn not_found(what: &str) -> ConnectorError {
    ConnectorError::NotFound(what.to_owned())
}

impl BankConnector for SandboxBank {
    fn name(&self) -> &str {
        "sandbox"
    }

    fn accounts(&self, ids: &[String]) -> Result<Vec<Account>, ConnectorError> {
        let ledger = self.ledger();
        Ok(ids
            .iter()
            .filter_map(|id| ledger.accounts.get(id).map(|h| h.account.clone()))
            .collect())
    }

    fn balances(&self, account_id: &str) -> Result<Vec<Balance>, ConnectorError> {
        let ledger = self.ledger();
        let held = ledger
            .accounts
            .get(account_id)
            .ok_or_else(|| not_found(account_id))?;
        let now = Utc::now();
        let (credit_debit, minor) = if held.balance >= 0 {
            (CreditDebit::Credit, held.balance)
        } else {
            (CreditDebit::Debit, -held.balance)
        };
        Ok(["InterimAvailable", "InterimBooked"]
            .iter()
            .map(|kind| Balance {
                account_id: account_id.to_owned(),
                amount: Money {
                    minor,
                    currency: held.account.currency.clone(),
                },
                credit_debit,
                kind: (*kind).to_owned(),
                date_time: now,
            })
            .collect())
    }

    fn transactions(
        &self,
        account_id: &str,
        query: &TransactionQuery,
    ) -> Result<Page<Transaction>, ConnectorError> {
        let ledger = self.ledger();
        let held = ledger
            .accounts
            .get(account_id)
            .ok_or_else(|| not_found(account_id))?;
        Ok(query.page(held.transactions.iter().rev()))
    }

    fn create_payment(
        &self,
        idempotency_key: &str,
        order: &PaymentOrder,
    ) -> Result<Payment, ConnectorError> {
        let mut ledger = self.ledger();
        if let Some(existing) = ledger.by_key.get(idempotency_key) {
            let payment = ledger
                .payments
                .get(existing)
                .cloned()
                .ok_or_else(|| ConnectorError::Unavailable("payment index damaged".into()))?;
            return if &payment.order == order {
                Ok(payment)
            } else {
                Err(ConnectorError::IdempotencyConflict)
            };
        }
        orders::check(&ledger, order)?;
        let debtor = &ledger.accounts[&order.debtor_account];
        if debtor.balance < order.amount.minor {
            return Err(ConnectorError::Refused {
                code: "insufficient_funds".into(),
                message: "the account does not hold enough for this payment".into(),
            });
        }
        let now = Utc::now();
        ledger.next += 1;
        let number = ledger.next;
        let payment = Payment {
            payment_id: format!("pay-{number:08}"),
            order: order.clone(),
            status: "AcceptedSettlementCompleted".into(),
            created: now,
        };
        let creditor = ledger
            .accounts
            .values()
            .find(|h| {
                h.account.scheme_name == order.creditor_scheme
                    && h.account.identification == order.creditor_identification
                    && h.account.currency == order.amount.currency
            })
            .map(|h| h.account.account_id.clone());
        let post = |ledger: &mut Ledger, account: &str, direction: CreditDebit, info: String| {
            ledger.next += 1;
            let id = format!("txn-{:08}", ledger.next);
            if let Some(held) = ledger.accounts.get_mut(account) {
                held.balance += match direction {
                    CreditDebit::Credit => order.amount.minor,
                    CreditDebit::Debit => -order.amount.minor,
                };
                held.transactions.push(Transaction {
                    transaction_id: id,
                    account_id: account.to_owned(),
                    amount: order.amount.clone(),
                    credit_debit: direction,
                    status: "Booked".into(),
                    booking_date_time: now,
                    information: info,
                });
            }
        };
        post(
            &mut ledger,
            &order.debtor_account,
            CreditDebit::Debit,
            format!("{} {}", order.creditor_name, order.reference),
        );
        if let Some(creditor) = creditor {
            post(
                &mut ledger,
                &creditor,
                CreditDebit::Credit,
                format!("Payment {}", order.reference),
            );
        }
        ledger
            .by_key
            .insert(idempotency_key.to_owned(), payment.payment_id.clone());
        ledger
            .payments
            .insert(payment.payment_id.clone(), payment.clone());
        Ok(payment)
    }

    fn payment(&self, payment_id: &str) -> Result<Payment, ConnectorError> {
        self.ledger()
            .payments
            .get(payment_id)
            .cloned()
            .ok_or_else(|| not_found(payment_id))
    }

    fn create_scheduled_payment(
        &self,
        idempotency_key: &str,
        order: &ScheduledOrder,
    ) -> Result<ScheduledPayment, ConnectorError> {
        orders::schedule(&mut self.ledger(), idempotency_key, order)
    }

    fn scheduled_payment(&self, id: &str) -> Result<ScheduledPayment, ConnectorError> {
        self.ledger().orders.scheduled(id)
    }

    fn create_standing_order(
        &self,
        idempotency_key: &str,
        order: &StandingOrderOrder,
    ) -> Result<StandingOrder, ConnectorError> {
        orders::set_up(&mut self.ledger(), idempotency_key, order)
    }

    fn standing_order(&self, id: &str) -> Result<StandingOrder, ConnectorError> {
        self.ledger().orders.standing(id)
    }

    fn beneficiaries(&self, account_id: &str) -> Result<Vec<Beneficiary>, ConnectorError> {
        Ok(standing::beneficiaries(&self.known(account_id)?))
    }

    fn direct_debits(&self, account_id: &str) -> Result<Vec<DirectDebit>, ConnectorError> {
        let account = self.known(account_id)?;
        Ok(standing::direct_debits(&account, self.opened))
    }

    fn standing_orders(&self, account_id: &str) -> Result<Vec<StandingOrder>, ConnectorError> {
        let account = self.known(account_id)?;
        let mut list = standing::standing_orders(&account, self.opened);
        list.extend(self.ledger().orders.standing_from(account_id));
        Ok(list)
    }

    fn scheduled_payments(
        &self,
        account_id: &str,
    ) -> Result<Vec<ScheduledPayment>, ConnectorError> {
        let account = self.known(account_id)?;
        let mut list = standing::scheduled_payments(&account, self.opened);
        list.extend(self.ledger().orders.scheduled_from(account_id));
        Ok(list)
    }

    fn statements(&self, account_id: &str) -> Result<Vec<Statement>, ConnectorError> {
        let account = self.known(account_id)?;
        let mut statements = standing::statement_periods(&account, self.opened);
        for statement in &mut statements {
            statement.closing_balance = self
                .balance_at(account_id, statement.end)
                .map(|balance| standing::closing(&account.currency, balance));
        }
        Ok(statements)
    }

    fn parties(&self, account_id: &str) -> Result<Vec<Party>, ConnectorError> {
        Ok(standing::parties(&self.known(account_id)?))
    }

    fn product(&self, account_id: &str) -> Result<Product, ConnectorError> {
        Ok(standing::product(&self.known(account_id)?))
    }
}
