//! Merkle trees over access records, as Certificate Transparency builds them (RFC 9162 §2.1): the root a bank commits to on the log, and the inclusion proofs that show one record is under it.
//!
//! Leaves and interior nodes are hashed with distinct prefixes (`0x00`, `0x01`), so no
//! interior node can pass for a record. The tree over `n` leaves splits at the largest
//! power of two below `n`, which makes every proof at most `ceil(log2 n)` hashes.

use consentnet_identity::Hash32;
use sha2::{Digest, Sha256};

use crate::event::AccessRecord;

/// The leaf hash of one access record in its batch's tree: of its JSON.
pub fn record_leaf(record: &AccessRecord) -> Hash32 {
    let bytes = serde_json::to_vec(record)
        .unwrap_or_else(|_| unreachable!("an access record's plain fields serialize"));
    leaf_hash(&bytes)
}

/// The root over a batch's access records, in order: what the bank commits to.
pub fn batch_root(records: &[AccessRecord]) -> Hash32 {
    root(&records.iter().map(record_leaf).collect::<Vec<_>>())
}

/// The hash of one leaf: `SHA-256(0x00 || bytes)`.
pub fn leaf_hash(bytes: &[u8]) -> Hash32 {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(bytes);
    Hash32(hasher.finalize().into())
}

fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left.0);
    hasher.update(right.0);
    Hash32(hasher.finalize().into())
}

/// The largest power of two strictly below `n` (`n` at least 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The root over `leaves` (leaf hashes, in order); the empty tree's root is
/// `SHA-256("")`.
pub fn root(leaves: &[Hash32]) -> Hash32 {
    match leaves.len() {
        0 => Hash32(Sha256::digest([]).into()),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The inclusion proof of leaf `index` among `leaves`: the sibling hashes from the leaf up
/// to the root. `None` when `index` is out of range.
pub fn inclusion_proof(leaves: &[Hash32], index: usize) -> Option<Vec<Hash32>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    collect_path(leaves, index, &mut path);
    Some(path)
}

fn collect_path(leaves: &[Hash32], index: usize, path: &mut Vec<Hash32>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if index < k {
        collect_path(&leaves[..k], index, path);
        path.push(root(&leaves[k..]));
    } else {
        collect_path(&leaves[k..], index - k, path);
        path.push(root(&leaves[..k]));
    }
}

/// A batch's whole tree, level by level, built once in O(n): every proof from it then
/// costs O(log n) (where [`inclusion_proof`] recomputes subtrees, O(n) per proof). The
/// last node of an odd level is carried up unhashed, which gives the RFC 9162 tree.
#[derive(Debug, Clone)]
pub struct Tree {
    /// `levels[0]` are the leaves; the last level is the root alone.
    levels: Vec<Vec<Hash32>>,
}

impl Tree {
    /// The tree over `leaves` (leaf hashes, in order).
    pub fn new(leaves: Vec<Hash32>) -> Self {
        let mut levels = vec![leaves];
        while let Some(level) = levels.last().filter(|level| level.len() > 1) {
            let next = level
                .chunks(2)
                .map(|pair| match pair {
                    [left, right] => node_hash(left, right),
                    [single] => *single,
                    _ => unreachable!("chunks of two"),
                })
                .collect();
            levels.push(next);
        }
        Self { levels }
    }

    /// How many leaves it has.
    pub fn size(&self) -> usize {
        self.levels[0].len()
    }

    /// Its root (that of the empty tree when it has no leaves).
    pub fn root(&self) -> Hash32 {
        match self.levels.last().and_then(|level| level.first()) {
            Some(top) if self.size() > 0 => *top,
            _ => root(&[]),
        }
    }

    /// The inclusion proof of leaf `index`, as [`inclusion_proof`] gives it.
    pub fn proof(&self, index: usize) -> Option<Vec<Hash32>> {
        if index >= self.size() {
            return None;
        }
        let mut path = Vec::with_capacity(self.levels.len());
        let mut at = index;
        for level in &self.levels[..self.levels.len() - 1] {
            if let Some(sibling) = level.get(at ^ 1) {
                path.push(*sibling);
            }
            at >>= 1;
        }
        Some(path)
    }
}

/// Does `proof` show that `leaf` is leaf `index` of a tree of `size` leaves with `root`?
/// (RFC 9162 §2.1.3.2.)
pub fn verify_inclusion(
    leaf: &Hash32,
    index: u64,
    size: u64,
    proof: &[Hash32],
    root: &Hash32,
) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut hash = *leaf;
    for sibling in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            hash = node_hash(sibling, &hash);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && hash == *root
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn leaves(n: usize) -> Vec<Hash32> {
        (0..n)
            .map(|i| leaf_hash(format!("record {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn every_leaf_of_every_small_tree_proves_and_no_other_does() {
        for n in 1..=33 {
            let tree = leaves(n);
            let top = root(&tree);
            for (i, leaf) in tree.iter().enumerate() {
                let proof = inclusion_proof(&tree, i).unwrap();
                let (index, size) = (i as u64, n as u64);
                assert!(
                    verify_inclusion(leaf, index, size, &proof, &top),
                    "{i} of {n}"
                );
                // Another leaf, another position, another root or a cut proof fail.
                let other = leaf_hash(b"not in the tree");
                assert!(!verify_inclusion(&other, index, size, &proof, &top));
                if n > 1 {
                    let moved = (index + 1) % size;
                    assert!(!verify_inclusion(leaf, moved, size, &proof, &top));
                    // The size is not bound by the path alone (the signed commitment
                    // names it), but the root of any other set of leaves is.
                    let fewer = root(&tree[..n - 1]);
                    assert!(!verify_inclusion(leaf, index, size, &proof, &fewer));
                    assert!(!verify_inclusion(
                        leaf,
                        index,
                        size,
                        &proof[..proof.len() - 1],
                        &top
                    ));
                }
            }
            assert!(inclusion_proof(&tree, n).is_none());
        }
    }

    #[test]
    fn the_built_tree_gives_the_same_root_and_proofs_as_the_definition() {
        for n in 0..=70 {
            let leaves = leaves(n);
            let tree = Tree::new(leaves.clone());
            assert_eq!(tree.root(), root(&leaves), "root of {n}");
            for i in 0..=n {
                assert_eq!(tree.proof(i), inclusion_proof(&leaves, i), "{i} of {n}");
            }
        }
    }

    #[test]
    fn the_root_matches_rfc_9162_for_known_shapes() {
        let tree = leaves(3);
        let expected = node_hash(&node_hash(&tree[0], &tree[1]), &tree[2]);
        assert_eq!(root(&tree), expected);
        // The empty tree's root is the hash of nothing.
        assert_eq!(
            root(&[]).to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // A leaf is never its own node hash: the prefixes differ.
        assert_ne!(leaf_hash(b"x"), Hash32(Sha256::digest(b"x").into()));
    }

    #[test]
    fn an_interior_node_cannot_pose_as_a_leaf() {
        let tree = leaves(4);
        let top = root(&tree);
        let inner = node_hash(&tree[0], &tree[1]);
        // As leaf 0 of a tree of two, with the right half as its sibling.
        let right = node_hash(&tree[2], &tree[3]);
        assert!(!verify_inclusion(&inner, 0, 4, &[right], &top));
    }
}
