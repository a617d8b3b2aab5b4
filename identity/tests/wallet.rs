//! The wallet keystore: round trips, pairwise DIDs, and each way a file can be refused, always leaving the file untouched.

// Test helpers outside #[test] functions unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use consentnet_identity::wallet::WALLET_VERSION;
use consentnet_identity::{KdfParams, Wallet, WalletError};
use serde_json::{Value, json};

const PASS: &str = "correct horse battery";

fn new_wallet(dir: &Path) -> (PathBuf, Wallet) {
    let path = dir.join("wallet.json");
    let wallet = Wallet::create(&path, PASS, KdfParams::MINIMUM).unwrap();
    (path, wallet)
}

/// Asserts that opening fails as `check` expects and the file's bytes did not change.
fn assert_refused_untouched(path: &Path, passphrase: &str, check: impl Fn(&WalletError) -> bool) {
    let before = std::fs::read(path).unwrap();
    let error = Wallet::open(path, passphrase).unwrap_err();
    assert!(check(&error), "unexpected error: {error:?}");
    assert_eq!(std::fs::read(path).unwrap(), before, "the file was changed");
}

#[test]
fn identities_and_credentials_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut wallet) = new_wallet(dir.path());
    let did = wallet.create_identity("main", None).unwrap();
    let key = wallet.key_pair(&did).unwrap();
    wallet
        .add_credential("loan app", json!({"id": "urn:uuid:1"}))
        .unwrap();

    let reopened = Wallet::open(&path, PASS).unwrap();
    let identities = reopened.identities();
    assert_eq!(identities.len(), 1);
    assert_eq!(identities[0].label, "main");
    assert_eq!(identities[0].did, did);
    assert_eq!(
        reopened.key_pair(&did).unwrap().public_key(),
        key.public_key()
    );
    assert_eq!(
        reopened.credentials()[0].credential,
        json!({"id": "urn:uuid:1"})
    );
}

#[test]
fn the_file_holds_no_secret_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut wallet) = new_wallet(dir.path());
    let did = wallet.create_identity("main", None).unwrap();
    let secret = wallet.key_pair(&did).unwrap().secret_bytes();
    let text = std::fs::read_to_string(&path).unwrap();
    let secret_b64 = base64_url(&secret[..]);
    assert!(!text.contains(&secret_b64));
    assert!(!text.contains(did.as_str()), "even the DID is encrypted");
    assert!(!text.contains("main"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[test]
fn each_relationship_gets_its_own_stable_did() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut wallet) = new_wallet(dir.path());
    let bank_a = wallet.pairwise_did("bank-a").unwrap();
    let bank_b = wallet.pairwise_did("bank-b").unwrap();
    assert_ne!(bank_a, bank_b);
    assert_eq!(wallet.pairwise_did("bank-a").unwrap(), bank_a);
    let reopened = Wallet::open(&path, PASS).unwrap();
    assert_eq!(reopened.identities().len(), 2);
}

#[test]
fn duplicate_labels_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut wallet) = new_wallet(dir.path());
    wallet.create_identity("main", None).unwrap();
    assert!(
        matches!(wallet.create_identity("main", None), Err(WalletError::DuplicateLabel(l)) if l == "main")
    );
    assert_eq!(wallet.identities().len(), 1);
}

#[test]
fn wrong_passphrase_is_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = new_wallet(dir.path());
    assert_refused_untouched(&path, "not the passphrase", |e| {
        matches!(e, WalletError::WrongPassphrase(_))
    });
}

#[test]
fn truncated_file_is_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = new_wallet(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_refused_untouched(&path, PASS, |e| matches!(e, WalletError::Truncated(_)));
    std::fs::write(&path, b"").unwrap();
    assert_refused_untouched(&path, PASS, |e| matches!(e, WalletError::Truncated(_)));
}

