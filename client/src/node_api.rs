//! A small blocking client for a node's HTTP API, with errors that say which node failed and how.

use serde::{Deserialize, Serialize};

/// What a node reports about itself on `GET /status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeStatus {
    /// The node software's version.
    pub version: String,
    /// Peers currently connected.
    pub peers: usize,
    /// Entries held in the node's local log.
    pub log_entries: u64,
    /// The node's DID.
    #[serde(default)]
    pub did: String,
    /// Its role in the consortium.
    #[serde(default)]
    pub role: Option<String>,
    /// The digest of its consent state: equal on nodes holding the same events.
    #[serde(default)]
    pub state_digest: String,
    /// On bank nodes: the bank connector in service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
}

/// Who a node is, from its public `GET /.well-known/consentnet-node`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeIdentity {
    /// The node's DID.
    pub did: String,
    /// Its role in the consortium.
    #[serde(default)]
    pub role: Option<String>,
    /// The consortium's network name.
    #[serde(default)]
    pub network: String,
}

/// Why a call to a node failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeApiError {
    /// The node URL could not be used.
    #[error(
        "invalid node URL {url:?}: expected https://HOST:PORT (or http:// for a local plain-HTTP node)"
    )]
    InvalidUrl {
        /// The URL as given.
        url: String,
    },
    /// The CA file to trust could not be read or holds no certificate.
    #[error("the CA file {path} ({CA_FILE_ENV}): {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The node could not be reached at all.
    #[error("cannot reach the node at {url}: {reason}")]
    Unreachable {
        /// The URL that was called.
        url: String,
        /// What the transport reported.
        reason: String,
    },
    /// The node answered with an error.
    #[error("the node at {url} refused the request ({status} {code}): {message}")]
    Refused {
        /// The URL that was called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The machine-readable error code from the node.
        code: String,
        /// The node's message.
        message: String,
    },
    /// The node answered with something that is not what its API promises.
    #[error("the node at {url} sent a response that could not be read: {reason}")]
    BadResponse {
        /// The URL that was called.
        url: String,
        /// Why the body could not be read.
        reason: String,
    },
}

/// What a request carries.
enum Body<'a> {
    None,
    Json(&'a serde_json::Value),
    Text(&'a str),
    Bytes(&'a [u8]),
    Delete,
}

/// A handle on one node's HTTP API.
#[derive(Debug, Clone)]
pub struct NodeClient {
    base: String,
    agent: ureq::Agent,
}

/// The node's `{code, message}`, an OBIE `OBErrorResponse1` (`Code`, `Message`) or an
/// OAuth error (`error`, `error_description`).
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(alias = "Code", alias = "error")]
    code: String,
    #[serde(alias = "Message", alias = "error_description", default)]
    message: String,
}

/// The environment variable naming a CA certificate file (PEM) to trust besides the
/// public roots: the CA of a demo or test consortium, or a node's own `tls/ca.pem`.
pub const CA_FILE_ENV: &str = "CONSENTNET_CA_FILE";

static CA_FILE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Trusts the CA certificate in `path` (PEM) for every client made after this, instead
/// of [`CA_FILE_ENV`] (the CLI's `--ca-file`). The first call wins.
pub fn trust_ca_file(path: &std::path::Path) {
    let _ = CA_FILE.set(path.to_owned());
}

/// The roots to trust: the CA file given, else the public (Mozilla) roots.
fn root_certs() -> Result<ureq::tls::RootCerts, NodeApiError> {
    let path = CA_FILE
        .get()
        .cloned()
        .or_else(|| std::env::var_os(CA_FILE_ENV).map(Into::into));
    match path {
        Some(path) => roots_from(&path),
        None => Ok(ureq::tls::RootCerts::WebPki),
    }
}

/// The certificates in the PEM file at `path`, as the only roots.
fn roots_from(path: &std::path::Path) -> Result<ureq::tls::RootCerts, NodeApiError> {
    let error = |reason: String| NodeApiError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => Some(Ok(cert)),
            Ok(_) => None,
            Err(e) => Some(Err(error(e.to_string()))),
        })
        .collect::<Result<_, _>>()?;
    if certs.is_empty() {
        return Err(error("holds no certificate".into()));
    }
    Ok(ureq::tls::RootCerts::new_with_certs(&certs))
}

/// An HTTP agent that answers every status (errors are read from the body) and, over
/// https, trusts `roots`.
fn agent(timeout: std::time::Duration, roots: ureq::tls::RootCerts) -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .root_certs(roots)
        .unversioned_rustls_crypto_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .tls_config(tls)
        .build()
        .new_agent()
}

impl NodeClient {
    /// Makes a client for the node at `base`, e.g. `https://127.0.0.1:8080`, trusting the
    /// public roots or the CA file given to [`trust_ca_file`] or in [`CA_FILE_ENV`].
    pub fn new(base: &str) -> Result<Self, NodeApiError> {
        Self::with_roots(base, root_certs()?)
    }

    /// Makes a client for the node at `base` trusting only the CA certificate in
    /// `ca_file` (a demo or test consortium's).
    pub fn trusting(base: &str, ca_file: &std::path::Path) -> Result<Self, NodeApiError> {
        Self::with_roots(base, roots_from(ca_file)?)
    }

