//! The wallet, consent, app, bank and TSP commands: keys from encrypted wallets, signed records built here, sent to nodes over HTTP.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, NaiveDate, Utc};
use consentnet_consent_chain::Event;
use consentnet_consent_chain::event::{AppAction, AppDecision, AppManifest, Platform};
use consentnet_identity::consent::block_on;
use consentnet_identity::{
    ConsentId, ConsentTerms, Did, KdfParams, KeyPair, LinkRequest, Permission, Revocation, Wallet,
    issue_consent,
};
use serde_json::{Value, json};

use crate::node_api::NodeClient;

/// Where the wallet passphrase comes from.
pub const WALLET_PASSPHRASE_ENV: &str = "CONSENTNET_WALLET_PASSPHRASE";
/// Where a node key's passphrase comes from (bank commands).
pub const NODE_PASSPHRASE_ENV: &str = "CONSENTNET_NODE_PASSPHRASE";

fn passphrase(variable: &str) -> anyhow::Result<String> {
    std::env::var(variable).map_err(|_| anyhow!("set {variable} to the passphrase"))
}

/// An encrypted wallet file and the passphrase that opens it.
#[derive(Clone)]
pub struct WalletFile {
    /// Where the wallet is.
    pub path: PathBuf,
    passphrase: String,
}

impl std::fmt::Debug for WalletFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl WalletFile {
    /// The wallet at `path`, opened with `passphrase`.
    pub fn new(path: impl Into<PathBuf>, passphrase: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            passphrase: passphrase.into(),
        }
    }

    /// The wallet at `path`, with the passphrase from [`WALLET_PASSPHRASE_ENV`].
    pub fn from_env(path: &Path) -> anyhow::Result<Self> {
        Ok(Self::new(path, passphrase(WALLET_PASSPHRASE_ENV)?))
    }

    /// Creates a new, empty wallet.
    pub fn create(&self) -> anyhow::Result<()> {
        Wallet::create(&self.path, &self.passphrase, KdfParams::default())
            .with_context(|| format!("creating the wallet {}", self.path.display()))?;
        Ok(())
    }

    /// Opens the wallet.
    pub fn open(&self) -> anyhow::Result<Wallet> {
        Wallet::open(&self.path, &self.passphrase)
            .with_context(|| format!("opening the wallet {}", self.path.display()))
    }

    /// Adds a DID labelled `label`; returns it.
    pub fn new_did(&self, label: &str) -> anyhow::Result<Did> {
        Ok(self.open()?.create_identity(label, None)?)
    }

    /// The key labelled `label`.
    pub fn key(&self, label: &str) -> anyhow::Result<KeyPair> {
        key_by_label(&self.open()?, label)
    }
}

/// The key labelled `label` in `wallet`.
pub fn key_by_label(wallet: &Wallet, label: &str) -> anyhow::Result<KeyPair> {
    let identity = wallet
        .identities()
        .into_iter()
        .find(|i| i.label == label)
        .ok_or_else(|| anyhow!("the wallet has no DID labelled {label:?}"))?;
    wallet
        .key_pair(&identity.did)
        .ok_or_else(|| anyhow!("the wallet cannot open the key of {label:?}"))
}

/// The node key in a node's key file (the bank's key, for bank commands), with the
/// passphrase from [`NODE_PASSPHRASE_ENV`].
pub fn node_key_from_env(path: &Path) -> anyhow::Result<KeyPair> {
    node_key(path, &passphrase(NODE_PASSPHRASE_ENV)?)
}

/// The node key in a node's key file, opened with `passphrase`.
pub fn node_key(path: &Path, passphrase: &str) -> anyhow::Result<KeyPair> {
    let wallet = Wallet::open(path, passphrase)
        .with_context(|| format!("opening the node key {}", path.display()))?;
    let identity = wallet
        .identities()
        .into_iter()
        .find(|i| i.label == "node")
        .ok_or_else(|| anyhow!("{} holds no node key", path.display()))?;
    wallet
        .key_pair(&identity.did)
        .ok_or_else(|| anyhow!("cannot open the node key"))
}

/// What a consent grant asks for.
#[derive(Debug, Clone)]
pub struct GrantRequest {
    /// The bank.
    pub bank: Did,
    /// The app.
    pub app: Did,
    /// Account references at the bank.
    pub accounts: Vec<String>,
    /// Permission codes.
    pub permissions: BTreeSet<Permission>,
    /// Why.
    pub purpose: String,
    /// Last day (inclusive, UTC).
    pub until: NaiveDate,
}

impl GrantRequest {
    /// The terms, valid from now.
    pub fn terms(&self, now: DateTime<Utc>) -> anyhow::Result<ConsentTerms> {
        let valid_until = self
            .until
            .and_hms_opt(23, 59, 59)
            .ok_or_else(|| anyhow!("bad date"))?
            .and_utc();
        if valid_until <= now {
            bail!("--until {} is in the past", self.until);
        }
        Ok(ConsentTerms {
            app: self.app.clone(),
            bank: self.bank.clone(),
            accounts: self.accounts.clone(),
            permissions: self.permissions.clone(),
            payment_limits: None,
            purpose: self.purpose.clone(),
            valid_from: now,
            valid_until,
        })
    }

