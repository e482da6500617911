//! The raw RSA keyring (feature `rsa`): wraps data keys with an RSA public key and unwraps
//! them with the matching private key, byte-compatible with the official SDKs' raw RSA
//! keyrings (spec `framework/raw-rsa-keyring.md`).
//!
//! - EDK: provider id = the key namespace, provider info = the key name (UTF-8, nothing
//!   else), ciphertext = RSA encryption of the plaintext data key, exactly one modulus long.
//!   The encryption context is not bound to the EDK (RSA has no associated data).
//! - Paddings: PKCS#1 v1.5 and OAEP with SHA-1, SHA-256, SHA-384 or SHA-512, whose MGF1 uses
//!   the same hash ([`RsaPadding`]).
//! - Keys: public keys as SubjectPublicKeyInfo or PKCS#1 `RSAPublicKey`, private keys as
//!   PKCS#8 `PrivateKeyInfo` or PKCS#1 `RSAPrivateKey`, each in PEM or DER
//!   ([`RsaPublicKey`], [`RsaPrivateKey`]). Moduli of 2048 to 8192 bits.
//! - Encrypting needs the public key and decrypting the private key. The keyring never
//!   derives one from the other: a keyring built from a private key alone is decrypt-only
//!   and one built from a public key alone is encrypt-only.
//!
//! RSA runs on `aws-lc-rs` (AWS-LC), whose RSA decryption is constant-time. The `rsa` crate
//! is deliberately not used: its decryption leaks timing (RUSTSEC-2023-0071, "Marvin"), and
//! no fixed release exists.
//!
//! ```
//! # fn main() -> Result<(), esdk_core::Error> {
//! use esdk_raw::rsa::{RawRsaKeyring, RsaPadding, RsaPrivateKey, RsaPublicKey};
//! # let public_pem = include_str!("../tests/data/rsa2048-spki.pem");
//! # let private_pem = include_str!("../tests/data/rsa2048-pkcs8.pem");
//! let keyring = RawRsaKeyring::new(
//!     "my-namespace",
//!     "my-rsa-key",
//!     RsaPadding::OaepSha256,
//!     Some(RsaPublicKey::from_pem(public_pem)?),
//!     Some(RsaPrivateKey::from_pem(private_pem)?),
//! )?;
//! assert!(keyring.can_encrypt() && keyring.can_decrypt());
//! // An encrypt-only keyring for a sender that holds just the public key:
//! let sender = RawRsaKeyring::encrypt_only(
//!     "my-namespace",
//!     "my-rsa-key",
//!     RsaPadding::OaepSha256,
//!     RsaPublicKey::from_pem(public_pem)?,
//! )?;
//! assert!(!sender.can_decrypt());
//! # Ok(())
//! # }
//! ```

use core::fmt;
use std::string::String;
use std::vec::Vec;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::error::KeyRejected;
use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384, OAEP_SHA512_MGF1SHA512,
    OaepAlgorithm, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, Pkcs1PrivateDecryptingKey,
    Pkcs1PublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
};
use esdk_core::error::{AttemptFailure, CryptoError, Error, KeyAlgorithm, KeyError, KeyringError};
use esdk_core::materials::{DataKey, DecryptionMaterials, Edks, EncryptionMaterials};
use esdk_core::{AlgorithmSuite, Keyring};
use zeroize::{Zeroize, Zeroizing};

/// The modulus sizes AWS-LC accepts for RSA encryption keys, in bits.
const MIN_MODULUS_BITS: u16 = 2048;
const MAX_MODULUS_BITS: u16 = 8192;
/// The largest modulus, in bytes.
const MAX_MODULUS_LEN: usize = MAX_MODULUS_BITS as usize / 8;

/// The RSA padding scheme of a raw RSA keyring. The set is closed: the spec allows no other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RsaPadding {
    /// PKCS#1 v1.5 encryption padding (RFC 8017 §7.2). Legacy: prefer OAEP.
    Pkcs1V15,
    /// OAEP with SHA-1 and MGF1 with SHA-1 (RFC 8017 §7.1).
    OaepSha1,
    /// OAEP with SHA-256 and MGF1 with SHA-256.
    OaepSha256,
    /// OAEP with SHA-384 and MGF1 with SHA-384.
    OaepSha384,
    /// OAEP with SHA-512 and MGF1 with SHA-512.
    OaepSha512,
}

