//! Audit: a clean log passes; forged entries, broken links, equivocation, access after revocation and access records stamped long before any peer saw them are all found; only applied commitments are judged against records.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use consentnet_consent_chain::audit::{
    AuditConfig, NoRecords, SignatureRule, audit, audit_with_progress,
};
use consentnet_consent_chain::{Entry, Equivocation, Event, LogStore, MemoryStore, Replica};

const BOUND: AuditConfig = AuditConfig {
    propagation_bound_ms: 1_000,
    checkpoint_interval_ms: 10_000,
    signatures: SignatureRule::Chained,
};

#[test]
fn a_clean_log_passes_and_is_counted() {
    let records = Records::default();
    let c = Consortium::new();
    let mut node = Replica::open(MemoryStore::new(), &c.genesis).unwrap();
    let (client, consent) = consent(&c.bank_a, &c.tsp);
    let granted_at = consent.terms.valid_from.timestamp_millis() as u64;
    node.append_local(&c.bank_a, grant(&consent), now_ms())
        .unwrap();
    node.append_local(
        &c.bank_a,
        records.access(&c.bank_a, consent.id, granted_at + 10),
        now_ms(),
    )
    .unwrap();
    // The revocation enters the log at granted_at + 5 s (its entry's time).
    node.append_local(
        &c.tsp,
        revoke(&client, consent.id, (granted_at + 5_000) as i64),
        granted_at + 5_000,
    )
    .unwrap();
    // Served within the propagation bound after the revocation: not a violation.
    node.append_local(
        &c.bank_a,
        records.access(&c.bank_a, consent.id, granted_at + 5_500),
        now_ms(),
    )
    .unwrap();
    let report = audit(node.store(), &c.genesis, BOUND, &records).unwrap();
    assert!(report.clean, "{}", report.summary());
    assert_eq!((report.entries, report.feeds), (4, 2));
    assert_eq!(
        (report.consents, report.revoked, report.accesses),
        (1, 1, 2)
    );
    assert_eq!(report.state_digest, node.state().digest());
    assert!(report.summary().starts_with("CLEAN: 4 entries in 2 feeds"));
    // Grants and revocations by the day their entries were written; accesses per app.
    let sums = report
        .timeline
        .iter()
        .fold((0, 0), |(g, r), d| (g + d.granted, r + d.revoked));
    assert_eq!(sums, (1, 1));
    for day in &report.timeline {
        chrono::NaiveDate::parse_from_str(&day.day, "%Y-%m-%d").unwrap();
    }
    assert_eq!(report.accesses_by_app.len(), 1);
    assert_eq!(report.accesses_by_app[0].app, consent.terms.app.to_string());
    assert_eq!(
        (
            report.accesses_by_app[0].served,
            report.accesses_by_app[0].refused
        ),
        (2, 0)
    );
    // Progress reaches every entry in the store.
    let mut last = (0, 0);
    audit_with_progress(
        node.store(),
        &c.genesis,
        BOUND,
        &records,
        &mut |done, total| last = (done, total),
    )
    .unwrap();
    assert_eq!(last, (4, 4));
}

#[test]
fn access_after_revocation_beyond_the_bound_is_a_violation() {
    let records = Records::default();
    let c = Consortium::new();
    let mut node = Replica::open(MemoryStore::new(), &c.genesis).unwrap();
    let (client, consent) = consent(&c.bank_a, &c.tsp);
    let start = consent.terms.valid_from.timestamp_millis() as u64;
    node.append_local(&c.bank_a, grant(&consent), now_ms())
        .unwrap();
    node.append_local(
        &c.tsp,
        revoke(&client, consent.id, (start + 1_000) as i64),
        start + 1_000,
    )
    .unwrap();
    node.append_local(
        &c.bank_a,
        records.access(&c.bank_a, consent.id, start + 3_000),
        now_ms(),
    )
    .unwrap();
    // And one before validFrom.
    node.append_local(
        &c.bank_a,
        records.access(&c.bank_a, consent.id, start - 60_000),
        now_ms(),
    )
    .unwrap();
    let report = audit(node.store(), &c.genesis, BOUND, &records).unwrap();
    assert!(!report.clean);
    let reasons: Vec<&str> = report
        .violations
        .iter()
        .map(|v| v.reason.as_str())
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons.contains(&"served 2000 ms after the revocation entered the log"),
        "{reasons:?}"
    );
    assert!(reasons.contains(&"served before validFrom"), "{reasons:?}");
}

