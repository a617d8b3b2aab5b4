//! Mutation fuzzing of the parsers that read what strangers send: DPoP proofs and JWS, consent credentials, any credential or presentation the VC-API verifies, log entries, bank mapping files and strict JSON. Each target starts from valid inputs, mutates them (bytes, and the decoded parts of a JWS) for a time budget, and counts inputs and panics; a panic is a crash, printed with its input.

// A fuzzer's failures are its findings: unwraps on the seeds are fine.
#![allow(clippy::unwrap_used)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::Utc;
use consentnet_consent_chain::Entry;
use consentnet_consent_chain::event::{AppManifest, Event, Platform};
use consentnet_identity::consent::block_on;
use consentnet_identity::{KeyPair, Permission, PopRequest, issue_consent, proof_signer, sign_pop};
use serde_json::{Value, json};

/// A small, seeded xorshift generator: the same seed gives the same inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[u8] = b"\x00\xff\"\\{}[],:.-+0123456789eE\n\t trufalsnl\x7f\xc3\xa9";

/// One random change to `input`.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    let len = input.len();
    match rng.below(8) {
        0 if len > 0 => input[rng.below(len)] ^= 1 << rng.below(8),
        1 if len > 0 => input[rng.below(len)] = INTERESTING[rng.below(INTERESTING.len())],
        2 => input.insert(
            rng.below(len + 1),
            INTERESTING[rng.below(INTERESTING.len())],
        ),
        3 if len > 1 => {
            let start = rng.below(len);
            let end = (start + 1 + rng.below(16)).min(len);
            input.drain(start..end);
        }
        4 if len > 1 => {
            let start = rng.below(len);
            let end = (start + 1 + rng.below(32)).min(len);
            let copy = input[start..end].to_vec();
            let at = rng.below(len + 1);
            input.splice(at..at, copy);
        }
        5 => {
            let other = &seeds[rng.below(seeds.len())];
            if !other.is_empty() {
                let start = rng.below(other.len());
                let end = (start + 1 + rng.below(64)).min(other.len());
                let at = rng.below(len + 1);
                input.splice(at..at, other[start..end].iter().copied());
            }
        }
        6 if len > 0 => input.truncate(rng.below(len)),
        _ => {
            let big = b"9".repeat(1 + rng.below(40));
            let at = rng.below(len + 1);
            input.splice(at..at, big);
        }
    }
}

/// A compact JWS with one of its decoded parts mutated and encoded again.
fn mutate_jws(rng: &mut Rng, token: &str, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    if parts.len() == 3 {
        let which = rng.below(2);
        let mut decoded = B64.decode(&parts[which]).unwrap_or_default();
        for _ in 0..1 + rng.below(3) {
            mutate(rng, &mut decoded, seeds);
        }
        parts[which] = B64.encode(decoded);
    }
    parts.join(".").into_bytes()
}

/// What one target does with an input; a panic is a crash.
type Target = Box<dyn Fn(&[u8])>;
/// A target's valid inputs and the target.
type Seeded = (Vec<Vec<u8>>, Target);

fn pop_target() -> Seeded {
    let app = KeyPair::generate();
    let url = "https://bank.example/open-banking/v4.0/aisp/accounts";
    let request = PopRequest {
        method: "GET",
        url,
        access_token: "ab",
    };
    let proof = sign_pop(&app, request, Utc::now());
    let seeds = vec![proof.into_bytes()];
    let target = Box::new(move |input: &[u8]| {
        let text = String::from_utf8_lossy(input);
        if let Ok(signer) = proof_signer(&text) {
            let _ = consentnet_identity::verify_pop(&text, &signer, request, Utc::now(), 60);
        }
        let _ = consentnet_identity::jose::Jws::decode(&text).map(|jws| jws.verify(app.did()));
    });
    (seeds, target)
}

fn credential_target() -> Seeded {
    let (client, app, bank) = (
        KeyPair::generate(),
        KeyPair::generate(),
        KeyPair::generate(),
    );
    let terms = consentnet_identity::ConsentTerms {
        app: app.did().clone(),
        bank: bank.did().clone(),
        accounts: vec!["acc-1".into()],
        permissions: [Permission::ReadAccountsBasic, Permission::ReadBalances].into(),
        payment_limits: None,
        purpose: "Budgeting".into(),
        valid_from: Utc::now(),
        valid_until: Utc::now() + chrono::Duration::days(30),
        proof_key: None,
        status: None,
    };
    let consent = block_on(issue_consent(&client, &terms)).unwrap();
    let seeds = vec![consent.credential.to_string().into_bytes()];
    let target = Box::new(|input: &[u8]| {
        let _ = consentnet_identity::verify_consent_blocking(input);
    });
    (seeds, target)
}

/// A generic credential issued by `issuer`, as VC-API callers send them.
fn issued(issuer: &KeyPair) -> Value {
    let now = Utc::now();
    let credential = json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential"],
        "validFrom": (now - chrono::Duration::minutes(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "credentialSubject": {
            "id": KeyPair::generate().did(),
            "name": [{ "name": "a" }, { "name": "b", "description": { "name": "c" } }],
        },
    });
    block_on(consentnet_identity::vcapi::issue_credential(
        issuer,
        &credential,
    ))
    .unwrap()
}