impl RsaPadding {
    /// All five paddings.
    pub const ALL: [RsaPadding; 5] = [
        Self::Pkcs1V15,
        Self::OaepSha1,
        Self::OaepSha256,
        Self::OaepSha384,
        Self::OaepSha512,
    ];

    fn oaep(self) -> Option<&'static OaepAlgorithm> {
        match self {
            Self::Pkcs1V15 => None,
            Self::OaepSha1 => Some(&OAEP_SHA1_MGF1SHA1),
            Self::OaepSha256 => Some(&OAEP_SHA256_MGF1SHA256),
            Self::OaepSha384 => Some(&OAEP_SHA384_MGF1SHA384),
            Self::OaepSha512 => Some(&OAEP_SHA512_MGF1SHA512),
        }
    }

    /// The longest message this padding fits into a modulus of `modulus_len` bytes.
    fn max_message_len(self, modulus_len: usize) -> Option<usize> {
        let overhead = match self {
            Self::Pkcs1V15 => 11,
            Self::OaepSha1 => 2 * 20 + 2,
            Self::OaepSha256 => 2 * 32 + 2,
            Self::OaepSha384 => 2 * 48 + 2,
            Self::OaepSha512 => 2 * 64 + 2,
        };
        modulus_len.checked_sub(overhead)
    }
}

impl fmt::Display for RsaPadding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pkcs1V15 => "PKCS#1 v1.5",
            Self::OaepSha1 => "OAEP-SHA1 (MGF1-SHA1)",
            Self::OaepSha256 => "OAEP-SHA256 (MGF1-SHA256)",
            Self::OaepSha384 => "OAEP-SHA384 (MGF1-SHA384)",
            Self::OaepSha512 => "OAEP-SHA512 (MGF1-SHA512)",
        })
    }
}

const PUBLIC_DER: KeyError = KeyError::PublicKeyDer(KeyAlgorithm::Rsa);
const PRIVATE_DER: KeyError = KeyError::PrivateKeyDer(KeyAlgorithm::Rsa);
const TOO_SMALL: KeyError = KeyError::ModulusTooSmall {
    min_bits: MIN_MODULUS_BITS,
};
const TOO_LARGE: KeyError = KeyError::ModulusTooLarge {
    max_bits: MAX_MODULUS_BITS,
};

fn key_error(e: KeyError) -> Error {
    Error::Keyring(KeyringError::Key(e))
}

/// Maps an AWS-LC key rejection to our error, keeping the size reasons apart.
fn rejected(e: &KeyRejected, otherwise: KeyError) -> Error {
    key_error(match e.description_() {
        "TooSmall" => TOO_SMALL,
        "TooLarge" => TOO_LARGE,
        _ => otherwise,
    })
}

/// Decodes a PEM document into a zeroized buffer and returns its label.
///
/// PEM decoding uses `pem-rfc7468`, the RustCrypto RFC 7468 decoder: small, no dependencies
/// beyond its constant-time base64 (`base64ct`, so private key bytes do not steer
/// table lookups), and it decodes into a caller buffer, so the DER of a private key can be
/// zeroized afterwards. Text before the first `-----BEGIN` line and surrounding whitespace
/// are skipped, as OpenSSL does.
fn decode_pem(pem: &[u8]) -> Result<(String, Zeroizing<Vec<u8>>), Error> {
    let start = pem
        .windows(10)
        .position(|w| w == b"-----BEGIN")
        .ok_or(key_error(KeyError::Pem))?;
    let pem = pem.get(start..).unwrap_or_default().trim_ascii_end();
    let mut buf = Zeroizing::new(std::vec![0u8; pem.len()]);
    let (label, len) = match pem_rfc7468::decode(pem, &mut buf) {
        Ok((label, der)) => (String::from(label), der.len()),
        Err(_) => return Err(key_error(KeyError::Pem)),
    };
    buf.truncate(len);
    Ok((label, buf))
}

