//! How soon a TSP learns of a revocation: one bank node (release build), an app with a push endpoint on loopback, consents revoked one at a time, and the time from the log taking each revocation to the app's endpoint holding the bank's SET for it. JSON on stdout.
//!
//! The same revocations are timed to the bank's revocation status list: from the log taking each to the list, fetched as any outsider would, showing its bit.
//!
//! `BENCH_EVENTS` revocations (default 200, at most the 1,000 consents a client may hold). The target for both: p99 under a second.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{BufRead as _, Read as _, Write as _};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use consentnet_identity::consent::{StatusEntry, block_on};
use consentnet_identity::{KeyPair, Revocation, b64url_decode, issue_consent};
use consentnet_tests::{
    Consortium, NodeProcess, approval_body, balance_terms, http_get, http_post_json, link_client,
    manifest_with_events, node_key, publish,
};
use serde_json::{Value, json};

const TARGET_P99_MS: f64 = 1_000.0;

/// Arrivals at the app's endpoint: consent id -> when its SET came.
type Arrivals = Arc<(Mutex<HashMap<String, Instant>>, Condvar)>;

/// The consent a SET names.
fn consent_of(set: &str) -> Option<String> {
    let claims: Value = serde_json::from_slice(&b64url_decode(set.split('.').nth(1)?)?).ok()?;
    let events = claims["events"].as_object()?;
    let (_, event) = events.iter().next()?;
    event["subject"]["http://openbanking.org.uk/rid"]
        .as_str()
        .map(str::to_owned)
}

/// The app's push endpoint: takes each SET with `202` and notes when it came.
fn endpoint(arrivals: Arrivals) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let arrivals = arrivals.clone();
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(&stream);
                let (mut length, mut line) = (0usize, String::new());
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    line.clear();
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let came = Instant::now();
                let _ = write!(
                    &stream,
                    "HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                if let Some(consent) = consent_of(&String::from_utf8_lossy(&body)) {
                    let (map, ready) = &*arrivals;
                    map.lock().unwrap().insert(consent, came);
                    ready.notify_all();
                }
            });
        }
    });
    url
}

/// Whether the list credential at `url` marks `index` revoked.
fn bit_set(url: &str, index: u32) -> bool {
    let (status, body) = http_get(url);
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    let encoded = list["credentialSubject"]["encodedList"].as_str().unwrap();
    let compressed = consentnet_identity::b64url_decode(&encoded[1..]).unwrap();
    let mut bits = Vec::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_end(&mut bits)
        .unwrap();
    bits[(index / 8) as usize] & (0x80 >> (index % 8)) != 0
}

/// Polls the list at `url` until it marks `index` revoked; when it first did.
fn bit_seen(url: &str, index: u32) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if bit_set(url, index) {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "bit {index} not set within 30 s");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// p50, p99 and max of `latencies` against the target.
fn summary(mut latencies: Vec<f64>) -> Value {
    latencies.sort_by(f64::total_cmp);
    let p99 = percentile(&latencies, 0.99);
    json!({
        "p50_ms": percentile(&latencies, 0.5),
        "p99_ms": p99,
        "max_ms": latencies.last().copied().unwrap_or_default(),
        "target_p99_ms": TARGET_P99_MS,
        "met": p99 < TARGET_P99_MS,
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() {
    let count: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let consortium = Consortium::create(&[("bank", "Bench Bank")]);
    let node = &consortium.nodes[0];
    consentnet_tests::forms::enable_portal(node);
    let bank = NodeProcess::start(node, &[], Duration::from_secs(60));
    let arrivals: Arrivals = Arc::default();
    let events = endpoint(arrivals.clone());
    let app = KeyPair::generate();
    let (status, body) = publish(
        &bank,
        &manifest_with_events(&app, "1.0.0", "https://budget.example/callback", &events),
    );
    assert_eq!(status, 201, "{body}");
    let bank_key = node_key(node);
    let (status, body) = http_post_json(
        &format!("{}/v1/apps/decisions", bank.http_url),
        &approval_body(&bank_key, app.did()),
    );
    assert_eq!(status, 201, "{body}");
    let account = consentnet_tests::sandbox_account();
    let client = KeyPair::generate();
    link_client(node, &bank, &client, &[&account]);
    let (_, identity) = http_get(&format!("{}/.well-known/consentnet-node", bank.http_url));
    let identity: Value = serde_json::from_str(&identity).unwrap();
    let list_url = identity["status_list"].as_str().unwrap().to_owned();
    let (mut latencies, mut to_list) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for n in 0..count {
        let mut terms = balance_terms(app.did(), bank_key.did(), &account);
        terms.purpose = format!("Budgeting {n}");
        // A random index another consent holds is refused: the wallet picks again.
        let (consent, index) = loop {
            let entry = StatusEntry::random(&list_url);
            let index = entry.index;
            terms.status = Some(entry);
            let consent = block_on(issue_consent(&client, &terms)).unwrap();
            let (status, body) = http_post_json(
                &format!("{}/v1/consents", bank.http_url),
                &consent.credential,
            );
            if status != 409 {
                assert_eq!(status, 201, "{body}");
                break (consent, index);
            }
        };
        let revocation = Revocation::sign(&client, consent.id, Utc::now(), None);
        let (status, body) = http_post_json(
            &format!("{}/v1/revocations", bank.http_url),
            &serde_json::to_value(&revocation).unwrap(),
        );
        // On the log from here: the app is told from this moment on.
        let taken = Instant::now();
        assert_eq!(status, 201, "{body}");
        to_list.push(
            bit_seen(&list_url, index)
                .saturating_duration_since(taken)
                .as_secs_f64()
                * 1000.0,
        );
        let id = consent.id.to_string();
        let (map, ready) = &*arrivals;
        let mut held = map.lock().unwrap();
        let deadline = taken + Duration::from_secs(30);
        while !held.contains_key(&id) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no event for consent {n} within 30 s");
            held = ready.wait_timeout(held, left).unwrap().0;
        }
        let came = held[&id];
        latencies.push(came.saturating_duration_since(taken).as_secs_f64() * 1000.0);
    }
    let watch_ms = consentnet_node::bank::events::WATCH_EVERY.as_secs_f64() * 1000.0;
    let report = json!({
        "date": Utc::now().to_rfc3339(),
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "revocations": count,
        "watch_interval_ms": watch_ms,
        "push": summary(latencies),
        "status_list": summary(to_list),
    });
    println!("{report:#}");
}
