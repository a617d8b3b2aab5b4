//! The portal: the OAuth 2.0 authorization server (on bank nodes), the client's pages, the bank's and the regulator's pages, and the HTML kit they share. [`routes`] gives every route of it.

pub mod client;
pub mod console;
pub mod html;
pub mod oauth;
pub mod sessions;
pub mod state;

use axum::Router;

pub use state::Portal;

/// Every portal route, to merge into the node's router: the OAuth server only where the
/// node keeps account links (a bank), the pages everywhere.
pub fn routes(portal: Portal) -> Router {
    let mut router = Router::new();
    if portal.links().is_some() {
        router = router.merge(oauth::http::routes(portal.clone()));
    }
    router
        .merge(client::routes(portal.clone()))
        .merge(console::routes(portal))
}