#[test]
fn a_revocation_naming_a_past_time_counts_from_when_it_entered_the_log() {
    let records = Records::default();
    let c = Consortium::new();
    let mut node = Replica::open(MemoryStore::new(), &c.genesis).unwrap();
    let (client, consent) = consent(&c.bank_a, &c.tsp);
    let start = consent.terms.valid_from.timestamp_millis() as u64;
    node.append_local(&c.bank_a, grant(&consent), now_ms())
        .unwrap();
    // Lawful accesses at +10 s and +20 s ...
    for at in [10_000, 20_000] {
        node.append_local(
            &c.bank_a,
            records.access(&c.bank_a, consent.id, start + at),
            now_ms(),
        )
        .unwrap();
    }
    // ... then a revocation that enters the log at +30 s but names +1 s.
    node.append_local(
        &c.tsp,
        revoke(&client, consent.id, (start + 1_000) as i64),
        start + 30_000,
    )
    .unwrap();
    let report = audit(node.store(), &c.genesis, BOUND, &records).unwrap();
    assert!(report.clean, "{:?}", report.violations);
    // An access after it entered the log is still found.
    node.append_local(
        &c.bank_a,
        records.access(&c.bank_a, consent.id, start + 35_000),
        now_ms(),
    )
    .unwrap();
    let report = audit(node.store(), &c.genesis, BOUND, &records).unwrap();
    assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    assert_eq!(report.violations[0].time, start + 35_000);
}

#[test]
fn forged_and_unlinked_entries_are_found() {
    let records = Records::default();
    let c = Consortium::new();
    let (_, consent) = consent(&c.bank_a, &c.tsp);
    let mut source = Replica::open(MemoryStore::new(), &c.genesis).unwrap();
    let first = source
        .append_local(&c.bank_a, grant(&consent), now_ms())
        .unwrap()
        .entry()
        .clone();
    // A store written around the replica: the raw store checks links, not signatures.
    let mut store = MemoryStore::new();
    let mut forged = Entry::sign(&c.bank_b, None, 1, approve(&c.bank_b, &c.tsp, 1));
    forged.time += 1; // The signature no longer covers it.
    store.append(&[first, forged]).unwrap();
    let report = audit(&store, &c.genesis, BOUND, &records).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].problem, "signature does not verify");
    assert_eq!(report.problems[0].origin, c.bank_b.did().to_string());
}

#[test]
fn equivocation_evidence_is_confirmed() {
    let records = Records::default();
    let c = Consortium::new();
    let one = Entry::sign(&c.tsp, None, 1, approve(&c.bank_a, &c.tsp, 1));
    let two = Entry::sign(&c.tsp, None, 2, approve(&c.bank_a, &c.tsp, 2));
    let mut store = MemoryStore::new();
    store.append(std::slice::from_ref(&one)).unwrap();
    store
        .put_evidence(&Equivocation {
            held: one,
            conflicting: two,
        })
        .unwrap();
    let report = audit(&store, &c.genesis, BOUND, &records).unwrap();
    assert_eq!(report.equivocations.len(), 1);
    assert_eq!(report.equivocations[0].origin, c.tsp.did().to_string());
    assert!(!report.clean);
}

const EVERY: AuditConfig = AuditConfig {
    signatures: SignatureRule::Every,
    ..BOUND
};

/// One entry in `origin`'s feed holding bank B's decision, signed by bank B and then
/// altered, so its own signature no longer covers it.
fn forged_decision_in_feed_of(
    c: &Consortium,
    origin: &consentnet_identity::KeyPair,
) -> MemoryStore {
    let mut event = approve(&c.bank_b, &c.tsp, 1);
    if let consentnet_consent_chain::Event::AppDecided { decision, .. } = &mut event {
        decision.version = "9.9".into(); // The bank's signature no longer covers it.
    }
    let mut store = MemoryStore::new();
    store
        .append(&[Entry::sign(origin, None, 1, event)])
        .unwrap();
    store
}

