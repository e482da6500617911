//! ECDSA P-256 / P-384 over a digest the core computed incrementally.
//!
//! aws-lc-rs signs and verifies a precomputed [`digest::Digest`] (`EcdsaKeyPair::sign_digest`,
//! `UnparsedPublicKey::verify_digest`); the digest is imported with
//! `Digest::import_less_safe`. The private key arrives as a raw big-endian scalar, which
//! aws-lc-rs only takes inside a key encoding, so it is wrapped in a minimal RFC 5915
//! `ECPrivateKey` (aws-lc computes the public point). aws-lc signs with a random nonce and
//! does not normalize S, so S is normalized here and signing is repeated until the DER has the
//! fixed length (the Python ESDK's `_ecc_static_length_signature`).

use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsBigEndian, EcPrivateKeyBin, EcPublicKeyCompressedBin};
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair};
use esdk_core::error::CryptoError;
use esdk_core::suite::SignatureAlg;
use zeroize::Zeroizing;

/// Everything that differs between the two curves.
pub(crate) struct Curve {
    signing: &'static signature::EcdsaSigningAlgorithm,
    verifying: &'static signature::EcdsaVerificationAlgorithm,
    digest: &'static digest::Algorithm,
    /// The `[0] ECParameters` element of an RFC 5915 key: the named curve's OID.
    params: &'static [u8],
    /// The group order, big-endian, `scalar_len` bytes.
    pub(crate) order: &'static [u8],
}

const P256: Curve = Curve {
    signing: &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
    verifying: &signature::ECDSA_P256_SHA256_ASN1,
    digest: &digest::SHA256,
    // [0] { OID 1.2.840.10045.3.1.7 (prime256v1) }
    params: &[
        0xA0, 0x0A, 0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07,
    ],
    order: &[
        0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63,
        0x25, 0x51,
    ],
};

const P384: Curve = Curve {
    signing: &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
    verifying: &signature::ECDSA_P384_SHA384_ASN1,
    digest: &digest::SHA384,
    // [0] { OID 1.3.132.0.34 (secp384r1) }
    params: &[0xA0, 0x07, 0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22],
    order: &[
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xC7, 0x63, 0x4D, 0x81, 0xF4, 0x37,
        0x2D, 0xDF, 0x58, 0x1A, 0x0D, 0xB2, 0x48, 0xB0, 0xA7, 0x7A, 0xEC, 0xEC, 0x19, 0x6A, 0xCC,
        0xC5, 0x29, 0x73,
    ],
};

pub(crate) const fn curve(alg: SignatureAlg) -> &'static Curve {
    match alg {
        SignatureAlg::EcdsaP256Sha256 => &P256,
        SignatureAlg::EcdsaP384Sha384 => &P384,
    }
}

/// Largest scalar (P-384).
const MAX_SCALAR: usize = 48;
/// Longest RFC 5915 key built here: SEQUENCE { INTEGER 1, OCTET STRING scalar, [0] params }.
const MAX_KEY_DER: usize = 2 + 3 + 2 + MAX_SCALAR + 12;
/// Tries before giving up on a fixed-length signature. Each try succeeds with probability
/// about 1/2, so 2^-128 of failure.
const SIGN_TRIES: usize = 128;

/// Generates a key pair in aws-lc: the scalar into `private`, the compressed point into
/// `public`.
pub(crate) fn generate(
    alg: SignatureAlg,
    private: &mut [u8],
    public: &mut [u8],
) -> Result<(), CryptoError> {
    let c = curve(alg);
    let kp = EcdsaKeyPair::generate(c.signing).map_err(|_| CryptoError::Rng)?;
    let sk: EcPrivateKeyBin<'static> = kp
        .private_key()
        .as_be_bytes()
        .map_err(|_| CryptoError::InvalidKey)?;
    let pk: EcPublicKeyCompressedBin<'static> = kp
        .public_key()
        .as_be_bytes()
        .map_err(|_| CryptoError::InvalidKey)?;
    let (sk, pk) = (sk.as_ref(), pk.as_ref());
    if sk.len() != alg.scalar_len() || pk.len() != alg.public_key_len() {
        return Err(CryptoError::InvalidKey);
    }
    private
        .get_mut(..sk.len())
        .ok_or(CryptoError::InvalidKey)?
        .copy_from_slice(sk);
    public
        .get_mut(..pk.len())
        .ok_or(CryptoError::InvalidKey)?
        .copy_from_slice(pk);
    Ok(())
}

