//! The sections of `node.toml`: their fields, each with its documented default.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[operator]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OperatorSection {
    /// Address of the operator listener (status, metrics, audit, the bank admin API, the
    /// bank's and the regulator's pages); port 0 picks a free port. Default
    /// `127.0.0.1:8081`: only this machine reaches it.
    pub listen: SocketAddr,
    /// A file holding the operator's admin token (at least 16 characters). The bank admin
    /// API always requires it in `x-admin-token`; when `listen` is not a loopback
    /// address, every operator request does. Default: none, and then the admin API is
    /// disabled and `listen` must be a loopback address. `init` makes one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token_file: Option<PathBuf>,
}

impl Default for OperatorSection {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            admin_token_file: None,
        }
    }
}

/// The shortest admin token accepted.
pub const MIN_ADMIN_TOKEN: usize = 16;

impl OperatorSection {
    /// True when only this machine can reach the operator listener.
    pub fn is_local(&self) -> bool {
        self.listen.ip().is_loopback()
    }

    /// The admin token from its file, when one is configured.
    pub fn admin_token(&self) -> Result<Option<String>, ConfigError> {
        let Some(path) = &self.admin_token_file else {
            return Ok(None);
        };
        let token = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?
            .trim()
            .to_owned();
        if token.len() < MIN_ADMIN_TOKEN {
            return Err(ConfigError::OutOfRange {
                field: "operator.admin_token_file",
                message: format!("the token must be at least {MIN_ADMIN_TOKEN} characters"),
            });
        }
        Ok(Some(token))
    }
}

/// `[portal]`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalSection {
    /// Serve the portal. On a bank node this is the OAuth 2.0 authorization server for
    /// its accounts, at the adapter's public URL. Default false.
    pub enabled: bool,
}

/// `[adapter]` (used only when this node's member is a bank)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdapterSection {
    /// Proof ids remembered for replay detection at most, per app (each app has a
    /// partition of its own). Default 262144.
    pub replay_cache: usize,
    /// Seed of the embedded sandbox bank, the default connector. Default 1.
    pub sandbox_seed: u64,
    /// A folder watched for a mapping file (`*.toml`): the newest valid one is the
    /// connector in service; with none, the sandbox bank is. Default `connectors`.
    pub connectors_dir: PathBuf,
    /// The journal of payments this bank counted against consents' limits: what is left
    /// under a consent survives restarts. Default `payments.jsonl`.
    pub payments_journal: PathBuf,
    /// The bank's private record of which client DID holds which accounts (account
    /// links), kept on this node only. Default `links.jsonl`.
    pub links_file: PathBuf,
    /// The journal of the OBIE consent resources TSPs made at this bank (synced, mode
    /// 0600), replayed at start so a resource outlives a restart. Default
    /// `consent-resources.jsonl`.
    pub consent_resources_file: PathBuf,
    /// The bank's own store of its access records (RocksDB), kept on this node only: the
    /// shared log carries one signed commitment per batch. Default `records`.
    pub records_dir: PathBuf,
    /// Every DPoP proof, at the unified API and at this bank's authorization server,
    /// must carry a nonce this node issued (RFC 9449 section 8); without it, nonces are
    /// offered and checked when a proof carries one. Default false.
    pub require_dpop_nonce: bool,
    /// Consents one client may hold at this bank at once, counting those revoked or
    /// expired until they retire from the log's state: each is kept by every member, so
    /// no client may add them without bound. Default 1000.
    pub max_consents_per_client: usize,
}

impl Default for AdapterSection {
    fn default() -> Self {
        Self {
            replay_cache: 262_144,
            sandbox_seed: 1,
            connectors_dir: "connectors".into(),
            payments_journal: "payments.jsonl".into(),
            links_file: "links.jsonl".into(),
            consent_resources_file: "consent-resources.jsonl".into(),
            records_dir: "records".into(),
            require_dpop_nonce: false,
            max_consents_per_client: 1_000,
        }
    }
}

