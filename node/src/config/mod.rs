//! The node's configuration: a TOML file whose every field has a documented default, overridden by flags.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod sections;
mod starter;

pub use sections::{
    AdapterSection, HttpSection, LimitsSection, LogSection, MIN_ADMIN_TOKEN, NodeSection,
    OperatorSection, P2pSection, PortalSection,
};

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
            &mut self.node.bundles_dir,
            &mut self.adapter.connectors_dir,
            &mut self.adapter.payments_journal,
            &mut self.adapter.links_file,
            &mut self.adapter.consent_resources_file,
            &mut self.adapter.records_dir,
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
        if !(1_000..=3_600_000).contains(&self.p2p.checkpoint_interval_ms) {
            return Err(ConfigError::OutOfRange {
                field: "p2p.checkpoint_interval_ms",
                message: "1000 to 3600000".into(),
            });
        }
        if !(1..=10_000).contains(&self.p2p.max_connections) {
            return Err(ConfigError::OutOfRange {
                field: "p2p.max_connections",
                message: "1 to 10000".into(),
            });
        }
        if !(1..=1_000_000).contains(&self.adapter.max_consents_per_client) {
            return Err(ConfigError::OutOfRange {
                field: "adapter.max_consents_per_client",
                message: "1 to 1000000".into(),
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
