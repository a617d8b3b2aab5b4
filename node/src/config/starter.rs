//! The starter `node.toml` that `init` writes: every field with its value and what it means.

use super::NodeConfig;

impl NodeConfig {
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
# Folder for mini-app bundle files, stored by their SHA-256.
bundles_dir = {bundles_dir:?}
# A file holding the key's passphrase. Without it the passphrase is read from the
# CONSENTNET_NODE_PASSPHRASE environment variable.
{passphrase_file}

[http]
# Address of the public listener; port 0 picks a free port.
listen = "{http}"
# The base URL other parties address this node at (the unified API, the OAuth issuer,
# signed reads and, on a bank node, the revocation status list every consent names:
# set it, so the list keeps its URL when the port changes). Default: http://<http.listen>.
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
# How often, at most, to sign a checkpoint of the other feeds held (ms); the audit
# judges banks' access times against them.
checkpoint_interval_ms = {checkpoint}
# Most connections in total.
max_connections = {max_conn}
# Invalid messages from one peer before it is blocked and disconnected.
max_strikes = {strikes}

[log]
# Logs as JSON lines instead of text.
json = {json}

{adapter}[portal]
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
            bundles_dir = self.node.bundles_dir.display().to_string(),
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
            checkpoint = self.p2p.checkpoint_interval_ms,
            max_conn = self.p2p.max_connections,
            strikes = self.p2p.max_strikes,
            json = self.log.json,
            public_url = match &self.http.public_url {
                Some(url) => format!("public_url = {url:?}"),
                None => "# public_url = \"https://api.bank.example\"".to_owned(),
            },
            adapter = self.adapter_toml(),
            operator = self.operator.listen,
            admin_token_file = match &self.operator.admin_token_file {
                Some(path) => format!("admin_token_file = {:?}", path.display().to_string()),
                None => "# admin_token_file = \"admin-token\"".to_owned(),
            },
            portal = self.portal.enabled,
        )
    }

    /// The starter file's `[adapter]` section.
    fn adapter_toml(&self) -> String {
        format!(
            r#"[adapter]
# Used only when this node's member is a bank: it then serves the unified Open Banking
# API under /open-banking/v4.0/ on the public listener, at http.public_url.
# Proof ids remembered for replay detection at most, per app (one busy app fills only
# its own partition).
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
# The OBIE consent resources TSPs made here, journaled so they outlive a restart.
consent_resources_file = {consent_resources_file:?}
# The bank's own store of access records (RocksDB). They stay on this node; the shared
# log carries one signed commitment (a Merkle root) per batch.
records_dir = {records_dir:?}
# Require a server nonce in every DPoP proof (RFC 9449 section 8), here and at the
# authorization server; false offers nonces and checks those a client sends.
require_dpop_nonce = {require_dpop_nonce}
# Consents one client may hold here at once (revoked and expired ones count until they
# retire from the log's state); every member keeps each, so none grows without bound.
max_consents_per_client = {max_consents_per_client}

"#,
            replay_cache = self.adapter.replay_cache,
            sandbox_seed = self.adapter.sandbox_seed,
            connectors_dir = self.adapter.connectors_dir.display().to_string(),
            payments_journal = self.adapter.payments_journal.display().to_string(),
            links_file = self.adapter.links_file.display().to_string(),
            consent_resources_file = self.adapter.consent_resources_file.display().to_string(),
            records_dir = self.adapter.records_dir.display().to_string(),
            max_consents_per_client = self.adapter.max_consents_per_client,
            require_dpop_nonce = self.adapter.require_dpop_nonce,
        )
    }
}
