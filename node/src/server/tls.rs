//! The public listener's TLS: rustls with TLS 1.2 and 1.3 and the FAPI 2.0 cipher suites, a certificate reloaded when its files change, and the certificates `init` and the demo make.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::aws_lc_rs::{self as provider, cipher_suite};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
pub use tokio_rustls::TlsAcceptor;

use consentnet_identity::util::{read, write};

/// How often the certificate files are looked at for a change.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or is not what it should be.
    #[error("{what} {path}: {message}")]
    File {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
    /// A certificate could not be made.
    #[error("making a certificate: {0}")]
    Generate(String),
}

/// The certificate in service, swapped when its files change.
#[derive(Debug)]
pub struct ReloadingCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    loaded_at: RwLock<Option<SystemTime>>,
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(read(&self.current).clone())
    }
}

impl ReloadingCert {
    /// Loads the pair of files, or says which is wrong.
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Self, TlsError> {
        let current = certified_key(cert_file, key_file)?;
        Ok(Self {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            current: RwLock::new(Arc::new(current)),
            loaded_at: RwLock::new(modified(cert_file).max(modified(key_file))),
        })
    }

    /// Loads the files again when either changed since the last load. A bad pair is
    /// refused (and returned as the error) and the certificate in service stays.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let stamp = modified(&self.cert_file).max(modified(&self.key_file));
        if stamp == *read(&self.loaded_at) {
            return Ok(false);
        }
        *write(&self.loaded_at) = stamp;
        let fresh = certified_key(&self.cert_file, &self.key_file)?;
        *write(&self.current) = Arc::new(fresh);
        Ok(true)
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn certified_key(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, TlsError> {
    let file_error = |what: &'static str, path: &Path, message: String| TlsError::File {
        what,
        path: path.to_owned(),
        message,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| file_error("certificate file", cert_file, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error("certificate file", cert_file, e.to_string()))?;
    if chain.is_empty() {
        return Err(file_error(
            "certificate file",
            cert_file,
            "holds no certificate".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| file_error("key file", key_file, e.to_string()))?;
    let signing = provider::sign::any_supported_type(&key)
        .map_err(|e| file_error("key file", key_file, e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| {
        file_error(
            "key file",
            key_file,
            format!("{e} (not the certificate's key)"),
        )
    })?;
    Ok(certified)
}

/// The acceptor: TLS 1.3, and TLS 1.2 with only the ECDHE AES-GCM suites (FAPI 2.0 and
/// BCP 195); HTTP/1.1 by ALPN.
pub fn acceptor(cert: Arc<ReloadingCert>) -> Result<TlsAcceptor, TlsError> {
    let mut suites = provider::default_provider();
    suites.cipher_suites = vec![
        cipher_suite::TLS13_AES_256_GCM_SHA384,
        cipher_suite::TLS13_AES_128_GCM_SHA256,
        cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ];
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(suites))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Reloads `cert` every [`RELOAD_INTERVAL`] when its files changed, logging what
/// happened; runs until aborted.
pub async fn watch(cert: Arc<ReloadingCert>) {
    let mut tick = tokio::time::interval(RELOAD_INTERVAL);
    loop {
        tick.tick().await;
        match cert.reload_if_changed() {
            Ok(true) => tracing::info!("TLS certificate reloaded"),
            Ok(false) => {}
            Err(error) => {
                tracing::error!(%error, "TLS certificate refused; the one in service stays");
            }
        }
    }
}

/// The name of the certificate authorities `init` and the demo make.
pub const CA_NAME: &str = "consentnet throw-away CA";

/// A certificate authority for one node, a demo or a test consortium, made here: clients
/// trust its certificate, and it signs the nodes' server certificates.
pub struct Ca {
    key: rcgen::KeyPair,
    cert: rcgen::Certificate,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

impl Ca {
    /// A fresh CA.
    pub fn generate() -> Result<Self, TlsError> {
        Self::with_key(rcgen::KeyPair::generate().map_err(generate)?)
    }

    /// The CA whose key is `key_pem` (as [`Ca::key_pem`] wrote it).
    pub fn from_key_pem(key_pem: &str) -> Result<Self, TlsError> {
        Self::with_key(rcgen::KeyPair::from_pem(key_pem).map_err(generate)?)
    }

    fn with_key(key: rcgen::KeyPair) -> Result<Self, TlsError> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(generate)?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, CA_NAME);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key).map_err(generate)?;
        Ok(Self { key, cert })
    }

    /// The certificate clients trust (PEM).
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA's private key (PEM): keep it only to issue more certificates.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// A server certificate for `names` (DNS names or IP addresses) signed by this CA:
    /// its PEM and its key's PEM.
    pub fn issue(&self, names: &[String]) -> Result<(String, String), TlsError> {
        let key = rcgen::KeyPair::generate().map_err(generate)?;
        let params = rcgen::CertificateParams::new(names.to_vec()).map_err(generate)?;
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .map_err(generate)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

fn generate(error: rcgen::Error) -> TlsError {
    TlsError::Generate(error.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn write_pair(dir: &Path, ca: &Ca) -> (PathBuf, PathBuf) {
        let (cert, key) = ca.issue(&["localhost".into()]).unwrap();
        let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_file, cert).unwrap();
        std::fs::write(&key_file, key).unwrap();
        (cert_file, key_file)
    }

    #[test]
    fn a_changed_pair_is_taken_up_and_a_bad_one_refused_keeping_the_one_in_service() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_file, key_file) = write_pair(dir.path(), &Ca::generate().unwrap());
        let reloading = ReloadingCert::load(&cert_file, &key_file).unwrap();
        assert!(!reloading.reload_if_changed().unwrap(), "nothing changed");
        let before = read(&reloading.current).clone();
        // A file that is not a certificate: refused, the one in service stays.
        std::fs::write(&cert_file, "not a certificate").unwrap();
        let stamp = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&cert_file)
            .unwrap()
            .set_modified(stamp)
            .unwrap();
        let error = reloading.reload_if_changed().unwrap_err().to_string();
        assert!(error.contains("certificate file"), "{error}");
        assert!(Arc::ptr_eq(&before, &read(&reloading.current)));
        // A good new pair replaces it.
        write_pair(dir.path(), &Ca::generate().unwrap());
        std::fs::File::options()
            .write(true)
            .open(&cert_file)
            .unwrap()
            .set_modified(stamp + Duration::from_secs(5))
            .unwrap();
        assert!(reloading.reload_if_changed().unwrap());
        assert!(!Arc::ptr_eq(&before, &read(&reloading.current)));
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::generate().unwrap();
        let (cert_file, key_file) = write_pair(dir.path(), &ca);
        let (_, other_key) = ca.issue(&["localhost".into()]).unwrap();
        std::fs::write(&key_file, other_key).unwrap();
        let error = ReloadingCert::load(&cert_file, &key_file)
            .unwrap_err()
            .to_string();
        assert!(error.contains("not the certificate's key"), "{error}");
    }
}
