//! Inbound connections still in their handshake, capped per remote IP address and in all, with members' addresses (from the bootstrap list) never counted: a stranger holding idle TCP connections cannot lock members out.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, ListenFailure, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

/// Handshakes in progress from one IP address at most.
pub const PENDING_PER_IP: usize = 4;

/// Why an inbound connection was refused before its handshake.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(&'static str);

/// The behaviour: it only counts and refuses; it speaks no protocol.
#[derive(Debug)]
pub struct PendingLimits {
    members: HashSet<IpAddr>,
    max_pending: usize,
    pending: HashMap<ConnectionId, IpAddr>,
    per_ip: HashMap<IpAddr, usize>,
}

/// The IP address a multiaddr starts with.
pub fn ip_of(address: &Multiaddr) -> Option<IpAddr> {
    address.iter().find_map(|part| match part {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

impl PendingLimits {
    /// Limits with `max_pending` handshakes in all from addresses other than `members`'.
    pub fn new(members: impl IntoIterator<Item = IpAddr>, max_pending: usize) -> Self {
        Self {
            members: members.into_iter().collect(),
            max_pending,
            pending: HashMap::new(),
            per_ip: HashMap::new(),
        }
    }

    fn done(&mut self, connection: ConnectionId) {
        if let Some(ip) = self.pending.remove(&connection)
            && let Some(count) = self.per_ip.get_mut(&ip)
        {
            *count -= 1;
            if *count == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

impl NetworkBehaviour for PendingLimits {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection: ConnectionId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let Some(ip) = ip_of(remote) else {
            return Ok(());
        };
        if self.members.contains(&ip) {
            return Ok(());
        }
        if self.per_ip.get(&ip).copied().unwrap_or(0) >= PENDING_PER_IP {
            return Err(ConnectionDenied::new(Refused(
                "too many handshakes from this address",
            )));
        }
        if self.pending.len() >= self.max_pending {
            return Err(ConnectionDenied::new(Refused("too many handshakes")));
        }
        self.pending.insert(connection, ip);
        *self.per_ip.entry(ip).or_default() += 1;
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection: ConnectionId,
        _peer: PeerId,
        _local: &Multiaddr,
        _remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.done(connection);
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection: ConnectionId,
        _peer: PeerId,
        _address: &Multiaddr,
        _role: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        if let FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) = event {
            self.done(connection_id);
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn from(ip: &str) -> Multiaddr {
        format!("/ip4/{ip}/tcp/5000").parse().unwrap()
    }

    #[test]
    fn a_stranger_gets_a_few_handshakes_and_a_member_always_gets_in() {
        let local = from("10.0.0.1");
        let mut limits = PendingLimits::new([ip_of(&from("10.0.0.9")).unwrap()], 6);
        let stranger = from("203.0.113.5");
        let mut next = 0;
        let mut id = || {
            next += 1;
            ConnectionId::new_unchecked(next)
        };
        for _ in 0..PENDING_PER_IP {
            limits
                .handle_pending_inbound_connection(id(), &local, &stranger)
                .unwrap();
        }
        assert!(
            limits
                .handle_pending_inbound_connection(id(), &local, &stranger)
                .is_err()
        );
        // Another stranger fills what is left of the total; a member is never counted.
        let other = from("198.51.100.7");
        limits
            .handle_pending_inbound_connection(id(), &local, &other)
            .unwrap();
        limits
            .handle_pending_inbound_connection(id(), &local, &other)
            .unwrap();
        assert!(
            limits
                .handle_pending_inbound_connection(id(), &local, &other)
                .is_err()
        );
        for _ in 0..20 {
            limits
                .handle_pending_inbound_connection(id(), &local, &from("10.0.0.9"))
                .unwrap();
        }
        // A handshake that ends frees its slot.
        limits.done(ConnectionId::new_unchecked(1));
        limits
            .handle_pending_inbound_connection(id(), &local, &stranger)
            .unwrap();
    }
}
