//! # esdk-aws-lc
//!
//! A fast [`CryptoProvider`] for the Rust AWS Encryption SDK on
//! [`aws-lc-rs`](https://docs.rs/aws-lc-rs): AES-GCM (128/192/256), HKDF (SHA-256/384/512),
//! the SHA-256/384 message hash, ECDSA P-256/P-384 over a digest, and randomness from the
//! operating system (`getrandom`). For servers and desktops; the `no_std` pure-Rust provider in
//! `esdk-core` remains the default for firmware.
//!
//! The provider is byte-compatible with the pure-Rust one: messages written by either decrypt
//! with the other, and signatures are DER of the fixed length the Python ESDK writes (71 bytes
//! for P-256, 103 for P-384) with a low S.
//!
//! ```
//! use esdk_aws_lc::DEFAULT_PROVIDER;
//! use esdk_core::{Config, EncryptOptions, decrypt, encrypt};
//! use esdk_raw::RawAesKeyring;
//!
//! let key = [7u8; 32]; // load a real key
//! let keyring = RawAesKeyring::new("my-namespace", "my-key", &key)?;
//! let cfg = Config::new();
//! let mut ec = [("purpose", "demo")];
//! let mut msg = vec![0u8; 4096];
//! let n = encrypt(&cfg, &DEFAULT_PROVIDER, &keyring, &EncryptOptions::new(), &mut ec, b"hi", &mut msg)?;
//! let mut out = vec![0u8; n];
//! let d = decrypt(&cfg, &DEFAULT_PROVIDER, &keyring, &[], &msg[..n], &mut out)?;
//! assert_eq!(&out[..d.plaintext_len], b"hi");
//! # Ok::<(), esdk_core::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod ecdsa;
#[cfg(test)]
mod tests;

#[cfg(not(feature = "openssl-sha"))]
use aws_lc_rs::digest;
use aws_lc_rs::{aead, hmac};
use esdk_core::error::CryptoError;
use esdk_core::provider::{
    AadFeed, AeadKey, CryptoProvider, HKDF_MAX_INFO_LEN, HkdfOutput, MessageHasher, RandomSource,
    TagMismatch,
};
use esdk_core::suite::{HashAlg, SignatureAlg};
use zeroize::Zeroizing;

/// The aws-lc-rs crypto provider. Stateless, `Copy`, `Send + Sync`; randomness comes from
/// the operating system (`getrandom`), never from aws-lc's DRBG, whose first use in a
/// process seeds it with CPU-jitter entropy (about 40 ms of CPU): see the `ecdsa` module
/// for how signing and key generation avoid it.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct AwsLc {
    _private: (),
}

impl AwsLc {
    /// The provider. Equivalent to [`DEFAULT_PROVIDER`].
    pub const fn new() -> Self {
        Self { _private: () }
    }
}

impl core::fmt::Debug for AwsLc {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("AwsLc")
    }
}

/// The aws-lc-rs provider, ready to pass to `esdk_core::encrypt` / `decrypt`.
pub const DEFAULT_PROVIDER: AwsLc = AwsLc::new();

/// Fills `out` from the operating system's CSPRNG.
pub(crate) fn os_random(out: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(out).map_err(|_| CryptoError::Rng)
}

impl RandomSource for AwsLc {
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        os_random(out)
    }
}

/// An AES-GCM key (128, 192 or 256 bits) held by aws-lc. `Debug` shows only the key size.
pub struct AwsLcAead {
    key: aead::LessSafeKey,
}

impl core::fmt::Debug for AwsLcAead {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AwsLcAead")
            .field("key_bits", &(self.key.algorithm().key_len() * 8))
            .finish_non_exhaustive()
    }
}

fn tag16(tag: &aead::Tag) -> Result<[u8; 16], CryptoError> {
    tag.as_ref().try_into().map_err(|_| CryptoError::Aead)
}

