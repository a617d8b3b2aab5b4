//! A seeded multi-node simulation of the bare engine, with no store and no sockets: lossy, duplicating, reordering gossip, partitions that heal, an equivocating node and a node that returns far behind; all honest nodes converge.
//!
//! Each simulated node is an [`Engine`] and a few lines that perform its steps: the
//! entries it was told to write are kept in a map, evidence in a list. No
//! [`consentnet_consent_chain::LogStore`] is involved.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, VecDeque};

use common::*;
use consentnet_consent_chain::engine::{Local, Sealing};
use consentnet_consent_chain::replica::{DEFAULT_MAX_PENDING, MAX_RANGE, prepare_events};
use consentnet_consent_chain::state::NoArchive;
use consentnet_consent_chain::{
    ConsentStatus, Engine, Entry, Equivocation, Event, FeedHead, Genesis, RangeRequest, Received,
    Rejected, Sealed, Signatures, Step,
};
use consentnet_identity::{Did, KeyPair};

/// A small deterministic random source (xorshift64*), so every run is the same run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// One simulated node: the engine, and what performing its steps wrote.
struct Node {
    engine: Engine,
    written: BTreeMap<(Did, u64), Entry>,
    evidence: Vec<Equivocation>,
}

impl Node {
    fn new(genesis: &Genesis) -> Self {
        Self {
            engine: Engine::new(genesis, BTreeMap::new(), DEFAULT_MAX_PENDING),
            written: BTreeMap::new(),
            evidence: Vec::new(),
        }
    }

    fn heads(&self) -> &BTreeMap<Did, FeedHead> {
        self.engine.heads()
    }

    fn write(&mut self, entries: &[Sealed]) {
        for entry in entries {
            let key = (entry.origin.clone(), entry.seq);
            self.written.insert(key, entry.entry().clone());
        }
    }

    /// Performs the engine's steps for one entry until it has decided.
    fn perform(&mut self, mut step: Step) -> Result<Received, Rejected> {
        loop {
            step = match step {
                Step::Done(answer) => return answer,
                Step::Append(append) => {
                    self.write(append.entries());
                    self.engine.appended(append, &NoArchive)
                }
                Step::Compare { seq, entry } => {
                    let held = self.written.get(&(entry.origin.clone(), seq)).cloned();
                    self.engine.compared(held, entry)
                }
                Step::Evidence(evidence) => {
                    self.keep_evidence((*evidence).clone());
                    return Ok(Received::Equivocation(evidence));
                }
            }
        }
    }

    fn keep_evidence(&mut self, evidence: Equivocation) {
        if self.evidence.contains(&evidence) {
            return;
        }
        if self.engine.note_fork(&evidence) {
            self.engine.reset();
            for entry in self.written.values() {
                self.engine.replay(entry, &NoArchive).unwrap();
            }
        }
        self.evidence.push(evidence);
    }

    fn receive(&mut self, entry: Entry) -> Result<Received, Rejected> {
        let signatures = Signatures {
            entry: entry.verify_signature(),
            event: false,
        };
        let step = self.engine.receive(Sealed::new(entry), signatures);
        self.perform(step)
    }

    fn receive_evidence(&mut self, evidence: Equivocation) {
        if self.engine.check_evidence(&evidence).is_ok() {
            self.keep_evidence(evidence);
        }
    }

    /// Seals one event into `key`'s feed and writes it; answers the entry holding it.
    fn append_local(&mut self, key: &KeyPair, event: Event) -> Entry {
        let prepared = prepare_events(vec![event]).pop().unwrap();
        let Sealing { outcomes, append } =
            self.engine
                .seal_local(key, vec![(prepared, None)], now_ms());
        assert!(matches!(outcomes[..], [Ok(Local::New(0))]), "{outcomes:?}");
        self.write(append.entries());
        self.engine
            .commit(append, &NoArchive)
            .remove(0)
            .into_entry()
    }

    fn wants(&self, theirs: &BTreeMap<Did, FeedHead>) -> Vec<RangeRequest> {
        self.engine.wants(theirs).resolve(|origin, seq| {
            let held = self.written.get(&(origin.clone(), seq));
            held.map(Entry::hash)
        })
    }

