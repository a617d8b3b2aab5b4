//! The OAuth 2.0 authorization server of a bank node: pushed authorization requests with PKCE and `authorization_details`, `private_key_jwt` client authentication by the app's DID key, single-use codes, DPoP-bound access tokens that are consent ids, introspection and revocation. Protocol decisions only: no HTTP, no log writes.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use consentnet_bank_adapter::links::AccountHolders;
use consentnet_consent_chain::event::AppAction;
use consentnet_consent_chain::{ConsentStatus, State};
use consentnet_identity::consent::{PaymentLimits, Period};
use consentnet_identity::jose::{Jws, jwk_thumbprint};
use consentnet_identity::permissions::check_permission_set;
use consentnet_identity::{
    ConsentId, Did, Permission, PopRequest, VerifiedConsent, b64url, b64url_decode, verify_pop,
};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// How long a pushed request's `request_uri` may wait to be opened, in seconds.
pub const REQUEST_URI_LIFETIME_SECS: i64 = 300;
/// How long an opened authorization may wait for the client's decision, in seconds.
pub const SESSION_LIFETIME_SECS: i64 = 900;
/// How long an authorization code may wait to be exchanged, in seconds.
pub const CODE_LIFETIME_SECS: i64 = 60;
/// Authorizations in progress at most; beyond it new requests get `temporarily_unavailable`.
pub const MAX_SESSIONS: usize = 10_000;
/// Client-assertion and DPoP proof ids remembered at most (each until it expires).
pub const MAX_SEEN_IDS: usize = 100_000;
/// The furthest in the future a client assertion may expire, in seconds.
pub const MAX_ASSERTION_LIFETIME_SECS: i64 = 3_660;
/// Clock skew allowed on `iat`, `exp` and DPoP proofs, in seconds.
pub const LEEWAY_SECS: i64 = 60;
/// Validity of a consent when the request names none, in days.
pub const DEFAULT_VALIDITY_DAYS: i64 = 90;
/// The longest validity a request may ask for, in days.
pub const MAX_VALIDITY_DAYS: i64 = 366;
/// The `authorization_details` type this server understands.
pub const DETAILS_TYPE: &str = "consentnet";
/// The only client assertion type accepted (`private_key_jwt`, RFC 7523).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The prefix of every `request_uri` this server issues (RFC 9126).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// The permissions the `accounts` scope asks for.
pub const ACCOUNTS_SCOPE: [Permission; 5] = [
    Permission::ReadAccountsDetail,
    Permission::ReadBalances,
    Permission::ReadTransactionsDetail,
    Permission::ReadTransactionsCredits,
    Permission::ReadTransactionsDebits,
];

/// An OAuth error (RFC 6749 section 5.2 and the RFCs that add codes): the HTTP status,
/// the `error` code and a description for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    /// The HTTP status.
    pub status: u16,
    /// The `error` code.
    pub code: &'static str,
    /// The `error_description`.
    pub description: String,
}

impl OAuthError {
    /// An error with any status and code.
    pub fn new(status: u16, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
        }
    }

    /// `invalid_request` (400).
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", description)
    }

    /// `invalid_client` (401).
    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(401, "invalid_client", description)
    }

    /// `invalid_grant` (400).
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(400, "invalid_grant", description)
    }

    /// `unauthorized_client` (400).
    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(400, "unauthorized_client", description)
    }

    /// `invalid_authorization_details` (400, RFC 9396).
    pub fn invalid_details(description: impl Into<String>) -> Self {
        Self::new(400, "invalid_authorization_details", description)
    }

    /// `invalid_dpop_proof` (400, RFC 9449).
    pub fn invalid_dpop(description: impl Into<String>) -> Self {
        Self::new(400, "invalid_dpop_proof", description)
    }

    /// `server_error` (500).
    pub fn server_error(description: impl Into<String>) -> Self {
        Self::new(500, "server_error", description)
    }
}

/// Form parameters, each present at most once (RFC 6749 section 3.1).
#[derive(Debug, Clone, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses an `application/x-www-form-urlencoded` body or query; a repeated parameter
    /// is an error.
    pub fn parse(bytes: &[u8]) -> Result<Self, OAuthError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes)
            .map_err(|e| OAuthError::invalid_request(format!("unreadable form: {e}")))?;
        let mut map = HashMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            if map.contains_key(&name) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {name} is repeated"
                )));
            }
            map.insert(name, value);
        }
        Ok(Self(map))
    }

    /// The parameter `name`, if present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The parameter `name`, or `invalid_request` naming it.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
    }
}

