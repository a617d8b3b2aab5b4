//! Building the swarm: transport, gossipsub with scoring and validation, the sync protocol, liveness pings, membership gating and connection limits; then the event loop is started.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use consentnet_consent_chain::Hash32;
use consentnet_consent_chain::entry::MAX_ENTRY_BYTES;
use consentnet_consent_chain::replica::MAX_RANGE;
use consentnet_identity::{Did, KeyPair};
use libp2p::futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageId};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, allow_block_list, connection_limits, identify,
    identity, noise, ping, tcp, yamux,
};
use tokio::sync::{Semaphore, mpsc, watch};

use super::event_loop::{EventLoop, NetworkHandle};
use super::validator::run_validator;
use super::wire::{
    MAX_BUNDLE_BYTES, SYNC_PROTOCOL, SyncRequest, SyncResponse, entries_topic, evidence_topic,
};
use super::{
    COMMAND_QUEUE, GRAYLIST, LogPeer, NetworkConfig, NetworkError, SYNCING, VALIDATING,
    libp2p_keypair, member_peers,
};

#[derive(NetworkBehaviour)]
pub(super) struct Behaviour {
    pub(super) allowed: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    pub(super) blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub(super) limits: connection_limits::Behaviour,
    pub(super) pending: super::pending::PendingLimits,
    pub(super) gossipsub: gossipsub::Behaviour,
    pub(super) sync: request_response::cbor::Behaviour<SyncRequest, SyncResponse>,
    pub(super) identify: identify::Behaviour,
    pub(super) ping: ping::Behaviour,
}

/// How often each connection is pinged, and how long a ping may go unanswered before
/// the connection is closed: a peer that stops answering (a partition that drops
/// packets, a frozen process) shows as lost within about 15 s.
pub const PING_INTERVAL: Duration = Duration::from_secs(5);
/// See [`PING_INTERVAL`].
pub const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an inbound or outbound connection has for its TCP, Noise and Yamux handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

fn start_error(error: &dyn std::fmt::Display) -> NetworkError {
    NetworkError::Start(error.to_string())
}

/// Gossipsub for the entries and evidence topics: validated before forwarding, scored.
///
/// Gossip messages are not signed by gossipsub: each carries entries that their origin
/// signed and every receiver verifies before accepting or forwarding them, so a second
/// signature per message would cost a sign and a verify per hop and prove nothing more.
/// Peers are still authenticated by Noise and scored per delivery.
fn gossip_behaviour(
    topic: &IdentTopic,
    evidence_topic: &IdentTopic,
) -> Result<gossipsub::Behaviour, NetworkError> {
    let gossip_config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(|message| MessageId::from(Hash32::of(&message.data).to_string()))
        // A bundle of entries, or evidence of two entries, with room for framing.
        .max_transmit_size(MAX_BUNDLE_BYTES.max(2 * MAX_ENTRY_BYTES) + 4096)
        .max_publish_messages(64)
        .heartbeat_interval(Duration::from_millis(500))
        .duplicate_cache_time(Duration::from_secs(60))
        // A consortium is small: keep every member in the mesh.
        .mesh_outbound_min(1)
        .mesh_n_low(2)
        .mesh_n(4)
        .mesh_n_high(8)
        .build()
        .map_err(|e| start_error(&e))?;
    let mut gossip =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, gossip_config)
            .map_err(|e| start_error(&e))?;
    let mut score = gossipsub::PeerScoreParams::default();
    score.topics.insert(
        topic.hash(),
        gossipsub::TopicScoreParams {
            invalid_message_deliveries_weight: -100.0,
            invalid_message_deliveries_decay: 0.9,
            ..Default::default()
        },
    );
    let thresholds = gossipsub::PeerScoreThresholds {
        gossip_threshold: -10.0,
        publish_threshold: -50.0,
        graylist_threshold: GRAYLIST,
        ..Default::default()
    };
    gossip
        .with_peer_score(score, thresholds)
        .map_err(|e| start_error(&e))?;
    gossip.subscribe(topic).map_err(|e| start_error(&e))?;
    gossip
        .subscribe(evidence_topic)
        .map_err(|e| start_error(&e))?;
    Ok(gossip)
}

