//! Ed25519 batch verification: one multiscalar check per batch, with the terms of the signatures made by one key merged into one, so a batch from few signers (an app's calls, a member's feed) costs about one curve point per signature instead of two.
//!
//! For signatures `(R_i, s_i)` by keys `A_i` over messages `M_i`, with `k_i =
//! SHA-512(R_i || A_i || M_i)` and fresh random 128-bit `z_i`, the batch holds when
//! `[8]( -(Σ z_i s_i) B + Σ z_i R_i + Σ_A (Σ_{i: A_i = A} z_i k_i) A ) = 0`: the
//! cofactored group equation, summed. Each `R_i` is decompressed once and refused when it
//! is of small order, as are weak keys and non-canonical `s`, which is what
//! `verify_strict` refuses beyond the group equation.

use std::sync::LazyLock;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint, VartimeEdwardsPrecomputation};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity as _, VartimePrecomputedMultiscalarMul as _};
use sha2::{Digest as _, Sha512};

use crate::keys::SignatureCheck;

/// Signatures verified together: larger batches cost less per signature.
const BATCH: usize = 128;

/// The base point's precomputed table, built once.
static BASEPOINT: LazyLock<VartimeEdwardsPrecomputation> =
    LazyLock::new(|| VartimeEdwardsPrecomputation::new([ED25519_BASEPOINT_POINT]));

