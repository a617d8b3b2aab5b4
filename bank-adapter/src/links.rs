//! Account links: the bank's private record of which client DID holds which accounts, made from a one-time link code the bank's own channel gives its customer and a proof signed by the DID; the consent check asks it who holds an account.
//!
//! The record never leaves the bank's node: the log carries DIDs and opaque account
//! references only, so no other member learns which customer a DID belongs to.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use consentnet_identity::Did;
pub use consentnet_identity::LinkRequest;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long a link code can be redeemed.
pub const CODE_TTL_MINUTES: i64 = 15;
/// The most codes waiting to be redeemed; beyond it new codes are refused.
pub const MAX_PENDING_CODES: usize = 10_000;
/// The most accounts one link names.
pub const MAX_ACCOUNTS: usize = 64;

/// Why linking failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The request is malformed; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// The code is unknown, used, or expired.
    #[error("the link code is unknown, already used or expired")]
    CodeUnusable,
    /// The proof is not the DID's signature over this link.
    #[error("the proof is not {0}'s signature over this link request")]
    BadProof(Did),
    /// Too many codes are waiting.
    #[error("too many link codes are waiting to be redeemed; retry later")]
    Busy,
    /// The links file could not be read or written.
    #[error("the links file {path}: {reason}")]
    Storage {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

impl LinkError {
    /// The HTTP status and machine-readable code for this error.
    pub fn status_code(&self) -> (u16, &'static str) {
        match self {
            Self::Invalid(_) => (400, "invalid_link_request"),
            Self::CodeUnusable => (403, "link_code_unusable"),
            Self::BadProof(_) => (401, "link_proof_invalid"),
            Self::Busy => (429, "link_codes_busy"),
            Self::Storage { .. } => (500, "link_storage_failed"),
        }
    }
}

/// A code the bank's own channel shows its customer once.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedCode {
    /// The code (32 hex digits).
    pub code: String,
    /// After this it cannot be redeemed.
    pub expires_at: DateTime<Utc>,
}

/// One linked DID: the bank's customer and the accounts it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The client's DID.
    pub did: String,
    /// The bank's own customer identifier.
    pub customer: String,
    /// The account references the DID holds.
    pub accounts: Vec<String>,
    /// When it was linked.
    pub linked_at: DateTime<Utc>,
}

/// Who holds an account, as the consent check asks it.
pub trait AccountHolders: Send + Sync {
    /// Does the bank know `did` as a holder of `account`?
    fn holds(&self, did: &Did, account: &str) -> bool;
}

