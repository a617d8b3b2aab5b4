//! Read-latency benchmark: the adapter's state reads (consent and app decision) while a 10,000-entry sync is being stored, through the replica's lock (as before the published state) and through the published state, in one run.
//!
//! Run by `scripts/bench log`; prints JSON. `BENCH_SYNC` (default 10,000) entries are
//! stored per phase, in range answers of 512.

// A benchmark harness: any failure should stop it loudly.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use consentnet_bank_adapter::enforce::ConsentSource;
use consentnet_consent_chain::event::{AppAction, AppDecision};
use consentnet_consent_chain::{Entry, Event, FeedHead, Genesis, Member, RocksStore, Role, Sealed};
use consentnet_identity::{Hash32, KeyPair, Permission};
use consentnet_node::core::NodeService;
use serde_json::json;

fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `count` entries of `bank`'s feed after `head`: app decisions, as a bank's feed grows.
fn feed(
    bank: &KeyPair,
    app: &KeyPair,
    head: Option<FeedHead>,
    count: u64,
    offset: u64,
) -> Vec<Sealed> {
    let mut head = head;
    (0..count)
        .map(|i| {
            let decision = AppDecision {
                bank: bank.did().clone(),
                app: app.did().clone(),
                version: format!("1.{}", offset + i),
                action: AppAction::Approve {
                    permissions: [Permission::ReadAccountsBasic].into(),
                    rate_limit: None,
                    origins: Default::default(),
                },
                time: offset + i,
            };
            let entry = Entry::sign(
                bank,
                head,
                u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap(),
                Event::app_decided(bank, decision),
            );
            head = Some(entry.head());
            Sealed::new(entry)
        })
        .collect()
}

/// Read latencies (µs) taken while `entries` are stored through `service`.
fn phase(
    service: &Arc<NodeService>,
    entries: Vec<Sealed>,
    read: &(dyn Fn(&NodeService) + Sync),
) -> (Vec<f64>, f64) {
    let writing = AtomicBool::new(true);
    let mut latencies = Vec::new();
    let mut write_seconds = 0.0;
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let start = Instant::now();
            for run in entries.chunks(512) {
                let outcome = service.receive_entries(run.to_vec());
                assert_eq!(outcome.stored, run.len(), "{outcome:?}");
            }
            writing.store(false, Ordering::Release);
            start.elapsed().as_secs_f64()
        });
        while writing.load(Ordering::Acquire) {
            let start = Instant::now();
            read(service);
            latencies.push(start.elapsed().as_secs_f64() * 1e6);
            std::thread::sleep(Duration::from_micros(50));
        }
        write_seconds = writer.join().unwrap();
    });
    latencies.sort_by(f64::total_cmp);
    (latencies, write_seconds)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(index).copied().unwrap_or(0.0)
}

fn summary(latencies: &[f64], write_seconds: f64) -> serde_json::Value {
    json!({
        "reads": latencies.len(),
        "p50_us": quantile(latencies, 0.5),
        "p99_us": quantile(latencies, 0.99),
        "max_us": latencies.last().copied().unwrap_or(0.0),
        "sync_seconds": write_seconds,
    })
}

fn main() {
    let count = env_count("BENCH_SYNC", 10_000);
    let (node, source, app) = (
        KeyPair::generate(),
        KeyPair::generate(),
        KeyPair::generate(),
    );
    let genesis = Genesis {
        network: "bench".into(),
        members: [&node, &source]
            .iter()
            .enumerate()
            .map(|(i, key)| Member {
                did: key.did().clone(),
                role: Role::Bank,
                peer_id: format!("peer-{i}"),
                name: format!("bank-{i}"),
            })
            .collect(),
    };
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path()).unwrap();
    let service = Arc::new(NodeService::open(store, genesis, node.clone()).unwrap());
    let first = feed(&source, &app, None, count, 0);
    let second = feed(
        &source,
        &app,
        Some(first.last().unwrap().head()),
        count,
        count,
    );
    let consent = Hash32([7; 32]);
    let (bank, app_did) = (source.did().clone(), app.did().clone());
    // The adapter's two state reads per call, through the replica's lock...
    let locked = |service: &NodeService| {
        service.read(|replica| {
            std::hint::black_box(replica.state().consent_at(&consent, chrono::Utc::now()));
            std::hint::black_box(replica.state().app_decision(&bank, &app_did, "1.1"));
        });
    };
    // ... and through the state the writer publishes after each commit.
    let published = |service: &NodeService| {
        let state = service.state();
        std::hint::black_box(state.consent_at(&consent, chrono::Utc::now()));
        std::hint::black_box(state.app_decision(&bank, &app_did, "1.1"));
    };
    let (locked_latencies, locked_write) = phase(&service, first, &locked);
    let (published_latencies, published_write) = phase(&service, second, &published);
    let p99 = |l: &[f64]| quantile(l, 0.99);
    let out = json!({
        "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "sync_entries_per_phase": count,
        "through_the_lock": summary(&locked_latencies, locked_write),
        "published_state": summary(&published_latencies, published_write),
        "p99_ratio_published_to_lock": p99(&published_latencies) / p99(&locked_latencies),
        "target": "published p99 below the locked p99 while a sync is stored",
        "target_met": p99(&published_latencies) < p99(&locked_latencies),
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
