//! Cluster benchmark: a four-node loopback consortium of real processes; propagation latency under background load, and replicated ingest, next to the signature-verification bound measured in the same run.
//!
//! Run by `scripts/bench cluster` (release binaries); prints JSON.
//! `BENCH_LATENCY_EVENTS` (default 1000) events at `BENCH_RATE` (default 100) per second
//! for latency; for replicated ingest, `BENCH_INGEST_ROUNDS` (default 3) rounds of
//! `BENCH_INGEST_EVENTS` (default 12000) events from `BENCH_SUBMITTERS` (default 32)
//! concurrent HTTP clients, the median round reported.

// A benchmark harness: any failure should stop it loudly.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use consentnet_consent_chain::Event;
use consentnet_consent_chain::event::{AppManifest, Platform};
use consentnet_identity::{KeyPair, Permission};
use consentnet_tests::{Consortium, NodeProcess, http_get, wait_for};
use serde_json::Value;

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent()
}

/// Pre-signed `POST /v1/apps` bodies: distinct versions of one app.
fn manifests(app: &KeyPair, prefix: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let manifest = AppManifest {
                app: app.did().clone(),
                name: "Bench App".into(),
                description: "A benchmark app".into(),
                version: format!("{prefix}.{i}"),
                platform: Platform::Mobile,
                redirect_uris: vec!["https://bench.example/cb".into()],
                events_uri: None,
                requested_permissions: BTreeSet::from([Permission::ReadAccountsBasic]),
                bundle_hash: "cd".repeat(32),
                mini_app: None,
            };
            let mut body = serde_json::to_value(Event::app_published(app, manifest)).unwrap();
            body.as_object_mut().unwrap().remove("type");
            body.to_string()
        })
        .collect()
}