#[test]
fn a_forged_event_signature_by_someone_else_than_the_origin_is_found() {
    let records = Records::default();
    let c = Consortium::new();
    let store = forged_decision_in_feed_of(&c, &c.tsp);
    for config in [BOUND, EVERY] {
        let report = audit(&store, &c.genesis, config, &records).unwrap();
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        assert_eq!(
            report.problems[0].problem,
            "invalid appDecided: app decision signature does not verify"
        );
        assert!(!report.clean);
    }
}

#[test]
fn the_origins_own_event_signature_is_vouched_for_by_its_entry_unless_every_signature_is_checked() {
    let records = Records::default();
    let c = Consortium::new();
    let store = forged_decision_in_feed_of(&c, &c.bank_b);
    let chained = audit(&store, &c.genesis, BOUND, &records).unwrap();
    assert!(chained.clean, "{}", chained.summary());
    let every = audit(&store, &c.genesis, EVERY, &records).unwrap();
    assert_eq!(every.problems.len(), 1, "{:?}", every.problems);
    assert_eq!(
        every.problems[0].problem,
        "invalid appDecided: app decision signature does not verify"
    );
}

/// Bank B's feed of `len` decisions, where the entries at `bad` carry another entry's
/// signature and every later entry still names their hash: what only the key's holder
/// can write.
fn feed_with_bad_signatures_at(c: &Consortium, len: u64, bad: &[u64]) -> MemoryStore {
    let mut entries: Vec<Entry> = Vec::new();
    for seq in 1..=len {
        let head = entries.last().map(Entry::head);
        let mut entry = Entry::sign(&c.bank_b, head, seq, approve(&c.bank_b, &c.tsp, seq));
        if bad.contains(&seq) {
            entry.sig = Entry::sign(&c.bank_b, None, 0, approve(&c.bank_b, &c.tsp, 0)).sig;
        }
        entries.push(entry);
    }
    let mut store = MemoryStore::new();
    store.append(&entries).unwrap();
    store
}

fn bad_seqs(report: &consentnet_consent_chain::audit::AuditReport) -> Vec<(u64, &str)> {
    report
        .problems
        .iter()
        .map(|p| (p.seq, p.problem.as_str()))
        .collect()
}

#[test]
fn a_linked_run_is_vouched_for_by_its_signed_end_and_every_signature_checks_each() {
    let records = Records::default();
    let c = Consortium::new();
    let store = feed_with_bad_signatures_at(&c, 5, &[3]);
    let chained = audit(&store, &c.genesis, BOUND, &records).unwrap();
    assert!(chained.clean, "{}", chained.summary());
    assert_eq!(chained.events["appDecided"], 5);
    let every = audit(&store, &c.genesis, EVERY, &records).unwrap();
    assert_eq!(bad_seqs(&every), [(3, "signature does not verify")]);
}

#[test]
fn a_run_whose_signed_end_fails_has_each_of_its_entries_checked() {
    let records = Records::default();
    let c = Consortium::new();
    let store = feed_with_bad_signatures_at(&c, 5, &[2, 5]);
    // Entries 1 to 4 each verified on their own (2 is vouched for by 3, which names it).
    let chained = audit(&store, &c.genesis, BOUND, &records).unwrap();
    assert_eq!(bad_seqs(&chained), [(5, "signature does not verify")]);
    let every = audit(&store, &c.genesis, EVERY, &records).unwrap();
    assert_eq!(
        bad_seqs(&every),
        [
            (2, "signature does not verify"),
            (5, "signature does not verify")
        ]
    );
}