/// What an app asks for, as the client sees it on the consent screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Asked {
    /// The app (the OAuth `client_id`).
    pub app: Did,
    /// Its name in the catalog.
    pub app_name: String,
    /// The approved version the request goes through.
    pub app_version: String,
    /// This bank.
    pub bank: Did,
    /// The permissions asked for.
    pub permissions: BTreeSet<Permission>,
    /// Payment limits, exactly when payments are asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_limits: Option<PaymentLimits>,
    /// The accounts the app names, if any; otherwise the client chooses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Vec<String>>,
    /// Why, in the app's words.
    pub purpose: String,
    /// The end of the validity asked for.
    pub valid_until: DateTime<Utc>,
}

impl Asked {
    /// The request as an `authorization_details` entry of type `consentnet`.
    pub fn details(&self, consent: Option<&ConsentId>) -> Value {
        let mut details = json!({
            "type": DETAILS_TYPE,
            "bank": self.bank,
            "permissions": self.permissions,
            "valid_until": self.valid_until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "purpose": self.purpose,
        });
        if let Some(limits) = &self.payment_limits {
            details["payment_limits"] = json!(limits);
        }
        if let Some(accounts) = &self.accounts {
            details["accounts"] = json!(accounts);
        }
        if let Some(id) = consent {
            details["consent_id"] = json!(id.to_string());
        }
        details
    }
}

/// Where an authorization stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Waiting for the client.
    Pending,
    /// A consent is being written to the log (a second approval must wait its turn).
    Approving,
    /// Approved: the consent is on the log and a code was issued for it.
    Approved {
        /// The consent.
        consent: ConsentId,
        /// The code, for the browser's redirect (also kept by hash for the exchange).
        code: String,
        /// When the code stops working.
        code_expires: DateTime<Utc>,
        /// True once exchanged.
        used: bool,
    },
    /// The client said no.
    Denied,
}

/// One authorization in progress.
#[derive(Debug, Clone)]
pub struct Session {
    /// The handle in the `request_uri` (unguessable).
    pub handle: String,
    /// What is asked.
    pub asked: Asked,
    /// Where the browser goes back to.
    pub redirect_uri: String,
    /// The client's `state`, returned unchanged.
    pub state: Option<String>,
    /// The PKCE `code_challenge` (S256).
    code_challenge: String,
    /// The form token of the consent page (CSRF).
    pub csrf: String,
    /// The browser the request was opened in (a cookie value), once opened.
    pub browser: Option<String>,
    /// When the request was pushed.
    pub created: DateTime<Utc>,
    /// Where it stands.
    pub decision: Decision,
}

impl Session {
    fn expired(&self, now: DateTime<Utc>) -> bool {
        let limit = if self.browser.is_some() {
            SESSION_LIFETIME_SECS
        } else {
            REQUEST_URI_LIFETIME_SECS
        };
        match &self.decision {
            Decision::Approved { code_expires, .. } => now > *code_expires,
            _ => now > self.created + Duration::seconds(limit),
        }
    }
}

/// Ids seen once (assertion and proof `jti`s), each until it expires; bounded.
#[derive(Debug, Default)]
struct SeenIds {
    by_id: HashMap<String, i64>,
    /// The same ids, soonest expiry first.
    expiries: BinaryHeap<Reverse<(i64, String)>>,
}

impl SeenIds {
    /// Records `id`, good until `expires` (seconds); refused when seen before or full.
    fn first_use(&mut self, id: &str, expires: i64, now: i64) -> Result<(), OAuthError> {
        while let Some(Reverse((at, _))) = self.expiries.peek() {
            if *at >= now - LEEWAY_SECS {
                break;
            }
            if let Some(Reverse((_, old))) = self.expiries.pop() {
                self.by_id.remove(&old);
            }
        }
        if self.by_id.contains_key(id) {
            return Err(OAuthError::invalid_client(format!(
                "jti {id:?} was already used"
            )));
        }
        if self.by_id.len() >= MAX_SEEN_IDS {
            return Err(OAuthError::new(
                503,
                "temporarily_unavailable",
                "too many requests in flight; retry shortly",
            ));
        }
        self.by_id.insert(id.to_owned(), expires);
        self.expiries.push(Reverse((expires, id.to_owned())));
        Ok(())
    }
}

/// A code exchanged a second time: the grant is refused and the consent it issued must
/// be revoked (RFC 6749 section 4.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReusedCode(pub ConsentId);

/// What the token endpoint answers.
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    /// The access token: the consent id.
    pub access_token: String,
    /// Always `DPoP`.
    pub token_type: &'static str,
    /// Seconds until the consent's validity ends.
    pub expires_in: i64,
    /// What was granted, with the consent id.
    pub authorization_details: Vec<Value>,
    /// The app version the token was issued through (send it as `x-consentnet-app-version`).
    pub app_version: String,
}

/// The authorization server of one bank.
#[derive(Debug)]
pub struct AuthServer {
    /// The issuer identifier: the bank's public URL.
    pub issuer: String,
    bank: Did,
    sessions: Mutex<HashMap<String, Session>>,
    assertions: Mutex<SeenIds>,
    proofs: Mutex<SeenIds>,
}

