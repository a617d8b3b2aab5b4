//! The libp2p side of the node: one event loop owns the swarm (gossip of new entries, frontier and range sync, membership gating) and is driven through a cloneable handle over bounded channels.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use consentnet_consent_chain::entry::MAX_ENTRY_BYTES;
use consentnet_consent_chain::replica::MAX_RANGE;
use consentnet_consent_chain::{FeedHead, Hash32, RangeRequest, Sealed};
use consentnet_identity::{Did, KeyPair};
use libp2p::futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageId};
use libp2p::request_response::{self, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent, dial_opts::DialOpts};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, allow_block_list, connection_limits, identify,
    identity, multiaddr::Protocol, noise, tcp, yamux,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use crate::service::{GossipVerdict, NodeService};

/// The sync protocol's name.
const SYNC_PROTOCOL: &str = "/consentnet/sync/1";
/// Most entries in one gossip message.
pub const MAX_BUNDLE_ENTRIES: usize = 64;
/// Most bytes in one gossip message of several entries; a single entry of up to
/// [`MAX_ENTRY_BYTES`] always goes alone.
pub const MAX_BUNDLE_BYTES: usize = 256 * 1024;
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

/// A sync request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SyncRequest {
    /// "Send me your frontier."
    Frontier,
    /// "Send me these entries of one feed."
    Range(RangeRequest),
}

/// A sync answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SyncResponse {
    /// Every feed's head.
    Frontier(BTreeMap<Did, FeedHead>),
    /// Entries, as their canonical bytes (UTF-8 JSON), at most [`MAX_RANGE`].
    Entries(Vec<String>),
    /// The request was not served (the reason is for logs).
    Refused(String),
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    allowed: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    limits: connection_limits::Behaviour,
    gossipsub: gossipsub::Behaviour,
    sync: request_response::cbor::Behaviour<SyncRequest, SyncResponse>,
    identify: identify::Behaviour,
}

/// The network settings the loop needs.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
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
    pub fn from_section(section: &crate::config::P2pSection) -> Result<Self, NetworkError> {
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

/// Packs entries' canonical bytes into gossip messages: each message is the entries
/// joined by `\n` (canonical JSON never holds a raw newline), at most
/// [`MAX_BUNDLE_ENTRIES`] entries and [`MAX_BUNDLE_BYTES`] bytes, in order.
pub fn bundle(entries: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut message: Vec<u8> = Vec::new();
    let mut count = 0;
    for bytes in entries {
        let full = count == MAX_BUNDLE_ENTRIES
            || (count > 0 && message.len() + 1 + bytes.len() > MAX_BUNDLE_BYTES);
        if full {
            messages.push(std::mem::take(&mut message));
            count = 0;
        }
        if count > 0 {
            message.push(b'\n');
        }
        message.extend_from_slice(bytes);
        count += 1;
    }
    if count > 0 {
        messages.push(message);
    }
    messages
}

/// Splits a gossip message into its entries' bytes; refuses an empty message, an empty
/// part, more than [`MAX_BUNDLE_ENTRIES`] entries or more than [`MAX_BUNDLE_BYTES`]
/// bytes (unless it is one entry).
pub fn unbundle(message: &[u8]) -> Result<Vec<&[u8]>, String> {
    let parts: Vec<&[u8]> = message.split(|b| *b == b'\n').collect();
    if parts.iter().any(|part| part.is_empty()) {
        return Err("empty entry in a gossip message".into());
    }
    if parts.len() > MAX_BUNDLE_ENTRIES {
        return Err(format!(
            "{} entries in a gossip message; the limit is {MAX_BUNDLE_ENTRIES}",
            parts.len()
        ));
    }
    if parts.len() > 1 && message.len() > MAX_BUNDLE_BYTES {
        return Err(format!(
            "gossip message of {} bytes; the limit is {MAX_BUNDLE_BYTES}",
            message.len()
        ));
    }
    Ok(parts)
}

/// The gossip topic of a consortium's entries. Version 2: a message holds one or more
/// entries (see [`bundle`]).
pub fn entries_topic(network: &str) -> IdentTopic {
    IdentTopic::new(format!("consentnet/{network}/entries/2"))
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
pub fn member_peers(service: &NodeService) -> Result<HashMap<PeerId, Did>, NetworkError> {
    service.read(|replica| {
        replica
            .state()
            .membership()
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
    })
}

/// What the network reports about itself.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkStatus {
    /// This node's peer id.
    pub peer_id: String,
    /// Where it listens.
    pub listen: Vec<String>,
    /// Connected peers.
    pub peers: Vec<String>,
    /// Peers blocked for invalid messages.
    pub blocked: Vec<String>,
}

enum Command {
    /// Entries' canonical bytes, in feed order.
    Publish(Vec<Vec<u8>>),
    PublishEvidence(Vec<u8>),
    Status(oneshot::Sender<NetworkStatus>),
    Validated {
        id: MessageId,
        source: PeerId,
        verdict: GossipVerdict,
    },
    Respond {
        channel: ResponseChannel<SyncResponse>,
        response: SyncResponse,
    },
    Request {
        peer: PeerId,
        request: SyncRequest,
    },
    Strike(PeerId, String),
}

/// A cloneable handle to the network's event loop.
#[derive(Clone, Debug)]
pub struct NetworkHandle {
    commands: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl NetworkHandle {
    /// Gossips entries this node appended, several to a message. Delivery is best
    /// effort: peers that miss them get them by sync.
    pub async fn publish(&self, entries: Vec<Vec<u8>>) {
        let _ = self.commands.send(Command::Publish(entries)).await;
    }

    /// [`NetworkHandle::publish`] from a thread outside the runtime; waits while the
    /// loop's queue is full.
    pub fn publish_blocking(&self, entries: Vec<Vec<u8>>) {
        let _ = self.commands.blocking_send(Command::Publish(entries));
    }

    /// The network's status; `None` once the loop has stopped.
    pub async fn status(&self) -> Option<NetworkStatus> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Status(reply)).await.ok()?;
        answer.await.ok()
    }
}

