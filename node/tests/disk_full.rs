//! A node whose disk fills up: submissions fail with a message that names no server path, health says not ready for as long as the store refuses writes, and once space is back the node reopens its log and writes resume without a restart. The log lives on a small tmpfs of its own (the test mounts one, so it runs as root, as the test command does).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use consentnet_consent_chain::event::{AppManifest, Platform};
use consentnet_consent_chain::{Event, Genesis, Member, RocksStore, Role};
use consentnet_identity::{KeyPair, Permission};
use consentnet_node::api::{AppState, operator_app, public_app};
use consentnet_node::core::{NodeService, Submitter};
use consentnet_node::p2p::peer_id_of;
use serde_json::Value;
use tower::ServiceExt;

/// A tmpfs of `size` mounted at a fresh folder; unmounted when dropped.
struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mounting a tmpfs needs root (the test command runs as root)"
        );
        Self { path, _dir: dir }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Fills the disk at `dir` with one file, until the disk is full.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.write_all(&[0u8; 512]);
    let _ = file.sync_all();
    path
}

fn manifest(version: usize) -> String {
    let app = KeyPair::generate();
    let manifest = AppManifest {
        app: app.did().clone(),
        name: "Disk App".into(),
        description: "An app".into(),
        version: format!("1.0.{version}"),
        platform: Platform::Web,
        redirect_uris: vec!["https://app.example/cb".into()],
        events_uri: None,
        requested_permissions: [Permission::ReadAccountsBasic].into(),
        bundle_hash: "ab".repeat(32),
        mini_app: None,
    };
    let mut body = serde_json::to_value(Event::app_published(&app, manifest)).unwrap();
    body.as_object_mut().unwrap().remove("type");
    body.to_string()
}

async fn call(app: axum::Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, body)
}

async fn submit(state: &AppState, version: usize) -> (StatusCode, Value) {
    let request = Request::post("/v1/apps")
        .header("content-type", "application/json")
        .body(Body::from(manifest(version)))
        .unwrap();
    // Manifests are published on the operator surface.
    call(operator_app(state.clone(), 1 << 20), request).await
}

async fn health(state: &AppState) -> StatusCode {
    let public = public_app(state.clone(), 1 << 20);
    call(
        public,
        Request::get("/healthz").body(Body::empty()).unwrap(),
    )
    .await
    .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_makes_the_node_not_ready_names_no_path_and_writes_resume_when_space_is_back() {
    let disk = SmallDisk::mount("16m");
    let key = KeyPair::generate();
    let genesis = Genesis {
        network: "disk-test".into(),
        members: vec![Member {
            did: key.did().clone(),
            role: Role::Tsp,
            peer_id: peer_id_of(key.did()).to_string(),
            name: "TSP".into(),
        }],
    };
    let store = RocksStore::open(&disk.path.join("log")).unwrap();
    let service = Arc::new(NodeService::open(store, genesis, key).unwrap());
    let state = AppState {
        submitter: Submitter::start(service.clone(), None).unwrap(),
        service,
        network: None,
        bank: None,
        links: None,
        public_url: "https://node.example".into(),
    };
    assert_eq!(submit(&state, 0).await.0, StatusCode::CREATED);
    assert_eq!(health(&state).await, StatusCode::OK);

    let filler = fill(&disk.path);
    let mut refused = None;
    for version in 1..200 {
        let (status, body) = submit(&state, version).await;
        if status != StatusCode::CREATED {
            refused = Some((status, body));
            break;
        }
    }
    let (status, body) = refused.expect("a full disk refuses a write");
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("store_unavailable")),
        "{body}"
    );
    let message = body["message"].as_str().unwrap();
    assert!(!message.contains('/'), "a server path in {message:?}");
    assert_eq!(health(&state).await, StatusCode::SERVICE_UNAVAILABLE);

    // Space is back: the node reopens its log, health is ok and submissions are taken
    // again, with no restart; everything acknowledged before is still there.
    std::fs::remove_file(filler).unwrap();
    let before = state.service.log_entries();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut version = 10_000;
    while submit(&state, version).await.0 != StatusCode::CREATED {
        assert!(
            std::time::Instant::now() < deadline,
            "writes did not resume once space was back"
        );
        version += 1;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(state.service.log_entries(), before + 1);
    assert_eq!(health(&state).await, StatusCode::OK);
    let service = state.service.clone();
    drop(state);
    while Arc::strong_count(&service) > 1 {
        tokio::task::yield_now().await;
    }
    drop(service);
    drop(disk);
}
