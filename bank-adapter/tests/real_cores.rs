//! Mapping files against cores as strict as real ones, over real HTTP: the Berlin Group simulator's mandatory headers and its own consent, header templates (client IP, time, interaction id, secrets from files), and core errors that reach the bank as `bank_core_refused` with the core's status and code, never as an unknown account.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use chrono::{TimeZone, Utc};
use common::serve;
use consentnet_bank_adapter::connector::conformance::{Fixture, run_reads};
use consentnet_bank_adapter::connector::{
    BankConnector, CallContext, ConnectorError, with_context,
};
use consentnet_bank_adapter::mapping::{Mapping, MappingConnector};
use consentnet_bank_adapter::sandbox::SandboxBank;
use consentnet_bank_adapter::simulators::{BerlinOptions, berlin_router};
use serde_json::json;

fn bank() -> Arc<SandboxBank> {
    Arc::new(SandboxBank::seeded(
        7,
        Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
    ))
}

fn shipped() -> String {
    let path = std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("mappings/berlin-group.toml");
    std::fs::read_to_string(path).unwrap()
}

/// The shipped Berlin Group mapping, edited, pointed at `base_url`.
fn berlin(text: &str, base_url: &str) -> MappingConnector {
    let mut mapping = Mapping::parse("berlin-group.toml", text).unwrap();
    mapping.base_url = base_url.to_owned();
    MappingConnector::new(mapping)
}

#[test]
fn a_core_missing_its_mandatory_header_is_refused_and_counted_with_its_code() {
    let bank = bank();
    let url = serve(berlin_router(bank.clone(), BerlinOptions::default()));
    let account = Fixture::from_sandbox(&bank).account;
    // Without the X-Request-ID template, as the shipped file was before.
    let connector = berlin(&shipped().replace("X-Request-ID = \"{uuid}\"\n", ""), &url);
    assert_eq!(
        connector.balances(&account),
        Err(ConnectorError::CoreRefused {
            status: 400,
            code: "FORMAT_ERROR".into()
        })
    );
    // Never an unknown account, even for the account read.
    assert!(matches!(
        connector.accounts(std::slice::from_ref(&account)),
        Err(ConnectorError::CoreRefused { status: 400, .. })
    ));
    let counted: u64 = connector
        .core_refusals()
        .iter()
        .filter(|c| c.status == 400 && c.code == "FORMAT_ERROR")
        .map(|c| c.count)
        .sum();
    assert_eq!(counted, 2, "{:?}", connector.core_refusals());
}

#[test]
fn a_changed_base_path_is_a_core_refusal_not_an_unknown_account() {
    let bank = bank();
    let url = serve(berlin_router(bank.clone(), BerlinOptions::default()));
    let account = Fixture::from_sandbox(&bank).account;
    // The core moved under /psd2: every path answers an empty 404.
    let connector = berlin(&shipped(), &format!("{url}/psd2"));
    for result in [
        connector
            .accounts(std::slice::from_ref(&account))
            .map(|_| ()),
        connector.balances(&account).map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(ConnectorError::CoreRefused { status: 404, .. })),
            "{result:?}"
        );
    }
    // The right base URL: an unknown account is one, by the core's own code.
    let right = berlin(&shipped(), &url);
    assert_eq!(right.accounts(&["acc-nope".into()]), Ok(vec![]));
    assert!(matches!(
        right.balances("acc-nope"),
        Err(ConnectorError::NotFound(_))
    ));
}

#[test]
fn the_core_consent_is_made_when_first_needed_and_again_when_the_core_expires_it() {
    let bank = bank();
    let options = BerlinOptions {
        consent_calls: Some(3),
        ..Default::default()
    };
    let created = options.consents_created.clone();
    let url = serve(berlin_router(bank.clone(), options));
    let connector = berlin(&shipped(), &url);
    assert_eq!(created.load(Ordering::Relaxed), 0, "none before a call");
    let account = Fixture::from_sandbox(&bank).account;
    for _ in 0..7 {
        assert_eq!(connector.balances(&account).unwrap().len(), 2);
    }
    // Three calls per consent: 1-3, 4-6, 7.
    assert_eq!(created.load(Ordering::Relaxed), 3);
    run_reads(&connector, &Fixture::from_sandbox(&bank));
}

/// A core that answers `{}` and keeps the headers of each request.
fn recording_core() -> (String, Arc<Mutex<Vec<HeaderMap>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let kept = kept.clone();
        async move {
            kept.lock().unwrap().push(headers);
            axum::Json(json!({ "balances": [] }))
        }
    });
    (serve(app), seen)
}

