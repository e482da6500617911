//! The message signature of signing suites: the per-message ECDSA key pair, its public key
//! as stored in the encryption context, and the footer (spec `data-format/message-footer.md`,
//! `framework/algorithm-suites.md` §Signature Algorithm).
//!
//! The key pair is made once per message, normally by the engine through the
//! [`CryptoProvider`]; a CMM that caches materials supplies the cached one instead
//! ([`CryptoMaterialsManager::encryption_signing_key`](crate::CryptoMaterialsManager::encryption_signing_key)),
//! because its public key is part of the encryption context the cached data key is bound to.

use core::fmt;

use base64ct::{Base64, Encoding};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{AuthFailure, CryptoError, Error, Malformed};
use crate::provider::{CryptoProvider, MessageHasher};
use crate::suite::SignatureAlg;

/// Longest private scalar (P-384).
const MAX_SCALAR: usize = 48;
/// Longest compressed public point (P-384).
const MAX_PUBLIC: usize = 49;
/// Longest base64 text of a compressed public point (P-384: 68).
pub(crate) const MAX_PUBLIC_TEXT: usize = 68;

/// A message signing key pair: the private scalar and the compressed public point.
///
/// Zeroized on drop; `Debug` shows the algorithm and the public key only. `Clone` exists for
/// caches that hand the same materials to several messages.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SigningKey {
    #[zeroize(skip)]
    alg: SignatureAlg,
    private: [u8; MAX_SCALAR],
    public: [u8; MAX_PUBLIC],
}

impl SigningKey {
    /// A fresh key pair for `alg` from the provider's key generation.
    ///
    /// # Errors
    /// [`CryptoError::Rng`] or [`CryptoError::Unsupported`] from the provider.
    pub fn generate<P: CryptoProvider + ?Sized>(
        provider: &P,
        alg: SignatureAlg,
    ) -> Result<Self, Error> {
        let mut key = Self {
            alg,
            private: [0; MAX_SCALAR],
            public: [0; MAX_PUBLIC],
        };
        provider.generate_signing_key(
            alg,
            &mut key.private[..alg.scalar_len()],
            &mut key.public[..alg.public_key_len()],
        )?;
        Ok(key)
    }

    /// A key pair from its parts (a private scalar of [`SignatureAlg::scalar_len`] bytes and
    /// the matching compressed public point of [`SignatureAlg::public_key_len`] bytes). The
    /// pair is not checked for consistency: a mismatched pair makes messages whose
    /// signature does not verify.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] when a length is wrong.
    pub fn from_parts(alg: SignatureAlg, private: &[u8], public: &[u8]) -> Result<Self, Error> {
        if private.len() != alg.scalar_len() || public.len() != alg.public_key_len() {
            return Err(CryptoError::InvalidKey.into());
        }
        let mut key = Self {
            alg,
            private: [0; MAX_SCALAR],
            public: [0; MAX_PUBLIC],
        };
        key.private[..private.len()].copy_from_slice(private);
        key.public[..public.len()].copy_from_slice(public);
        Ok(key)
    }

    /// The signature algorithm.
    pub fn algorithm(&self) -> SignatureAlg {
        self.alg
    }

    /// The compressed public point.
    pub fn public_key(&self) -> &[u8] {
        &self.public[..self.alg.public_key_len()]
    }

    /// The private scalar, for a provider's `sign_digest`.
    pub fn private_scalar(&self) -> &[u8] {
        &self.private[..self.alg.scalar_len()]
    }

    /// The public key as the encryption context stores it (base64).
    pub fn public_key_text(&self) -> PublicKeyText {
        PublicKeyText::encode(self.public_key())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.alg)
            .field("public_key", &self.public_key_text().as_str())
            .field("private", &"<redacted>")
            .finish()
    }
}

impl PartialEq for SigningKey {
    /// Equal when the public keys are (the private scalar is not compared).
    fn eq(&self, other: &Self) -> bool {
        self.alg == other.alg && self.public_key() == other.public_key()
    }
}

