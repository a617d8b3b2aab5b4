//! The node HTTP API driven with `oneshot` over a real RocksDB log: every submission kind, every query, and a specific error for each kind of bad input, with nothing stored.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use chrono::{TimeZone, Utc};
use consentnet_consent_chain::event::{AppAction, AppDecision, AppManifest, Platform};
use consentnet_consent_chain::{Event, Genesis, Member, RocksStore, Role};
use consentnet_identity::consent::block_on;
use consentnet_identity::{
    ConsentTerms, KeyPair, Permission, Revocation, VerifiedConsent, issue_consent,
};
use consentnet_node::api::{AppState, app};
use consentnet_node::core::{NodeService, Submitter};
use consentnet_node::p2p::peer_id_of;
use serde_json::{Value, json};
use tower::ServiceExt;

const LIMIT: usize = 64 * 1024;

struct Fixture {
    _dir: tempfile::TempDir,
    /// Taken on drop, to close the log before the test process exits.
    state: Option<AppState>,
    bank: KeyPair,
    tsp: KeyPair,
}

fn member(key: &KeyPair, role: Role, name: &str) -> Member {
    Member {
        did: key.did().clone(),
        role,
        peer_id: peer_id_of(key.did()).to_string(),
        name: name.into(),
    }
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let bank = KeyPair::generate();
    let tsp = KeyPair::generate();
    let genesis = Genesis {
        network: "api-test".into(),
        members: vec![
            member(&bank, Role::Bank, "Bank"),
            member(&tsp, Role::Tsp, "TSP"),
        ],
    };
    let store = RocksStore::open(&dir.path().join("log")).unwrap();
    let service = Arc::new(NodeService::open(store, genesis, bank.clone()).unwrap());
    Fixture {
        _dir: dir,
        state: Some(AppState {
            submitter: Submitter::start(service.clone(), None).unwrap(),
            service,
            network: None,
            bank: None,
        }),
        bank,
        tsp,
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // The submitter thread lets go of the log once its queue closes; wait for that,
        // so RocksDB is closed here and not torn down while the process exits.
        if let Some(state) = self.state.take() {
            let service = state.service.clone();
            drop(state);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while Arc::strong_count(&service) > 1 && std::time::Instant::now() < deadline {
                std::thread::yield_now();
            }
        }
    }
}

impl Fixture {
    fn state(&self) -> &AppState {
        self.state.as_ref().expect("the fixture is alive")
    }

    async fn call(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = app(self.state().clone(), LIMIT)
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, body)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    async fn post(&self, path: &str, body: impl Into<Body>) -> (StatusCode, Value) {
        let request = Request::post(path)
            .header("content-type", "application/json")
            .body(body.into())
            .unwrap();
        self.call(request).await
    }

    fn entries(&self) -> u64 {
        self.state().service.log_entries()
    }
}

fn without_type(event: Event) -> Value {
    let mut body = serde_json::to_value(event).unwrap();
    body.as_object_mut().unwrap().remove("type");
    body
}

fn manifest(app: &KeyPair, version: &str) -> Value {
    let manifest = AppManifest {
        app: app.did().clone(),
        name: "Budget Buddy".into(),
        description: "Shows where the money goes".into(),
        version: version.into(),
        platform: Platform::Mobile,
        redirect_uris: vec!["https://budget.example/cb".into()],
        requested_permissions: BTreeSet::from([Permission::ReadAccountsBasic]),
        bundle_hash: "ef".repeat(32),
    };
    without_type(Event::app_published(app, manifest))
}

/// A decision naming `bank`, signed by `signer`.
fn decision(signer: &KeyPair, bank: &KeyPair, app: &KeyPair) -> Value {
    let decision = AppDecision {
        bank: bank.did().clone(),
        app: app.did().clone(),
        version: "1.0.0".into(),
        action: AppAction::Approve {
            permissions: BTreeSet::from([Permission::ReadAccountsBasic]),
        },
        time: 1,
    };
    without_type(Event::app_decided(signer, decision))
}