/// Appends a DER length (definite form).
fn push_der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let n = bytes.len() - skip;
        out.push(0x80 | n as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Appends a DER TLV whose content is the concatenation of `parts`.
fn push_tlv(out: &mut Vec<u8>, tag: u8, parts: &[&[u8]]) {
    out.push(tag);
    push_der_len(out, parts.iter().map(|p| p.len()).sum());
    for p in parts {
        out.extend_from_slice(p);
    }
}

/// DER of the AlgorithmIdentifier `{ rsaEncryption (1.2.840.113549.1.1.1), NULL }`.
const RSA_ENCRYPTION_ALG_ID: [u8; 15] = [
    0x30, 0x0D, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01, 0x05, 0x00,
];

/// Wraps a PKCS#1 `RSAPrivateKey` into a PKCS#8 v1 `PrivateKeyInfo` (RFC 5208), because
/// AWS-LC's encryption keys load from PKCS#8 only. The output holds the private key and is
/// zeroized on drop.
fn pkcs1_private_to_pkcs8(pkcs1: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut octets = Zeroizing::new(Vec::with_capacity(pkcs1.len() + 8));
    push_tlv(&mut octets, 0x04, &[pkcs1]);
    let mut out = Zeroizing::new(Vec::with_capacity(octets.len() + 32));
    push_tlv(
        &mut out,
        0x30,
        &[&[0x02, 0x01, 0x00], &RSA_ENCRYPTION_ALG_ID, &octets],
    );
    out
}

/// Wraps a PKCS#1 `RSAPublicKey` into a SubjectPublicKeyInfo (RFC 5280).
fn pkcs1_public_to_spki(pkcs1: &[u8]) -> Vec<u8> {
    let mut bits = Vec::with_capacity(pkcs1.len() + 8);
    push_tlv(&mut bits, 0x03, &[&[0x00], pkcs1]);
    let mut out = Vec::with_capacity(bits.len() + 24);
    push_tlv(&mut out, 0x30, &[&RSA_ENCRYPTION_ALG_ID, &bits]);
    out
}

/// An RSA public key for encrypting data keys. `Debug` shows only the modulus size.
#[derive(Clone)]
pub struct RsaPublicKey {
    key: PublicEncryptingKey,
}

impl RsaPublicKey {
    /// Loads a PEM public key: `PUBLIC KEY` (SubjectPublicKeyInfo) or `RSA PUBLIC KEY`
    /// (PKCS#1). A private key is refused: the public key is never derived from it.
    ///
    /// # Errors
    /// [`KeyringError::Key`] naming the problem: [`KeyError::Pem`] (not PEM),
    /// [`KeyError::PrivateKeyGivenAsPublic`], [`KeyError::PublicKeyPemLabel`] (another
    /// label), or as [`Self::from_der`].
    pub fn from_pem(pem: impl AsRef<[u8]>) -> Result<Self, Error> {
        let (label, der) = decode_pem(pem.as_ref())?;
        match label.as_str() {
            "PUBLIC KEY" => Self::from_spki_der(&der),
            "RSA PUBLIC KEY" => Self::from_spki_der(&pkcs1_public_to_spki(&der)),
            "PRIVATE KEY" | "RSA PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => {
                Err(key_error(KeyError::PrivateKeyGivenAsPublic))
            }
            _ => Err(key_error(KeyError::PublicKeyPemLabel(KeyAlgorithm::Rsa))),
        }
    }

    /// Loads a DER public key: SubjectPublicKeyInfo or PKCS#1 `RSAPublicKey`.
    ///
    /// # Errors
    /// [`KeyringError::Key`]: [`KeyError::PublicKeyDer`] (not an RSA public key in either
    /// form), [`KeyError::ModulusTooSmall`] or [`KeyError::ModulusTooLarge`] (a modulus
    /// outside 2048..=8192 bits).
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        match Self::from_spki_der(der) {
            Ok(k) => Ok(k),
            Err(first) => match Self::from_spki_der(&pkcs1_public_to_spki(der)) {
                Ok(k) => Ok(k),
                // Report the SPKI reason unless PKCS#1 got further (a size problem).
                Err(e) if e != key_error(PUBLIC_DER) => Err(e),
                Err(_) => Err(first),
            },
        }
    }

    fn from_spki_der(der: &[u8]) -> Result<Self, Error> {
        PublicEncryptingKey::from_der(der)
            .map(|key| Self { key })
            .map_err(|e| rejected(&e, PUBLIC_DER))
    }

    /// The modulus size in bits.
    pub fn modulus_bits(&self) -> usize {
        self.key.key_size_bits()
    }

    /// The DER SubjectPublicKeyInfo of the key.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] if AWS-LC cannot serialize it.
    pub fn to_spki_der(&self) -> Result<Vec<u8>, Error> {
        self.key
            .as_der()
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| CryptoError::InvalidKey.into())
    }
}

impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaPublicKey")
            .field("modulus_bits", &self.modulus_bits())
            .finish()
    }
}

/// An RSA private key for decrypting data keys. The key lives inside AWS-LC, which clears
/// it when freed; `Debug` shows only the modulus size.
#[derive(Clone)]
pub struct RsaPrivateKey {
    key: PrivateDecryptingKey,
}

impl RsaPrivateKey {
    /// Loads a PEM private key: `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1). The
    /// decoded DER is zeroized after loading.
    ///
    /// # Errors
    /// [`KeyringError::Key`] naming the problem: [`KeyError::Pem`] (not PEM),
    /// [`KeyError::EncryptedPrivateKey`], [`KeyError::PrivateKeyPemLabel`] (another label),
    /// or as [`Self::from_der`].
    pub fn from_pem(pem: impl AsRef<[u8]>) -> Result<Self, Error> {
        let (label, der) = decode_pem(pem.as_ref())?;
        match label.as_str() {
            "PRIVATE KEY" => Self::from_pkcs8_der(&der),
            "RSA PRIVATE KEY" => Self::from_pkcs8_der(&pkcs1_private_to_pkcs8(&der)),
            "ENCRYPTED PRIVATE KEY" => Err(key_error(KeyError::EncryptedPrivateKey)),
            _ => Err(key_error(KeyError::PrivateKeyPemLabel(KeyAlgorithm::Rsa))),
        }
    }

    /// Loads a DER private key: PKCS#8 `PrivateKeyInfo` or PKCS#1 `RSAPrivateKey`.
    ///
    /// # Errors
    /// [`KeyringError::Key`]: [`KeyError::PrivateKeyDer`] (not a valid RSA private key in
    /// either form), [`KeyError::ModulusTooSmall`] or [`KeyError::ModulusTooLarge`] (a
    /// modulus outside 2048..=8192 bits).
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        match Self::from_pkcs8_der(der) {
            Ok(k) => Ok(k),
            Err(first) => match Self::from_pkcs8_der(&pkcs1_private_to_pkcs8(der)) {
                Ok(k) => Ok(k),
                Err(e) if e != key_error(PRIVATE_DER) => Err(e),
                Err(_) => Err(first),
            },
        }
    }

    fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        PrivateDecryptingKey::from_pkcs8(der)
            .map(|key| Self { key })
            .map_err(|e| rejected(&e, PRIVATE_DER))
    }

    /// The modulus size in bits.
    pub fn modulus_bits(&self) -> usize {
        self.key.key_size_bits()
    }

    /// Whether `public` is this key's public half (same modulus and exponent).
    pub fn matches(&self, public: &RsaPublicKey) -> bool {
        // Comparing the two public halves; the keyring still encrypts only with `public`.
        match (self.key.public_key().as_der(), public.key.as_der()) {
            (Ok(a), Ok(b)) => a.as_ref() == b.as_ref(),
            _ => false,
        }
    }
}

impl fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaPrivateKey")
            .field("modulus_bits", &self.modulus_bits())
            .field("key", &"<redacted>")
            .finish()
    }
}

