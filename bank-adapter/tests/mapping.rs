//! The HTTP mapping connector over real HTTP: both bank-core simulators through their shipped mapping files pass the conformance reads and give the same unified answers as the bank behind them; bad mapping files are refused naming the field; slow and garbled cores give clear errors.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use common::serve;
use consentnet_bank_adapter::connector::conformance::{Fixture, run, run_reads};
use consentnet_bank_adapter::connector::{BankConnector, ConnectorError, TransactionQuery};
use consentnet_bank_adapter::mapping::{Mapping, MappingConnector};
use consentnet_bank_adapter::sandbox::SandboxBank;
use consentnet_bank_adapter::simulators::{Style, router};

fn bank() -> Arc<SandboxBank> {
    Arc::new(SandboxBank::seeded(
        5,
        Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
    ))
}

/// The shipped mapping file `name`, pointed at `base_url`.
fn mapping(name: &str, base_url: &str) -> Mapping {
    let path = std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("mappings")
    .join(name);
    let text = std::fs::read_to_string(path).unwrap();
    let mut mapping = Mapping::parse(name, &text).unwrap();
    mapping.base_url = base_url.to_owned();
    mapping
}

fn fixture(bank: &SandboxBank) -> Fixture {
    Fixture::from_sandbox(bank)
}

#[test]
fn both_simulators_conform_and_agree_with_the_bank_behind_them() {
    let bank = bank();
    let berlin = MappingConnector::new(mapping(
        "berlin-group.toml",
        &serve(router(Style::Berlin, bank.clone())),
    ));
    let legacy = MappingConnector::new(mapping(
        "legacy-core.toml",
        &serve(router(Style::Legacy, bank.clone())),
    ));
    let fixture = fixture(&bank);
    run_reads(&berlin, &fixture);
    run_reads(&legacy, &fixture);

    let all = TransactionQuery {
        page: 1,
        page_size: 1_000,
        ..Default::default()
    };
    for (id, _) in bank.account_ids() {
        let direct = bank.accounts(std::slice::from_ref(&id)).unwrap();
        for connector in [&berlin as &dyn BankConnector, &legacy] {
            let name = connector.name();
            let mapped = connector.accounts(std::slice::from_ref(&id)).unwrap();
            assert_eq!(mapped[0].account_id, direct[0].account_id, "{name}");
            assert_eq!(mapped[0].currency, direct[0].currency, "{name}");
            assert_eq!(
                mapped[0].account_sub_type, direct[0].account_sub_type,
                "{name}"
            );
            assert_eq!(
                connector
                    .balances(&id)
                    .unwrap()
                    .iter()
                    .map(|b| (&b.kind, &b.amount, b.credit_debit))
                    .collect::<Vec<_>>(),
                bank.balances(&id)
                    .unwrap()
                    .iter()
                    .map(|b| (&b.kind, &b.amount, b.credit_debit))
                    .collect::<Vec<_>>(),
                "{name} balances of {id}"
            );
            let key = |t: &consentnet_bank_adapter::connector::Transaction| {
                (t.transaction_id.clone(), t.amount.clone(), t.credit_debit)
            };
            assert_eq!(
                connector
                    .transactions(&id, &all)
                    .unwrap()
                    .items
                    .iter()
                    .map(key)
                    .collect::<Vec<_>>(),
                bank.transactions(&id, &all)
                    .unwrap()
                    .items
                    .iter()
                    .map(key)
                    .collect::<Vec<_>>(),
                "{name} transactions of {id}"
            );
        }
    }
    assert!(berlin.accounts(&["acc-unknown".into()]).unwrap().is_empty());
    assert!(matches!(
        legacy.balances("acc-unknown"),
        Err(ConnectorError::NotFound(_))
    ));
}