fn consent(client: &KeyPair, app: &KeyPair, bank: &KeyPair) -> VerifiedConsent {
    let terms = ConsentTerms {
        app: app.did().clone(),
        bank: bank.did().clone(),
        accounts: vec!["acc-1".into()],
        permissions: BTreeSet::from([Permission::ReadAccountsBasic]),
        payment_limits: None,
        purpose: "Budgeting".into(),
        valid_from: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        valid_until: Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
    };
    block_on(issue_consent(client, &terms)).unwrap()
}

#[tokio::test]
async fn health_and_unknown_paths() {
    let f = fixture();
    let (status, body) = f.get("/healthz").await;
    assert_eq!((status, body), (StatusCode::OK, Value::String("ok".into())));
    let (status, body) = f.get("/no/such/thing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
}

#[tokio::test]
async fn a_manifest_is_acknowledged_with_its_receipt_once() {
    let f = fixture();
    let app = KeyPair::generate();
    let body = manifest(&app, "1.0.0").to_string();
    let (status, first) = f.post("/v1/apps", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["new"], true);
    assert_eq!(first["receipt"]["origin"], f.bank.did().as_str());
    assert_eq!(first["receipt"]["seq"], 1);
    let (status, second) = f.post("/v1/apps", body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second["new"], false);
    assert_eq!(second["entry_hash"], first["entry_hash"]);
    assert_eq!(f.entries(), 1);
    let (status, catalog) = f.get(&format!("/v1/catalog?bank={}", f.bank.did())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(catalog["apps"].as_array().unwrap().len(), 1);
    let (status, _) = f
        .post(
            "/v1/apps/decisions",
            decision(&f.bank, &f.bank, &app).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, catalog) = f.get(&format!("/v1/catalog?bank={}", f.bank.did())).await;
    assert!(catalog["apps"][0]["decision"].is_object(), "{catalog}");
}

#[tokio::test]
async fn bad_submissions_get_specific_errors_and_store_nothing() {
    let f = fixture();
    let app = KeyPair::generate();
    let mut forged = manifest(&app, "1.0.0");
    forged["manifest"]["name"] = json!("Renamed after signing");
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "/v1/consents",
            "{not json".into(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "/v1/consents",
            "[1,2]".into(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "/v1/consents",
            json!({"@context": []}).to_string(),
            unprocessable,
            "invalid_consent",
        ),
        (
            "/v1/apps",
            forged.to_string(),
            unprocessable,
            "bad_signature",
        ),
        (
            "/v1/apps",
            json!({"manifest": 1}).to_string(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        // A decision in the TSP's name: the TSP is not a bank.
        (
            "/v1/apps/decisions",
            decision(&f.tsp, &f.tsp, &app).to_string(),
            StatusCode::FORBIDDEN,
            "not_a_bank",
        ),
        // A decision in the bank's name, signed by someone else.
        (
            "/v1/apps/decisions",
            decision(&f.tsp, &f.bank, &app).to_string(),
            unprocessable,
            "bad_signature",
        ),
        (
            "/v1/revocations",
            "{}".into(),
            StatusCode::BAD_REQUEST,
            "malformed_revocation",
        ),
        (
            "/v1/apps",
            "x".repeat(LIMIT + 1),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
    ];
    for (path, body, expected, code) in cases {
        let (status, answer) = f.post(path, body).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (expected, Some(code)),
            "{path}: {answer}"
        );
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(f.entries(), 0, "nothing was stored");
}

#[tokio::test]
async fn consents_are_granted_queried_and_revoked_only_by_the_entitled() {
    let f = fixture();
    let (client, app) = (KeyPair::generate(), KeyPair::generate());
    let consent = consent(&client, &app, &f.bank);
    let id = consent.id.to_string();
    let (status, receipt) = f.post("/v1/consents", consent.credential.to_string()).await;
    assert_eq!(status, StatusCode::CREATED, "{receipt}");
    let (_, body) = f.get(&format!("/v1/consents/{id}")).await;
    assert_eq!(body["status"], "active");
    assert_eq!(body["grant"]["bank"], f.bank.did().as_str());
    let (_, body) = f
        .get(&format!("/v1/consents/{id}?at=2025-06-01T00:00:00Z"))
        .await;
    assert_eq!(body["status"], "not_yet_valid");
    let (status, held) = f.get(&format!("/v1/consents/{id}/receipt")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(held["receipt"], receipt["receipt"]);
    for filter in [
        format!("client={}", client.did()),
        format!("app={}", app.did()),
        format!("bank={}", f.bank.did()),
    ] {
        let (status, list) = f.get(&format!("/v1/consents?{filter}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list["consents"][0]["consent_id"], id.as_str(), "{filter}");
    }

    let stranger = Revocation::sign(&KeyPair::generate(), consent.id, Utc::now(), None);
    let (status, body) = f
        .post("/v1/revocations", serde_json::to_string(&stranger).unwrap())
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_entitled"))
    );
    let mut tampered = Revocation::sign(&client, consent.id, Utc::now(), None);
    tampered.reason = Some("changed after signing".into());
    let (status, body) = f
        .post("/v1/revocations", serde_json::to_string(&tampered).unwrap())
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_revocation"))
    );
    assert_eq!(f.entries(), 1);

    let revocation = Revocation::sign(&client, consent.id, Utc::now(), None);
    let (status, _) = f
        .post(
            "/v1/revocations",
            serde_json::to_string(&revocation).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, body) = f.get(&format!("/v1/consents/{id}")).await;
    assert_eq!(body["status"], "revoked");
}

#[tokio::test]
async fn bad_queries_get_specific_errors() {
    let f = fixture();
    let unknown = "ab".repeat(32);
    let (status, body) = f.get(&format!("/v1/consents/{unknown}")).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("unknown"))
    );
    let cases = [
        (
            "/v1/consents/not-an-id",
            StatusCode::BAD_REQUEST,
            "invalid_consent_id",
        ),
        (
            "/v1/consents/{unknown}/receipt",
            StatusCode::NOT_FOUND,
            "consent_unknown",
        ),
        (
            "/v1/consents/{unknown}?at=yesterday",
            StatusCode::BAD_REQUEST,
            "invalid_time",
        ),
        (
            "/v1/consents",
            StatusCode::BAD_REQUEST,
            "one_filter_required",
        ),
        (
            "/v1/consents?client=did:key:z6Mk&bank=x",
            StatusCode::BAD_REQUEST,
            "one_filter_required",
        ),
        (
            "/v1/consents?client=nobody",
            StatusCode::BAD_REQUEST,
            "invalid_did",
        ),
        (
            "/v1/consents?colour=blue",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        ("/v1/catalog", StatusCode::BAD_REQUEST, "missing_parameter"),
        (
            "/v1/catalog?bank=nobody",
            StatusCode::BAD_REQUEST,
            "invalid_did",
        ),
    ];
    for (path, expected, code) in cases {
        let path = path.replace("{unknown}", &unknown);
        let (status, body) = f.get(&path).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (expected, Some(code)),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn status_and_metrics_describe_the_node() {
    let f = fixture();
    f.post("/v1/apps", manifest(&KeyPair::generate(), "1").to_string())
        .await;
    let (status, body) = f.get("/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["did"], f.bank.did().as_str());
    assert_eq!(body["network"], "api-test");
    assert_eq!(body["role"], "bank");
    assert_eq!(body["log_entries"], 1);
    assert_eq!(body["frontier"][f.bank.did().as_str()]["seq"], 1);
    assert_eq!(body["state_digest"].as_str().unwrap().len(), 64);
    let (status, text) = f.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap().to_owned();
    assert!(
        text.contains("consentnet_submissions_total{result=\"accepted\"} 1"),
        "{text}"
    );
    assert!(text.contains("consentnet_log_entries 1"), "{text}");
}

#[tokio::test]
async fn the_audit_endpoint_reports_a_clean_log_and_refuses_a_bad_bound() {
    let f = fixture();
    f.post("/v1/apps", manifest(&KeyPair::generate(), "1").to_string())
        .await;
    let (status, report) = f.get("/v1/audit").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["clean"], true);
    assert_eq!(report["entries"], 1);
    assert!(
        report["summary"]
            .as_str()
            .unwrap()
            .starts_with("CLEAN: 1 entries")
    );
    let (status, body) = f.get("/v1/audit?propagation_bound_ms=99999999999").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_query"))
    );
}
