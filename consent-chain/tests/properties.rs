//! Property tests: any set of consent events, submitted at any nodes (grants at their banks) and delivered in any order with duplicates and drops healed by sync, gives every node the same state, and a revocation always beats its grant.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::OnceLock;

use common::*;
use consentnet_consent_chain::{ConsentStatus, Entry, MemoryStore, Replica};
use consentnet_identity::{KeyPair, VerifiedConsent};
use proptest::prelude::*;

const POOL: usize = 6;

fn fixture() -> &'static (Consortium, Vec<(KeyPair, VerifiedConsent)>) {
    static FIXTURE: OnceLock<(Consortium, Vec<(KeyPair, VerifiedConsent)>)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let c = Consortium::new();
        // Consents at both banks: each grant enters the log through its bank's feed.
        let pool = (0..POOL)
            .map(|i| consent(if i % 2 == 0 { &c.bank_a } else { &c.bank_b }, &c.tsp))
            .collect();
        (c, pool)
    })
}

/// One submitted event: which consent, grant or revoke, at which node.
#[derive(Debug, Clone)]
struct Submission {
    consent: usize,
    revoke: bool,
    node: usize,
}

fn submissions() -> impl Strategy<Value = Vec<Submission>> {
    prop::collection::vec(
        (0..POOL, any::<bool>(), 0..4usize).prop_map(|(consent, revoke, node)| Submission {
            consent,
            revoke,
            node,
        }),
        1..16,
    )
}

fn sync_all(nodes: &mut [Replica<MemoryStore>]) {
    for _ in 0..10 {
        let mut moved = false;
        for a in 0..nodes.len() {
            for b in 0..nodes.len() {
                if a == b {
                    continue;
                }
                for request in nodes[a].wants(nodes[b].heads()) {
                    for entry in nodes[b].serve(&request).unwrap() {
                        nodes[a].receive(entry).unwrap();
                        moved = true;
                    }
                }
            }
        }
        if !moved {
            return;
        }
    }
    panic!("sync did not finish in 10 rounds");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_delivery_order_gives_the_same_state(
        plan in submissions(),
        order in prop::collection::vec(any::<u64>(), 64),
        drops in prop::collection::vec(any::<bool>(), 64),
    ) {
        let (c, pool) = fixture();
        let keys = c.nodes();
        // Where each event is first appended: its submitting node's own feed.
        let mut sources: Vec<Replica<MemoryStore>> =
            (0..4).map(|_| Replica::open(MemoryStore::new(), &c.genesis).unwrap()).collect();
        let mut produced: Vec<(usize, Entry)> = Vec::new();
        for step in &plan {
            let (client, consent) = &pool[step.consent];
            // A revocation may be submitted anywhere; a grant only at its bank (node 0 or 1).
            let (event, at) = if step.revoke {
                (revoke(client, consent.id, 1_000), step.node)
            } else {
                (grant(consent), step.consent % 2)
            };
            if let Ok(appended) = sources[at].append_local(keys[at], event, 1) {
                produced.push((at, appended.entry().clone()));
            }
        }
        // Fresh replicas receive every entry in a shuffled order, some twice, some never.
        let mut nodes: Vec<Replica<MemoryStore>> =
            (0..4).map(|_| Replica::open(MemoryStore::new(), &c.genesis).unwrap()).collect();
        for (target, node) in nodes.iter_mut().enumerate() {
            let mut deliveries: Vec<(u64, Entry)> = produced
                .iter()
                .enumerate()
                .filter(|(i, _)| !drops[(i + target * 7) % drops.len()])
                .map(|(i, (_, entry))| (order[(i * 5 + target) % order.len()], entry.clone()))
                .collect();
            deliveries.extend(deliveries.clone().into_iter().take(3));
            deliveries.sort_by_key(|(key, _)| *key);
            for (_, entry) in deliveries {
                node.receive(entry).unwrap();
            }
        }
        // Sync also with the sources, whose feeds hold everything.
        nodes.extend(sources);
        sync_all(&mut nodes);
        let digest = nodes[0].state().digest();
        for node in &nodes {
            prop_assert_eq!(node.state().digest(), digest);
        }
        for (index, (_, consent)) in pool.iter().enumerate() {
            let granted = plan.iter().any(|s| s.consent == index && !s.revoke);
            let revoked = plan.iter().any(|s| s.consent == index && s.revoke);
            let expected = match (granted, revoked) {
                (false, _) => ConsentStatus::Unknown,
                (true, true) => ConsentStatus::Revoked,
                (true, false) => ConsentStatus::Active,
            };
            for node in &nodes {
                prop_assert_eq!(node.state().consent_status(&consent.id, later(0)), expected);
            }
        }
    }
}
