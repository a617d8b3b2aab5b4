//! The work RDF canonicalization (RDFC-1.0) may take, bounded before a proof is checked: a document whose blank nodes look alike next to each other ("poison graphs") would make the canonicalizer permute them, factorial in time and memory, so such a document is refused before it runs.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;
use ssi_json_ld::{CompactJsonLd, Expandable as _};
use ssi_rdf::urdna2015::{
    BlankNodeComponents as _, IdentifierIssuer, NormalizationState, hash_first_degree_quads,
};
use ssi_rdf::{AnyLdEnvironment as _, LdEnvironment, LexicalQuad};

/// The most blank nodes a document may hold.
pub const MAX_BLANK_NODES: usize = 256;

/// Why a document's canonicalization is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonError {
    /// The document is not JSON-LD the bundled contexts can expand.
    #[error("the document does not expand to RDF: {0}")]
    Expansion(String),
    /// Too many blank nodes.
    #[error("the document has {0} blank nodes; at most {MAX_BLANK_NODES} are taken")]
    TooManyBlankNodes(usize),
    /// Two alike blank nodes next to a third: canonicalizing it would take
    /// exponential work.
    #[error(
        "blank nodes that look alike are linked to each other (a poison graph): give the nested objects ids or tell them apart"
    )]
    AlikeBlankNodes,
    /// One statement given twice.
    #[error("a statement is repeated")]
    RepeatedStatement,
}

/// `document`'s RDF statements, expanded with the bundled contexts only.
async fn quads(document: &Value) -> Result<Vec<LexicalQuad>, CanonError> {
    crate::ld_input::check(document).map_err(CanonError::Expansion)?;
    let compact: CompactJsonLd = serde_json::from_value(document.clone())
        .map_err(|e| CanonError::Expansion(e.to_string()))?;
    let mut ld = LdEnvironment::default();
    let expanded = compact
        .expand_with(&mut ld, &crate::consent::json_ld_loader())
        .await
        .map_err(|e| CanonError::Expansion(e.to_string()))?;
    ld.quads_of(&expanded)
        .map_err(|e| CanonError::Expansion(e.to_string()))
}

/// Refuses `document` when canonicalizing it could take more than polynomial work.
pub async fn check_document(document: &Value) -> Result<(), CanonError> {
    check_quads(&quads(document).await?)
}

/// The rule on statements: a blank node whose first-degree hash another shares has no
/// blank neighbour that shares one too. Then every node the canonicalizer must hash
/// deeper has only neighbours already named, so it never recurses or permutes.
pub fn check_quads(quads: &[LexicalQuad]) -> Result<(), CanonError> {
    let mut seen = HashSet::with_capacity(quads.len());
    if !quads.iter().all(|quad| seen.insert(quad)) {
        return Err(CanonError::RepeatedStatement);
    }
    let mut state = NormalizationState {
        blank_node_to_quads: BTreeMap::new(),
        hash_to_blank_nodes: BTreeMap::new(),
        canonical_issuer: IdentifierIssuer::new("_:c14n".to_owned()),
    };
    for quad in quads {
        let quad = quad.as_lexical_quad_ref();
        for blank in quad.blank_node_components() {
            state
                .blank_node_to_quads
                .entry(blank)
                .or_default()
                .push(quad);
        }
    }
    let blanks: Vec<_> = state.blank_node_to_quads.keys().copied().collect();
    if blanks.len() > MAX_BLANK_NODES {
        return Err(CanonError::TooManyBlankNodes(blanks.len()));
    }
    let mut by_hash: HashMap<String, usize> = HashMap::new();
    let hashes: Vec<String> = blanks
        .iter()
        .map(|blank| hash_first_degree_quads(&mut state, blank))
        .collect();
    for hash in &hashes {
        *by_hash.entry(hash.clone()).or_default() += 1;
    }
    let alike: HashSet<_> = blanks
        .iter()
        .zip(&hashes)
        .filter(|(_, hash)| by_hash[*hash] > 1)
        .map(|(blank, _)| *blank)
        .collect();
    for blank in &alike {
        let neighbours = state.blank_node_to_quads[blank]
            .iter()
            .flat_map(|quad| quad.blank_node_components());
        for neighbour in neighbours {
            if neighbour != *blank && alike.contains(neighbour) {
                return Err(CanonError::AlikeBlankNodes);
            }
        }
    }
    Ok(())
}
