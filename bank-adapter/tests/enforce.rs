//! The consent check: one test per check, each presenting exactly that defect and asserting its status and code, over the real replication engine's state.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use consentnet_bank_adapter::Gate;
use consentnet_bank_adapter::enforce::{Operation, Presented, ReplayCache, SCHEME};
use consentnet_consent_chain::event::{AppAction, AppDecision};
use consentnet_consent_chain::{Event, Genesis, Member, MemoryStore, Replica, Role};
use consentnet_identity::consent::block_on;
use consentnet_identity::{
    ConsentTerms, KeyPair, Permission, PopRequest, Revocation, VerifiedConsent, issue_consent,
    sign_pop,
};

const URL: &str = "https://bank.example/open-banking/v4.0/aisp/accounts/acc-1/balances";

struct World {
    node: Replica<MemoryStore>,
    bank: KeyPair,
    other_bank: KeyPair,
    app: KeyPair,
    client: KeyPair,
    consent: VerifiedConsent,
    replay: ReplayCache,
    linked: common::Linked,
}

fn member(key: &KeyPair, role: Role) -> Member {
    Member {
        did: key.did().clone(),
        role,
        peer_id: "peer".into(),
        name: "member".into(),
    }
}

fn terms(app: &KeyPair, bank: &KeyPair, permissions: &[Permission]) -> ConsentTerms {
    ConsentTerms {
        app: app.did().clone(),
        bank: bank.did().clone(),
        accounts: vec!["acc-1".into()],
        permissions: permissions.iter().copied().collect(),
        payment_limits: None,
        purpose: "Budgeting".into(),
        valid_from: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        valid_until: Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
        proof_key: None,
        status: None,
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 6, 1, 12, 0, 0).unwrap()
}

impl World {
    fn new() -> Self {
        let (bank, other_bank, app, client) = (
            KeyPair::generate(),
            KeyPair::generate(),
            KeyPair::generate(),
            KeyPair::generate(),
        );
        let genesis = Genesis {
            network: "enforce".into(),
            members: vec![member(&bank, Role::Bank), member(&other_bank, Role::Bank)],
        };
        let mut node = Replica::open(MemoryStore::new(), &genesis).unwrap();
        let consent = block_on(issue_consent(
            &client,
            &terms(
                &app,
                &bank,
                &[Permission::ReadAccountsBasic, Permission::ReadBalances],
            ),
        ))
        .unwrap();
        node.append_local(&bank, Event::consent_granted(consent.credential.clone()), 1)
            .unwrap();
        let linked = common::linked(bank.did(), &client, &["acc-1".to_owned()]);
        let mut world = Self {
            linked,
            node,
            bank,
            other_bank,
            app,
            client,
            consent,
            replay: ReplayCache::new(1_000),
        };
        let basic_and_balances = AppAction::Approve {
            permissions: BTreeSet::from([Permission::ReadAccountsBasic, Permission::ReadBalances]),
            rate_limit: None,
            origins: Default::default(),
        };
        world.decide("1.0", basic_and_balances);
        world.decide(
            "1.1",
            AppAction::Approve {
                permissions: BTreeSet::from([Permission::ReadAccountsBasic]),
                rate_limit: None,
                origins: Default::default(),
            },
        );
        world.decide("0.9", AppAction::Suspend);
        world
    }

    fn decide(&mut self, version: &str, action: AppAction) {
        let decision = AppDecision {
            bank: self.bank.did().clone(),
            app: self.app.did().clone(),
            version: version.into(),
            action,
            time: 2,
        };
        let event = Event::app_decided(&self.bank, decision);
        self.node.append_local(&self.bank, event, 2).unwrap();
    }

    fn id(&self) -> String {
        self.consent.id.to_string()
    }

    fn proof(
        &self,
        key: &KeyPair,
        method: &str,
        url: &str,
        token: &str,
        at: DateTime<Utc>,
    ) -> String {
        sign_pop(
            key,
            PopRequest {
                method,
                url,
                access_token: token,
            },
            at,
        )
    }