/// The base64 text of a compressed public point, in a fixed buffer: the value of
/// [`PUBLIC_KEY_CONTEXT_KEY`](crate::encryption_context::PUBLIC_KEY_CONTEXT_KEY).
#[derive(Clone, Copy)]
pub struct PublicKeyText {
    buf: [u8; MAX_PUBLIC_TEXT],
    len: u8,
}

impl PublicKeyText {
    fn encode(public: &[u8]) -> Self {
        let mut buf = [0u8; MAX_PUBLIC_TEXT];
        // A point of at most 49 bytes always fits 68 characters.
        let len = Base64::encode(public, &mut buf).map_or(0, |s| s.len());
        Self {
            buf,
            len: len as u8,
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl fmt::Debug for PublicKeyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Length of the footer this crate writes for `sig` (0 when unsigned).
pub const fn footer_len(sig: Option<SignatureAlg>) -> usize {
    match sig {
        Some(s) => 2 + s.fixed_signature_len(),
        None => 0,
    }
}

/// The running signature of a message being written: the hash of everything written so far
/// (until [`finish_hash`](Self::finish_hash) takes it) and the key that signs it in the
/// footer.
pub(crate) struct Signer<P: CryptoProvider> {
    hasher: Option<P::Hasher>,
    key: SigningKey,
}

impl<P: CryptoProvider> Signer<P> {
    /// Starts the hash of a message whose signing key is `key`.
    pub(crate) fn new(provider: &P, key: SigningKey) -> Result<Self, Error> {
        Ok(Self {
            hasher: Some(provider.hasher(key.algorithm())?),
            key,
        })
    }

    /// Absorbs written message bytes.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        if let Some(h) = &mut self.hasher {
            h.update(bytes);
        }
    }

    /// Finishes the message hash into `digest`; returns its length. Never inlined: the hash
    /// state, moved out of the signer to be finalized, and the finalization's frames are
    /// gone when [`sign`](Self::sign) computes the signature (firmware stacks).
    ///
    /// # Errors
    /// [`ApiMisuse::WrongState`](crate::error::ApiMisuse::WrongState) when the hash was
    /// already finished.
    #[inline(never)]
    pub(crate) fn finish_hash(&mut self, digest: &mut [u8; 64]) -> Result<usize, Error> {
        let h = self
            .hasher
            .take()
            .ok_or(crate::error::ApiMisuse::WrongState)?;
        Ok(h.finalize_into(digest))
    }

    /// Writes the footer (u16 length, DER signature) of the message hash `digest` (from
    /// [`finish_hash`](Self::finish_hash)) into `out`, which holds [`footer_len`] bytes;
    /// returns its length.
    pub(crate) fn sign(&self, provider: &P, digest: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        let alg = self.key.algorithm();
        let sig = out.get_mut(2..).ok_or(Error::BufferTooSmall {
            required: footer_len(Some(alg)),
        })?;
        let sl = provider.sign_digest(alg, self.key.private_scalar(), digest, sig)?;
        out[..2].copy_from_slice(&(sl as u16).to_be_bytes());
        Ok(2 + sl)
    }
}

/// The running verification of a received message: the hash of everything read so far and
/// the public key its footer must verify under.
pub(crate) struct Verifier<P: CryptoProvider> {
    alg: SignatureAlg,
    hasher: P::Hasher,
    public: [u8; MAX_PUBLIC],
}

impl<P: CryptoProvider> Verifier<P> {
    /// Starts the hash with the received header; `public_text` is the stored
    /// `aws-crypto-public-key` value.
    pub(crate) fn new(
        provider: &P,
        alg: SignatureAlg,
        public_text: &str,
        header: &[u8],
    ) -> Result<Self, Error> {
        let mut public = [0u8; MAX_PUBLIC];
        decode_public_key(alg, public_text.as_bytes(), &mut public)?;
        let mut hasher = provider.hasher(alg)?;
        hasher.update(header);
        Ok(Self {
            alg,
            hasher,
            public,
        })
    }