    /// The grant in plain words, for the confirmation.
    pub fn describe(&self) -> String {
        let permissions: Vec<&str> = self.permissions.iter().map(|p| p.as_str()).collect();
        format!(
            "App {app}\n  may use: {permissions}\n  on accounts: {accounts}\n  at bank {bank}\n  until the end of {until} (UTC), for: {purpose}",
            app = self.app,
            permissions = permissions.join(", "),
            accounts = self.accounts.join(", "),
            bank = self.bank,
            until = self.until,
            purpose = self.purpose,
        )
    }
}

/// Signs a consent with the wallet's DID `label`, submits it, keeps it in the wallet.
pub fn consent_grant(
    node: &NodeClient,
    wallet: &WalletFile,
    label: &str,
    request: &GrantRequest,
) -> anyhow::Result<Value> {
    let mut wallet = wallet.open()?;
    let key = key_by_label(&wallet, label)?;
    let consent = block_on(issue_consent(&key, &request.terms(Utc::now())?))
        .context("signing the consent")?;
    let receipt = node.post("/v1/consents", &consent.credential)?;
    wallet.add_credential(
        &format!("consent {}", consent.id),
        consent.credential.clone(),
    )?;
    Ok(json!({ "consent_id": consent.id.to_string(), "receipt": receipt }))
}

/// Revokes a consent held in the wallet, signed by the DID that granted it.
pub fn consent_revoke(node: &NodeClient, wallet: &WalletFile, id: &str) -> anyhow::Result<Value> {
    let id = ConsentId::parse(id).ok_or_else(|| anyhow!("{id:?} is not a consent id"))?;
    let wallet = wallet.open()?;
    let credential = wallet
        .credentials()
        .iter()
        .find(|c| ConsentId::of(&c.credential).is_ok_and(|held| held == id))
        .ok_or_else(|| anyhow!("the wallet holds no consent {id}"))?;
    let issuer = credential.credential["issuer"]
        .as_str()
        .and_then(|text| Did::parse(text).ok())
        .ok_or_else(|| anyhow!("consent {id} names no issuer DID"))?;
    let key = wallet
        .key_pair(&issuer)
        .ok_or_else(|| anyhow!("the wallet has no key for {issuer}"))?;
    let revocation = Revocation::sign(&key, id, Utc::now(), None);
    Ok(node.post("/v1/revocations", &serde_json::to_value(&revocation)?)?)
}

/// The body of an app publication, signed by the app key.
pub fn app_manifest(key: &KeyPair, manifest: AppManifest) -> anyhow::Result<Value> {
    let mut body = serde_json::to_value(Event::app_published(key, manifest))?;
    if let Some(object) = body.as_object_mut() {
        object.remove("type");
    }
    Ok(body)
}

/// The body of a bank decision, signed by the bank key.
pub fn app_decision(
    bank: &KeyPair,
    app: Did,
    version: &str,
    action: AppAction,
) -> anyhow::Result<Value> {
    let decision = AppDecision {
        bank: bank.did().clone(),
        app,
        version: version.to_owned(),
        action,
        time: u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0),
    };
    let mut body = serde_json::to_value(Event::app_decided(bank, decision))?;
    if let Some(object) = body.as_object_mut() {
        object.remove("type");
    }
    Ok(body)
}

/// Parses a platform name.
pub fn platform(text: &str) -> anyhow::Result<Platform> {
    match text {
        "web" => Ok(Platform::Web),
        "mobile" => Ok(Platform::Mobile),
        other => bail!("--platform {other:?}: web or mobile"),
    }
}

/// Parses permission codes.
pub fn permissions(codes: &[String]) -> anyhow::Result<BTreeSet<Permission>> {
    codes
        .iter()
        .map(|code| {
            code.parse::<Permission>()
                .map_err(|_| anyhow!("--permission {code:?} is not an OBIE permission code"))
        })
        .collect()
}

/// The bank admin's token from `path` (the file `consentnet-node init` wrote).
pub fn admin_token(path: &Path) -> anyhow::Result<String> {
    let token = std::fs::read_to_string(path)
        .with_context(|| format!("reading the admin token {}", path.display()))?;
    Ok(token.trim().to_owned())
}

/// A bank's one-time code linking a DID to `customer`'s `accounts` (the bank's own channel
/// gives it to the customer).
pub fn link_code(
    bank: &NodeClient,
    token: &str,
    customer: &str,
    accounts: &[String],
) -> anyhow::Result<Value> {
    Ok(bank.post_with(
        "/v1/admin/link-codes",
        &[("x-admin-token", token)],
        &json!({ "customer": customer, "accounts": accounts }),
    )?)
}

/// Links the wallet DID `label` at the bank node `bank` with a link code; returns the
/// bank's answer with the opaque references of the accounts the DID now holds.
pub fn link(bank: &NodeClient, key: &KeyPair, code: &str) -> anyhow::Result<Value> {
    let bank_did = Did::parse(&bank.status()?.did)
        .map_err(|e| anyhow!("the bank node reports no usable DID: {e}"))?;
    let request = LinkRequest::sign(key, &bank_did, code);
    Ok(bank.post("/v1/links", &serde_json::to_value(&request)?)?)
}
