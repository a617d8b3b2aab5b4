//! The conformance suite every connector passes: known and unknown accounts, transactions newest first, filtered and paged, payments made once per key and refused beyond the funds, future-dated orders, and the optional resources either offered consistently or refused as not offered.

use super::*;

mod future;
pub use future::run_future;

/// What the suite needs to know about the bank behind the connector.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// An account with funds and transactions.
    pub account: String,
    /// Another account at the same bank, in the same currency, to pay into.
    pub payee_scheme: String,
    /// Its identification.
    pub payee_identification: String,
    /// The first account's currency.
    pub currency: String,
}

impl Fixture {
    /// For a bank holding `bank`'s ledger: its first GBP current account, paying into
    /// another of its GBP accounts.
    pub fn from_sandbox(bank: &crate::sandbox::SandboxBank) -> Self {
        let gbp: Vec<Account> = bank
            .account_ids()
            .into_iter()
            .filter_map(|(id, _)| bank.account(&id))
            .filter(|a| a.currency == "GBP")
            .collect();
        let payer = gbp
            .iter()
            .find(|a| a.account_sub_type == "CurrentAccount")
            .expect("the sandbox has a GBP current account");
        let payee = gbp
            .iter()
            .find(|a| a.account_id != payer.account_id)
            .expect("the sandbox has a second GBP account");
        Self {
            account: payer.account_id.clone(),
            payee_scheme: payee.scheme_name.clone(),
            payee_identification: payee.identification.clone(),
            currency: "GBP".into(),
        }
    }
}

fn order(fixture: &Fixture, minor: i64, reference: &str) -> PaymentOrder {
    PaymentOrder {
        debtor_account: fixture.account.clone(),
        creditor_scheme: fixture.payee_scheme.clone(),
        creditor_identification: fixture.payee_identification.clone(),
        creditor_name: "Conformance Payee".into(),
        amount: Money {
            minor,
            currency: fixture.currency.clone(),
        },
        reference: reference.into(),
    }
}

fn available(connector: &dyn BankConnector, account: &str) -> i64 {
    let balances = connector.balances(account).expect("balances");
    let balance = balances
        .iter()
        .find(|b| b.kind == "InterimAvailable")
        .expect("an InterimAvailable balance");
    match balance.credit_debit {
        CreditDebit::Credit => balance.amount.minor,
        CreditDebit::Debit => -balance.amount.minor,
    }
}

/// Runs every check; panics with a message naming the first failure.
pub fn run(connector: &dyn BankConnector, fixture: &Fixture) {
    run_reads(connector, fixture);
    run_resources(connector, fixture);
    run_payments(connector, fixture);
    run_future(connector, fixture);
}

/// The account information checks, for connectors mapped for reading only.
pub fn run_reads(connector: &dyn BankConnector, fixture: &Fixture) {
    // Accounts: known ones come back, unknown ones are left out.
    let accounts = connector
        .accounts(&[fixture.account.clone(), "no-such-account".into()])
        .expect("accounts");
    assert_eq!(accounts.len(), 1, "only the known account");
    assert_eq!(accounts[0].account_id, fixture.account);
    assert_eq!(accounts[0].currency, fixture.currency);
    assert!(matches!(
        connector.balances("no-such-account"),
        Err(ConnectorError::NotFound(_))
    ));

    // Transactions: newest first, filtered by date, paged without overlap.
    let all = connector
        .transactions(
            &fixture.account,
            &TransactionQuery {
                page: 1,
                page_size: 1000,
                ..Default::default()
            },
        )
        .expect("transactions");
    assert!(all.items.len() >= 4, "the fixture account has history");
    assert!(
        all.items
            .windows(2)
            .all(|w| w[0].booking_date_time >= w[1].booking_date_time),
        "newest first"
    );
    let middle = all.items[all.items.len() / 2].booking_date_time;
    let older = connector
        .transactions(
            &fixture.account,
            &TransactionQuery {
                to: Some(middle),
                page: 1,
                page_size: 1000,
                ..Default::default()
            },
        )
        .expect("filtered transactions");
    assert!(older.items.iter().all(|t| t.booking_date_time <= middle));
    assert!(!older.items.is_empty() && older.items.len() < all.items.len());
    let first = connector
        .transactions(
            &fixture.account,
            &TransactionQuery {
                page: 1,
                page_size: 2,
                ..Default::default()
            },
        )
        .expect("page 1");
    let second = connector
        .transactions(
            &fixture.account,
            &TransactionQuery {
                page: 2,
                page_size: 2,
                ..Default::default()
            },
        )
        .expect("page 2");
    assert!(first.more, "more pages after the first");
    assert_eq!(first.items[..], all.items[..2]);
    assert_eq!(second.items[..], all.items[2..4]);
}

