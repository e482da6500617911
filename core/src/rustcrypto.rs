//! The pure-Rust default provider on RustCrypto: aes (AES-GCM from aes, ctr and ghash),
//! HKDF on sha2, p256, p384.
//! no_std, no allocation. Randomness comes from a caller-supplied [`RandomSource`]; wrap a
//! `rand_core` generator in [`RngCell`].

use core::cell::RefCell;

use sha2::Digest;
use zeroize::Zeroize;

use crate::error::CryptoError;
pub use crate::gcm::AesGcmKey;
use crate::provider::{
    AadFeed, AeadKey, CryptoProvider, HkdfOutput, MessageHasher, RandomSource, TagMismatch,
};
use crate::suite::{HashAlg, SignatureAlg};

/// The pure-Rust provider, generic over its source of randomness.
#[derive(Debug, Clone, Copy, Default)]
pub struct RustCrypto<R> {
    rng: R,
}

impl<R: RandomSource> RustCrypto<R> {
    /// A provider drawing randomness from `rng`.
    pub const fn new(rng: R) -> Self {
        Self { rng }
    }
}

/// Adapts a `rand_core` cryptographic generator (which needs `&mut`) to [`RandomSource`]
/// (which takes `&self`) through a `RefCell`. Not `Sync`: one per thread or task.
#[derive(Debug)]
pub struct RngCell<G>(RefCell<G>);

impl<G: rand_core::TryCryptoRng> RngCell<G> {
    /// Wraps `rng`.
    pub const fn new(rng: G) -> Self {
        Self(RefCell::new(rng))
    }
}

impl<G: rand_core::TryCryptoRng> RandomSource for RngCell<G> {
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        let mut g = self.0.try_borrow_mut().map_err(|_| CryptoError::Rng)?;
        g.try_fill_bytes(out).map_err(|_| CryptoError::Rng)
    }
}

impl<R: RandomSource> RandomSource for RustCrypto<R> {
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        self.rng.fill_random(out)
    }
}

/// An expanded AES-GCM key of the pure-Rust provider: one [`AesGcmKey`] per AES key size.
// Variants differ in size by their key schedules; boxing is not an option without a heap.
#[allow(clippy::large_enum_variant)]
pub enum RustCryptoAead {
    /// AES-128-GCM.
    A128(AesGcmKey<aes::Aes128>),
    /// AES-192-GCM.
    A192(AesGcmKey<aes::Aes192>),
    /// AES-256-GCM.
    A256(AesGcmKey<aes::Aes256>),
}

impl core::fmt::Debug for RustCryptoAead {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("RustCryptoAead(<redacted>)")
    }
}

macro_rules! each_aead {
    ($self:expr, $k:ident => $body:expr) => {
        match $self {
            RustCryptoAead::A128($k) => $body,
            RustCryptoAead::A192($k) => $body,
            RustCryptoAead::A256($k) => $body,
        }
    };
}

impl AeadKey for RustCryptoAead {
    fn seal_in_place(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; 16], CryptoError> {
        each_aead!(self, k => k.seal_in_place(iv, aad, buf))
    }

    fn open_in_place(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), TagMismatch> {
        each_aead!(self, k => k.open_in_place(iv, aad, buf, tag))
    }

    fn seal_to(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        input: &[u8],
        out: &mut [u8],
    ) -> Result<[u8; 16], CryptoError> {
        each_aead!(self, k => k.seal_to(iv, aad, input, out))
    }

    fn open_to(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        input: &[u8],
        tag: &[u8; 16],
        out: &mut [u8],
    ) -> Result<(), TagMismatch> {
        each_aead!(self, k => k.open_to(iv, aad, input, tag, out))
    }

    fn gmac(&self, iv: &[u8; 12], aad: &mut AadFeed<'_>) -> Result<[u8; 16], CryptoError> {
        each_aead!(self, k => AeadKey::gmac(k, iv, aad))
    }
}

/// Running SHA-256 / SHA-384 of the pure-Rust provider.
#[derive(Clone)]
pub enum RustCryptoHasher {
    /// SHA-256.
    Sha256(sha2::Sha256),
    /// SHA-384.
    Sha384(sha2::Sha384),
}

