//! Checking a consent's access history as a client would: each record's inclusion proof against the commitment its bank signed on the log.

/// Checks a consent's access history as its bank answered it: every record's inclusion
/// proof against the root of its batch's commitment, and that commitment's entry signed
/// by `bank` in its own feed. Returns how many records proved; panics at the first that
/// does not.
pub fn verify_accesses(answer: &serde_json::Value, bank: &str) -> usize {
    use consentnet_consent_chain::merkle::{record_leaf, verify_inclusion};
    use consentnet_consent_chain::{Entry, Event, Hash32};
    let mut proved = 0;
    for access in answer["accesses"].as_array().expect("a list of accesses") {
        let batch = &answer["batches"][access["batch"].as_u64().expect("a batch").to_string()];
        let entry: Entry =
            serde_json::from_value(batch["commitment"].clone()).expect("the commitment entry");
        assert_eq!(
            entry.origin.as_str(),
            bank,
            "the commitment is in the bank's feed"
        );
        assert!(
            entry.verify_signature(),
            "the bank signed the commitment entry"
        );
        let Event::AccessCommitted { commitment, .. } = &entry.event else {
            panic!("the entry is not a commitment");
        };
        let record = serde_json::from_value(access["record"].clone()).expect("a record");
        let proof: Vec<Hash32> = access["proof"]
            .as_array()
            .expect("a proof")
            .iter()
            .map(|h| Hash32::parse(h.as_str().expect("hex")).expect("a hash"))
            .collect();
        let index = access["index"].as_u64().expect("an index");
        assert!(
            verify_inclusion(
                &record_leaf(&record),
                index,
                u64::from(commitment.records),
                &proof,
                &commitment.root
            ),
            "record {index} of batch {} does not prove",
            commitment.batch
        );
        proved += 1;
    }
    proved
}