/// Locks in-memory portal state; a panic elsewhere leaves it usable (each update is one
/// assignment).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// 128 random bits, as 32 lowercase hex digits.
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    // Hex, not base64url: request handles and sign-in challenges are pasted into the CLI,
    // where a value starting with `-` would be taken for an option.
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// The PKCE S256 transform of a verifier (RFC 7636 section 4.2).
pub fn s256(verifier: &str) -> String {
    b64url(&sha256(verifier))
}

fn is_pkce_text(text: &str) -> bool {
    (43..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

impl AuthServer {
    /// The authorization server of `bank`, at `issuer` (no trailing slash).
    pub fn new(issuer: &str, bank: Did) -> Self {
        Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            bank,
            sessions: Mutex::default(),
            assertions: Mutex::default(),
            proofs: Mutex::default(),
        }
    }

    /// The URL of an endpoint of this server, e.g. `/oauth/token`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// The authorization server metadata (RFC 8414).
    pub fn metadata(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "pushed_authorization_request_endpoint": self.url("/oauth/par"),
            "require_pushed_authorization_requests": true,
            "authorization_endpoint": self.url("/oauth/authorize"),
            "token_endpoint": self.url("/oauth/token"),
            "introspection_endpoint": self.url("/oauth/introspect"),
            "revocation_endpoint": self.url("/oauth/revoke"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["EdDSA"],
            "introspection_endpoint_auth_methods_supported": ["private_key_jwt"],
            "revocation_endpoint_auth_methods_supported": ["private_key_jwt"],
            "dpop_signing_alg_values_supported": ["EdDSA"],
            "authorization_details_types_supported": [DETAILS_TYPE],
            "scopes_supported": ["accounts", "payments"],
            "authorization_response_iss_parameter_supported": true,
        })
    }

    /// `private_key_jwt` (RFC 7523): the assertion is signed by the key of the DID that is
    /// the `client_id`, names this server or `endpoint` as audience, is unexpired and used
    /// once, and the app is in the catalog (`in_catalog`, asked only once the signature
    /// verified, so a caller can check the signature before taking the log's lock and
    /// hold it only for the lookup). Returns the app's DID.
    pub fn authenticate(
        &self,
        in_catalog: impl FnOnce(&Did) -> bool,
        params: &Params,
        endpoint: &str,
        now: DateTime<Utc>,
    ) -> Result<Did, OAuthError> {
        match params.get("client_assertion_type") {
            Some(ASSERTION_TYPE) => {}
            Some(other) => {
                return Err(OAuthError::invalid_client(format!(
                    "client_assertion_type {other:?} is not supported; use {ASSERTION_TYPE}"
                )));
            }
            None => {
                return Err(OAuthError::invalid_client(
                    "client authentication is required: private_key_jwt with the app's DID key",
                ));
            }
        }
        let assertion = params
            .get("client_assertion")
            .ok_or_else(|| OAuthError::invalid_client("client_assertion is required"))?;
        let jws = Jws::decode(assertion)
            .map_err(|e| OAuthError::invalid_client(format!("client_assertion: {e}")))?;
        let issuer = jws
            .claim_str("iss")
            .ok_or_else(|| OAuthError::invalid_client("client_assertion has no iss"))?;
        if jws.claim_str("sub") != Some(issuer) {
            return Err(OAuthError::invalid_client(
                "client_assertion's sub must equal its iss (the client_id)",
            ));
        }
        if let Some(client_id) = params.get("client_id")
            && client_id != issuer
        {
            return Err(OAuthError::invalid_client(
                "client_id differs from the client_assertion's iss",
            ));
        }
        let client = Did::parse(issuer).map_err(|e| {
            OAuthError::invalid_client(format!("client_id must be the app's did:key: {e}"))
        })?;
        jws.verify(&client)
            .map_err(|e| OAuthError::invalid_client(format!("client_assertion: {e}")))?;
        let audience_ok = match jws.claims.get("aud") {
            Some(Value::String(aud)) => aud == &self.issuer || aud == endpoint,
            Some(Value::Array(auds)) => auds
                .iter()
                .any(|a| a.as_str() == Some(&self.issuer) || a.as_str() == Some(endpoint)),
            _ => false,
        };
        if !audience_ok {
            return Err(OAuthError::invalid_client(format!(
                "client_assertion's aud must name {} or {endpoint}",
                self.issuer
            )));
        }
        let now_secs = now.timestamp();
        let expires = jws
            .claim_time("exp")
            .ok_or_else(|| OAuthError::invalid_client("client_assertion has no exp"))?;
        if expires < now_secs - LEEWAY_SECS {
            return Err(OAuthError::invalid_client("client_assertion has expired"));
        }
        if expires > now_secs + MAX_ASSERTION_LIFETIME_SECS {
            return Err(OAuthError::invalid_client(format!(
                "client_assertion expires more than {MAX_ASSERTION_LIFETIME_SECS} s from now"
            )));
        }
        if let Some(issued) = jws.claim_time("iat")
            && issued > now_secs + LEEWAY_SECS
        {
            return Err(OAuthError::invalid_client(
                "client_assertion is issued in the future",
            ));
        }
        let jti = jws
            .claim_str("jti")
            .filter(|j| (1..=128).contains(&j.len()))
            .ok_or_else(|| OAuthError::invalid_client("client_assertion needs a jti"))?;
        if !in_catalog(&client) {
            return Err(OAuthError::invalid_client(format!(
                "{client} has published no app to the catalog"
            )));
        }
        lock(&self.assertions).first_use(&format!("{client} {jti}"), expires, now_secs)?;
        Ok(client)
    }

    /// A pushed authorization request (RFC 9126) from `client`, already authenticated
    /// for `/oauth/par`: checks the request and the bank's approval of the app; returns
    /// the `request_uri` and its lifetime.
    pub fn push(
        &self,
        state: &State,
        client: Did,
        params: &Params,
        now: DateTime<Utc>,
    ) -> Result<(String, i64), OAuthError> {
        if params.get("request_uri").is_some() {
            return Err(OAuthError::invalid_request(
                "request_uri must not be pushed (RFC 9126 section 2.1)",
            ));
        }
        if params.get("request").is_some() {
            return Err(OAuthError::new(
                400,
                "request_not_supported",
                "request objects are not supported; send the parameters as a form",
            ));
        }
        match params.require("response_type")? {
            "code" => {}
            other => {
                return Err(OAuthError::new(
                    400,
                    "unsupported_response_type",
                    format!("response_type {other:?} is not supported; use code"),
                ));
            }
        }
        let redirect_uri = params.require("redirect_uri")?;
        let challenge = params.get("code_challenge").ok_or_else(|| {
            OAuthError::invalid_request("PKCE is required: send code_challenge (S256)")
        })?;
        if params.get("code_challenge_method") != Some("S256") {
            return Err(OAuthError::invalid_request(
                "code_challenge_method must be S256",
            ));
        }
        if challenge.len() != 43 || b64url_decode(challenge).is_none() {
            return Err(OAuthError::invalid_request(
                "code_challenge must be the base64url SHA-256 of the code_verifier (43 characters)",
            ));
        }
        let client_state = params.get("state").map(str::to_owned);
        if client_state.as_ref().is_some_and(|s| s.len() > 512) {
            return Err(OAuthError::invalid_request(
                "state is longer than 512 characters",
            ));
        }
        let mut asked = self.asked(params, &client, now)?;
        // The app must be approved here, through a version that registered this redirect.
        let approved: Vec<(String, BTreeSet<Permission>, bool)> = state
            .catalog(&self.bank)
            .into_iter()
            .filter(|entry| entry.manifest.app == client)
            .filter_map(|entry| match entry.decision.map(|d| d.action) {
                Some(AppAction::Approve { permissions }) => Some((
                    entry.manifest.version.clone(),
                    permissions,
                    entry
                        .manifest
                        .redirect_uris
                        .iter()
                        .any(|r| r == redirect_uri),
                )),
                _ => None,
            })
            .collect();
        if approved.is_empty() {
            return Err(OAuthError::unauthorized_client(format!(
                "{client} has no version approved by this bank"
            )));
        }
        let (version, allowed, _) = approved
            .into_iter()
            .filter(|(_, _, registered)| *registered)
            .max_by(|a, b| a.0.cmp(&b.0))
            .ok_or_else(|| {
                OAuthError::invalid_request(
                    "redirect_uri is not registered in the manifest of an approved version",
                )
            })?;
        let refused: Vec<&str> = asked
            .permissions
            .iter()
            .filter(|p| !allowed.contains(p))
            .map(|p| p.as_str())
            .collect();
        if !refused.is_empty() {
            return Err(OAuthError::invalid_details(format!(
                "this bank does not allow the app {}",
                refused.join(", ")
            )));
        }
        asked.app_version = version;
        asked.app_name = state.app_name(&client).unwrap_or_default().to_owned();
        let handle = random_token();
        let session = Session {
            handle: handle.clone(),
            asked,
            redirect_uri: redirect_uri.to_owned(),
            state: client_state,
            code_challenge: challenge.to_owned(),
            csrf: random_token(),
            browser: None,
            created: now,
            decision: Decision::Pending,
        };
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, s| !s.expired(now));
        if sessions.len() >= MAX_SESSIONS {
            return Err(OAuthError::new(
                503,
                "temporarily_unavailable",
                "too many authorizations in progress; retry shortly",
            ));
        }
        sessions.insert(handle.clone(), session);
        Ok((
            format!("{REQUEST_URI_PREFIX}{handle}"),
            REQUEST_URI_LIFETIME_SECS,
        ))
    }

    /// What the request asks for, from `authorization_details` and `scope`.
    fn asked(
        &self,
        params: &Params,
        client: &Did,
        now: DateTime<Utc>,
    ) -> Result<Asked, OAuthError> {
        let mut permissions = BTreeSet::new();
        let mut payment_limits = None;
        let mut accounts = None;
        let mut purpose = None;
        let mut valid_until = now + Duration::days(DEFAULT_VALIDITY_DAYS);
        if let Some(scope) = params.get("scope") {
            for value in scope.split(' ').filter(|s| !s.is_empty()) {
                match value {
                    "accounts" => permissions.extend(ACCOUNTS_SCOPE),
                    "payments" => {
                        permissions.insert(Permission::CreateDomesticPayments);
                        payment_limits = Some(default_payment_limits());
                    }
                    other => {
                        return Err(OAuthError::new(
                            400,
                            "invalid_scope",
                            format!("scope {other:?} is unknown; use accounts and/or payments"),
                        ));
                    }
                }
            }
        }
        if let Some(text) = params.get("authorization_details") {
            let details: Vec<Value> = serde_json::from_str(text).map_err(|e| {
                OAuthError::invalid_details(format!(
                    "authorization_details is not a JSON array: {e}"
                ))
            })?;
            let [detail] = details.as_slice() else {
                return Err(OAuthError::invalid_details(
                    "send exactly one authorization_details entry",
                ));
            };
            let object = detail.as_object().ok_or_else(|| {
                OAuthError::invalid_details("an authorization_details entry is a JSON object")
            })?;
            for (name, value) in object {
                match name.as_str() {
                    "type" if value == DETAILS_TYPE => {}
                    "type" => {
                        return Err(OAuthError::invalid_details(format!(
                            "type must be {DETAILS_TYPE:?}"
                        )));
                    }
                    "bank" if value.as_str() == Some(self.bank.as_str()) => {}
                    "bank" => {
                        return Err(OAuthError::invalid_details(format!(
                            "bank must be this bank, {}",
                            self.bank
                        )));
                    }
                    "permissions" => {
                        let codes: Vec<String> =
                            serde_json::from_value(value.clone()).map_err(|_| {
                                OAuthError::invalid_details("permissions is a list of codes")
                            })?;
                        for code in codes {
                            permissions.insert(code.parse::<Permission>().map_err(|e| {
                                OAuthError::invalid_details(format!("permissions: {e}"))
                            })?);
                        }
                    }
                    "payment_limits" => {
                        payment_limits =
                            Some(serde_json::from_value(value.clone()).map_err(|e| {
                                OAuthError::invalid_details(format!("payment_limits: {e}"))
                            })?);
                    }
                    "accounts" => {
                        accounts = Some(serde_json::from_value(value.clone()).map_err(|_| {
                            OAuthError::invalid_details("accounts is a list of account ids")
                        })?);
                    }
                    "purpose" => {
                        purpose = Some(
                            value
                                .as_str()
                                .ok_or_else(|| OAuthError::invalid_details("purpose is a string"))?
                                .to_owned(),
                        );
                    }
                    "valid_until" => {
                        valid_until = parse_until(value).ok_or_else(|| {
                            OAuthError::invalid_details(
                                "valid_until is an RFC 3339 time or a date (YYYY-MM-DD)",
                            )
                        })?;
                    }
                    other => {
                        return Err(OAuthError::invalid_details(format!(
                            "unknown field {other:?} in the {DETAILS_TYPE} entry"
                        )));
                    }
                }
            }
            if !object.contains_key("type") {
                return Err(OAuthError::invalid_details(format!(
                    "the entry needs type {DETAILS_TYPE:?}"
                )));
            }
        }
        if permissions.is_empty() {
            return Err(OAuthError::invalid_request(
                "say what is asked: scope (accounts, payments) or authorization_details",
            ));
        }
        check_permission_set(&permissions)
            .map_err(|e| OAuthError::invalid_details(e.to_string()))?;
        let pays = permissions.contains(&Permission::CreateDomesticPayments);
        if pays != payment_limits.is_some() {
            return Err(OAuthError::invalid_details(
                "payment_limits go with CreateDomesticPayments, and only with it",
            ));
        }
        if valid_until <= now {
            return Err(OAuthError::invalid_details("valid_until is in the past"));
        }
        if valid_until > now + Duration::days(MAX_VALIDITY_DAYS) {
            return Err(OAuthError::invalid_details(format!(
                "valid_until is more than {MAX_VALIDITY_DAYS} days away"
            )));
        }
        let purpose = purpose.unwrap_or_else(|| "Access granted through OAuth".to_owned());
        if purpose.trim().is_empty() || purpose.chars().count() > 200 {
            return Err(OAuthError::invalid_details(
                "purpose must be 1 to 200 characters",
            ));
        }
        Ok(Asked {
            app: client.clone(),
            app_name: String::new(),
            app_version: String::new(),
            bank: self.bank.clone(),
            permissions,
            payment_limits,
            accounts,
            purpose,
            valid_until,
        })
    }

    /// The session behind `request_uri`, for `client_id`, opened in the browser holding
    /// `browser` (a cookie value; `None` the first time, and a new one is assigned).
    /// Returns the session and the cookie value to set, if new.
    pub fn open(
        &self,
        client_id: &str,
        request_uri: &str,
        browser: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(Session, Option<String>), OAuthError> {
        let handle = request_uri
            .strip_prefix(REQUEST_URI_PREFIX)
            .ok_or_else(|| OAuthError::invalid_request("request_uri was not issued here"))?;
        let mut sessions = lock(&self.sessions);
        let session = sessions
            .get_mut(handle)
            .filter(|s| !s.expired(now))
            .ok_or_else(|| {
                OAuthError::invalid_request("request_uri is unknown or has expired; start again")
            })?;
        if session.asked.app.as_str() != client_id {
            return Err(OAuthError::invalid_request(
                "client_id does not match the pushed request",
            ));
        }
        match (&session.browser, browser) {
            (None, _) => {
                let cookie = random_token();
                session.browser = Some(cookie.clone());
                Ok((session.clone(), Some(cookie)))
            }
            (Some(bound), Some(given)) if bound == given => Ok((session.clone(), None)),
            (Some(_), _) => Err(OAuthError::invalid_request(
                "this authorization is open in another browser",
            )),
        }
    }

    /// The session `handle` as the wallet sees it, if it is in progress.
    pub fn session(&self, handle: &str, now: DateTime<Utc>) -> Option<Session> {
        lock(&self.sessions)
            .get(handle)
            .filter(|s| !s.expired(now))
            .cloned()
    }

    /// The client says no on the consent page; `csrf` and `browser` must be the page's.
    pub fn deny(
        &self,
        handle: &str,
        csrf: Option<&str>,
        browser: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Session, OAuthError> {
        let mut sessions = lock(&self.sessions);
        let session = sessions
            .get_mut(handle)
            .filter(|s| !s.expired(now))
            .ok_or_else(|| OAuthError::invalid_request("this authorization has expired"))?;
        let csrf_ok = csrf.is_some_and(|c| constant_time_eq(c, &session.csrf));
        let browser_ok =
            matches!((&session.browser, browser), (Some(b), Some(g)) if constant_time_eq(b, g));
        if !csrf_ok || !browser_ok {
            return Err(OAuthError::new(
                403,
                "csrf_mismatch",
                "the form did not come from this authorization's consent page",
            ));
        }
        if session.decision != Decision::Pending {
            return Err(OAuthError::invalid_request(
                "this authorization is already decided",
            ));
        }
        session.decision = Decision::Denied;
        Ok(session.clone())
    }

    /// The wallet approves `handle` with `consent`: it must grant what was asked (or
    /// less), to this app, at this bank, on accounts its issuer holds here. On success the
    /// session waits in `Approving` until [`AuthServer::approved`] or [`AuthServer::release`].
    pub fn begin_approval(
        &self,
        handle: &str,
        consent: &VerifiedConsent,
        holders: &dyn AccountHolders,
        now: DateTime<Utc>,
    ) -> Result<(), OAuthError> {
        let mut sessions = lock(&self.sessions);
        let session = sessions
            .get_mut(handle)
            .filter(|s| !s.expired(now))
            .ok_or_else(|| OAuthError::invalid_request("this authorization has expired"))?;
        if session.decision != Decision::Pending {
            return Err(OAuthError::invalid_request(
                "this authorization is already decided",
            ));
        }
        let asked = &session.asked;
        let terms = &consent.terms;
        let refuse = |why: String| Err(OAuthError::invalid_request(why));
        if terms.app != asked.app {
            return refuse(format!(
                "the consent is for {}, not {}",
                terms.app, asked.app
            ));
        }
        if terms.bank != asked.bank {
            return refuse(format!(
                "the consent is for bank {}, not this bank",
                terms.bank
            ));
        }
        if !terms.permissions.is_subset(&asked.permissions) {
            return refuse("the consent grants permissions that were not asked for".into());
        }
        if terms.payment_limits.is_some() && terms.payment_limits != asked.payment_limits {
            return refuse("the consent's payment limits differ from those asked for".into());
        }
        if terms.valid_until > asked.valid_until + Duration::seconds(LEEWAY_SECS) {
            return refuse("the consent lasts longer than asked".into());
        }
        if let Some(named) = &asked.accounts
            && terms.accounts.iter().any(|a| !named.contains(a))
        {
            return refuse("the consent names accounts the app did not ask for".into());
        }
        if let Some(account) = terms
            .accounts
            .iter()
            .find(|a| !holders.holds(&consent.issuer, a))
        {
            return refuse(format!(
                "{} is not linked to account {account} at this bank",
                consent.issuer
            ));
        }
        session.decision = Decision::Approving;
        Ok(())
    }

    /// The consent of an approval is durable on the log: issue the code.
    pub fn approved(&self, handle: &str, consent: ConsentId, now: DateTime<Utc>) {
        if let Some(session) = lock(&self.sessions).get_mut(handle) {
            session.decision = Decision::Approved {
                consent,
                code: random_token(),
                code_expires: now + Duration::seconds(CODE_LIFETIME_SECS),
                used: false,
            };
        }
    }

    /// The consent of an approval could not be written: the session waits again.
    pub fn release(&self, handle: &str) {
        if let Some(session) = lock(&self.sessions).get_mut(handle)
            && session.decision == Decision::Approving
        {
            session.decision = Decision::Pending;
        }
    }

    /// The token request (authorization code grant with PKCE and a DPoP proof by the
    /// app's key). `Err(Ok(_))` is a refusal; `Err(Err(reused))` is a code used twice,
    /// whose consent must be revoked before `invalid_grant` is answered.
    /// `in_catalog` is asked as by [`AuthServer::authenticate`].
    pub fn token(
        &self,
        in_catalog: impl FnOnce(&Did) -> bool,
        params: &Params,
        dpop: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<TokenResponse, Result<OAuthError, ReusedCode>> {
        let endpoint = self.url("/oauth/token");
        let client = self
            .authenticate(in_catalog, params, &endpoint, now)
            .map_err(Ok)?;
        match params.require("grant_type").map_err(Ok)? {
            "authorization_code" => {}
            other => {
                return Err(Ok(OAuthError::new(
                    400,
                    "unsupported_grant_type",
                    format!("grant_type {other:?} is not supported; use authorization_code"),
                )));
            }
        }
        let code = params.require("code").map_err(Ok)?;
        let mut sessions = lock(&self.sessions);
        let session = sessions
            .values_mut()
            .find(|s| matches!(&s.decision, Decision::Approved { code: c, .. } if constant_time_eq(c, code)))
            .ok_or_else(|| Ok(OAuthError::invalid_grant("the code is unknown or has expired")))?;
        let Decision::Approved {
            consent,
            code_expires,
            used,
            ..
        } = &mut session.decision
        else {
            unreachable!("found by its code");
        };
        if *used {
            return Err(Err(ReusedCode(*consent)));
        }
        if now > *code_expires {
            return Err(Ok(OAuthError::invalid_grant("the code has expired")));
        }
        if session.asked.app != client {
            return Err(Ok(OAuthError::invalid_grant(
                "the code was issued to another client",
            )));
        }
        if params.get("redirect_uri") != Some(session.redirect_uri.as_str()) {
            return Err(Ok(OAuthError::invalid_grant(
                "redirect_uri differs from the authorization request's",
            )));
        }
        let verifier = params.require("code_verifier").map_err(Ok)?;
        if !is_pkce_text(verifier) || !constant_time_eq(&s256(verifier), &session.code_challenge) {
            return Err(Ok(OAuthError::invalid_grant(
                "code_verifier does not match the code_challenge",
            )));
        }
        let proof = dpop.ok_or_else(|| {
            Ok(OAuthError::invalid_dpop(
                "a DPoP proof signed by the app's key is required",
            ))
        })?;
        let request = PopRequest {
            method: "POST",
            url: &endpoint,
            access_token: "",
        };
        let claims = verify_pop(proof, &client, request, now, LEEWAY_SECS)
            .map_err(|e| Ok(OAuthError::invalid_dpop(e.to_string())))?;
        lock(&self.proofs)
            .first_use(
                &format!("{client} {}", claims.jti),
                now.timestamp() + LEEWAY_SECS,
                now.timestamp(),
            )
            .map_err(|error| {
                Ok(if error.status == 503 {
                    error
                } else {
                    OAuthError::invalid_dpop("the DPoP proof was already used")
                })
            })?;
        *used = true;
        let consent = *consent;
        Ok(TokenResponse {
            access_token: consent.to_string(),
            token_type: "DPoP",
            expires_in: (session.asked.valid_until - now).num_seconds().max(0),
            authorization_details: vec![session.asked.details(Some(&consent))],
            app_version: session.asked.app_version.clone(),
        })
    }

    /// Token introspection (RFC 7662) for the authenticated `client`: active only for
    /// its own usable consents at this bank; anything else is `{"active": false}`.
    pub fn introspect(
        &self,
        state: &State,
        client: &Did,
        token: &str,
        now: DateTime<Utc>,
    ) -> Value {
        let Some((consent, status)) = self.owned(state, client, token, now) else {
            return json!({ "active": false });
        };
        if status != ConsentStatus::Active {
            return json!({ "active": false });
        }
        let asked = Asked {
            app: consent.terms.app.clone(),
            app_name: String::new(),
            app_version: String::new(),
            bank: consent.terms.bank.clone(),
            permissions: consent.terms.permissions.clone(),
            payment_limits: consent.terms.payment_limits.clone(),
            accounts: Some(consent.terms.accounts.clone()),
            purpose: consent.terms.purpose.clone(),
            valid_until: consent.terms.valid_until,
        };
        json!({
            "active": true,
            "iss": self.issuer,
            "client_id": client,
            "sub": consent.issuer,
            "token_type": "DPoP",
            "iat": consent.terms.valid_from.timestamp(),
            "nbf": consent.terms.valid_from.timestamp(),
            "exp": consent.terms.valid_until.timestamp(),
            "cnf": { "jkt": jwk_thumbprint(client) },
            "authorization_details": [asked.details(Some(&consent.id))],
        })
    }

    /// Token revocation (RFC 7009): the consent to revoke when `token` is one of
    /// `client`'s usable consents at this bank; `None` when there is nothing to do.
    pub fn revocable(
        &self,
        state: &State,
        client: &Did,
        token: &str,
        now: DateTime<Utc>,
    ) -> Option<ConsentId> {
        let (consent, status) = self.owned(state, client, token, now)?;
        matches!(status, ConsentStatus::Active | ConsentStatus::NotYetValid).then_some(consent.id)
    }

    fn owned(
        &self,
        state: &State,
        client: &Did,
        token: &str,
        now: DateTime<Utc>,
    ) -> Option<(Arc<VerifiedConsent>, ConsentStatus)> {
        let id = ConsentId::parse(token.trim())?;
        let consent = state.consent(&id)?.clone();
        if &consent.terms.app != client || consent.terms.bank != self.bank {
            return None;
        }
        let status = state.consent_status(&id, now);
        Some((consent, status))
    }
}

/// The limits the `payments` scope asks for.
pub fn default_payment_limits() -> PaymentLimits {
    PaymentLimits {
        currency: "GBP".into(),
        max_per_payment: "250.00".into(),
        max_per_period: Some("1000.00".into()),
        period: Some(Period::Month),
    }
}

fn parse_until(value: &Value) -> Option<DateTime<Utc>> {
    let text = value.as_str()?;
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(23, 59, 59)?.and_utc())
}

/// Compares secrets without an early exit on the first differing byte.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_pkce_transform_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn random_tokens_are_128_bits_of_lowercase_hex() {
        let tokens: std::collections::HashSet<String> = (0..1000).map(|_| random_token()).collect();
        assert_eq!(tokens.len(), 1000);
        assert!(tokens.iter().all(|t| {
            t.len() == 32
                && t.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }));
    }

    #[test]
    fn repeated_form_parameters_are_refused() {
        let error = Params::parse(b"a=1&b=2&a=3").unwrap_err();
        assert_eq!(error.code, "invalid_request");
        assert!(error.description.contains('a'), "{error}");
        assert_eq!(Params::parse(b"a=1&b=").unwrap().get("b"), None);
    }

    #[test]
    fn seen_ids_are_refused_until_they_expire() {
        let mut seen = SeenIds::default();
        seen.first_use("x", 100, 50).unwrap();
        assert!(seen.first_use("x", 100, 60).is_err());
        // Long after it expired, it is forgotten (a fresh assertion could not reuse it
        // anyway: its exp would be checked first).
        seen.first_use("x", 300, 100 + LEEWAY_SECS + 1).unwrap();
    }

    #[test]
    fn a_full_table_of_seen_ids_answers_temporarily_unavailable_until_some_expire() {
        let mut seen = SeenIds::default();
        for i in 0..MAX_SEEN_IDS {
            seen.first_use(&i.to_string(), 100, 50).unwrap();
        }
        let full = seen.first_use("one more", 100, 50).unwrap_err();
        assert_eq!((full.status, full.code), (503, "temporarily_unavailable"));
        // Once the ids have expired (past the leeway), there is room again.
        seen.first_use("one more", 400, 100 + LEEWAY_SECS + 1)
            .unwrap();
    }

    #[test]
    fn until_takes_a_time_or_a_whole_day() {
        let day = parse_until(&json!("2027-01-31")).unwrap();
        assert_eq!(day.to_rfc3339(), "2027-01-31T23:59:59+00:00");
        assert!(parse_until(&json!("2027-01-31T10:00:00Z")).is_some());
        assert!(parse_until(&json!("soon")).is_none());
    }
}