/// Builds the swarm, starts listening and returns once the listen address is known.
pub async fn start(
    key: &KeyPair,
    service: Arc<NodeService>,
    config: NetworkConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<(NetworkHandle, Vec<Multiaddr>, tokio::task::JoinHandle<()>), NetworkError> {
    let members = member_peers(&service)?;
    let local = libp2p_keypair(key);
    let local_peer = local.public().to_peer_id();
    let topic = entries_topic(&service.genesis().network);
    let evidence_topic = IdentTopic::new(format!(
        "consentnet/{}/evidence/1",
        service.genesis().network
    ));
    let start_error = |e: &dyn std::fmt::Display| NetworkError::Start(e.to_string());

    // Gossip messages are not signed by gossipsub: each carries entries that their origin
    // signed and every receiver verifies before accepting or forwarding them, so a second
    // signature per message would cost a sign and a verify per hop and prove nothing more.
    // Peers are still authenticated by Noise and scored per delivery.
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
    gossip.subscribe(&topic).map_err(|e| start_error(&e))?;
    gossip
        .subscribe(&evidence_topic)
        .map_err(|e| start_error(&e))?;

    let codec = request_response::cbor::codec::Codec::<SyncRequest, SyncResponse>::default()
        .set_request_size_maximum(64 * 1024)
        .set_response_size_maximum(MAX_RANGE * (MAX_ENTRY_BYTES as u64 + 64) + 4096);
    let sync = request_response::Behaviour::with_codec(
        codec,
        [(StreamProtocol::new(SYNC_PROTOCOL), ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
    );
    let mut allowed = allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
    for peer in members.keys().filter(|p| **p != local_peer) {
        allowed.allow_peer(*peer);
    }
    let limits = connection_limits::Behaviour::new(
        connection_limits::ConnectionLimits::default()
            .with_max_established(Some(config.max_connections))
            .with_max_established_per_peer(Some(2))
            .with_max_pending_incoming(Some(config.max_connections)),
    );
    // No address cache: peers are dialed only at the addresses the operator configured,
    // never at ones a peer reported about itself or others.
    let identify = identify::Behaviour::new(
        identify::Config::new("/consentnet/1".into(), local.public()).with_cache_size(0),
    );
    let behaviour = Behaviour {
        allowed,
        blocked: allow_block_list::Behaviour::default(),
        limits,
        gossipsub: gossip,
        sync,
        identify,
    };
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
        .build();
    swarm
        .listen_on(config.listen.clone())
        .map_err(|e| start_error(&e))?;
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
            () = &mut deadline => return Err(NetworkError::Start(format!("no listen address on {}", config.listen))),
        }
    }
    let (commands, inbox) = mpsc::channel(COMMAND_QUEUE);
    let (validation, queue) = mpsc::channel(VALIDATING);
    {
        let (service, commands) = (service.clone(), commands.clone());
        std::thread::Builder::new()
            .name("gossip-validator".into())
            .spawn(move || run_validator(service, queue, commands))
            .map_err(|e| NetworkError::Start(format!("validator thread: {e}")))?;
    }
    let handle = NetworkHandle {
        commands: commands.clone(),
    };
    let event_loop = EventLoop {
        swarm,
        service,
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
    };
    let task = tokio::spawn(event_loop.run(config.sync_interval, shutdown));
    Ok((handle, listen, task))
}

struct EventLoop {
    swarm: Swarm<Behaviour>,
    service: Arc<NodeService>,
    inbox: mpsc::Receiver<Command>,
    commands: mpsc::Sender<Command>,
    topic: IdentTopic,
    evidence_topic: IdentTopic,
    members: HashMap<PeerId, Did>,
    bootstrap: Vec<(PeerId, Multiaddr)>,
    strikes: HashMap<PeerId, u32>,
    blocked: HashSet<PeerId>,
    max_strikes: u32,
    listen: Vec<Multiaddr>,
    validation: mpsc::Sender<Gossiped>,
    syncing: Arc<Semaphore>,
}

/// A gossiped message waiting for its verdict.
struct Gossiped {
    id: MessageId,
    source: PeerId,
    data: Vec<u8>,
}

/// Judges gossiped entries on one blocking thread, in bursts: whatever has queued up
/// since the last burst (up to [`VALIDATING`] messages and about [`BURST_ENTRIES`]
/// entries) goes through the engine under one lock and one durable write per feed.
/// Verdicts go back to the event loop as commands.
fn run_validator(
    service: Arc<NodeService>,
    mut queue: mpsc::Receiver<Gossiped>,
    commands: mpsc::Sender<Command>,
) {
    let entries_in = |message: &Gossiped| message.data.iter().filter(|b| **b == b'\n').count() + 1;
    while let Some(first) = queue.blocking_recv() {
        let mut entries = entries_in(&first);
        let mut burst = vec![first];
        while burst.len() < VALIDATING && entries < BURST_ENTRIES {
            match queue.try_recv() {
                Ok(next) => {
                    entries += entries_in(&next);
                    burst.push(next);
                }
                Err(_) => break,
            }
        }
        let messages: Vec<&[u8]> = burst.iter().map(|m| m.data.as_slice()).collect();
        let verdicts = service.receive_gossip_batch(&messages);
        for (message, verdict) in burst.into_iter().zip(verdicts) {
            let command = Command::Validated {
                id: message.id,
                source: message.source,
                verdict,
            };
            if commands.blocking_send(command).is_err() {
                return;
            }
        }
    }
}

impl EventLoop {
    async fn run(mut self, sync_interval: Duration, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(sync_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                Some(command) = self.inbox.recv() => self.on_command(command),
                _ = tick.tick() => self.on_tick(),
                _ = shutdown.changed() => break,
            }
        }
        tracing::info!("network stopped");
    }

    fn on_tick(&mut self) {
        self.refresh_members();
        for (peer, address) in self.bootstrap.clone() {
            if !self.swarm.is_connected(&peer) && !self.blocked.contains(&peer) {
                let _ = self
                    .swarm
                    .dial(DialOpts::peer_id(peer).addresses(vec![address]).build());
            }
        }
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in peers {
            self.request(peer, SyncRequest::Frontier);
        }
    }

    /// Membership can change on the log: keep the allow list in step with it.
    fn refresh_members(&mut self) {
        let Ok(members) = member_peers(&self.service) else {
            return;
        };
        let local = *self.swarm.local_peer_id();
        for peer in members.keys().filter(|p| **p != local) {
            if !self.members.contains_key(peer) {
                self.swarm.behaviour_mut().allowed.allow_peer(*peer);
            }
        }
        for peer in self.members.keys() {
            if !members.contains_key(peer) {
                self.swarm.behaviour_mut().allowed.disallow_peer(*peer);
            }
        }
        self.members = members;
    }

    fn request(&mut self, peer: PeerId, request: SyncRequest) {
        self.service
            .metrics
            .sync_requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.swarm.behaviour_mut().sync.send_request(&peer, request);
    }

    fn strike(&mut self, peer: PeerId, reason: &str) {
        let strikes = self.strikes.entry(peer).or_default();
        *strikes += 1;
        tracing::warn!(%peer, strikes = *strikes, reason, "invalid message from peer");
        let graylisted = self
            .swarm
            .behaviour()
            .gossipsub
            .peer_score(&peer)
            .is_some_and(|score| score <= GRAYLIST);
        if (*strikes >= self.max_strikes || graylisted) && self.blocked.insert(peer) {
            tracing::warn!(%peer, "blocking peer after repeated invalid messages");
            self.service
                .metrics
                .peers_blocked
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.swarm.behaviour_mut().gossipsub.blacklist_peer(&peer);
            self.swarm.behaviour_mut().blocked.block_peer(peer);
        }
    }

    fn publish_evidence(&mut self, evidence: &consentnet_consent_chain::Equivocation) {
        tracing::warn!(origin = %evidence.origin(), seq = evidence.held.seq, "equivocation: passing on the evidence");
        if let Ok(bytes) = serde_json::to_vec(evidence) {
            self.on_command(Command::PublishEvidence(bytes));
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish(entries) => {
                for message in bundle(&entries) {
                    let held = message.iter().filter(|b| **b == b'\n').count() + 1;
                    self.service.metrics.published(held);
                    let topic = self.topic.clone();
                    if let Err(error) = self.swarm.behaviour_mut().gossipsub.publish(topic, message)
                    {
                        // Peers that miss it get it by sync.
                        tracing::debug!(%error, "gossip publish");
                    }
                }
            }
            Command::PublishEvidence(bytes) => {
                let topic = self.evidence_topic.clone();
                if let Err(error) = self.swarm.behaviour_mut().gossipsub.publish(topic, bytes) {
                    tracing::debug!(%error, "evidence publish");
                }
            }
            Command::Status(reply) => {
                let _ = reply.send(NetworkStatus {
                    peer_id: self.swarm.local_peer_id().to_string(),
                    listen: self.listen.iter().map(ToString::to_string).collect(),
                    peers: self
                        .swarm
                        .connected_peers()
                        .map(ToString::to_string)
                        .collect(),
                    blocked: self.blocked.iter().map(ToString::to_string).collect(),
                });
            }
            Command::Validated {
                id,
                source,
                verdict,
            } => {
                let acceptance = match &verdict {
                    GossipVerdict::Accept { .. } => MessageAcceptance::Accept,
                    GossipVerdict::Ignore | GossipVerdict::Conflict(_) => MessageAcceptance::Ignore,
                    GossipVerdict::Reject(_) => MessageAcceptance::Reject,
                };
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &source, acceptance);
                match verdict {
                    GossipVerdict::Reject(reason) => self.strike(source, &reason),
                    GossipVerdict::Conflict(evidence) => self.publish_evidence(&evidence),
                    GossipVerdict::Accept { gap: true } => {
                        self.request(source, SyncRequest::Frontier);
                    }
                    _ => {}
                }
            }
            Command::Respond { channel, response } => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, response);
            }
            Command::Request { peer, request } => self.request(peer, request),
            Command::Strike(peer, reason) => self.strike(peer, &reason),
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                ..
            } => {
                tracing::info!(peer = %peer_id, "peer connected");
                if num_established.get() == 1 {
                    self.request(peer_id, SyncRequest::Frontier);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => tracing::info!(peer = %peer_id, "peer disconnected"),
            SwarmEvent::IncomingConnectionError { error, peer_id, .. } => {
                self.service
                    .metrics
                    .connections_refused
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(peer = ?peer_id, %error, "incoming connection refused");
            }
            SwarmEvent::NewListenAddr { address, .. } if !self.listen.contains(&address) => {
                self.listen.push(address);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) if message.topic == self.evidence_topic.hash() => {
                self.validate_evidence(propagation_source, message_id, message.data);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.validate(propagation_source, message_id, message.data),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync(event),
            _ => {}
        }
    }

    /// Checks equivocation evidence off the event loop (it is rare; no batching).
    fn validate_evidence(&mut self, source: PeerId, id: MessageId, data: Vec<u8>) {
        let service = self.service.clone();
        let commands = self.commands.clone();
        tokio::task::spawn_blocking(move || {
            let verdict = service.receive_evidence(&data);
            let _ = commands.blocking_send(Command::Validated {
                id,
                source,
                verdict,
            });
        });
    }

    /// Queues a gossiped entry for the validator; the verdict comes back as a command.
    fn validate(&mut self, source: PeerId, id: MessageId, data: Vec<u8>) {
        if let Err(error) = self.validation.try_send(Gossiped { id, source, data }) {
            // Too much in flight: do not forward it now; sync fetches it later.
            let Gossiped { id, source, .. } = match error {
                mpsc::error::TrySendError::Full(message)
                | mpsc::error::TrySendError::Closed(message) => message,
            };
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&id, &source, MessageAcceptance::Ignore);
        }
    }

    fn on_sync(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        let request_response::Event::Message { peer, message, .. } = event else {
            if let request_response::Event::OutboundFailure { peer, error, .. } = event {
                tracing::debug!(%peer, %error, "sync request failed");
            }
            return;
        };
        let Ok(permit) = self.syncing.clone().try_acquire_owned() else {
            if let request_response::Message::Request { channel, .. } = message {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, SyncResponse::Refused("busy".into()));
            }
            return;
        };
        let service = self.service.clone();
        let commands = self.commands.clone();
        tokio::task::spawn_blocking(move || {
            let replies = match message {
                request_response::Message::Request {
                    request, channel, ..
                } => vec![Command::Respond {
                    channel,
                    response: answer(&service, request),
                }],
                request_response::Message::Response { response, .. } => {
                    absorb(&service, peer, response)
                }
            };
            drop(permit);
            for reply in replies {
                let _ = commands.blocking_send(reply);
            }
        });
    }
}