enum Encrypter {
    Pkcs1(Pkcs1PublicEncryptingKey),
    Oaep(OaepPublicEncryptingKey, &'static OaepAlgorithm),
}

/// An RSA public key bound to one padding, ready to encrypt short messages such as data
/// keys. The raw RSA keyring encrypts with it, and so does any keyring that wraps with an
/// RSA public key held locally (the std crate's AWS KMS RSA keyring encrypts with the KMS
/// key's public key this way). `Debug` shows the padding and modulus size.
pub struct RsaEncryptor {
    padding: RsaPadding,
    modulus_len: usize,
    inner: Encrypter,
}

impl fmt::Debug for RsaEncryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaEncryptor")
            .field("padding", &self.padding)
            .field("modulus_bits", &(self.modulus_len * 8))
            .finish()
    }
}

impl RsaEncryptor {
    /// An encryptor for `public` with `padding`.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] if AWS-LC refuses the key for this padding (a key that
    /// [`RsaPublicKey`] loaded is always accepted).
    pub fn new(public: RsaPublicKey, padding: RsaPadding) -> Result<Self, Error> {
        let bad = |_| Error::Crypto(CryptoError::InvalidKey);
        let modulus_len = public.key.key_size_bytes();
        let inner = match padding.oaep() {
            None => Encrypter::Pkcs1(Pkcs1PublicEncryptingKey::new(public.key).map_err(bad)?),
            Some(alg) => {
                Encrypter::Oaep(OaepPublicEncryptingKey::new(public.key).map_err(bad)?, alg)
            }
        };
        Ok(Self {
            padding,
            modulus_len,
            inner,
        })
    }

    /// The padding scheme.
    pub fn padding(&self) -> RsaPadding {
        self.padding
    }

    /// The modulus size in bits.
    pub fn modulus_bits(&self) -> usize {
        self.modulus_len * 8
    }

    /// The ciphertext length: one modulus, in bytes.
    pub fn ciphertext_len(&self) -> usize {
        self.modulus_len
    }

    /// The longest message the padding fits into the modulus, in bytes.
    pub fn max_message_len(&self) -> usize {
        self.padding
            .max_message_len(self.modulus_len)
            .unwrap_or_default()
    }

    /// Encrypts `message` into `out` (at least [`Self::ciphertext_len`] bytes) and returns the
    /// ciphertext length, which is always the modulus length.
    ///
    /// # Errors
    /// [`KeyError::ModulusTooSmallForPadding`] when `message` is longer than
    /// [`Self::max_message_len`]; [`Error::BufferTooSmall`] when `out` is short;
    /// [`KeyringError::WrapFailed`] if RSA encryption fails.
    pub fn encrypt(&self, message: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        if message.len() > self.max_message_len() {
            return Err(key_error(KeyError::ModulusTooSmallForPadding));
        }
        let out = out
            .get_mut(..self.modulus_len)
            .ok_or(Error::BufferTooSmall {
                required: self.modulus_len,
            })?;
        let r = match &self.inner {
            Encrypter::Pkcs1(k) => k.encrypt(message, out).map(|c| c.len()),
            Encrypter::Oaep(k, alg) => k.encrypt(alg, message, out, None).map(|c| c.len()),
        };
        match r {
            Ok(n) if n == self.modulus_len => Ok(n),
            _ => Err(KeyringError::WrapFailed.into()),
        }
    }

    /// Encrypts `message` into a new vector of [`Self::ciphertext_len`] bytes.
    ///
    /// # Errors
    /// As [`Self::encrypt`].
    pub fn encrypt_to_vec(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = std::vec![0u8; self.modulus_len];
        let n = self.encrypt(message, &mut out)?;
        out.truncate(n);
        Ok(out)
    }
}

