//! The wallet, consent, app, bank and TSP commands: keys from encrypted wallets, signed records built here, sent to nodes over HTTP.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, NaiveDate, Utc};
use consentnet_consent_chain::Event;
use consentnet_consent_chain::event::{AppAction, AppDecision, AppManifest, Platform};
use consentnet_identity::consent::block_on;
use consentnet_identity::wallet::StoredCredential;
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
            proof_key: None,
            status: None,
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
    let terms = request.terms(Utc::now())?;
    let (consent, receipt) = with_status_entry(node, terms, |terms| {
        let consent = block_on(issue_consent(&key, terms)).context("signing the consent")?;
        let receipt = node.post("/v1/consents", &consent.credential)?;
        Ok((consent, receipt))
    })?;
    wallet.add_credential(
        &format!("{CONSENT_LABEL_PREFIX}{}", consent.id),
        consent.credential.clone(),
    )?;
    Ok(json!({ "consent_id": consent.id.to_string(), "receipt": receipt }))
}

/// Tries of a consent with a fresh random status list index, when one is taken.
const STATUS_TRIES: usize = 8;

/// Runs `submit` on `terms` with an entry at a random index of the status list the bank
/// at `bank` names (none when it names none), again with another index while the bank
/// answers that the index is taken.
fn with_status_entry<T>(
    bank: &NodeClient,
    mut terms: ConsentTerms,
    submit: impl Fn(&ConsentTerms) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let list = bank.get_with("/.well-known/consentnet-node", &[])?["status_list"]
        .as_str()
        .map(str::to_owned);
    let Some(list) = list else {
        return submit(&terms);
    };
    let mut tries = 0;
    loop {
        terms.status = Some(consentnet_identity::consent::StatusEntry::random(&list));
        match submit(&terms) {
            Err(error)
                if error.to_string().contains("status_index_taken") && tries + 1 < STATUS_TRIES =>
            {
                tries += 1;
            }
            done => return done,
        }
    }
}

/// The wallet label of a consent the wallet signed.
pub const CONSENT_LABEL_PREFIX: &str = "consent ";

/// The consents the wallet holds (not its bank links or other credentials).
pub fn held_consents(wallet: &Wallet) -> impl Iterator<Item = &StoredCredential> {
    wallet
        .credentials()
        .iter()
        .filter(|c| c.label.starts_with(CONSENT_LABEL_PREFIX))
}

/// Revokes a consent held in the wallet, signed by the DID that granted it.
pub fn consent_revoke(node: &NodeClient, wallet: &WalletFile, id: &str) -> anyhow::Result<Value> {
    let id = ConsentId::parse(id).ok_or_else(|| anyhow!("{id:?} is not a consent id"))?;
    let key = consent_key(&wallet.open()?, &id)?;
    let revocation = Revocation::sign(&key, id, Utc::now(), None);
    Ok(node.post("/v1/revocations", &serde_json::to_value(&revocation)?)?)
}

/// The key of the DID that granted consent `id`, held in the wallet.
pub fn consent_key(wallet: &Wallet, id: &ConsentId) -> anyhow::Result<KeyPair> {
    let id = *id;
    let credential = held_consents(wallet)
        .find(|c| consentnet_identity::consent_id(&c.credential).is_ok_and(|held| held == id))
        .ok_or_else(|| anyhow!("the wallet holds no consent {id}"))?;
    let issuer = credential.credential["issuer"]
        .as_str()
        .and_then(|text| Did::parse(text).ok())
        .ok_or_else(|| anyhow!("consent {id} names no issuer DID"))?;
    wallet
        .key_pair(&issuer)
        .ok_or_else(|| anyhow!("the wallet has no key for {issuer}"))
}

