//! The optional account information resources in a mapping file (beneficiaries, direct debits, standing orders, scheduled payments, statements, parties, the product): each section's unified fields, its checks, and the core's answer read into unified records. A section not given is a resource not offered.

use serde_json::Value;

use super::*;
use crate::connector::{
    Beneficiary, Counterparty, CreditDebit, DirectDebit, Party, Product, Resource,
    ScheduledPayment, StandingOrder, Statement,
};

const CREDITOR: [&str; 3] = [
    "creditor_scheme",
    "creditor_identification",
    "creditor_name",
];

/// OBIE's frequency codes (`OBFrequency6Code`).
const FREQUENCIES: [&str; 16] = [
    "ADHO", "YEAR", "DAIL", "FRTN", "INDA", "MNTH", "QURT", "MIAN", "WEEK", "WODL", "FOWK", "TWMH",
    "FOMH", "FIMH", "ALMH", "NONE",
];

/// A section's unified fields: (required, optional).
fn shape(resource: Resource) -> (Vec<&'static str>, &'static [&'static str]) {
    let with_creditor = |first: &[&'static str]| [first, &CREDITOR[..]].concat();
    match resource {
        Resource::Beneficiaries => (with_creditor(&["beneficiary_id"]), &["reference"]),
        Resource::DirectDebits => (
            vec!["direct_debit_id", "mandate_id", "name"],
            &[
                "status",
                "previous_amount",
                "previous_currency",
                "previous_date",
            ],
        ),
        Resource::StandingOrders => (
            with_creditor(&[
                "standing_order_id",
                "frequency",
                "amount",
                "currency",
                "first_payment",
            ]),
            &["next_payment", "reference", "status"],
        ),
        Resource::ScheduledPayments => (
            with_creditor(&["scheduled_payment_id", "execution", "amount", "currency"]),
            &["reference"],
        ),
        Resource::Statements => (
            vec!["statement_id", "start", "end"],
            &[
                "created",
                "closing_amount",
                "closing_currency",
                "closing_credit_debit",
            ],
        ),
        Resource::Parties => (vec!["party_id", "name"], &["party_type", "account_role"]),
        Resource::Product => (vec!["product_id", "name", "product_type"], &[]),
        Resource::Offers | Resource::NewScheduledPayments | Resource::NewStandingOrders => {
            (vec![], &[])
        }
    }
}

impl Mapping {
    /// The section mapping `resource`, if the file gives one.
    pub(super) fn section(&self, resource: Resource) -> Option<&Operation> {
        match resource {
            Resource::Beneficiaries => self.beneficiaries.as_ref(),
            Resource::DirectDebits => self.direct_debits.as_ref(),
            Resource::StandingOrders => self.standing_orders.as_ref(),
            Resource::ScheduledPayments => self.scheduled_payments.as_ref(),
            Resource::Statements => self.statements.as_ref(),
            Resource::Parties => self.parties.as_ref(),
            Resource::Product => self.product.as_ref(),
            Resource::Offers | Resource::NewScheduledPayments | Resource::NewStandingOrders => None,
        }
    }

    /// Checks every resource section the file gives.
    pub(super) fn check_resources(&self) -> Result<(), String> {
        for resource in RESOURCES {
            let Some(op) = self.section(resource) else {
                continue;
            };
            let (required, optional) = shape(resource);
            op.check_fields(resource.name(), &required, optional)?;
            if !op.path.contains("{account}") {
                return Err(format!(
                    "{}.path: must contain {{account}}",
                    resource.name()
                ));
            }
        }
        Ok(())
    }
}

/// The resources a mapping file may give.
pub(super) const RESOURCES: [Resource; 7] = [
    Resource::Beneficiaries,
    Resource::DirectDebits,
    Resource::StandingOrders,
    Resource::ScheduledPayments,
    Resource::Statements,
    Resource::Parties,
    Resource::Product,
];

fn creditor(op: &Operation, record: &Value) -> Result<Counterparty, ConnectorError> {
    Ok(Counterparty {
        scheme_name: op.required(record, "creditor_scheme")?,
        identification: op.required(record, "creditor_identification")?,
        name: op.required(record, "creditor_name")?,
    })
}

/// `Active` unless the (value-mapped) status says `Inactive`.
fn active(op: &Operation, record: &Value) -> Result<bool, ConnectorError> {
    match op.text(record, "status")?.as_deref() {
        None | Some("Active") => Ok(true),
        Some("Inactive") => Ok(false),
        Some(other) => Err(bad(format!("status: {other:?} is not Active or Inactive"))),
    }
}

/// A standing order of `account` from a core's record.
pub(super) fn standing_order(
    op: &Operation,
    r: &Value,
    account: String,
) -> Result<StandingOrder, ConnectorError> {
    let frequency = op.required(r, "frequency")?;
    let offered = crate::payments::schedule::Frequency::parse(&frequency).is_some();
    if !offered && !FREQUENCIES.contains(&frequency.as_str()) {
        return Err(bad(format!(
            "frequency: {frequency:?} is not an OBIE frequency code"
        )));
    }
    Ok(StandingOrder {
        standing_order_id: op.required(r, "standing_order_id")?,
        account_id: account,
        frequency,
        reference: op.text(r, "reference")?.unwrap_or_default(),
        first_payment: op.time(r, "first_payment")?,
        next_payment: op.time_if(r, "next_payment")?,
        amount: op.amount_of(r, "amount", "currency")?,
        active: active(op, r)?,
        creditor: creditor(op, r)?,
    })
}

/// A scheduled payment of `account` from a core's record.
pub(super) fn scheduled_payment(
    op: &Operation,
    r: &Value,
    account: String,
) -> Result<ScheduledPayment, ConnectorError> {
    Ok(ScheduledPayment {
        scheduled_payment_id: op.required(r, "scheduled_payment_id")?,
        account_id: account,
        execution: op.time(r, "execution")?,
        amount: op.amount_of(r, "amount", "currency")?,
        reference: op.text(r, "reference")?.unwrap_or_default(),
        creditor: creditor(op, r)?,
    })
}

impl MappingConnector {
    /// The core's answer for `resource` of `account`: the section and the answer.
    fn fetch(
        &self,
        resource: Resource,
        account: &str,
    ) -> Result<(&Operation, Value), ConnectorError> {
        let op = self
            .mapping
            .section(resource)
            .ok_or(ConnectorError::NotOffered(resource))?;
        let path = op.path.replace(
            "{account}",
            &consentnet_identity::util::percent_encode(account, b""),
        );
        let answer = self
            .get(op, resource.name(), &path)?
            .ok_or_else(|| ConnectorError::NotFound(account.to_owned()))?;
        Ok((op, answer))
    }

    /// Each record of `resource` of `account`, read by `read`.
    fn list<T>(
        &self,
        resource: Resource,
        account: &str,
        read: impl Fn(&Operation, &Value) -> Result<T, ConnectorError>,
    ) -> Result<Vec<T>, ConnectorError> {
        let (op, answer) = self.fetch(resource, account)?;
        op.records(&answer)?.iter().map(|r| read(op, r)).collect()
    }

    pub(super) fn read_beneficiaries(
        &self,
        account: &str,
    ) -> Result<Vec<Beneficiary>, ConnectorError> {
        self.list(Resource::Beneficiaries, account, |op, r| {
            Ok(Beneficiary {
                beneficiary_id: op.required(r, "beneficiary_id")?,
                account_id: account.to_owned(),
                reference: op.text(r, "reference")?.unwrap_or_default(),
                creditor: creditor(op, r)?,
            })
        })
    }

    pub(super) fn read_direct_debits(
        &self,
        account: &str,
    ) -> Result<Vec<DirectDebit>, ConnectorError> {
        self.list(Resource::DirectDebits, account, |op, r| {
            let previous = match op.text(r, "previous_amount")? {
                Some(_) => Some((
                    op.amount_of(r, "previous_amount", "previous_currency")?,
                    op.time(r, "previous_date")?,
                )),
                None => None,
            };
            Ok(DirectDebit {
                direct_debit_id: op.required(r, "direct_debit_id")?,
                account_id: account.to_owned(),
                mandate_id: op.required(r, "mandate_id")?,
                name: op.required(r, "name")?,
                active: active(op, r)?,
                previous_payment: previous,
            })
        })
    }

    pub(super) fn read_standing_orders(
        &self,
        account: &str,
    ) -> Result<Vec<StandingOrder>, ConnectorError> {
        self.list(Resource::StandingOrders, account, |op, r| {
            standing_order(op, r, account.to_owned())
        })
    }

    pub(super) fn read_scheduled(
        &self,
        account: &str,
    ) -> Result<Vec<ScheduledPayment>, ConnectorError> {
        self.list(Resource::ScheduledPayments, account, |op, r| {
            scheduled_payment(op, r, account.to_owned())
        })
    }

    pub(super) fn read_statements(&self, account: &str) -> Result<Vec<Statement>, ConnectorError> {
        self.list(Resource::Statements, account, |op, r| {
            let closing = match op.text(r, "closing_amount")? {
                Some(_) => {
                    let money = op.amount_of(r, "closing_amount", "closing_currency")?;
                    let side = match op.text(r, "closing_credit_debit")?.as_deref() {
                        Some("Debit") => CreditDebit::Debit,
                        None | Some("Credit") => CreditDebit::Credit,
                        Some(other) => {
                            return Err(bad(format!("closing_credit_debit: {other:?}")));
                        }
                    };
                    Some((money, side))
                }
                None => None,
            };
            let end = op.time(r, "end")?;
            Ok(Statement {
                statement_id: op.required(r, "statement_id")?,
                account_id: account.to_owned(),
                start: op.time(r, "start")?,
                end,
                created: op.time_if(r, "created")?.unwrap_or(end),
                closing_balance: closing,
            })
        })
    }

    pub(super) fn read_parties(&self, account: &str) -> Result<Vec<Party>, ConnectorError> {
        self.list(Resource::Parties, account, |op, r| {
            Ok(Party {
                party_id: op.required(r, "party_id")?,
                party_type: op.text(r, "party_type")?.unwrap_or_else(|| "Sole".into()),
                name: op.required(r, "name")?,
                account_role: op
                    .text(r, "account_role")?
                    .unwrap_or_else(|| "UK.OBIE.Principal".into()),
            })
        })
    }

    pub(super) fn read_product(&self, account: &str) -> Result<Product, ConnectorError> {
        let (op, answer) = self.fetch(Resource::Product, account)?;
        let record = match op.root.as_str() {
            "" => &answer,
            root => answer
                .pointer(root)
                .ok_or_else(|| bad(format!("no product at {root}")))?,
        };
        Ok(Product {
            account_id: account.to_owned(),
            product_id: op.required(record, "product_id")?,
            name: op.required(record, "name")?,
            product_type: op.required(record, "product_type")?,
        })
    }
}
