//! The node's configuration: a TOML file whose every field has a documented default, overridden by flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema (the message names the field).
    #[error("config file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A value is out of range.
    #[error("config field {field}: {message}")]
    OutOfRange {
        /// The field, as `section.name`.
        field: &'static str,
        /// What is allowed.
        message: String,
    },
}

/// The whole configuration. Relative paths are relative to the config file's folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Where the node keeps its log and key.
    pub node: NodeSection,
    /// The node HTTP API.
    pub http: HttpSection,
    /// Peer-to-peer networking.
    pub p2p: P2pSection,
    /// Logging.
    pub log: LogSection,
    /// The unified Open Banking API, served by bank members.
    pub adapter: AdapterSection,
    /// The portal: OAuth 2.0 for TSPs and the web pages.
    pub portal: PortalSection,
    /// The operator surface: status, metrics, audit, admin and the operator pages.
    pub operator: OperatorSection,
    /// Rate limits.
    pub limits: LimitsSection,
}

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
    /// Proof ids remembered for replay detection at most. Default 262144.
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
}

impl Default for AdapterSection {
    fn default() -> Self {
        Self {
            replay_cache: 262_144,
            sandbox_seed: 1,
            connectors_dir: "connectors".into(),
            payments_journal: "payments.jsonl".into(),
            links_file: "links.jsonl".into(),
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
            max_connections: 64,
            max_strikes: 5,
        }
    }
}