/// `[node]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeSection {
    /// Folder for the RocksDB log. Default `data`.
    pub data_dir: PathBuf,
    /// The node's encrypted key file, made by `consentnet-node init`. Default `node-key.json`.
    pub key_file: PathBuf,
    /// The consortium's genesis file. Default `genesis.json`.
    pub genesis: PathBuf,
    /// Folder for mini-app bundle files, stored by their SHA-256. Default `bundles`.
    pub bundles_dir: PathBuf,
    /// A file holding the key's passphrase. Default: none, and the passphrase is read from
    /// the `CONSENTNET_NODE_PASSPHRASE` environment variable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passphrase_file: Option<PathBuf>,
}

/// `[http]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Address of the public listener; port 0 picks a free port. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// The base URL other parties address this node at: the unified API, the OAuth
    /// issuer and signed reads name it (proofs name full URLs). Default: none, and
    /// `http://<the bound public address>` is used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Largest request body accepted, in bytes. Default 262144 (256 KiB).
    pub max_body_bytes: usize,
    /// The public listener's certificate chain (PEM), reloaded when the file changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<PathBuf>,
    /// The certificate's private key (PEM), reloaded with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<PathBuf>,
    /// Serve the public listener as plain HTTP: for local development only. Default
    /// false, and then both TLS files are required.
    pub plain_http: bool,
    /// How long a client has to send a request's headers, and how long an idle
    /// connection is kept, in milliseconds. Default 10000.
    pub header_timeout_ms: u64,
    /// Most open connections from one IP address, per listener. Default 64.
    pub max_connections_per_ip: usize,
    /// Most open connections in all, per listener. Default 4096.
    pub max_connections: usize,
}

/// `[limits]`: token buckets that answer `429` with `Retry-After` when empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Requests per second one client IP may make to the public listener (OAuth,
    /// submissions, reads, pages), sustained. Default 50.
    pub per_ip_per_second: u32,
    /// The burst one client IP may make above that. Default 200.
    pub per_ip_burst: u32,
    /// Unified API calls per second one app may make at this bank, sustained, unless the
    /// bank's decision on the log sets the app's own. Default 100.
    pub per_app_per_second: u32,
    /// The burst one app may make above that. Default 400.
    pub per_app_burst: u32,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            per_ip_per_second: 50,
            per_ip_burst: 200,
            per_app_per_second: 100,
            per_app_burst: 400,
        }
    }
}

/// `[p2p]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct P2pSection {
    /// libp2p listen address. Default `/ip4/0.0.0.0/tcp/7400`.
    pub listen: String,
    /// Peers to dial at start and whenever they are not connected, as multiaddrs ending in
    /// `/p2p/<peer id>`. Default: none.
    pub bootstrap: Vec<String>,
    /// How often to exchange frontiers with every connected peer and redial missing
    /// bootstrap peers, in milliseconds. Default 2000.
    pub sync_interval_ms: u64,
    /// How often, at most, this node signs a checkpoint of the other feeds it holds (only
    /// when they moved since the last one), in milliseconds: the audit judges each
    /// bank's access times against when its peers saw them. Default 10000.
    pub checkpoint_interval_ms: u64,
    /// Most connections in total. Default 64.
    pub max_connections: u32,
    /// Invalid messages from one peer before it is blocked and disconnected. Default 5.
    pub max_strikes: u32,
}

/// `[log]`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// Logs as JSON lines instead of text. Default false.
    pub json: bool,
}

impl Default for NodeSection {
    fn default() -> Self {
        Self {
            data_dir: "data".into(),
            key_file: "node-key.json".into(),
            genesis: "genesis.json".into(),
            bundles_dir: "bundles".into(),
            passphrase_file: None,
        }
    }
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            max_body_bytes: 256 * 1024,
            tls_cert_file: None,
            tls_key_file: None,
            plain_http: false,
            header_timeout_ms: 10_000,
            max_connections_per_ip: 64,
            max_connections: 4096,
        }
    }
}

impl Default for P2pSection {
    fn default() -> Self {
        Self {
            listen: "/ip4/0.0.0.0/tcp/7400".into(),
            bootstrap: Vec::new(),
            sync_interval_ms: 2_000,
            checkpoint_interval_ms: 10_000,
            max_connections: 64,
            max_strikes: 5,
        }
    }
}
