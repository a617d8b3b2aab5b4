//! The unified API's operations: each one's method and path as access records name it, the endpoint the official OBIE permission map lists it under, the permissions that cover it, and whether it names an account.

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use consentnet_identity::Permission;

/// The official map from OBIE permission codes to the endpoints they grant.
const PERMISSION_MAP: &str = include_str!("../specs/uk-obie-v4.0/permission-endpoint-map.json");

macro_rules! operations {
    ($($(#[$doc:meta])* $name:ident = ($path:literal, $endpoint:expr),)*) => {
        /// The operations of the unified API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Operation {
            $($(#[$doc])* $name,)*
        }

        impl Operation {
            /// Every operation.
            pub const ALL: &'static [Operation] = &[$(Operation::$name,)*];

            /// The method and path template, as access records name the operation.
            pub fn name(self) -> &'static str {
                match self {
                    $(Operation::$name => $path,)*
                }
            }

            /// The endpoint as the official permission map writes it (AIS only).
            fn map_endpoint(self) -> Option<&'static str> {
                match self {
                    $(Operation::$name => $endpoint,)*
                }
            }
        }
    };
}

operations! {
    /// `GET /aisp/accounts`
    Accounts = ("GET /aisp/accounts", Some("/accounts")),
    /// `GET /aisp/accounts/{AccountId}`
    Account = ("GET /aisp/accounts/{AccountId}", Some("/accounts/{AccountId}")),
    /// `GET /aisp/accounts/{AccountId}/balances`
    Balances = ("GET /aisp/accounts/{AccountId}/balances", Some("/accounts/{AccountId}/balances")),
    /// `GET /aisp/balances`
    BulkBalances = ("GET /aisp/balances", Some("/balances")),
    /// `GET /aisp/accounts/{AccountId}/transactions`
    Transactions = ("GET /aisp/accounts/{AccountId}/transactions", Some("/accounts/{AccountId}/transactions")),
    /// `GET /aisp/transactions`
    BulkTransactions = ("GET /aisp/transactions", Some("/transactions")),
    /// `GET /aisp/accounts/{AccountId}/beneficiaries`
    Beneficiaries = ("GET /aisp/accounts/{AccountId}/beneficiaries", Some("/accounts/{AccountId}/beneficiaries")),
    /// `GET /aisp/beneficiaries`
    BulkBeneficiaries = ("GET /aisp/beneficiaries", Some("/beneficiaries")),
    /// `GET /aisp/accounts/{AccountId}/direct-debits`
    DirectDebits = ("GET /aisp/accounts/{AccountId}/direct-debits", Some("/accounts/{AccountId}/direct-debits")),
    /// `GET /aisp/direct-debits`
    BulkDirectDebits = ("GET /aisp/direct-debits", Some("/direct-debits")),
    /// `GET /aisp/accounts/{AccountId}/standing-orders`
    StandingOrders = ("GET /aisp/accounts/{AccountId}/standing-orders", Some("/accounts/{AccountId}/standing-orders")),
    /// `GET /aisp/standing-orders`
    BulkStandingOrders = ("GET /aisp/standing-orders", Some("/standing-orders")),
    /// `GET /aisp/accounts/{AccountId}/scheduled-payments`
    ScheduledPayments = ("GET /aisp/accounts/{AccountId}/scheduled-payments", Some("/accounts/{AccountId}/scheduled-payments")),
    /// `GET /aisp/scheduled-payments`
    BulkScheduledPayments = ("GET /aisp/scheduled-payments", Some("/scheduled-payments")),
    /// `GET /aisp/accounts/{AccountId}/statements`
    Statements = ("GET /aisp/accounts/{AccountId}/statements", Some("/accounts/{AccountId}/statements")),
    /// `GET /aisp/accounts/{AccountId}/statements/{StatementId}` (covered as the list is)
    Statement = ("GET /aisp/accounts/{AccountId}/statements/{StatementId}", Some("/accounts/{AccountId}/statements")),
    /// `GET /aisp/accounts/{AccountId}/statements/{StatementId}/file`
    StatementFile = ("GET /aisp/accounts/{AccountId}/statements/{StatementId}/file", Some("/accounts/{AccountId}/statements/{StatementId}/file")),
    /// `GET /aisp/accounts/{AccountId}/statements/{StatementId}/transactions`
    StatementTransactions = ("GET /aisp/accounts/{AccountId}/statements/{StatementId}/transactions", Some("/accounts/{AccountId}/statements/{StatementId}/transactions")),
    /// `GET /aisp/statements`
    BulkStatements = ("GET /aisp/statements", Some("/statements")),
    /// `GET /aisp/accounts/{AccountId}/product`
    Product = ("GET /aisp/accounts/{AccountId}/product", Some("/accounts/{AccountId}/product")),
    /// `GET /aisp/products`
    BulkProducts = ("GET /aisp/products", Some("/products")),
    /// `GET /aisp/accounts/{AccountId}/party`
    AccountParty = ("GET /aisp/accounts/{AccountId}/party", Some("/accounts/{AccountId}/party")),
    /// `GET /aisp/accounts/{AccountId}/parties`
    Parties = ("GET /aisp/accounts/{AccountId}/parties", Some("/accounts/{AccountId}/parties")),
    /// `GET /aisp/party`: the client's own party
    Party = ("GET /aisp/party", Some("/party")),
    /// `GET /aisp/accounts/{AccountId}/offers`
    Offers = ("GET /aisp/accounts/{AccountId}/offers", Some("/accounts/{AccountId}/offers")),
    /// `GET /aisp/offers`
    BulkOffers = ("GET /aisp/offers", Some("/offers")),
    /// `POST /pisp/domestic-payments`
    CreatePayment = ("POST /pisp/domestic-payments", None),
    /// `GET /pisp/domestic-payments/{DomesticPaymentId}`
    GetPayment = ("GET /pisp/domestic-payments/{DomesticPaymentId}", None),
    /// `POST /pisp/domestic-scheduled-payments`
    CreateScheduledPayment = ("POST /pisp/domestic-scheduled-payments", None),
    /// `GET /pisp/domestic-scheduled-payments/{DomesticScheduledPaymentId}`
    GetScheduledPayment = ("GET /pisp/domestic-scheduled-payments/{DomesticScheduledPaymentId}", None),
    /// `POST /pisp/domestic-standing-orders`
    CreateStandingOrder = ("POST /pisp/domestic-standing-orders", None),
    /// `GET /pisp/domestic-standing-orders/{DomesticStandingOrderId}`
    GetStandingOrder = ("GET /pisp/domestic-standing-orders/{DomesticStandingOrderId}", None),
}

impl Operation {
    /// The permissions any one of which covers this operation. For account information
    /// they come from the official map (so a Detail code covers what its Basic code
    /// does); each kind of payment needs its own `CreateDomestic…` code.
    pub fn covering_permissions(self) -> &'static BTreeSet<Permission> {
        static TABLE: OnceLock<HashMap<Operation, BTreeSet<Permission>>> = OnceLock::new();
        let table = TABLE.get_or_init(|| {
            let map: serde_json::Value = serde_json::from_str(PERMISSION_MAP)
                .unwrap_or_else(|_| unreachable!("the shipped permission map is JSON"));
            Operation::ALL
                .iter()
                .map(|&operation| {
                    let covering = match operation.map_endpoint() {
                        Some(endpoint) => map["permissions"]
                            .as_object()
                            .into_iter()
                            .flatten()
                            .filter(|(_, entry)| {
                                entry["endpoints"]
                                    .as_array()
                                    .is_some_and(|e| e.iter().any(|e| e == endpoint))
                            })
                            .filter_map(|(code, _)| code.parse::<Permission>().ok())
                            .collect(),
                        None => BTreeSet::from([operation.payment_permission()]),
                    };
                    (operation, covering)
                })
                .collect()
        });
        &table[&self]
    }

    /// The permission a payment initiation operation needs.
    fn payment_permission(self) -> Permission {
        match self {
            Operation::CreateScheduledPayment | Operation::GetScheduledPayment => {
                Permission::CreateDomesticScheduledPayments
            }
            Operation::CreateStandingOrder | Operation::GetStandingOrder => {
                Permission::CreateDomesticStandingOrders
            }
            _ => Permission::CreateDomesticPayments,
        }
    }

    /// True when the operation acts on one account named in the path.
    pub fn names_account(self) -> bool {
        self.name().contains("{AccountId}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_account_information_operation_is_covered_by_the_official_map() {
        for operation in Operation::ALL {
            assert!(
                !operation.covering_permissions().is_empty(),
                "{operation:?} has no covering permission"
            );
        }
        assert_eq!(
            Operation::Statement.covering_permissions(),
            Operation::Statements.covering_permissions()
        );
        assert_eq!(
            Operation::StatementFile.covering_permissions(),
            &BTreeSet::from([Permission::ReadStatementsDetail])
        );
        assert!(
            Operation::Party
                .covering_permissions()
                .contains(&Permission::ReadPartyPSU)
        );
        assert!(Operation::Beneficiaries.names_account());
        assert!(!Operation::BulkBeneficiaries.names_account());
    }
}