    fn serve(&self, request: &RangeRequest) -> Vec<Entry> {
        let (from, to) = (request.from, request.to);
        let range = (request.origin.clone(), from)..=(request.origin.clone(), to);
        let entries = self.written.range(range).map(|(_, entry)| entry.clone());
        entries.take(MAX_RANGE as usize).collect()
    }
}

struct Net {
    nodes: Vec<Node>,
    /// (to, entry) messages in flight.
    inflight: VecDeque<(usize, Entry)>,
    /// link[a][b] false = partitioned.
    links: Vec<Vec<bool>>,
    /// Nodes that are down receive nothing and sync with nobody.
    down: Vec<bool>,
    rng: Rng,
}

impl Net {
    fn new(c: &Consortium, seed: u64) -> Self {
        let n = c.nodes().len();
        Self {
            nodes: (0..n).map(|_| Node::new(&c.genesis)).collect(),
            inflight: VecDeque::new(),
            links: vec![vec![true; n]; n],
            down: vec![false; n],
            rng: Rng(seed),
        }
    }

    fn connected(&self, a: usize, b: usize) -> bool {
        a != b && self.links[a][b] && !self.down[a] && !self.down[b]
    }

    /// Gossip `entry` from `from` to every peer: 20% of copies lost, 10% duplicated.
    fn gossip(&mut self, from: usize, entry: &Entry) {
        for to in 0..self.nodes.len() {
            if !self.connected(from, to) || self.rng.chance(20) {
                continue;
            }
            self.inflight.push_back((to, entry.clone()));
            if self.rng.chance(10) {
                self.inflight.push_back((to, entry.clone()));
            }
        }
    }

    /// Delivers in-flight messages in random order.
    fn deliver(&mut self) {
        while !self.inflight.is_empty() {
            let index = self.rng.below(self.inflight.len());
            let (to, entry) = self.inflight.remove(index).unwrap();
            if self.down[to] {
                continue;
            }
            let _ = self.nodes[to].receive(entry);
        }
    }

    fn submit(&mut self, at: usize, key: &KeyPair, event: Event) {
        let entry = self.nodes[at].append_local(key, event);
        self.gossip(at, &entry);
    }

    /// One anti-entropy round: every live node syncs with one random reachable peer,
    /// exchanging frontiers, ranges and evidence. Returns how many entries moved.
    fn sync_round(&mut self) -> usize {
        let n = self.nodes.len();
        let mut moved = 0;
        for a in 0..n {
            let b = self.rng.below(n);
            if !self.connected(a, b) {
                continue;
            }
            for (x, y) in [(a, b), (b, a)] {
                for evidence in self.nodes[y].evidence.clone() {
                    self.nodes[x].receive_evidence(evidence);
                }
                let wants = self.nodes[x].wants(self.nodes[y].heads());
                for request in wants {
                    for entry in self.nodes[y].serve(&request) {
                        match self.nodes[x].receive(entry) {
                            Ok(Received::Stored(stored)) => moved += stored.len(),
                            Ok(Received::Equivocation(_)) => moved += 1,
                            _ => {}
                        }
                    }
                }
            }
        }
        moved
    }

    /// Syncs until nothing moves for a few rounds, within a bound.
    fn settle(&mut self) {
        let mut quiet = 0;
        for _ in 0..500 {
            self.deliver();
            if self.sync_round() == 0 {
                quiet += 1;
                if quiet >= 8 {
                    return;
                }
            } else {
                quiet = 0;
            }
        }
        panic!("the network did not settle within 500 rounds");
    }

    fn digests(&self, nodes: &[usize]) -> Vec<String> {
        nodes
            .iter()
            .map(|&i| self.nodes[i].engine.state().digest().to_string())
            .collect()
    }
}

fn all_equal(values: &[String]) -> bool {
    values.windows(2).all(|w| w[0] == w[1])
}

