//! The pluggable crypto provider: bulk AEAD, HKDF, the message hash and ECDSA, randomness.
//!
//! Providers are generic parameters with associated key types, not boxed trait objects,
//! so they need no heap. The pure-Rust default lives in [`crate::rustcrypto`] (feature
//! `rustcrypto`); `esdk-aws-lc` offers a faster one for servers.

use crate::error::CryptoError;
use crate::suite::{HashAlg, SignatureAlg};

/// A source of cryptographically secure random bytes.
pub trait RandomSource {
    /// Fills `out` with random bytes.
    ///
    /// # Errors
    /// [`CryptoError::Rng`] when the generator fails.
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError>;
}

impl<R: RandomSource + ?Sized> RandomSource for &R {
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        (**self).fill_random(out)
    }
}

/// Associated data delivered in pieces: called once with a sink, it passes each piece to
/// the sink in order. Lets the header tag cover the header body and the required encryption
/// context without concatenating them into a buffer.
pub type AadFeed<'a> = dyn FnMut(&mut dyn FnMut(&[u8])) + 'a;

/// The tag did not verify. Deliberately opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagMismatch;

/// An AES-GCM key with a 12-byte IV and a 16-byte tag, ready for use.
pub trait AeadKey {
    /// Encrypts `buf` in place and returns the tag.
    ///
    /// # Errors
    /// [`CryptoError::Aead`] if the provider refuses the input.
    fn seal_in_place(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; 16], CryptoError>;

    /// Verifies `tag` and decrypts `buf` in place. On failure the content of `buf` is
    /// unspecified and must not be released.
    ///
    /// # Errors
    /// [`TagMismatch`] when authentication fails.
    fn open_in_place(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), TagMismatch>;

    /// Encrypts `input` into `out` (of the same length) and returns the tag. Providers that
    /// can read and write separate buffers override this to avoid a copy; the default copies
    /// then seals in place.
    ///
    /// # Errors
    /// [`CryptoError::Aead`] when the lengths differ or the provider refuses the input.
    fn seal_to(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        input: &[u8],
        out: &mut [u8],
    ) -> Result<[u8; 16], CryptoError> {
        let out = out.get_mut(..input.len()).ok_or(CryptoError::Aead)?;
        out.copy_from_slice(input);
        self.seal_in_place(iv, aad, out)
    }

    /// Verifies `tag` and decrypts `input` into `out` (of the same length). On failure the
    /// content of `out` is unspecified and must not be released. The default copies then
    /// opens in place.
    ///
    /// # Errors
    /// [`TagMismatch`] when authentication fails or the lengths differ.
    fn open_to(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        input: &[u8],
        tag: &[u8; 16],
        out: &mut [u8],
    ) -> Result<(), TagMismatch> {
        let out = out.get_mut(..input.len()).ok_or(TagMismatch)?;
        out.copy_from_slice(input);
        self.open_in_place(iv, aad, out, tag)
    }

    /// The AES-GCM tag of an empty plaintext (a GMAC) whose associated data is everything
    /// `aad` passes to the sink it is given, in order. Used for the header tag, whose AAD
    /// is the header body followed by the serialized required encryption context.
    ///
    /// # Errors
    /// [`CryptoError::Aead`] if the provider refuses the input.
    fn gmac(&self, iv: &[u8; 12], aad: &mut AadFeed<'_>) -> Result<[u8; 16], CryptoError>;
}

/// The longest HKDF info (its pieces together) a provider must accept. The message
/// format's longest is 18 bytes (a v1 suite id and message id); a provider may refuse
/// longer ones with [`CryptoError::Unsupported`].
pub const HKDF_MAX_INFO_LEN: usize = 128;

/// One expand step of [`CryptoProvider::hkdf`]: its info and where its output goes.
#[derive(Debug)]
pub struct HkdfOutput<'a> {
    /// The info, as pieces to concatenate.
    pub info: &'a [&'a [u8]],
    /// The output keying material, filled entirely (its length is the output length).
    pub okm: &'a mut [u8],
}

