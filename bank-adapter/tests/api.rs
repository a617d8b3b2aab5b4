//! The unified account information API over the sandbox bank: every body validated against the official OBIE v4.0 schema, refusals as OBIE errors, an access record per call, connectors swapped at run time.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use chrono::{DateTime, TimeZone, Utc};
use common::openapi::Spec;
use consentnet_bank_adapter::api::{
    APP_VERSION, AccessSink, Adapter, AppLimits, INTERACTION_ID, router,
};
use consentnet_bank_adapter::connector::{
    Account, Balance, BankConnector, ConnectorError, Page, Payment, PaymentOrder, Transaction,
    TransactionQuery,
};
use consentnet_bank_adapter::enforce::{ReplayCache, SCHEME};
use consentnet_bank_adapter::limits::Rate;
use consentnet_bank_adapter::payments::{Ledger, MAX_PAYMENT_BODY};
use consentnet_bank_adapter::sandbox::SandboxBank;
use consentnet_bank_adapter::signatures::SignatureBatcher;
use consentnet_consent_chain::event::{AppAction, AppDecision, Outcome};
use consentnet_consent_chain::{Event, Genesis, Member, MemoryStore, Replica, Role};
use consentnet_identity::consent::block_on;
use consentnet_identity::consent::{PaymentLimits, Period};
use consentnet_identity::{
    ConsentId, ConsentTerms, KeyPair, Permission, PopRequest, issue_consent, sign_pop,
};
use serde_json::Value;
use tower::ServiceExt;

const PUBLIC: &str = "https://bank.example";
const AIS: &str = "/open-banking/v4.0/aisp";

