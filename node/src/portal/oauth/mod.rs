//! The OAuth 2.0 authorization server of a bank node: pushed authorization requests with PKCE and `authorization_details`, `private_key_jwt` client authentication by the app's DID key, single-use codes, DPoP-bound access tokens that are consent ids, introspection and revocation. The protocol's decisions live in these files and know no HTTP; `http` and `screen` are its HTTP face.

mod approval;
mod client_auth;
pub mod client_tokens;
pub mod consents;
mod dpop;
mod error;
pub mod events;
pub mod grants;
pub mod http;
pub mod intents;
pub mod intents_journal;
mod par;
mod params;
pub mod payment_kinds;
mod screen;
mod seen;
mod server;
mod session;
mod token;

use consentnet_identity::Permission;

pub use error::{OAuthCode, OAuthError};
pub use par::default_payment_limits;
pub use params::Params;
pub use server::{AuthServer, s256};
pub use session::{Asked, Decision, ReusedCode, Session, TokenResponse};

/// How long a pushed request's `request_uri` may wait to be opened, in seconds.
pub const REQUEST_URI_LIFETIME_SECS: i64 = 300;
/// How long an opened authorization may wait for the client's decision, in seconds.
pub const SESSION_LIFETIME_SECS: i64 = 900;
/// How long an authorization code may wait to be exchanged, in seconds.
pub const CODE_LIFETIME_SECS: i64 = 60;
/// Authorizations in progress at most; beyond it new requests get `temporarily_unavailable`.
pub const MAX_SESSIONS: usize = 10_000;
/// Client-assertion and DPoP proof ids remembered at most (each until it expires).
pub const MAX_SEEN_IDS: usize = 100_000;
/// The furthest in the future a client assertion may expire, in seconds.
pub const MAX_ASSERTION_LIFETIME_SECS: i64 = 3_660;
/// Clock skew allowed on `iat`, `exp` and DPoP proofs, in seconds.
pub const LEEWAY_SECS: i64 = 60;
/// Validity of a consent when the request names none, in days.
pub const DEFAULT_VALIDITY_DAYS: i64 = 90;
/// The longest validity a request may ask for, in days.
pub const MAX_VALIDITY_DAYS: i64 = 366;
/// The `authorization_details` type this server understands.
pub const DETAILS_TYPE: &str = "consentnet";
/// The only client assertion type accepted (`private_key_jwt`, RFC 7523).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The prefix of every `request_uri` this server issues (RFC 9126).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// The permissions the `accounts` scope asks for.
pub const ACCOUNTS_SCOPE: [Permission; 5] = [
    Permission::ReadAccountsDetail,
    Permission::ReadBalances,
    Permission::ReadTransactionsDetail,
    Permission::ReadTransactionsCredits,
    Permission::ReadTransactionsDebits,
];
