//! The permission codes a consent may carry (UK Open Banking v4.0 AIS codes plus consentnet's payment code) and the rules on combining them.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! permissions {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// One permission code. The AIS codes are UK Open Banking v4.0's, spelled as there.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Permission {
            $($(#[$doc])* $name,)*
        }

        impl Permission {
            /// Every code, in declaration order.
            pub const ALL: &'static [Permission] = &[$(Permission::$name,)*];

            /// The code as spelled on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Permission::$name => stringify!($name),)*
                }
            }
        }

        impl FromStr for Permission {
            type Err = PermissionError;
            fn from_str(code: &str) -> Result<Self, PermissionError> {
                match code {
                    $(stringify!($name) => Ok(Permission::$name),)*
                    _ => Err(PermissionError::Unknown(code.to_owned())),
                }
            }
        }
    };
}

permissions! {
    /// Basic account details.
    ReadAccountsBasic,
    /// Account details including identification.
    ReadAccountsDetail,
    /// Balances.
    ReadBalances,
    /// Beneficiaries, basic.
    ReadBeneficiariesBasic,
    /// Beneficiaries, in detail.
    ReadBeneficiariesDetail,
    /// Direct debits.
    ReadDirectDebits,
    /// Transactions, basic.
    ReadTransactionsBasic,
    /// Transactions, in detail.
    ReadTransactionsDetail,
    /// Credit transactions.
    ReadTransactionsCredits,
    /// Debit transactions.
    ReadTransactionsDebits,
    /// Statements, basic.
    ReadStatementsBasic,
    /// Statements, in detail, with the statement file.
    ReadStatementsDetail,
    /// Products.
    ReadProducts,
    /// Offers.
    ReadOffers,
    /// The account owner party.
    ReadParty,
    /// The party that authorised the consent.
    ReadPartyPSU,
    /// Scheduled payments, basic.
    ReadScheduledPaymentsBasic,
    /// Scheduled payments, in detail.
    ReadScheduledPaymentsDetail,
    /// The primary account number of card accounts.
    ReadPAN,
    /// Standing orders, basic.
    ReadStandingOrdersBasic,
    /// Standing orders, in detail.
    ReadStandingOrdersDetail,
    /// consentnet's own code for initiating domestic payments (OBIE authorises payments
    /// per payment consent, with no permission code); it requires payment limits.
    CreateDomesticPayments,
    /// consentnet's own code for scheduling one-off domestic payments for a later date;
    /// it requires payment limits, which each payment counts against in its own period.
    CreateDomesticScheduledPayments,
    /// consentnet's own code for setting up domestic standing orders; it requires payment
    /// limits, which every instalment counts against in its own period.
    CreateDomesticStandingOrders,
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Permission {
    /// True for the account information (read) codes.
    pub fn is_account_information(self) -> bool {
        !self.is_payment()
    }

    /// True for the codes that move money (and so need payment limits).
    pub fn is_payment(self) -> bool {
        matches!(
            self,
            Permission::CreateDomesticPayments
                | Permission::CreateDomesticScheduledPayments
                | Permission::CreateDomesticStandingOrders
        )
    }
}

/// Why a set of permission codes is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermissionError {
    /// A code that is neither an OBIE v4.0 code nor consentnet's payment code.
    #[error("unknown permission code {0:?}")]
    Unknown(String),
    /// The same code twice.
    #[error("permission {0} is listed twice")]
    Duplicate(Permission),
    /// No codes at all.
    #[error("a consent must grant at least one permission")]
    Empty,
    /// A combination the OBIE rules forbid.
    #[error("forbidden permission set: {0}")]
    Forbidden(&'static str),
}

/// Parses permission codes and checks them against the OBIE combination rules:
/// any account-information code needs `ReadAccountsBasic` or `ReadAccountsDetail`;
/// `ReadTransactionsBasic`/`Detail` need `ReadTransactionsCredits` or `Debits`, and
/// the reverse.
pub fn parse_permission_set<S: AsRef<str>>(
    codes: &[S],
) -> Result<BTreeSet<Permission>, PermissionError> {
    let mut set = BTreeSet::new();
    for code in codes {
        let permission: Permission = code.as_ref().parse()?;
        if !set.insert(permission) {
            return Err(PermissionError::Duplicate(permission));
        }
    }
    check_permission_set(&set)?;
    Ok(set)
}

/// Checks an already-parsed set against the OBIE combination rules.
pub fn check_permission_set(set: &BTreeSet<Permission>) -> Result<(), PermissionError> {
    use Permission::*;
    if set.is_empty() {
        return Err(PermissionError::Empty);
    }
    let has = |p| set.contains(&p);
    if set.iter().any(|p| p.is_account_information())
        && !has(ReadAccountsBasic)
        && !has(ReadAccountsDetail)
    {
        return Err(PermissionError::Forbidden(
            "account information needs ReadAccountsBasic or ReadAccountsDetail",
        ));
    }
    let level = has(ReadTransactionsBasic) || has(ReadTransactionsDetail);
    let direction = has(ReadTransactionsCredits) || has(ReadTransactionsDebits);
    if level && !direction {
        return Err(PermissionError::Forbidden(
            "ReadTransactionsBasic/Detail need ReadTransactionsCredits or ReadTransactionsDebits",
        ));
    }
    if direction && !level {
        return Err(PermissionError::Forbidden(
            "ReadTransactionsCredits/Debits need ReadTransactionsBasic or ReadTransactionsDetail",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_official_permission_map() {
        let map: serde_json::Value = serde_json::from_str(include_str!(
            "../specs/uk-obie-v4.0/permission-endpoint-map.json"
        ))
        .unwrap();
        let official: BTreeSet<&str> = map["permissions"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let ours: BTreeSet<&str> = Permission::ALL
            .iter()
            .filter(|p| p.is_account_information())
            .map(|p| p.as_str())
            .collect();
        assert_eq!(ours, official);
    }

    #[test]
    fn every_code_round_trips_through_text_and_json() {
        for &permission in Permission::ALL {
            assert_eq!(
                permission.as_str().parse::<Permission>().unwrap(),
                permission
            );
            let json = serde_json::to_string(&permission).unwrap();
            assert_eq!(json, format!("\"{permission}\""));
            assert_eq!(
                serde_json::from_str::<Permission>(&json).unwrap(),
                permission
            );
        }
    }

    #[test]
    fn accepts_valid_sets() {
        let set = parse_permission_set(&[
            "ReadAccountsDetail",
            "ReadBalances",
            "ReadTransactionsDetail",
            "ReadTransactionsCredits",
        ])
        .unwrap();
        assert_eq!(set.len(), 4);
        assert!(parse_permission_set(&["CreateDomesticPayments"]).is_ok());
        assert!(parse_permission_set(&["ReadAccountsBasic"]).is_ok());
    }

    #[test]
    fn rejects_unknown_duplicate_and_empty() {
        assert_eq!(
            parse_permission_set(&["ReadAccountsBasic", "ReadEverything"]).unwrap_err(),
            PermissionError::Unknown("ReadEverything".into())
        );
        assert_eq!(
            parse_permission_set(&["ReadAccountsBasic", "ReadAccountsBasic"]).unwrap_err(),
            PermissionError::Duplicate(Permission::ReadAccountsBasic)
        );
        assert_eq!(
            parse_permission_set::<&str>(&[]).unwrap_err(),
            PermissionError::Empty
        );
    }

    #[test]
    fn rejects_sets_the_obie_rules_forbid() {
        for bad in [
            &["ReadBalances"][..],
            &["ReadAccountsBasic", "ReadTransactionsBasic"],
            &["ReadAccountsBasic", "ReadTransactionsDetail"],
            &["ReadAccountsBasic", "ReadTransactionsCredits"],
            &["ReadAccountsBasic", "ReadTransactionsDebits"],
            &["CreateDomesticPayments", "ReadBalances"],
        ] {
            assert!(
                matches!(
                    parse_permission_set(bad),
                    Err(PermissionError::Forbidden(_))
                ),
                "{bad:?} was accepted"
            );
        }
    }
}