#[test]
fn header_templates_carry_the_client_ip_the_time_the_interaction_and_secrets_from_files() {
    let (url, seen) = recording_core();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("core-key");
    std::fs::write(&secret, "s3cret-from-file\n").unwrap();
    let text = shipped()
        .replace(
            "X-Request-ID = \"{uuid}\"\n",
            &format!(
                "X-Request-ID = \"{{uuid}}\"\nPSU-IP-Address = \"{{psu_ip}}\"\nDate = \"{{now:rfc1123}}\"\nX-Trace = \"{{interaction_id}}\"\nX-Core-Key = \"{{file:{}}}\"\n",
                secret.display()
            ),
        )
        .replace("headers = { Consent-ID = \"{core_consent}\" }\n", "");
    let connector = berlin(&text, &url);
    let context = CallContext {
        psu_ip: Some("203.0.113.9".parse().unwrap()),
        interaction_id: Some("93bac548-d2de-4546-b106-880a5018460d".into()),
    };
    with_context(context, || connector.balances("acc-1")).unwrap();
    connector.balances("acc-1").unwrap();
    let seen = seen.lock().unwrap();
    let header = |i: usize, name: &str| seen[i].get(name).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(header(0, "psu-ip-address").as_deref(), Some("203.0.113.9"));
    assert_eq!(
        header(0, "x-trace").as_deref(),
        Some("93bac548-d2de-4546-b106-880a5018460d")
    );
    assert_eq!(header(0, "x-core-key").as_deref(), Some("s3cret-from-file"));
    let date = header(0, "date").unwrap();
    assert!(date.ends_with(" GMT") && chrono::DateTime::parse_from_rfc2822(&date).is_ok());
    assert_eq!(header(0, "x-request-id").unwrap().len(), 36);
    assert_ne!(
        header(0, "x-request-id"),
        header(1, "x-request-id"),
        "fresh per request"
    );
    // No client present: the header is left out rather than made up.
    assert_eq!(header(1, "psu-ip-address"), None);
    assert_eq!(header(1, "x-trace"), None);
    // The secret never shows in the mapping's debug output.
    assert!(!format!("{:?}", connector.mapping()).contains("s3cret"));
}

#[test]
fn a_template_naming_an_unknown_placeholder_or_a_missing_secret_is_refused() {
    let cases = [
        (
            "X-Request-ID = \"{uuid}\"",
            "X-Request-ID = \"{request_id}\"",
            "{request_id}",
        ),
        (
            "X-Request-ID = \"{uuid}\"",
            "X-Request-ID = \"{file:/no/such/secret}\"",
            "/no/such/secret",
        ),
        (
            "X-Request-ID = \"{uuid}\"",
            "\"Bad Header\" = \"x\"",
            "not a header name",
        ),
        (
            "id = \"/consentId\"",
            "id = \"consentId\"",
            "core_consent.id",
        ),
        (
            "code = \"/tppMessages/0/code\"",
            "code = \"tppMessages\"",
            "errors.code",
        ),
        (
            "RESOURCE_UNKNOWN = \"not_found\"",
            "RESOURCE_UNKNOWN = \"missing\"",
            "RESOURCE_UNKNOWN",
        ),
    ];
    for (from, to, named) in cases {
        let text = shipped().replace(from, to);
        assert_ne!(text, shipped(), "{from}");
        let error = Mapping::parse("t.toml", &text).unwrap_err().to_string();
        assert!(error.contains(named), "{named}: {error}");
    }
    // {core_consent} without the section that makes one.
    let text = shipped();
    let (start, end) = (
        text.find("[core_consent]").unwrap(),
        text.find("[errors]").unwrap(),
    );
    let without = format!("{}{}", &text[..start], &text[end..]);
    let error = Mapping::parse("t.toml", &without).unwrap_err().to_string();
    assert!(error.contains("needs a [core_consent] section"), "{error}");
}

/// A CA, and certificates it signs: for 127.0.0.1 (a server) or for a client.
struct TestCa {
    key: rcgen::KeyPair,
    cert: rcgen::Certificate,
}

impl TestCa {
    fn new() -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Test Core CA");
        let cert = params.self_signed(&key).unwrap();
        Self { key, cert }
    }

    /// (certificate PEM, key PEM).
    fn issue(&self, server: bool) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        if server {
            params.subject_alt_names =
                vec![rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap())];
        } else {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, "consentnet adapter");
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        }
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// Serves `app` over TLS on a free loopback port, demanding a client certificate signed
/// by `ca`; returns its base URL.
fn serve_mutual_tls(app: axum::Router, ca: &TestCa) -> String {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let (cert, key) = ca.issue(true);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            sender.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
    });
    format!("https://{}", receiver.recv().unwrap())
}

