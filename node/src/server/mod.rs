//! The node's two HTTP listeners: what each serves (the public surface over TLS; the operator surface, gated by the admin token when other machines can reach it), their security headers, serving both until shutdown, and the line that says where they listen.

pub mod limits;
pub mod listener;
pub mod tls;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::net::TcpListener;

use crate::api::{self, AppState};
use crate::config::NodeConfig;
use crate::portal::{self, Portal, oauth::AuthServer};

/// The routers of the two listeners.
#[derive(Debug)]
pub struct Surfaces {
    /// The unified API, the OAuth server and its metadata, the client's pages,
    /// submissions of signed objects and entitled reads of the log.
    pub public: Router,
    /// Status, metrics, the audit, the bank admin API and the operator pages.
    pub operator: Router,
}

/// Why the surfaces could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The operator listener is reachable from other machines but no token is loaded.
    #[error("operator.listen {0} is not a loopback address and no admin token is configured")]
    OpenOperator(std::net::SocketAddr),
    /// The consent resources journal could not be replayed.
    #[error(transparent)]
    ConsentResources(#[from] crate::portal::oauth::intents_journal::JournalError),
}

/// Builds both surfaces: the node's routes, the adapter's (on banks) and the portal's
/// (when enabled, with `public_url` as the OAuth issuer).
pub fn surfaces(
    state: AppState,
    adapter: Option<Router>,
    config: &NodeConfig,
    public_url: &str,
    admin_token: Option<String>,
) -> Result<Surfaces, ServerError> {
    let limit = DefaultBodyLimit::max(config.http.max_body_bytes);
    let mut public = api::public_app(state.clone(), config.http.max_body_bytes);
    let mut operator = api::operator_app(state.clone(), config.http.max_body_bytes);
    if let Some(routes) = adapter {
        public = public.merge(routes);
    }
    if config.portal.enabled {
        let mut server = AuthServer::new(public_url, state.service.did().clone())
            .with_nonces(config.adapter.require_dpop_nonce);
        if state.bank.is_some() {
            server =
                server.with_journal(&config.adapter.consent_resources_file, chrono::Utc::now())?;
        }
        let server = Arc::new(server);
        if let Some(bank) = &state.bank {
            // A payment may name the payment consent resource it was authorised through.
            let _ = bank.adapter.resources.set(server.clone());
        }
        let portal = Portal {
            server,
            app: state,
            web: Arc::default(),
            console: Arc::default(),
        };
        if portal.links().is_some() {
            tracing::info!(issuer = %public_url, "serving the OAuth 2.0 authorization server");
        }
        tracing::info!(%public_url, "serving the portal pages under /portal");
        public = public.merge(portal::public_routes(portal.clone()).layer(limit));
        operator = operator.merge(portal::operator_routes(portal).layer(limit));
    }
    if !config.operator.is_local() {
        let token = admin_token.ok_or(ServerError::OpenOperator(config.operator.listen))?;
        operator = api::require_admin_token(operator, token);
    }
    let tls = !config.http.plain_http;
    let per_ip = limits::IpLimits::new(consentnet_bank_adapter::limits::Rate {
        per_second: config.limits.per_ip_per_second,
        burst: config.limits.per_ip_burst,
    });
    let public = public
        .layer(axum::middleware::from_fn_with_state(per_ip, limits::per_ip))
        .layer(axum::middleware::from_fn_with_state(tls, security_headers));
    let operator = operator.layer(axum::middleware::from_fn_with_state(
        false,
        security_headers,
    ));
    Ok(Surfaces { public, operator })
}

/// How the two listeners serve.
pub struct Listeners {
    /// The public listener.
    pub public: TcpListener,
    /// Its TLS, unless `http.plain_http`.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// The operator listener (plain HTTP, loopback by default).
    pub operator: TcpListener,
    /// What each connection may use.
    pub limits: listener::ConnectionLimits,
}

/// Serves both surfaces until `shutdown` resolves; then both stop accepting, finish
/// their requests in flight and return.
pub async fn serve(listeners: Listeners, surfaces: Surfaces, shutdown: impl Future<Output = ()>) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let Listeners {
        public,
        tls,
        operator,
        limits,
    } = listeners;
    let public = listener::serve(public, surfaces.public, tls, limits, stopped.clone());
    let operator = listener::serve(operator, surfaces.operator, None, limits, stopped);
    let trigger = async move {
        shutdown.await;
        let _ = stop.send(true);
    };
    tokio::join!(public, operator, trigger);
}

/// Headers on every answer: `nosniff` everywhere, and over TLS `Strict-Transport-Security`
/// (a year), so a browser never falls back to plain HTTP.
async fn security_headers(
    axum::extract::State(tls): axum::extract::State<bool>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// Prints the one JSON line that tells scripts and tests where the node listens.
pub fn print_listening(
    bound: std::net::SocketAddr,
    url: &str,
    operator: std::net::SocketAddr,
    p2p_addrs: &[libp2p::Multiaddr],
    did: &consentnet_identity::Did,
) {
    let peer_id = crate::p2p::peer_id_of(did);
    println!(
        "{}",
        serde_json::json!({
            "event": "listening",
            "http": bound.to_string(),
            "url": url,
            "operator": operator.to_string(),
            "p2p": p2p_addrs.iter().map(|a| format!("{a}/p2p/{peer_id}")).collect::<Vec<_>>(),
            "peer_id": peer_id.to_string(),
            "did": did.to_string(),
        })
    );
    tracing::info!(%bound, %operator, %peer_id, "node listening");
}
