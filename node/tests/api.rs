//! The node HTTP API driven with `oneshot` over a real RocksDB log: every submission kind, every query, and a specific error for each kind of bad input, with nothing stored.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use chrono::{TimeZone, Utc};
use consentnet_bank_adapter::links::Links;
use consentnet_consent_chain::event::{AppAction, AppDecision, AppManifest, Platform};
use consentnet_consent_chain::{Event, Genesis, Member, RocksStore, Role};
use consentnet_identity::consent::block_on;
use consentnet_identity::{
    ConsentTerms, KeyPair, LinkRequest, Permission, PopRequest, Revocation, VerifiedConsent,
    issue_consent, sign_pop,
};
use consentnet_node::api::{AppState, operator_app, public_app};
use consentnet_node::core::{NodeService, Submitter};
use consentnet_node::p2p::peer_id_of;
use serde_json::{Value, json};
use tower::ServiceExt;

const LIMIT: usize = 64 * 1024;
/// The public URL the fixture's node answers at, which signed reads name.
const PUBLIC_URL: &str = "https://node.example";

struct Fixture {
    _dir: tempfile::TempDir,
    /// Taken on drop, to close the log before the test process exits.
    state: Option<AppState>,
    bank: KeyPair,
    tsp: KeyPair,
    regulator: KeyPair,
    /// A second bank, whose node this is not.
    other_bank: KeyPair,
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
    let regulator = KeyPair::generate();
    let other_bank = KeyPair::generate();
    let genesis = Genesis {
        network: "api-test".into(),
        members: vec![
            member(&bank, Role::Bank, "Bank"),
            member(&tsp, Role::Tsp, "TSP"),
            member(&regulator, Role::Regulator, "Regulator"),
            member(&other_bank, Role::Bank, "Other Bank"),
        ],
    };
    let store = RocksStore::open(&dir.path().join("log")).unwrap();
    let links = Arc::new(Links::open(&dir.path().join("links.jsonl")).unwrap());
    let service = Arc::new(NodeService::open(store, genesis, bank.clone()).unwrap());
    Fixture {
        _dir: dir,
        state: Some(AppState {
            submitter: Submitter::start(service.clone(), None).unwrap(),
            service,
            network: None,
            bank: None,
            links: Some(links),
            public_url: PUBLIC_URL.into(),
        }),
        bank,
        tsp,
        regulator,
        other_bank,
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
        self.call_on(public_app(self.state().clone(), LIMIT), request)
            .await
    }