/// Posts every body to `path` at `address` over `connections` keep-alive HTTP/1.1
/// connections, driven from one thread (a small hand-written client: the load generator
/// shares the cores with the four nodes, so it should cost as little as it can). Panics
/// unless every submission is acknowledged with 201.
fn post_all(address: &str, path: &str, bodies: &[String], connections: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let next = std::rc::Rc::new(std::cell::Cell::new(0usize));
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let tasks: Vec<_> = (0..connections)
            .map(|_| {
                let next = next.clone();
                let (address, path) = (address.to_owned(), path.to_owned());
                let bodies = bodies.to_vec();
                tokio::task::spawn_local(async move {
                    let stream = tokio::net::TcpStream::connect(&address).await.unwrap();
                    stream.set_nodelay(true).unwrap();
                    let mut buffer = Vec::with_capacity(8192);
                    loop {
                        let i = next.get();
                        let Some(body) = bodies.get(i) else { break };
                        next.set(i + 1);
                        let request = format!(
                            "POST {path} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        write_all(&stream, request.as_bytes()).await;
                        let status = read_response(&stream, &mut buffer).await;
                        assert_eq!(status, 201, "submission acknowledged");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
}

async fn write_all(stream: &tokio::net::TcpStream, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        stream.writable().await.unwrap();
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("writing a submission: {e}"),
        }
    }
}

/// Reads one response (status line, headers, a `content-length` body); returns its
/// status. `buffer` keeps nothing between responses: one request is in flight at a time.
async fn read_response(stream: &tokio::net::TcpStream, buffer: &mut Vec<u8>) -> u16 {
    buffer.clear();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buffer[..end]).expect("response head is text");
            let status: u16 = head
                .split(' ')
                .nth(1)
                .and_then(|code| code.parse().ok())
                .expect("status line");
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("content-length");
            if buffer.len() >= end + 4 + length {
                return status;
            }
        }
        stream.readable().await.unwrap();
        match stream.try_read(&mut chunk) {
            Ok(0) => panic!("the node closed the connection"),
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("reading a receipt: {e}"),
        }
    }
}

fn submit(agent: &ureq::Agent, url: &str, body: &str) {
    let mut response = agent
        .post(&format!("{url}/v1/apps"))
        .header("content-type", "application/json")
        .send(body)
        .expect("submission completes");
    assert_eq!(response.status().as_u16(), 201, "submission acknowledged");
    // Reading the receipt to its end lets the agent reuse the connection, as a TSP's
    // client does.
    response.body_mut().read_to_string().expect("receipt");
}

/// The seq of `origin`'s feed held by the node at `url`.
fn held(agent: &ureq::Agent, url: &str, origin: &str) -> u64 {
    let mut response = agent.get(&format!("{url}/status")).call().expect("status");
    let status: Value =
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    status["frontier"][origin]["seq"].as_u64().unwrap_or(0)
}

fn raw_verify_rate() -> f64 {
    let key = KeyPair::generate();
    let message = vec![0x5a_u8; 400];
    let signature = ed25519_dalek::Signature::from_bytes(&key.sign(&message));
    let public = key.public_key();
    let mut rates = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let mut count = 0u64;
        while start.elapsed() < Duration::from_millis(300) {
            for _ in 0..64 {
                black_box(public.verify_strict(black_box(&message), &signature)).expect("valid");
            }
            count += 64;
        }
        rates.push(count as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    rates[2]
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Propagation latency: one submitter at a steady `rate` into node 0, a watcher polling
/// node 1. Returns the sorted latencies in milliseconds and the rate achieved.
fn measure_latency(
    operators: &[String],
    origin: &str,
    app: &KeyPair,
    latency_events: usize,
    rate: usize,
) -> (Vec<f64>, f64) {
    let bodies = manifests(app, "1", latency_events);
    let acked: Arc<Vec<std::sync::OnceLock<Instant>>> = Arc::new(
        (0..latency_events)
            .map(|_| std::sync::OnceLock::new())
            .collect(),
    );
    let watcher = {
        let (url, origin, acked) = (operators[1].clone(), origin.to_owned(), acked.clone());
        std::thread::spawn(move || {
            let agent = agent();
            let mut seen = vec![None; latency_events];
            let mut next = 0usize;
            let deadline = Instant::now() + Duration::from_secs(600);
            while next < latency_events && Instant::now() < deadline {
                let have = held(&agent, &url, &origin) as usize;
                let now = Instant::now();
                while next < have.min(latency_events) {
                    seen[next] = Some(now);
                    next += 1;
                }
            }
            seen.into_iter()
                .enumerate()
                .filter_map(|(i, seen)| Some(seen?.duration_since(*acked[i].get()?)))
                .collect::<Vec<Duration>>()
        })
    };
    let submitter = agent();
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    for (i, body) in bodies.iter().enumerate() {
        let due = start + period * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let sent = Instant::now();
        // The entry exists once acknowledged; propagation is measured from the send.
        acked[i].set(sent).expect("set once");
        submit(&submitter, &operators[0], body);
    }
    let mut latencies: Vec<f64> = watcher
        .join()
        .expect("watcher")
        .iter()
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let achieved_rate = latency_events as f64 / start.elapsed().as_secs_f64();

    (latencies, achieved_rate)
}

fn main() {
    let latency_events = env_count("BENCH_LATENCY_EVENTS", 1_000);
    let rate = env_count("BENCH_RATE", 100);
    let ingest_events = env_count("BENCH_INGEST_EVENTS", 12_000);
    let submitters = env_count("BENCH_SUBMITTERS", 32);
    let ingest_rounds = env_count("BENCH_INGEST_ROUNDS", 3).max(1);
    let raw = raw_verify_rate();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let consortium = Consortium::create(&[
        ("bank", "Bank A"),
        ("bank", "Bank B"),
        ("tsp", "TSP"),
        ("regulator", "Regulator"),
    ]);
    let nodes: Vec<NodeProcess> = (0..4)
        .map(|i| consortium.start(i, Duration::from_secs(30)))
        .collect();
    wait_for("a connected consortium", Duration::from_secs(60), || {
        nodes
            .iter()
            .all(|n| n.status()["peers"].as_u64() == Some(3))
            .then_some(())
    });
    let origin = consortium.nodes[0].did().to_owned();
    let operators: Vec<String> = nodes.iter().map(|n| n.operator_url.clone()).collect();
    let app = KeyPair::generate();

    let (latencies, achieved_rate) =
        measure_latency(&operators, &origin, &app, latency_events, rate);

    // Replicated ingest, in rounds: concurrent submitters into node 0, until all four
    // hold it all. Each round's bound comes from raw verify rates measured just before
    // and just after it, so a slow spell of the shared machine weighs on both sides.
    // Per event: the origin verifies the manifest signature and signs the entry (counted
    // as one verify); three receivers each verify the entry and the manifest.
    let verifies_per_event = 2.0 + 3.0 * 2.0;
    // Manifests are published on the operator surface.
    let address = operators[0].trim_start_matches("http://");
    let mut held_so_far = latency_events as u64;
    let mut raw_before = raw_verify_rate();
    let mut rounds = Vec::new();
    for round in 0..ingest_rounds {
        let bodies = manifests(&app, &format!("2.{round}"), ingest_events);
        let start = Instant::now();
        post_all(address, "/v1/apps", &bodies, submitters);
        let acknowledged = start.elapsed().as_secs_f64();
        held_so_far += ingest_events as u64;
        let poll = agent();
        wait_for(
            "every node to hold every event",
            Duration::from_secs(600),
            || {
                operators
                    .iter()
                    .all(|url| held(&poll, url, &origin) >= held_so_far)
                    .then_some(())
            },
        );
        let replicated = start.elapsed().as_secs_f64();
        let raw_after = raw_verify_rate();
        let raw = (raw_before + raw_after) / 2.0;
        let rate = ingest_events as f64 / replicated;
        let bound = raw * cores as f64 / verifies_per_event;
        rounds.push(serde_json::json!({
            "acknowledged_seconds": acknowledged,
            "replicated_seconds": replicated,
            "events_per_second": rate,
            "raw_verify_per_second_per_core": raw,
            "signature_bound_events_per_second": bound,
            "ratio_to_bound": rate / bound,
        }));
        raw_before = raw_after;
    }
    // The median round by ratio is the headline.
    rounds.sort_by(|a, b| {
        a["ratio_to_bound"]
            .as_f64()
            .unwrap()
            .total_cmp(&b["ratio_to_bound"].as_f64().unwrap())
    });
    let median = rounds[rounds.len() / 2].clone();
    let field = |name: &str| median[name].as_f64().unwrap();
    let digests: BTreeSet<String> = operators
        .iter()
        .map(|url| {
            let (_, body) = http_get(&format!("{url}/status"));
            serde_json::from_str::<Value>(&body).unwrap()["state_digest"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();

    // Each node's counters (gossip verdicts, sync requests, entries stored from peers)
    // explain where replication work went.
    let counters: Vec<Value> = operators
        .iter()
        .map(|url| {
            let (_, text) = http_get(&format!("{url}/metrics"));
            let samples: serde_json::Map<String, Value> = text
                .lines()
                .filter(|line| !line.starts_with('#'))
                .filter_map(|line| {
                    let (name, value) = line.rsplit_once(' ')?;
                    Some((name.to_owned(), Value::from(value.parse::<u64>().ok()?)))
                })
                .collect();
            Value::Object(samples)
        })
        .collect();

    let report = serde_json::json!({
        "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "cores": cores,
        "nodes": 4,
        "ed25519_verify_raw_per_second_per_core": raw,
        "propagation": {
            "events": latency_events,
            "target_rate_per_second": rate,
            "achieved_rate_per_second": achieved_rate,
            "measured": latencies.len(),
            "p50_ms": percentile(&latencies, 0.50),
            "p99_ms": percentile(&latencies, 0.99),
            "max_ms": latencies.last().copied().unwrap_or(0.0),
            "target_p99_ms": 250.0,
            "target_met": percentile(&latencies, 0.99) < 250.0,
        },
        "replicated_ingest": {
            "events_per_round": ingest_events,
            "rounds": rounds,
            "concurrent_submitters": submitters,
            "acknowledged_seconds": field("acknowledged_seconds"),
            "replicated_seconds": field("replicated_seconds"),
            "events_per_second": field("events_per_second"),
            "verifies_per_event": verifies_per_event,
            "raw_verify_per_second_per_core": field("raw_verify_per_second_per_core"),
            "signature_bound_events_per_second": field("signature_bound_events_per_second"),
            "ratio_to_bound": field("ratio_to_bound"),
            "target_ratio": 0.5,
            "target_met": field("ratio_to_bound") >= 0.5,
        },
        "state_digests_agree": digests.len() == 1,
        "node_counters": counters,
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
