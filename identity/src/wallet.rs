//! The wallet keystore: a person's DIDs, keys and credentials in one file, encrypted at rest (Argon2id + XChaCha20-Poly1305) and replaced atomically.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::canonical::canonical_json;
use crate::keys::{Did, KeyPair};
use crate::{b64url, b64url_decode};

/// The `format` marker of a wallet file.
pub const WALLET_FORMAT: &str = "consentnet-wallet";
/// The newest wallet file version this code reads and the one it writes.
pub const WALLET_VERSION: u32 = 1;
/// The shortest passphrase accepted when creating a wallet.
pub const MIN_PASSPHRASE_CHARS: usize = 8;
/// The largest wallet file read, in bytes.
pub const MAX_WALLET_BYTES: u64 = 16 << 20;

/// Why a wallet operation failed. Every failure leaves the file as it was.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// No wallet file at the path.
    #[error("no wallet at {0}")]
    NotFound(PathBuf),
    /// A wallet already exists where one was to be created.
    #[error("a wallet already exists at {0}; refusing to overwrite it")]
    AlreadyExists(PathBuf),
    /// Reading or writing the file failed.
    #[error("wallet file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file ends early: it was cut off.
    #[error("wallet file {0} is truncated")]
    Truncated(PathBuf),
    /// The file is damaged or is not a wallet.
    #[error("wallet file {path} is corrupted: {reason}")]
    Corrupted {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file was written by a newer consentnet.
    #[error(
        "wallet file {path} has format version {found}; this consentnet reads up to {supported}. Upgrade consentnet."
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The file's version.
        found: u64,
        /// The newest version this code reads.
        supported: u32,
    },
    /// The passphrase does not open the wallet.
    #[error("wrong passphrase for wallet {0}")]
    WrongPassphrase(PathBuf),
    /// The passphrase is too short to create a wallet with.
    #[error("passphrase is too short: use at least {MIN_PASSPHRASE_CHARS} characters")]
    WeakPassphrase,
    /// The KDF parameters are out of bounds.
    #[error("key derivation parameters out of bounds: {0}")]
    KdfParams(String),
    /// An identity label is already used.
    #[error("an identity labelled {0:?} already exists")]
    DuplicateLabel(String),
}

/// Argon2id cost parameters. The default follows OWASP's recommendation
/// (19 MiB, 2 passes, 1 lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl KdfParams {
    /// The cheapest parameters accepted, for tests and benchmarks only.
    pub const MINIMUM: KdfParams = KdfParams {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };

    fn check(&self) -> Result<(), String> {
        // Upper bounds stop a doctored file from making open() allocate gigabytes.
        if !(1024..=1024 * 1024).contains(&self.memory_kib) {
            return Err(format!(
                "memory {} KiB is outside 1 MiB..1 GiB",
                self.memory_kib
            ));
        }
        if !(1..=64).contains(&self.iterations) {
            return Err(format!("{} iterations is outside 1..64", self.iterations));
        }
        if !(1..=16).contains(&self.parallelism) {
            return Err(format!("parallelism {} is outside 1..16", self.parallelism));
        }
        Ok(())
    }

    fn derive(&self, passphrase: &str, salt: &[u8]) -> Result<Zeroizing<[u8; 32]>, String> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|e| e.to_string())?;
        let mut key = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.as_bytes(), salt, &mut key[..])
            .map_err(|e| e.to_string())?;
        Ok(key)
    }
}

/// One identity in the wallet: a key pair and what it is used for.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StoredIdentity {
    label: String,
    did: Did,
    secret_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    relationship: Option<String>,
    created: DateTime<Utc>,
}

/// What the wallet shows about an identity: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityInfo {
    /// The label the person gave it.
    pub label: String,
    /// Its DID.
    pub did: Did,
    /// The relationship it is used for (a bank or an app), if any.
    pub relationship: Option<String>,
    /// When it was created.
    pub created: DateTime<Utc>,
}

