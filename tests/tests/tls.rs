//! The public listener over TLS with real clients: HTTPS with the node's own CA, security headers, no plain HTTP on that port, only TLS 1.2+ with the FAPI 2.0 suites, and a certificate replaced on disk taken up without a restart.

// Test helpers outside #[test] functions unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use consentnet_client::node_api::{NodeApiError, NodeClient};
use consentnet_tests::{Consortium, NodeDir, NodeProcess, wait_for};
use rustls::crypto::aws_lc_rs::{self as provider, cipher_suite};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

const DEADLINE: Duration = Duration::from_secs(20);

/// A one-bank consortium whose node serves HTTPS (and the portal) with a CA of its own.
fn tls_node() -> (Consortium, NodeProcess) {
    let root = tempfile::tempdir().unwrap();
    let node = NodeDir::init_with(root.path().join("node0"), "bank", "TLS Bank", &[]);
    let config = node.dir.join("node.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("enabled = false", "enabled = true")).unwrap();
    node.write_genesis("tls-test", &[&node]);
    let consortium = Consortium::from_nodes(root, vec![node]);
    let process = consortium.start(0, DEADLINE);
    (consortium, process)
}

/// One HTTP/1.1 GET over TLS with the given client config; the raw answer.
fn raw_get(port: u16, config: rustls::ClientConfig, path: &str) -> std::io::Result<String> {
    let name = ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(DEADLINE))?;
    let mut tls = rustls::StreamOwned::new(connection, stream);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    tls.read_to_string(&mut answer)?;
    Ok(answer)
}

/// A client config trusting `ca`, limited to `versions` and `suites`.
fn client_config(
    ca: &Path,
    versions: &[&'static rustls::SupportedProtocolVersion],
    suites: Vec<rustls::SupportedCipherSuite>,
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut crypto = provider::default_provider();
    crypto.cipher_suites = suites;
    rustls::ClientConfig::builder_with_provider(Arc::new(crypto))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn the_public_listener_serves_https_only_with_fapi_suites_and_security_headers() {
    let (consortium, node) = tls_node();
    assert!(node.http_url.starts_with("https://"), "{}", node.http_url);
    let ca = consortium.nodes[0].dir.join("tls").join("ca.pem");
    // A real client trusting the node's CA: who the node is, over HTTPS.
    let client = NodeClient::trusting(&node.http_url, &ca).unwrap();
    assert_eq!(client.identity().unwrap().did, consortium.nodes[0].did());
    // One trusting only the public roots is refused at the handshake.
    let stranger = NodeClient::new(&node.http_url).unwrap();
    assert!(matches!(
        stranger.identity(),
        Err(NodeApiError::Unreachable { .. })
    ));
    let port = port_of(&node.http_url);
    let all = provider::default_provider().cipher_suites;
    let answer = raw_get(
        port,
        client_config(&ca, &[&rustls::version::TLS13], all.clone()),
        "/healthz",
    )
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(
        lower.contains("strict-transport-security: max-age=31536000"),
        "{answer}"
    );
    assert!(
        lower.contains("x-content-type-options: nosniff"),
        "{answer}"
    );
    // Over HTTPS the portal's cookies are Secure.
    let answer = raw_get(
        port,
        client_config(&ca, &[&rustls::version::TLS13], all.clone()),
        "/portal/sign-in",
    )
    .unwrap();
    let cookie = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {answer}"));
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    // TLS 1.2 with a FAPI 2.0 suite is served; with a suite outside that list it is not.
    let tls12 = [&rustls::version::TLS12];
    let gcm = vec![cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256];
    let answer = raw_get(port, client_config(&ca, &tls12, gcm), "/healthz").unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let chacha = vec![cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256];
    assert!(raw_get(port, client_config(&ca, &tls12, chacha), "/healthz").is_err());
    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain.set_read_timeout(Some(DEADLINE)).unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut bytes = Vec::new();
    let _ = plain.read_to_end(&mut bytes);
    assert!(!String::from_utf8_lossy(&bytes).contains("200 OK"));
}

#[test]
fn a_certificate_replaced_on_disk_is_served_without_a_restart() {
    let (consortium, node) = tls_node();
    let tls = consortium.nodes[0].dir.join("tls");
    let first = NodeClient::trusting(&node.http_url, &tls.join("ca.pem")).unwrap();
    first.identity().unwrap();
    // The operator renews the certificate from another CA: key and certificate are each
    // written aside and renamed into place.
    let ca = consentnet_node::server::tls::Ca::generate().unwrap();
    let (cert, key) = ca.issue(&["localhost".into(), "127.0.0.1".into()]).unwrap();
    let new_ca = tls.join("new-ca.pem");
    std::fs::write(&new_ca, ca.cert_pem()).unwrap();
    for (name, text) in [("key.pem", key), ("cert.pem", cert)] {
        let aside = tls.join(format!(".{name}.new"));
        std::fs::write(&aside, text).unwrap();
        std::fs::rename(&aside, tls.join(name)).unwrap();
    }
    let renewed = NodeClient::trusting(&node.http_url, &new_ca).unwrap();
    wait_for("the renewed certificate in service", DEADLINE, || {
        renewed.identity().ok()
    });
    let old = NodeClient::trusting(&node.http_url, &tls.join("ca.pem")).unwrap();
    assert!(
        old.identity().is_err(),
        "a new connection trusting the old CA no longer matches"
    );
}