#[test]
fn a_bad_mapping_file_is_refused_with_a_message_naming_the_field() {
    let path = std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("mappings/berlin-group.toml");
    let good = std::fs::read_to_string(path).unwrap();
    let cases = [
        (
            good.replace("base_url = \"http://", "base_url = \"ftp://"),
            "base_url",
        ),
        (
            good.replace("amount = \"/balanceAmount/amount\"\n", ""),
            "balances.fields.amount",
        ),
        (
            good.replace("currency = \"/currency\"", "currency = \"currency\""),
            "account.fields.currency",
        ),
        (
            good.replace("timeout_ms = 2000", "timeout_ms = 0"),
            "timeout_ms",
        ),
        (
            good.replace("[auth]", "colour = \"blue\"\n[auth]"),
            "colour",
        ),
        (
            good.replace(
                "amount_format = \"decimal\"\n[balances.fields]",
                "amount_format = \"roman\"\n[balances.fields]",
            ),
            "balances.amount_format",
        ),
        (
            good.replace(
                "nickname = \"/name\"",
                "nickname = \"/name\"\nfavourite = \"/x\"",
            ),
            "account.fields.favourite",
        ),
        (
            good.replace(
                "\"creditorName\": \"{creditor_name}\",",
                "\"creditorName\": {creditor_name},",
            ),
            "create_payment.body",
        ),
        (
            good.replace("X-Request-ID = \"{idempotency_uuid}\", ", ""),
            "create_payment.idempotency_header",
        ),
        (
            good.replace(
                "path = \"/v1/payments/sepa-credit-transfers/{payment}\"",
                "path = \"/v1/payments\"",
            ),
            "payment.path",
        ),
    ];
    for (text, field) in cases {
        let error = Mapping::parse("test.toml", &text).unwrap_err().to_string();
        assert!(error.contains(field), "{field}: {error}");
        assert!(error.starts_with("mapping test.toml"), "{error}");
    }
    // The future-dated sections of the legacy mapping, broken one way at a time.
    let legacy = std::fs::read_to_string(
        std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap())
            .join("mappings/legacy-core.toml"),
    )
    .unwrap();
    assert!(Mapping::parse("legacy.toml", &legacy).is_ok());
    let cases = [
        (
            legacy.replace(
                "path = \"/api/legacy/so/one?ref={id}\"",
                "path = \"/api/legacy/so/one\"",
            ),
            "standing_order.path: must contain {id}",
        ),
        (
            legacy
                .replace("[scheduled_payment]", "[unused_section]")
                .replace("[scheduled_payment.fields]", "[unused_section.fields]"),
            "unused_section",
        ),
        (
            legacy.replace("\"COUNT\": {count} }", "\"COUNT\": {count}"),
            "create_standing_order.body: not a JSON template",
        ),
        (
            legacy.replacen("execution = \"/ON\"", "when = \"/ON\"", 1),
            "scheduled_payment.fields.execution: missing",
        ),
    ];
    for (text, named) in cases {
        let error = Mapping::parse("legacy.toml", &text)
            .unwrap_err()
            .to_string();
        assert!(error.contains(named), "{named}: {error}");
    }
    let mut without_read = legacy.clone();
    let start = without_read.find("[standing_order]").unwrap();
    let end = without_read.find("# The standing arrangements").unwrap();
    without_read.replace_range(start..end, "");
    let error = Mapping::parse("legacy.toml", &without_read)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("standing_order: needed with create_standing_order"),
        "{error}"
    );
}

#[test]
fn a_core_that_never_answers_times_out_and_one_that_answers_garbage_is_unavailable() {
    // Accepts connections (the kernel's backlog) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut slow = mapping(
        "berlin-group.toml",
        &format!("http://{}", silent.local_addr().unwrap()),
    );
    slow.timeout_ms = 200;
    slow.retries = 1;
    let started = std::time::Instant::now();
    assert_eq!(
        MappingConnector::new(slow).balances("acc-1"),
        Err(ConnectorError::Timeout)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    let garbage = serve(axum::Router::new().fallback(|| async { "<html>maintenance</html>" }));
    let result = MappingConnector::new(mapping("legacy-core.toml", &garbage)).balances("acc-1");
    assert!(
        matches!(&result, Err(ConnectorError::Unavailable(message)) if message.contains("not JSON")),
        "{result:?}"
    );
}

#[test]
fn payments_through_both_mapped_simulators_pass_the_whole_conformance_suite() {
    for (style, file) in [
        (Style::Berlin, "berlin-group.toml"),
        (Style::Legacy, "legacy-core.toml"),
    ] {
        // A bank of its own, so the payment checks start from a known ledger.
        let bank = bank();
        let connector = MappingConnector::new(mapping(file, &serve(router(style, bank.clone()))));
        run(&connector, &fixture(&bank));
    }
}