/// A credential kept in the wallet, with a label for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StoredCredential {
    /// A label for people.
    pub label: String,
    /// The credential as JSON.
    pub credential: Value,
}

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Contents {
    identities: Vec<StoredIdentity>,
    credentials: Vec<StoredCredential>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Envelope {
    format: String,
    version: u32,
    kdf: KdfSection,
    cipher: CipherSection,
    /// SHA-256 over the header and the ciphertext: tells damage apart from a wrong passphrase.
    checksum: String,
    ciphertext: String,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KdfSection {
    algorithm: String,
    #[serde(flatten)]
    params: KdfParams,
    salt: String,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CipherSection {
    algorithm: String,
    nonce: String,
}

/// The header fields as authenticated data: changing any of them fails decryption.
fn header_bytes(version: u32, kdf: &KdfSection, cipher: &CipherSection) -> Vec<u8> {
    let header =
        json!({ "format": WALLET_FORMAT, "version": version, "kdf": kdf, "cipher": cipher });
    canonical_json(&header).unwrap_or_else(|_| unreachable!("integers and strings only"))
}

fn checksum(header: &[u8], ciphertext: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(header);
    hasher.update(ciphertext);
    b64url(&hasher.finalize())
}

/// An open wallet. Every change is written to disk before the call returns; if the
/// write fails, the change is undone in memory too.
pub struct Wallet {
    path: PathBuf,
    kdf: KdfParams,
    salt: [u8; 16],
    key: Zeroizing<[u8; 32]>,
    contents: Contents,
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wallet")
            .field("path", &self.path)
            .field("identities", &self.contents.identities.len())
            .finish_non_exhaustive()
    }
}

impl Wallet {
    /// Creates a new, empty wallet file at `path`. Refuses to overwrite an existing file.
    pub fn create(path: &Path, passphrase: &str, kdf: KdfParams) -> Result<Self, WalletError> {
        if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
            return Err(WalletError::WeakPassphrase);
        }
        kdf.check().map_err(WalletError::KdfParams)?;
        if path.exists() {
            return Err(WalletError::AlreadyExists(path.to_owned()));
        }
        let salt: [u8; 16] = crate::util::random_bytes();
        let key = kdf
            .derive(passphrase, &salt)
            .map_err(WalletError::KdfParams)?;
        let wallet = Self {
            path: path.to_owned(),
            kdf,
            salt,
            key,
            contents: Contents::default(),
        };
        wallet.write(&wallet.contents)?;
        Ok(wallet)
    }

    /// Opens the wallet at `path` with `passphrase`.
    pub fn open(path: &Path, passphrase: &str) -> Result<Self, WalletError> {
        let corrupted = |reason: String| WalletError::Corrupted {
            path: path.to_owned(),
            reason,
        };
        let bytes = read_bounded(path)?;
        let loose: Value = serde_json::from_slice(&bytes).map_err(|e| {
            if e.is_eof() {
                WalletError::Truncated(path.to_owned())
            } else {
                corrupted(format!("not JSON ({e})"))
            }
        })?;
        if loose.get("format").and_then(Value::as_str) != Some(WALLET_FORMAT) {
            return Err(corrupted("not a consentnet wallet file".into()));
        }
        // The version is read before the rest, so a newer file says so instead of
        // failing on fields this version does not know.
        let version = loose
            .get("version")
            .and_then(Value::as_u64)
            .ok_or_else(|| corrupted("no format version".into()))?;
        if version > u64::from(WALLET_VERSION) || version == 0 {
            return Err(WalletError::UnsupportedVersion {
                path: path.to_owned(),
                found: version,
                supported: WALLET_VERSION,
            });
        }
        let envelope: Envelope =
            serde_json::from_value(loose).map_err(|e| corrupted(e.to_string()))?;
        let ciphertext = b64url_decode(&envelope.ciphertext)
            .ok_or_else(|| corrupted("ciphertext is not base64url".into()))?;
        let header = header_bytes(envelope.version, &envelope.kdf, &envelope.cipher);
        if checksum(&header, &ciphertext) != envelope.checksum {
            return Err(corrupted("checksum mismatch: the file was damaged".into()));
        }
        if envelope.kdf.algorithm != "argon2id" || envelope.cipher.algorithm != "xchacha20poly1305"
        {
            return Err(corrupted(
                "unknown key derivation or cipher algorithm".into(),
            ));
        }
        envelope
            .kdf
            .params
            .check()
            .map_err(|e| corrupted(format!("key derivation parameters: {e}")))?;
        let salt: [u8; 16] = b64url_decode(&envelope.kdf.salt)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| corrupted("salt is not 16 bytes of base64url".into()))?;
        let nonce: [u8; 24] = b64url_decode(&envelope.cipher.nonce)
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| corrupted("nonce is not 24 bytes of base64url".into()))?;
        let key = envelope
            .kdf
            .params
            .derive(passphrase, &salt)
            .map_err(corrupted)?;
        let plaintext = XChaCha20Poly1305::new(key.as_ref().into())
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: &header,
                },
            )
            .map_err(|_| WalletError::WrongPassphrase(path.to_owned()))?;
        let plaintext = Zeroizing::new(plaintext);
        let contents: Contents = serde_json::from_slice(&plaintext)
            .map_err(|e| corrupted(format!("decrypted contents: {e}")))?;
        Ok(Self {
            path: path.to_owned(),
            kdf: envelope.kdf.params,
            salt,
            key,
            contents,
        })
    }

    /// The wallet file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The identities in the wallet, without their secrets.
    pub fn identities(&self) -> Vec<IdentityInfo> {
        self.contents
            .identities
            .iter()
            .map(|identity| IdentityInfo {
                label: identity.label.clone(),
                did: identity.did.clone(),
                relationship: identity.relationship.clone(),
                created: identity.created,
            })
            .collect()
    }

    /// Creates a new identity with a fresh key, labelled `label`, optionally for one relationship.
    pub fn create_identity(
        &mut self,
        label: &str,
        relationship: Option<&str>,
    ) -> Result<Did, WalletError> {
        if self.contents.identities.iter().any(|i| i.label == label) {
            return Err(WalletError::DuplicateLabel(label.to_owned()));
        }
        let key = KeyPair::generate();
        let identity = StoredIdentity {
            label: label.to_owned(),
            did: key.did().clone(),
            secret_key: b64url(&key.secret_bytes()[..]),
            relationship: relationship.map(str::to_owned),
            created: Utc::now(),
        };
        let mut next = self.contents.clone();
        next.identities.push(identity);
        self.commit(next)?;
        Ok(key.did().clone())
    }

    /// The pairwise DID for a relationship (a bank or an app): the one already made
    /// for it, or a fresh one, so no two relationships can be correlated by DID.
    pub fn pairwise_did(&mut self, relationship: &str) -> Result<Did, WalletError> {
        if let Some(existing) = self
            .contents
            .identities
            .iter()
            .find(|i| i.relationship.as_deref() == Some(relationship))
        {
            return Ok(existing.did.clone());
        }
        let mut label = format!("for {relationship}");
        let mut counter = 1;
        while self.contents.identities.iter().any(|i| i.label == label) {
            counter += 1;
            label = format!("for {relationship} ({counter})");
        }
        self.create_identity(&label, Some(relationship))
    }

    /// The key pair behind one of the wallet's DIDs.
    pub fn key_pair(&self, did: &Did) -> Option<KeyPair> {
        let identity = self.contents.identities.iter().find(|i| &i.did == did)?;
        let secret = Zeroizing::new(b64url_decode(&identity.secret_key)?);
        KeyPair::from_secret_bytes(&secret).ok()
    }

    /// Keeps a credential in the wallet.
    pub fn add_credential(&mut self, label: &str, credential: Value) -> Result<(), WalletError> {
        let mut next = self.contents.clone();
        next.credentials.push(StoredCredential {
            label: label.to_owned(),
            credential,
        });
        self.commit(next)
    }

    /// The credentials kept in the wallet.
    pub fn credentials(&self) -> &[StoredCredential] {
        &self.contents.credentials
    }

    /// Re-encrypts the wallet under a new passphrase (with a new salt).
    pub fn change_passphrase(&mut self, new_passphrase: &str) -> Result<(), WalletError> {
        if new_passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
            return Err(WalletError::WeakPassphrase);
        }
        let salt: [u8; 16] = crate::util::random_bytes();
        let key = self
            .kdf
            .derive(new_passphrase, &salt)
            .map_err(WalletError::KdfParams)?;
        let old = (
            std::mem::replace(&mut self.salt, salt),
            std::mem::replace(&mut self.key, key),
        );
        if let Err(error) = self.write(&self.contents) {
            (self.salt, self.key) = old;
            return Err(error);
        }
        Ok(())
    }

    /// Writes `next` and adopts it only once it is durable on disk.
    fn commit(&mut self, next: Contents) -> Result<(), WalletError> {
        self.write(&next)?;
        self.contents = next;
        Ok(())
    }

    fn write(&self, contents: &Contents) -> Result<(), WalletError> {
        let nonce: [u8; 24] = crate::util::random_bytes();
        let kdf = KdfSection {
            algorithm: "argon2id".into(),
            params: self.kdf,
            salt: b64url(&self.salt),
        };
        let cipher = CipherSection {
            algorithm: "xchacha20poly1305".into(),
            nonce: b64url(&nonce),
        };
        let header = header_bytes(WALLET_VERSION, &kdf, &cipher);
        let plaintext = Zeroizing::new(
            serde_json::to_vec(contents).unwrap_or_else(|_| unreachable!("plain fields serialize")),
        );
        let ciphertext = XChaCha20Poly1305::new(self.key.as_ref().into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plaintext,
                    aad: &header,
                },
            )
            .unwrap_or_else(|_| unreachable!("encryption of an in-memory buffer cannot fail"));
        let envelope = Envelope {
            format: WALLET_FORMAT.into(),
            version: WALLET_VERSION,
            checksum: checksum(&header, &ciphertext),
            kdf,
            cipher,
            ciphertext: b64url(&ciphertext),
        };
        let bytes = serde_json::to_vec_pretty(&envelope)
            .unwrap_or_else(|_| unreachable!("plain fields serialize"));
        write_atomically(&self.path, &bytes).map_err(|source| WalletError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, WalletError> {
    let io_error = |source: io::Error| {
        if source.kind() == io::ErrorKind::NotFound {
            WalletError::NotFound(path.to_owned())
        } else {
            WalletError::Io {
                path: path.to_owned(),
                source,
            }
        }
    };
    let length = fs::metadata(path).map_err(io_error)?.len();
    if length > MAX_WALLET_BYTES {
        return Err(WalletError::Corrupted {
            path: path.to_owned(),
            reason: format!("{length} bytes is larger than any wallet ({MAX_WALLET_BYTES})"),
        });
    }
    fs::read(path).map_err(io_error)
}

/// Replaces `path` with `bytes` so that a crash leaves either the old file or the new
/// one: write a temp file in the same directory, fsync it, rename it over, fsync the directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("wallet");
    let suffix: [u8; 6] = crate::util::random_bytes();
    let temp = dir.join(format!(".{name}.{}.tmp", b64url(&suffix)));
    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}