/// Answers a peer's sync request from the log.
fn answer(service: &NodeService, request: SyncRequest) -> SyncResponse {
    match request {
        SyncRequest::Frontier => SyncResponse::Frontier(service.frontier()),
        SyncRequest::Range(range) => match service.serve(&range) {
            Ok(entries) => SyncResponse::Entries(
                entries
                    .into_iter()
                    .map(|bytes| {
                        String::from_utf8(bytes)
                            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
                    })
                    .collect(),
            ),
            Err(error) => SyncResponse::Refused(error.to_string()),
        },
    }
}

/// Takes in a peer's sync answer; returns the follow-up commands.
fn absorb(service: &NodeService, peer: PeerId, response: SyncResponse) -> Vec<Command> {
    match response {
        SyncResponse::Frontier(theirs) => service
            .wants(&theirs)
            .into_iter()
            .map(|range| Command::Request {
                peer,
                request: SyncRequest::Range(range),
            })
            .collect(),
        SyncResponse::Entries(texts) => {
            if texts.len() > MAX_RANGE as usize {
                return vec![Command::Strike(peer, "oversized range answer".into())];
            }
            let full = texts.len() == MAX_RANGE as usize;
            service
                .metrics
                .sync_entries_received
                .fetch_add(texts.len() as u64, std::sync::atomic::Ordering::Relaxed);
            let mut entries = Vec::with_capacity(texts.len());
            let mut follow = Vec::new();
            for text in texts {
                match Sealed::decode(text.as_bytes()) {
                    Ok(entry) => entries.push(entry),
                    Err(error) => follow.push(Command::Strike(peer, error.to_string())),
                }
            }
            let outcome = service.receive_entries(entries);
            for evidence in &outcome.evidence {
                if let Ok(bytes) = serde_json::to_vec(evidence) {
                    follow.push(Command::PublishEvidence(bytes));
                }
            }
            if outcome.rejected > 0 {
                follow.push(Command::Strike(
                    peer,
                    format!("{} invalid entries in a range answer", outcome.rejected),
                ));
            }
            if full && outcome.stored > 0 {
                // The answer was cut at its limit: keep going until this peer has
                // nothing more for us. An answer that was not cut reached the peer's
                // head as it stood; what it appended since arrives by gossip (or at the
                // next periodic exchange), so asking again would only chase the live
                // head and fetch every new entry twice.
                follow.push(Command::Request {
                    peer,
                    request: SyncRequest::Frontier,
                });
            }
            follow
        }
        SyncResponse::Refused(reason) => {
            tracing::debug!(%peer, reason, "sync request refused");
            Vec::new()
        }
    }
}