/// Replaces the first stored entry's bytes underneath the store at `path`.
fn overwrite_first_entry(path: &std::path::Path, bytes: &[u8]) {
    let families = ["entries", "heads", "evidence", "events", "meta", "archive"];
    let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), path, families).unwrap();
    let entries = db.cf_handle("entries").unwrap();
    let (key, _) = db
        .iterator_cf(entries, rocksdb::IteratorMode::Start)
        .next()
        .unwrap()
        .unwrap();
    db.put_cf(entries, key, bytes).unwrap();
}

#[test]
fn stored_bytes_that_are_not_an_entry_are_reported_not_fatal() {
    let records = Records::default();
    let c = Consortium::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    {
        let mut store = consentnet_consent_chain::RocksStore::open(&path).unwrap();
        store
            .append(&[Entry::sign(
                &c.bank_a,
                None,
                1,
                approve(&c.bank_a, &c.tsp, 1),
            )])
            .unwrap();
    }
    // Damage the stored bytes underneath the store, as a disk fault would.
    overwrite_first_entry(&path, b"{\"not\":\"an entry\"}");
    let store = consentnet_consent_chain::RocksStore::open(&path).unwrap();
    let report = audit(&store, &c.genesis, BOUND, &records).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        report.problems[0]
            .problem
            .starts_with("stored bytes are not an entry"),
        "{:?}",
        report.problems
    );
}

#[test]
fn a_commitment_whose_bytes_are_not_canonical_is_never_judged_against_records() {
    let records = Records::default();
    let c = Consortium::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let event = commitment(&c.bank_a, 1, &[record(consent(&c.bank_a, &c.tsp).1.id, 5)]);
    let entry = Entry::sign(&c.bank_a, None, 1, event);
    consentnet_consent_chain::RocksStore::open(&path)
        .unwrap()
        .append(std::slice::from_ref(&entry))
        .unwrap();
    // The same entry, pretty-printed: it parses, but is not its canonical bytes.
    overwrite_first_entry(&path, &serde_json::to_vec_pretty(&entry).unwrap());
    let store = consentnet_consent_chain::RocksStore::open(&path).unwrap();
    let report = audit(&store, &c.genesis, BOUND, &records).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(report.problems[0].problem.contains("not an entry"));
    // The commitment pass skipped it: not counted as a batch the source lacks.
    assert_eq!(report.batches_unavailable, 0);
    assert_eq!(report.committed_records, 0);
}

#[test]
fn an_access_batch_stamped_long_before_any_peer_saw_it_is_a_finding() {
    let records = Records::default();
    let c = Consortium::new();
    let mut node = Replica::open(MemoryStore::new(), &c.genesis).unwrap();
    let (client, consent) = consent(&c.bank_a, &c.tsp);
    let hour = 3_600_000;
    let t0 = now_ms() - 3 * hour;
    let checkpoint = |node: &Replica<MemoryStore>| {
        let frontier = node
            .heads()
            .iter()
            .map(|(origin, head)| (origin.clone(), *head))
            .collect();
        Event::Checkpoint { frontier }
    };
    node.append_local(&c.bank_a, grant(&consent), t0 - 3 * hour)
        .unwrap();
    // The regulator's checkpoint covers the grant only.
    let early = checkpoint(&node);
    node.append_local(&c.regulator, early, t0 - 2 * hour)
        .unwrap();
    // The bank serves after the revocation (at t0) but stamps the access, and its
    // entry, 10 s before it; its own checkpoint claims it held the batch then.
    node.append_local(
        &c.bank_a,
        records.access(&c.bank_a, consent.id, t0 - 10_000),
        t0 - 10_000,
    )
    .unwrap();
    let own = checkpoint(&node);
    node.append_local(&c.bank_a, own, t0 - 5_000).unwrap();
    node.append_local(&c.tsp, revoke(&client, consent.id, t0 as i64), t0)
        .unwrap();
    // An honest batch, stamped 5 s before a peer saw it.
    let seen = t0 + hour;
    node.append_local(
        &c.bank_a,
        records.access(&c.bank_a, consent.id, seen - 5_000),
        seen - 5_000,
    )
    .unwrap();
    let late = checkpoint(&node);
    node.append_local(&c.regulator, late, seen).unwrap();

    let report = audit(node.store(), &c.genesis, BOUND, &records).unwrap();
    // By its stamp the backdated access came before the revocation; by when a peer saw
    // it, an hour after. The honest batch is within the bound. (The honest one was served
    // after the revocation, which is a violation of its own.)
    assert_eq!(report.late_records.len(), 1, "{:?}", report.late_records);
    let finding = &report.late_records[0];
    assert_eq!(
        (finding.bank.as_str(), finding.seq, finding.records),
        (c.bank_a.did().as_str(), 2, 1)
    );
    assert_eq!(finding.seen_by, c.regulator.did().as_str());
    assert_eq!((finding.stamped, finding.seen_at), (t0 - 10_000, seen));
    assert_eq!(finding.late_ms, hour + 10_000);
    assert!(!report.clean);
    assert!(
        report.summary().contains("1 late access batches"),
        "{}",
        report.summary()
    );
    assert_eq!(report.violations.len(), 1);
    assert_eq!(report.violations[0].time, seen - 5_000);
}

