//! TLS to a bank core: the certificates a mapping's `[tls]` section names (a private CA as the only trusted roots, a client certificate and key for mutual TLS), read and checked when the file is parsed, and the TLS settings the connector's HTTP agent uses.

use std::sync::Arc;

use serde::Deserialize;
use ureq::tls::{Certificate, ClientCert, PemItem, RootCerts, TlsConfig, TlsProvider};

/// Largest certificate or key file read, in bytes.
pub const MAX_PEM_BYTES: u64 = 64 * 1024;

/// The `[tls]` section: files on the node's disk, by absolute path.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// PEM certificates of the CA that signed the core's certificate: the only roots
    /// trusted for this core. Without it, the public roots are.
    pub ca_file: Option<String>,
    /// PEM certificate chain presented to the core (mutual TLS), with `client_key_file`.
    pub client_cert_file: Option<String>,
    /// PEM private key of the client certificate.
    pub client_key_file: Option<String>,
}

/// The certificates read from those files.
#[derive(Clone, Default)]
pub struct TlsMaterial {
    roots: Option<Vec<Certificate<'static>>>,
    client: Option<ClientCert>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client key is a credential: only say whether there is one.
        f.debug_struct("TlsMaterial")
            .field("private_ca", &self.roots.as_ref().map(Vec::len))
            .field("client_certificate", &self.client.is_some())
            .finish()
    }
}

/// The PEM items of the file at `path`, named `field` in errors.
fn pem_items(field: &str, path: &str) -> Result<Vec<PemItem<'static>>, String> {
    let file = std::path::Path::new(path);
    if !file.is_absolute() {
        return Err(format!("tls.{field}: an absolute path"));
    }
    let size = std::fs::metadata(file)
        .map_err(|e| format!("tls.{field}: {path}: {e}"))?
        .len();
    if size > MAX_PEM_BYTES {
        return Err(format!(
            "tls.{field}: {path} is larger than {MAX_PEM_BYTES} bytes"
        ));
    }
    let pem = std::fs::read(file).map_err(|e| format!("tls.{field}: {path}: {e}"))?;
    ureq::tls::parse_pem(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls.{field}: {path}: not PEM: {e}"))
}

fn certificates(field: &str, path: &str) -> Result<Vec<Certificate<'static>>, String> {
    let certs: Vec<Certificate<'static>> = pem_items(field, path)?
        .into_iter()
        .filter_map(|item| match item {
            PemItem::Certificate(cert) => Some(cert),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(format!("tls.{field}: {path} holds no certificate"));
    }
    Ok(certs)
}

impl TlsFiles {
    /// Reads and checks the files the section names.
    pub fn load(&self) -> Result<TlsMaterial, String> {
        let roots = match &self.ca_file {
            Some(path) => Some(certificates("ca_file", path)?),
            None => None,
        };
        let client = match (&self.client_cert_file, &self.client_key_file) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let chain = certificates("client_cert_file", cert)?;
                let key = pem_items("client_key_file", key)?
                    .into_iter()
                    .find_map(|item| match item {
                        PemItem::PrivateKey(key) => Some(key),
                        _ => None,
                    })
                    .ok_or_else(|| format!("tls.client_key_file: {key} holds no private key"))?;
                Some(ClientCert::new_with_certs(&chain, key))
            }
            _ => {
                return Err("tls: give client_cert_file and client_key_file together".into());
            }
        };
        Ok(TlsMaterial { roots, client })
    }
}

impl TlsMaterial {
    /// The TLS settings for the core: its private CA (or the public roots) and the
    /// client certificate, with the same cryptography as the rest of the node.
    pub fn config(&self) -> TlsConfig {
        let roots = match &self.roots {
            Some(certs) => RootCerts::new_with_certs(certs),
            None => RootCerts::WebPki,
        };
        TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(roots)
            .client_cert(self.client.clone())
            .unversioned_rustls_crypto_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .build()
    }
}