#[test]
fn a_core_behind_mutual_tls_is_reached_with_its_private_ca_and_the_client_certificate() {
    let bank = bank();
    let ca = TestCa::new();
    let url = serve_mutual_tls(berlin_router(bank.clone(), BerlinOptions::default()), &ca);
    let dir = tempfile::tempdir().unwrap();
    let (client_cert, client_key) = ca.issue(false);
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let (ca_file, cert_file, key_file) = (
        file("ca.pem", &ca.cert.pem()),
        file("client.pem", &client_cert),
        file("client-key.pem", &client_key),
    );
    let with_tls = |tls: &str| {
        let text = shipped().replace("[headers]\n", &format!("[tls]\n{tls}\n[headers]\n"));
        let mut mapping = Mapping::parse("mtls.toml", &text)?;
        mapping.base_url = url.clone();
        Ok::<_, consentnet_bank_adapter::mapping::MappingError>(MappingConnector::new(mapping))
    };
    // The text's own base_url must be https for a [tls] section.
    let https = |tls: &str| with_tls(tls).map(drop).map_err(|e| e.to_string());
    assert!(
        https("ca_file = \"/etc/hostname\"")
            .unwrap_err()
            .contains("https")
    );

    let shipped_https = shipped().replace("http://127.0.0.1:9101", "https://core.bank.internal");
    let parse = |tls: &str| {
        Mapping::parse(
            "t.toml",
            &shipped_https.replace("[headers]\n", &format!("[tls]\n{tls}\n[headers]\n")),
        )
    };
    let full = format!(
        "ca_file = \"{ca_file}\"\nclient_cert_file = \"{cert_file}\"\nclient_key_file = \"{key_file}\""
    );
    let mut mapping = parse(&full).unwrap();
    assert!(
        !format!("{mapping:?}").contains("PRIVATE KEY"),
        "the key is never printed"
    );
    mapping.base_url = url.clone();
    run_reads(
        &MappingConnector::new(mapping),
        &Fixture::from_sandbox(&bank),
    );

    // Without the client certificate the core refuses the connection; without the
    // private CA the core's certificate is not trusted.
    let account = Fixture::from_sandbox(&bank).account;
    for tls in [
        format!("ca_file = \"{ca_file}\""),
        format!("client_cert_file = \"{cert_file}\"\nclient_key_file = \"{key_file}\""),
    ] {
        let mut mapping = parse(&tls).unwrap();
        mapping.base_url = url.clone();
        mapping.retries = 0;
        let result = MappingConnector::new(mapping).balances(&account);
        // The core's alert (or a closed pipe) without the client certificate; the
        // adapter's own refusal of the core's certificate without the private CA.
        let trusted = tls.starts_with("ca_file");
        assert!(
            matches!(&result, Err(ConnectorError::Unavailable(why)) if trusted || why.contains("UnknownIssuer")),
            "{tls}: {result:?}"
        );
    }
    // Files are checked when the mapping is loaded, naming the field.
    for (tls, named) in [
        (format!("client_cert_file = \"{cert_file}\""), "together"),
        (format!("ca_file = \"{key_file}\""), "tls.ca_file"),
        (
            format!("client_cert_file = \"{cert_file}\"\nclient_key_file = \"{cert_file}\""),
            "tls.client_key_file",
        ),
        ("ca_file = \"relative.pem\"".to_owned(), "absolute"),
    ] {
        let error = parse(&tls).unwrap_err().to_string();
        assert!(error.contains(named), "{named}: {error}");
    }
}

#[test]
fn a_mapping_parsed_for_a_folder_reads_no_file_outside_it() {
    let root = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let inside = root.path().join("secrets/key");
    std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
    std::fs::write(&inside, "k1\n").unwrap();
    let outside = elsewhere.path().join("key");
    std::fs::write(&outside, "k2\n").unwrap();
    // A link inside the folder to a file outside it is outside.
    let link = root.path().join("secrets/link");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let with = |file: &std::path::Path| {
        shipped().replace(
            "X-Request-ID = \"{uuid}\"",
            &format!(
                "X-Request-ID = \"{{uuid}}\"\nX-Key = \"{{file:{}}}\"",
                file.display()
            ),
        )
    };
    assert!(Mapping::parse_in("t.toml", &with(&inside), root.path()).is_ok());
    for file in [&outside, &link] {
        let error = Mapping::parse_in("t.toml", &with(file), root.path())
            .unwrap_err()
            .to_string();
        assert!(error.contains("must be inside"), "{error}");
    }
}