    async fn call_on(&self, app: axum::Router, request: Request<Body>) -> (StatusCode, Value) {
        let response = app.oneshot(request).await.unwrap();
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

    /// GET with a read proof signed by `key` for the fixture's public URL.
    async fn get_as(&self, key: &KeyPair, path_and_query: &str) -> (StatusCode, Value) {
        let path = path_and_query.split('?').next().unwrap();
        let proof = signed_read(key, &format!("{PUBLIC_URL}{path}"));
        let request = Request::get(path_and_query)
            .header("dpop", proof)
            .body(Body::empty())
            .unwrap();
        self.call(request).await
    }

    /// GET on the operator listener's routes.
    async fn operator_get(&self, path: &str) -> (StatusCode, Value) {
        let app = operator_app(self.state().clone(), LIMIT);
        self.call_on(app, Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    async fn post(&self, path: &str, body: impl Into<Body>) -> (StatusCode, Value) {
        let request = Request::post(path)
            .header("content-type", "application/json")
            .body(body.into())
            .unwrap();
        self.call(request).await
    }

    /// POST on the operator listener's routes.
    async fn operator_post(&self, path: &str, body: impl Into<Body>) -> (StatusCode, Value) {
        let request = Request::post(path)
            .header("content-type", "application/json")
            .body(body.into())
            .unwrap();
        self.call_on(operator_app(self.state().clone(), LIMIT), request)
            .await
    }

    /// Links `client` at the fixture's bank as the holder of the account every test
    /// consent names, as the bank's own channel and the client would.
    fn link(&self, client: &KeyPair) {
        let links = self.state().links.as_ref().expect("the fixture is a bank");
        let code = links
            .issue_code("customer-1", &["acc-1".to_owned()], Utc::now())
            .unwrap()
            .code;
        let request = LinkRequest::sign(client, self.bank.did(), &code);
        links.redeem(self.bank.did(), &request, Utc::now()).unwrap();
    }

    /// A consent by `client` for `app` at the fixture's bank, `client` linked there.
    fn linked_consent(&self, client: &KeyPair, app: &KeyPair) -> VerifiedConsent {
        self.link(client);
        consent(client, app, &self.bank)
    }

    fn entries(&self) -> u64 {
        self.state().service.log_entries()
    }
}

/// A read proof for `GET url`, signed by `key` now.
fn signed_read(key: &KeyPair, url: &str) -> String {
    let request = PopRequest {
        method: "GET",
        url,
        access_token: "",
    };
    sign_pop(key, request, Utc::now())
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
        events_uri: None,
        requested_permissions: BTreeSet::from([Permission::ReadAccountsBasic]),
        bundle_hash: "ef".repeat(32),
        mini_app: None,
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
            rate_limit: None,
            origins: Default::default(),
        },
        time: u64::try_from(Utc::now().timestamp_millis()).unwrap(),
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
        proof_key: None,
        status: None,
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
    let (status, first) = f.operator_post("/v1/apps", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["new"], true);
    assert_eq!(first["receipt"]["origin"], f.bank.did().as_str());
    assert_eq!(first["receipt"]["seq"], 1);
    let (status, second) = f.operator_post("/v1/apps", body).await;
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
            "/v1/apps/decisions",
            json!({"decision": 1}).to_string(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
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
        // Manifests are published on the operator surface, the rest on the public one.
        let (status, answer) = if path == "/v1/apps" {
            f.operator_post(path, body).await
        } else {
            f.post(path, body).await
        };
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
    let consent = f.linked_consent(&client, &app);
    let id = consent.id.to_string();
    let (status, receipt) = f.post("/v1/consents", consent.credential.to_string()).await;
    assert_eq!(status, StatusCode::CREATED, "{receipt}");
    let (_, body) = f.get_as(&client, &format!("/v1/consents/{id}")).await;
    assert_eq!(body["status"], "active");
    assert_eq!(body["grant"]["bank"], f.bank.did().as_str());
    let (_, body) = f
        .get_as(
            &client,
            &format!("/v1/consents/{id}?at=2025-06-01T00:00:00Z"),
        )
        .await;
    assert_eq!(body["status"], "not_yet_valid");
    let (status, held) = f
        .get_as(&client, &format!("/v1/consents/{id}/receipt"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(held["receipt"], receipt["receipt"]);
    for (reader, filter) in [
        (&client, format!("client={}", client.did())),
        (&app, format!("app={}", app.did())),
        (&f.bank, format!("bank={}", f.bank.did())),
    ] {
        let (status, list) = f.get_as(reader, &format!("/v1/consents?{filter}")).await;
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
    let (_, body) = f.get_as(&client, &format!("/v1/consents/{id}")).await;
    assert_eq!(body["status"], "revoked");
    assert_archived_answers_the_same(&f, &client, &app, &consent, &receipt).await;
}

/// Once a snapshot moves the revoked consent out of memory, every read answers as
/// before, and revocations are still checked against it.
async fn assert_archived_answers_the_same(
    f: &Fixture,
    client: &KeyPair,
    app: &KeyPair,
    consent: &VerifiedConsent,
    receipt: &Value,
) {
    let id = consent.id.to_string();
    let (_, before) = f.get_as(client, &format!("/v1/consents/{id}")).await;
    f.state().service.write_snapshot().unwrap();
    assert!(f.state().service.state().consent(&consent.id).is_none());
    let (_, after) = f.get_as(client, &format!("/v1/consents/{id}")).await;
    assert_eq!(
        (&after["status"], &after["grant"], &after["revocation"]),
        (&before["status"], &before["grant"], &before["revocation"])
    );
    let (status, held) = f
        .get_as(client, &format!("/v1/consents/{id}/receipt"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(held["receipt"], receipt["receipt"]);
    let (_, list) = f
        .get_as(app, &format!("/v1/consents?app={}", app.did()))
        .await;
    assert_eq!(list["consents"][0]["consent_id"], id.as_str());
    assert_eq!(list["consents"][0]["status"], "revoked");
    let (_, hidden) = f
        .get_as(&KeyPair::generate(), &format!("/v1/consents/{id}"))
        .await;
    assert_eq!(hidden["status"], "unknown", "still only for the entitled");
    let stranger = Revocation::sign(&KeyPair::generate(), consent.id, Utc::now(), None);
    let (status, _) = f
        .post("/v1/revocations", serde_json::to_string(&stranger).unwrap())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let again = Revocation::sign(&f.bank, consent.id, Utc::now(), None);
    let (status, _) = f
        .post("/v1/revocations", serde_json::to_string(&again).unwrap())
        .await;
    assert_eq!(status, StatusCode::CREATED, "its bank may still revoke it");
    let (_, body) = f.get_as(client, &format!("/v1/consents/{id}")).await;
    assert_eq!(
        body["revocation"], before["revocation"],
        "the earliest applies"
    );
}

#[tokio::test]
async fn a_consent_is_read_only_by_its_client_app_bank_and_regulators() {
    let f = fixture();
    let (client, app) = (KeyPair::generate(), KeyPair::generate());
    let consent = f.linked_consent(&client, &app);
    let id = consent.id.to_string();
    let (status, _) = f.post("/v1/consents", consent.credential.to_string()).await;
    assert_eq!(status, StatusCode::CREATED);
    let status_path = format!("/v1/consents/{id}");
    let receipt_path = format!("/v1/consents/{id}/receipt");
    let accesses_path = format!("/v1/consents/{id}/accesses");
    for reader in [&client, &app, &f.bank, &f.regulator] {
        let (_, body) = f.get_as(reader, &status_path).await;
        assert_eq!(body["status"], "active", "{body}");
        assert_eq!(body["grant"]["issuer"], client.did().as_str());
        let (status, _) = f.get_as(reader, &receipt_path).await;
        assert_eq!(status, StatusCode::OK);
    }
    // Another member (a competing TSP) and a stranger get what a consent that is not on
    // the log gets.
    let unknown = format!("/v1/consents/{}", "ab".repeat(32));
    for reader in [&f.tsp, &KeyPair::generate()] {
        let (status, body) = f.get_as(reader, &status_path).await;
        let (_, absent) = f.get_as(reader, &unknown).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], absent["status"]);
        assert_eq!(body["status"], "unknown");
        assert!(body.get("grant").is_none(), "{body}");
        let (status, body) = f.get_as(reader, &receipt_path).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("consent_unknown"))
        );
        let (_, body) = f.get_as(reader, &accesses_path).await;
        assert_eq!(body["accesses"], json!([]));
        for filter in [
            format!("client={}", client.did()),
            format!("app={}", app.did()),
            format!("bank={}", f.bank.did()),
        ] {
            let (status, body) = f.get_as(reader, &format!("/v1/consents?{filter}")).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (StatusCode::FORBIDDEN, Some("read_not_entitled")),
                "{filter}"
            );
        }
    }
    // A regulator lists anyone's.
    let (status, list) = f
        .get_as(
            &f.regulator,
            &format!("/v1/consents?client={}", client.did()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["consents"][0]["consent_id"], id.as_str());
}

#[tokio::test]
async fn a_read_without_a_valid_proof_is_refused_alike_for_known_and_unknown_consents() {
    let f = fixture();
    let (client, app) = (KeyPair::generate(), KeyPair::generate());
    let consent = f.linked_consent(&client, &app);
    f.post("/v1/consents", consent.credential.to_string()).await;
    let known = format!("/v1/consents/{}", consent.id);
    let unknown = format!("/v1/consents/{}", "ab".repeat(32));
    for path in [&known, &unknown] {
        let (status, body) = f.get(path).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("read_proof_required")),
            "{path}"
        );
        // A proof for another node's URL, or for another path.
        for url in [
            format!("https://other.example{path}"),
            format!("{PUBLIC_URL}/v1/consents"),
        ] {
            let request = Request::get(path.as_str())
                .header("dpop", signed_read(&client, &url))
                .body(Body::empty())
                .unwrap();
            let (status, body) = f.call(request).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (StatusCode::UNAUTHORIZED, Some("read_proof_invalid")),
                "{url}: {body}"
            );
        }
    }
    // The client's kid on a stranger's signature.
    let forger = KeyPair::generate();
    let genuine = signed_read(&client, &format!("{PUBLIC_URL}{known}"));
    let forged = signed_read(&forger, &format!("{PUBLIC_URL}{known}"));
    let spliced = format!(
        "{}.{}",
        genuine.split('.').next().unwrap(),
        forged.split_once('.').unwrap().1
    );
    let request = Request::get(known.as_str())
        .header("dpop", spliced)
        .body(Body::empty())
        .unwrap();
    let (status, body) = f.call(request).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("read_proof_invalid")),
        "{body}"
    );
}