#[test]
fn records_that_do_not_match_their_commitment_are_found_and_missing_ones_counted() {
    let records = Records::default();
    let c = Consortium::new();
    let mut node = Replica::open(MemoryStore::new(), &c.genesis).unwrap();
    let (_, consent) = consent(&c.bank_a, &c.tsp);
    let at = consent.terms.valid_from.timestamp_millis() as u64 + 1_000;
    node.append_local(&c.bank_a, grant(&consent), now_ms())
        .unwrap();
    for i in 0..3 {
        let event = records.access(&c.bank_a, consent.id, at + i);
        node.append_local(&c.bank_a, event, now_ms()).unwrap();
    }
    let report = audit(node.store(), &c.genesis, BOUND, &records).unwrap();
    assert!(report.clean, "{}", report.summary());
    assert_eq!((report.accesses, report.committed_records), (3, 3));

    // The bank shows a regulator other records for batch 2 than it committed to.
    records.tamper(&c.bank_a, 2, vec![record(consent.id, at + 50)]);
    let report = audit(node.store(), &c.genesis, BOUND, &records).unwrap();
    assert!(!report.clean);
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(report.problems[0].problem.contains("access batch 2"));
    assert_eq!(report.accesses, 2, "only matching batches are judged");

    // Without the records, the log alone: every batch counted as unavailable.
    let report = audit(node.store(), &c.genesis, BOUND, &NoRecords).unwrap();
    assert!(report.clean, "{}", report.summary());
    assert_eq!((report.accesses, report.batches_unavailable), (0, 3));
}

#[test]
fn a_commitment_in_an_entry_that_fails_its_checks_is_not_judged_against_records() {
    let records = Records::default();
    let c = Consortium::new();
    let (_, consent) = consent(&c.bank_a, &c.tsp);
    let at = consent.terms.valid_from.timestamp_millis() as u64 + 1_000;
    let mut source = Replica::open(MemoryStore::new(), &c.genesis).unwrap();
    let granted = source
        .append_local(&c.bank_a, grant(&consent), now_ms())
        .unwrap()
        .entry()
        .clone();
    let committed = source
        .append_local(
            &c.bank_a,
            records.access(&c.bank_a, consent.id, at),
            now_ms(),
        )
        .unwrap()
        .entry()
        .clone();
    // The same feed with its commitment's entry altered after signing: the raw store
    // checks links, not signatures.
    let mut forged = committed.clone();
    forged.time += 1;
    let mut store = MemoryStore::new();
    store.append(&[granted, forged]).unwrap();
    let report = audit(&store, &c.genesis, BOUND, &records).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].problem, "signature does not verify");
    assert_eq!(
        (
            report.accesses,
            report.batches_unavailable,
            report.committed_records
        ),
        (0, 0, 0),
        "the forged entry's batch is neither judged nor counted"
    );

    // The honest feed: its one batch is judged.
    let report = audit(source.store(), &c.genesis, BOUND, &records).unwrap();
    assert!(report.clean, "{}", report.summary());
    assert_eq!(report.accesses, 1);
}