/// The key pair of a raw scalar, through a minimal RFC 5915 `ECPrivateKey` (no public key;
/// aws-lc computes it and rejects 0 and scalars ≥ the order).
fn key_pair(c: &Curve, private: &[u8]) -> Result<EcdsaKeyPair, CryptoError> {
    let n = private.len();
    if n != c.order.len() {
        return Err(CryptoError::InvalidKey);
    }
    let mut der = Zeroizing::new([0u8; MAX_KEY_DER]);
    let body = 3 + 2 + n + c.params.len();
    let total = 2 + body;
    // n ≤ 48 and params ≤ 12, so every length fits one short-form byte.
    der[..7].copy_from_slice(&[0x30, body as u8, 0x02, 0x01, 0x01, 0x04, n as u8]);
    der[7..7 + n].copy_from_slice(private);
    der[7 + n..total].copy_from_slice(c.params);
    EcdsaKeyPair::from_private_key_der(c.signing, &der[..total])
        .map_err(|_| CryptoError::InvalidKey)
}

/// Signs `digest` and writes a low-S DER signature of exactly
/// [`SignatureAlg::fixed_signature_len`] bytes into `out`.
pub(crate) fn sign(
    alg: SignatureAlg,
    private: &[u8],
    digest: &[u8],
    out: &mut [u8],
) -> Result<usize, CryptoError> {
    let c = curve(alg);
    let want = alg.fixed_signature_len();
    let out = out.get_mut(..want).ok_or(CryptoError::Sign)?;
    let kp = key_pair(c, private)?;
    let d = digest::Digest::import_less_safe(digest, c.digest).map_err(|_| CryptoError::Sign)?;
    for _ in 0..SIGN_TRIES {
        let sig = kp.sign_digest(&d).map_err(|_| CryptoError::Sign)?;
        let (r, s) = der::split(sig.as_ref()).ok_or(CryptoError::Sign)?;
        let mut s_low = [0u8; MAX_SCALAR];
        let s_low = &mut s_low[..c.order.len()];
        der::low_s(s, c.order, s_low).ok_or(CryptoError::Sign)?;
        if der::encoded_len(r, s_low) == want {
            der::write(r, s_low, out).ok_or(CryptoError::Sign)?;
            return Ok(want);
        }
    }
    Err(CryptoError::Sign)
}

/// Verifies a DER signature (any valid length, high or low S) over `digest` with a SEC1
/// compressed public point.
pub(crate) fn verify(
    alg: SignatureAlg,
    public: &[u8],
    digest: &[u8],
    sig: &[u8],
) -> Result<bool, CryptoError> {
    let c = curve(alg);
    if public.len() != alg.public_key_len() || !matches!(public.first(), Some(2 | 3)) {
        return Err(CryptoError::InvalidPublicKey);
    }
    let key = signature::ParsedPublicKey::new(c.verifying, public)
        .map_err(|_| CryptoError::InvalidPublicKey)?;
    let Ok(d) = digest::Digest::import_less_safe(digest, c.digest) else {
        return Ok(false);
    };
    Ok(key.verify_digest_sig(&d, sig).is_ok())
}

/// Just enough DER for `SEQUENCE { INTEGER r, INTEGER s }` with short-form lengths (every
/// P-256 / P-384 signature).
pub(crate) mod der {
    /// One `INTEGER` at the start of `b`: its magnitude without leading zeros, and the rest.
    fn int(b: &[u8]) -> Option<(&[u8], &[u8])> {
        let (&tag, b) = b.split_first()?;
        let (&len, b) = b.split_first()?;
        if tag != 0x02 || len >= 0x80 {
            return None;
        }
        let (mut v, rest) = b.split_at_checked(usize::from(len))?;
        while let Some((&0, tail)) = v.split_first() {
            v = tail;
        }
        Some((v, rest))
    }

    /// `(r, s)` magnitudes of a DER ECDSA signature.
    pub(crate) fn split(sig: &[u8]) -> Option<(&[u8], &[u8])> {
        let (&tag, b) = sig.split_first()?;
        let (&len, b) = b.split_first()?;
        if tag != 0x30 || len >= 0x80 || usize::from(len) != b.len() {
            return None;
        }
        let (r, b) = int(b)?;
        let (s, b) = int(b)?;
        b.is_empty().then_some((r, s))
    }

    /// Writes `min(s, n - s)` as a big-endian number of `order.len()` bytes into `out`.
    pub(crate) fn low_s(s: &[u8], order: &[u8], out: &mut [u8]) -> Option<()> {
        let w = order.len();
        if s.len() > w || out.len() != w {
            return None;
        }
        out[w - s.len()..].copy_from_slice(s);
        // s > n/2 (n odd) ⇔ 2s > n ⇔ s > n - s.
        let mut neg = [0u8; super::MAX_SCALAR];
        let neg = &mut neg[..w];
        let mut borrow = 0i16;
        for i in (0..w).rev() {
            let d = i16::from(order[i]) - i16::from(out[i]) - borrow;
            borrow = i16::from(d < 0);
            neg[i] = d.rem_euclid(256) as u8;
        }
        if borrow != 0 || neg.iter().all(|&b| b == 0) || out.iter().all(|&b| b == 0) {
            return None; // s ∉ [1, n-1]: not a signature aws-lc would make
        }
        if *out > *neg {
            out.copy_from_slice(neg);
        }
        Some(())
    }