#[tokio::test]
async fn bad_queries_get_specific_errors() {
    let f = fixture();
    let unknown = "ab".repeat(32);
    let (status, body) = f
        .get_as(&f.regulator, &format!("/v1/consents/{unknown}"))
        .await;
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
        let (status, body) = f.get_as(&f.regulator, &path).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (expected, Some(code)),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn the_public_surface_serves_no_operator_route_and_the_operator_surface_no_public_submission()
{
    let f = fixture();
    for path in ["/status", "/metrics", "/v1/audit"] {
        let (status, body) = f.get(path).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "{path}: {body}"
        );
    }
    // A stranger cannot publish a manifest on the public surface: it is an operator's act.
    let body = manifest(&KeyPair::generate(), "1").to_string();
    let (status, _) = f.post("/v1/apps", body.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let client = KeyPair::generate();
    let consent = f.linked_consent(&client, &KeyPair::generate());
    let (status, _) = f
        .operator_post("/v1/consents", consent.credential.to_string())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(f.entries(), 0, "nothing was stored");
    let (status, body) = f.get("/.well-known/consentnet-node").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["did"], f.bank.did().as_str());
    assert_eq!(body["role"], "bank");
}

#[tokio::test]
async fn status_and_metrics_describe_the_node() {
    let f = fixture();
    f.operator_post("/v1/apps", manifest(&KeyPair::generate(), "1").to_string())
        .await;
    let (status, body) = f.operator_get("/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["did"], f.bank.did().as_str());
    assert_eq!(body["network"], "api-test");
    assert_eq!(body["role"], "bank");
    assert_eq!(body["log_entries"], 1);
    assert_eq!(body["frontier"][f.bank.did().as_str()]["seq"], 1);
    assert_eq!(body["state_digest"].as_str().unwrap().len(), 64);
    let (status, text) = f.operator_get("/metrics").await;
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
    f.operator_post("/v1/apps", manifest(&KeyPair::generate(), "1").to_string())
        .await;
    let (status, report) = f.operator_get("/v1/audit").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["clean"], true);
    assert_eq!(report["entries"], 1);
    assert!(
        report["summary"]
            .as_str()
            .unwrap()
            .starts_with("CLEAN: 1 entries")
    );
    let (status, body) = f
        .operator_get("/v1/audit?propagation_bound_ms=99999999999")
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_query"))
    );
}

