//! A client's wallet made with the `consentnet` CLI, with a DID linked at a bank node: what the OAuth tests approve requests with.

use crate::{NodeDir, NodeProcess, admin_token, bin, http_post_json_with};

/// The wallet passphrase the tests use.
pub const PASSPHRASE: &str = "wallet passphrase for tests";

/// Runs the `consentnet` CLI with the test wallet's passphrase; panics on failure.
pub fn cli(args: &[&str]) -> std::process::Output {
    let output = std::process::Command::new(bin("consentnet"))
        .args(args)
        .env("CONSENTNET_WALLET_PASSPHRASE", PASSPHRASE)
        .output()
        .expect("the CLI runs");
    assert!(output.status.success(), "consentnet {args:?}: {output:?}");
    output
}

/// A wallet (in a temporary folder, with its path) holding a DID linked at the bank node
/// `bank` (member folder `node`) to `account`.
pub fn linked_wallet(
    node: &NodeDir,
    bank: &NodeProcess,
    account: &str,
) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let wallet = dir
        .path()
        .join("wallet.json")
        .to_str()
        .expect("a UTF-8 path")
        .to_owned();
    cli(&["wallet", "init", "--wallet", &wallet]);
    cli(&[
        "wallet", "new-did", "--wallet", &wallet, "--label", "my-bank",
    ]);
    let (status, code) = http_post_json_with(
        &format!("{}/v1/admin/link-codes", bank.operator_url),
        &[("x-admin-token", &admin_token(node))],
        &serde_json::json!({ "customer": "c-42", "accounts": [account] }),
    );
    assert_eq!(status, 201, "{code}");
    cli(&[
        "wallet",
        "link",
        "--wallet",
        &wallet,
        "--bank",
        &bank.http_url,
        "--as",
        "my-bank",
        "--code",
        code["code"].as_str().expect("a link code"),
    ]);
    (dir, wallet)
}