/// The range-sync request-response protocol, with its size limits.
fn sync_behaviour() -> request_response::cbor::Behaviour<SyncRequest, SyncResponse> {
    let codec = request_response::cbor::codec::Codec::<SyncRequest, SyncResponse>::default()
        .set_request_size_maximum(64 * 1024)
        .set_response_size_maximum(MAX_RANGE * (MAX_ENTRY_BYTES as u64 + 64) + 4096);
    request_response::Behaviour::with_codec(
        codec,
        [(StreamProtocol::new(SYNC_PROTOCOL), ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
    )
}

/// Every behaviour of the swarm: only members may connect, and connections are capped.
fn behaviour(
    local: &identity::Keypair,
    members: &HashMap<PeerId, Did>,
    config: &NetworkConfig,
    topics: (&IdentTopic, &IdentTopic),
) -> Result<Behaviour, NetworkError> {
    let local_peer = local.public().to_peer_id();
    let mut allowed = allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
    for peer in members.keys().filter(|p| **p != local_peer) {
        allowed.allow_peer(*peer);
    }
    let limits = connection_limits::Behaviour::new(
        connection_limits::ConnectionLimits::default()
            .with_max_established(Some(config.max_connections))
            .with_max_established_per_peer(Some(2)),
    );
    // Handshakes in progress are capped per address and in all, except from members'
    // addresses (the bootstrap list), so strangers cannot lock members out.
    let member_ips = config
        .bootstrap
        .iter()
        .filter_map(|(_, address)| super::pending::ip_of(address));
    let pending = super::pending::PendingLimits::new(member_ips, config.max_connections as usize);
    // No address cache: peers are dialed only at the addresses the operator configured,
    // never at ones a peer reported about itself or others.
    let identify = identify::Behaviour::new(
        identify::Config::new("/consentnet/1".into(), local.public()).with_cache_size(0),
    );
    Ok(Behaviour {
        allowed,
        blocked: allow_block_list::Behaviour::default(),
        limits,
        pending,
        gossipsub: gossip_behaviour(topics.0, topics.1)?,
        sync: sync_behaviour(),
        identify,
        ping: ping::Behaviour::new(
            ping::Config::new()
                .with_interval(PING_INTERVAL)
                .with_timeout(PING_TIMEOUT),
        ),
    })
}

/// Starts listening and waits (at most 10 s) for the first listen address.
async fn listen(
    swarm: &mut Swarm<Behaviour>,
    address: &Multiaddr,
) -> Result<Vec<Multiaddr>, NetworkError> {
    swarm.listen_on(address.clone()).map_err(|e| {
        // The transport's own text can be empty (an address in use, say): name it all.
        NetworkError::Start(format!("listening on {address}: {e:?}"))
    })?;
    let mut listen = Vec::new();
    let deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(deadline);
    while listen.is_empty() {
        tokio::select! {
            event = swarm.select_next_some() => {
                if let SwarmEvent::NewListenAddr { address, .. } = event {
                    listen.push(address);
                }
            }
            () = &mut deadline => return Err(NetworkError::Start(format!("no listen address on {address}"))),
        }
    }
    Ok(listen)
}

/// Builds the swarm, starts listening and returns once the listen address is known.
pub async fn start(
    key: &KeyPair,
    log: Arc<dyn LogPeer>,
    config: NetworkConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<(NetworkHandle, Vec<Multiaddr>, tokio::task::JoinHandle<()>), NetworkError> {
    let members = member_peers(log.as_ref())?;
    let local = libp2p_keypair(key);
    let topic = entries_topic(&config.network);
    let evidence_topic = evidence_topic(&config.network);
    let behaviour = behaviour(&local, &members, &config, (&topic, &evidence_topic))?;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(local)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| start_error(&e))?
        .with_behaviour(|_| behaviour)
        .map_err(|e| start_error(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .with_connection_timeout(HANDSHAKE_TIMEOUT)
        .build();
    let listen = listen(&mut swarm, &config.listen).await?;
    let (commands, inbox) = mpsc::channel(COMMAND_QUEUE);
    let (validation, queue) = mpsc::channel(VALIDATING);
    {
        let (log, commands) = (log.clone(), commands.clone());
        std::thread::Builder::new()
            .name("gossip-validator".into())
            .spawn(move || run_validator(log, queue, commands))
            .map_err(|e| NetworkError::Start(format!("validator thread: {e}")))?;
    }
    let handle = NetworkHandle::new(commands.clone());
    let event_loop = EventLoop {
        swarm,
        log,
        inbox,
        commands,
        topic,
        evidence_topic,
        members,
        bootstrap: config.bootstrap,
        strikes: HashMap::new(),
        blocked: HashSet::new(),
        max_strikes: config.max_strikes,
        listen: listen.clone(),
        validation,
        syncing: Arc::new(Semaphore::new(SYNCING)),
        flights: super::inflight::Flights::default(),
        round: 0,
    };
    let task = tokio::spawn(event_loop.run(config.sync_interval, shutdown));
    Ok((handle, listen, task))
}
