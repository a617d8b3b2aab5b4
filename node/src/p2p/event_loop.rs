//! The event loop that owns the swarm: it dials members, exchanges frontiers, fetches each feed's missing range from one peer at a time, closes connections that stop answering pings, reports gossip verdicts, strikes and blocks misbehaving peers, and is driven through a cloneable handle.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use consentnet_identity::Did;
use libp2p::futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageId};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::{SwarmEvent, dial_opts::DialOpts};
use libp2p::{Multiaddr, PeerId, Swarm, ping};
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use super::counters::Counters;
use super::inflight::Flights;
use super::swarm::{Behaviour, BehaviourEvent};
use super::sync::{absorb, answer};
use super::validator::Gossiped;
use super::wire::{SyncRequest, SyncResponse, bundle};
use super::{GRAYLIST, GossipVerdict, LogPeer, member_peers};

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

pub(super) enum Command {
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
    /// A sync answer has been absorbed (its entries stored): its feed may be asked again.
    Settled(OutboundRequestId),
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
    pub(super) fn new(commands: mpsc::Sender<Command>) -> Self {
        Self { commands }
    }

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

pub(super) struct EventLoop {
    pub(super) swarm: Swarm<Behaviour>,
    pub(super) log: Arc<dyn LogPeer>,
    pub(super) inbox: mpsc::Receiver<Command>,
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) topic: IdentTopic,
    pub(super) evidence_topic: IdentTopic,
    pub(super) members: HashMap<PeerId, Did>,
    pub(super) bootstrap: Vec<(PeerId, Multiaddr)>,
    pub(super) strikes: HashMap<PeerId, u32>,
    pub(super) blocked: HashSet<PeerId>,
    pub(super) max_strikes: u32,
    pub(super) listen: Vec<Multiaddr>,
    pub(super) validation: mpsc::Sender<Gossiped>,
    pub(super) syncing: Arc<Semaphore>,
    /// Requests in flight: ranges per feed, access batches per bank, bundle files.
    pub(super) flights: Flights,
    /// Sync rounds so far: spreads bundle file requests over peers round by round.
    pub(super) round: usize,
}

impl EventLoop {
    pub(super) async fn run(
        mut self,
        sync_interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
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
        self.fetch_batches();
        self.fetch_bundle_files();
    }