/// A code waiting to be redeemed (kept by its SHA-256, so a memory dump shows no code).
#[derive(Debug, Clone)]
struct Pending {
    customer: String,
    accounts: Vec<String>,
    expires_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct Book {
    pending: HashMap<[u8; 32], Pending>,
    by_did: HashMap<String, (String, HashSet<String>)>,
}

/// The links of one bank, kept in an append-only file of JSON lines (mode 0600).
#[derive(Debug)]
pub struct Links {
    path: PathBuf,
    book: Mutex<Book>,
}

fn storage(path: &Path, error: impl std::fmt::Display) -> LinkError {
    LinkError::Storage {
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}

impl Links {
    /// Opens (or creates) the links file at `path` and loads it. A torn last line (a crash
    /// mid-append) is cut off; any other bad line is an error.
    pub fn open(path: &Path) -> Result<Self, LinkError> {
        let mut book = Book::default();
        if path.exists() {
            let file = File::open(path).map_err(|e| storage(path, e))?;
            let mut good_bytes = 0u64;
            let mut lines = BufReader::new(file).lines().peekable();
            while let Some(line) = lines.next() {
                let line = line.map_err(|e| storage(path, e))?;
                match serde_json::from_str::<Link>(&line) {
                    Ok(link) => {
                        good_bytes += line.len() as u64 + 1;
                        book.add(link);
                    }
                    Err(_) if lines.peek().is_none() => {
                        let file = OpenOptions::new()
                            .write(true)
                            .open(path)
                            .map_err(|e| storage(path, e))?;
                        file.set_len(good_bytes).map_err(|e| storage(path, e))?;
                    }
                    Err(error) => return Err(storage(path, format!("a bad line: {error}"))),
                }
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            book: Mutex::new(book),
        })
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        consentnet_identity::util::lock(&self.book)
    }

    /// Issues a one-time code that links a DID to `customer`'s `accounts`.
    pub fn issue_code(
        &self,
        customer: &str,
        accounts: &[String],
        now: DateTime<Utc>,
    ) -> Result<IssuedCode, LinkError> {
        if customer.trim().is_empty() || customer.len() > 256 {
            return Err(LinkError::Invalid(
                "customer: give the bank's customer identifier (1 to 256 characters)".into(),
            ));
        }
        if accounts.is_empty() || accounts.len() > MAX_ACCOUNTS {
            return Err(LinkError::Invalid(format!(
                "accounts: give 1 to {MAX_ACCOUNTS} account references"
            )));
        }
        if let Some(bad) = accounts
            .iter()
            .find(|a| a.is_empty() || a.len() > 128 || a.contains(char::is_whitespace))
        {
            return Err(LinkError::Invalid(format!(
                "accounts: {bad:?} is not an account reference"
            )));
        }
        let mut book = self.book();
        book.pending.retain(|_, p| p.expires_at > now);
        if book.pending.len() >= MAX_PENDING_CODES {
            return Err(LinkError::Busy);
        }
        let raw: [u8; 16] = consentnet_identity::util::random_bytes();
        let code: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let expires_at = now + Duration::minutes(CODE_TTL_MINUTES);
        book.pending.insert(
            Sha256::digest(code.as_bytes()).into(),
            Pending {
                customer: customer.to_owned(),
                accounts: accounts.to_vec(),
                expires_at,
            },
        );
        Ok(IssuedCode { code, expires_at })
    }

    /// Redeems a code for `bank`: checks the DID's proof, uses the code up, and records the
    /// link durably before answering. A refused request changes nothing.
    pub fn redeem(
        &self,
        bank: &Did,
        request: &LinkRequest,
        now: DateTime<Utc>,
    ) -> Result<Link, LinkError> {
        let did = Did::parse(&request.did).map_err(|e| LinkError::Invalid(format!("did: {e}")))?;
        if !request.signed_by(&did, bank) {
            return Err(LinkError::BadProof(did));
        }
        let key: [u8; 32] = Sha256::digest(request.code.as_bytes()).into();
        let mut book = self.book();
        let pending = book
            .pending
            .get(&key)
            .filter(|p| p.expires_at > now)
            .cloned()
            .ok_or(LinkError::CodeUnusable)?;
        let mut accounts = pending.accounts.clone();
        if let Some((customer, held)) = book.by_did.get(&request.did)
            && customer == &pending.customer
        {
            accounts.extend(held.iter().cloned());
            accounts.sort();
            accounts.dedup();
        } else if book.by_did.contains_key(&request.did) {
            return Err(LinkError::Invalid(
                "did: this DID is linked to another customer; use a new DID".into(),
            ));
        }
        let link = Link {
            did: request.did.clone(),
            customer: pending.customer,
            accounts,
            linked_at: now,
        };
        self.append(&link)?;
        book.pending.remove(&key);
        book.add(link.clone());
        Ok(link)
    }

    /// Appends `link` to the file and syncs it.
    fn append(&self, link: &Link) -> Result<(), LinkError> {
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&self.path)
            .map_err(|e| storage(&self.path, e))?;
        let mut line = serde_json::to_vec(link).map_err(|e| storage(&self.path, e))?;
        line.push(b'\n');
        file.write_all(&line)
            .and_then(|()| file.sync_data())
            .map_err(|e| storage(&self.path, e))
    }

    /// The accounts `did` holds here, by their opaque references, sorted.
    pub fn accounts_of(&self, did: &Did) -> Vec<String> {
        let mut accounts: Vec<String> = self
            .book()
            .by_did
            .get(did.as_str())
            .map(|(_, accounts)| accounts.iter().cloned().collect())
            .unwrap_or_default();
        accounts.sort();
        accounts
    }

    /// How many DIDs are linked.
    pub fn linked(&self) -> usize {
        self.book().by_did.len()
    }
}

impl Book {
    fn add(&mut self, link: Link) {
        self.by_did.insert(
            link.did,
            (link.customer, link.accounts.into_iter().collect()),
        );
    }
}

impl AccountHolders for Links {
    fn holds(&self, did: &Did, account: &str) -> bool {
        self.book()
            .by_did
            .get(did.as_str())
            .is_some_and(|(_, accounts)| accounts.contains(account))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use consentnet_identity::KeyPair;

    fn accounts() -> Vec<String> {
        vec!["acc-1".into(), "acc-2".into()]
    }

    #[test]
    fn a_code_links_the_did_that_signs_for_it_once_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("links.jsonl");
        let (bank, client) = (KeyPair::generate(), KeyPair::generate());
        let links = Links::open(&path).unwrap();
        let now = Utc::now();
        let code = links.issue_code("cust-7", &accounts(), now).unwrap();
        assert_eq!(code.code.len(), 32);
        let request = LinkRequest::sign(&client, bank.did(), &code.code);
        let link = links.redeem(bank.did(), &request, now).unwrap();
        assert_eq!(link.accounts, accounts());
        assert!(links.holds(client.did(), "acc-1"));
        assert!(!links.holds(client.did(), "acc-3"));
        assert_eq!(links.accounts_of(client.did()), accounts());
        assert!(links.accounts_of(bank.did()).is_empty());
        // Single use.
        assert!(matches!(
            links.redeem(bank.did(), &request, now),
            Err(LinkError::CodeUnusable)
        ));
        let reopened = Links::open(&path).unwrap();
        assert!(reopened.holds(client.did(), "acc-2"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the links file is private to the node");
        }
    }

    #[test]
    fn a_refused_redemption_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("links.jsonl");
        let (bank, client, other) = (
            KeyPair::generate(),
            KeyPair::generate(),
            KeyPair::generate(),
        );
        let links = Links::open(&path).unwrap();
        let now = Utc::now();
        let code = links.issue_code("cust-7", &accounts(), now).unwrap();
        // Signed by another key than the DID named.
        let mut forged = LinkRequest::sign(&other, bank.did(), &code.code);
        forged.did = client.did().to_string();
        assert!(matches!(
            links.redeem(bank.did(), &forged, now),
            Err(LinkError::BadProof(_))
        ));
        // Signed for another bank.
        let elsewhere = LinkRequest::sign(&client, other.did(), &code.code);
        assert!(matches!(
            links.redeem(bank.did(), &elsewhere, now),
            Err(LinkError::BadProof(_))
        ));
        // Expired.
        let late = now + Duration::minutes(CODE_TTL_MINUTES + 1);
        let request = LinkRequest::sign(&client, bank.did(), &code.code);
        assert!(matches!(
            links.redeem(bank.did(), &request, late),
            Err(LinkError::CodeUnusable)
        ));
        assert!(!links.holds(client.did(), "acc-1"));
        assert!(!path.exists(), "nothing was written");
        // The code still works for the right DID in time.
        links.redeem(bank.did(), &request, now).unwrap();
        assert!(links.holds(client.did(), "acc-1"));
    }

