//! Adapter benchmark: authorized `GET .../balances` over real HTTPS (the node's own listener: rustls, connection caps, header timeouts) through the full consent check and the per-app rate limit, against the same server with the check skipped, in one run; latency at half of the checked peak; and the cost of TLS itself, the checked server over HTTPS against plain HTTP.
//!
//! Run by `scripts/bench adapter`; prints JSON. `BENCH_SECONDS` (default 5) per phase,
//! `BENCH_CLIENTS` (default 32) concurrent keep-alive clients, `BENCH_ROUNDS` (default 5)
//! rounds of the checked/unchecked pairs, reported as the round with the median ratio.

// A benchmark harness: any failure should stop it loudly.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use consentnet_bank_adapter::api::AppLimits;
use consentnet_bank_adapter::api::{APP_VERSION, AccessSink, Adapter, Check, router};
use consentnet_bank_adapter::enforce::{ReplayCache, SCHEME};
use consentnet_bank_adapter::limits::Rate;
use consentnet_bank_adapter::links::{LinkRequest, Links};
use consentnet_bank_adapter::sandbox::SandboxBank;
use consentnet_bank_adapter::signatures::SignatureBatcher;
use consentnet_consent_chain::event::{AppAction, AppDecision, Outcome};
use consentnet_consent_chain::{Event, Genesis, Member, MemoryStore, Replica, Role};
use consentnet_identity::consent::block_on;
use consentnet_identity::{
    ConsentId, ConsentTerms, KeyPair, Permission, PopRequest, issue_consent, sign_pop,
};
use consentnet_node::server::listener::{self, ConnectionLimits};
use consentnet_node::server::tls::{Ca, ReloadingCert, TlsAcceptor};
use serde_json::json;

fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Access records are counted, as the node's queue would take them.
struct Discard;

impl AccessSink for Discard {
    fn record(&self, _: ConsentId, _: &'static str, _: DateTime<Utc>, _: Outcome) {}
}

struct Setup {
    bank: KeyPair,
    links: Arc<Links>,
    _links_dir: tempfile::TempDir,
    state: Arc<consentnet_consent_chain::State>,
    sandbox: Arc<SandboxBank>,
    app: KeyPair,
    consent: String,
    account: String,
}

impl Setup {
    /// An adapter over this bank, answering at `public_url`.
    fn adapter(&self, public_url: String, check: Check) -> Arc<Adapter> {
        Arc::new(Adapter {
            bank: self.bank.did().clone(),
            public_url,
            source: self.state.clone(),
            holders: self.links.clone(),
            replay: ReplayCache::new(4_000_000),
            signatures: SignatureBatcher::new(),
            connector: RwLock::new(self.sandbox.clone()),
            records: Arc::new(Discard),
            ledger: Arc::default(),
            check,
            unproven: Default::default(),
            // Limiting runs on every call, with a rate the benchmark never reaches.
            limits: AppLimits::new(Rate {
                per_second: u32::MAX,
                burst: u32::MAX,
            }),
            signer: None,
            resources: Default::default(),
            nonces: Default::default(),
        })
    }
}

fn setup() -> Setup {
    let (bank, app, client) = (
        KeyPair::generate(),
        KeyPair::generate(),
        KeyPair::generate(),
    );
    let sandbox = Arc::new(SandboxBank::seeded(3, Utc::now()));
    let account = sandbox.account_ids()[0].0.clone();
    let genesis = Genesis {
        network: "bench".into(),
        members: vec![Member {
            did: bank.did().clone(),
            role: Role::Bank,
            peer_id: "peer".into(),
            name: "Bank".into(),
        }],
    };
    let mut node = Replica::open(MemoryStore::new(), &genesis).unwrap();
    let permissions = BTreeSet::from([Permission::ReadAccountsBasic, Permission::ReadBalances]);
    let terms = ConsentTerms {
        app: app.did().clone(),
        bank: bank.did().clone(),
        accounts: vec![account.clone()],
        permissions: permissions.clone(),
        payment_limits: None,
        purpose: "Benchmark".into(),
        valid_from: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        valid_until: Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
        proof_key: None,
        status: None,
    };
    let consent = block_on(issue_consent(&client, &terms)).unwrap();
    node.append_local(&bank, Event::consent_granted(consent.credential.clone()), 1)
        .unwrap();
    let decision = AppDecision {
        bank: bank.did().clone(),
        app: app.did().clone(),
        version: "1.0".into(),
        action: AppAction::Approve {
            permissions,
            rate_limit: None,
            origins: Default::default(),
        },
        time: 2,
    };
    node.append_local(&bank, Event::app_decided(&bank, decision), 2)
        .unwrap();
    // The client is the bank's linked customer for the account, as in production.
    let links_dir = tempfile::tempdir().unwrap();
    let links = Links::open(&links_dir.path().join("links.jsonl")).unwrap();
    let code = links
        .issue_code("bench-customer", std::slice::from_ref(&account), Utc::now())
        .unwrap();
    links
        .redeem(
            bank.did(),
            &LinkRequest::sign(&client, bank.did(), &code.code),
            Utc::now(),
        )
        .unwrap();
    Setup {
        state: Arc::new(node.state().clone()),
        links: Arc::new(links),
        _links_dir: links_dir,
        bank,
        sandbox,
        app,
        consent: consent.id.to_string(),
        account,
    }
}

/// What every client shares: the app key, the consent, and the CA the server's
/// certificate chains to.
struct Clients {
    app: KeyPair,
    consent: String,
    ca: ureq::tls::Certificate<'static>,
}

/// A keep-alive agent trusting the benchmark's CA.
fn agent(ca: &ureq::tls::Certificate<'static>) -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(std::slice::from_ref(
            ca,
        )))
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .build()
        .new_agent()
}