    /// A well-formed call for the balances of acc-1 under the world's consent.
    fn call(&self) -> Call {
        let id = self.id();
        Call {
            operation: Operation::Balances,
            method: "GET".into(),
            url: URL.into(),
            account: Some("acc-1".into()),
            authorization: Some(format!("{SCHEME} {id}")),
            proof: Some(self.proof(&self.app, "GET", URL, &id, now())),
            app_version: Some("1.0".into()),
            at: now(),
        }
    }

    fn check(&self, call: &Call) -> Result<BTreeSet<Permission>, (u16, &'static str)> {
        Gate {
            source: self.node.state(),
            holders: self.linked.links.as_ref(),
            replay: &self.replay,
            bank: self.bank.did(),
        }
        .authorize(
            Presented {
                operation: call.operation,
                method: &call.method,
                url: &call.url,
                account: call.account.as_deref(),
                authorization: call.authorization.as_deref(),
                proof: call.proof.as_deref(),
                app_version: call.app_version.as_deref(),
            },
            call.at,
        )
        .map(|authorized| authorized.permissions)
        .map_err(|refusal| {
            assert!(!refusal.message.is_empty());
            (refusal.status(), refusal.code.as_str())
        })
    }
}

struct Call {
    operation: Operation,
    method: String,
    url: String,
    account: Option<String>,
    authorization: Option<String>,
    proof: Option<String>,
    app_version: Option<String>,
    at: DateTime<Utc>,
}

#[test]
fn a_well_formed_call_passes_with_the_permissions_the_bank_allows() {
    let world = World::new();
    let permissions = world.check(&world.call()).unwrap();
    assert_eq!(
        permissions,
        BTreeSet::from([Permission::ReadAccountsBasic, Permission::ReadBalances])
    );
}

#[test]
fn missing_or_malformed_authorization_is_refused() {
    let world = World::new();
    let mut call = world.call();
    call.authorization = None;
    assert_eq!(world.check(&call), Err((401, "missing_authorization")));
    call.authorization = Some(format!("Bearer {}", world.id()));
    assert_eq!(world.check(&call), Err((401, "invalid_authorization")));
    call.authorization = Some(format!("{SCHEME} not-a-consent-id"));
    assert_eq!(world.check(&call), Err((401, "invalid_authorization")));
}

#[test]
fn a_missing_proof_or_app_version_is_refused() {
    let world = World::new();
    let mut call = world.call();
    call.proof = None;
    assert_eq!(world.check(&call), Err((401, "missing_proof")));
    let mut call = world.call();
    call.app_version = None;
    assert_eq!(world.check(&call), Err((400, "missing_app_version")));
}

#[test]
fn a_consent_unknown_to_the_node_is_refused() {
    let world = World::new();
    let mut call = world.call();
    let unknown = "cd".repeat(32);
    call.authorization = Some(format!("{SCHEME} {unknown}"));
    call.proof = Some(world.proof(&world.app, "GET", URL, &unknown, now()));
    assert_eq!(world.check(&call), Err((401, "consent_unknown")));
}

#[test]
fn a_proof_by_another_key_is_refused() {
    let world = World::new();
    let mut call = world.call();
    // A thief holding the consent id but not the app's key.
    call.proof = Some(world.proof(&KeyPair::generate(), "GET", URL, &world.id(), now()));
    assert_eq!(world.check(&call), Err((401, "proof_wrong_key")));
}

#[test]
fn a_consent_naming_a_proof_key_takes_calls_signed_by_that_key_only() {
    let mut world = World::new();
    // A mini-app's consent: the app is still the subject (its approval applies), but a
    // per-installation key signs the calls.
    let installation = KeyPair::generate();
    let mut held = terms(
        &world.app,
        &world.bank,
        &[Permission::ReadAccountsBasic, Permission::ReadBalances],
    );
    held.proof_key = Some(installation.did().clone());
    let consent = block_on(issue_consent(&world.client, &held)).unwrap();
    world
        .node
        .append_local(
            &world.bank,
            Event::consent_granted(consent.credential.clone()),
            3,
        )
        .unwrap();
    world.consent = consent;
    let mut call = world.call();
    assert_eq!(
        world.check(&call),
        Err((401, "proof_wrong_key")),
        "the app's own key"
    );
    call.proof = Some(world.proof(&installation, "GET", URL, &world.id(), now()));
    assert!(world.check(&call).is_ok());
}

