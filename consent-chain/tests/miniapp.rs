//! Mini-app manifests and approvals on the log: every member refuses a manifest whose bundle hash is not its file list's, or whose files or origins break a rule, and an approval allowing an origin that is not an https origin; valid ones are applied and read back.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::*;
use consentnet_consent_chain::event::{AppAction, AppDecision, AppManifest, Platform};
use consentnet_consent_chain::miniapp::{BundleFile, MiniApp};
use consentnet_consent_chain::validate::EventError;
use consentnet_consent_chain::{Event, MemoryStore, Rejected, Replica};
use consentnet_identity::{Hash32, KeyPair, Permission};

fn manifest(app: &KeyPair, mini_app: MiniApp, bundle_hash: String) -> Event {
    Event::app_published(
        app,
        AppManifest {
            app: app.did().clone(),
            name: "Lendwise".into(),
            description: "Credit check".into(),
            version: "1.0".into(),
            platform: Platform::Web,
            redirect_uris: vec![],
            events_uri: None,
            requested_permissions: BTreeSet::from([Permission::ReadBalances]),
            bundle_hash,
            mini_app: Some(Box::new(mini_app)),
        },
    )
}

fn bundle() -> MiniApp {
    MiniApp {
        files: vec![BundleFile {
            path: "index.html".into(),
            size: 2,
            sha256: Hash32::of(b"hi"),
        }],
        origins: vec!["https://api.lendwise.example".into()],
    }
}

fn refused_as_invalid(result: Result<consentnet_consent_chain::Appended, Rejected>) -> String {
    match result {
        Err(Rejected::InvalidEvent(EventError::Invalid(why))) => why,
        other => panic!("not refused as invalid: {other:?}"),
    }
}

#[test]
fn a_mini_app_manifest_is_taken_only_with_its_own_bundle_hash_and_valid_files() {
    let c = Consortium::new();
    let mut node = Replica::open(MemoryStore::new(), &c.genesis).unwrap();
    let app = KeyPair::generate();
    let wrong = refused_as_invalid(node.append_local(
        &c.tsp,
        manifest(&app, bundle(), "ab".repeat(32)),
        now_ms(),
    ));
    assert!(
        wrong.contains("not the hash of the mini-app's file list"),
        "{wrong}"
    );
    let mut escaping = bundle();
    escaping.files[0].path = "../index.html".into();
    let hash = escaping.index_hash().to_string();
    let why =
        refused_as_invalid(node.append_local(&c.tsp, manifest(&app, escaping, hash), now_ms()));
    assert!(why.contains("mini-app files"), "{why}");
    assert!(node.state().manifests().next().is_none(), "nothing applied");

    let hash = bundle().index_hash().to_string();
    node.append_local(&c.tsp, manifest(&app, bundle(), hash), now_ms())
        .unwrap();
    let held = node.state().manifest(app.did(), "1.0").unwrap();
    assert_eq!(held.mini_app.as_deref(), Some(&bundle()));
}

#[test]
fn an_approval_may_allow_only_https_origins() {
    let c = Consortium::new();
    let mut node = Replica::open(MemoryStore::new(), &c.genesis).unwrap();
    let app = KeyPair::generate();
    let decide = |origin: &str| {
        Event::app_decided(
            &c.bank_a,
            AppDecision {
                bank: c.bank_a.did().clone(),
                app: app.did().clone(),
                version: "1.0".into(),
                action: AppAction::Approve {
                    permissions: BTreeSet::from([Permission::ReadBalances]),
                    rate_limit: None,
                    origins: BTreeSet::from([origin.to_owned()]),
                },
                time: now_ms(),
            },
        )
    };
    let why =
        refused_as_invalid(node.append_local(&c.bank_a, decide("http://a.example"), now_ms()));
    assert!(why.contains("mini-app origins"), "{why}");
    node.append_local(&c.bank_a, decide("https://a.example"), now_ms())
        .unwrap();
    let Some(AppAction::Approve { origins, .. }) =
        node.state().app_action(c.bank_a.did(), app.did(), "1.0")
    else {
        panic!("not approved")
    };
    assert_eq!(origins, &BTreeSet::from(["https://a.example".to_owned()]));
}