/// Reads `path` about consent `id` at `node`, signed by the wallet DID that granted it.
pub fn consent_read(
    node: &NodeClient,
    wallet: &Wallet,
    id: &str,
    path: &str,
) -> anyhow::Result<Value> {
    let id = ConsentId::parse(id).ok_or_else(|| anyhow!("{id:?} is not a consent id"))?;
    let key = consent_key(wallet, &id)?;
    Ok(node.get_signed(&format!("/v1/consents/{id}{path}"), &key)?)
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

/// Publishes an app manifest signed by `key` through a member node's operator surface
/// (`token`: its admin token, when that surface is not on loopback).
pub fn publish(
    member: &NodeClient,
    token: Option<&str>,
    key: &KeyPair,
    manifest: AppManifest,
) -> anyhow::Result<Value> {
    let headers: Vec<(&str, &str)> = token.map(|t| ("x-admin-token", t)).into_iter().collect();
    Ok(member.post_with("/v1/apps", &headers, &app_manifest(key, manifest)?)?)
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
    let bank_did = Did::parse(&bank.identity()?.did)
        .map_err(|e| anyhow!("the bank node reports no usable DID: {e}"))?;
    let request = LinkRequest::sign(key, &bank_did, code);
    Ok(bank.post("/v1/links", &serde_json::to_value(&request)?)?)
}

/// The wallet label under which a bank link's answer is kept.
pub fn link_label(bank: &Did) -> String {
    format!("link {bank}")
}

/// Links like [`link`], and keeps the bank's answer in the wallet so approvals later
/// know which DID and accounts go with that bank.
pub fn link_and_remember(
    bank: &NodeClient,
    wallet: &WalletFile,
    label: &str,
    code: &str,
) -> anyhow::Result<Value> {
    let mut opened = wallet.open()?;
    let key = key_by_label(&opened, label)?;
    let answer = link(bank, &key, code)?;
    let bank_did = answer["bank"]
        .as_str()
        .and_then(|text| Did::parse(text).ok())
        .ok_or_else(|| anyhow!("the bank's link answer names no bank DID"))?;
    opened.add_credential(&link_label(&bank_did), answer.clone())?;
    Ok(answer)
}

/// An OAuth authorization waiting at a bank, and the consent the wallet would sign for it.
#[derive(Debug, Clone)]
pub struct Approval {
    /// The request id shown on the consent screen.
    pub request: String,
    /// The app's name.
    pub app_name: String,
    /// The DID that signs.
    pub signer: Did,
    /// What the consent grants.
    pub terms: ConsentTerms,
}

impl Approval {
    /// The consent in plain words, for the confirmation.
    pub fn describe(&self) -> String {
        let t = &self.terms;
        let permissions: Vec<&str> = t.permissions.iter().map(|p| p.as_str()).collect();
        let limits = t
            .payment_limits
            .as_ref()
            .map(|l| {
                format!(
                    "\n  payments: at most {} {} each{}",
                    l.max_per_payment,
                    l.currency,
                    l.max_per_period
                        .as_ref()
                        .map(|p| format!(", {p} per {:?}", l.period))
                        .unwrap_or_default()
                )
            })
            .unwrap_or_default();
        format!(
            "App {name} ({app})\n  may use: {permissions}\n  on accounts: {accounts}\n  at bank {bank}{limits}\n  until {until} (UTC), for: {purpose}\n  signed by your DID {signer}",
            name = self.app_name,
            app = t.app,
            permissions = permissions.join(", "),
            accounts = t.accounts.join(", "),
            bank = t.bank,
            until = t.valid_until.format("%Y-%m-%d %H:%M"),
            purpose = t.purpose,
            signer = self.signer,
        )
    }
}

/// Reads authorization `request` at `bank` and works out the consent that answers it:
/// signed by the DID `label` (default: the DID linked at that bank), on `accounts`
/// (default: those the app named, else every account linked at that bank).
pub fn prepare_approval(
    bank: &NodeClient,
    wallet: &WalletFile,
    request: &str,
    label: Option<&str>,
    accounts: &[String],
) -> anyhow::Result<Approval> {
    if request.is_empty()
        || !request
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    {
        bail!("{request:?} is not a request id (copy it from the consent screen)");
    }
    let pending = bank.get_with(&format!("/oauth/requests/{request}"), &[])?;
    if pending["status"] != "pending" {
        bail!("request {request} is already {}", pending["status"]);
    }
    let details = &pending["authorization_details"][0];
    let app = Did::parse(pending["app"].as_str().unwrap_or_default())
        .map_err(|e| anyhow!("the request names no app DID: {e}"))?;
    let bank_did = Did::parse(pending["bank"].as_str().unwrap_or_default())
        .map_err(|e| anyhow!("the request names no bank DID: {e}"))?;
    let opened = wallet.open()?;
    let link = opened
        .credentials()
        .iter()
        .find(|c| c.label == link_label(&bank_did))
        .map(|c| c.credential.clone());
    let key = key_for_bank(&opened, &bank_did, label)?;
    let chosen: Vec<String> = if !accounts.is_empty() {
        accounts.to_vec()
    } else if let Some(named) = details["accounts"].as_array() {
        named
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect()
    } else {
        link.as_ref()
            .filter(|l| l["did"].as_str() == Some(key.did().as_str()))
            .and_then(|l| l["accounts"].as_array())
            .map(|list| {
                list.iter()
                    .filter_map(|a| a["account_id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    if chosen.is_empty() {
        bail!("say which accounts with --account (none are linked at {bank_did} for this DID)");
    }
    let permissions: BTreeSet<Permission> = serde_json::from_value(details["permissions"].clone())
        .context("reading the permissions asked for")?;
    let payment_limits = match details.get("payment_limits") {
        Some(limits) => {
            Some(serde_json::from_value(limits.clone()).context("reading the payment limits")?)
        }
        None => None,
    };
    let valid_until = details["valid_until"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .ok_or_else(|| anyhow!("the request has no valid_until"))?
        .with_timezone(&Utc);
    Ok(Approval {
        request: request.to_owned(),
        app_name: pending["app_name"].as_str().unwrap_or_default().to_owned(),
        signer: key.did().clone(),
        terms: ConsentTerms {
            app,
            bank: bank_did,
            accounts: chosen,
            permissions,
            payment_limits,
            purpose: details["purpose"].as_str().unwrap_or_default().to_owned(),
            valid_from: Utc::now(),
            valid_until,
            proof_key: None,
            status: None,
        },
    })
}

/// Signs the consent of `approval`, sends it to the bank, and keeps it in the wallet.
pub fn approve(
    bank: &NodeClient,
    wallet: &WalletFile,
    approval: &Approval,
) -> anyhow::Result<Value> {
    let mut opened = wallet.open()?;
    let key = opened
        .key_pair(&approval.signer)
        .ok_or_else(|| anyhow!("the wallet has no key for {}", approval.signer))?;
    let (consent, answer) = with_status_entry(bank, approval.terms.clone(), |terms| {
        let consent = block_on(issue_consent(&key, terms)).context("signing the consent")?;
        let answer = bank.post(
            &format!("/oauth/requests/{}/approve", approval.request),
            &consent.credential,
        )?;
        Ok((consent, answer))
    })?;
    opened.add_credential(
        &format!("{CONSENT_LABEL_PREFIX}{}", consent.id),
        consent.credential.clone(),
    )?;
    Ok(answer)
}

/// The wallet's key for `bank`: the DID `label`, or else the DID the wallet linked there.
fn key_for_bank(wallet: &Wallet, bank: &Did, label: Option<&str>) -> anyhow::Result<KeyPair> {
    if let Some(label) = label {
        return key_by_label(wallet, label);
    }
    let link = wallet
        .credentials()
        .iter()
        .find(|c| c.label == link_label(bank))
        .ok_or_else(|| {
            anyhow!(
                "no DID of this wallet is linked at {bank}: link one with `consentnet wallet link`, or name one with --as"
            )
        })?;
    let did = Did::parse(link.credential["did"].as_str().unwrap_or_default())
        .map_err(|e| anyhow!("the wallet's link to {bank} names no DID: {e}"))?;
    wallet
        .key_pair(&did)
        .ok_or_else(|| anyhow!("the wallet has no key for {did}"))
}

/// Answers a portal sign-in `challenge` at `node`, signed by the DID `label` (default:
/// the DID linked at that node's bank).
pub fn sign_in(
    node: &NodeClient,
    wallet: &WalletFile,
    challenge: &str,
    label: Option<&str>,
) -> anyhow::Result<Value> {
    if challenge.is_empty()
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    {
        bail!("{challenge:?} is not a sign-in challenge (copy it from the sign-in page)");
    }
    let node_did = Did::parse(&node.identity()?.did)
        .map_err(|e| anyhow!("the node reports no usable DID: {e}"))?;
    let key = key_for_bank(&wallet.open()?, &node_did, label)?;
    let answer = consentnet_identity::signin::SignIn::sign(&key, &node_did, challenge);
    Ok(node.post("/portal/sign-in", &serde_json::to_value(&answer)?)?)
}
