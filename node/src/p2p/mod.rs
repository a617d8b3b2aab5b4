//! The libp2p side of the node: one event loop owns the swarm (gossip of new entries, frontier and range sync with one request per feed in flight, liveness pings, membership gating), driven through a cloneable handle over bounded channels. It reaches the log only through the [`LogPeer`] trait, so it never names the node's service.

mod counters;
mod event_loop;
mod inflight;
mod log;
pub mod pending;
mod swarm;
mod sync;
mod validator;
pub mod wire;

use std::collections::HashMap;
use std::time::Duration;

use consentnet_identity::{Did, KeyPair};
use libp2p::{Multiaddr, PeerId, identity, multiaddr::Protocol};

pub use counters::Counters;
pub use event_loop::{NetworkHandle, NetworkStatus};
pub use log::{GossipVerdict, LogPeer, SyncOutcome};
pub use swarm::start;

/// Entries judged in one validator burst at most (several messages together).
const BURST_ENTRIES: usize = 512;
/// Commands queued to the event loop at most.
const COMMAND_QUEUE: usize = 1024;
/// Gossip messages queued for validation at most, and the most messages in one burst
/// judged at once; more are ignored (sync fetches them later).
const VALIDATING: usize = 256;
/// Sync requests and answers being prepared at once.
const SYNCING: usize = 64;
/// The gossip score below which a peer's messages are ignored: such a peer is blocked at
/// once, since its later invalid messages would never reach the strike count.
const GRAYLIST: f64 = -80.0;

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A multiaddr in the configuration does not parse or lacks its peer id.
    #[error("p2p address {address:?}: {reason}")]
    Address {
        /// The address as written.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// libp2p refused to start.
    #[error("starting libp2p: {0}")]
    Start(String),
    /// A genesis member's peer id does not belong to its DID's key.
    #[error("genesis member {did} has peer id {peer_id}, but its key gives {expected}")]
    PeerIdMismatch {
        /// The member.
        did: String,
        /// The peer id in the genesis file.
        peer_id: String,
        /// The peer id its DID's key gives.
        expected: String,
    },
}

/// The network settings the loop needs.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// The consortium's network name (from the genesis): it names the gossip topics.
    pub network: String,
    /// Listen address.
    pub listen: Multiaddr,
    /// Peers to keep dialing: address and peer id.
    pub bootstrap: Vec<(PeerId, Multiaddr)>,
    /// Frontier exchange and redial period.
    pub sync_interval: Duration,
    /// Most connections.
    pub max_connections: u32,
    /// Invalid messages before a peer is blocked.
    pub max_strikes: u32,
}

impl NetworkConfig {
    /// Parses the addresses of the `[p2p]` section.
    pub fn from_section(
        section: &crate::config::P2pSection,
        network: &str,
    ) -> Result<Self, NetworkError> {
        let listen = section
            .listen
            .parse::<Multiaddr>()
            .map_err(|e| NetworkError::Address {
                address: section.listen.clone(),
                reason: e.to_string(),
            })?;
        let bootstrap = section
            .bootstrap
            .iter()
            .map(|text| parse_peer_address(text))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            network: network.to_owned(),
            listen,
            bootstrap,
            sync_interval: Duration::from_millis(section.sync_interval_ms),
            max_connections: section.max_connections,
            max_strikes: section.max_strikes,
        })
    }
}

/// Parses `/ip4/.../tcp/.../p2p/<peer id>` into the peer id and the address.
pub fn parse_peer_address(text: &str) -> Result<(PeerId, Multiaddr), NetworkError> {
    let address: Multiaddr =
        text.parse()
            .map_err(|e: libp2p::multiaddr::Error| NetworkError::Address {
                address: text.to_owned(),
                reason: e.to_string(),
            })?;
    match address.iter().last() {
        Some(Protocol::P2p(peer)) => Ok((peer, address)),
        _ => Err(NetworkError::Address {
            address: text.to_owned(),
            reason: "must end in /p2p/<peer id>".into(),
        }),
    }
}

/// The libp2p key pair of a node key (the same Ed25519 key).
pub fn libp2p_keypair(key: &KeyPair) -> identity::Keypair {
    let mut secret = *key.secret_bytes();
    identity::Keypair::ed25519_from_bytes(&mut secret)
        .unwrap_or_else(|_| unreachable!("an Ed25519 secret is 32 bytes"))
}

/// The peer id of the node whose key is behind `did`.
pub fn peer_id_of(did: &Did) -> PeerId {
    let public = identity::ed25519::PublicKey::try_from_bytes(did.public_key().as_bytes())
        .unwrap_or_else(|_| unreachable!("a did:key holds a valid Ed25519 key"));
    identity::PublicKey::from(public).to_peer_id()
}

/// The members' peer ids, checked against their DIDs.
pub fn member_peers(log: &dyn LogPeer) -> Result<HashMap<PeerId, Did>, NetworkError> {
    log.members()
        .iter()
        .map(|member| {
            let expected = peer_id_of(&member.did);
            if expected.to_string() != member.peer_id {
                return Err(NetworkError::PeerIdMismatch {
                    did: member.did.to_string(),
                    peer_id: member.peer_id.clone(),
                    expected: expected.to_string(),
                });
            }
            Ok((expected, member.did.clone()))
        })
        .collect()
}