impl AeadKey for AwsLcAead {
    fn seal_in_place(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; 16], CryptoError> {
        let tag = self
            .key
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(*iv),
                aead::Aad::from(aad),
                buf,
            )
            .map_err(|_| CryptoError::Aead)?;
        tag16(&tag)
    }

    fn open_in_place(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), TagMismatch> {
        self.key
            .open_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(*iv),
                aead::Aad::from(aad),
                tag,
                buf,
            )
            .map(|_| ())
            .map_err(|_| TagMismatch)
    }

    fn seal_to(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        input: &[u8],
        out: &mut [u8],
    ) -> Result<[u8; 16], CryptoError> {
        let out = out.get_mut(..input.len()).ok_or(CryptoError::Aead)?;
        let mut tag = [0u8; 16];
        self.key
            .seal_out_of_place_scatter(
                aead::Nonce::assume_unique_for_key(*iv),
                aead::Aad::from(aad),
                input,
                out,
                &[],
                &mut tag,
            )
            .map_err(|_| CryptoError::Aead)?;
        Ok(tag)
    }

    fn open_to(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        input: &[u8],
        tag: &[u8; 16],
        out: &mut [u8],
    ) -> Result<(), TagMismatch> {
        let out = out.get_mut(..input.len()).ok_or(TagMismatch)?;
        self.key
            .open_separate_gather(
                aead::Nonce::assume_unique_for_key(*iv),
                aead::Aad::from(aad),
                input,
                tag,
                out,
            )
            .map_err(|_| TagMismatch)
    }

    fn gmac(&self, iv: &[u8; 12], aad: &mut AadFeed<'_>) -> Result<[u8; 16], CryptoError> {
        // aws-lc has no incremental GCM, so the pieces are joined. Header-only, once per
        // message.
        let mut joined = Vec::with_capacity(256);
        aad(&mut |part: &[u8]| joined.extend_from_slice(part));
        let tag = self
            .key
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(*iv),
                aead::Aad::from(joined.as_slice()),
                &mut [],
            )
            .map_err(|_| CryptoError::Aead)?;
        tag16(&tag)
    }
}

/// A running SHA-256 / SHA-384 of the message: in aws-lc, or with the `openssl-sha` feature
/// in the system's OpenSSL (faster on CPUs where aws-lc has no vector SHA-512 code).
pub struct AwsLcHasher {
    inner: HasherInner,
}

#[cfg(not(feature = "openssl-sha"))]
type HasherInner = digest::Context;

#[cfg(feature = "openssl-sha")]
enum HasherInner {
    Sha256(openssl::sha::Sha256),
    Sha384(openssl::sha::Sha384),
}

impl AwsLcHasher {
    #[cfg(not(feature = "openssl-sha"))]
    fn new(alg: SignatureAlg) -> Self {
        let d = match alg {
            SignatureAlg::EcdsaP256Sha256 => &digest::SHA256,
            SignatureAlg::EcdsaP384Sha384 => &digest::SHA384,
        };
        Self {
            inner: digest::Context::new(d),
        }
    }

    #[cfg(feature = "openssl-sha")]
    fn new(alg: SignatureAlg) -> Self {
        let inner = match alg {
            SignatureAlg::EcdsaP256Sha256 => HasherInner::Sha256(openssl::sha::Sha256::new()),
            SignatureAlg::EcdsaP384Sha384 => HasherInner::Sha384(openssl::sha::Sha384::new()),
        };
        Self { inner }
    }

    /// The digest length in bytes.
    #[cfg(not(feature = "openssl-sha"))]
    fn output_len(&self) -> usize {
        self.inner.algorithm().output_len()
    }

    /// The digest length in bytes.
    #[cfg(feature = "openssl-sha")]
    fn output_len(&self) -> usize {
        match self.inner {
            HasherInner::Sha256(_) => 32,
            HasherInner::Sha384(_) => 48,
        }
    }
}

impl core::fmt::Debug for AwsLcHasher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AwsLcHasher")
            .field("output_len", &self.output_len())
            .finish_non_exhaustive()
    }
}

impl MessageHasher for AwsLcHasher {
    #[cfg(not(feature = "openssl-sha"))]
    fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
    }

    #[cfg(feature = "openssl-sha")]
    fn update(&mut self, data: &[u8]) {
        match &mut self.inner {
            HasherInner::Sha256(h) => h.update(data),
            HasherInner::Sha384(h) => h.update(data),
        }
    }

    #[cfg(not(feature = "openssl-sha"))]
    fn finalize_into(self, out: &mut [u8; 64]) -> usize {
        let d = self.inner.finish();
        let d = d.as_ref();
        out[..d.len()].copy_from_slice(d);
        d.len()
    }

    #[cfg(feature = "openssl-sha")]
    fn finalize_into(self, out: &mut [u8; 64]) -> usize {
        match self.inner {
            HasherInner::Sha256(h) => {
                out[..32].copy_from_slice(&h.finish());
                32
            }
            HasherInner::Sha384(h) => {
                out[..48].copy_from_slice(&h.finish());
                48
            }
        }
    }
}

/// The longest hash output (SHA-512).
const MAX_HASH_LEN: usize = 64;

