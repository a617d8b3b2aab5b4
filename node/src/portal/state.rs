//! What every portal handler shares: the node's API state, the authorization server, and the in-memory sessions of the pages.

use std::sync::Arc;

use consentnet_bank_adapter::links::Links;

use super::oauth::AuthServer;
use super::sessions::{Console, Web};
use crate::api::AppState;

/// What the portal's handlers share.
#[derive(Clone, Debug)]
pub struct Portal {
    /// The node's API state: the log, the submitter, the network, the bank role.
    pub app: AppState,
    /// The authorization server.
    pub server: Arc<AuthServer>,
    /// The web pages' sign-ins and sessions.
    pub web: Arc<Web>,
    /// The operator pages' sessions and cached audit.
    pub console: Arc<Console>,
}

impl Portal {
    /// The bank's account links (who may approve for which accounts); on bank nodes.
    pub fn links(&self) -> Option<&Arc<Links>> {
        self.app.links.as_ref()
    }

    /// A random entry of this bank's revocation status list, for a consent the bank
    /// prepares for a browser to sign (the browser holds no list of its own).
    pub fn status_entry(&self) -> Option<consentnet_identity::consent::StatusEntry> {
        self.app
            .bank
            .as_ref()
            .map(|bank| consentnet_identity::consent::StatusEntry::random(&bank.status.url()))
    }
}