    fn with_roots(base: &str, roots: ureq::tls::RootCerts) -> Result<Self, NodeApiError> {
        let trimmed = base.trim_end_matches('/');
        let rest = trimmed
            .strip_prefix("https://")
            .or_else(|| trimmed.strip_prefix("http://"))
            .ok_or_else(|| NodeApiError::InvalidUrl { url: base.into() })?;
        if rest.is_empty() || rest.contains('/') {
            return Err(NodeApiError::InvalidUrl { url: base.into() });
        }
        let agent = agent(std::time::Duration::from_secs(10), roots);
        Ok(Self {
            base: trimmed.to_owned(),
            agent,
        })
    }

    /// Reads the node's status (on its operator listener).
    pub fn status(&self) -> Result<NodeStatus, NodeApiError> {
        self.get_json("/status")
    }

    /// Reads who the node is (on its public listener).
    pub fn identity(&self) -> Result<NodeIdentity, NodeApiError> {
        self.get_json("/.well-known/consentnet-node")
    }

    /// GETs `path` (with `headers`) and returns the JSON answer.
    pub fn get_with(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<serde_json::Value, NodeApiError> {
        self.request(path, headers, Body::None)
    }

    /// GETs `path` as a read signed by `key` (a DPoP proof for this node's URL, which the
    /// node checks against its public URL) and returns the JSON answer.
    pub fn get_signed(
        &self,
        path: &str,
        key: &consentnet_identity::KeyPair,
    ) -> Result<serde_json::Value, NodeApiError> {
        let url = format!("{}{}", self.base, path);
        let request = consentnet_identity::PopRequest {
            method: "GET",
            url: &url,
            access_token: "",
        };
        let proof = consentnet_identity::sign_pop(key, request, chrono::Utc::now());
        self.get_with(path, &[("dpop", &proof)])
    }

    /// POSTs `body` as JSON to `path` and returns the JSON answer.
    pub fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, NodeApiError> {
        self.request(path, &[], Body::Json(body))
    }

    /// POSTs `body` as JSON to `path` with `headers` and returns the JSON answer.
    pub fn post_with(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, NodeApiError> {
        self.request(path, headers, Body::Json(body))
    }

    /// The full URL of `path` at this node.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, NodeApiError> {
        self.request(path, &[], Body::None)
    }

    /// PUTs a text body (e.g. a mapping file) to `path` and returns the JSON answer.
    pub fn put_text(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<serde_json::Value, NodeApiError> {
        self.request(path, headers, Body::Text(body))
    }

    /// PUTs raw bytes (e.g. a bundle file) to `path` and returns the JSON answer.
    pub fn put_bytes(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<serde_json::Value, NodeApiError> {
        self.request(path, headers, Body::Bytes(body))
    }

    /// DELETEs `path` and returns the JSON answer.
    pub fn delete(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<serde_json::Value, NodeApiError> {
        self.request(path, headers, Body::Delete)
    }

    /// Sends a request: GET, POST of JSON, PUT of text or bytes, or DELETE.
    fn request<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<T, NodeApiError> {
        let url = format!("{}{}", self.base, path);
        let with_headers = |mut request: ureq::RequestBuilder<ureq::typestate::WithBody>| {
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            request
        };
        let without_body = |mut request: ureq::RequestBuilder<ureq::typestate::WithoutBody>| {
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            request
        };
        let sent = match body {
            Body::Json(json) => with_headers(self.agent.post(&url))
                .header("content-type", "application/json")
                .send(json.to_string()),
            Body::Text(text) => with_headers(self.agent.put(&url))
                .header("content-type", "text/plain")
                .send(text),
            Body::Bytes(bytes) => with_headers(self.agent.put(&url))
                .header("content-type", "application/octet-stream")
                .send(bytes),
            Body::None => without_body(self.agent.get(&url)).call(),
            Body::Delete => without_body(self.agent.delete(&url)).call(),
        };
        let mut response = sent.map_err(|error| NodeApiError::Unreachable {
            url: url.clone(),
            reason: error.to_string(),
        })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(4 << 20)
            .read_to_vec()
            .map_err(|error| NodeApiError::BadResponse {
                url: url.clone(),
                reason: error.to_string(),
            })?;
        if !(200..300).contains(&status) {
            let parsed: Option<ErrorBody> = serde_json::from_slice(&body).ok();
            let (code, message) = match parsed {
                Some(body) => (body.code, body.message),
                None => (
                    "unknown".to_owned(),
                    String::from_utf8_lossy(&body).into_owned(),
                ),
            };
            return Err(NodeApiError::Refused {
                url,
                status,
                code,
                message,
            });
        }
        serde_json::from_slice(&body).map_err(|error| NodeApiError::BadResponse {
            url,
            reason: error.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_urls_that_are_not_http_or_https_hosts() {
        for bad in [
            "",
            "127.0.0.1:8080",
            "ftp://x:1",
            "http://",
            "https://",
            "http://h:1/path",
        ] {
            let error = NodeClient::new(bad).unwrap_err();
            assert!(
                matches!(error, NodeApiError::InvalidUrl { .. }),
                "{bad:?} gave {error:?}"
            );
        }
        assert!(NodeClient::new("http://127.0.0.1:8080/").is_ok());
        assert!(NodeClient::new("https://bank.example:8443").is_ok());
    }
}