enum Decrypter {
    Pkcs1(Pkcs1PrivateDecryptingKey),
    Oaep(OaepPrivateDecryptingKey, &'static OaepAlgorithm),
}

/// A raw RSA keyring (spec `framework/raw-rsa-keyring.md`).
///
/// Holds its namespace, key name, padding and keys. With a public key it encrypts; with a
/// private key it decrypts; it never derives the one from the other. `Send + Sync`.
/// `Debug` shows the namespace, name, padding, modulus size and capabilities, never key
/// material.
///
/// On decrypt it tries, in header order, each EDK whose provider id equals the namespace and
/// whose provider info equals the key name, and records one
/// [`AttemptFailure`] for every EDK it skipped or could not unwrap.
pub struct RawRsaKeyring {
    namespace: String,
    name: String,
    padding: RsaPadding,
    modulus_len: usize,
    encrypter: Option<RsaEncryptor>,
    decrypter: Option<Decrypter>,
}

impl fmt::Debug for RawRsaKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawRsaKeyring")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("padding", &self.padding)
            .field("modulus_bits", &(self.modulus_len * 8))
            .field("can_encrypt", &self.can_encrypt())
            .field("can_decrypt", &self.can_decrypt())
            .finish()
    }
}

impl RawRsaKeyring {
    /// A keyring under `namespace` (the EDK provider id) and `name` (the provider info) with
    /// `padding`, encrypting with `public` and decrypting with `private`. At least one key is
    /// required; when both are given they must be halves of one key pair.
    ///
    /// # Errors
    /// - [`KeyringError::InvalidConfiguration`]: the namespace starts with `aws-kms`
    ///   (reserved for KMS keyrings);
    /// - [`KeyringError::FieldTooLong`]: the namespace or name exceed 65 535 bytes;
    /// - [`KeyringError::Key`]: [`KeyError::NoKey`] (no key at all),
    ///   [`KeyError::KeyPairMismatch`] (a public key that is not the private key's public
    ///   half), [`KeyError::ModulusTooSmall`] or [`KeyError::ModulusTooLarge`].
    pub fn new(
        namespace: &str,
        name: &str,
        padding: RsaPadding,
        public: Option<RsaPublicKey>,
        private: Option<RsaPrivateKey>,
    ) -> Result<Self, Error> {
        if namespace.starts_with("aws-kms") {
            return Err(KeyringError::InvalidConfiguration.into());
        }
        if namespace.len() > 0xFFFF || name.len() > 0xFFFF {
            return Err(KeyringError::FieldTooLong.into());
        }
        let modulus_len = match (&public, &private) {
            (None, None) => return Err(key_error(KeyError::NoKey)),
            (Some(p), Some(s)) if !s.matches(p) => {
                return Err(key_error(KeyError::KeyPairMismatch));
            }
            (Some(p), _) => p.key.key_size_bytes(),
            (None, Some(s)) => s.key.key_size_bytes(),
        };
        // AWS-LC loads 2048..=8192-bit keys only; every padding fits a 32-byte data key in
        // 256 bytes (OAEP-SHA512 needs 130 bytes of overhead).
        if modulus_len < usize::from(MIN_MODULUS_BITS / 8) {
            return Err(key_error(TOO_SMALL));
        }
        if modulus_len > MAX_MODULUS_LEN {
            return Err(key_error(TOO_LARGE));
        }
        let bad = |_| Error::Crypto(CryptoError::InvalidKey);
        let encrypter = public.map(|p| RsaEncryptor::new(p, padding)).transpose()?;
        let decrypter = match private {
            None => None,
            Some(s) => Some(match padding.oaep() {
                None => Decrypter::Pkcs1(Pkcs1PrivateDecryptingKey::new(s.key).map_err(bad)?),
                Some(alg) => {
                    Decrypter::Oaep(OaepPrivateDecryptingKey::new(s.key).map_err(bad)?, alg)
                }
            }),
        };
        Ok(Self {
            namespace: String::from(namespace),
            name: String::from(name),
            padding,
            modulus_len,
            encrypter,
            decrypter,
        })
    }

    /// An encrypt-only keyring from a public key (a sender that must not be able to read).
    ///
    /// # Errors
    /// As [`RawRsaKeyring::new`].
    pub fn encrypt_only(
        namespace: &str,
        name: &str,
        padding: RsaPadding,
        public: RsaPublicKey,
    ) -> Result<Self, Error> {
        Self::new(namespace, name, padding, Some(public), None)
    }

    /// A decrypt-only keyring from a private key. It cannot encrypt: the public key is not
    /// derived from the private key (spec).
    ///
    /// # Errors
    /// As [`RawRsaKeyring::new`].
    pub fn decrypt_only(
        namespace: &str,
        name: &str,
        padding: RsaPadding,
        private: RsaPrivateKey,
    ) -> Result<Self, Error> {
        Self::new(namespace, name, padding, None, Some(private))
    }

