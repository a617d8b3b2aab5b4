//! Shared fixtures for the consent-chain tests: a consortium of keys, a genesis, consents and events.

#![allow(dead_code, clippy::unwrap_used)]

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use consentnet_consent_chain::StoreError;
use consentnet_consent_chain::audit::RecordSource;
use consentnet_consent_chain::merkle::batch_root;
use consentnet_identity::Did;

use chrono::{Duration, TimeZone, Utc};
use consentnet_consent_chain::event::{
    AccessCommitment, AccessRecord, AppAction, AppDecision, Outcome,
};
use consentnet_consent_chain::{Event, Genesis, Member, Role};
use consentnet_identity::{
    ConsentId, ConsentTerms, KeyPair, Permission, Revocation, VerifiedConsent,
};

pub use consentnet_identity::consent::block_on;

/// A consortium: two banks, a TSP and a regulator, each with its node key.
pub struct Consortium {
    pub bank_a: KeyPair,
    pub bank_b: KeyPair,
    pub tsp: KeyPair,
    pub regulator: KeyPair,
    pub genesis: Genesis,
}

impl Consortium {
    pub fn new() -> Self {
        let bank_a = KeyPair::generate();
        let bank_b = KeyPair::generate();
        let tsp = KeyPair::generate();
        let regulator = KeyPair::generate();
        let member = |key: &KeyPair, role, name: &str| Member {
            did: key.did().clone(),
            role,
            peer_id: format!("peer-{name}"),
            name: name.into(),
        };
        let genesis = Genesis {
            network: "test".into(),
            members: vec![
                member(&bank_a, Role::Bank, "bank-a"),
                member(&bank_b, Role::Bank, "bank-b"),
                member(&tsp, Role::Tsp, "tsp"),
                member(&regulator, Role::Regulator, "regulator"),
            ],
        };
        Self {
            bank_a,
            bank_b,
            tsp,
            regulator,
            genesis,
        }
    }

    /// The node keys in genesis order.
    pub fn nodes(&self) -> [&KeyPair; 4] {
        [&self.bank_a, &self.bank_b, &self.tsp, &self.regulator]
    }
}

pub fn terms(app: &KeyPair, bank: &KeyPair) -> ConsentTerms {
    ConsentTerms {
        app: app.did().clone(),
        bank: bank.did().clone(),
        accounts: vec!["acc-1".into()],
        permissions: BTreeSet::from([Permission::ReadAccountsBasic, Permission::ReadBalances]),
        payment_limits: None,
        purpose: "Budgeting".into(),
        valid_from: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        valid_until: Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
        proof_key: None,
        status: None,
    }
}

/// A consent by a fresh client for the consortium's TSP app at `bank`.
pub fn consent(bank: &KeyPair, app: &KeyPair) -> (KeyPair, VerifiedConsent) {
    let client = KeyPair::generate();
    let consent = block_on(consentnet_identity::issue_consent(
        &client,
        &terms(app, bank),
    ))
    .unwrap();
    (client, consent)
}

pub fn grant(consent: &VerifiedConsent) -> Event {
    Event::consent_granted(consent.credential.clone())
}

pub fn revoke(client: &KeyPair, id: ConsentId, at_ms: i64) -> Event {
    let time = Utc.timestamp_millis_opt(at_ms).unwrap();
    Event::consent_revoked(Revocation::sign(client, id, time, None))
}

/// One served record under `id` at `at_ms`.
pub fn record(id: ConsentId, at_ms: u64) -> AccessRecord {
    AccessRecord {
        consent_id: id,
        operation: "GET /aisp/accounts".into(),
        time: at_ms,
        outcome: Outcome::Served,
    }
}

/// The bank's commitment to a batch `batch` of `records`.
pub fn commitment(bank: &KeyPair, batch: u64, records: &[AccessRecord]) -> Event {
    Event::access_committed(
        bank,
        AccessCommitment {
            bank: bank.did().clone(),
            batch,
            root: batch_root(records),
            records: records.len() as u32,
            first: records.iter().map(|r| r.time).min().unwrap(),
            last: records.iter().map(|r| r.time).max().unwrap(),
        },
    )
}

/// A commitment to one served record, as batch 1 (for tests that do not audit records).
pub fn access(bank: &KeyPair, id: ConsentId, at_ms: u64) -> Event {
    commitment(bank, 1, &[record(id, at_ms)])
}

/// The banks' own record stores, in memory: each access made through it is kept here
/// and committed to as the next batch of its bank.
#[derive(Default)]
pub struct Records {
    batches: RefCell<HashMap<(Did, u64), Vec<AccessRecord>>>,
}

impl Records {
    /// One served record under `id` at `at_ms`, kept as `bank`'s next batch; returns the
    /// commitment to append.
    pub fn access(&self, bank: &KeyPair, id: ConsentId, at_ms: u64) -> Event {
        let records = vec![record(id, at_ms)];
        let mut batches = self.batches.borrow_mut();
        let batch = batches.keys().filter(|(b, _)| b == bank.did()).count() as u64 + 1;
        let event = commitment(bank, batch, &records);
        batches.insert((bank.did().clone(), batch), records);
        event
    }

    /// Replaces what `bank`'s store holds for `batch`, as a bank that lies would.
    pub fn tamper(&self, bank: &KeyPair, batch: u64, records: Vec<AccessRecord>) {
        self.batches
            .borrow_mut()
            .insert((bank.did().clone(), batch), records);
    }
}

impl RecordSource for Records {
    fn batch(&self, bank: &Did, batch: u64) -> Result<Option<Vec<AccessRecord>>, StoreError> {
        Ok(self.batches.borrow().get(&(bank.clone(), batch)).cloned())
    }
}

pub fn approve(bank: &KeyPair, app: &KeyPair, time: u64) -> Event {
    Event::app_decided(
        bank,
        AppDecision {
            bank: bank.did().clone(),
            app: app.did().clone(),
            version: "1.0.0".into(),
            action: AppAction::Approve {
                permissions: BTreeSet::from([Permission::ReadAccountsBasic]),
                rate_limit: None,
                origins: Default::default(),
            },
            time,
        },
    )
}

pub fn now_ms() -> u64 {
    Utc::now().timestamp_millis() as u64
}

pub fn later(days: i64) -> chrono::DateTime<Utc> {
    Utc::now() + Duration::days(days)
}
