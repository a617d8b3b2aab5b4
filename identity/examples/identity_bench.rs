//! Identity benchmark: consent issue/verify (cold and cached), PoP sign/verify and batch signature verification (ours and ed25519-dalek's), each next to the raw Ed25519 verify rate measured in the same run.
//!
//! Run by `scripts/bench identity`; prints JSON. Single-threaded, so every rate is per core.

use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::Utc;
use consentnet_identity::{
    ConsentTerms, ConsentVerifier, KeyPair, Permission, PopRequest, SignatureCheck, Validity,
    issue_consent, sign_pop, verify_consent, verify_many, verify_pop,
};
use serde_json::json;

/// Runs `op` repeatedly for about `budget` and returns operations per second.
fn rate(budget: Duration, mut op: impl FnMut()) -> f64 {
    // Warm up caches and branch predictors.
    for _ in 0..10 {
        op();
    }
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < budget {
        for _ in 0..16 {
            op();
        }
        count += 16;
    }
    count as f64 / start.elapsed().as_secs_f64()
}

/// Batches of proof-sized signatures, by one key (an app's calls) and by distinct keys.
struct Batches {
    one_key: Vec<SignatureCheck>,
    distinct_keys: Vec<SignatureCheck>,
}

impl Batches {
    fn new(app: &KeyPair) -> Self {
        let check = |key: &KeyPair, i: usize| {
            let message = format!("{i:0>300}").into_bytes();
            SignatureCheck {
                signer: key.public_key(),
                signature: key.sign(&message).to_vec(),
                message,
            }
        };
        Self {
            one_key: (0..128).map(|i| check(app, i)).collect(),
            distinct_keys: (0..8).map(|i| check(&KeyPair::generate(), i)).collect(),
        }
    }