/// HKDF-Expand (RFC 5869 §2.3) of one output with the PRK's HMAC `key`: T(i) =
/// HMAC(PRK, T(i-1) | info | i), each block one aws-lc HMAC written into a zeroized buffer.
/// (aws-lc-rs's `hkdf::Prk` from `Salt::extract` would run the extract again for every
/// output, and set up the PRK's HMAC key again for every expand.) The caller checked the
/// output and info lengths.
fn hkdf_expand(
    key: &hmac::Key,
    hash_len: usize,
    out: &mut HkdfOutput<'_>,
) -> Result<(), CryptoError> {
    // `msg` holds T(i-1) right before the info and the counter, so each block's HMAC input
    // is one slice: `msg[start..=counter_at]`, T(0) being empty.
    let mut msg = Zeroizing::new([0u8; MAX_HASH_LEN + HKDF_MAX_INFO_LEN + 1]);
    let mut counter_at = MAX_HASH_LEN;
    for piece in out.info {
        msg.get_mut(counter_at..counter_at + piece.len())
            .ok_or(CryptoError::Unsupported)?
            .copy_from_slice(piece);
        counter_at += piece.len();
    }
    let mut start = MAX_HASH_LEN;
    let mut block = Zeroizing::new([0u8; MAX_HASH_LEN]);
    for (i, chunk) in out.okm.chunks_mut(hash_len).enumerate() {
        msg[counter_at] = u8::try_from(i + 1).map_err(|_| CryptoError::InvalidKey)?;
        let t = hmac::sign_to_buffer(key, &msg[start..=counter_at], &mut block[..])
            .map_err(|_| CryptoError::InvalidKey)?;
        chunk.copy_from_slice(&t[..chunk.len()]);
        start = MAX_HASH_LEN - hash_len;
        msg[start..MAX_HASH_LEN].copy_from_slice(t);
    }
    Ok(())
}

impl CryptoProvider for AwsLc {
    type Aead = AwsLcAead;
    type Hasher = AwsLcHasher;

    fn aead_key(&self, key: &[u8]) -> Result<Self::Aead, CryptoError> {
        let alg = match key.len() {
            16 => &aead::AES_128_GCM,
            24 => &aead::AES_192_GCM,
            32 => &aead::AES_256_GCM,
            _ => return Err(CryptoError::InvalidKey),
        };
        let key = aead::UnboundKey::new(alg, key).map_err(|_| CryptoError::InvalidKey)?;
        Ok(AwsLcAead {
            key: aead::LessSafeKey::new(key),
        })
    }

    fn hkdf(
        &self,
        hash: HashAlg,
        salt: &[u8],
        ikm: &[u8],
        outputs: &mut [HkdfOutput<'_>],
    ) -> Result<(), CryptoError> {
        let alg = match hash {
            HashAlg::Sha256 => hmac::HMAC_SHA256,
            HashAlg::Sha384 => hmac::HMAC_SHA384,
            HashAlg::Sha512 => hmac::HMAC_SHA512,
        };
        let hash_len = hash.output_len();
        if outputs.iter().any(|o| o.okm.len() > 255 * hash_len) {
            return Err(CryptoError::InvalidKey);
        }
        if outputs.iter().any(|o| o.info_len() > HKDF_MAX_INFO_LEN) {
            return Err(CryptoError::Unsupported);
        }
        // Extract: PRK = HMAC(salt, IKM). An empty salt is HMAC with an empty key, which HMAC
        // pads with zeros: the same as RFC 5869's "string of HashLen zeros".
        let mut prk_buf = Zeroizing::new([0u8; MAX_HASH_LEN]);
        let prk = hmac::sign_to_buffer(&hmac::Key::new(alg, salt), ikm, &mut prk_buf[..])
            .map_err(|_| CryptoError::InvalidKey)?;
        // The PRK as an HMAC key: its pad states computed once for every output block (aws-lc
        // cleanses them when the key drops; the PRK's buffer is zeroized on return).
        let key = hmac::Key::new(alg, prk);
        outputs
            .iter_mut()
            .try_for_each(|o| hkdf_expand(&key, hash_len, o))
    }

    fn hasher(&self, alg: SignatureAlg) -> Result<Self::Hasher, CryptoError> {
        Ok(AwsLcHasher::new(alg))
    }

    fn generate_signing_key(
        &self,
        alg: SignatureAlg,
        private: &mut [u8],
        public: &mut [u8],
    ) -> Result<(), CryptoError> {
        ecdsa::generate(alg, private, public)
    }

    fn sign_digest(
        &self,
        alg: SignatureAlg,
        private: &[u8],
        digest: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CryptoError> {
        ecdsa::sign(alg, private, digest, out)
    }

    fn verify_digest(
        &self,
        alg: SignatureAlg,
        public: &[u8],
        digest: &[u8],
        sig: &[u8],
    ) -> Result<bool, CryptoError> {
        ecdsa::verify(alg, public, digest, sig)
    }
}