/// The payment checks.
pub fn run_payments(connector: &dyn BankConnector, fixture: &Fixture) {
    // Payments move money, show in transactions, and happen once per key.
    let before = available(connector, &fixture.account);
    let payment = connector
        .create_payment("conformance-key-1", &order(fixture, 1_234, "CONF-1"))
        .expect("payment");
    assert_eq!(available(connector, &fixture.account), before - 1_234);
    let again = connector
        .create_payment("conformance-key-1", &order(fixture, 1_234, "CONF-1"))
        .expect("idempotent repeat");
    assert_eq!(again, payment, "a repeat returns the first payment");
    assert_eq!(available(connector, &fixture.account), before - 1_234);
    assert_eq!(
        connector.create_payment("conformance-key-1", &order(fixture, 99, "CONF-2")),
        Err(ConnectorError::IdempotencyConflict)
    );
    assert_eq!(connector.payment(&payment.payment_id), Ok(payment.clone()));
    assert!(matches!(
        connector.payment("no-such-payment"),
        Err(ConnectorError::NotFound(_))
    ));
    let newest = connector
        .transactions(
            &fixture.account,
            &TransactionQuery {
                page: 1,
                page_size: 1,
                ..Default::default()
            },
        )
        .expect("transactions after the payment");
    assert_eq!(newest.items[0].amount.minor, 1_234);
    assert_eq!(newest.items[0].credit_debit, CreditDebit::Debit);

    // More than the account holds is refused and moves nothing.
    let too_much = before.max(0) + 1_000_000_000;
    assert!(matches!(
        connector.create_payment("conformance-key-2", &order(fixture, too_much, "CONF-3")),
        Err(ConnectorError::Refused { .. })
    ));
    assert_eq!(available(connector, &fixture.account), before - 1_234);
}

/// `result` is the resource's records for the fixture account, or it is not offered;
/// `None` when not offered.
fn offered<T>(resource: Resource, result: Result<T, ConnectorError>) -> Option<T> {
    match result {
        Ok(records) => Some(records),
        Err(ConnectorError::NotOffered(r)) if r == resource => None,
        Err(other) => panic!("{}: {other}", resource.name()),
    }
}

/// Ids within a list are unique.
fn unique<'a>(resource: Resource, ids: impl Iterator<Item = &'a String>) {
    let ids: Vec<&String> = ids.collect();
    let distinct: std::collections::BTreeSet<&&String> = ids.iter().collect();
    assert_eq!(
        distinct.len(),
        ids.len(),
        "{}: ids are unique",
        resource.name()
    );
}

/// The optional resources: each one the connector offers reads for the fixture account
/// (every record of that account, unique ids, positive amounts, statements in order)
/// and is `NotFound` for an unknown account; one it does not offer says so.
pub fn run_resources(connector: &dyn BankConnector, fixture: &Fixture) {
    let account = fixture.account.as_str();
    let mine = |id: &String| assert_eq!(id, account, "a record of another account");
    let unknown = |resource: Resource, result: Result<(), ConnectorError>| {
        assert!(
            matches!(result, Err(ConnectorError::NotFound(_))),
            "{}: an unknown account is NotFound, not {result:?}",
            resource.name()
        );
    };
    let gone = "no-such-account";
    if let Some(list) = offered(Resource::Beneficiaries, connector.beneficiaries(account)) {
        list.iter().for_each(|b| mine(&b.account_id));
        unique(
            Resource::Beneficiaries,
            list.iter().map(|b| &b.beneficiary_id),
        );
        unknown(
            Resource::Beneficiaries,
            connector.beneficiaries(gone).map(drop),
        );
    }
    if let Some(list) = offered(Resource::DirectDebits, connector.direct_debits(account)) {
        list.iter().for_each(|d| mine(&d.account_id));
        unique(
            Resource::DirectDebits,
            list.iter().map(|d| &d.direct_debit_id),
        );
        assert!(
            list.iter()
                .all(|d| d.previous_payment.as_ref().is_none_or(|(m, _)| m.minor > 0))
        );
        unknown(
            Resource::DirectDebits,
            connector.direct_debits(gone).map(drop),
        );
    }
    if let Some(list) = offered(Resource::StandingOrders, connector.standing_orders(account)) {
        list.iter().for_each(|o| mine(&o.account_id));
        unique(
            Resource::StandingOrders,
            list.iter().map(|o| &o.standing_order_id),
        );
        assert!(
            list.iter()
                .all(|o| o.amount.minor > 0 && !o.frequency.is_empty())
        );
        assert!(
            list.iter()
                .all(|o| o.next_payment.is_none_or(|n| n >= o.first_payment))
        );
        unknown(
            Resource::StandingOrders,
            connector.standing_orders(gone).map(drop),
        );
    }
    if let Some(list) = offered(
        Resource::ScheduledPayments,
        connector.scheduled_payments(account),
    ) {
        list.iter().for_each(|p| mine(&p.account_id));
        unique(
            Resource::ScheduledPayments,
            list.iter().map(|p| &p.scheduled_payment_id),
        );
        assert!(list.iter().all(|p| p.amount.minor > 0));
        unknown(
            Resource::ScheduledPayments,
            connector.scheduled_payments(gone).map(drop),
        );
    }
    if let Some(list) = offered(Resource::Statements, connector.statements(account)) {
        list.iter().for_each(|s| mine(&s.account_id));
        unique(Resource::Statements, list.iter().map(|s| &s.statement_id));
        assert!(
            list.iter().all(|s| s.start < s.end),
            "a statement's period runs forward"
        );
        assert!(
            list.windows(2).all(|w| w[0].end >= w[1].end),
            "statements newest first"
        );
        unknown(Resource::Statements, connector.statements(gone).map(drop));
    }
    if let Some(list) = offered(Resource::Parties, connector.parties(account)) {
        assert!(!list.is_empty(), "an account has a party");
        unique(Resource::Parties, list.iter().map(|p| &p.party_id));
        unknown(Resource::Parties, connector.parties(gone).map(drop));
    }
    if let Some(product) = offered(Resource::Product, connector.product(account)) {
        mine(&product.account_id);
        assert!(!product.product_type.is_empty());
        unknown(Resource::Product, connector.product(gone).map(drop));
    }
}