#[test]
fn a_mapping_without_payment_sections_refuses_payments_rather_than_pretending() {
    let bank = bank();
    let mut read_only = mapping(
        "berlin-group.toml",
        &serve(router(Style::Berlin, bank.clone())),
    );
    read_only.create_payment = None;
    read_only.payment = None;
    let berlin = MappingConnector::new(read_only);
    let order = consentnet_bank_adapter::connector::PaymentOrder {
        debtor_account: fixture(&bank).account,
        creditor_scheme: "UK.OBIE.SortCodeAccountNumber".into(),
        creditor_identification: "40000012345678".into(),
        creditor_name: "Someone".into(),
        amount: consentnet_bank_adapter::connector::Money::parse("1.00", "GBP").unwrap(),
        reference: "X".into(),
    };
    assert!(matches!(
        berlin.create_payment("k", &order),
        Err(ConnectorError::Refused { code, .. }) if code == "not_supported"
    ));
}

#[test]
fn oauth_client_credentials_fetch_the_token_and_a_wrong_secret_is_a_clear_failure() {
    use consentnet_bank_adapter::mapping::OAuthClient;
    use consentnet_bank_adapter::simulators::BERLIN_CLIENT;
    let bank = bank();
    let url = serve(router(Style::Berlin, bank.clone()));
    let mut with_oauth = mapping("berlin-group.toml", &url);
    with_oauth.auth = None;
    with_oauth.oauth = Some(OAuthClient {
        token_url: format!("{url}/oauth/token"),
        client_id: BERLIN_CLIENT.0.into(),
        client_secret: BERLIN_CLIENT.1.into(),
        scope: None,
    });
    run_reads(&MappingConnector::new(with_oauth.clone()), &fixture(&bank));

    with_oauth.oauth.as_mut().unwrap().client_secret = "wrong".into();
    let result = MappingConnector::new(with_oauth).balances(&fixture(&bank).account);
    assert!(
        matches!(&result, Err(ConnectorError::Unavailable(m)) if m.contains("token endpoint answered 401")),
        "{result:?}"
    );

    let path = std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("mappings/berlin-group.toml");
    let both = std::fs::read_to_string(path).unwrap()
        + "\n[oauth]\ntoken_url = \"http://x/token\"\nclient_id = \"a\"\nclient_secret = \"b\"\n";
    let error = Mapping::parse("both.toml", &both).unwrap_err().to_string();
    assert!(error.contains("oauth"), "{error}");
}

#[test]
fn credentials_in_a_mapping_never_show_in_its_debug_output() {
    let mut mapping = mapping("berlin-group.toml", "http://127.0.0.1:1");
    let shown = format!("{mapping:?}");
    assert!(!shown.contains("berlin-sim-token"), "{shown}");
    mapping.auth = None;
    mapping.oauth = Some(consentnet_bank_adapter::mapping::OAuthClient {
        token_url: "http://127.0.0.1:1/token".into(),
        client_id: "client".into(),
        client_secret: "top-secret-value".into(),
        scope: None,
    });
    assert!(!format!("{mapping:?}").contains("top-secret-value"));
}