#[test]
fn corrupted_file_is_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut wallet) = new_wallet(dir.path());
    wallet.create_identity("main", None).unwrap();
    let mut envelope: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let ciphertext = envelope["ciphertext"].as_str().unwrap().to_owned();
    let flipped = if ciphertext.starts_with('A') {
        "B"
    } else {
        "A"
    };
    envelope["ciphertext"] = json!(format!("{flipped}{}", &ciphertext[1..]));
    std::fs::write(&path, serde_json::to_vec(&envelope).unwrap()).unwrap();
    assert_refused_untouched(&path, PASS, |e| matches!(e, WalletError::Corrupted { .. }));

    std::fs::write(&path, b"\x00\x01 binary junk").unwrap();
    assert_refused_untouched(&path, PASS, |e| matches!(e, WalletError::Corrupted { .. }));
    std::fs::write(&path, br#"{"format":"something-else","version":1}"#).unwrap();
    assert_refused_untouched(&path, PASS, |e| matches!(e, WalletError::Corrupted { .. }));
}

#[test]
fn doctored_kdf_parameters_are_refused_before_deriving() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = new_wallet(dir.path());
    let mut envelope: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    envelope["kdf"]["memoryKib"] = json!(u32::MAX);
    std::fs::write(&path, serde_json::to_vec(&envelope).unwrap()).unwrap();
    // The checksum covers the header, so this reads as damage, not as a huge allocation.
    assert_refused_untouched(&path, PASS, |e| matches!(e, WalletError::Corrupted { .. }));
}

#[test]
fn a_newer_format_version_is_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = new_wallet(dir.path());
    let mut envelope: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    envelope["version"] = json!(WALLET_VERSION + 1);
    envelope["newField"] = json!("from the future");
    std::fs::write(&path, serde_json::to_vec(&envelope).unwrap()).unwrap();
    assert_refused_untouched(&path, PASS, |e| {
        matches!(e, WalletError::UnsupportedVersion { found, supported, .. }
            if *found == u64::from(WALLET_VERSION) + 1 && *supported == WALLET_VERSION)
    });
}

#[test]
fn missing_file_weak_passphrase_and_overwrite_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.json");
    assert!(matches!(
        Wallet::open(&missing, PASS),
        Err(WalletError::NotFound(_))
    ));
    assert!(matches!(
        Wallet::create(&missing, "short", KdfParams::MINIMUM),
        Err(WalletError::WeakPassphrase)
    ));
    assert!(!missing.exists());
    let (path, _) = new_wallet(dir.path());
    let before = std::fs::read(&path).unwrap();
    assert!(matches!(
        Wallet::create(&path, PASS, KdfParams::MINIMUM),
        Err(WalletError::AlreadyExists(_))
    ));
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn changing_the_passphrase_re_encrypts() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut wallet) = new_wallet(dir.path());
    let did = wallet.create_identity("main", None).unwrap();
    wallet.change_passphrase("a brand new passphrase").unwrap();
    assert!(matches!(
        Wallet::open(&path, PASS),
        Err(WalletError::WrongPassphrase(_))
    ));
    let reopened = Wallet::open(&path, "a brand new passphrase").unwrap();
    assert!(reopened.key_pair(&did).is_some());
}

#[test]
fn writes_leave_no_temporary_files_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut wallet) = new_wallet(dir.path());
    for index in 0..5 {
        wallet
            .create_identity(&format!("id {index}"), None)
            .unwrap();
    }
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["wallet.json"]);
}

#[test]
fn a_failed_write_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut wallet) = new_wallet(dir.path());
    wallet.create_identity("kept", None).unwrap();
    // Put a non-empty directory where the wallet file was, so the final rename fails
    // whoever runs the test (permissions would not stop root).
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("occupied"), b"x").unwrap();
    let result = wallet.create_identity("lost", None);
    assert!(matches!(result, Err(WalletError::Io { .. })), "{result:?}");
    assert_eq!(
        wallet.identities().len(),
        1,
        "the failed change was undone in memory"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["wallet.json"], "no temporary file is left behind");

    // Once the path is usable again, the next write holds exactly the committed state.
    std::fs::remove_dir_all(&path).unwrap();
    wallet.create_identity("again", None).unwrap();
    let labels: Vec<_> = Wallet::open(&path, PASS)
        .unwrap()
        .identities()
        .into_iter()
        .map(|i| i.label)
        .collect();
    assert_eq!(labels, ["kept", "again"]);
}
