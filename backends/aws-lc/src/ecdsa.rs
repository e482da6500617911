//! ECDSA P-256 / P-384 over a digest the core computed incrementally, without aws-lc's
//! random number generator.
//!
//! aws-lc draws every signing nonce and generated key from its own DRBG, whose first use in a
//! process seeds it with CPU-jitter entropy: about 40 ms of CPU, the whole cost of a small
//! `esdk encrypt`. aws-lc-rs offers no way to seed it from the OS nor to pass a nonce, so
//! nothing here calls it:
//! - a new key is a scalar from the OS (`getrandom`, rejection-sampled below the order);
//!   aws-lc computes its public point (`agreement::PrivateKey::from_private_key`, a
//!   constant-time fixed-base multiplication);
//! - a signature takes its nonce `k` from RFC 6979 (HMAC-DRBG over the private key and the
//!   digest, hedged with 32 bytes from the OS as the RFC's additional data: deterministic
//!   protection against a weak RNG, randomness against fault attacks); aws-lc computes
//!   `R = k·G` the same way (its x coordinate gives `r`), and the scalar arithmetic
//!   `s = k⁻¹ (z + r·d) mod n` is RustCrypto's constant-time `p256` / `p384` scalar field.
//!   The split is for speed: aws-lc's fixed-base multiplication is about 4× RustCrypto's.
//!
//! S is normalized to the low half and signing is repeated (with the RFC's next `k`) until
//! the DER has the fixed length the Python ESDK writes (`_ecc_static_length_signature`).
//! Verification is aws-lc's (`UnparsedPublicKey::verify_digest`, which uses no randomness).

use aws_lc_rs::agreement;
use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsBigEndian, EcPublicKeyCompressedBin};
use aws_lc_rs::signature;
use esdk_core::error::CryptoError;
use esdk_core::suite::SignatureAlg;
use zeroize::Zeroizing;

/// Everything that differs between the two curves.
pub(crate) struct Curve {
    /// The curve's ECDH algorithm: aws-lc's scalar × generator.
    base_mul: &'static agreement::Algorithm,
    verifying: &'static signature::EcdsaVerificationAlgorithm,
    digest: &'static digest::Algorithm,
    /// The group order, big-endian, `scalar_len` bytes.
    pub(crate) order: &'static [u8],
}

const P256: Curve = Curve {
    base_mul: &agreement::ECDH_P256,
    verifying: &signature::ECDSA_P256_SHA256_ASN1,
    digest: &digest::SHA256,
    order: &[
        0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63,
        0x25, 0x51,
    ],
};