#[tokio::test]
async fn a_signed_object_with_a_duplicate_key_is_refused_and_nothing_is_stored() {
    let f = fixture();
    let (client, app) = (KeyPair::generate(), KeyPair::generate());
    let consent = f.linked_consent(&client, &app);
    // The credential as signed, with its purpose named twice: one reader would see the
    // first, another the last.
    let text = consent.credential.to_string();
    let doubled = text.replacen("{", "{\"id\":\"urn:a\",\"id\":\"urn:b\",", 1);
    let (status, body) = f.post("/v1/consents", doubled).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json")),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("duplicate key"));
    let revocation =
        serde_json::to_string(&Revocation::sign(&client, consent.id, Utc::now(), None))
            .unwrap()
            .replacen("{", "{\"reason\":\"a\",\"reason\":\"b\",", 1);
    let (status, body) = f.post("/v1/revocations", revocation).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_revocation")),
        "{body}"
    );
    assert_eq!(f.entries(), 0, "nothing was stored");
}

#[tokio::test]
async fn only_the_named_bank_admits_a_consent_and_only_from_a_linked_holder_of_its_accounts() {
    let f = fixture();
    let app = KeyPair::generate();
    let refused = |code: &'static str| (StatusCode::FORBIDDEN, Some(code));
    // A fresh DID, as any stranger can make, signs a consent for a real account.
    let stranger = KeyPair::generate();
    let forged = consent(&stranger, &app, &f.bank).credential.to_string();
    let (status, body) = f.post("/v1/consents", forged.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        refused("consent_issuer_not_linked"),
        "{body}"
    );
    // Nor may it ride in on a revocation that carries it.
    let carried = json!({
        "revocation": Revocation::sign(&stranger, consentnet_identity::consent_id(
            &serde_json::from_str(&forged).unwrap()).unwrap(), Utc::now(), None),
        "credential": serde_json::from_str::<Value>(&forged).unwrap(),
    });
    let (status, body) = f.post("/v1/revocations", carried.to_string()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        refused("consent_issuer_not_linked"),
        "{body}"
    );
    // A linked client naming an account it does not hold.
    let client = KeyPair::generate();
    f.link(&client);
    let mut terms = consent(&client, &app, &f.bank).terms;
    terms.accounts.push("acc-2".into());
    let wider = block_on(issue_consent(&client, &terms)).unwrap();
    let (status, body) = f.post("/v1/consents", wider.credential.to_string()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        refused("consent_issuer_not_linked"),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("acc-2"),
        "{body}"
    );
    // A consent for another bank is that bank's to admit.
    let elsewhere = consent(&client, &app, &f.other_bank).credential.to_string();
    let (status, body) = f.post("/v1/consents", elsewhere).await;
    assert_eq!(
        (status, body["code"].as_str()),
        refused("grant_not_at_bank"),
        "{body}"
    );
    assert_eq!(f.entries(), 0, "nothing was stored");
    // The linked holder's consent for its own account is admitted.
    let granted = consent(&client, &app, &f.bank).credential.to_string();
    let (status, body) = f.post("/v1/consents", granted).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(f.entries(), 1);
}