#[test]
fn a_tampered_proof_is_refused() {
    let world = World::new();
    let mut call = world.call();
    let proof = call.proof.take().unwrap();
    // Change the signature's first character: still 64 bytes, no longer the signature.
    let at = proof.rfind('.').unwrap() + 1;
    let swapped = if proof[at..].starts_with('A') {
        "B"
    } else {
        "A"
    };
    call.proof = Some(format!("{}{swapped}{}", &proof[..at], &proof[at + 1..]));
    assert_eq!(world.check(&call), Err((401, "proof_bad_signature")));
    call.proof = Some("not.a.proof.at.all".into());
    assert_eq!(world.check(&call), Err((401, "proof_malformed")));
}

#[test]
fn a_proof_for_another_method_or_url_is_refused() {
    let world = World::new();
    let mut call = world.call();
    call.proof = Some(world.proof(&world.app, "POST", URL, &world.id(), now()));
    assert_eq!(world.check(&call), Err((401, "proof_method_mismatch")));
    let other = URL.replace("acc-1", "acc-2");
    call.proof = Some(world.proof(&world.app, "GET", &other, &world.id(), now()));
    assert_eq!(world.check(&call), Err((401, "proof_url_mismatch")));
}

#[test]
fn a_stale_proof_is_refused() {
    let world = World::new();
    let mut call = world.call();
    call.proof = Some(world.proof(
        &world.app,
        "GET",
        URL,
        &world.id(),
        now() - Duration::seconds(120),
    ));
    assert_eq!(world.check(&call), Err((401, "proof_stale")));
}

#[test]
fn a_proof_bound_to_another_consent_is_refused() {
    let world = World::new();
    let mut call = world.call();
    call.proof = Some(world.proof(&world.app, "GET", URL, &"ef".repeat(32), now()));
    assert_eq!(world.check(&call), Err((401, "proof_token_mismatch")));
}

#[test]
fn a_replayed_proof_is_refused() {
    let world = World::new();
    let call = world.call();
    assert!(world.check(&call).is_ok());
    assert_eq!(world.check(&call), Err((401, "proof_replayed")));
}

#[test]
fn a_full_replay_cache_refuses_rather_than_forgets() {
    let mut world = World::new();
    world.replay = ReplayCache::new(1);
    assert!(world.check(&world.call()).is_ok());
    assert_eq!(world.check(&world.call()), Err((429, "replay_cache_full")));
    // Once the first proof has aged out of the window, room is made again.
    let mut later = world.call();
    later.at = now() + Duration::seconds(90);
    later.proof = Some(world.proof(&world.app, "GET", URL, &world.id(), later.at));
    assert!(world.check(&later).is_ok());
}

#[test]
fn a_consent_outside_its_validity_window_is_refused() {
    let world = World::new();
    for (at, status, code) in [
        (
            Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap(),
            403,
            "consent_not_yet_valid",
        ),
        (
            Utc.with_ymd_and_hms(2031, 6, 1, 0, 0, 0).unwrap(),
            401,
            "consent_expired",
        ),
    ] {
        let mut call = world.call();
        call.at = at;
        call.proof = Some(world.proof(&world.app, "GET", URL, &world.id(), at));
        assert_eq!(world.check(&call), Err((status, code)));
    }
}

#[test]
fn a_consent_valid_from_just_after_a_slow_clock_is_served_but_not_earlier() {
    let world = World::new();
    let valid_from = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    for (before, served) in [(Duration::minutes(4), true), (Duration::minutes(6), false)] {
        let mut call = world.call();
        call.at = valid_from - before;
        call.proof = Some(world.proof(&world.app, "GET", URL, &world.id(), call.at));
        let result = world.check(&call);
        if served {
            assert!(result.is_ok(), "{before}: {result:?}");
        } else {
            assert_eq!(result, Err((403, "consent_not_yet_valid")), "{before}");
        }
    }
}

#[test]
fn a_revoked_consent_is_refused() {
    let mut world = World::new();
    let revocation = Revocation::sign(&world.client, world.consent.id, now(), None);
    world
        .node
        .append_local(&world.bank, Event::consent_revoked(revocation), 3)
        .unwrap();
    assert_eq!(world.check(&world.call()), Err((401, "consent_revoked")));
}