    /// Signatures per second of `verify_many` and of ed25519-dalek's `verify_batch`.
    fn measure(&self, budget: Duration, record: &mut impl FnMut(&'static str, f64)) {
        let ours = |checks: &[SignatureCheck]| {
            checks.len() as f64
                * rate(budget, || {
                    assert!(verify_many(black_box(checks)).iter().all(|ok| *ok));
                })
        };
        let dalek = |checks: &[SignatureCheck]| {
            let messages: Vec<&[u8]> = checks.iter().map(|c| c.message.as_slice()).collect();
            let signatures: Vec<ed25519_dalek::Signature> = checks
                .iter()
                .map(|c| ed25519_dalek::Signature::from_slice(&c.signature).expect("64 bytes"))
                .collect();
            let keys: Vec<_> = checks.iter().map(|c| c.signer).collect();
            checks.len() as f64
                * rate(budget, || {
                    ed25519_dalek::verify_batch(black_box(&messages), &signatures, &keys)
                        .expect("valid");
                })
        };
        record("batch_of_8_one_key_signatures", ours(&self.one_key[..8]));
        record("batch_of_128_one_key_signatures", ours(&self.one_key));
        record(
            "batch_of_8_distinct_keys_signatures",
            ours(&self.distinct_keys),
        );
        record(
            "dalek_batch_of_8_one_key_signatures",
            dalek(&self.one_key[..8]),
        );
        record(
            "dalek_batch_of_8_distinct_keys_signatures",
            dalek(&self.distinct_keys),
        );
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let budget = Duration::from_millis(
        std::env::var("BENCH_MILLIS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(400),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");

    let (client, app) = (KeyPair::generate(), KeyPair::generate());
    let terms = ConsentTerms {
        app: app.did().clone(),
        bank: KeyPair::generate().did().clone(),
        accounts: vec!["acc-7f3a9c".into(), "acc-19be02".into()],
        permissions: BTreeSet::from([
            Permission::ReadAccountsDetail,
            Permission::ReadBalances,
            Permission::ReadTransactionsDetail,
            Permission::ReadTransactionsCredits,
            Permission::ReadTransactionsDebits,
        ]),
        payment_limits: None,
        purpose: "Affordability check for a loan application".into(),
        valid_from: Utc::now(),
        valid_until: Utc::now() + chrono::Duration::days(90),
        proof_key: None,
        status: None,
    };
    let consent = runtime
        .block_on(issue_consent(&client, &terms))
        .expect("issue");
    let credential = consent.to_json();
    let verifier = ConsentVerifier::new(1024);
    let id = runtime
        .block_on(verifier.verify(credential.as_bytes()))
        .expect("verify")
        .id;
    let token = id.to_string();
    let url = "https://bank.example/open-banking/v4.0/aisp/accounts/acc-7f3a9c/transactions";
    let request = PopRequest {
        method: "GET",
        url,
        access_token: &token,
    };
    let now = Utc::now();
    let proof = sign_pop(&app, request, now);
    // The raw floor: one Ed25519 verification of a message as long as a PoP's signing input.
    let message = vec![0x5a_u8; proof.rfind('.').expect("jws")];
    let signature = app.sign(&message);
    let public = app.public_key();
    let raw_signature = ed25519_dalek::Signature::from_bytes(&signature);

    let batches = Batches::new(&app);
    let mut results: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    for _ in 0..rounds {
        let mut record = |name, value| results.entry(name).or_default().push(value);
        batches.measure(budget, &mut record);
        record(
            "ed25519_verify_raw",
            rate(budget, || {
                black_box(public.verify_strict(black_box(&message), &raw_signature))
                    .expect("valid");
            }),
        );
        record(
            "consent_issue",
            rate(budget, || {
                black_box(
                    runtime
                        .block_on(issue_consent(&client, &terms))
                        .expect("issue"),
                );
            }),
        );
        record(
            "consent_verify_cold",
            rate(budget, || {
                black_box(
                    runtime
                        .block_on(verify_consent(credential.as_bytes()))
                        .expect("verify"),
                );
            }),
        );
        record(
            "consent_verify_cached",
            rate(budget, || {
                black_box(
                    runtime
                        .block_on(verifier.verify(credential.as_bytes()))
                        .expect("verify"),
                );
            }),
        );
        record(
            "consent_check_cached",
            rate(budget, || {
                let consent = verifier.get(black_box(&id)).expect("cached");
                assert_eq!(consent.validity_at(now), Validity::Active);
                assert!(
                    consent
                        .terms
                        .permissions
                        .contains(&Permission::ReadTransactionsDetail)
                );
                assert!(consent.terms.accounts.iter().any(|a| a == "acc-7f3a9c"));
            }),
        );
        record(
            "pop_sign",
            rate(budget, || {
                black_box(sign_pop(&app, request, now));
            }),
        );
        record(
            "pop_verify",
            rate(budget, || {
                black_box(verify_pop(black_box(&proof), app.did(), request, now, 60))
                    .expect("valid");
            }),
        );
    }
    let medians: std::collections::BTreeMap<&str, f64> = results
        .into_iter()
        .map(|(name, values)| (name, median(values)))
        .collect();
    let cost = |name: &str| 1.0 / medians[name];
    let ratio = (cost("consent_check_cached") + cost("pop_verify")) / cost("ed25519_verify_raw");
    let report = json!({
        "date": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "rounds": rounds,
        "millis_per_measurement": budget.as_millis() as u64,
        "credential_bytes": credential.len(),
        "ops_per_second_per_core": medians,
        "cached_check_plus_pop_verify_over_raw_ed25519_verify": ratio,
        "batch_of_8_one_key_over_dalek_batch": medians["batch_of_8_one_key_signatures"]
            / medians["dalek_batch_of_8_one_key_signatures"],
        "batch_of_8_one_key_over_raw_ed25519_verify": medians["batch_of_8_one_key_signatures"]
            / medians["ed25519_verify_raw"],
        "target_ratio": 1.5,
        "target_met": ratio <= 1.5,
    });
    println!("{}", serde_json::to_string_pretty(&report).expect("json"));
}