    /// Absorbs received message bytes.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
    }

    /// Locates the footer at `at` in `input` (right after the final unit): `Ok(Ok(end))` with
    /// the footer's end, or `Ok(Err(min))` when the input must hold `min` bytes. `base` is
    /// the message offset of `input`.
    ///
    /// # Errors
    /// [`Malformed::SignatureLength`] for a length of 0 or above the algorithm's maximum.
    pub(crate) fn footer_end(
        &self,
        input: &[u8],
        at: usize,
        base: usize,
    ) -> Result<Result<usize, usize>, Error> {
        let (Some(hi), Some(lo)) = (input.get(at), input.get(at + 1)) else {
            return Ok(Err(at + 2));
        };
        let sl = u16::from_be_bytes([*hi, *lo]);
        if sl == 0 || usize::from(sl) > self.alg.max_signature_len() {
            return Err(Error::Malformed {
                offset: base + at,
                kind: Malformed::SignatureLength(sl),
            });
        }
        let end = at + 2 + usize::from(sl);
        Ok(if input.len() < end { Err(end) } else { Ok(end) })
    }

    /// Absorbs the last message bytes and verifies `signature` over the whole message.
    ///
    /// # Errors
    /// [`AuthFailure::Signature`].
    pub(crate) fn verify(
        mut self,
        provider: &P,
        last: &[u8],
        signature: &[u8],
    ) -> Result<(), Error> {
        self.hasher.update(last);
        let mut digest = [0u8; 64];
        let dl = self.hasher.finalize_into(&mut digest);
        let public = &self.public[..self.alg.public_key_len()];
        match provider.verify_digest(self.alg, public, &digest[..dl], signature) {
            Ok(true) => Ok(()),
            _ => Err(AuthFailure::Signature.into()),
        }
    }
}

/// Decodes the stored public key text of a message into `out`; returns the point, which
/// must have `alg`'s length.
///
/// # Errors
/// [`CryptoError::InvalidPublicKey`] for text that is not canonical base64 of a point of
/// the right length.
pub(crate) fn decode_public_key<'o>(
    alg: SignatureAlg,
    text: &[u8],
    out: &'o mut [u8; MAX_PUBLIC],
) -> Result<&'o [u8], Error> {
    match Base64::decode(text, out) {
        Ok(p) if p.len() == alg.public_key_len() => Ok(p),
        _ => Err(CryptoError::InvalidPublicKey.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_text_round_trips_and_debug_hides_the_scalar() {
        let alg = SignatureAlg::EcdsaP384Sha384;
        let k = SigningKey::from_parts(alg, &[0x11; 48], &[0x02; 49]).unwrap();
        let text = k.public_key_text();
        assert_eq!(text.as_str().len(), alg.public_key_b64_len());
        let mut out = [0u8; MAX_PUBLIC];
        assert_eq!(
            decode_public_key(alg, text.as_str().as_bytes(), &mut out).unwrap(),
            &[0x02; 49]
        );
        // Not canonical (bad padding) and wrong length are refused.
        assert!(decode_public_key(alg, b"AgIC", &mut out).is_err());
        assert!(decode_public_key(alg, b"AgI=x", &mut out).is_err());
        let mut s = [0u8; 256];
        let mut w = crate::test_util::Buf(&mut s, 0);
        core::fmt::write(&mut w, format_args!("{k:?}")).unwrap();
        let n = w.1;
        let shown = core::str::from_utf8(&s[..n]).unwrap();
        assert!(shown.contains("<redacted>") && !shown.contains("ERER"));
        assert_eq!(
            SigningKey::from_parts(alg, &[1; 32], &[2; 49]).unwrap_err(),
            Error::Crypto(CryptoError::InvalidKey)
        );
    }
}
