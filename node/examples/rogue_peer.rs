//! A misbehaving member for the consortium tests: joins with a member's key and floods the entry topic with invalid entries, or equivocates.
//!
//! Usage: `rogue_peer NODE_DIR NETWORK TARGET_MULTIADDR COUNT [flood|equivocate]`, with
//! the key's passphrase in `CONSENTNET_NODE_PASSPHRASE`.
//! - `flood` (the default) publishes COUNT invalid entries and prints
//!   `{"event":"flooded","sent":N}`, then `{"event":"disconnected"}` when the target drops
//!   it, and exits 0; it exits 1 if the target keeps it connected for 30 s.
//! - `equivocate` publishes two different validly signed entries with seq 1 (a forked
//!   feed), prints `{"event":"equivocated"}` and stays connected for 30 s.

use std::time::Duration;

use anyhow::{Context, bail};
use consentnet_node::keystore;
use consentnet_node::p2p::{libp2p_keypair, parse_peer_address};
use libp2p::futures::StreamExt;
use libp2p::gossipsub;
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (dir, network, target, count, mode) = match args.as_slice() {
        [_, dir, network, target, count] => (dir, network, target, count, "flood"),
        [_, dir, network, target, count, mode] => (dir, network, target, count, mode.as_str()),
        _ => bail!("usage: rogue_peer NODE_DIR NETWORK TARGET_MULTIADDR COUNT [flood|equivocate]"),
    };
    let count: usize = count.parse().context("COUNT is a number")?;
    let passphrase = keystore::passphrase(None)?;
    let key = keystore::open(
        &std::path::Path::new(dir).join("node-key.json"),
        &passphrase,
    )?;
    let (target_peer, target_address) = parse_peer_address(target)?;
    let topic = consentnet_node::p2p::wire::entries_topic(network);
    let local = libp2p_keypair(&key);
    // The consortium's gossip settings: unsigned messages, ids from their content.
    let config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .message_id_fn(|message| {
            gossipsub::MessageId::from(
                consentnet_consent_chain::Hash32::of(&message.data).to_string(),
            )
        })
        .build()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut gossip: gossipsub::Behaviour =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, config)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    gossip.subscribe(&topic)?;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(local)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|_| gossip)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm.dial(target_address)?;
    let deadline = tokio::time::sleep(Duration::from_secs(30));
    tokio::pin!(deadline);
    // Two forks of the same feed position, each validly signed by this member.
    let messages: Vec<Vec<u8>> = if mode == "equivocate" {
        let app = consentnet_identity::KeyPair::generate();
        (0..2)
            .map(|i| {
                let manifest = consentnet_consent_chain::event::AppManifest {
                    app: app.did().clone(),
                    name: "Fork".into(),
                    description: format!("fork {i}"),
                    version: format!("{i}.0"),
                    platform: consentnet_consent_chain::event::Platform::Web,
                    redirect_uris: Vec::new(),
                    events_uri: None,
                    requested_permissions: Default::default(),
                    bundle_hash: "cd".repeat(32),
                    mini_app: None,
                };
                let event = consentnet_consent_chain::Event::app_published(&app, manifest);
                consentnet_consent_chain::Entry::sign(&key, None, 1, event).encode()
            })
            .collect()
    } else {
        (0..count)
            .map(|i| format!("{{\"not an entry\":{i}}}").into_bytes())
            .collect()
    };
    let count = messages.len();
    let mut sent = 0;
    let mut announced = false;
    // Publishing fails until the target's subscription is known; keep trying.
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                while sent < count {
                    if swarm.behaviour_mut().publish(topic.clone(), messages[sent].clone()).is_err() {
                        break;
                    }
                    sent += 1;
                }
                if sent == count && !announced {
                    announced = true;
                    let event = if mode == "equivocate" { "equivocated" } else { "flooded" };
                    println!("{}", serde_json::json!({ "event": event, "sent": sent }));
                }
            }
            event = swarm.select_next_some() => {
                if let SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } = event
                    && peer_id == target_peer
                    && sent > 0
                    && mode == "flood"
                {
                    println!("{}", serde_json::json!({ "event": "disconnected", "sent": sent }));
                    return Ok(());
                }
            }
            () = &mut deadline => {
                println!("{}", serde_json::json!({ "event": "still connected", "sent": sent }));
                std::process::exit(1);
            }
        }
    }
}