#[derive(Default)]
struct Records(Mutex<Vec<(ConsentId, &'static str, Outcome)>>);

impl AccessSink for Records {
    fn record(
        &self,
        consent: ConsentId,
        operation: &'static str,
        _: DateTime<Utc>,
        outcome: Outcome,
    ) {
        self.0.lock().unwrap().push((consent, operation, outcome));
    }
}

/// A bank core that never answers in time.
struct Unresponsive;

impl BankConnector for Unresponsive {
    fn name(&self) -> &str {
        "unresponsive"
    }
    fn accounts(&self, _: &[String]) -> Result<Vec<Account>, ConnectorError> {
        Err(ConnectorError::Timeout)
    }
    fn balances(&self, _: &str) -> Result<Vec<Balance>, ConnectorError> {
        Err(ConnectorError::Timeout)
    }
    fn transactions(
        &self,
        _: &str,
        _: &TransactionQuery,
    ) -> Result<Page<Transaction>, ConnectorError> {
        Err(ConnectorError::Timeout)
    }
    fn create_payment(&self, _: &str, _: &PaymentOrder) -> Result<Payment, ConnectorError> {
        Err(ConnectorError::Timeout)
    }
    fn payment(&self, _: &str) -> Result<Payment, ConnectorError> {
        Err(ConnectorError::Timeout)
    }
}

struct World {
    adapter: Arc<Adapter>,
    linked: common::Linked,
    records: Arc<Records>,
    app: KeyPair,
    id: String,
    account: String,
    spec: Spec,
}

fn world(permissions: &[Permission]) -> World {
    world_with_limits(permissions, None)
}

fn world_with_limits(permissions: &[Permission], limits: Option<PaymentLimits>) -> World {
    let (bank, app, client) = (
        KeyPair::generate(),
        KeyPair::generate(),
        KeyPair::generate(),
    );
    let sandbox = SandboxBank::seeded(11, Utc::now());
    let account = sandbox
        .account_ids()
        .into_iter()
        .find(|(id, _)| {
            let account = sandbox.account(id).unwrap();
            account.account_sub_type == "CurrentAccount" && account.currency == "GBP"
        })
        .unwrap()
        .0;
    let genesis = Genesis {
        network: "api".into(),
        members: vec![Member {
            did: bank.did().clone(),
            role: Role::Bank,
            peer_id: "peer".into(),
            name: "Bank".into(),
        }],
    };
    let mut node = Replica::open(MemoryStore::new(), &genesis).unwrap();
    let terms = ConsentTerms {
        app: app.did().clone(),
        bank: bank.did().clone(),
        accounts: vec![account.clone()],
        permissions: permissions.iter().copied().collect(),
        payment_limits: limits,
        purpose: "Budgeting".into(),
        valid_from: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        valid_until: Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
        proof_key: None,
        status: None,
    };
    let consent = block_on(issue_consent(&client, &terms)).unwrap();
    node.append_local(&bank, Event::consent_granted(consent.credential.clone()), 1)
        .unwrap();
    let decision = AppDecision {
        bank: bank.did().clone(),
        app: app.did().clone(),
        version: "1.0".into(),
        action: AppAction::Approve {
            permissions: Permission::ALL.iter().copied().collect::<BTreeSet<_>>(),
            rate_limit: None,
            origins: Default::default(),
        },
        time: 2,
    };
    node.append_local(&bank, Event::app_decided(&bank, decision), 2)
        .unwrap();
    let records = Arc::new(Records::default());
    let linked = common::linked(bank.did(), &client, std::slice::from_ref(&account));
    let adapter = Arc::new(Adapter {
        bank: bank.did().clone(),
        public_url: PUBLIC.into(),
        source: Arc::new(node.state().clone()),
        holders: linked.links.clone(),
        replay: ReplayCache::new(10_000),
        signatures: SignatureBatcher::new(),
        connector: RwLock::new(Arc::new(sandbox)),
        records: records.clone(),
        ledger: Arc::default(),
        check: Default::default(),
        unproven: Default::default(),
        limits: Default::default(),
        signer: None,
        resources: Default::default(),
        nonces: Default::default(),
    });
    World {
        adapter,
        linked,
        records,
        app,
        id: consent.id.to_string(),
        account,
        spec: Spec::load("uk-obie-v4.0/account-info-openapi.json"),
    }
}

impl World {
    /// A signed GET of `path_and_query` (relative to the AIS base).
    async fn get(&self, path_and_query: &str) -> (StatusCode, Value, String) {
        let path = path_and_query.split('?').next().unwrap();
        let url = format!("{PUBLIC}{AIS}{path}");
        let proof = sign_pop(
            &self.app,
            PopRequest {
                method: "GET",
                url: &url,
                access_token: &self.id,
            },
            Utc::now(),
        );
        let request = Request::get(format!("{AIS}{path_and_query}"))
            .header("authorization", format!("{SCHEME} {}", self.id))
            .header("dpop", proof)
            .header(APP_VERSION, "1.0")
            .header(INTERACTION_ID, "5b9f6a0e-6c1f-4c3e-9d0a-2f1e3d4c5b6a")
            .body(Body::empty())
            .unwrap();
        let response = router(self.adapter.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let interaction = response.headers()[INTERACTION_ID]
            .to_str()
            .unwrap()
            .to_owned();
        let body = to_bytes(response.into_body(), 1 << 22).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap(), interaction)
    }

    /// A signed POST of a domestic payment of `amount` GBP with `key` as idempotency key.
    async fn pay(&self, amount: &str, key: Option<&str>) -> (StatusCode, Value) {
        self.pay_to("UK.OBIE.SortCodeAccountNumber", amount, key)
            .await
    }

    /// [`World::pay`] to a creditor account of `scheme`.
    async fn pay_to(&self, scheme: &str, amount: &str, key: Option<&str>) -> (StatusCode, Value) {
        let url = format!("{PUBLIC}/open-banking/v4.0/pisp/domestic-payments");
        let proof = sign_pop(
            &self.app,
            PopRequest {
                method: "POST",
                url: &url,
                access_token: &self.id,
            },
            Utc::now(),
        );
        let body = serde_json::json!({
            "Data": {
                "ConsentId": self.id,
                "Initiation": {
                    "InstructionIdentification": "INSTR-1",
                    "EndToEndIdentification": "E2E-1",
                    "InstructedAmount": { "Amount": amount, "Currency": "GBP" },
                    "CreditorAccount": {
                        "SchemeName": scheme,
                        "Identification": "40123412345678",
                        "Name": "Landlord Ltd",
                    },
                    "RemittanceInformation": { "Unstructured": ["RENT NOV"] },
                },
            },
            "Risk": {},
        });
        let mut request = Request::post("/open-banking/v4.0/pisp/domestic-payments")
            .header("authorization", format!("{SCHEME} {}", self.id))
            .header("dpop", proof)
            .header(APP_VERSION, "1.0")
            .header("content-type", "application/json");
        if let Some(key) = key {
            request = request.header("x-idempotency-key", key);
        }
        let response = router(self.adapter.clone())
            .oneshot(request.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    /// A signed GET of a payment.
    async fn payment(&self, id: &str) -> (StatusCode, Value) {
        let path = format!("/open-banking/v4.0/pisp/domestic-payments/{id}");
        let proof = sign_pop(
            &self.app,
            PopRequest {
                method: "GET",
                url: &format!("{PUBLIC}{path}"),
                access_token: &self.id,
            },
            Utc::now(),
        );
        let request = Request::get(path)
            .header("authorization", format!("{SCHEME} {}", self.id))
            .header("dpop", proof)
            .header(APP_VERSION, "1.0")
            .body(Body::empty())
            .unwrap();
        let response = router(self.adapter.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    /// Asserts `body` is valid for the official schema of `template`'s `status` answer.
    fn assert_valid(&self, template: &str, status: &str, body: &Value) {
        let schema = self.spec.response_schema(template, "get", status);
        let problems = self.spec.check(schema, body);
        assert!(
            problems.is_empty(),
            "{template} {status}: {problems:#?}\n{body:#}"
        );
    }
}

const EVERYTHING: [Permission; 6] = [
    Permission::ReadAccountsDetail,
    Permission::ReadBalances,
    Permission::ReadTransactionsDetail,
    Permission::ReadTransactionsCredits,
    Permission::ReadTransactionsDebits,
    Permission::ReadAccountsBasic,
];

#[tokio::test]
async fn every_endpoint_answers_with_a_body_the_official_schema_accepts() {
    let w = world(&EVERYTHING);
    let account = w.account.clone();
    let (status, body, interaction) = w.get("/accounts").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        interaction, "5b9f6a0e-6c1f-4c3e-9d0a-2f1e3d4c5b6a",
        "the caller's id is echoed"
    );
    w.assert_valid("/accounts", "200", &body);
    assert_eq!(body["Data"]["Account"][0]["AccountId"], account.as_str());
    assert!(
        body["Data"]["Account"][0]["Account"][0]["Identification"].is_string(),
        "Detail shows the number"
    );

    let (status, body, _) = w.get(&format!("/accounts/{account}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    w.assert_valid("/accounts/{AccountId}", "200", &body);

    let (status, body, _) = w.get(&format!("/accounts/{account}/balances")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    w.assert_valid("/accounts/{AccountId}/balances", "200", &body);
    assert_eq!(body["Data"]["Balance"][0]["Type"], "ITAV");

    let (status, body, _) = w.get(&format!("/accounts/{account}/transactions")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    w.assert_valid("/accounts/{AccountId}/transactions", "200", &body);
    assert!(!body["Data"]["Transaction"].as_array().unwrap().is_empty());
    assert_eq!(
        body["Links"]["Self"],
        format!("{PUBLIC}{AIS}/accounts/{account}/transactions")
    );

    let records = w.records.0.lock().unwrap();
    assert_eq!(records.len(), 4, "one access record per call");
    assert!(
        records
            .iter()
            .all(|(_, _, outcome)| *outcome == Outcome::Served)
    );
    assert_eq!(records[2].1, "GET /aisp/accounts/{AccountId}/balances");
}

#[tokio::test]
async fn basic_permissions_hide_account_numbers_and_narratives() {
    let w = world(&[
        Permission::ReadAccountsBasic,
        Permission::ReadTransactionsBasic,
        Permission::ReadTransactionsDebits,
    ]);
    let (_, body, _) = w.get("/accounts").await;
    assert!(
        body["Data"]["Account"][0].get("Account").is_none(),
        "{body}"
    );
    let (status, body, _) = w
        .get(&format!("/accounts/{}/transactions", w.account))
        .await;
    assert_eq!(status, StatusCode::OK);
    let transactions = body["Data"]["Transaction"].as_array().unwrap();
    assert!(!transactions.is_empty());
    assert!(
        transactions
            .iter()
            .all(|t| t["CreditDebitIndicator"] == "Debit"),
        "debits only"
    );
    assert!(
        transactions
            .iter()
            .all(|t| t.get("TransactionInformation").is_none())
    );
}

#[tokio::test]
async fn transactions_filter_by_booking_date_and_page_with_links() {
    let w = world(&EVERYTHING);
    let account = w.account.clone();
    let (_, all, _) = w.get(&format!("/accounts/{account}/transactions")).await;
    let all = all["Data"]["Transaction"].as_array().unwrap().clone();
    let middle = all[all.len() / 2]["BookingDateTime"]
        .as_str()
        .unwrap()
        .to_owned();
    let from = &middle[..19];
    let (status, recent, _) = w
        .get(&format!(
            "/accounts/{account}/transactions?fromBookingDateTime={from}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{recent}");
    let recent = recent["Data"]["Transaction"].as_array().unwrap();
    assert!(!recent.is_empty() && recent.len() < all.len());
    assert!(
        recent
            .iter()
            .all(|t| t["BookingDateTime"].as_str().unwrap()[..19] >= *from)
    );

    let (status, body, _) = w
        .get(&format!(
            "/accounts/{account}/transactions?fromBookingDateTime=last-week"
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    w.assert_valid("/accounts/{AccountId}/transactions", "400", &body);
    assert_eq!(body["Code"], "invalid_date_time");
}

#[tokio::test]
async fn refusals_are_obie_errors_and_are_recorded() {
    let w = world(&[Permission::ReadAccountsBasic]);
    let (status, body, interaction) = w.get(&format!("/accounts/{}/balances", w.account)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    w.assert_valid("/accounts/{AccountId}/balances", "403", &body);
    assert_eq!(body["Code"], "permission_missing");
    assert_eq!(interaction, "5b9f6a0e-6c1f-4c3e-9d0a-2f1e3d4c5b6a");
    let records = w.records.0.lock().unwrap();
    assert_eq!(
        records.last().unwrap().2,
        Outcome::Refused {
            code: "permission_missing".into()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_with_forged_proofs_among_them_are_each_judged_alone() {
    let w = Arc::new(world(&[
        Permission::ReadAccountsBasic,
        Permission::ReadBalances,
    ]));
    let path = format!("/accounts/{}/balances", w.account);
    let url = format!("{PUBLIC}{AIS}{path}");
    let thief = KeyPair::generate();
    let calls: Vec<_> = (0..64)
        .map(|i| {
            let (w, url, path) = (w.clone(), url.clone(), path.clone());
            let forged = i % 5 == 2;
            // A forgery: the thief's signature under a header naming the app's key.
            let proof = {
                let request = PopRequest {
                    method: "GET",
                    url: &url,
                    access_token: &w.id,
                };
                let ours = sign_pop(&w.app, request, Utc::now());
                if forged {
                    let theirs = sign_pop(&thief, request, Utc::now());
                    let header = ours.split('.').next().unwrap();
                    format!("{header}.{}", theirs.split_once('.').unwrap().1)
                } else {
                    ours
                }
            };
            tokio::spawn(async move {
                let request = Request::get(format!("{AIS}{path}"))
                    .header("authorization", format!("{SCHEME} {}", w.id))
                    .header("dpop", proof)
                    .header(APP_VERSION, "1.0")
                    .body(Body::empty())
                    .unwrap();
                let response = router(w.adapter.clone()).oneshot(request).await.unwrap();
                let status = response.status();
                let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
                let body: Value = serde_json::from_slice(&body).unwrap();
                (forged, status, body)
            })
        })
        .collect();
    let mut forgeries = 0;
    for call in calls {
        let (forged, status, body) = call.await.unwrap();
        if forged {
            forgeries += 1;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
            assert_eq!(body["Code"], "proof_bad_signature");
        } else {
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
    // A forgery under the client's consent id leaves no record on the shared log: it is
    // counted on this node only.
    let records = w.records.0.lock().unwrap();
    assert_eq!(records.len(), 64 - forgeries);
    assert!(records.iter().all(|(_, _, o)| *o == Outcome::Served));
    assert_eq!(w.adapter.unproven.total(), forgeries as u64);
    let noted = w.adapter.unproven.recent();
    assert!(
        noted.iter().all(|r| r.code == "proof_bad_signature"),
        "{noted:?}"
    );
}

#[tokio::test]
async fn a_call_without_credentials_is_refused_with_a_generated_interaction_id() {
    let w = world(&EVERYTHING);
    let request = Request::get(format!("{AIS}/accounts"))
        .body(Body::empty())
        .unwrap();
    let response = router(w.adapter.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let interaction = response.headers()[INTERACTION_ID]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(interaction.len(), 36, "a UUID: {interaction}");
    let body: Value =
        serde_json::from_slice(&to_bytes(response.into_body(), 1 << 20).await.unwrap()).unwrap();
    // OBIE defines no 401 body; the adapter still sends its error shape, for the TSP.
    let problems = w.spec.check(w.spec.schema("OBErrorResponse1"), &body);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(body["Code"], "missing_authorization");
    assert!(
        w.records.0.lock().unwrap().is_empty(),
        "no consent id, nothing to record against"
    );
}

#[tokio::test]
async fn unknown_paths_and_malformed_fapi_headers_get_obie_errors_with_an_interaction_id() {
    let w = world(&EVERYTHING);
    let call = |path: &str, headers: &[(&str, &str)]| {
        let mut request = Request::get(path.to_owned());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        router(w.adapter.clone()).oneshot(request.body(Body::empty()).unwrap())
    };
    let answer = |response: axum::response::Response| async move {
        let status = response.status();
        let interaction = response.headers()[INTERACTION_ID]
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value =
            serde_json::from_slice(&to_bytes(response.into_body(), 1 << 20).await.unwrap())
                .unwrap();
        (status, interaction, body)
    };
    // A resource the adapter does not serve is an OBIE 404 that echoes the caller's id.
    let id = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
    let response = call(&format!("{AIS}/no-such-resource"), &[(INTERACTION_ID, id)])
        .await
        .unwrap();
    let (status, interaction, body) = answer(response).await;
    assert_eq!((status, interaction.as_str()), (StatusCode::NOT_FOUND, id));
    assert_eq!(body["Code"], "not_found");
    // Each malformed FAPI header is named in a 400, answered with a fresh interaction id.
    for (name, value) in [
        (INTERACTION_ID, "not-a-uuid"),
        ("x-fapi-auth-date", "yesterday"),
        ("x-fapi-customer-ip-address", "999.1.1.1"),
    ] {
        let response = call(&format!("{AIS}/accounts"), &[(name, value)])
            .await
            .unwrap();
        let (status, interaction, body) = answer(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(body["Code"], "invalid_fapi_header");
        assert!(body["Message"].as_str().unwrap().contains(name), "{body}");
        assert_eq!(interaction.len(), 36, "a fresh UUID: {interaction}");
        assert_ne!(interaction, value);
    }
    assert!(
        w.records.0.lock().unwrap().is_empty(),
        "nothing was recorded"
    );
}

#[tokio::test]
async fn a_bank_core_that_times_out_gives_a_504_and_nothing_is_recorded_as_served() {
    let w = world(&EVERYTHING);
    w.adapter.replace_connector(Arc::new(Unresponsive));
    let (status, body, _) = w.get(&format!("/accounts/{}/balances", w.account)).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(body["Code"], "bank_timeout");
    assert_eq!(body["Errors"][0]["ErrorCode"].as_str().unwrap().len(), 4);
    let records = w.records.0.lock().unwrap();
    assert!(
        records
            .iter()
            .all(|(_, _, outcome)| *outcome != Outcome::Served)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bank_core_refusing_the_call_gives_a_502_bank_core_refused_without_its_details() {
    use consentnet_bank_adapter::mapping::{Mapping, MappingConnector};
    use consentnet_bank_adapter::simulators::{Style, router as core_router};
    let w = world(&EVERYTHING);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let core = format!("http://{}", listener.local_addr().unwrap());
    let sandbox = Arc::new(SandboxBank::seeded(11, Utc::now()));
    tokio::spawn(async move {
        axum::serve(listener, core_router(Style::Berlin, sandbox))
            .await
            .unwrap()
    });
    let path = std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("mappings/berlin-group.toml");
    let text = std::fs::read_to_string(path).unwrap();
    // A mapping that leaves out the core's mandatory X-Request-ID.
    let mut mapping =
        Mapping::parse("b.toml", &text.replace("X-Request-ID = \"{uuid}\"\n", "")).unwrap();
    mapping.base_url = core;
    let connector = Arc::new(MappingConnector::new(mapping));
    w.adapter.replace_connector(connector.clone());
    let (status, body, _) = w.get(&format!("/accounts/{}/balances", w.account)).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["Code"], "bank_core_refused");
    assert!(!body.to_string().contains("FORMAT_ERROR"), "{body}");
    // The bank sees the core's own status and code.
    let refusals = connector.core_refusals();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(
        (refusals[0].status, refusals[0].code.as_str()),
        (400, "FORMAT_ERROR")
    );
    // Its first request, making the core's own consent, was the one refused.
    assert_eq!(refusals[0].operation, "core_consent");
}

fn payer() -> World {
    world_with_limits(
        &[Permission::CreateDomesticPayments],
        Some(PaymentLimits {
            currency: "GBP".into(),
            max_per_payment: "100.00".into(),
            max_per_period: Some("150.00".into()),
            period: Some(Period::Day),
        }),
    )
}

#[tokio::test]
async fn a_payment_is_made_once_read_back_and_valid_for_the_official_schema() {
    let w = payer();
    let pis = Spec::load("uk-obie-v4.0/payment-initiation-openapi.json");
    let (status, body) = w.pay("75.50", Some("key-1")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let problems = pis.check(
        pis.response_schema("/domestic-payments", "post", "201"),
        &body,
    );
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(body["Data"]["Status"], "ACSC");
    assert_eq!(body["Data"]["ConsentId"], w.id.as_str());
    let id = body["Data"]["DomesticPaymentId"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, read) = w.payment(&id).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    let problems = pis.check(
        pis.response_schema("/domestic-payments/{DomesticPaymentId}", "get", "200"),
        &read,
    );
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(read["Data"]["Initiation"], body["Data"]["Initiation"]);
    // An unknown id is OBIE's Resource.NotFound: a 400, as the official file documents.
    let (status, unknown) = w.payment("pay-99999999").await;
    assert_eq!(
        (status, unknown["Code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("resource_not_found"))
    );
}

#[tokio::test]
async fn concurrent_retries_with_one_idempotency_key_make_exactly_one_payment() {
    let w = Arc::new(payer());
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let w = w.clone();
            tokio::spawn(async move { w.pay("60.00", Some("retry-key")).await })
        })
        .collect();
    let mut ids = BTreeSet::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.insert(
            body["Data"]["DomesticPaymentId"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(ids.len(), 1, "one payment: {ids:?}");
    // Counted once against the daily limit of 150.00: 60 + 60 fits, a third would not.
    assert_eq!(w.pay("60.00", Some("second")).await.0, StatusCode::CREATED);
    let (status, body) = w.pay("60.00", Some("third")).await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (StatusCode::FORBIDDEN, Some("payment_limit_exceeded"))
    );
}

#[tokio::test]
async fn payments_outside_the_limits_or_without_a_key_are_refused() {
    let w = payer();
    let (status, body) = w.pay("100.01", Some("big")).await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (StatusCode::FORBIDDEN, Some("payment_limit_exceeded"))
    );
    let (status, body) = w.pay("10.00", None).await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("missing_idempotency_key"))
    );
    let (status, body) = w.pay("ten pounds", Some("words")).await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_initiation"))
    );
    // The same key for a different payment is a conflict, never a second payment.
    assert_eq!(w.pay("10.00", Some("k")).await.0, StatusCode::CREATED);
    let (status, body) = w.pay("11.00", Some("k")).await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_conflict"))
    );
}

#[tokio::test]
async fn a_key_reused_for_another_order_is_a_conflict_even_after_the_bank_core_forgot_it() {
    let w = payer();
    assert_eq!(w.pay("75.00", Some("k")).await.0, StatusCode::CREATED);
    // The bank core restarts and forgets every idempotency key it saw.
    *w.adapter.connector.write().unwrap() = Arc::new(SandboxBank::seeded(11, Utc::now()));
    let (status, body) = w.pay("80.00", Some("k")).await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_conflict")),
        "{body}"
    );
    // Neither paid nor counted: 75 + 60 fits the day's 150, another 60 does not.
    assert_eq!(w.pay("60.00", Some("n")).await.0, StatusCode::CREATED);
    let (status, body) = w.pay("60.00", Some("m")).await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (StatusCode::FORBIDDEN, Some("payment_limit_exceeded")),
        "{body}"
    );
}

#[tokio::test]
async fn a_payment_not_sent_as_json_or_too_large_gets_an_obie_error_and_nothing_is_paid() {
    let w = payer();
    let send = |content_type: &'static str, body: String| {
        let adapter = w.adapter.clone();
        async move {
            let request = Request::post("/open-banking/v4.0/pisp/domestic-payments")
                .header("content-type", content_type)
                .header(INTERACTION_ID, "9c1d2e3f-4a5b-4c6d-8e7f-a0b1c2d3e4f5")
                .body(Body::from(body))
                .unwrap();
            let response = router(adapter).oneshot(request).await.unwrap();
            let status = response.status();
            let interaction = response.headers()[INTERACTION_ID]
                .to_str()
                .unwrap()
                .to_owned();
            let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
            (
                status,
                serde_json::from_slice::<Value>(&body).unwrap(),
                interaction,
            )
        }
    };
    let (status, body, interaction) = send("text/plain", "{}".into()).await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        )
    );
    assert_eq!(interaction, "9c1d2e3f-4a5b-4c6d-8e7f-a0b1c2d3e4f5");
    let problems = w.spec.check(w.spec.schema("OBErrorResponse1"), &body);
    assert!(problems.is_empty(), "{problems:?}");
    let (status, body, _) = send("application/json", "x".repeat(MAX_PAYMENT_BODY + 1)).await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large"))
    );
    let problems = w.spec.check(w.spec.schema("OBErrorResponse1"), &body);
    assert!(problems.is_empty(), "{problems:?}");
    assert!(w.records.0.lock().unwrap().is_empty(), "nothing recorded");
}

#[tokio::test]
async fn an_app_over_its_rate_gets_429_with_retry_after_and_nothing_is_recorded() {
    let mut w = world(&EVERYTHING);
    w.adapter = Arc::new(Adapter {
        bank: w.adapter.bank.clone(),
        public_url: PUBLIC.into(),
        source: w.adapter.source.clone(),
        holders: w.linked.links.clone(),
        replay: ReplayCache::new(10_000),
        signatures: SignatureBatcher::new(),
        connector: RwLock::new(w.adapter.connector()),
        records: w.records.clone(),
        ledger: Arc::default(),
        check: Default::default(),
        unproven: Default::default(),
        limits: AppLimits::new(Rate {
            per_second: 1,
            burst: 2,
        }),
        signer: None,
        resources: Default::default(),
        nonces: Default::default(),
    });
    assert_eq!(w.get("/accounts").await.0, StatusCode::OK);
    assert_eq!(w.get("/accounts").await.0, StatusCode::OK);
    let request = Request::get(format!("{AIS}/accounts"))
        .header("authorization", format!("{SCHEME} {}", w.id))
        .header(
            "dpop",
            sign_pop(
                &w.app,
                PopRequest {
                    method: "GET",
                    url: &format!("{PUBLIC}{AIS}/accounts"),
                    access_token: &w.id,
                },
                Utc::now(),
            ),
        )
        .header(APP_VERSION, "1.0")
        .body(Body::empty())
        .unwrap();
    let response = router(w.adapter.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    let body: Value =
        serde_json::from_slice(&to_bytes(response.into_body(), 1 << 20).await.unwrap()).unwrap();
    assert_eq!(body["Code"], "rate_limited");
    let problems = w.spec.check(w.spec.schema("OBErrorResponse1"), &body);
    assert!(problems.is_empty(), "{problems:?}");
    // Two served calls on the log; the refused one stays on this node.
    assert_eq!(w.records.0.lock().unwrap().len(), 2);
    assert_eq!(w.adapter.unproven.total(), 1);
}

#[tokio::test]
async fn the_adapter_publishes_an_openapi_document_of_every_route_it_serves() {
    let w = world(&EVERYTHING);
    let request = Request::get("/open-banking/v4.0/openapi.json")
        .body(Body::empty())
        .unwrap();
    let response = router(w.adapter.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let document: Value =
        serde_json::from_slice(&to_bytes(response.into_body(), 1 << 20).await.unwrap()).unwrap();
    assert_eq!(document["openapi"], "3.0.3");
    assert_eq!(document["servers"][0]["url"], PUBLIC);
    for operation in consentnet_bank_adapter::enforce::Operation::ALL {
        let (method, template) = operation.name().split_once(' ').unwrap();
        let path = format!("/open-banking/v4.0{template}");
        let spec = &document["paths"][path.as_str()][method.to_ascii_lowercase()];
        assert!(spec.is_object(), "{method} {path} is documented");
        assert!(spec["security"].is_array());
        // And the route answers: without credentials it is refused, not missing.
        let concrete = path
            .replace("{AccountId}", &w.account)
            .replace("{StatementId}", "st-1")
            .replace("{DomesticPaymentId}", "pay-1");
        let request = Request::builder()
            .method(method)
            .uri(concrete)
            .header("content-type", "application/json")
            .body(Body::empty())
            .unwrap();
        let status = router(w.adapter.clone())
            .oneshot(request)
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
}

#[tokio::test]
async fn the_payment_ledger_survives_a_restart_from_its_journal() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("payments.jsonl");
    let mut w = payer();
    let reopen = |w: &World| {
        Arc::new(Adapter {
            bank: w.adapter.bank.clone(),
            public_url: PUBLIC.into(),
            source: w.adapter.source.clone(),
            holders: w.linked.links.clone(),
            replay: ReplayCache::new(10_000),
            signatures: SignatureBatcher::new(),
            connector: RwLock::new(w.adapter.connector()),
            records: w.records.clone(),
            ledger: Arc::new(Ledger::open(&journal).unwrap()),
            check: Default::default(),
            unproven: Default::default(),
            limits: Default::default(),
            signer: None,
            resources: Default::default(),
            nonces: Default::default(),
        })
    };
    w.adapter = reopen(&w);
    let (status, first) = w.pay("60.00", Some("one")).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(w.pay("60.00", Some("two")).await.0, StatusCode::CREATED);
    // A refused payment is counted, then cancelled: it does not use up the limit.
    assert_eq!(
        w.pay("100.01", Some("too-big")).await.0,
        StatusCode::FORBIDDEN
    );

    // The node restarts: a new ledger from the same journal.
    w.adapter = reopen(&w);
    let (status, body) = w.pay("60.00", Some("three")).await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (StatusCode::FORBIDDEN, Some("payment_limit_exceeded")),
        "the day's 120.00 is remembered"
    );
    let (status, again) = w.pay("60.00", Some("one")).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(
        again["Data"]["DomesticPaymentId"],
        first["Data"]["DomesticPaymentId"]
    );
    let id = first["Data"]["DomesticPaymentId"].as_str().unwrap();
    assert_eq!(
        w.payment(id).await.0,
        StatusCode::OK,
        "ownership is remembered"
    );

    // A torn last line (a crash mid-write) is ignored; damage elsewhere is an error.
    let mut text = std::fs::read_to_string(&journal).unwrap();
    text.push_str("{\"op\":\"count\",\"ke");
    std::fs::write(&journal, &text).unwrap();
    let mut torn = reopen(&w);
    std::mem::swap(&mut w.adapter, &mut torn);
    assert_eq!(
        w.pay("1.00", Some("after-the-crash")).await.0,
        StatusCode::CREATED
    );
    assert!(
        Ledger::open(&journal).is_ok(),
        "the torn line was cut, the next one is whole"
    );
    std::fs::write(&journal, format!("garbage\n{text}")).unwrap();
    assert!(Ledger::open(&journal).is_err());
}

/// Every account information permission, Detail where there is a choice.
const ALL_AIS: [Permission; 14] = [
    Permission::ReadAccountsDetail,
    Permission::ReadBalances,
    Permission::ReadBeneficiariesDetail,
    Permission::ReadDirectDebits,
    Permission::ReadTransactionsDetail,
    Permission::ReadTransactionsCredits,
    Permission::ReadTransactionsDebits,
    Permission::ReadStatementsDetail,
    Permission::ReadProducts,
    Permission::ReadOffers,
    Permission::ReadParty,
    Permission::ReadPartyPSU,
    Permission::ReadScheduledPaymentsDetail,
    Permission::ReadStandingOrdersDetail,
];

#[tokio::test]
async fn every_account_information_resource_answers_in_the_official_schema_per_account_and_in_bulk()
{
    let w = world(&ALL_AIS);
    let account = w.account.clone();
    // (path template, the array in Data, how many the sandbox's current account has)
    let lists = [
        ("/balances", "Balance", 2),
        ("/beneficiaries", "Beneficiary", 2),
        ("/direct-debits", "DirectDebit", 3),
        ("/standing-orders", "StandingOrder", 2),
        ("/scheduled-payments", "ScheduledPayment", 1),
        ("/statements", "Statement", 3),
        ("/product", "Product", 1),
        ("/parties", "Party", 1),
    ];
    for (suffix, key, count) in lists {
        let template = format!("/accounts/{{AccountId}}{suffix}");
        let (status, body, _) = w.get(&format!("/accounts/{account}{suffix}")).await;
        assert_eq!(status, StatusCode::OK, "{template}: {body}");
        w.assert_valid(&template, "200", &body);
        let list = body["Data"][key].as_array().unwrap();
        assert_eq!(list.len(), count, "{template}: {body}");
        assert!(
            list.iter()
                .all(|r| r["AccountId"] == account.as_str() || key == "Party")
        );
        // The bulk form lists the same for the consent's one account.
        let bulk = match suffix {
            "/product" => "/products".to_owned(),
            "/parties" => continue,
            other => other.to_owned(),
        };
        let (status, all, _) = w.get(&bulk).await;
        assert_eq!(status, StatusCode::OK, "{bulk}: {all}");
        w.assert_valid(&bulk, "200", &all);
        assert_eq!(all["Data"][key], body["Data"][key], "{bulk}");
    }
    // Detail shows the creditor's account and the statement's closing balance.
    let (_, orders, _) = w.get(&format!("/accounts/{account}/standing-orders")).await;
    assert!(orders["Data"]["StandingOrder"][0]["CreditorAccount"]["Identification"].is_string());
    let (_, statements, _) = w.get(&format!("/accounts/{account}/statements")).await;
    let newest = &statements["Data"]["Statement"][0];
    assert_eq!(
        newest["StatementAmount"][0]["Type"],
        "UK.OBIE.ClosingBalance"
    );

    // One statement, and the transactions of its period only.
    let statement = newest["StatementId"].as_str().unwrap();
    let (status, one, _) = w
        .get(&format!("/accounts/{account}/statements/{statement}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    w.assert_valid(
        "/accounts/{AccountId}/statements/{StatementId}",
        "200",
        &one,
    );
    let (status, moves, _) = w
        .get(&format!(
            "/accounts/{account}/statements/{statement}/transactions"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{moves}");
    w.assert_valid(
        "/accounts/{AccountId}/statements/{StatementId}/transactions",
        "200",
        &moves,
    );
    let period = |field: &str| {
        chrono::DateTime::parse_from_rfc3339(newest[field].as_str().unwrap()).unwrap()
    };
    let booked = moves["Data"]["Transaction"].as_array().unwrap();
    assert!(!booked.is_empty());
    for transaction in booked {
        let at =
            chrono::DateTime::parse_from_rfc3339(transaction["BookingDateTime"].as_str().unwrap())
                .unwrap();
        assert!(at >= period("StartDateTime") && at <= period("EndDateTime"));
    }
    let (status, missing, _) = w
        .get(&format!("/accounts/{account}/statements/st-none"))
        .await;
    assert_eq!(
        (status, missing["Code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("resource_not_found"))
    );

    // The client's own party and the account's principal.
    for path in ["/party".to_owned(), format!("/accounts/{account}/party")] {
        let (status, party, _) = w.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {party}");
        w.assert_valid(
            if path == "/party" {
                "/party"
            } else {
                "/accounts/{AccountId}/party"
            },
            "200",
            &party,
        );
        assert_eq!(party["Data"]["Party"]["AccountRole"], "UK.OBIE.Principal");
    }

    // Bulk transactions: every consented account, newest first.
    let (status, all, _) = w.get("/transactions").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    w.assert_valid("/transactions", "200", &all);
    let times: Vec<&str> = all["Data"]["Transaction"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["BookingDateTime"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");

    // What this bank does not offer is a 404 that says so, after the consent check.
    for path in [
        format!("/accounts/{account}/offers"),
        "/offers".to_owned(),
        format!("/accounts/{account}/statements/{statement}/file"),
    ] {
        let (status, body, _) = w.get(&path).await;
        assert_eq!(
            (status, body["Code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_offered")),
            "{path}"
        );
    }
}

#[tokio::test]
async fn basic_permissions_hide_creditor_accounts_and_statement_amounts() {
    let w = world(&[
        Permission::ReadAccountsBasic,
        Permission::ReadBeneficiariesBasic,
        Permission::ReadStandingOrdersBasic,
        Permission::ReadScheduledPaymentsBasic,
        Permission::ReadStatementsBasic,
    ]);
    let account = w.account.clone();
    for (suffix, key) in [
        ("beneficiaries", "Beneficiary"),
        ("standing-orders", "StandingOrder"),
        ("scheduled-payments", "ScheduledPayment"),
    ] {
        let (status, body, _) = w.get(&format!("/accounts/{account}/{suffix}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let list = body["Data"][key].as_array().unwrap();
        assert!(!list.is_empty());
        assert!(
            list.iter().all(|r| r.get("CreditorAccount").is_none()),
            "{body}"
        );
    }
    let (_, statements, _) = w.get(&format!("/accounts/{account}/statements")).await;
    assert!(
        statements["Data"]["Statement"][0]
            .get("StatementAmount")
            .is_none()
    );
    // The file needs Detail: Basic is refused before anything is looked up.
    let statement = statements["Data"]["Statement"][0]["StatementId"]
        .as_str()
        .unwrap();
    let (status, body, _) = w
        .get(&format!("/accounts/{account}/statements/{statement}/file"))
        .await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (StatusCode::FORBIDDEN, Some("permission_missing"))
    );
}

#[tokio::test]
async fn each_resource_needs_its_own_permission_per_account_and_in_bulk() {
    let w = world(&[Permission::ReadAccountsBasic, Permission::ReadBalances]);
    let account = w.account.clone();
    for path in [
        format!("/accounts/{account}/direct-debits"),
        "/direct-debits".to_owned(),
        format!("/accounts/{account}/standing-orders"),
        "/scheduled-payments".to_owned(),
        "/party".to_owned(),
        "/transactions".to_owned(),
    ] {
        let (status, body, _) = w.get(&path).await;
        assert_eq!(
            (status, body["Code"].as_str()),
            (StatusCode::FORBIDDEN, Some("permission_missing")),
            "{path}"
        );
    }
    let (status, _, _) = w.get("/balances").await;
    assert_eq!(status, StatusCode::OK);
    // Another account than the consent's is refused before the core is asked.
    let (status, body, _) = w.get("/accounts/acc-0000000000000000/balances").await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (StatusCode::FORBIDDEN, Some("account_not_in_consent"))
    );
}

#[tokio::test]
async fn a_payment_the_official_schema_refuses_is_refused_naming_the_field_and_nothing_is_paid() {
    let w = payer();
    let (status, body) = w
        .pay_to("UK.OBIE.NoSuchScheme", "10.00", Some("key-schema"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["Code"], "invalid_initiation");
    assert!(
        body["Message"].as_str().unwrap().contains("SchemeName"),
        "{body}"
    );
    // Nothing was counted: the whole day's 150.00 is still there to pay.
    let (status, body) = w.pay("75.50", Some("key-after")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = w.pay("74.50", Some("key-after-2")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// A payer allowed every kind of domestic payment: 100.00 a payment, 150.00 a month.
fn future_payer() -> World {
    world_with_limits(
        &[
            Permission::CreateDomesticPayments,
            Permission::CreateDomesticScheduledPayments,
            Permission::CreateDomesticStandingOrders,
        ],
        Some(PaymentLimits {
            currency: "GBP".into(),
            max_per_payment: "100.00".into(),
            max_per_period: Some("150.00".into()),
            period: Some(Period::Month),
        }),
    )
}

/// 09:00 on `day` of the month `months` after this one.
fn in_months(months: u32, day: u32) -> DateTime<Utc> {
    use chrono::Datelike as _;
    let this = Utc::now().date_naive().with_day(1).unwrap();
    let month = this
        .checked_add_months(chrono::Months::new(months))
        .unwrap();
    month
        .with_day(day)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap()
        .and_utc()
}

fn creditor() -> Value {
    serde_json::json!({
        "SchemeName": "UK.OBIE.SortCodeAccountNumber",
        "Identification": "40123412345678",
        "Name": "Landlord Ltd",
    })
}

fn scheduled(amount: &str, at: DateTime<Utc>) -> Value {
    serde_json::json!({
        "InstructionIdentification": "SCH-1",
        "EndToEndIdentification": "E2E-SCH-1",
        "RequestedExecutionDateTime": at.to_rfc3339(),
        "InstructedAmount": { "Amount": amount, "Currency": "GBP" },
        "CreditorAccount": creditor(),
    })
}

fn standing(amount: &str, frequency: &str, first: DateTime<Utc>, count: &str) -> Value {
    serde_json::json!({
        "NumberOfPayments": count,
        "FirstPaymentAmount": { "Amount": amount, "Currency": "GBP" },
        "CreditorAccount": creditor(),
        "RemittanceInformation": { "Unstructured": ["RENT"] },
        "MandateRelatedInformation": {
            "FirstPaymentDateTime": first.to_rfc3339(),
            "Frequency": { "Type": frequency },
        },
    })
}

impl World {
    /// A signed request to the payment initiation API: a POST of `initiation` to
    /// `resource` with `key`, or (without an initiation) a GET of `resource`.
    async fn pis(
        &self,
        resource: &str,
        initiation: Option<Value>,
        key: &str,
    ) -> (StatusCode, Value) {
        let path = format!("/open-banking/v4.0/pisp/{resource}");
        let method = if initiation.is_some() { "POST" } else { "GET" };
        let proof = sign_pop(
            &self.app,
            PopRequest {
                method,
                url: &format!("{PUBLIC}{path}"),
                access_token: &self.id,
            },
            Utc::now(),
        );
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("{SCHEME} {}", self.id))
            .header("dpop", proof)
            .header(APP_VERSION, "1.0")
            .header("content-type", "application/json")
            .header("x-idempotency-key", key);
        let body = match initiation {
            Some(initiation) => serde_json::json!({
                "Data": { "ConsentId": self.id, "Initiation": initiation },
                "Risk": {},
            })
            .to_string(),
            None => String::new(),
        };
        let response = router(self.adapter.clone())
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }
}

#[tokio::test]
async fn scheduled_payments_and_standing_orders_are_made_once_and_read_back_in_the_official_schema()
{
    let w = future_payer();
    let pis = Spec::load("uk-obie-v4.0/payment-initiation-openapi.json");
    let check = |template: &str, method: &str, status: &str, body: &Value| {
        let problems = pis.check(pis.response_schema(template, method, status), body);
        assert!(problems.is_empty(), "{template}: {problems:#?}\n{body:#}");
    };
    for (resource, initiation, id_field) in [
        (
            "domestic-scheduled-payments",
            scheduled("40.00", in_months(1, 10)),
            "DomesticScheduledPaymentId",
        ),
        (
            "domestic-standing-orders",
            standing("25.00", "MNTH", in_months(2, 1), "3"),
            "DomesticStandingOrderId",
        ),
    ] {
        let (status, made) = w.pis(resource, Some(initiation.clone()), resource).await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        check(&format!("/{resource}"), "post", "201", &made);
        assert_eq!(made["Data"]["Initiation"], initiation);
        let id = made["Data"][id_field].as_str().unwrap().to_owned();
        // A retry answers the same order; nothing is made or counted twice.
        let (status, again) = w.pis(resource, Some(initiation.clone()), resource).await;
        assert_eq!(
            (status, &again["Data"][id_field]),
            (StatusCode::CREATED, &made["Data"][id_field])
        );
        let (status, read) = w.pis(&format!("{resource}/{id}"), None, "-").await;
        assert_eq!(status, StatusCode::OK, "{read}");
        check(&format!("/{resource}/{{{id_field}}}"), "get", "200", &read);
        assert_eq!(
            read["Data"]["CreationDateTime"],
            made["Data"]["CreationDateTime"]
        );
        let (status, unknown) = w.pis(&format!("{resource}/no-such-id"), None, "-").await;
        assert_eq!(
            (status, unknown["Code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("resource_not_found"))
        );
    }
    // The bank's own lists show them to account information apps.
    let core = w.adapter.connector.read().unwrap().clone();
    let scheduled = core.scheduled_payments(&w.account).unwrap();
    assert!(
        scheduled
            .iter()
            .any(|s| s.execution == in_months(1, 10) && s.amount.minor == 4_000)
    );
    let orders = core.standing_orders(&w.account).unwrap();
    let order = orders
        .iter()
        .find(|o| o.frequency == "MNTH" && o.amount.minor == 2_500)
        .unwrap();
    assert_eq!(order.next_payment, Some(in_months(2, 1)));
}

#[tokio::test]
async fn every_instalment_counts_against_the_limit_of_the_month_it_falls_due_in() {
    let w = future_payer();
    // 100.00 in each of three months from two months on: each month has 50.00 left.
    let (status, body) = w
        .pis(
            "domestic-standing-orders",
            Some(standing("100.00", "MNTH", in_months(2, 1), "3")),
            "rent",
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = w
        .pis(
            "domestic-scheduled-payments",
            Some(scheduled("60.00", in_months(3, 15))),
            "too-much",
        )
        .await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (StatusCode::FORBIDDEN, Some("payment_limit_exceeded")),
        "{body}"
    );
    let (status, body) = w
        .pis(
            "domestic-scheduled-payments",
            Some(scheduled("50.00", in_months(3, 15))),
            "fits",
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The month after the last instalment is untouched, and so is this month.
    let (status, body) = w
        .pis(
            "domestic-scheduled-payments",
            Some(scheduled("100.00", in_months(5, 15))),
            "later",
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // A weekly order of 40.00 from four months on puts 160.00 in a month: refused whole.
    let (status, body) = w
        .pis(
            "domestic-standing-orders",
            Some(standing("40.00", "WEEK", in_months(6, 1), "4")),
            "weekly",
        )
        .await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (StatusCode::FORBIDDEN, Some("payment_limit_exceeded")),
        "{body}"
    );
}

#[tokio::test]
async fn schedules_outside_the_consent_or_not_offered_are_refused_and_nothing_is_counted() {
    let w = future_payer();
    let after_consent = Utc.with_ymd_and_hms(2030, 6, 1, 9, 0, 0).unwrap();
    let refused = [
        (
            "domestic-scheduled-payments",
            scheduled("10.00", after_consent),
            403,
            "schedule_outside_consent",
        ),
        (
            "domestic-scheduled-payments",
            scheduled("10.00", Utc::now() - chrono::Duration::hours(1)),
            400,
            "invalid_initiation",
        ),
        (
            "domestic-standing-orders",
            standing("10.00", "YEAR", in_months(1, 1), "10"),
            403,
            "schedule_outside_consent",
        ),
        (
            "domestic-standing-orders",
            standing("10.00", "ADHO", in_months(1, 1), "3"),
            400,
            "invalid_initiation",
        ),
        (
            "domestic-standing-orders",
            standing("10.00", "QtrDay:ENGLISH", in_months(1, 1), "3"),
            400,
            "invalid_initiation",
        ),
        (
            "domestic-standing-orders",
            standing("10.00", "DAIL", in_months(1, 1), "5000"),
            400,
            "invalid_initiation",
        ),
    ];
    for (n, (resource, initiation, status, code)) in refused.into_iter().enumerate() {
        let (got, body) = w
            .pis(resource, Some(initiation), &format!("refused-{n}"))
            .await;
        assert_eq!(
            (got.as_u16(), body["Code"].as_str()),
            (status, Some(code)),
            "{n}: {body}"
        );
    }
    let mut open_ended = standing("10.00", "MNTH", in_months(1, 1), "3");
    open_ended
        .as_object_mut()
        .unwrap()
        .remove("NumberOfPayments");
    let (status, body) = w
        .pis("domestic-standing-orders", Some(open_ended), "open")
        .await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_initiation"))
    );
    assert!(
        body["Message"].as_str().unwrap().contains("open-ended"),
        "{body}"
    );
    // Nothing was counted: next month's whole 150.00 is still there.
    let (status, body) = w
        .pis(
            "domestic-standing-orders",
            Some(standing("75.00", "IntrvlDay:02", in_months(1, 1), "2")),
            "whole",
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn each_kind_of_payment_needs_its_own_permission() {
    let w = payer();
    let (status, body) = w
        .pis(
            "domestic-standing-orders",
            Some(standing("10.00", "MNTH", in_months(1, 1), "2")),
            "so",
        )
        .await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (StatusCode::FORBIDDEN, Some("permission_missing")),
        "{body}"
    );
    let (status, body) = w
        .pis(
            "domestic-scheduled-payments",
            Some(scheduled("10.00", in_months(1, 1))),
            "sp",
        )
        .await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (StatusCode::FORBIDDEN, Some("permission_missing")),
        "{body}"
    );
}
