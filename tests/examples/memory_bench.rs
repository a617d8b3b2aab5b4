//! Memory benchmark: the resident set of a bank node and a TSP node, run as real processes, before and after a million unified-API calls served at the bank.
//!
//! Run by `scripts/bench memory`; prints JSON. `BENCH_SERVED` (default 1,000,000) calls
//! over `BENCH_CLIENTS` (default 8) keep-alive clients, each call with a fresh proof.
//! The binaries come from `CONSENTNET_BIN_DIR` (the release build).

// A benchmark harness: any failure should stop it loudly.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use consentnet_identity::consent::block_on;
use consentnet_identity::{KeyPair, PopRequest, issue_consent, sign_pop};
use consentnet_tests::{
    Consortium, NodeProcess, approval_body, balance_terms, http_post_json, link_client,
    manifest_body, node_key, obie_get, publish, wait_connected, wait_for,
};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(60);

fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A process's resident set, in MiB (Linux `VmRSS`).
fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The bank's node takes calls as fast as they come: the per-app bucket is raised far
/// above what one machine can send, and so is the replay cache (proof ids of the last 30 s).
fn unthrottle(config: &std::path::Path) {
    let text = std::fs::read_to_string(config).unwrap();
    let text = text
        .replace(
            "per_app_per_second = 100\n",
            "per_app_per_second = 10000000\n",
        )
        .replace("per_app_burst = 400\n", "per_app_burst = 10000000\n")
        .replace("replay_cache = 262144\n", "replay_cache = 4000000\n");
    assert!(text.contains("per_app_per_second = 10000000"), "{text}");
    std::fs::write(config, text).unwrap();
}

/// What a run of calls is made of: the bank's URL, the consent and the app that calls.
struct Caller {
    url: String,
    consent: String,
    app: KeyPair,
}

/// The bank approves an app; a linked client grants it balances on one sandbox account.
fn journey(consortium: &Consortium, bank: &NodeProcess, tsp: &NodeProcess) -> Caller {
    let bank_key = node_key(&consortium.nodes[0]);
    let app = KeyPair::generate();
    let (code, body) = publish(tsp, &manifest_body(&app, "1.0.0"));
    assert_eq!(code, 201, "{body}");
    let (code, body) = http_post_json(
        &format!("{}/v1/apps/decisions", bank.http_url),
        &approval_body(&bank_key, app.did()),
    );
    assert_eq!(code, 201, "{body}");
    let sandbox = consentnet_bank_adapter::sandbox::SandboxBank::seeded(1, Utc::now());
    let account = sandbox.account_ids()[0].0.clone();
    let client = KeyPair::generate();
    link_client(&consortium.nodes[0], bank, &client, &[&account]);
    let consent = block_on(issue_consent(
        &client,
        &balance_terms(app.did(), bank_key.did(), &account),
    ))
    .unwrap();
    let (code, body) = http_post_json(
        &format!("{}/v1/consents", bank.http_url),
        &consent.credential,
    );
    assert_eq!(code, 201, "{body}");
    let consent = consent.id.to_string();
    let path = format!("/accounts/{account}/balances");
    wait_for("the bank to serve the balance", DEADLINE, || {
        (obie_get(&bank.http_url, &path, &consent, &app).0 == 200).then_some(())
    });
    Caller {
        url: format!("{}/open-banking/v4.0/aisp{path}", bank.http_url),
        consent,
        app,
    }
}

/// Makes `calls` authorized calls over `clients` keep-alive connections; answers how
/// many were served (200).
fn drive(caller: &Caller, calls: u64, clients: u64) -> u64 {
    let next = AtomicU64::new(0);
    let served = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| {
                let agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(20)))
                    .build()
                    .new_agent();
                while next.fetch_add(1, Ordering::Relaxed) < calls {
                    let proof = sign_pop(
                        &caller.app,
                        PopRequest {
                            method: "GET",
                            url: &caller.url,
                            access_token: &caller.consent,
                        },
                        Utc::now(),
                    );
                    let mut response = agent
                        .get(&caller.url)
                        .header("authorization", format!("ConsentNet {}", caller.consent))
                        .header("dpop", proof)
                        .header("x-consentnet-app-version", "1.0.0")
                        .call()
                        .unwrap();
                    let _ = response.body_mut().read_to_vec();
                    if response.status() == 200 {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    served.into_inner()
}

fn main() {
    let calls = env_count("BENCH_SERVED", 1_000_000);
    let clients = env_count("BENCH_CLIENTS", 8);
    let consortium = Consortium::create(&[("bank", "Memory Bank"), ("tsp", "Memory TSP")]);
    unthrottle(&consortium.nodes[0].dir.join("node.toml"));
    let bank = consortium.start(0, DEADLINE);
    let tsp = consortium.start(1, DEADLINE);
    wait_connected(&[&bank, &tsp], 1, DEADLINE);
    let caller = journey(&consortium, &bank, &tsp);
    let setup_rss = (rss_mib(bank.pid()), rss_mib(tsp.pid()));

    // A warm-up, so buffers, caches and the allocator reach their working size first.
    let warm = (calls / 50).max(1_000);
    assert_eq!(
        drive(&caller, warm, clients),
        warm,
        "every warm-up call is served"
    );
    let start_rss = (rss_mib(bank.pid()), rss_mib(tsp.pid()));

    let mut samples = Vec::new();
    let tenth = (calls / 10).max(1);
    let started = Instant::now();
    let mut served = 0;
    while served < calls {
        let part = tenth.min(calls - served);
        assert_eq!(drive(&caller, part, clients), part, "every call is served");
        served += part;
        samples.push(json!({
            "calls": served,
            "bank_rss_mib": rss_mib(bank.pid()),
            "tsp_rss_mib": rss_mib(tsp.pid()),
        }));
    }
    let seconds = started.elapsed().as_secs_f64();
    let end_rss = (rss_mib(bank.pid()), rss_mib(tsp.pid()));
    let tsp_growth = end_rss.1 / start_rss.1;
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "date": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "calls": served,
            "warm_up_calls": warm,
            "clients": clients,
            "seconds": seconds,
            "calls_per_second": served as f64 / seconds,
            "bank": {
                "rss_before_warm_up_mib": setup_rss.0,
                "rss_start_mib": start_rss.0,
                "rss_end_mib": end_rss.0,
                "target_rss_mib": 200.0,
                "target_met": end_rss.0 < 200.0,
            },
            "tsp": {
                "rss_before_warm_up_mib": setup_rss.1,
                "rss_start_mib": start_rss.1,
                "rss_end_mib": end_rss.1,
                "growth_ratio": tsp_growth,
                "target_growth_ratio": 1.1,
                "target_met": tsp_growth <= 1.1,
            },
            "samples": samples,
            "target_met": end_rss.0 < 200.0 && tsp_growth <= 1.1 && served >= 1_000_000,
        }))
        .unwrap()
    );
}
