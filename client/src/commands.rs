//! The wallet, consent, app, bank and TSP commands: keys from encrypted wallets, signed records built here, sent to nodes over HTTP.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, NaiveDate, Utc};
use consentnet_consent_chain::Event;
use consentnet_consent_chain::event::{AppAction, AppDecision, AppManifest, Platform};
use consentnet_identity::consent::block_on;
use consentnet_identity::{
    ConsentId, ConsentTerms, Did, KdfParams, KeyPair, Permission, PopRequest, Revocation, Wallet,
    issue_consent, sign_pop,
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

/// Creates a new, empty wallet.
pub fn wallet_init(path: &Path) -> anyhow::Result<()> {
    Wallet::create(
        path,
        &passphrase(WALLET_PASSPHRASE_ENV)?,
        KdfParams::default(),
    )
    .with_context(|| format!("creating the wallet {}", path.display()))?;
    Ok(())
}

/// Opens a wallet.
pub fn open_wallet(path: &Path) -> anyhow::Result<Wallet> {
    Wallet::open(path, &passphrase(WALLET_PASSPHRASE_ENV)?)
        .with_context(|| format!("opening the wallet {}", path.display()))
}

/// Adds a DID labelled `label`; returns it.
pub fn wallet_new_did(path: &Path, label: &str) -> anyhow::Result<Did> {
    let mut wallet = open_wallet(path)?;
    Ok(wallet.create_identity(label, None)?)
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

/// The node key in a node's key file (the bank's key, for bank commands).
pub fn node_key(path: &Path) -> anyhow::Result<KeyPair> {
    let wallet = Wallet::open(path, &passphrase(NODE_PASSPHRASE_ENV)?)
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
    wallet_path: &Path,
    label: &str,
    request: &GrantRequest,
) -> anyhow::Result<Value> {
    let mut wallet = open_wallet(wallet_path)?;
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
pub fn consent_revoke(node: &NodeClient, wallet_path: &Path, id: &str) -> anyhow::Result<Value> {
    let id = ConsentId::parse(id).ok_or_else(|| anyhow!("{id:?} is not a consent id"))?;
    let wallet = open_wallet(wallet_path)?;
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

/// A TSP's signed call to a bank's unified API (the CLI builds the proof).
pub fn tsp_get(
    bank: &NodeClient,
    path: &str,
    consent: &str,
    app_key: &KeyPair,
    app_version: &str,
) -> anyhow::Result<Value> {
    let full = format!("/open-banking/v4.0{path}");
    let url = bank.url(&full);
    let proof = sign_pop(
        app_key,
        PopRequest {
            method: "GET",
            url: url.split('?').next().unwrap_or(&url),
            access_token: consent,
        },
        Utc::now(),
    );
    let authorization = format!("ConsentNet {consent}");
    Ok(bank.get_with(
        &full,
        &[
            ("authorization", &authorization),
            ("dpop", &proof),
            ("x-consentnet-app-version", app_version),
        ],
    )?)
}