#[test]
fn a_consent_for_another_bank_is_refused() {
    let mut world = World::new();
    let elsewhere = block_on(issue_consent(
        &world.client,
        &terms(
            &world.app,
            &world.other_bank,
            &[Permission::ReadBalances, Permission::ReadAccountsBasic],
        ),
    ))
    .unwrap();
    world
        .node
        .append_local(
            &world.other_bank,
            Event::consent_granted(elsewhere.credential.clone()),
            3,
        )
        .unwrap();
    let id = elsewhere.id.to_string();
    let mut call = world.call();
    call.authorization = Some(format!("{SCHEME} {id}"));
    call.proof = Some(world.proof(&world.app, "GET", URL, &id, now()));
    assert_eq!(world.check(&call), Err((403, "consent_other_bank")));
}

#[test]
fn a_consent_signed_by_someone_the_bank_has_not_linked_to_the_account_is_refused() {
    let mut world = World::new();
    // A stranger (say, a TSP that has seen the account reference) signs a consent for the
    // client's account: a valid credential, but not from the account's holder.
    let stranger = KeyPair::generate();
    let forged = block_on(issue_consent(
        &stranger,
        &terms(
            &world.app,
            &world.bank,
            &[Permission::ReadBalances, Permission::ReadAccountsBasic],
        ),
    ))
    .unwrap();
    world
        .node
        .append_local(
            &world.bank,
            Event::consent_granted(forged.credential.clone()),
            3,
        )
        .unwrap();
    let id = forged.id.to_string();
    let mut call = world.call();
    call.authorization = Some(format!("{SCHEME} {id}"));
    call.proof = Some(world.proof(&world.app, "GET", URL, &id, now()));
    assert_eq!(world.check(&call), Err((403, "consent_issuer_not_holder")));
}

#[test]
fn an_account_outside_the_consent_is_refused() {
    let world = World::new();
    let url = URL.replace("acc-1", "acc-2");
    let mut call = world.call();
    call.url = url.clone();
    call.account = Some("acc-2".into());
    call.proof = Some(world.proof(&world.app, "GET", &url, &world.id(), now()));
    assert_eq!(world.check(&call), Err((403, "account_not_in_consent")));
}

#[test]
fn an_endpoint_no_granted_permission_covers_is_refused() {
    let world = World::new();
    let url = URL.replace("balances", "transactions");
    let mut call = world.call();
    call.operation = Operation::Transactions;
    call.url = url.clone();
    call.proof = Some(world.proof(&world.app, "GET", &url, &world.id(), now()));
    assert_eq!(world.check(&call), Err((403, "permission_missing")));
}

#[test]
fn the_bank_must_approve_the_app_version_and_allow_the_permission() {
    let world = World::new();
    for (version, expected) in [
        ("2.0", Err((403, "app_not_approved"))),
        ("0.9", Err((403, "app_suspended"))),
        ("1.1", Err((403, "permission_not_allowed_for_app"))),
    ] {
        let mut call = world.call();
        call.app_version = Some(version.into());
        assert_eq!(world.check(&call), expected, "version {version}");
    }
}

#[test]
fn a_detail_permission_covers_what_its_basic_covers() {
    for operation in [Operation::Accounts, Operation::Account] {
        let covering = operation.covering_permissions();
        assert!(covering.contains(&Permission::ReadAccountsBasic));
        assert!(covering.contains(&Permission::ReadAccountsDetail));
    }
    let transactions = Operation::Transactions.covering_permissions();
    assert!(transactions.contains(&Permission::ReadTransactionsBasic));
    assert!(transactions.contains(&Permission::ReadTransactionsDetail));
    assert!(!transactions.contains(&Permission::ReadBalances));
    assert_eq!(
        Operation::Balances.covering_permissions(),
        &BTreeSet::from([Permission::ReadBalances])
    );
    assert_eq!(
        Operation::CreatePayment.covering_permissions(),
        &BTreeSet::from([Permission::CreateDomesticPayments])
    );
}