impl NodeConfig {
    /// Reads `path`, resolving relative paths against its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config: NodeConfig =
            toml::from_str(&text).map_err(|error| ConfigError::Invalid {
                path: path.to_owned(),
                message: error.to_string(),
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve(base);
        config.check()?;
        Ok(config)
    }

    /// Makes relative paths relative to `base`.
    pub fn resolve(&mut self, base: &Path) {
        for path in [
            &mut self.node.data_dir,
            &mut self.node.key_file,
            &mut self.node.genesis,
            &mut self.adapter.connectors_dir,
            &mut self.adapter.payments_journal,
            &mut self.adapter.links_file,
        ] {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
        for path in [
            &mut self.node.passphrase_file,
            &mut self.operator.admin_token_file,
            &mut self.http.tls_cert_file,
            &mut self.http.tls_key_file,
        ]
        .into_iter()
        .flatten()
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    /// Checks values a type cannot.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !(1024..=16 << 20).contains(&self.http.max_body_bytes) {
            return Err(ConfigError::OutOfRange {
                field: "http.max_body_bytes",
                message: "1024 to 16777216".into(),
            });
        }
        if !(100..=600_000).contains(&self.p2p.sync_interval_ms) {
            return Err(ConfigError::OutOfRange {
                field: "p2p.sync_interval_ms",
                message: "100 to 600000".into(),
            });
        }
        if !(1..=10_000).contains(&self.p2p.max_connections) {
            return Err(ConfigError::OutOfRange {
                field: "p2p.max_connections",
                message: "1 to 10000".into(),
            });
        }
        if !(1_000..=100_000_000).contains(&self.adapter.replay_cache) {
            return Err(ConfigError::OutOfRange {
                field: "adapter.replay_cache",
                message: "1000 to 100000000".into(),
            });
        }
        if let Some(url) = &self.http.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::OutOfRange {
                field: "http.public_url",
                message: "an http:// or https:// URL".into(),
            });
        }
        if !self.operator.is_local() && self.operator.admin_token_file.is_none() {
            return Err(ConfigError::OutOfRange {
                field: "operator.admin_token_file",
                message: format!(
                    "required when operator.listen ({}) is not a loopback address",
                    self.operator.listen
                ),
            });
        }
        if self.operator.listen == self.http.listen && self.http.listen.port() != 0 {
            return Err(ConfigError::OutOfRange {
                field: "operator.listen",
                message: "an address other than http.listen".into(),
            });
        }
        self.check_http()?;
        if self.p2p.max_strikes == 0 {
            return Err(ConfigError::OutOfRange {
                field: "p2p.max_strikes",
                message: "at least 1".into(),
            });
        }
        Ok(())
    }

    /// The listeners' TLS and connection limits.
    fn check_http(&self) -> Result<(), ConfigError> {
        let http = &self.http;
        if !http.plain_http && (http.tls_cert_file.is_none() || http.tls_key_file.is_none()) {
            return Err(ConfigError::OutOfRange {
                field: "http.tls_cert_file",
                message: "http.tls_cert_file and http.tls_key_file are required unless http.plain_http = true (plain HTTP is for local development only)".into(),
            });
        }
        if let Some(url) = &http.public_url
            && url.starts_with("http://") != http.plain_http
        {
            return Err(ConfigError::OutOfRange {
                field: "http.public_url",
                message: "https:// when the listener serves TLS, http:// only with http.plain_http = true".into(),
            });
        }
        if !(100..=600_000).contains(&http.header_timeout_ms) {
            return Err(ConfigError::OutOfRange {
                field: "http.header_timeout_ms",
                message: "100 to 600000".into(),
            });
        }
        if http.max_connections_per_ip == 0 || http.max_connections < http.max_connections_per_ip {
            return Err(ConfigError::OutOfRange {
                field: "http.max_connections_per_ip",
                message: "at least 1, and at most http.max_connections".into(),
            });
        }
        let limits = &self.limits;
        if [
            limits.per_ip_per_second,
            limits.per_ip_burst,
            limits.per_app_per_second,
            limits.per_app_burst,
        ]
        .contains(&0)
        {
            return Err(ConfigError::OutOfRange {
                field: "limits",
                message: "every rate and burst is at least 1".into(),
            });
        }
        Ok(())
    }

    /// The starter file `init` writes: every field, with its default, documented.
    pub fn starter_toml(&self) -> String {
        format!(
            r#"# consentnet-node configuration. Relative paths are relative to this file.
# Every field is optional; the value shown is the default unless `init` set it.

[node]
# Folder for the RocksDB log.
data_dir = {data_dir:?}
# The node's encrypted key (made by `consentnet-node init`).
key_file = {key_file:?}
# The consortium's genesis file (made by `consentnet-node genesis`).
genesis = {genesis:?}
# A file holding the key's passphrase. Without it the passphrase is read from the
# CONSENTNET_NODE_PASSPHRASE environment variable.
{passphrase_file}

[http]
# Address of the public listener; port 0 picks a free port.
listen = "{http}"
# The base URL other parties address this node at (the unified API, the OAuth issuer and
# signed reads name it). Default: http://<http.listen>.
{public_url}
# Largest request body accepted, in bytes.
max_body_bytes = {max_body}
# The public listener serves HTTPS (TLS 1.2 and 1.3) with this certificate chain and key
# (PEM). Both files are reloaded, without a restart, when they change.
{tls_cert_file}
{tls_key_file}
# Serve plain HTTP instead: for local development only.
plain_http = {plain_http}
# How long a client has to send a request's headers, and an idle connection is kept (ms).
header_timeout_ms = {header_timeout}
# Most open connections from one IP address, and in all, per listener.
max_connections_per_ip = {conn_per_ip}
max_connections = {conn_total}

[limits]
# Token buckets: requests per second one client IP may make to the public listener, and
# the burst above that; unified API calls per second one app may make at this bank (a
# bank's decision on the log may set an app's own), and its burst. Empty: 429 with
# Retry-After.
per_ip_per_second = {ip_rate}
per_ip_burst = {ip_burst}
per_app_per_second = {app_rate}
per_app_burst = {app_burst}

[p2p]
# libp2p listen address.
listen = {p2p:?}
# Peers to dial at start and whenever they are not connected: multiaddrs ending in
# /p2p/<peer id>.
bootstrap = {bootstrap:?}
# How often to exchange frontiers with connected peers and redial missing ones (ms).
sync_interval_ms = {sync}
# Most connections in total.
max_connections = {max_conn}
# Invalid messages from one peer before it is blocked and disconnected.
max_strikes = {strikes}

[log]
# Logs as JSON lines instead of text.
json = {json}

[adapter]
# Used only when this node's member is a bank: it then serves the unified Open Banking
# API under /open-banking/v4.0/ on the public listener, at http.public_url.
# Proof ids remembered for replay detection at most.
replay_cache = {replay_cache}
# Seed of the embedded sandbox bank, the default connector.
sandbox_seed = {sandbox_seed}
# A folder watched for a bank-core mapping file (*.toml, see bank-adapter/mappings/):
# the newest valid file is the connector in service; with none, the sandbox bank is.
# A bad file is logged, naming the field, and the connector in service stays.
connectors_dir = {connectors_dir:?}
# The journal of payments counted against consents' limits (synced before each payment).
payments_journal = {payments_journal:?}
# The bank's private record of which client DID holds which accounts (account links).
# It never leaves this node; keep it private (the node writes it with mode 0600).
links_file = {links_file:?}

[portal]
# Serve the portal: on a bank node, the OAuth 2.0 authorization server for its accounts
# (pushed authorization requests, PKCE, private_key_jwt, DPoP-bound tokens), its metadata at
# /.well-known/oauth-authorization-server and the consent screen, at http.public_url.
enabled = {portal}

[operator]
# Address of the operator listener: /status, /metrics, /v1/audit, the bank admin API
# (/v1/admin/...) and the operator pages (/portal/bank, /portal/regulator). Keep it on a
# loopback address; anywhere else every operator request needs the admin token.
listen = "{operator}"
# A file holding the admin token (at least 16 characters), sent as x-admin-token. The bank
# admin API always needs it. Without it the admin API is disabled and listen must be a
# loopback address.
{admin_token_file}
"#,
            data_dir = self.node.data_dir.display().to_string(),
            key_file = self.node.key_file.display().to_string(),
            genesis = self.node.genesis.display().to_string(),
            passphrase_file = match &self.node.passphrase_file {
                Some(path) => format!("passphrase_file = {:?}", path.display().to_string()),
                None => "# passphrase_file = \"passphrase\"".to_owned(),
            },
            http = self.http.listen,
            max_body = self.http.max_body_bytes,
            tls_cert_file = match &self.http.tls_cert_file {
                Some(path) => format!("tls_cert_file = {:?}", path.display().to_string()),
                None => "# tls_cert_file = \"tls/cert.pem\"".to_owned(),
            },
            tls_key_file = match &self.http.tls_key_file {
                Some(path) => format!("tls_key_file = {:?}", path.display().to_string()),
                None => "# tls_key_file = \"tls/key.pem\"".to_owned(),
            },
            plain_http = self.http.plain_http,
            header_timeout = self.http.header_timeout_ms,
            conn_per_ip = self.http.max_connections_per_ip,
            conn_total = self.http.max_connections,
            ip_rate = self.limits.per_ip_per_second,
            ip_burst = self.limits.per_ip_burst,
            app_rate = self.limits.per_app_per_second,
            app_burst = self.limits.per_app_burst,
            p2p = self.p2p.listen,
            bootstrap = self.p2p.bootstrap,
            sync = self.p2p.sync_interval_ms,
            max_conn = self.p2p.max_connections,
            strikes = self.p2p.max_strikes,
            json = self.log.json,
            public_url = match &self.http.public_url {
                Some(url) => format!("public_url = {url:?}"),
                None => "# public_url = \"https://api.bank.example\"".to_owned(),
            },
            replay_cache = self.adapter.replay_cache,
            sandbox_seed = self.adapter.sandbox_seed,
            connectors_dir = self.adapter.connectors_dir.display().to_string(),
            payments_journal = self.adapter.payments_journal.display().to_string(),
            links_file = self.adapter.links_file.display().to_string(),
            operator = self.operator.listen,
            admin_token_file = match &self.operator.admin_token_file {
                Some(path) => format!("admin_token_file = {:?}", path.display().to_string()),
                None => "# admin_token_file = \"admin-token\"".to_owned(),
            },
            portal = self.portal.enabled,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_file_parses_back_to_the_same_config() {
        let mut config = NodeConfig::default();
        config.p2p.bootstrap = vec!["/ip4/127.0.0.1/tcp/1/p2p/12D3KooW".into()];
        config.node.passphrase_file = Some("/etc/consentnet/passphrase".into());
        config.http.public_url = Some("https://api.bank.example".into());
        config.portal.enabled = true;
        config.operator.admin_token_file = Some("admin-token".into());
        config.http.tls_cert_file = Some("tls/cert.pem".into());
        config.http.tls_key_file = Some("tls/key.pem".into());
        let parsed: NodeConfig = toml::from_str(&config.starter_toml()).unwrap();
        assert_eq!(parsed, config);
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let parsed: NodeConfig = toml::from_str("").unwrap();
        assert_eq!(parsed, NodeConfig::default());
    }

    #[test]
    fn unknown_and_mistyped_fields_are_named() {
        let error = toml::from_str::<NodeConfig>("[http]\nlisten_addr = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("listen_addr"), "{error}");
        let error = toml::from_str::<NodeConfig>("[p2p]\nsync_interval_ms = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("sync_interval_ms"), "{error}");
    }

    #[test]
    fn out_of_range_values_are_refused_with_the_field() {
        let mut config = NodeConfig::default();
        config.p2p.sync_interval_ms = 1;
        let error = config.check().unwrap_err().to_string();
        assert!(error.contains("p2p.sync_interval_ms"), "{error}");
    }

    #[test]
    fn an_operator_listener_off_this_machine_needs_the_admin_token() {
        let mut config = NodeConfig::default();
        config.operator.listen = "0.0.0.0:8081".parse().unwrap();
        let error = config.check().unwrap_err().to_string();
        assert!(error.contains("operator.admin_token_file"), "{error}");
        assert!(error.contains("0.0.0.0:8081"), "{error}");
        config.operator.admin_token_file = Some("admin-token".into());
        config.http.plain_http = true;
        config.check().unwrap();
    }

    #[test]
    fn the_public_listener_needs_tls_files_unless_plain_http_is_asked_for() {
        let mut config = NodeConfig::default();
        let error = config.check().unwrap_err().to_string();
        assert!(error.contains("http.tls_cert_file"), "{error}");
        config.http.tls_cert_file = Some("cert.pem".into());
        config.http.tls_key_file = Some("key.pem".into());
        config.check().unwrap();
        config.http.public_url = Some("http://api.bank.example".into());
        let error = config.check().unwrap_err().to_string();
        assert!(error.contains("http.public_url"), "{error}");
        config.http.public_url = None;
        config.http.tls_key_file = None;
        config.http.plain_http = true;
        config.check().unwrap();
    }

    #[test]
    fn the_two_listeners_cannot_share_an_address() {
        let mut config = NodeConfig::default();
        config.operator.listen = config.http.listen;
        let error = config.check().unwrap_err().to_string();
        assert!(error.contains("operator.listen"), "{error}");
    }

    #[test]
    fn a_short_admin_token_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin-token");
        std::fs::write(&path, "short\n").unwrap();
        let section = OperatorSection {
            admin_token_file: Some(path),
            ..OperatorSection::default()
        };
        let error = section.admin_token().unwrap_err().to_string();
        assert!(error.contains("at least 16"), "{error}");
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "[node]\ndata_dir = \"log\"\n[http]\nplain_http = true\n",
        )
        .unwrap();
        let config = NodeConfig::load(&path).unwrap();
        assert_eq!(config.node.data_dir, dir.path().join("log"));
        assert_eq!(config.node.genesis, dir.path().join("genesis.json"));
    }
}