/// One client's loop: signed GETs until `stop`, optionally paced to `interval`.
fn client(
    url: String,
    setup: Arc<Clients>,
    stop: Arc<AtomicBool>,
    interval: Option<Duration>,
) -> Vec<f64> {
    let agent = agent(&setup.ca);
    let (app, consent) = (&setup.app, &setup.consent);
    let mut latencies = Vec::new();
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if let Some(interval) = interval {
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            next += interval;
        }
        // Every call carries a fresh proof, checked or not, so clients cost the same.
        let proof = sign_pop(
            app,
            PopRequest {
                method: "GET",
                url: &url,
                access_token: consent,
            },
            Utc::now(),
        );
        let start = Instant::now();
        let mut response = agent
            .get(&url)
            .header("authorization", format!("{SCHEME} {consent}"))
            .header("dpop", proof)
            .header(APP_VERSION, "1.0")
            .call()
            .unwrap();
        let _ = response.body_mut().read_to_vec().unwrap();
        assert_eq!(response.status().as_u16(), 200, "{url}");
        latencies.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    latencies
}

struct Phase {
    rate: f64,
    p50: f64,
    p99: f64,
}

fn run_phase(
    url: &str,
    setup: &Arc<Clients>,
    clients: u64,
    seconds: u64,
    interval: Option<Duration>,
) -> Phase {
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (url, setup, stop) = (url.to_owned(), setup.clone(), stop.clone());
            std::thread::spawn(move || client(url, setup, stop, interval))
        })
        .collect();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut latencies: Vec<f64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    Phase {
        rate: latencies.len() as f64 / elapsed,
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// The checked/unchecked throughput the check must keep, at both connection counts.
const TARGET_RATIO: f64 = 0.85;

/// One round: the unchecked server, then the checked one, at the same load.
struct Pair {
    unchecked: Phase,
    checked: Phase,
}

impl Pair {
    fn measure(urls: [&str; 2], setup: &Arc<Clients>, clients: u64, seconds: u64) -> Self {
        let [unchecked, checked] = urls.map(|url| run_phase(url, setup, clients, seconds, None));
        Self { unchecked, checked }
    }

    fn ratio(&self) -> f64 {
        self.checked.rate / self.unchecked.rate
    }
}

/// The round with the median ratio (the lower middle one of an even count).
fn median(mut pairs: Vec<Pair>) -> Pair {
    pairs.sort_by(|a, b| a.ratio().total_cmp(&b.ratio()));
    pairs.swap_remove((pairs.len() - 1) / 2)
}

/// A loopback listener on a free port.
fn bind(runtime: &tokio::runtime::Runtime) -> tokio::net::TcpListener {
    runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap()
}

/// What the benchmark's listeners allow: more than its clients use.
const LIMITS: ConnectionLimits = ConnectionLimits {
    header_timeout: Duration::from_secs(10),
    per_ip: 4096,
    total: 4096,
};

/// A certificate for 127.0.0.1 from a fresh CA: the acceptor, and the CA to trust.
fn tls() -> (TlsAcceptor, ureq::tls::Certificate<'static>) {
    let ca = Ca::generate().unwrap();
    let (cert, key) = ca.issue(&["127.0.0.1".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let reloading = Arc::new(ReloadingCert::load(&cert_file, &key_file).unwrap());
    let acceptor = consentnet_node::server::tls::acceptor(reloading).unwrap();
    let trusted = ureq::tls::Certificate::from_pem(ca.cert_pem().as_bytes())
        .unwrap()
        .to_owned();
    (acceptor, trusted)
}

fn main() {
    let seconds = env_count("BENCH_SECONDS", 5);
    // A bank's API serves many TSP connections at once; both servers are saturated at
    // this load (the unchecked rate is the same as with 8).
    let clients = env_count("BENCH_CLIENTS", 32);
    let few_clients = env_count("BENCH_FEW_CLIENTS", 8);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let (acceptor, ca) = tls();
    let setup = setup();
    // The same server three times: checked over HTTPS, with only the consent lookup over
    // HTTPS, and checked over plain HTTP. The proofs name each one's URL.
    let listeners = [bind(&runtime), bind(&runtime), bind(&runtime)];
    let [checked, unchecked, plain] = [0, 1, 2].map(|i| listeners[i].local_addr().unwrap());
    let [checked_listener, unchecked_listener, plain_listener] = listeners;
    let checked_base = format!("https://{checked}");
    let unchecked_base = format!("https://{unchecked}");
    let plain_base = format!("http://{plain}");
    for (listener, base, check, tls) in [
        (
            checked_listener,
            &checked_base,
            Check::Enforced,
            Some(acceptor.clone()),
        ),
        (
            unchecked_listener,
            &unchecked_base,
            Check::SkippedForBenchmark,
            Some(acceptor),
        ),
        (plain_listener, &plain_base, Check::Enforced, None),
    ] {
        // Served by the node's own listener code, over TLS where `tls` is given.
        let router = router(setup.adapter(base.clone(), check));
        runtime.spawn(listener::serve(
            listener,
            router,
            tls,
            LIMITS,
            stopped.clone(),
        ));
    }
    let path = format!(
        "/open-banking/v4.0/aisp/accounts/{}/balances",
        setup.account
    );
    let checked_url = format!("{checked_base}{path}");
    let unchecked_url = format!("{unchecked_base}{path}");
    let plain_url = format!("{plain_base}{path}");
    let client_setup = Arc::new(Clients {
        app: setup.app,
        consent: setup.consent,
        ca,
    });

    // Warm up, then rounds of unchecked against checked at full load with many and with
    // few connections (few: proof signatures then rarely batch), then TLS's cost and
    // checked at half its peak once.
    run_phase(&unchecked_url, &client_setup, clients, 1, None);
    let rounds = env_count("BENCH_ROUNDS", 5).max(1);
    let mut many = Vec::new();
    let mut few = Vec::new();
    for _ in 0..rounds {
        many.push(Pair::measure(
            [&unchecked_url, &checked_url],
            &client_setup,
            clients,
            seconds,
        ));
        few.push(Pair::measure(
            [&unchecked_url, &checked_url],
            &client_setup,
            few_clients,
            seconds,
        ));
    }
    let round_ratios = |pairs: &[Pair]| pairs.iter().map(Pair::ratio).collect::<Vec<f64>>();
    let (many_ratios, few_ratios) = (round_ratios(&many), round_ratios(&few));
    let Pair {
        unchecked: baseline,
        checked: full,
    } = median(many);
    let Pair {
        unchecked: few_plain,
        checked: few_full,
    } = median(few);
    let over_http = run_phase(&plain_url, &client_setup, clients, seconds, None);
    let per_client = Duration::from_secs_f64(clients as f64 / (full.rate / 2.0));
    let half = run_phase(
        &checked_url,
        &client_setup,
        clients,
        seconds,
        Some(per_client),
    );
    let ratio = full.rate / baseline.rate;
    let few_ratio = few_full.rate / few_plain.rate;
    let report = json!({
        "date": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "clients": clients,
        "seconds_per_phase": seconds,
        "rounds": rounds,
        "round_ratios": many_ratios,
        "transport": "HTTPS (TLS 1.3, the node's listener), per-app rate limit on",
        "unchecked": { "requests_per_second": baseline.rate, "p50_ms": baseline.p50, "p99_ms": baseline.p99 },
        "checked": { "requests_per_second": full.rate, "p50_ms": full.p50, "p99_ms": full.p99 },
        "checked_at_half_peak": { "requests_per_second": half.rate, "p50_ms": half.p50, "p99_ms": half.p99 },
        "throughput_ratio": ratio,
        "tls": {
            "checked_over_http_requests_per_second": over_http.rate,
            "checked_over_http_p99_ms": over_http.p99,
            "https_to_http_throughput_ratio": full.rate / over_http.rate,
        },
        "few_clients": {
            "clients": few_clients,
            "unchecked_requests_per_second": few_plain.rate,
            "checked_requests_per_second": few_full.rate,
            "throughput_ratio": few_ratio,
            "round_ratios": few_ratios,
        },
        "targets": {
            "throughput_ratio_at_least": TARGET_RATIO,
            "throughput_met": ratio >= TARGET_RATIO,
            "few_clients_throughput_met": few_ratio >= TARGET_RATIO,
            "p99_at_half_peak_under_ms": 5.0,
            "p99_met": half.p99 < 5.0,
        },
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