impl MessageHasher for RustCryptoHasher {
    fn update(&mut self, data: &[u8]) {
        match self {
            RustCryptoHasher::Sha256(h) => h.update(data),
            RustCryptoHasher::Sha384(h) => h.update(data),
        }
    }
    fn finalize_into(self, out: &mut [u8; 64]) -> usize {
        match self {
            RustCryptoHasher::Sha256(h) => {
                out[..32].copy_from_slice(&h.finalize());
                32
            }
            RustCryptoHasher::Sha384(h) => {
                out[..48].copy_from_slice(&h.finalize());
                48
            }
        }
    }
}

/// HKDF with `H` (RFC 5869): one extract, then every output expanded from the same
/// pseudorandom key. Built on the hash alone, one HMAC at a time in a frame of its own
/// ([`hmac_into`]): one hash state and one padded key block on the stack, never a keyed HMAC
/// state copied or cloned (firmware stacks: HKDF-SHA512 through the `hkdf` crate took about
/// 3.4 KB of a Cortex-M stack, this about half). Each expand block keys its HMAC afresh
/// (two more compression calls per output than a cached keyed state: once per message).
/// The pseudorandom key and the blocks are zeroized here, the hash states on drop (`sha2`'s
/// `zeroize` feature).
fn hkdf_with<H>(salt: &[u8], ikm: &[u8], outputs: &mut [HkdfOutput<'_>]) -> Result<(), CryptoError>
where
    H: Digest + sha2::digest::block_api::BlockSizeUser + sha2::digest::FixedOutputReset,
{
    // An empty salt is HashLen zero bytes (RFC 5869 §2.2): as an HMAC key, padded with
    // zeros to the block, the same as no key at all.
    let mut prk = sha2::digest::Output::<H>::default();
    hmac_into::<H>(salt, &mut prk, 0, &[ikm], &[]);
    let r = outputs
        .iter_mut()
        .try_for_each(|o| hkdf_expand::<H>(&prk, o));
    prk.as_mut_slice().zeroize();
    r
}

/// One HKDF expand of `prk` into `o.okm`: T(i) = HMAC(prk, T(i-1) | info | i).
#[inline(never)]
fn hkdf_expand<H>(prk: &[u8], o: &mut HkdfOutput<'_>) -> Result<(), CryptoError>
where
    H: Digest + sha2::digest::block_api::BlockSizeUser + sha2::digest::FixedOutputReset,
{
    let hash_len = <H as Digest>::output_size();
    if o.okm.len() > 255 * hash_len {
        return Err(CryptoError::InvalidKey);
    }
    let mut t = sha2::digest::Output::<H>::default();
    let mut t_len = 0;
    for (i, chunk) in o.okm.chunks_mut(hash_len).enumerate() {
        let counter = [(i + 1) as u8];
        hmac_into::<H>(prk, &mut t, t_len, o.info, &counter);
        chunk.copy_from_slice(&t[..chunk.len()]);
        t_len = hash_len;
    }
    t.as_mut_slice().zeroize();
    Ok(())
}

/// HMAC-H (RFC 2104) under `key` of `chain[..chain_len]`, the `parts` and `last`
/// concatenated, into `chain` (HKDF's T(i-1) in, T(i) out). Never inlined: its hash state
/// and padded key are the only HMAC state on the stack, and gone when it returns.
#[inline(never)]
fn hmac_into<H>(
    key: &[u8],
    chain: &mut sha2::digest::Output<H>,
    chain_len: usize,
    parts: &[&[u8]],
    last: &[u8],
) where
    H: Digest + sha2::digest::block_api::BlockSizeUser + sha2::digest::FixedOutputReset,
{
    const IPAD: u8 = 0x36;
    const OPAD: u8 = 0x5C;
    let mut pad = sha2::digest::block_api::Block::<H>::default();
    let mut h = H::new();
    if key.len() > pad.len() {
        // A key longer than the block is its hash.
        Digest::update(&mut h, key);
        let mut digest = h.finalize_reset();
        pad[..digest.len()].copy_from_slice(&digest);
        digest.as_mut_slice().zeroize();
    } else {
        pad[..key.len()].copy_from_slice(key);
    }
    pad.iter_mut().for_each(|b| *b ^= IPAD);
    Digest::update(&mut h, &pad);
    Digest::update(&mut h, chain.get(..chain_len).unwrap_or_default());
    for p in parts {
        Digest::update(&mut h, p);
    }
    Digest::update(&mut h, last);
    sha2::digest::FixedOutputReset::finalize_into_reset(&mut h, chain);
    pad.iter_mut().for_each(|b| *b ^= IPAD ^ OPAD);
    Digest::update(&mut h, &pad);
    Digest::update(&mut h, &*chain);
    pad.as_mut_slice().zeroize();
    sha2::digest::FixedOutputReset::finalize_into_reset(&mut h, chain);
}

/// Writes `der` into `out` when it has the fixed length; returns whether it did.
fn take_fixed(der: &[u8], want: usize, out: &mut [u8]) -> Result<bool, CryptoError> {
    if der.len() != want {
        return Ok(false);
    }
    out.get_mut(..want)
        .ok_or(CryptoError::Sign)?
        .copy_from_slice(der);
    Ok(true)
}

macro_rules! ecdsa_ops {
    ($m:ident, $krate:ident, $curve:ty, $hash:ty) => {
        pub(crate) mod $m {
            use super::*;
            use ::$krate::ecdsa::{Signature, SigningKey, VerifyingKey};
            use ::$krate::elliptic_curve::sec1::ToSec1Point;

            // Never inlined (as `sign`): the scalar multiplication's tables stay in frames
            // of their own, not in the engine's.
            #[inline(never)]
            pub(crate) fn generate(
                rng: &dyn RandomSource,
                private: &mut [u8],
                public: &mut [u8],
            ) -> Result<(), CryptoError> {
                // Rejection sampling: a random string is a valid scalar with overwhelming
                // probability; retry otherwise.
                for _ in 0..64 {
                    rng.fill_random(private)?;
                    if let Ok(sk) = SigningKey::from_slice(private) {
                        let point = sk.verifying_key().as_affine().to_sec1_point(true);
                        let bytes = point.as_bytes();
                        public
                            .get_mut(..bytes.len())
                            .ok_or(CryptoError::InvalidKey)?
                            .copy_from_slice(bytes);
                        return Ok(());
                    }
                }
                Err(CryptoError::Rng)
            }

            #[inline(never)]
            pub(crate) fn sign(
                rng: &dyn RandomSource,
                private: &[u8],
                digest: &[u8],
                want: usize,
                out: &mut [u8],
            ) -> Result<usize, CryptoError> {
                let sk = SigningKey::from_slice(private).map_err(|_| CryptoError::InvalidKey)?;
                // Hedged RFC 6979 (fresh additional data each try), low S, retried until the
                // DER length is the fixed one, as the Python ESDK does.
                for _ in 0..256 {
                    let mut ad = [0u8; 32];
                    rng.fill_random(&mut ad)?;
                    let (sig, _) = ecdsa::hazmat::sign_prehashed_rfc6979::<$curve, $hash>(
                        sk.as_nonzero_scalar(),
                        digest,
                        &ad,
                    );
                    let sig: Signature = sig.normalize_s();
                    if take_fixed(sig.to_der().as_bytes(), want, out)? {
                        return Ok(want);
                    }
                }
                Err(CryptoError::Sign)
            }

            // In three steps none of which is inlined, so the frames of the point
            // decompression, the DER parsing and the curve arithmetic (the latter's
            // tables are kilobytes on P-384) are never on the stack at once, nor in the
            // decryptor's frame.
            pub(crate) fn verify(public: &[u8], digest: &[u8], sig: &[u8]) -> Result<bool, CryptoError> {
                let vk = parse_public(public)?;
                let Some(sig) = parse_signature(sig) else {
                    return Ok(false);
                };
                Ok(verify_parsed(&vk, digest, &sig))
            }

            #[inline(never)]
            fn parse_public(public: &[u8]) -> Result<VerifyingKey, CryptoError> {
                VerifyingKey::from_sec1_bytes(public).map_err(|_| CryptoError::InvalidPublicKey)
            }

            #[inline(never)]
            fn parse_signature(sig: &[u8]) -> Option<Signature> {
                Signature::from_der(sig).ok()
            }

            /// ECDSA verification (SEC 1 v2 section 4.1.4) in the steps of
            /// `ecdsa::hazmat::verify_prehashed`, except that `u1·G + u2·Q` is two scalar
            /// multiplications added (not a joint one) and that each step is a function of its
            /// own: inlined together, the steps' frames added up to over 6 KB of stack on a
            /// Cortex-M4. (Public inputs only: nothing here needs to be constant-time.)
            /// The digest is the suite's hash, as long as the curve's order, so it is reduced
            /// whole (what `bits2field` does at that length).
            #[inline(never)]
            fn verify_parsed(vk: &VerifyingKey, digest: &[u8], sig: &Signature) -> bool {
                let Some((u1, u2)) = verify_scalars(digest, sig) else {
                    return false;
                };
                let point = verify_combine(vk, &u1, &u2);
                verify_x(&point, sig)
            }

            /// `u1 = z/s` and `u2 = r/s` (mod n); `None` for a digest of another length.
            #[inline(never)]
            fn verify_scalars(digest: &[u8], sig: &Signature) -> Option<(::$krate::Scalar, ::$krate::Scalar)> {
                use ::$krate::elliptic_curve::ops::{Invert, Reduce};
                use ::$krate::{FieldBytes, Scalar};
                let z = <&FieldBytes>::try_from(digest).ok()?;
                let (r, s) = sig.split_scalars();
                let z = <Scalar as Reduce<FieldBytes>>::reduce(z);
                let s_inv = *s.invert_vartime();
                Some((z * s_inv, *r * s_inv))
            }

            /// `u1·G + u2·Q`, as two multiplications in frames of their own: a joint
            /// `lincomb` keeps both points' tables (and its temporaries) live at once, over
            /// 6 KB of stack on a Cortex-M4 for P-384.
            #[inline(never)]
            fn verify_combine(vk: &VerifyingKey, u1: &::$krate::Scalar, u2: &::$krate::Scalar) -> ::$krate::ProjectivePoint {
                verify_mul_generator(u1) + verify_mul_point(vk, u2)
            }

            #[inline(never)]
            fn verify_mul_generator(u1: &::$krate::Scalar) -> ::$krate::ProjectivePoint {
                use ::$krate::elliptic_curve::group::Group;
                ::$krate::ProjectivePoint::mul_by_generator(u1)
            }

            #[inline(never)]
            fn verify_mul_point(vk: &VerifyingKey, u2: &::$krate::Scalar) -> ::$krate::ProjectivePoint {
                ::$krate::ProjectivePoint::from(*vk.as_affine()) * u2
            }

            /// Whether the point's affine x, reduced mod n, is the signature's `r` (false for
            /// the identity, whose affine form has no x of its own: `to_affine` gives (0, 0),
            /// and `r` is never 0).
            #[inline(never)]
            fn verify_x(point: &::$krate::ProjectivePoint, sig: &Signature) -> bool {
                use ::$krate::elliptic_curve::ops::Reduce;
                use ::$krate::elliptic_curve::point::AffineCoordinates;
                use ::$krate::{FieldBytes, Scalar};
                let x = point.to_affine().x();
                let (r, _) = sig.split_scalars();
                *r == <Scalar as Reduce<FieldBytes>>::reduce(&x)
            }
        }
    };
}

ecdsa_ops!(ecdsa_p256, p256, ::p256::NistP256, sha2::Sha256);
ecdsa_ops!(ecdsa_p384, p384, ::p384::NistP384, sha2::Sha384);

impl<R: RandomSource> CryptoProvider for RustCrypto<R> {
    type Aead = RustCryptoAead;
    type Hasher = RustCryptoHasher;

    fn aead_key(&self, key: &[u8]) -> Result<Self::Aead, CryptoError> {
        // `new` on arrays rather than `new_from_slice`: no `Result` around each key
        // schedule, so no copies of them on the stack (firmware).
        let bad = |_| CryptoError::InvalidKey;
        Ok(match key.len() {
            16 => RustCryptoAead::A128(AesGcmKey::new(
                <&[u8; 16]>::try_from(key).map_err(bad)?.into(),
            )),
            24 => RustCryptoAead::A192(AesGcmKey::new(
                <&[u8; 24]>::try_from(key).map_err(bad)?.into(),
            )),
            32 => RustCryptoAead::A256(AesGcmKey::new(
                <&[u8; 32]>::try_from(key).map_err(bad)?.into(),
            )),
            _ => return Err(CryptoError::InvalidKey),
        })
    }

    fn hkdf(
        &self,
        hash: HashAlg,
        salt: &[u8],
        ikm: &[u8],
        outputs: &mut [HkdfOutput<'_>],
    ) -> Result<(), CryptoError> {
        match hash {
            HashAlg::Sha256 => hkdf_with::<sha2::Sha256>(salt, ikm, outputs),
            HashAlg::Sha384 => hkdf_with::<sha2::Sha384>(salt, ikm, outputs),
            HashAlg::Sha512 => hkdf_with::<sha2::Sha512>(salt, ikm, outputs),
        }
    }

    fn hasher(&self, alg: SignatureAlg) -> Result<Self::Hasher, CryptoError> {
        Ok(match alg {
            SignatureAlg::EcdsaP256Sha256 => RustCryptoHasher::Sha256(sha2::Sha256::new()),
            SignatureAlg::EcdsaP384Sha384 => RustCryptoHasher::Sha384(sha2::Sha384::new()),
        })
    }

    fn generate_signing_key(
        &self,
        alg: SignatureAlg,
        private: &mut [u8],
        public: &mut [u8],
    ) -> Result<(), CryptoError> {
        match alg {
            SignatureAlg::EcdsaP256Sha256 => ecdsa_p256::generate(&self.rng, private, public),
            SignatureAlg::EcdsaP384Sha384 => ecdsa_p384::generate(&self.rng, private, public),
        }
    }

    fn sign_digest(
        &self,
        alg: SignatureAlg,
        private: &[u8],
        digest: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CryptoError> {
        let want = alg.fixed_signature_len();
        match alg {
            SignatureAlg::EcdsaP256Sha256 => {
                ecdsa_p256::sign(&self.rng, private, digest, want, out)
            }
            SignatureAlg::EcdsaP384Sha384 => {
                ecdsa_p384::sign(&self.rng, private, digest, want, out)
            }
        }
    }

    fn verify_digest(
        &self,
        alg: SignatureAlg,
        public: &[u8],
        digest: &[u8],
        sig: &[u8],
    ) -> Result<bool, CryptoError> {
        match alg {
            SignatureAlg::EcdsaP256Sha256 => ecdsa_p256::verify(public, digest, sig),
            SignatureAlg::EcdsaP384Sha384 => ecdsa_p384::verify(public, digest, sig),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash-only HKDF equals the `hkdf` crate's for every hash, for salts empty, short
    /// and longer than a block, infos in pieces, and outputs of one byte to several blocks
    /// (and refuses more than 255 blocks).
    #[test]
    fn hkdf_equals_the_hkdf_crate() {
        fn check<H>(salt: &[u8], ikm: &[u8], info: &[&[u8]], len: usize)
        where
            H: Digest
                + sha2::digest::block_api::BlockSizeUser
                + sha2::digest::FixedOutputReset
                + hkdf::hmac::EagerHash
                + Clone,
            <H as hkdf::hmac::EagerHash>::Core: Sync,
        {
            let mut got = [0u8; 200];
            let mut want = [0u8; 200];
            let mut outs = [HkdfOutput::new(info, &mut got[..len])];
            hkdf_with::<H>(salt, ikm, &mut outs).unwrap();
            let s = if salt.is_empty() { None } else { Some(salt) };
            hkdf::Hkdf::<H>::new(s, ikm)
                .expand_multi_info(info, &mut want[..len])
                .unwrap();
            assert_eq!(got[..len], want[..len], "salt {} len {len}", salt.len());
        }
        let long = [0xA5u8; 200];
        for salt in [
            &long[..0],
            &long[..16],
            &long[..64],
            &long[..129],
            &long[..200],
        ] {
            for len in [1, 32, 48, 64, 65, 129, 200] {
                let info: &[&[u8]] = &[b"\x04\x78", b"DERIVEKEY"];
                check::<sha2::Sha256>(salt, &long[..32], info, len);
                check::<sha2::Sha384>(salt, &long[..24], info, len);
                check::<sha2::Sha512>(salt, &long[..32], info, len);
            }
        }
        let mut big = [0u8; 255 * 32 + 1];
        let mut outs = [HkdfOutput::new(&[], &mut big)];
        assert!(hkdf_with::<sha2::Sha256>(&[], &[1], &mut outs).is_err());
    }

    /// A deterministic generator for tests only.
    pub(crate) struct Counter(core::cell::Cell<u64>);
    impl RandomSource for Counter {
        fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
            for b in out {
                // xorshift64: deterministic, long period; for tests only.
                let mut x = self.0.get() | 1;
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                self.0.set(x);
                *b = (x >> 24) as u8;
            }
            Ok(())
        }
    }

    fn unhex(s: &str) -> [u8; 64] {
        let mut out = [0u8; 64];
        for (i, pair) in s.as_bytes().chunks(2).enumerate() {
            let d = |c: u8| (c as char).to_digit(16).unwrap() as u8;
            out[i] = d(pair[0]) << 4 | d(pair[1]);
        }
        out
    }

    /// The AES-256 case of the GCM specification's test vectors (McGrew and Viega, test
    /// case 16: 60-byte plaintext, 20-byte associated data).
    #[test]
    fn aes_gcm_known_answer() {
        let key = unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
        let iv: [u8; 12] = unhex("cafebabefacedbaddecaf888")[..12].try_into().unwrap();
        let pt = unhex(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
             1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        );
        let aad = unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let ct = unhex(
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa\
             8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
        );
        let tag = unhex("76fc6ece0f4e1768cddf8853bb2d551b");
        let k = AesGcmKey::<aes::Aes256>::new((&key[..32]).try_into().unwrap());
        let mut buf = [0u8; 60];
        buf.copy_from_slice(&pt[..60]);
        let t = k.seal_in_place(&iv, &aad[..20], &mut buf).unwrap();
        assert_eq!(buf, ct[..60]);
        assert_eq!(t, tag[..16]);
        k.open_in_place(&iv, &aad[..20], &mut buf, &t).unwrap();
        assert_eq!(buf, pt[..60]);
    }

    /// Every key size, plaintext lengths across the block and parallel-block boundaries and
    /// associated data of several lengths: the same ciphertext and tag as the `aes-gcm`
    /// crate; a flipped tag or ciphertext bit is refused and leaves the buffer as it was.
    #[test]
    fn aes_gcm_matches_the_aes_gcm_crate() {
        use aes_gcm::aead::{AeadInOut, KeyInit as _};
        let p = RustCrypto::new(Counter(core::cell::Cell::new(5)));
        let mut checked = 0;
        for key_len in [16usize, 24, 32] {
            let mut key = [0u8; 32];
            p.fill_random(&mut key).unwrap();
            let ours = p.aead_key(&key[..key_len]).unwrap();
            for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 130, 257] {
                for aad_len in [0usize, 1, 16, 20, 49] {
                    let mut iv = [0u8; 12];
                    let mut pt = [0u8; 257];
                    let mut aad = [0u8; 49];
                    p.fill_random(&mut iv).unwrap();
                    p.fill_random(&mut pt[..len]).unwrap();
                    p.fill_random(&mut aad[..aad_len]).unwrap();
                    let (aad, pt) = (&aad[..aad_len], &pt[..len]);
                    let mut theirs = [0u8; 257];
                    theirs[..len].copy_from_slice(pt);
                    let their_tag = match key_len {
                        16 => aes_gcm::Aes128Gcm::new_from_slice(&key[..16])
                            .unwrap()
                            .encrypt_inout_detached((&iv).into(), aad, (&mut theirs[..len]).into()),
                        24 => aes_gcm::AesGcm::<aes::Aes192, aes_gcm::aead::consts::U12>::new_from_slice(&key[..24])
                            .unwrap()
                            .encrypt_inout_detached((&iv).into(), aad, (&mut theirs[..len]).into()),
                        _ => aes_gcm::Aes256Gcm::new_from_slice(&key[..32])
                            .unwrap()
                            .encrypt_inout_detached((&iv).into(), aad, (&mut theirs[..len]).into()),
                    }
                    .unwrap();
                    let mut buf = [0u8; 257];
                    let tag = ours.seal_to(&iv, aad, pt, &mut buf[..len]).unwrap();
                    assert_eq!(
                        buf[..len],
                        theirs[..len],
                        "key {key_len} len {len} aad {aad_len}"
                    );
                    assert_eq!(
                        tag[..],
                        their_tag[..],
                        "key {key_len} len {len} aad {aad_len}"
                    );
                    assert_eq!(ours.gmac(&iv, &mut |s| s(aad)).unwrap(), {
                        let mut empty = [0u8; 0];
                        ours.seal_in_place(&iv, aad, &mut empty).unwrap()
                    });
                    let mut bad = tag;
                    bad[15] ^= 1;
                    assert!(ours.open_in_place(&iv, aad, &mut buf[..len], &bad).is_err());
                    assert_eq!(
                        buf[..len],
                        theirs[..len],
                        "a refused open changed the buffer"
                    );
                    if len > 0 {
                        buf[0] ^= 0x80;
                        assert!(ours.open_in_place(&iv, aad, &mut buf[..len], &tag).is_err());
                        buf[0] ^= 0x80;
                    }
                    let mut back = [0u8; 257];
                    ours.open_to(&iv, aad, &buf[..len], &tag, &mut back[..len])
                        .unwrap();
                    assert_eq!(&back[..len], pt);
                    ours.open_in_place(&iv, aad, &mut buf[..len], &tag).unwrap();
                    assert_eq!(&buf[..len], pt);
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 3 * 13 * 5);
    }

    #[test]
    fn gmac_matches_gcm_with_empty_plaintext() {
        let p = RustCrypto::new(Counter(core::cell::Cell::new(1)));
        for len in [16usize, 24, 32] {
            let key = [7u8; 32];
            let k = p.aead_key(&key[..len]).unwrap();
            let aad = [3u8; 77];
            let iv = [9u8; 12];
            let whole = k.seal_in_place(&iv, &aad, &mut []).unwrap();
            assert_eq!(k.gmac(&iv, &mut |s| s(&aad)).unwrap(), whole);
            let split = |s: &mut dyn FnMut(&[u8])| {
                s(&aad[..5]);
                s(&aad[5..40]);
                s(&[]);
                s(&aad[40..]);
            };
            assert_eq!(k.gmac(&iv, &mut { split }).unwrap(), whole);
        }
    }

    #[test]
    fn signatures_are_fixed_length_and_verify() {
        let p = RustCrypto::new(Counter(core::cell::Cell::new(3)));
        for alg in [SignatureAlg::EcdsaP256Sha256, SignatureAlg::EcdsaP384Sha384] {
            let mut sk = [0u8; 48];
            let mut pk = [0u8; 49];
            let (sk, pk) = (&mut sk[..alg.scalar_len()], &mut pk[..alg.public_key_len()]);
            p.generate_signing_key(alg, sk, pk).unwrap();
            let digest = [5u8; 48];
            let digest = &digest[..alg.hash().output_len()];
            for _ in 0..4 {
                let mut sig = [0u8; 104];
                let n = p.sign_digest(alg, sk, digest, &mut sig).unwrap();
                assert_eq!(n, alg.fixed_signature_len());
                assert!(p.verify_digest(alg, pk, digest, &sig[..n]).unwrap());
                // Another digest, a digest of another length: refused, no panic.
                let mut other = [5u8; 48];
                other[0] ^= 1;
                let other = &other[..digest.len()];
                assert!(!p.verify_digest(alg, pk, other, &sig[..n]).unwrap());
                let short = &digest[..digest.len() - 1];
                assert!(!p.verify_digest(alg, pk, short, &sig[..n]).unwrap());
                sig[10] ^= 1;
                assert!(!p.verify_digest(alg, pk, digest, &sig[..n]).unwrap());
            }
            // Another key's public key: refused.
            let (mut sk2, mut pk2) = ([0u8; 48], [0u8; 49]);
            let pk2 = &mut pk2[..alg.public_key_len()];
            p.generate_signing_key(alg, &mut sk2[..alg.scalar_len()], pk2)
                .unwrap();
            let mut sig = [0u8; 104];
            let n = p.sign_digest(alg, sk, digest, &mut sig).unwrap();
            assert!(p.verify_digest(alg, pk, digest, &sig[..n]).unwrap());
            assert!(!p.verify_digest(alg, pk2, digest, &sig[..n]).unwrap());
        }
    }
}