    /// Membership can change on the log: keep the allow list in step with it.
    fn refresh_members(&mut self) {
        let Ok(members) = member_peers(self.log.as_ref()) else {
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

    /// Sends a sync request. A range of a feed already being fetched from some peer is
    /// not asked again: each entry is fetched about once, from one peer at a time.
    fn request(&mut self, peer: PeerId, request: SyncRequest) {
        // A feed's range, a bank's access batch or a bundle file is fetched from one
        // peer at a time.
        let now = Instant::now();
        let bank = self.members.get(&peer).cloned();
        let claimed = match (&request, &bank) {
            (SyncRequest::Range(range), _) => self.flights.ranges.claim(&range.origin, peer, now),
            (SyncRequest::Batch(_), Some(bank)) => self.flights.batches.claim(bank, peer, now),
            (SyncRequest::BundleFile(hash), _) => self.flights.files.claim(hash, peer, now),
            (SyncRequest::Batch(_), None) | (SyncRequest::Frontier, _) => true,
        };
        if !claimed {
            Counters::bump(&self.log.counters().sync_requests_spared);
            return;
        }
        Counters::bump(&self.log.counters().sync_requests);
        let id = self
            .swarm
            .behaviour_mut()
            .sync
            .send_request(&peer, request.clone());
        match (&request, &bank) {
            (SyncRequest::Range(range), _) => self.flights.ranges.sent(&range.origin, id),
            (SyncRequest::Batch(_), Some(bank)) => self.flights.batches.sent(bank, id),
            (SyncRequest::BundleFile(hash), _) => self.flights.files.sent(hash, id),
            _ => {}
        }
    }

    /// Asks connected members for the bundle files of published mini-apps this node
    /// lacks (banks), each file of one peer, another peer each round.
    fn fetch_bundle_files(&mut self) {
        let mut peers: Vec<PeerId> = self
            .members
            .keys()
            .filter(|peer| self.swarm.is_connected(peer))
            .copied()
            .collect();
        if peers.is_empty() {
            return;
        }
        peers.sort();
        self.round = self.round.wrapping_add(1);
        let (log, commands, round) = (self.log.clone(), self.commands.clone(), self.round);
        tokio::task::spawn_blocking(move || {
            for hash in log.wanted_bundle_files() {
                let peer = peers[(usize::from(hash.0[0]) + round) % peers.len()];
                let request = SyncRequest::BundleFile(hash);
                let _ = commands.blocking_send(Command::Request { peer, request });
            }
        });
    }

    /// Asks each connected bank for the next access batch this node wants from it
    /// (regulators). Finding out reads the record stores, so it runs off the event loop
    /// and comes back as requests.
    fn fetch_batches(&mut self) {
        let peers: HashMap<Did, PeerId> = self
            .members
            .iter()
            .filter(|(peer, _)| self.swarm.is_connected(peer))
            .map(|(peer, did)| (did.clone(), *peer))
            .collect();
        if peers.is_empty() {
            return;
        }
        let (log, commands) = (self.log.clone(), self.commands.clone());
        tokio::task::spawn_blocking(move || {
            for (bank, batch) in log.wanted_batches() {
                if let Some(peer) = peers.get(&bank) {
                    let request = SyncRequest::Batch(batch);
                    let _ = commands.blocking_send(Command::Request {
                        peer: *peer,
                        request,
                    });
                }
            }
        });
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
            Counters::bump(&self.log.counters().peers_blocked);
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
                    self.log.counters().published(held);
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
            Command::Settled(request_id) => {
                self.flights.settled(request_id);
            }
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
            } => {
                self.flights.disconnected(&peer_id);
                tracing::info!(peer = %peer_id, "peer disconnected");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Err(error),
            })) if !matches!(error, ping::Failure::Unsupported) => {
                // Nothing answers on this connection: close it, so status and metrics
                // show the peer as lost and the next round redials it. (A peer that
                // does not speak ping at all cannot be judged by it, and is left be.)
                tracing::warn!(%peer, %error, "peer stopped answering pings: closing the connection");
                Counters::bump(&self.log.counters().peers_lost);
                self.swarm.close_connection(connection);
            }
            SwarmEvent::IncomingConnectionError { error, peer_id, .. } => {
                Counters::bump(&self.log.counters().connections_refused);
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
        let service = self.log.clone();
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
            if let request_response::Event::OutboundFailure {
                peer,
                error,
                request_id,
                ..
            } = event
            {
                self.flights.settled(request_id);
                tracing::debug!(%peer, %error, "sync request failed");
            }
            return;
        };
        // An answered feed may be asked again once its entries are stored: settled any
        // sooner, the next round's offers would ask for the same range again.
        let answered = match &message {
            request_response::Message::Response { request_id, .. } => Some(*request_id),
            request_response::Message::Request { .. } => None,
        };
        let Ok(permit) = self.syncing.clone().try_acquire_owned() else {
            if let Some(request_id) = answered {
                self.flights.settled(request_id);
            }
            if let request_response::Message::Request { channel, .. } = message {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, SyncResponse::Refused("busy".into()));
            }
            return;
        };
        let service = self.log.clone();
        let commands = self.commands.clone();
        let from = self.members.get(&peer).cloned();
        tokio::task::spawn_blocking(move || {
            let replies = match message {
                request_response::Message::Request {
                    request, channel, ..
                } => vec![Command::Respond {
                    channel,
                    response: answer(service.as_ref(), from.as_ref(), request),
                }],
                request_response::Message::Response { response, .. } => {
                    absorb(service.as_ref(), peer, from.as_ref(), response)
                }
            };
            drop(permit);
            // Before the follow-ups, which may ask the same feed for its next range.
            if let Some(request_id) = answered {
                let _ = commands.blocking_send(Command::Settled(request_id));
            }
            for reply in replies {
                let _ = commands.blocking_send(reply);
            }
        });
    }
}