    /// The key namespace (EDK provider id).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The key name (EDK provider info).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The padding scheme.
    pub fn padding(&self) -> RsaPadding {
        self.padding
    }

    /// The modulus size in bits.
    pub fn modulus_bits(&self) -> usize {
        self.modulus_len * 8
    }

    /// Whether the keyring holds a public key and so can encrypt.
    pub fn can_encrypt(&self) -> bool {
        self.encrypter.is_some()
    }

    /// Whether the keyring holds a private key and so can decrypt.
    pub fn can_decrypt(&self) -> bool {
        self.decrypter.is_some()
    }

    fn try_unwrap(
        &self,
        d: &Decrypter,
        suite: AlgorithmSuite,
        ct: &[u8],
    ) -> Result<DataKey, AttemptFailure> {
        if ct.len() != self.modulus_len {
            return Err(AttemptFailure::UnwrapFailed);
        }
        let mut buf = [0u8; MAX_MODULUS_LEN];
        let out = buf.get_mut(..self.modulus_len).unwrap_or_default();
        let r = match d {
            Decrypter::Pkcs1(k) => k.decrypt(ct, out),
            Decrypter::Oaep(k, alg) => k.decrypt(alg, ct, out, None),
        };
        let result = match r {
            Ok(pt) if pt.len() == suite.key_len() => {
                DataKey::from_slice(pt).map_err(|_| AttemptFailure::DataKeyLength)
            }
            // PKCS#1 v1.5: a well-padded message of the wrong length is reported like a
            // padding failure, so the attempt record is no padding oracle.
            Ok(_) if self.padding == RsaPadding::Pkcs1V15 => Err(AttemptFailure::UnwrapFailed),
            Ok(_) => Err(AttemptFailure::DataKeyLength),
            Err(_) => Err(AttemptFailure::UnwrapFailed),
        };
        buf.zeroize();
        result
    }
}

impl Keyring for RawRsaKeyring {
    /// Generates the data key if needed and wraps it with the public key.
    ///
    /// # Errors
    /// [`KeyringError::EncryptNotSupported`] without a public key;
    /// [`KeyError::ModulusTooSmallForPadding`] if the data key does not fit (not with the
    /// supported sizes); [`KeyringError::WrapFailed`] if RSA encryption fails; the EDK
    /// writer's errors.
    fn on_encrypt(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), Error> {
        let Some(enc) = &self.encrypter else {
            return Err(KeyringError::EncryptNotSupported.into());
        };
        let mut ct = [0u8; MAX_MODULUS_LEN];
        let n = enc.encrypt(m.generate_data_key()?.as_bytes(), &mut ct)?;
        m.push_edk(
            &self.namespace,
            &[self.name.as_bytes()],
            &[ct.get(..n).unwrap_or_default()],
        )
    }

    fn on_decrypt(&self, m: &mut DecryptionMaterials<'_>, edks: Edks<'_>) -> Result<(), Error> {
        let Some(dec) = &self.decrypter else {
            return Err(KeyringError::DecryptNotSupported.into());
        };
        let suite = m.suite();
        for (i, edk) in edks.iter() {
            if edk.provider_id != self.namespace {
                m.record_failure(i, AttemptFailure::ProviderIdMismatch);
                continue;
            }
            if edk.provider_info != self.name.as_bytes() {
                m.record_failure(i, AttemptFailure::KeyNameMismatch);
                continue;
            }
            match self.try_unwrap(dec, suite, edk.ciphertext) {
                Ok(k) => return m.set_data_key(k),
                Err(reason) => m.record_failure(i, reason),
            }
        }
        Err(m.no_data_key_error())
    }

    fn encrypted_data_keys_len(&self, _suite: AlgorithmSuite) -> Option<(u16, usize)> {
        self.encrypter.as_ref()?;
        Some((
            1,
            6 + self.namespace.len() + self.name.len() + self.modulus_len,
        ))
    }
}