/// A signature ready for the batch equation: its `R`, `s` and `k`.
struct Terms {
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

/// The terms of a signature that may go into a batch: 64 bytes, a key not of small
/// order, `R` a point not of small order, `s` canonical.
fn terms(check: &SignatureCheck) -> Option<Terms> {
    let bytes: &[u8; 64] = check.signature.as_slice().try_into().ok()?;
    if check.signer.is_weak() {
        return None;
    }
    let (r_bytes, s_bytes) = bytes.split_at(32);
    let s = Option::from(Scalar::from_canonical_bytes(s_bytes.try_into().ok()?))?;
    let r = CompressedEdwardsY::from_slice(r_bytes).ok()?.decompress()?;
    if r.is_small_order() {
        return None;
    }
    let hash = Sha512::new()
        .chain_update(r_bytes)
        .chain_update(check.signer.as_bytes())
        .chain_update(&check.message)
        .finalize();
    let k = Scalar::from_bytes_mod_order_wide(&hash.into());
    Some(Terms { r, s, k })
}

/// Fresh random 128-bit weights, one per signature.
fn weights(count: usize) -> Vec<Scalar> {
    let mut bytes = vec![0u8; count * 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    bytes
        .chunks_exact(16)
        .map(|chunk| {
            let mut wide = [0u8; 16];
            wide.copy_from_slice(chunk);
            Scalar::from(u128::from_le_bytes(wide))
        })
        .collect()
}

/// True when every signature of the batch holds (by the summed cofactored equation).
fn batch_holds(batch: &[(&SignatureCheck, Terms)]) -> bool {
    let z = weights(batch.len());
    let mut base = Scalar::ZERO;
    // One coefficient per distinct key; a batch has few, so a linear search is cheapest.
    let mut keys: Vec<(&[u8; 32], EdwardsPoint, Scalar)> = Vec::new();
    let mut scalars = Vec::with_capacity(batch.len() + 4);
    let mut points = Vec::with_capacity(batch.len() + 4);
    for ((check, terms), z) in batch.iter().zip(&z) {
        base -= z * terms.s;
        scalars.push(*z);
        points.push(terms.r);
        let key = check.signer.as_bytes();
        match keys.iter_mut().find(|(bytes, _, _)| *bytes == key) {
            Some((_, _, coefficient)) => *coefficient += z * terms.k,
            None => keys.push((key, check.signer.to_edwards(), z * terms.k)),
        }
    }
    for (_, point, coefficient) in keys {
        scalars.push(coefficient);
        points.push(point);
    }
    BASEPOINT
        .vartime_mixed_multiscalar_mul([base], scalars, points)
        .mul_by_cofactor()
        .is_identity()
}

/// Verifies many signatures, in batches where they pass, one by one to find the
/// failures where a batch does not. Returns one verdict per check, in order.
///
/// A batch uses the cofactored group equation; a single check is
/// [`crate::keys::verify_signature`]'s strict cofactorless one. They differ only on
/// signatures whose `R` has a torsion component, which only the key's holder can make:
/// never a forgery.
pub fn verify_many(checks: &[SignatureCheck]) -> Vec<bool> {
    let refs: Vec<&SignatureCheck> = checks.iter().collect();
    verify_all(&refs)
}

/// [`verify_many`] over borrowed checks.
pub fn verify_all(checks: &[&SignatureCheck]) -> Vec<bool> {
    let mut verdicts = Vec::with_capacity(checks.len());
    for chunk in checks.chunks(BATCH) {
        let candidates: Vec<Option<Terms>> = chunk.iter().map(|check| terms(check)).collect();
        let usable: Vec<bool> = candidates.iter().map(Option::is_some).collect();
        let batch: Vec<(&SignatureCheck, Terms)> = chunk
            .iter()
            .zip(candidates)
            .filter_map(|(check, terms)| terms.map(|terms| (*check, terms)))
            .collect();
        if batch.is_empty() || batch_holds(&batch) {
            verdicts.extend(usable);
        } else {
            verdicts.extend(
                chunk
                    .iter()
                    .zip(usable)
                    .map(|(check, usable)| usable && check.verify()),
            );
        }
    }
    verdicts
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::keys::{Did, KeyPair, verify_signature};

    fn signed(key: &KeyPair, i: usize) -> SignatureCheck {
        let message = format!("message {i}").into_bytes();
        SignatureCheck {
            signer: key.public_key(),
            signature: key.sign(&message).to_vec(),
            message,
        }
    }

    #[test]
    fn verify_many_agrees_with_single_checks_and_finds_each_failure() {
        let keys: Vec<KeyPair> = (0..3).map(|_| KeyPair::generate()).collect();
        let mut checks: Vec<SignatureCheck> = (0..300).map(|i| signed(&keys[i % 3], i)).collect();
        assert!(verify_many(&checks).iter().all(|ok| *ok));
        checks[7].message.push(b'!');
        checks[150].signer = keys[1].public_key();
        checks[151].signature.truncate(10);
        checks[299].signature[63] ^= 0x80;
        let verdicts = verify_many(&checks);
        let failed: Vec<usize> = (0..verdicts.len()).filter(|i| !verdicts[*i]).collect();
        assert_eq!(failed, vec![7, 150, 151, 299]);
        for (check, verdict) in checks.iter().zip(&verdicts) {
            let did = Did::from_public_key(&check.signer);
            assert_eq!(
                verify_signature(&did, &check.message, &check.signature),
                *verdict
            );
        }
        assert!(verify_many(&[]).is_empty());
    }

    #[test]
    fn a_batch_by_one_key_fails_when_any_one_signature_is_swapped() {
        // With the key's terms merged, each of two valid signatures of that key placed on
        // the other's message is still found.
        let key = KeyPair::generate();
        let mut checks: Vec<SignatureCheck> = (0..8).map(|i| signed(&key, i)).collect();
        assert!(verify_many(&checks).iter().all(|ok| *ok));
        let (first, second) = (checks[2].signature.clone(), checks[5].signature.clone());
        checks[2].signature = second;
        checks[5].signature = first;
        let failed: Vec<usize> = verify_many(&checks)
            .iter()
            .enumerate()
            .filter_map(|(i, ok)| (!ok).then_some(i))
            .collect();
        assert_eq!(failed, vec![2, 5]);
    }

    #[test]
    fn small_order_r_and_non_canonical_s_are_refused_even_in_a_passing_batch() {
        let key = KeyPair::generate();
        let good: Vec<SignatureCheck> = (0..4).map(|i| signed(&key, i)).collect();
        let mut weak_r = good[0].clone();
        weak_r.signature[..32].copy_from_slice(
            &<CompressedEdwardsY as curve25519_dalek::traits::Identity>::identity().0,
        );
        // s + l is the same scalar mod l but not its canonical encoding.
        let mut high_s = good[1].clone();
        let s = Scalar::from_canonical_bytes(high_s.signature[32..].try_into().unwrap());
        let s: Scalar = Option::from(s).unwrap();
        let mut wide = [0u8; 32];
        wide.copy_from_slice(&s.to_bytes());
        add_group_order(&mut wide);
        high_s.signature[32..].copy_from_slice(&wide);
        let mut checks = good.clone();
        checks.extend([weak_r, high_s]);
        assert_eq!(
            verify_many(&checks),
            vec![true, true, true, true, false, false]
        );
    }

    /// Adds the group order l to a little-endian 256-bit number (no overflow for s < l).
    fn add_group_order(bytes: &mut [u8; 32]) {
        // l = 2^252 + 27742317777372353535851937790883648493, little-endian.
        let mut order = [0u8; 32];
        order[..16].copy_from_slice(&[
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14,
        ]);
        order[31] = 0x10;
        let mut carry = 0u16;
        for (byte, add) in bytes.iter_mut().zip(order) {
            let [low, high] = (u16::from(*byte) + u16::from(add) + carry).to_le_bytes();
            *byte = low;
            carry = u16::from(high);
        }
    }
}
