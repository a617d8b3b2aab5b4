//! The portal: the OAuth 2.0 authorization server (on bank nodes), the client's pages, the bank's and the regulator's pages, and the HTML kit they share. [`public_routes`] and [`operator_routes`] give its routes for each listener.

pub mod client;
pub mod console;
pub mod html;
pub mod oauth;
pub mod sessions;
pub mod state;

use axum::Router;

pub use state::Portal;

/// The portal's public routes, for the public listener: the OAuth server only where the
/// node keeps account links (a bank), the client's pages everywhere.
pub fn public_routes(portal: Portal) -> Router {
    let mut router = Router::new();
    if portal.links().is_some() {
        router = router
            .merge(oauth::http::routes(portal.clone()))
            .merge(oauth::consents::routes(portal.clone()))
            .merge(oauth::grants::routes(portal.clone()))
            .merge(oauth::events::routes(portal.clone()));
    }
    router.merge(client::routes(portal))
}

/// The portal's operator pages (the bank's and the regulator's), for the operator listener.
pub fn operator_routes(portal: Portal) -> Router {
    console::routes(portal)
}
