//! What `init` and `tls-ca` write besides the key: the operator's admin token and the public listener's TLS certificate, from a CA of the node's own or one shared by a demo or test consortium. Secrets are written owner-only and never over an existing file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::server::tls::{Ca, TlsError};

/// The operator's admin token file `init` makes.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";
/// Where `init` puts the TLS files, inside the node's folder.
pub const TLS_DIR: &str = "tls";
/// The CA certificate clients trust, in a CA folder or a node's `tls` folder.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The CA's key, in a CA folder made by `tls-ca`.
pub const CA_KEY_FILE: &str = "ca-key.pem";

/// Why setting up a node's files failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A file could not be written (or already exists).
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A CA folder's files could not be read.
    #[error("reading the CA {}: {source}", path.display())]
    ReadCa {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A certificate could not be made.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// How the public listener's certificate is made.
#[derive(Debug, Clone)]
pub enum TlsSetup {
    /// None: plain HTTP, for local development.
    Plain,
    /// A CA of this node's own (its key is discarded once the certificate is signed);
    /// clients trust `tls/ca.pem`.
    OwnCa,
    /// Signed by the CA in this folder (made by `tls-ca`), which clients trust.
    SharedCa(PathBuf),
}

/// Writes `contents` to a new file at `path` readable by its owner only.
pub fn write_secret(path: &Path, contents: &str) -> Result<(), SetupError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut file| file.write_all(contents.as_bytes()))
        .map_err(|source| SetupError::Write {
            path: path.to_owned(),
            source,
        })
}

fn write_public(path: &Path, contents: &str) -> Result<(), SetupError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    options
        .open(path)
        .and_then(|mut file| std::io::Write::write_all(&mut file, contents.as_bytes()))
        .map_err(|source| SetupError::Write {
            path: path.to_owned(),
            source,
        })
}

/// A fresh random admin token (64 hex digits) in a new owner-only file.
pub fn write_admin_token(path: &Path) -> Result<(), SetupError> {
    let token = consentnet_identity::util::random_hex(32);
    write_secret(path, &format!("{token}\n"))
}

/// Makes a CA in the new folder `dir`: `ca.pem` (to trust) and `ca-key.pem` (owner-only).
pub fn write_ca(dir: &Path) -> Result<(), SetupError> {
    std::fs::create_dir_all(dir).map_err(|source| SetupError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let ca = Ca::generate()?;
    write_secret(&dir.join(CA_KEY_FILE), &ca.key_pem())?;
    write_public(&dir.join(CA_CERT_FILE), &ca.cert_pem())
}

/// The names a node's certificate carries: `localhost`, `127.0.0.1`, the listen address
/// when it is a specific one, and `extra`.
pub fn certificate_names(listen: SocketAddr, extra: &[String]) -> Vec<String> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    if !listen.ip().is_unspecified() {
        names.push(listen.ip().to_string());
    }
    for name in extra {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// Writes the public listener's certificate and key into `node_dir/tls` as `setup`
/// says; returns their paths relative to the node folder, or `None` for plain HTTP.
pub fn write_tls(
    node_dir: &Path,
    setup: &TlsSetup,
    names: &[String],
) -> Result<Option<(PathBuf, PathBuf)>, SetupError> {
    let ca = match setup {
        TlsSetup::Plain => return Ok(None),
        TlsSetup::OwnCa => Ca::generate()?,
        TlsSetup::SharedCa(dir) => {
            let path = dir.join(CA_KEY_FILE);
            let key = std::fs::read_to_string(&path)
                .map_err(|source| SetupError::ReadCa { path, source })?;
            Ca::from_key_pem(&key)?
        }
    };
    let dir = node_dir.join(TLS_DIR);
    std::fs::create_dir_all(&dir).map_err(|source| SetupError::Write {
        path: dir.clone(),
        source,
    })?;
    let (cert, key) = ca.issue(names)?;
    let ca_cert = match setup {
        TlsSetup::SharedCa(ca_dir) => {
            let path = ca_dir.join(CA_CERT_FILE);
            std::fs::read_to_string(&path).map_err(|source| SetupError::ReadCa { path, source })?
        }
        _ => ca.cert_pem(),
    };
    write_public(&dir.join(CA_CERT_FILE), &ca_cert)?;
    write_public(&dir.join("cert.pem"), &cert)?;
    write_secret(&dir.join("key.pem"), &key)?;
    Ok(Some((
        Path::new(TLS_DIR).join("cert.pem"),
        Path::new(TLS_DIR).join("key.pem"),
    )))
}