impl<'a> HkdfOutput<'a> {
    /// The expand step of `info` (pieces concatenated) into `okm`.
    pub fn new(info: &'a [&'a [u8]], okm: &'a mut [u8]) -> Self {
        Self { info, okm }
    }

    /// The info's length, all pieces together.
    pub fn info_len(&self) -> usize {
        self.info.iter().map(|p| p.len()).sum()
    }
}

/// A running hash of the message bytes, for the footer signature.
pub trait MessageHasher {
    /// Absorbs `data`.
    fn update(&mut self, data: &[u8]);
    /// Writes the digest into `out` and returns its length (32 or 48).
    fn finalize_into(self, out: &mut [u8; 64]) -> usize;
}

/// Everything the message engine needs from cryptography.
pub trait CryptoProvider: RandomSource {
    /// Whether the provider makes message signatures ([`generate_signing_key`],
    /// [`sign_digest`]). A provider that never signs says `false`: an
    /// [`Encryptor`](crate::Encryptor) on it refuses the signed suites when it is created,
    /// and its signing code (the public key in the encryption context, the signature over
    /// the header and the body, the footer) is compiled out of the image, since the
    /// provider is a type parameter (2.2 KB of the telemetry probe's flash). Decryption
    /// is not affected.
    ///
    /// [`generate_signing_key`]: Self::generate_signing_key
    /// [`sign_digest`]: Self::sign_digest
    const SIGNS: bool = true;

    /// A ready AES-GCM key.
    type Aead: AeadKey;
    /// A running SHA-256 / SHA-384 state.
    type Hasher: MessageHasher;

    /// Prepares an AES-GCM key of 16, 24 or 32 bytes.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] for another length.
    fn aead_key(&self, key: &[u8]) -> Result<Self::Aead, CryptoError>;

    /// HKDF (RFC 5869) with several outputs of one pseudorandom key: extract once with
    /// `salt` (empty = zeros) and `ikm`, then expand once per entry of `outputs`, its info
    /// into its `okm`. Each output equals a separate HKDF with the same salt, IKM and its
    /// own info; the committing suites derive the content key and the commitment key this
    /// way (`framework/algorithm-suites.md` §Key Derivation, §Key Commitment), other suites
    /// take one output. The provider zeroizes the pseudorandom key before it returns; on an
    /// error the outputs' content is unspecified.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] when an output is longer than 255 hash lengths;
    /// [`CryptoError::Unsupported`] for an info longer than [`HKDF_MAX_INFO_LEN`].
    fn hkdf(
        &self,
        hash: HashAlg,
        salt: &[u8],
        ikm: &[u8],
        outputs: &mut [HkdfOutput<'_>],
    ) -> Result<(), CryptoError>;

    /// A fresh message hasher for `alg`'s hash.
    ///
    /// # Errors
    /// [`CryptoError::Unsupported`] if the provider lacks the hash.
    fn hasher(&self, alg: SignatureAlg) -> Result<Self::Hasher, CryptoError>;

    /// Generates a signing key pair: the private scalar into `private` (length
    /// [`SignatureAlg::scalar_len`]) and the compressed public point into `public` (length
    /// [`SignatureAlg::public_key_len`]).
    ///
    /// # Errors
    /// [`CryptoError::Rng`] or [`CryptoError::Unsupported`].
    fn generate_signing_key(
        &self,
        alg: SignatureAlg,
        private: &mut [u8],
        public: &mut [u8],
    ) -> Result<(), CryptoError>;

    /// Signs a digest with a private scalar and writes a DER signature of exactly
    /// [`SignatureAlg::fixed_signature_len`] bytes into `out`.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`], [`CryptoError::Sign`].
    fn sign_digest(
        &self,
        alg: SignatureAlg,
        private: &[u8],
        digest: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CryptoError>;

    /// Verifies a DER signature (any valid length, high or low S) over a digest with a
    /// compressed public point.
    ///
    /// # Errors
    /// [`CryptoError::InvalidPublicKey`] for a bad point; [`TagMismatch`]-like failure as
    /// `Ok(false)`.
    fn verify_digest(
        &self,
        alg: SignatureAlg,
        public: &[u8],
        digest: &[u8],
        sig: &[u8],
    ) -> Result<bool, CryptoError>;
}