const P384: Curve = Curve {
    base_mul: &agreement::ECDH_P384,
    verifying: &signature::ECDSA_P384_SHA384_ASN1,
    digest: &digest::SHA384,
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
/// Tries before giving up on a fixed-length signature. Each try succeeds with probability
/// about 1/2, so 2^-128 of failure.
const SIGN_TRIES: usize = 128;
/// Tries of key generation: a random string is below the order with probability at least
/// 1 - 2^-32 on both curves.
const KEYGEN_TRIES: usize = 64;

/// `k·G` for a scalar `k` of the curve's length (big-endian, in `[1, n-1]`), by aws-lc, as
/// the SEC1 uncompressed point `04 || x || y`.
fn base_mul(c: &Curve, k: &[u8]) -> Result<agreement::PublicKey, CryptoError> {
    agreement::PrivateKey::from_private_key(c.base_mul, k)
        .map_err(|_| CryptoError::InvalidKey)?
        .compute_public_key()
        .map_err(|_| CryptoError::InvalidKey)
}

/// Generates a key pair: a scalar from the OS into `private`, the compressed point into
/// `public`.
pub(crate) fn generate(
    alg: SignatureAlg,
    private: &mut [u8],
    public: &mut [u8],
) -> Result<(), CryptoError> {
    let c = curve(alg);
    let n = c.order.len();
    let private = private.get_mut(..n).ok_or(CryptoError::InvalidKey)?;
    let public = public
        .get_mut(..alg.public_key_len())
        .ok_or(CryptoError::InvalidKey)?;
    for _ in 0..KEYGEN_TRIES {
        crate::os_random(private)?;
        // 0 and scalars ≥ n are refused by aws-lc: draw again.
        let Ok(pk) = base_mul(c, private) else {
            continue;
        };
        let pk: EcPublicKeyCompressedBin<'static> =
            pk.as_be_bytes().map_err(|_| CryptoError::InvalidKey)?;
        let pk = pk.as_ref();
        if pk.len() != public.len() {
            return Err(CryptoError::InvalidKey);
        }
        public.copy_from_slice(pk);
        return Ok(());
    }
    private.fill(0);
    Err(CryptoError::Rng)
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
    let mut ad = Zeroizing::new([0u8; 32]);
    crate::os_random(&mut ad[..])?;
    let mut s_low = [0u8; MAX_SCALAR];
    let s_low = &mut s_low[..c.order.len()];
    let mut accept = |r: &[u8], s: &[u8]| -> Result<bool, CryptoError> {
        der::low_s(s, c.order, s_low).ok_or(CryptoError::Sign)?;
        if der::encoded_len(r, s_low) != want {
            return Ok(false);
        }
        der::write(r, s_low, out).ok_or(CryptoError::Sign)?;
        Ok(true)
    };
    match alg {
        SignatureAlg::EcdsaP256Sha256 => p256_rs::sign(c, private, digest, &ad[..], &mut accept)?,
        SignatureAlg::EcdsaP384Sha384 => p384_rs::sign(c, private, digest, &ad[..], &mut accept)?,
    }
    Ok(want)
}

/// The RFC 6979 signing loop for one curve: `$krate` the RustCrypto curve crate, `$hash`
/// the RFC's HMAC hash (the curve's message hash).
macro_rules! rfc6979_signer {
    ($m:ident, $krate:ident, $curve:ty, $hash:ty) => {
        mod $m {
            use ::$krate::elliptic_curve::ops::{Invert, Reduce};
            use ::$krate::elliptic_curve::{Curve as _, Field, PrimeField};
            use ::$krate::{FieldBytes, NonZeroScalar, Scalar};
            use esdk_core::error::CryptoError;
            use zeroize::Zeroizing;

            /// Makes signatures `(r, s)` (big-endian, `s` not normalized) of `digest` with
            /// the scalar `private`, one per RFC 6979 nonce `k` (hedged with `ad`), and
            /// passes each to `accept` until it returns `true`, at most
            /// [`super::SIGN_TRIES`] times. `InvalidKey` for a scalar not in `[1, n-1]`,
            /// `Sign` for a digest not of the curve's length.
            pub(super) fn sign(
                c: &super::Curve,
                private: &[u8],
                digest: &[u8],
                ad: &[u8],
                accept: &mut dyn FnMut(&[u8], &[u8]) -> Result<bool, CryptoError>,
            ) -> Result<(), CryptoError> {
                let repr = Zeroizing::new(
                    FieldBytes::try_from(private).map_err(|_| CryptoError::InvalidKey)?,
                );
                let d = Zeroizing::new(
                    Option::<NonZeroScalar>::from(NonZeroScalar::from_repr(*repr))
                        .ok_or(CryptoError::InvalidKey)?,
                );
                let z = FieldBytes::try_from(digest).map_err(|_| CryptoError::Sign)?;
                // Both curves' orders are as long as their hashes: bits2int(h) mod n.
                let z = <Scalar as Reduce<FieldBytes>>::reduce(&z);
                let order = <$curve>::ORDER;
                let mut kgen = rfc6979::KGenerator::<$hash, _>::new(&repr[..], digest, ad, &*order);
                for _ in 0..super::SIGN_TRIES {
                    let mut kb = Zeroizing::new(FieldBytes::default());
                    // k in [1, n-1].
                    kgen.fill_next_k(&mut kb[..]);
                    let k = Zeroizing::new(
                        Option::<NonZeroScalar>::from(NonZeroScalar::from_repr(*kb))
                            .ok_or(CryptoError::Sign)?,
                    );
                    let point = super::base_mul(c, &kb[..])?;
                    let n = private.len();
                    let x = point.as_ref().get(1..1 + n).ok_or(CryptoError::Sign)?;
                    let x = FieldBytes::try_from(x).map_err(|_| CryptoError::Sign)?;
                    let r = <Scalar as Reduce<FieldBytes>>::reduce(&x);
                    let s = *k.invert() * (z + r * *d.as_ref());
                    if bool::from(Field::is_zero(&r) | Field::is_zero(&s)) {
                        continue;
                    }
                    if accept(&r.to_repr()[..], &s.to_repr()[..])? {
                        return Ok(());
                    }
                }
                Err(CryptoError::Sign)
            }
        }
    };
}

rfc6979_signer!(p256_rs, p256, ::p256::NistP256, sha2::Sha256);
rfc6979_signer!(p384_rs, p384, ::p384::NistP384, sha2::Sha384);

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
    #[cfg(test)]
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
    #[cfg(test)]
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

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The first `(r, s)` of the signer for `msg`, unhedged (empty additional data).
    fn first_signature(alg: SignatureAlg, x: &[u8], msg: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let c = curve(alg);
        let digest = digest::digest(c.digest, msg);
        let mut got = None;
        let mut accept = |r: &[u8], s: &[u8]| {
            got = Some((r.to_vec(), s.to_vec()));
            Ok(true)
        };
        match alg {
            SignatureAlg::EcdsaP256Sha256 => {
                p256_rs::sign(c, x, digest.as_ref(), &[], &mut accept).unwrap()
            }
            SignatureAlg::EcdsaP384Sha384 => {
                p384_rs::sign(c, x, digest.as_ref(), &[], &mut accept).unwrap()
            }
        }
        got.unwrap()
    }

    /// RFC 6979 A.2.5 and A.2.6: the deterministic signatures of "sample" and "test" (the
    /// nonce, `R = k·G` by aws-lc and `s` by the scalar field together).
    #[test]
    fn rfc6979_known_answers() {
        let p256 = hex("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721");
        let p384 = hex(
            "6B9D3DAD2E1B8C1C05B19875B6659F4DE23C3B667BF297BA9AA47740787137D8
                        96D5724E4C70A825F872C9EA60D2EDF5",
        );
        let cases = [
            (
                SignatureAlg::EcdsaP256Sha256,
                &p256,
                &b"sample"[..],
                "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716",
                "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8",
            ),
            (
                SignatureAlg::EcdsaP256Sha256,
                &p256,
                b"test",
                "F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367",
                "019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083",
            ),
            (
                SignatureAlg::EcdsaP384Sha384,
                &p384,
                b"sample",
                "94EDBB92A5ECB8AAD4736E56C691916B3F88140666CE9FA73D64C4EA95AD133C
                 81A648152E44ACF96E36DD1E80FABE46",
                "99EF4AEB15F178CEA1FE40DB2603138F130E740A19624526203B6351D0A3A94F
                 A329C145786E679E7B82C71A38628AC8",
            ),
            (
                SignatureAlg::EcdsaP384Sha384,
                &p384,
                b"test",
                "8203B63D3C853E8D77227FB377BCF7B7B772E97892A80F36AB775D509D7A5FEB
                 0542A7F0812998DA8F1DD3CA3CF023DB",
                "DDD0760448D42D8A43AF45AF836FCE4DE8BE06B485E9B61B827C2F13173923E0
                 6A739F040649A667BF3B828246BAA5A5",
            ),
        ];
        for (alg, x, msg, r, s) in cases {
            assert_eq!(first_signature(alg, x, msg), (hex(r), hex(s)), "{alg:?}");
        }
    }

    /// Hedged signatures differ each time, and every one verifies (checked by aws-lc) and
    /// has the fixed length and a low S.
    #[test]
    fn hedged_signatures_verify_and_differ() {
        for alg in [SignatureAlg::EcdsaP256Sha256, SignatureAlg::EcdsaP384Sha384] {
            let (mut sk, mut pk) = ([0u8; 48], [0u8; 49]);
            let (sk, pk) = (&mut sk[..alg.scalar_len()], &mut pk[..alg.public_key_len()]);
            generate(alg, sk, pk).unwrap();
            let d = vec![7u8; alg.hash().output_len()];
            let want = alg.fixed_signature_len();
            let mut seen = Vec::new();
            for _ in 0..8 {
                let mut sig = [0u8; 104];
                assert_eq!(sign(alg, sk, &d, &mut sig), Ok(want));
                let sig = &sig[..want];
                assert_eq!(verify(alg, pk, &d, sig), Ok(true));
                let (_, s) = der::split(sig).unwrap();
                let mut low = [0u8; 48];
                let low = &mut low[..alg.scalar_len()];
                der::low_s(s, curve(alg).order, low).unwrap();
                assert_eq!(s, &low[low.len() - s.len()..], "S is not low");
                assert!(!seen.contains(&sig.to_vec()), "a signature repeated");
                seen.push(sig.to_vec());
            }
            // A digest of the wrong length is refused.
            let mut sig = [0u8; 104];
            assert_eq!(sign(alg, sk, &d[1..], &mut sig), Err(CryptoError::Sign));
        }
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