#[tokio::test]
async fn a_revocation_of_a_consent_not_on_the_log_is_refused_unless_it_carries_the_grant() {
    let f = fixture();
    let (client, app) = (KeyPair::generate(), KeyPair::generate());
    let consent = f.linked_consent(&client, &app);
    let revocation = Revocation::sign(&client, consent.id, Utc::now(), None);
    let (status, body) = f
        .post(
            "/v1/revocations",
            serde_json::to_string(&revocation).unwrap(),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("revocation_unverifiable")
        ),
        "{body}"
    );
    // A random id, as a stranger would send.
    let stranger = KeyPair::generate();
    let random = consentnet_identity::ConsentId::parse(&"cd".repeat(32)).unwrap();
    let (status, _) = f
        .post(
            "/v1/revocations",
            serde_json::to_string(&Revocation::sign(&stranger, random, Utc::now(), None)).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Carrying the credential, by someone not entitled to revoke it: refused, and the
    // grant is not stored either.
    let (status, body) = f
        .post(
            "/v1/revocations",
            json!({
                "revocation": Revocation::sign(&stranger, consent.id, Utc::now(), None),
                "credential": consent.credential,
            })
            .to_string(),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_entitled")),
        "{body}"
    );
    assert_eq!(f.entries(), 0, "nothing was stored");
    // Carrying the credential, by its client: the grant, then the revocation.
    let (status, body) = f
        .post(
            "/v1/revocations",
            json!({ "revocation": revocation, "credential": consent.credential }).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(f.entries(), 2);
    let (_, body) = f
        .get_as(&client, &format!("/v1/consents/{}", consent.id))
        .await;
    assert_eq!(body["status"], "revoked");
}

#[tokio::test]
async fn a_revocation_or_decision_naming_a_time_far_from_now_is_refused() {
    let f = fixture();
    let (client, app) = (KeyPair::generate(), KeyPair::generate());
    let consent = f.linked_consent(&client, &app);
    f.post("/v1/consents", consent.credential.to_string()).await;
    for time in [
        Utc::now() - chrono::Duration::days(30),
        Utc::now() + chrono::Duration::minutes(10),
    ] {
        let revocation = Revocation::sign(&client, consent.id, time, None);
        let (status, body) = f
            .post(
                "/v1/revocations",
                serde_json::to_string(&revocation).unwrap(),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("time_outside_skew")),
            "{time}: {body}"
        );
    }
    let decision = AppDecision {
        bank: f.bank.did().clone(),
        app: app.did().clone(),
        version: "1.0.0".into(),
        action: AppAction::Suspend,
        time: 1,
    };
    let (status, body) = f
        .post(
            "/v1/apps/decisions",
            without_type(Event::app_decided(&f.bank, decision)).to_string(),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("time_outside_skew")),
        "{body}"
    );
    assert_eq!(f.entries(), 1, "only the grant");
}