#[test]
fn the_legacy_core_maps_every_standing_arrangement_and_agrees_with_its_ledger() {
    use consentnet_bank_adapter::connector::conformance::run_resources;
    use consentnet_bank_adapter::connector::{Counterparty, Resource};
    let bank = bank();
    let legacy = MappingConnector::new(mapping(
        "legacy-core.toml",
        &serve(router(Style::Legacy, bank.clone())),
    ));
    let berlin = MappingConnector::new(mapping(
        "berlin-group.toml",
        &serve(router(Style::Berlin, bank.clone())),
    ));
    let fixture = fixture(&bank);
    run_resources(&legacy, &fixture);
    // Berlin Group 1.3.9 has none of these resources, and its mapping says so.
    run_resources(&berlin, &fixture);
    assert_eq!(
        berlin.standing_orders(&fixture.account),
        Err(ConnectorError::NotOffered(Resource::StandingOrders))
    );

    // The legacy core upper-cases names and keeps times to the second.
    let payee = |c: &Counterparty| {
        (
            c.scheme_name.clone(),
            c.identification.clone(),
            c.name.to_uppercase(),
        )
    };
    let second = |t: chrono::DateTime<Utc>| t.timestamp();
    for (id, _) in bank.account_ids() {
        let orders = |c: &dyn BankConnector| {
            c.standing_orders(&id)
                .unwrap()
                .iter()
                .map(|o| {
                    (
                        o.standing_order_id.clone(),
                        o.frequency.clone(),
                        o.amount.clone(),
                        o.reference.clone(),
                        second(o.first_payment),
                        o.next_payment.map(second),
                        o.active,
                        payee(&o.creditor),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            orders(&legacy),
            orders(bank.as_ref()),
            "standing orders of {id}"
        );
        let debits = |c: &dyn BankConnector| {
            c.direct_debits(&id)
                .unwrap()
                .iter()
                .map(|d| {
                    (
                        d.direct_debit_id.clone(),
                        d.mandate_id.clone(),
                        d.name.to_uppercase(),
                        d.active,
                        d.previous_payment
                            .as_ref()
                            .map(|(m, t)| (m.clone(), second(*t))),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            debits(&legacy),
            debits(bank.as_ref()),
            "direct debits of {id}"
        );
        let payees = |c: &dyn BankConnector| {
            c.beneficiaries(&id)
                .unwrap()
                .iter()
                .map(|b| {
                    (
                        b.beneficiary_id.clone(),
                        b.reference.clone(),
                        payee(&b.creditor),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            payees(&legacy),
            payees(bank.as_ref()),
            "beneficiaries of {id}"
        );
        let scheduled = |c: &dyn BankConnector| {
            c.scheduled_payments(&id)
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p.scheduled_payment_id.clone(),
                        second(p.execution),
                        p.amount.clone(),
                        payee(&p.creditor),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            scheduled(&legacy),
            scheduled(bank.as_ref()),
            "scheduled payments of {id}"
        );
        let statements = |c: &dyn BankConnector| {
            c.statements(&id)
                .unwrap()
                .iter()
                .map(|s| {
                    (
                        s.statement_id.clone(),
                        second(s.start),
                        second(s.end),
                        s.closing_balance.clone(),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            statements(&legacy),
            statements(bank.as_ref()),
            "statements of {id}"
        );
        let product = |c: &dyn BankConnector| {
            let p = c.product(&id).unwrap();
            (p.product_id, p.product_type, p.name.to_uppercase())
        };
        assert_eq!(product(&legacy), product(bank.as_ref()), "product of {id}");
        let parties = |c: &dyn BankConnector| {
            c.parties(&id)
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p.party_id.clone(),
                        p.name.to_uppercase(),
                        p.account_role.clone(),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(parties(&legacy), parties(bank.as_ref()), "parties of {id}");
    }
}

#[test]
fn a_resource_section_with_a_missing_field_or_an_unknown_one_is_refused() {
    let path = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("mappings/legacy-core.toml");
    let good = std::fs::read_to_string(path).unwrap();
    for (from, to, named) in [
        (
            "frequency = \"/EVERY\"\n",
            "",
            "standing_orders.fields.frequency",
        ),
        (
            "mandate_id = \"/MANDATE\"",
            "mandate_id = \"/MANDATE\"\ncolour = \"/C\"",
            "direct_debits.fields.colour",
        ),
        (
            "path = \"/api/legacy/acct/payees?no={account}\"",
            "path = \"/api/legacy/acct/payees\"",
            "beneficiaries.path",
        ),
    ] {
        let text = good.replace(from, to);
        assert_ne!(text, good, "{from}");
        let error = Mapping::parse("t.toml", &text).unwrap_err().to_string();
        assert!(error.contains(named), "{named}: {error}");
    }
}

#[test]
fn an_iso_20022_xml_core_passes_the_whole_conformance_suite_and_agrees_with_its_ledger() {
    let bank = bank();
    let iso = MappingConnector::new(mapping(
        "iso20022.toml",
        &serve(router(Style::Iso, bank.clone())),
    ));
    let fixture = fixture(&bank);
    let all = TransactionQuery {
        page: 1,
        page_size: 1_000,
        ..Default::default()
    };
    for (id, _) in bank.account_ids() {
        let mapped = iso.accounts(std::slice::from_ref(&id)).unwrap();
        assert_eq!(
            mapped,
            bank.accounts(std::slice::from_ref(&id)).unwrap(),
            "{id}"
        );
        let balances = |c: &dyn BankConnector| {
            c.balances(&id)
                .unwrap()
                .iter()
                .map(|b| {
                    (
                        b.kind.clone(),
                        b.amount.clone(),
                        b.credit_debit,
                        b.date_time.timestamp(),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(balances(&iso), balances(bank.as_ref()), "balances of {id}");
        let moves = |c: &dyn BankConnector| {
            c.transactions(&id, &all)
                .unwrap()
                .items
                .iter()
                .map(|t| {
                    (
                        t.transaction_id.clone(),
                        t.amount.clone(),
                        t.credit_debit,
                        t.information.clone(),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(moves(&iso), moves(bank.as_ref()), "transactions of {id}");
    }
    // Payments as pain.001, answered by pain.002; a repeat carries the same MsgId.
    run(&iso, &fixture);
}

#[test]
fn the_legacy_core_maps_scheduled_payments_and_standing_orders_and_refuses_what_it_cannot_pay() {
    use consentnet_bank_adapter::connector::conformance::run_future;
    use consentnet_bank_adapter::connector::{
        BankConnector as _, Resource, ScheduledOrder, StandingOrderOrder,
    };
    let bank = bank();
    let legacy = MappingConnector::new(mapping(
        "legacy-core.toml",
        &serve(router(Style::Legacy, bank.clone())),
    ));
    let fixture = fixture(&bank);
    run_future(&legacy, &fixture);
    // What the mapping made is what the core's own ledger holds.
    let held = bank.scheduled_payments(&fixture.account).unwrap();
    let mapped = legacy.scheduled_payments(&fixture.account).unwrap();
    assert_eq!(
        held.iter()
            .map(|p| &p.scheduled_payment_id)
            .collect::<Vec<_>>(),
        mapped
            .iter()
            .map(|p| &p.scheduled_payment_id)
            .collect::<Vec<_>>()
    );
    let made = bank
        .standing_orders(&fixture.account)
        .unwrap()
        .into_iter()
        .find(|o| o.reference == "CONF-SO")
        .expect("the core holds the standing order");
    assert_eq!(
        (made.frequency.as_str(), made.amount.minor),
        ("MNTH", 1_000)
    );
    // The legacy core pays monthly or weekly only: another frequency is refused by the
    // mapping before the core is asked.
    let first = chrono::Utc::now() + chrono::Duration::days(3);
    let order = |frequency: &str| StandingOrderOrder {
        order: consentnet_bank_adapter::connector::PaymentOrder {
            debtor_account: fixture.account.clone(),
            creditor_scheme: fixture.payee_scheme.clone(),
            creditor_identification: fixture.payee_identification.clone(),
            creditor_name: "Payee".into(),
            amount: consentnet_bank_adapter::connector::Money {
                minor: 100,
                currency: "GBP".into(),
            },
            reference: "DAILY".into(),
        },
        frequency: frequency.into(),
        first,
        recurring_amount: consentnet_bank_adapter::connector::Money {
            minor: 100,
            currency: "GBP".into(),
        },
        final_amount: consentnet_bank_adapter::connector::Money {
            minor: 100,
            currency: "GBP".into(),
        },
        dates: vec![first],
    };
    assert!(matches!(
        legacy.create_standing_order("daily", &order("DAIL")),
        Err(ConnectorError::Refused { code, .. }) if code == "frequency_not_offered"
    ));
    // A mapping without the sections does not offer them.
    let berlin = MappingConnector::new(mapping(
        "berlin-group.toml",
        &serve(router(Style::Berlin, bank.clone())),
    ));
    let scheduled = ScheduledOrder {
        order: order("MNTH").order,
        execution: first,
    };
    assert_eq!(
        berlin.create_scheduled_payment("k", &scheduled),
        Err(ConnectorError::NotOffered(Resource::NewScheduledPayments))
    );
}