fn vcapi_target() -> Seeded {
    use consentnet_identity::vcapi::{sign_presentation, verify_credential, verify_presentation};
    let (issuer, holder) = (KeyPair::generate(), KeyPair::generate());
    let credential = issued(&issuer);
    let presentation = json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiablePresentation"],
        "holder": holder.did(),
        "verifiableCredential": [credential.clone()],
    });
    let presented = block_on(sign_presentation(
        &holder,
        &presentation,
        ("c-1", "verifier.example"),
    ))
    .unwrap();
    let seeds = vec![
        credential.to_string().into_bytes(),
        presented.to_string().into_bytes(),
    ];
    let target = Box::new(|input: &[u8]| {
        let Ok(document) = serde_json::from_slice::<Value>(input) else {
            return;
        };
        let unknown = |_: &Value, _: &Value| None;
        let now = Utc::now();
        let _ = block_on(verify_credential(&document, now, &unknown));
        let options = (Some("c-1"), Some("verifier.example"));
        let _ = block_on(verify_presentation(&document, options, now, &unknown));
    });
    (seeds, target)
}

fn entry_target() -> Seeded {
    let key = KeyPair::generate();
    let app = KeyPair::generate();
    let manifest = AppManifest {
        app: app.did().clone(),
        name: "Fuzz App".into(),
        description: "An app".into(),
        version: "1.0.0".into(),
        platform: Platform::Web,
        redirect_uris: vec!["https://app.example/cb".into()],
        events_uri: None,
        requested_permissions: [Permission::ReadAccountsBasic].into(),
        bundle_hash: "ab".repeat(32),
        mini_app: None,
    };
    let entry = Entry::sign(&key, None, 1, Event::app_published(&app, manifest));
    let seeds = vec![entry.encode()];
    let target = Box::new(|input: &[u8]| {
        let _ = Entry::decode(input);
        let _ = consentnet_consent_chain::Sealed::decode(input);
    });
    (seeds, target)
}

fn mapping_target() -> Seeded {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bank-adapter/mappings");
    let seeds = ["berlin-group.toml", "legacy-core.toml", "iso20022.toml"]
        .iter()
        .map(|name| std::fs::read(root.join(name)).unwrap())
        .collect();
    let target = Box::new(|input: &[u8]| {
        if let Ok(text) = std::str::from_utf8(input) {
            let _ = consentnet_bank_adapter::mapping::Mapping::parse("fuzz", text);
        }
    });
    (seeds, target)
}

fn json_target() -> Seeded {
    let seeds = vec![
        json!({"a": [1, -2.5e3, "x\u{e9}", null, true], "b": {"c": {}}})
            .to_string()
            .into_bytes(),
    ];
    let target = Box::new(|input: &[u8]| {
        let _ = consentnet_identity::strict::from_slice::<Value>(input);
    });
    (seeds, target)
}

/// Runs `target` for `budget`; returns (inputs, crashes).
fn run(
    name: &str,
    rng: &mut Rng,
    seeds: &[Vec<u8>],
    target: &Target,
    budget: Duration,
) -> (u64, u64) {
    let (mut inputs, mut crashes) = (0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < budget {
        let seed = &seeds[rng.below(seeds.len())];
        let input = if name == "dpop-jws" && rng.below(2) == 0 {
            mutate_jws(rng, &String::from_utf8_lossy(seed), seeds)
        } else {
            let mut input = seed.clone();
            for _ in 0..1 + rng.below(4) {
                mutate(rng, &mut input, seeds);
            }
            input
        };
        inputs += 1;
        if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
            crashes += 1;
            eprintln!("CRASH in {name}: input (hex) {}", hex(&input));
        }
    }
    (inputs, crashes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let seconds = value("--seconds").unwrap_or(600);
    let seed = value("--seed").unwrap_or_else(|| {
        u64::try_from(Utc::now().timestamp_nanos_opt().unwrap_or(1)).unwrap_or(1) | 1
    });
    let only: Option<&String> = args
        .iter()
        .position(|a| a == "--target")
        .and_then(|i| args.get(i + 1));
    let targets: Vec<(&str, Seeded)> = vec![
        ("dpop-jws", pop_target()),
        ("credential", credential_target()),
        ("vc-api", vcapi_target()),
        ("entry", entry_target()),
        ("mapping", mapping_target()),
        ("strict-json", json_target()),
    ];
    // Panics are the findings; their default message would flood the output.
    std::panic::set_hook(Box::new(|_| {}));
    let mut rng = Rng(seed);
    let mut results = Vec::new();
    for (name, (seeds, target)) in &targets {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let (inputs, crashes) = run(name, &mut rng, seeds, target, Duration::from_secs(seconds));
        let line = json!({ "target": name, "seconds": seconds, "seed": seed, "inputs": inputs, "crashes": crashes });
        println!("{line}");
        results.push(line);
    }
    if results.iter().any(|r| r["crashes"] != 0) {
        std::process::exit(1);
    }
}