    #[test]
    fn bad_codes_requests_are_refused_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let links = Links::open(&dir.path().join("links.jsonl")).unwrap();
        let now = Utc::now();
        for (customer, accounts, field) in [
            ("", vec!["acc-1".to_owned()], "customer"),
            ("c", vec![], "accounts"),
            ("c", vec!["has space".to_owned()], "accounts"),
        ] {
            let error = links.issue_code(customer, &accounts, now).unwrap_err();
            assert!(error.to_string().starts_with(field), "{error}");
            assert_eq!(error.status_code().0, 400);
        }
    }

    #[test]
    fn a_did_linked_to_one_customer_cannot_be_linked_to_another() {
        let dir = tempfile::tempdir().unwrap();
        let links = Links::open(&dir.path().join("links.jsonl")).unwrap();
        let (bank, client) = (KeyPair::generate(), KeyPair::generate());
        let now = Utc::now();
        for (customer, account, ok) in [
            ("a", "acc-1", true),
            ("a", "acc-2", true),
            ("b", "acc-9", false),
        ] {
            let code = links
                .issue_code(customer, &[account.to_owned()], now)
                .unwrap();
            let request = LinkRequest::sign(&client, bank.did(), &code.code);
            assert_eq!(
                links.redeem(bank.did(), &request, now).is_ok(),
                ok,
                "{customer}"
            );
        }
        // The same customer's second code adds to the first.
        assert!(links.holds(client.did(), "acc-1") && links.holds(client.did(), "acc-2"));
        assert!(!links.holds(client.did(), "acc-9"));
    }

    #[test]
    fn a_torn_last_line_is_cut_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("links.jsonl");
        let (bank, client) = (KeyPair::generate(), KeyPair::generate());
        let links = Links::open(&path).unwrap();
        let code = links.issue_code("c", &accounts(), Utc::now()).unwrap();
        links
            .redeem(
                bank.did(),
                &LinkRequest::sign(&client, bank.did(), &code.code),
                Utc::now(),
            )
            .unwrap();
        let whole = std::fs::read(&path).unwrap();
        let mut torn = whole.clone();
        torn.extend_from_slice(b"{\"did\":\"did:key:z6Mk");
        std::fs::write(&path, &torn).unwrap();
        let reopened = Links::open(&path).unwrap();
        assert!(reopened.holds(client.did(), "acc-1"));
        assert_eq!(std::fs::read(&path).unwrap(), whole);
    }
}