#[tokio::test]
async fn a_submission_that_is_not_sent_as_json_is_refused_with_415() {
    let f = fixture();
    let body = manifest(&KeyPair::generate(), "1").to_string();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut request = Request::post("/v1/apps");
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let operator = operator_app(f.state().clone(), LIMIT);
        let (status, answer) = f
            .call_on(operator, request.body(Body::from(body.clone())).unwrap())
            .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Some("unsupported_media_type")
            ),
            "{content_type:?}: {answer}"
        );
    }
    assert_eq!(f.entries(), 0, "nothing was stored");
    let request = Request::post("/v1/apps")
        .header("content-type", "application/json; charset=utf-8")
        .body(Body::from(body))
        .unwrap();
    let operator = operator_app(f.state().clone(), LIMIT);
    assert_eq!(f.call_on(operator, request).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn any_member_judges_a_consents_status_entry_by_its_log() {
    let f = fixture();
    let (client, app) = (KeyPair::generate(), KeyPair::generate());
    f.link(&client);
    let mut terms = consent(&client, &app, &f.bank).terms;
    terms.status = Some(consentnet_identity::consent::StatusEntry::random(
        "https://bank.example/status/revocation/0",
    ));
    let granted = block_on(issue_consent(&client, &terms)).unwrap();
    let verify = || async {
        let body = json!({ "verifiableCredential": granted.credential }).to_string();
        f.post("/credentials/verify", body).await
    };
    // Not on the log: this member cannot tell, and says so.
    let (status, result) = verify().await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(
        result["warnings"][0]["type"]
            .as_str()
            .map(|t| t.ends_with("/status-not-checked")),
        Some(true)
    );
    let (status, body) = f.post("/v1/consents", granted.credential.to_string()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // On the log: checked there, with no warning.
    let (status, result) = verify().await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["warnings"], json!([]), "{result}");
    let revocation = Revocation::sign(&client, granted.id, Utc::now(), None);
    let (status, body) = f
        .post(
            "/v1/revocations",
            serde_json::to_string(&revocation).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, result) = verify().await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{result}");
    assert!(
        result["errors"][0]["type"]
            .as_str()
            .unwrap()
            .ends_with("/revoked"),
        "{result}"
    );
}