#[test]
fn lossy_gossip_with_partition_and_heal_converges() {
    let c = Consortium::new();
    let keys = c.nodes();
    // Each bank admits the grants for itself: even ones at bank A, odd ones at bank B.
    let pool: Vec<_> = (0..12)
        .map(|i| consent(if i % 2 == 0 { &c.bank_a } else { &c.bank_b }, &c.tsp))
        .collect();
    for seed in [1, 2, 3] {
        let mut net = Net::new(&c, seed);
        // Partition {0,1} from {2,3}, submit on both sides, then heal.
        for a in 0..4 {
            for b in 0..4 {
                net.links[a][b] = (a < 2) == (b < 2);
            }
        }
        for (index, (client, consent)) in pool.iter().enumerate() {
            let at = index % 2;
            net.submit(at, keys[at], grant(consent));
            if index % 3 == 0 {
                // The revocation reaches the other side of the partition before the grant does.
                let other = (at + 2) % 4;
                net.submit(
                    other,
                    keys[other],
                    revoke(client, consent.id, 1_000 + index as i64),
                );
            }
        }
        net.deliver();
        assert!(
            !all_equal(&net.digests(&[0, 2])),
            "the partition keeps the sides apart"
        );
        net.links = vec![vec![true; 4]; 4];
        net.settle();
        let digests = net.digests(&[0, 1, 2, 3]);
        assert!(all_equal(&digests), "seed {seed}: {digests:?}");
        for (index, (_, consent)) in pool.iter().enumerate() {
            let expected = if index % 3 == 0 {
                ConsentStatus::Revoked
            } else {
                ConsentStatus::Active
            };
            for node in &net.nodes {
                assert_eq!(
                    node.engine.state().consent_status(&consent.id, later(0)),
                    expected
                );
            }
        }
    }
}

#[test]
fn a_node_that_returns_far_behind_catches_up() {
    let c = Consortium::new();
    let keys = c.nodes();
    let mut net = Net::new(&c, 7);
    net.down[3] = true;
    for round in 0..300u64 {
        let at = (round % 3) as usize;
        net.submit(at, keys[at], approve(&c.bank_a, &c.tsp, round));
    }
    net.deliver();
    let entries = |node: &Node| node.heads().values().map(|h| h.seq).sum::<u64>();
    assert_eq!(entries(&net.nodes[3]), 0);
    net.down[3] = false;
    net.settle();
    let digests = net.digests(&[0, 1, 2, 3]);
    assert!(all_equal(&digests), "{digests:?}");
    assert_eq!(entries(&net.nodes[3]), 300);
}

#[test]
fn an_equivocating_node_is_exposed_and_honest_nodes_still_agree() {
    let c = Consortium::new();
    let keys = c.nodes();
    let mut net = Net::new(&c, 11);
    // Grants at bank A (0, 3) and at bank B (1, 2).
    let pool = [&c.bank_a, &c.bank_b, &c.bank_b, &c.bank_a].map(|bank| consent(bank, &c.tsp));
    net.submit(0, keys[0], grant(&pool[0].1));
    net.deliver();
    net.settle();
    // Bank B's node (index 1) signs two different entries for its seq 1, and shows each
    // to a different honest node.
    let a = Node::new(&c.genesis).append_local(&c.bank_b, grant(&pool[1].1));
    let b = Node::new(&c.genesis).append_local(&c.bank_b, grant(&pool[2].1));
    assert_eq!((a.seq, b.seq), (1, 1));
    net.nodes[0].receive(a).unwrap();
    net.nodes[2].receive(b).unwrap();
    net.nodes[0].append_local(&c.bank_a, grant(&pool[3].1));
    net.settle();
    let honest = [0, 2, 3];
    for &i in &honest {
        assert!(
            net.nodes[i].engine.equivocators().contains(c.bank_b.did()),
            "node {i} saw the evidence"
        );
    }
    let digests = net.digests(&honest);
    assert!(all_equal(&digests), "{digests:?}");
    let state = net.nodes[0].engine.state();
    assert_eq!(
        state.consent_status(&pool[0].1.id, later(0)),
        ConsentStatus::Active
    );
    assert_eq!(
        state.consent_status(&pool[3].1.id, later(0)),
        ConsentStatus::Active
    );
    assert_eq!(
        state.consent_status(&pool[1].1.id, later(0)),
        ConsentStatus::Unknown
    );
    assert_eq!(
        state.consent_status(&pool[2].1.id, later(0)),
        ConsentStatus::Unknown
    );
}
