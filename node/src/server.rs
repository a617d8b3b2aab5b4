//! The node's two HTTP listeners: what each serves (the public surface; the operator surface, gated by the admin token when other machines can reach it) and serving both until shutdown.

use std::future::{Future, IntoFuture};
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
        let portal = Portal {
            server: Arc::new(AuthServer::new(public_url, state.service.did().clone())),
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
    Ok(Surfaces { public, operator })
}

/// Serves both surfaces until `shutdown` resolves; then both finish their requests in
/// flight and return.
pub async fn serve(
    public: TcpListener,
    operator: TcpListener,
    surfaces: Surfaces,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    // `into_make_service` turns the routes into services once; serving the router itself
    // would rebuild every route for each new connection.
    let public = axum::serve(public, surfaces.public.into_make_service())
        .with_graceful_shutdown(until_stopped(stopped.clone()))
        .into_future();
    let operator = axum::serve(operator, surfaces.operator.into_make_service())
        .with_graceful_shutdown(until_stopped(stopped))
        .into_future();
    let trigger = async move {
        shutdown.await;
        let _ = stop.send(true);
    };
    let (public, operator, ()) = tokio::join!(public, operator, trigger);
    public.and(operator)
}
