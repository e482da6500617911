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

use crate::error::{CryptoError, Error};
use crate::provider::CryptoProvider;
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
/// [`PUBLIC_KEY_EC_KEY`](crate::ec::PUBLIC_KEY_EC_KEY).
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