    /// Minimal magnitude and its DER content length (a leading 0 when the top bit is set).
    fn minimal(x: &[u8]) -> (&[u8], usize) {
        let mut v = x;
        while let Some((&0, tail)) = v.split_first() {
            v = tail;
        }
        let len = match v.first() {
            None => 1,
            Some(&b) if b & 0x80 != 0 => v.len() + 1,
            Some(_) => v.len(),
        };
        (v, len)
    }

    /// Length of the DER `SEQUENCE { INTEGER r, INTEGER s }`.
    pub(crate) fn encoded_len(r: &[u8], s: &[u8]) -> usize {
        2 + 2 + minimal(r).1 + 2 + minimal(s).1
    }

    /// Writes the DER signature into the start of `out`; `None` if `out` is shorter than
    /// [`encoded_len`].
    pub(crate) fn write(r: &[u8], s: &[u8], out: &mut [u8]) -> Option<()> {
        let (rv, rl) = minimal(r);
        let (sv, sl) = minimal(s);
        let mut at = 0;
        let mut put = |b: &[u8]| -> Option<()> {
            out.get_mut(at..at + b.len())?.copy_from_slice(b);
            at += b.len();
            Some(())
        };
        // Every length is < 128 for P-256 / P-384 (at most 2 + 49 + 2 + 49).
        put(&[0x30, (2 + rl + 2 + sl) as u8])?;
        for (v, len) in [(rv, rl), (sv, sl)] {
            put(&[0x02, len as u8])?;
            if len > v.len() {
                put(&[0])?;
            }
            put(v)?;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_round_trip_and_low_s() {
        // n - 1 is high; it becomes 1.
        let c = &P256;
        let mut s = c.order.to_vec();
        s[31] -= 1;
        let mut out = [0u8; 32];
        der::low_s(&s, c.order, &mut out).unwrap();
        let mut one = [0u8; 32];
        one[31] = 1;
        assert_eq!(out, one);
        // Small s stays.
        der::low_s(&[5], c.order, &mut out).unwrap();
        assert_eq!(out[31], 5);
        assert!(out[..31].iter().all(|&b| b == 0));
        // s = n is refused.
        assert!(der::low_s(c.order, c.order, &mut out).is_none());

        let r = [0x80u8; 32];
        let s = [0x01u8; 32];
        let n = der::encoded_len(&r, &s);
        assert_eq!(n, 2 + 2 + 33 + 2 + 32);
        let mut buf = vec![0u8; n];
        der::write(&r, &s, &mut buf).unwrap();
        let (r2, s2) = der::split(&buf).unwrap();
        assert_eq!((r2, s2), (&r[..], &s[..]));
    }

    #[test]
    fn der_split_rejects_garbage() {
        assert!(der::split(&[]).is_none());
        assert!(der::split(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_none());
        assert!(der::split(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00]).is_none());
        assert!(der::split(&[0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]).is_none());
        assert!(der::split(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]).is_some());
    }

    #[test]
    fn bad_private_keys_are_refused() {
        let digest = [1u8; 48];
        let mut out = [0u8; 104];
        for alg in [SignatureAlg::EcdsaP256Sha256, SignatureAlg::EcdsaP384Sha384] {
            let n = alg.scalar_len();
            let d = &digest[..alg.hash().output_len()];
            let zero = vec![0u8; n];
            assert_eq!(sign(alg, &zero, d, &mut out), Err(CryptoError::InvalidKey));
            let order = curve(alg).order;
            assert_eq!(sign(alg, order, d, &mut out), Err(CryptoError::InvalidKey));
            assert_eq!(
                sign(alg, &zero[1..], d, &mut out),
                Err(CryptoError::InvalidKey)
            );
        }
    }

    #[test]
    fn bad_public_keys_are_refused() {
        let mut sk = [0u8; 48];
        let mut pk = [0u8; 49];
        let alg = SignatureAlg::EcdsaP384Sha384;
        generate(alg, &mut sk, &mut pk).unwrap();
        let d = [0u8; 48];
        let mut sig = [0u8; 103];
        sign(alg, &sk, &d, &mut sig).unwrap();
        assert_eq!(verify(alg, &pk, &d, &sig), Ok(true));
        // Wrong prefix, wrong length, not on the curve.
        let mut bad = pk;
        bad[0] = 4;
        assert_eq!(
            verify(alg, &bad, &d, &sig),
            Err(CryptoError::InvalidPublicKey)
        );
        assert_eq!(
            verify(alg, &pk[..48], &d, &sig),
            Err(CryptoError::InvalidPublicKey)
        );
        let mut off = [0xFFu8; 49];
        off[0] = 2;
        assert_eq!(
            verify(alg, &off, &d, &sig),
            Err(CryptoError::InvalidPublicKey)
        );
        // Wrong digest length is a failed verification, as in the pure-Rust provider.
        assert_eq!(verify(alg, &pk, &d[..32], &sig), Ok(false));
    }
}
