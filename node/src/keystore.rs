//! The node key at rest: one identity in an encrypted wallet file, and where its passphrase comes from.

use std::path::Path;

use consentnet_identity::{KdfParams, KeyPair, Wallet, WalletError};

/// The environment variable holding the key's passphrase when no file is configured.
pub const PASSPHRASE_ENV: &str = "CONSENTNET_NODE_PASSPHRASE";

/// The label of the node identity inside the key file.
const NODE_LABEL: &str = "node";

/// Why the node key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// No passphrase was given.
    #[error("no passphrase for the node key: set {PASSPHRASE_ENV} or node.passphrase_file")]
    NoPassphrase,
    /// The passphrase file cannot be read.
    #[error("cannot read passphrase file {path}: {source}")]
    PassphraseFile {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The wallet refused (wrong passphrase, damaged file, ...).
    #[error("node key file {path}: {source}")]
    Wallet {
        /// The file.
        path: String,
        /// Why.
        source: WalletError,
    },
    /// The wallet holds no node identity.
    #[error("node key file {0} holds no node key")]
    NoNodeKey(String),
}

/// The passphrase from `file` if given, else from [`PASSPHRASE_ENV`].
pub fn passphrase(file: Option<&Path>) -> Result<String, KeystoreError> {
    match file {
        Some(path) => std::fs::read_to_string(path)
            .map(|text| text.trim_end_matches(['\n', '\r']).to_owned())
            .map_err(|source| KeystoreError::PassphraseFile {
                path: path.display().to_string(),
                source,
            }),
        None => std::env::var(PASSPHRASE_ENV).map_err(|_| KeystoreError::NoPassphrase),
    }
}

/// Creates a new key file at `path` holding a fresh node key. Never overwrites.
pub fn create(path: &Path, passphrase: &str) -> Result<KeyPair, KeystoreError> {
    let wallet_error = |source| KeystoreError::Wallet {
        path: path.display().to_string(),
        source,
    };
    let mut wallet =
        Wallet::create(path, passphrase, KdfParams::default()).map_err(wallet_error)?;
    let did = wallet
        .create_identity(NODE_LABEL, None)
        .map_err(wallet_error)?;
    wallet
        .key_pair(&did)
        .ok_or_else(|| KeystoreError::NoNodeKey(path.display().to_string()))
}

/// Opens the key file at `path`.
pub fn open(path: &Path, passphrase: &str) -> Result<KeyPair, KeystoreError> {
    let wallet = Wallet::open(path, passphrase).map_err(|source| KeystoreError::Wallet {
        path: path.display().to_string(),
        source,
    })?;
    wallet
        .identities()
        .iter()
        .find(|identity| identity.label == NODE_LABEL)
        .and_then(|identity| wallet.key_pair(&identity.did))
        .ok_or_else(|| KeystoreError::NoNodeKey(path.display().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_opens_with_its_passphrase_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node-key.json");
        let key = create(&path, "correct horse battery").unwrap();
        assert_eq!(
            open(&path, "correct horse battery").unwrap().did(),
            key.did()
        );
        let error = open(&path, "wrong passphrase!").unwrap_err().to_string();
        assert!(error.contains("node-key.json"), "{error}");
        assert!(matches!(
            create(&path, "correct horse battery"),
            Err(KeystoreError::Wallet { .. })
        ));
        let text = std::fs::read_to_string(&path).unwrap();
        let secret = secret_hex(&key);
        assert!(!text.contains(&secret), "the key is encrypted at rest");
    }

    fn secret_hex(key: &KeyPair) -> String {
        use std::fmt::Write as _;
        key.secret_bytes().iter().fold(String::new(), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
    }
}
