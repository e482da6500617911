//! The raw ECDH keyring (feature `ecdh`): wraps data keys under a key agreed by ECDH on NIST
//! P-256, P-384 or P-521, byte-compatible with the MPL's raw ECDH keyring (spec
//! `framework/raw-ecdh-keyring.md` and `framework/key-agreement-schemas.md`). `no_std` and
//! allocation-free, like the raw AES keyring.
//!
//! Three key agreement schemas ([`EcdhSchema`]):
//! - `RawPrivateKeyToStaticPublicKey`: a static sender key pair and the recipient's public
//!   key. Encrypts, and decrypts what either party wrapped for the other.
//! - `EphemeralPrivateKeyToStaticPublicKey`: a fresh sender key pair per message and the
//!   recipient's public key. Encrypt-only; the sender keeps no secret (firmware telemetry).
//! - `PublicKeyDiscovery`: the recipient's private key. Decrypt-only; accepts any sender.
//!
//! The EDK: provider id `raw-ecdh` (on decrypt `aws-kms-ecdh` is accepted too); provider info
//! = version `0x01` ‖ u32 length ‖ recipient public key ‖ u32 length ‖ sender public key, both
//! SEC1-compressed (75, 107 or 143 bytes in all); ciphertext = 32-byte KDF salt ‖ 32-byte
//! commitment key ‖ AES-256-GCM(data key) ‖ 16-byte tag.
//!
//! Key derivation: shared secret Z = the x-coordinate of the ECDH point; 64 bytes of keying
//! material from NIST SP 800-108 counter mode with HMAC-SHA384 keyed by Z, whose input per
//! block is `[i]₃₂ ‖ FixedInfo ‖ 0x00 ‖ salt ‖ [512]₃₂`. The first 32 bytes are the commitment
//! key (compared in constant time on decrypt), the last 32 the AES-256-GCM wrapping key. The
//! wrap uses a zero IV and FixedInfo as its AAD, where FixedInfo =
//! `"ecdh-key-derivation" 00 curve 00 "HMAC_SHA384" 00 sender ‖ recipient 00 01 00 EC`, with
//! curve `p256` / `p384` / `p521`, the compressed public keys as written in the provider info
//! and EC the canonical serialization of the encryption context. The spec's prose leaves
//! several of these details open; they follow the MPL implementation, which the test vectors
//! confirm.
//!
//! Keys: private keys are PKCS#8 (PEM or DER), public keys SubjectPublicKeyInfo (DER or PEM)
//! or SEC1 points. The spec requires exactly these forms.
//!
//! ```
//! # fn main() -> Result<(), esdk_core::Error> {
//! use esdk_raw::ecdh::{EcdhCurve, EcdhPrivateKey, EcdhPublicKey, RawEcdhKeyring};
//! # let recipient_pem = include_str!("../tests/data/ecc-p256-recipient-pkcs8.pem");
//! let recipient = EcdhPrivateKey::from_pkcs8_pem(recipient_pem)?;
//! // A device that only holds the server's public key:
//! let device = RawEcdhKeyring::ephemeral_private_key_to_static_public_key(
//!     EcdhCurve::P256,
//!     recipient.public_key(),
//! )?;
//! // The server, which holds the private key:
//! let server = RawEcdhKeyring::public_key_discovery(EcdhCurve::P256, recipient)?;
//! # let _ = (device, server);
//! # Ok(())
//! # }
//! ```

use core::fmt;

use aes::cipher::{BlockCipherEncrypt, KeyInit};
use curve_base::elliptic_curve::sec1::ToSec1Point;
use curve_base::pkcs8::{DecodePrivateKey, DecodePublicKey};
use esdk_core::error::{AttemptFailure, CryptoError, Error, KeyAlgorithm, KeyError, KeyringError};
use esdk_core::materials::{DataKey, DecryptionMaterials, Edks, EncryptionMaterials};
use esdk_core::{AlgorithmSuite, Keyring};
use ghash::universal_hash::UniversalHash;
use hmac::{Hmac, Mac};
// The traits and types every curve crate re-exports, from whichever curve is compiled in.
#[cfg(feature = "ecdh-p256")]
use p256 as curve_base;
#[cfg(all(feature = "ecdh-p384", not(feature = "ecdh-p256")))]
use p384 as curve_base;
#[cfg(all(
    feature = "ecdh-p521",
    not(feature = "ecdh-p256"),
    not(feature = "ecdh-p384")
))]
use p521 as curve_base;
use sha2::Sha384;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// The provider id the raw ECDH keyring writes.
pub const PROVIDER_ID: &str = "raw-ecdh";
/// The provider id of the AWS KMS ECDH keyring, whose EDKs the raw keyring also accepts on
/// decrypt (the formats are identical).
pub const KMS_PROVIDER_ID: &str = "aws-kms-ecdh";

/// The keyring version byte at the start of the provider info.
const VERSION: u8 = 0x01;
/// Lengths of the KDF salt and of the commitment key at the start of the EDK ciphertext.
const SALT_LEN: usize = 32;
const COMMIT_LEN: usize = 32;
/// AES-GCM tag length.
const TAG_LEN: usize = 16;
/// The longest compressed point (P-521) and shared secret (P-521 x-coordinate).
const MAX_POINT_LEN: usize = 67;
const MAX_SECRET_LEN: usize = 66;
/// Room for the DER of a PKCS#8 EC private key decoded from PEM (P-521 with its public key
/// takes about 240 bytes).
const MAX_PKCS8_DER: usize = 512;
/// Room for the DER of an EC SubjectPublicKeyInfo decoded from PEM (P-521: 158 bytes).
const MAX_SPKI_DER: usize = 256;
/// The longest EDK provider info (P-521).
pub const MAX_PROVIDER_INFO_LEN: usize = EcdhCurve::P521.provider_info_len();
/// The longest EDK ciphertext (a 32-byte data key).
pub const MAX_CIPHERTEXT_LEN: usize = ciphertext_len(32);
/// The longest DER SubjectPublicKeyInfo of an uncompressed point ([`EcdhPublicKey::to_spki_der`]).
pub const MAX_SPKI_DER_LEN: usize = 158;

/// The length of the EDK ciphertext for a data key of `key_len` bytes: 32-byte salt, 32-byte
/// commitment key, the wrapped key and the 16-byte tag.
pub const fn ciphertext_len(key_len: usize) -> usize {
    SALT_LEN + COMMIT_LEN + key_len + TAG_LEN
}

/// Writes `bytes` as lowercase hex (the `Debug` form of points and encodings).
fn hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

fn key_error(e: KeyError) -> Error {
    Error::Keyring(KeyringError::Key(e))
}

/// An elliptic curve of the raw ECDH keyring. (The spec also lists SM2, which neither the
/// MPL's raw keyring nor this one offers.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EcdhCurve {
    /// NIST P-256 (secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// NIST P-521 (secp521r1).
    P521,
}

impl EcdhCurve {
    /// Length of a SEC1 compressed point: 33, 49 or 67 bytes.
    pub const fn compressed_point_len(self) -> usize {
        match self {
            Self::P256 => 33,
            Self::P384 => 49,
            Self::P521 => 67,
        }
    }

    /// Length of the shared secret (the x-coordinate): 32, 48 or 66 bytes.
    pub const fn shared_secret_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
            Self::P521 => 66,
        }
    }

    /// Length of the EDK provider info: 75, 107 or 143 bytes.
    pub const fn provider_info_len(self) -> usize {
        1 + 4 + self.compressed_point_len() + 4 + self.compressed_point_len()
    }

    /// The curve name in the KDF's FixedInfo.
    const fn spec_name(self) -> &'static [u8] {
        match self {
            Self::P256 => b"p256",
            Self::P384 => b"p384",
            Self::P521 => b"p521",
        }
    }
}

impl fmt::Display for EcdhCurve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
            Self::P521 => "P-521",
        })
    }
}

/// The key agreement schema of a [`RawEcdhKeyring`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EcdhSchema {
    /// A static sender private key and the recipient's public key (encrypt and decrypt).
    RawPrivateKeyToStaticPublicKey,
    /// A fresh sender key pair per message and the recipient's public key (encrypt-only).
    EphemeralPrivateKeyToStaticPublicKey,
    /// The recipient's private key, any sender (decrypt-only).
    PublicKeyDiscovery,
}

/// A SEC1 compressed elliptic-curve point (33, 49 or 67 bytes), as stored in the EDK.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CompressedPoint {
    bytes: [u8; MAX_POINT_LEN],
    len: u8,
}

impl CompressedPoint {
    fn new(sec1: &[u8]) -> Option<Self> {
        let mut bytes = [0u8; MAX_POINT_LEN];
        bytes.get_mut(..sec1.len())?.copy_from_slice(sec1);
        Some(Self {
            bytes,
            len: u8::try_from(sec1.len()).ok()?,
        })
    }

    /// The encoded point.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }
}

impl AsRef<[u8]> for CompressedPoint {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for CompressedPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex(f, self.as_bytes())
    }
}

macro_rules! per_curve {
    ($value:expr, $enum:ident, $k:ident => $body:expr) => {
        match $value {
            #[cfg(feature = "ecdh-p256")]
            $enum::P256($k) => $body,
            #[cfg(feature = "ecdh-p384")]
            $enum::P384($k) => $body,
            #[cfg(feature = "ecdh-p521")]
            $enum::P521($k) => $body,
        }
    };
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Public {
    #[cfg(feature = "ecdh-p256")]
    P256(p256::PublicKey),
    #[cfg(feature = "ecdh-p384")]
    P384(p384::PublicKey),
    #[cfg(feature = "ecdh-p521")]
    P521(p521::PublicKey),
}

/// An elliptic-curve public key on P-256, P-384 or P-521. Never the point at infinity.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EcdhPublicKey(Public);

impl EcdhPublicKey {
    /// Loads a DER SubjectPublicKeyInfo (the form the spec requires); the curve comes from
    /// the key's parameters.
    ///
    /// # Errors
    /// [`KeyError::PublicKeyDer`]: not an SPKI EC key on a supported curve, or an invalid
    /// point.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, Error> {
        #[cfg(feature = "ecdh-p256")]
        if let Ok(k) = p256::PublicKey::from_public_key_der(der) {
            return Ok(Self(Public::P256(k)));
        }
        #[cfg(feature = "ecdh-p384")]
        if let Ok(k) = p384::PublicKey::from_public_key_der(der) {
            return Ok(Self(Public::P384(k)));
        }
        #[cfg(feature = "ecdh-p521")]
        if let Ok(k) = p521::PublicKey::from_public_key_der(der) {
            return Ok(Self(Public::P521(k)));
        }
        Err(key_error(KeyError::PublicKeyDer(KeyAlgorithm::Ec)))
    }

    /// Loads a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    ///
    /// # Errors
    /// [`KeyError::Pem`] (not PEM), [`KeyError::PublicKeyPemLabel`] (another label), or as
    /// [`Self::from_spki_der`].
    pub fn from_spki_pem(pem: impl AsRef<[u8]>) -> Result<Self, Error> {
        let mut buf = [0u8; MAX_SPKI_DER];
        let der = decode_pem(
            pem.as_ref(),
            "PUBLIC KEY",
            (
                KeyError::PublicKeyPemLabel(KeyAlgorithm::Ec),
                KeyError::PublicKeyDer(KeyAlgorithm::Ec),
            ),
            &mut buf,
        )?;
        Self::from_spki_der(der)
    }

    /// Loads a SEC1 point (compressed or uncompressed) on `curve`.
    ///
    /// # Errors
    /// [`KeyError::InvalidPoint`] when the bytes are not a point on the curve, or are the
    /// point at infinity.
    // Never inlined: the point checks' temporaries stay out of the caller's frame.
    #[inline(never)]
    pub fn from_sec1(curve: EcdhCurve, bytes: &[u8]) -> Result<Self, Error> {
        let bad = |_| key_error(KeyError::InvalidPoint);
        Ok(Self(match curve {
            #[cfg(feature = "ecdh-p256")]
            EcdhCurve::P256 => Public::P256(p256::PublicKey::from_sec1_bytes(bytes).map_err(bad)?),
            #[cfg(feature = "ecdh-p384")]
            EcdhCurve::P384 => Public::P384(p384::PublicKey::from_sec1_bytes(bytes).map_err(bad)?),
            #[cfg(feature = "ecdh-p521")]
            EcdhCurve::P521 => Public::P521(p521::PublicKey::from_sec1_bytes(bytes).map_err(bad)?),
            // A curve whose `ecdh-p*` feature is off.
            #[allow(unreachable_patterns)]
            _ => return Err(CryptoError::Unsupported.into()),
        }))
    }

    /// The curve.
    pub fn curve(&self) -> EcdhCurve {
        match self.0 {
            #[cfg(feature = "ecdh-p256")]
            Public::P256(_) => EcdhCurve::P256,
            #[cfg(feature = "ecdh-p384")]
            Public::P384(_) => EcdhCurve::P384,
            #[cfg(feature = "ecdh-p521")]
            Public::P521(_) => EcdhCurve::P521,
        }
    }

    /// The DER SubjectPublicKeyInfo (`id-ecPublicKey` with the curve's named-curve OID, the
    /// uncompressed point), the form KMS takes and returns (`GetPublicKey`,
    /// `DeriveSharedSecret`): 91, 120 or 158 bytes. No allocation.
    pub fn to_spki_der(&self) -> SpkiDer {
        // The fixed DER prefix of each curve's SPKI, up to the BIT STRING's unused-bits byte.
        #[cfg(feature = "ecdh-p256")]
        const P256: &[u8] = &[
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        #[cfg(feature = "ecdh-p384")]
        const P384: &[u8] = &[
            0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x05, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
        ];
        #[cfg(feature = "ecdh-p521")]
        const P521: &[u8] = &[
            0x30, 0x81, 0x9b, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
            0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23, 0x03, 0x81, 0x86, 0x00,
        ];
        let der = match &self.0 {
            #[cfg(feature = "ecdh-p256")]
            Public::P256(k) => SpkiDer::from_parts(&[P256, k.to_sec1_point(false).as_bytes()]),
            #[cfg(feature = "ecdh-p384")]
            Public::P384(k) => SpkiDer::from_parts(&[P384, k.to_sec1_point(false).as_bytes()]),
            #[cfg(feature = "ecdh-p521")]
            Public::P521(k) => SpkiDer::from_parts(&[P521, k.to_sec1_point(false).as_bytes()]),
        };
        // Every curve's SPKI fits the buffer; the fallback is never taken.
        der.unwrap_or(SpkiDer {
            bytes: [0; MAX_SPKI_DER_LEN],
            len: 0,
        })
    }

    /// The SEC1 compressed form.
    #[inline(never)]
    pub fn to_compressed(&self) -> CompressedPoint {
        let p = per_curve!(&self.0, Public, k => CompressedPoint::new(k.to_sec1_point(true).as_bytes()));
        // A compressed point is at most 67 bytes; the fallback is never taken.
        p.unwrap_or(CompressedPoint {
            bytes: [0; MAX_POINT_LEN],
            len: 0,
        })
    }
}

/// Bytes in a fixed buffer: the encodings the ECDH helpers return without allocating
/// ([`SpkiDer`], [`ProviderInfo`], [`WrappedKey`]). `Debug` shows them in hex.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FixedBytes<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> FixedBytes<N> {
    fn from_parts(parts: &[&[u8]]) -> Option<Self> {
        let mut out = Self {
            bytes: [0; N],
            len: 0,
        };
        for p in parts {
            let end = out.len.checked_add(p.len())?;
            out.bytes.get_mut(out.len..end)?.copy_from_slice(p);
            out.len = end;
        }
        Some(out)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

impl<const N: usize> AsRef<[u8]> for FixedBytes<N> {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl<const N: usize> fmt::Debug for FixedBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex(f, self.as_bytes())
    }
}

/// A DER SubjectPublicKeyInfo of an EC public key ([`EcdhPublicKey::to_spki_der`]).
pub type SpkiDer = FixedBytes<MAX_SPKI_DER_LEN>;

impl fmt::Debug for EcdhPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcdhPublicKey")
            .field("curve", &self.curve())
            .field("compressed", &self.to_compressed())
            .finish()
    }
}

#[derive(Clone)]
enum Secret {
    #[cfg(feature = "ecdh-p256")]
    P256(p256::SecretKey),
    #[cfg(feature = "ecdh-p384")]
    P384(p384::SecretKey),
    #[cfg(feature = "ecdh-p521")]
    P521(p521::SecretKey),
}

/// An elliptic-curve private key on P-256, P-384 or P-521. Zeroized on drop; `Debug` shows
/// only the curve.
#[derive(Clone)]
pub struct EcdhPrivateKey(Secret);

impl EcdhPrivateKey {
    /// Loads a DER PKCS#8 `PrivateKeyInfo`; the curve comes from the key's parameters.
    ///
    /// # Errors
    /// [`KeyError::PrivateKeyDer`]: not a PKCS#8 EC key on a supported curve, or an invalid
    /// scalar.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        #[cfg(feature = "ecdh-p256")]
        if let Ok(k) = p256::SecretKey::from_pkcs8_der(der) {
            return Ok(Self(Secret::P256(k)));
        }
        #[cfg(feature = "ecdh-p384")]
        if let Ok(k) = p384::SecretKey::from_pkcs8_der(der) {
            return Ok(Self(Secret::P384(k)));
        }
        #[cfg(feature = "ecdh-p521")]
        if let Ok(k) = p521::SecretKey::from_pkcs8_der(der) {
            return Ok(Self(Secret::P521(k)));
        }
        Err(key_error(KeyError::PrivateKeyDer(KeyAlgorithm::Ec)))
    }

    /// Loads a PEM `PRIVATE KEY` (PKCS#8), the form the spec requires. The decoded DER is
    /// zeroized; nothing is allocated.
    ///
    /// # Errors
    /// [`KeyError::Pem`] (not PEM), [`KeyError::PrivateKeyPemLabel`] (another label), or as
    /// [`Self::from_pkcs8_der`].
    pub fn from_pkcs8_pem(pem: impl AsRef<[u8]>) -> Result<Self, Error> {
        let mut buf = Zeroizing::new([0u8; MAX_PKCS8_DER]);
        let der = decode_pem(
            pem.as_ref(),
            "PRIVATE KEY",
            (
                KeyError::PrivateKeyPemLabel(KeyAlgorithm::Ec),
                KeyError::PrivateKeyDer(KeyAlgorithm::Ec),
            ),
            &mut buf[..],
        )?;
        Self::from_pkcs8_der(der)
    }

    /// The curve.
    pub fn curve(&self) -> EcdhCurve {
        match self.0 {
            #[cfg(feature = "ecdh-p256")]
            Secret::P256(_) => EcdhCurve::P256,
            #[cfg(feature = "ecdh-p384")]
            Secret::P384(_) => EcdhCurve::P384,
            #[cfg(feature = "ecdh-p521")]
            Secret::P521(_) => EcdhCurve::P521,
        }
    }

    /// The public key of this private key.
    // Never inlined: the scalar multiplication's tables stay in this frame.
    #[inline(never)]
    pub fn public_key(&self) -> EcdhPublicKey {
        EcdhPublicKey(match &self.0 {
            #[cfg(feature = "ecdh-p256")]
            Secret::P256(k) => Public::P256(k.public_key()),
            #[cfg(feature = "ecdh-p384")]
            Secret::P384(k) => Public::P384(k.public_key()),
            #[cfg(feature = "ecdh-p521")]
            Secret::P521(k) => Public::P521(k.public_key()),
        })
    }

    /// Draws a key uniformly at random from the materials' random source (rejection
    /// sampling: candidates that are zero or not below the group order are drawn again).
    // Never inlined (as the other steps of a wrap): each step's temporaries stay in its own
    // frame, side by side, not summed in the keyring's (firmware stacks).
    #[inline(never)]
    fn generate(curve: EcdhCurve, m: &EncryptionMaterials<'_>) -> Result<Self, Error> {
        let n = curve.shared_secret_len();
        let mut buf = Zeroizing::new([0u8; MAX_SECRET_LEN]);
        let candidate = buf.get_mut(..n).unwrap_or_default();
        // The chance of one rejection is below 2^-32 on every curve.
        for _ in 0..64 {
            m.fill_random(candidate)?;
            let key = match curve {
                #[cfg(feature = "ecdh-p256")]
                EcdhCurve::P256 => p256::SecretKey::from_slice(candidate).map(Secret::P256),
                #[cfg(feature = "ecdh-p384")]
                EcdhCurve::P384 => p384::SecretKey::from_slice(candidate).map(Secret::P384),
                #[cfg(feature = "ecdh-p521")]
                EcdhCurve::P521 => {
                    // 521 bits: clear the 7 unused high bits of the 66 bytes.
                    if let Some(top) = candidate.first_mut() {
                        *top &= 0x01;
                    }
                    p521::SecretKey::from_slice(candidate).map(Secret::P521)
                }
                // A curve whose `ecdh-p*` feature is off.
                #[allow(unreachable_patterns)]
                _ => return Err(CryptoError::Unsupported.into()),
            };
            if let Ok(k) = key {
                return Ok(Self(k));
            }
        }
        Err(CryptoError::Rng.into())
    }
}

impl fmt::Debug for EcdhPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcdhPrivateKey")
            .field("curve", &self.curve())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Decodes a PEM document with label `want` into `buf` and returns the DER. Text before the
/// first `-----BEGIN` line and trailing whitespace are skipped. `pem-rfc7468` is RustCrypto's
/// strict RFC 7468 decoder: no_std, constant-time base64, and it decodes into a caller
/// buffer, so no allocation is needed and the private key DER can be zeroized. A document too
/// large for `buf` cannot be a key of the supported curves: `too_large` is reported.
fn decode_pem<'b>(
    pem: &[u8],
    want: &str,
    (wrong_label, too_large): (KeyError, KeyError),
    buf: &'b mut [u8],
) -> Result<&'b [u8], Error> {
    let start = pem
        .windows(10)
        .position(|w| w == b"-----BEGIN")
        .ok_or(key_error(KeyError::Pem))?;
    let pem = pem.get(start..).unwrap_or_default().trim_ascii_end();
    let label = pem_rfc7468::decode_label(pem).map_err(|_| key_error(KeyError::Pem))?;
    if label != want {
        return Err(key_error(wrong_label));
    }
    match pem_rfc7468::decode(pem, buf) {
        Ok((_, der)) => Ok(der),
        Err(pem_rfc7468::Error::Length) => Err(key_error(too_large)),
        Err(_) => Err(key_error(KeyError::Pem)),
    }
}

/// The ECDH shared secret Z (the x-coordinate), zeroized on drop.
struct SharedSecret {
    bytes: Zeroizing<[u8; MAX_SECRET_LEN]>,
    len: usize,
}

impl SharedSecret {
    fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

#[inline(never)]
fn agree(private: &EcdhPrivateKey, public: &EcdhPublicKey) -> Option<SharedSecret> {
    let mut bytes = Zeroizing::new([0u8; MAX_SECRET_LEN]);
    let len = match (&private.0, &public.0) {
        #[cfg(feature = "ecdh-p256")]
        (Secret::P256(s), Public::P256(p)) => copy_secret(&s.diffie_hellman(p), &mut bytes),
        #[cfg(feature = "ecdh-p384")]
        (Secret::P384(s), Public::P384(p)) => copy_secret(&s.diffie_hellman(p), &mut bytes),
        #[cfg(feature = "ecdh-p521")]
        (Secret::P521(s), Public::P521(p)) => copy_secret(&s.diffie_hellman(p), &mut bytes),
        #[allow(unreachable_patterns)]
        _ => None,
    }?;
    Some(SharedSecret { bytes, len })
}

fn copy_secret<C: curve_base::elliptic_curve::CurveArithmetic>(
    z: &curve_base::elliptic_curve::ecdh::SharedSecret<C>,
    out: &mut [u8; MAX_SECRET_LEN],
) -> Option<usize> {
    let raw = z.raw_secret_bytes();
    out.get_mut(..raw.len())?.copy_from_slice(raw);
    Some(raw.len())
}

/// The KDF's FixedInfo, which is also the AES-GCM AAD. Kept as its parts so that the
/// encryption context (up to 64 KiB) is never copied.
struct FixedInfo<'a> {
    curve: EcdhCurve,
    sender: &'a [u8],
    recipient: &'a [u8],
    ec: &'a [u8],
}

impl FixedInfo<'_> {
    fn feed(&self, f: &mut dyn FnMut(&[u8])) {
        f(b"ecdh-key-derivation");
        f(&[0]);
        f(self.curve.spec_name());
        f(&[0]);
        f(b"HMAC_SHA384");
        f(&[0]);
        f(self.sender);
        f(self.recipient);
        f(&[0]);
        f(&[VERSION]);
        f(&[0]);
        f(self.ec);
    }

    fn len(&self) -> usize {
        let mut n = 0usize;
        self.feed(&mut |p| n = n.saturating_add(p.len()));
        n
    }
}

/// 64 bytes of keying material: NIST SP 800-108 KDF in counter mode, PRF HMAC-SHA384 keyed
/// with Z, input `[i]₃₂ ‖ FixedInfo ‖ 0x00 ‖ salt ‖ [512]₃₂` for i = 1, 2.
fn derive(z: &[u8], fixed: &FixedInfo<'_>, salt: &[u8]) -> Option<Zeroizing<[u8; 64]>> {
    let mac = <Hmac<Sha384> as KeyInit>::new_from_slice(z).ok()?;
    let mut okm = Zeroizing::new([0u8; 64]);
    for (i, chunk) in (1u32..).zip(okm.chunks_mut(48)) {
        let mut h = mac.clone();
        h.update(&i.to_be_bytes());
        fixed.feed(&mut |p| h.update(p));
        h.update(&[0]);
        h.update(salt);
        h.update(&512u32.to_be_bytes());
        let mut block = h.finalize().into_bytes();
        let n = chunk.len();
        chunk.copy_from_slice(block.get(..n)?);
        block.zeroize();
    }
    Some(okm)
}

/// AES-256-GCM with a zero IV over `buf` (at most 32 bytes), with the FixedInfo streamed in
/// as AAD, so that no copy of the encryption context is needed. Built from the `aes` block
/// cipher and `ghash` as NIST SP 800-38D defines GCM (the same pieces the `aes-gcm` crate
/// composes; the unit tests check it against that crate). `seal`: encrypts `buf` and returns
/// the tag; otherwise decrypts `buf` and returns the expected tag, which the caller must
/// compare before using `buf`.
fn gcm(key: &[u8], aad: &FixedInfo<'_>, buf: &mut [u8], seal: bool) -> Option<[u8; 16]> {
    if buf.len() > 32 {
        return None;
    }
    let cipher = aes::Aes256::new_from_slice(key).ok()?;
    let mut h = aes::Block::default();
    cipher.encrypt_block(&mut h);
    let mut ghash = ghash::GHash::new(&h);
    h.zeroize();

    let mut block = [0u8; 16];
    let mut fill = 0usize;
    let mut ok = true;
    aad.feed(&mut |part: &[u8]| {
        let mut p = part;
        while !p.is_empty() {
            let n = (16 - fill).min(p.len());
            match (block.get_mut(fill..fill + n), p.get(..n)) {
                (Some(dst), Some(src)) => dst.copy_from_slice(src),
                _ => ok = false,
            }
            fill += n;
            p = p.get(n..).unwrap_or_default();
            if fill == 16 {
                ghash.update(&[block.into()]);
                fill = 0;
            }
        }
    });
    if !ok {
        return None;
    }
    if fill > 0 {
        ghash.update_padded(block.get(..fill).unwrap_or_default());
    }

    // Counter blocks: IV (12 zero bytes) ‖ counter, starting at 2 (J0 = counter 1).
    let ctr = |c: u32| {
        let mut b = aes::Block::default();
        b[12..].copy_from_slice(&c.to_be_bytes());
        b
    };
    if !seal {
        ghash.update_padded(buf);
    }
    for (c, chunk) in (2u32..).zip(buf.chunks_mut(16)) {
        let mut ks = ctr(c);
        cipher.encrypt_block(&mut ks);
        for (b, k) in chunk.iter_mut().zip(ks.iter()) {
            *b ^= k;
        }
        ks.zeroize();
    }
    if seal {
        ghash.update_padded(buf);
    }
    let aad_bits = u64::try_from(aad.len()).ok()?.checked_mul(8)?;
    let ct_bits = u64::try_from(buf.len()).ok()?.checked_mul(8)?;
    let mut lens = [0u8; 16];
    lens[..8].copy_from_slice(&aad_bits.to_be_bytes());
    lens[8..].copy_from_slice(&ct_bits.to_be_bytes());
    ghash.update(&[lens.into()]);
    let s = ghash.finalize();
    let mut j0 = ctr(1);
    cipher.encrypt_block(&mut j0);
    let mut tag = [0u8; 16];
    for ((t, a), b) in tag.iter_mut().zip(j0.iter()).zip(s.iter()) {
        *t = a ^ b;
    }
    Some(tag)
}

/// The EDK provider info of an ECDH keyring: version `0x01` ‖ u32 length ‖ recipient
/// public key ‖ u32 length ‖ sender public key, both SEC1-compressed (spec
/// `framework/raw-ecdh-keyring.md`, "Key Provider Information"; the AWS KMS ECDH keyring
/// writes the same bytes). Made by [`provider_info`], read by [`parse_provider_info`].
pub type ProviderInfo = FixedBytes<MAX_PROVIDER_INFO_LEN>;

/// The EDK ciphertext of an ECDH keyring: 32-byte KDF salt ‖ 32-byte commitment key ‖
/// AES-256-GCM(data key) ‖ 16-byte tag ([`SharedSecretWrap::wrap`]).
pub type WrappedKey = FixedBytes<MAX_CIPHERTEXT_LEN>;

/// The provider info for `recipient` and `sender` on `curve`.
///
/// # Errors
/// [`KeyError::WrongCurve`] when a point is not the length of `curve`'s compressed points.
pub fn provider_info(
    curve: EcdhCurve,
    recipient: &CompressedPoint,
    sender: &CompressedPoint,
) -> Result<ProviderInfo, Error> {
    let n = curve.compressed_point_len();
    if recipient.as_bytes().len() != n || sender.as_bytes().len() != n {
        return Err(key_error(KeyError::WrongCurve));
    }
    let point_len = u32::try_from(n).unwrap_or_default().to_be_bytes();
    ProviderInfo::from_parts(&[
        &[VERSION],
        &point_len,
        recipient.as_bytes(),
        &point_len,
        sender.as_bytes(),
    ])
    .ok_or(key_error(KeyError::WrongCurve))
}

/// The serialized length of one `raw-ecdh` EDK (provider id, provider info and
/// ciphertext with their length fields) for `curve` and a data key of `key_len` bytes.
pub const fn edk_len(curve: EcdhCurve, key_len: usize) -> usize {
    6 + PROVIDER_ID.len() + curve.provider_info_len() + ciphertext_len(key_len)
}

/// Parses a provider info for `curve`: returns the (recipient, sender) compressed points as
/// written, or `None` when the version, a length or the total length is not that of
/// `curve`. The points are not checked to be on the curve.
pub fn parse_provider_info(curve: EcdhCurve, info: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = curve.compressed_point_len();
    let len = u32::try_from(n).ok()?.to_be_bytes();
    if info.len() != curve.provider_info_len()
        || info.first() != Some(&VERSION)
        || info.get(1..5)? != len
        || info.get(5 + n..9 + n)? != len
    {
        return None;
    }
    Some((info.get(5..5 + n)?, info.get(9 + n..)?))
}

/// Whether an EDK's (sender, recipient) public keys belong to a static key pair configured
/// as (`sender`, `recipient`): the same way round (our message) or mirrored (the other
/// party's message to us). Spec `framework/key-agreement-schemas.md`, the static schemas.
pub fn is_static_pair(
    sender: &[u8],
    recipient: &[u8],
    edk_sender: &[u8],
    edk_recipient: &[u8],
) -> bool {
    let ours = edk_sender == sender && edk_recipient == recipient;
    let mirrored = edk_sender == recipient && edk_recipient == sender;
    ours || mirrored
}

/// What an ECDH EDK's wrapping key is derived from, for keyrings that compute the shared
/// secret themselves (the raw ECDH keyring) or have KMS compute it (`DeriveSharedSecret`,
/// the AWS KMS ECDH keyring). [`Self::wrap`] and [`Self::unwrap`] are the raw ECDH
/// keyring's derivation and wrap (module docs), so their EDKs are byte-compatible with it
/// and with the MPL's raw and AWS KMS ECDH keyrings. `Debug` hides the secret.
#[derive(Clone, Copy)]
pub struct SharedSecretWrap<'a> {
    /// The curve of both public keys.
    pub curve: EcdhCurve,
    /// The ECDH shared secret: the x-coordinate of the agreed point.
    pub shared_secret: &'a [u8],
    /// The sender's compressed public key, as written in the provider info.
    pub sender: &'a [u8],
    /// The recipient's compressed public key, as written in the provider info.
    pub recipient: &'a [u8],
    /// The canonical serialization of the message's encryption context.
    pub serialized_ec: &'a [u8],
}

impl fmt::Debug for SharedSecretWrap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedSecretWrap")
            .field("curve", &self.curve)
            .field("shared_secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl SharedSecretWrap<'_> {
    fn fixed_info(&self) -> FixedInfo<'_> {
        FixedInfo {
            curve: self.curve,
            sender: self.sender,
            recipient: self.recipient,
            ec: self.serialized_ec,
        }
    }

    /// Wraps `data_key` with a fresh 32-byte `salt` (random per EDK) and returns the EDK
    /// ciphertext.
    ///
    /// # Errors
    /// [`KeyringError::DataKeyLength`] for a data key longer than 32 bytes;
    /// [`KeyringError::KeyAgreement`] if the derivation fails (an empty secret);
    /// [`CryptoError::Aead`] if the wrap fails.
    #[inline(never)]
    pub fn wrap(&self, salt: &[u8; SALT_LEN], data_key: &[u8]) -> Result<WrappedKey, Error> {
        let fixed = self.fixed_info();
        let okm = derive(self.shared_secret, &fixed, salt).ok_or(KeyringError::KeyAgreement)?;
        let (commit_key, wrap_key) = okm.split_at(COMMIT_LEN);
        let n = data_key.len();
        if n > 32 {
            return Err(KeyringError::DataKeyLength.into());
        }
        let mut out = WrappedKey {
            bytes: [0; MAX_CIPHERTEXT_LEN],
            len: ciphertext_len(n),
        };
        let (head, rest) = out.bytes.split_at_mut(SALT_LEN + COMMIT_LEN);
        let (salt_out, commit_out) = head.split_at_mut(SALT_LEN);
        salt_out.copy_from_slice(salt);
        commit_out.copy_from_slice(commit_key);
        let (wrapped, rest) = rest.split_at_mut(n);
        wrapped.copy_from_slice(data_key);
        let Some(tag) = gcm(wrap_key, &fixed, wrapped, true) else {
            // Never taken (the lengths are checked above); the data key must not stay behind.
            wrapped.zeroize();
            return Err(CryptoError::Aead.into());
        };
        rest.get_mut(..TAG_LEN)
            .ok_or(Error::Keyring(KeyringError::DataKeyLength))?
            .copy_from_slice(&tag);
        Ok(out)
    }

    /// Unwraps an EDK ciphertext for a data key of `key_len` bytes. The commitment key is
    /// compared in constant time before the tag.
    ///
    /// # Errors
    /// [`AttemptFailure::DataKeyLength`] when the ciphertext is not the length for
    /// `key_len`; [`AttemptFailure::UnwrapFailed`] when the commitment key or the tag does
    /// not match (the message was made for other keys or another encryption context).
    pub fn unwrap(&self, ciphertext: &[u8], key_len: usize) -> Result<DataKey, AttemptFailure> {
        if key_len > 32 || ciphertext.len() != ciphertext_len(key_len) {
            return Err(AttemptFailure::DataKeyLength);
        }
        let (salt, rest) = ciphertext.split_at(SALT_LEN);
        let (commitment, rest) = rest.split_at(COMMIT_LEN);
        let (wrapped, tag) = rest.split_at(key_len);
        let fixed = self.fixed_info();
        let okm = derive(self.shared_secret, &fixed, salt).ok_or(AttemptFailure::UnwrapFailed)?;
        let (commit_key, wrap_key) = okm.split_at(COMMIT_LEN);
        if !bool::from(commit_key.ct_eq(commitment)) {
            return Err(AttemptFailure::UnwrapFailed);
        }
        let mut buf = Zeroizing::new([0u8; 32]);
        let pt = buf
            .get_mut(..key_len)
            .ok_or(AttemptFailure::DataKeyLength)?;
        pt.copy_from_slice(wrapped);
        let expected = gcm(wrap_key, &fixed, pt, false).ok_or(AttemptFailure::UnwrapFailed)?;
        if !bool::from(expected.ct_eq(tag)) {
            return Err(AttemptFailure::UnwrapFailed);
        }
        DataKey::from_slice(pt).map_err(|_| AttemptFailure::DataKeyLength)
    }
}

enum Config {
    Static {
        sender: EcdhPrivateKey,
        sender_point: CompressedPoint,
        recipient: EcdhPublicKey,
        recipient_point: CompressedPoint,
    },
    Ephemeral {
        recipient: EcdhPublicKey,
        recipient_point: CompressedPoint,
    },
    Discovery {
        recipient: EcdhPrivateKey,
        recipient_point: CompressedPoint,
    },
}

/// A raw ECDH keyring (spec `framework/raw-ecdh-keyring.md`). `no_std`, no heap,
/// `Send + Sync`. `Debug` shows the schema, curve and public keys, never a private key.
///
/// On decrypt it tries, in header order, each EDK whose provider id is `raw-ecdh` or
/// `aws-kms-ecdh` and whose public keys are this keyring's, and records one
/// [`AttemptFailure`] for every EDK it skipped or could not unwrap: `ProviderIdMismatch`,
/// `ProviderInfoFormat` (version, lengths, or a point not on the curve), `KeyNameMismatch`
/// (other public keys), `DataKeyLength` (ciphertext length) or `UnwrapFailed` (commitment
/// or tag mismatch).
pub struct RawEcdhKeyring {
    curve: EcdhCurve,
    config: Config,
}

impl fmt::Debug for RawEcdhKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RawEcdhKeyring");
        d.field("schema", &self.schema())
            .field("curve", &self.curve);
        match &self.config {
            Config::Static {
                sender_point,
                recipient_point,
                ..
            } => d
                .field("sender", sender_point)
                .field("recipient", recipient_point),
            Config::Ephemeral {
                recipient_point, ..
            }
            | Config::Discovery {
                recipient_point, ..
            } => d.field("recipient", recipient_point),
        };
        d.finish()
    }
}

fn check_curve(curve: EcdhCurve, key: EcdhCurve) -> Result<(), Error> {
    if curve == key {
        Ok(())
    } else {
        Err(key_error(KeyError::WrongCurve))
    }
}

impl RawEcdhKeyring {
    /// `RawPrivateKeyToStaticPublicKey`: wraps with the key agreed between the sender's
    /// static private key and the recipient's public key. Decrypts the EDKs written by this
    /// configuration, and by the mirrored one (the recipient's private key with the sender's
    /// public key).
    ///
    /// # Errors
    /// [`KeyError::WrongCurve`] when a key is not on `curve`.
    // Never inlined: the point checks' temporaries stay out of the caller's frame.
    #[inline(never)]
    pub fn raw_private_key_to_static_public_key(
        curve: EcdhCurve,
        sender_private: EcdhPrivateKey,
        recipient_public: EcdhPublicKey,
    ) -> Result<Self, Error> {
        check_curve(curve, sender_private.curve())?;
        check_curve(curve, recipient_public.curve())?;
        Ok(Self {
            curve,
            config: Config::Static {
                sender_point: sender_private.public_key().to_compressed(),
                sender: sender_private,
                recipient_point: recipient_public.to_compressed(),
                recipient: recipient_public,
            },
        })
    }

    /// `EphemeralPrivateKeyToStaticPublicKey`: wraps each message's data key with a key
    /// agreed between a fresh private key (from the materials' random source) and the
    /// recipient's public key. Encrypt-only.
    ///
    /// # Errors
    /// [`KeyError::WrongCurve`] when the key is not on `curve`.
    // Never inlined: the point checks' temporaries stay out of the caller's frame.
    #[inline(never)]
    pub fn ephemeral_private_key_to_static_public_key(
        curve: EcdhCurve,
        recipient_public: EcdhPublicKey,
    ) -> Result<Self, Error> {
        check_curve(curve, recipient_public.curve())?;
        Ok(Self {
            curve,
            config: Config::Ephemeral {
                recipient_point: recipient_public.to_compressed(),
                recipient: recipient_public,
            },
        })
    }

    /// `PublicKeyDiscovery`: decrypts any EDK addressed to the recipient's public key,
    /// whoever the sender. Decrypt-only.
    ///
    /// # Errors
    /// [`KeyError::WrongCurve`] when the key is not on `curve`.
    // Never inlined: the point checks' temporaries stay out of the caller's frame.
    #[inline(never)]
    pub fn public_key_discovery(
        curve: EcdhCurve,
        recipient_private: EcdhPrivateKey,
    ) -> Result<Self, Error> {
        check_curve(curve, recipient_private.curve())?;
        Ok(Self {
            curve,
            config: Config::Discovery {
                recipient_point: recipient_private.public_key().to_compressed(),
                recipient: recipient_private,
            },
        })
    }

    /// The key agreement schema.
    pub fn schema(&self) -> EcdhSchema {
        match self.config {
            Config::Static { .. } => EcdhSchema::RawPrivateKeyToStaticPublicKey,
            Config::Ephemeral { .. } => EcdhSchema::EphemeralPrivateKeyToStaticPublicKey,
            Config::Discovery { .. } => EcdhSchema::PublicKeyDiscovery,
        }
    }

    /// The curve.
    pub fn curve(&self) -> EcdhCurve {
        self.curve
    }

    /// Whether the schema can encrypt (all but `PublicKeyDiscovery`).
    pub fn can_encrypt(&self) -> bool {
        !matches!(self.config, Config::Discovery { .. })
    }

    /// Whether the schema can decrypt (all but `EphemeralPrivateKeyToStaticPublicKey`).
    pub fn can_decrypt(&self) -> bool {
        !matches!(self.config, Config::Ephemeral { .. })
    }

    fn try_unwrap(
        &self,
        m: &DecryptionMaterials<'_>,
        info: &[u8],
        ct: &[u8],
    ) -> Result<DataKey, AttemptFailure> {
        let (edk_recipient, edk_sender) =
            parse_provider_info(self.curve, info).ok_or(AttemptFailure::ProviderInfoFormat)?;
        let (private, peer) = match &self.config {
            Config::Static {
                sender,
                sender_point,
                recipient,
                recipient_point,
            } => {
                let (s, r) = (sender_point.as_bytes(), recipient_point.as_bytes());
                if !is_static_pair(s, r, edk_sender, edk_recipient) {
                    return Err(AttemptFailure::KeyNameMismatch);
                }
                // Either way the agreement is between our private key and the peer's
                // public key.
                (sender, *recipient)
            }
            Config::Discovery {
                recipient,
                recipient_point,
            } => {
                if edk_recipient != recipient_point.as_bytes() {
                    return Err(AttemptFailure::KeyNameMismatch);
                }
                let sender = EcdhPublicKey::from_sec1(self.curve, edk_sender)
                    .map_err(|_| AttemptFailure::ProviderInfoFormat)?;
                (recipient, sender)
            }
            Config::Ephemeral { .. } => return Err(AttemptFailure::Backend),
        };
        let key_len = m.suite().key_len();
        if ct.len() != ciphertext_len(key_len) {
            return Err(AttemptFailure::DataKeyLength);
        }
        let z = agree(private, &peer).ok_or(AttemptFailure::UnwrapFailed)?;
        SharedSecretWrap {
            curve: self.curve,
            shared_secret: z.as_bytes(),
            sender: edk_sender,
            recipient: edk_recipient,
            serialized_ec: m.serialized_encryption_context(),
        }
        .unwrap(ct, key_len)
    }
}

impl Keyring for RawEcdhKeyring {
    /// Generates the data key if needed and wraps it under the agreed key.
    ///
    /// # Errors
    /// [`KeyringError::EncryptNotSupported`] for `PublicKeyDiscovery`;
    /// [`CryptoError::Rng`] when randomness fails; [`KeyringError::KeyAgreement`] if
    /// the key agreement or derivation fails; the EDK writer's errors.
    fn on_encrypt(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), Error> {
        let ephemeral;
        let (private, sender_point, recipient, recipient_point) = match &self.config {
            Config::Discovery { .. } => return Err(KeyringError::EncryptNotSupported.into()),
            Config::Static {
                sender,
                sender_point,
                recipient,
                recipient_point,
            } => (sender, *sender_point, recipient, recipient_point),
            Config::Ephemeral {
                recipient,
                recipient_point,
            } => {
                ephemeral = EcdhPrivateKey::generate(self.curve, m)?;
                let point = ephemeral.public_key().to_compressed();
                (&ephemeral, point, recipient, recipient_point)
            }
        };
        let z = agree(private, recipient).ok_or(KeyringError::KeyAgreement)?;
        let mut salt = [0u8; SALT_LEN];
        m.fill_random(&mut salt)?;
        let info = provider_info(self.curve, recipient_point, &sender_point)?;
        let ec = m.serialized_encryption_context();
        let wrap = SharedSecretWrap {
            curve: self.curve,
            shared_secret: z.as_bytes(),
            sender: sender_point.as_bytes(),
            recipient: recipient_point.as_bytes(),
            serialized_ec: ec,
        };
        let wrapped = wrap.wrap(&salt, m.generate_data_key()?.as_bytes())?;
        m.push_edk(PROVIDER_ID, &[info.as_bytes()], &[wrapped.as_bytes()])
    }

    fn on_decrypt(&self, m: &mut DecryptionMaterials<'_>, edks: Edks<'_>) -> Result<(), Error> {
        if !self.can_decrypt() {
            return Err(KeyringError::DecryptNotSupported.into());
        }
        if m.data_key().is_some() {
            return Err(KeyringError::DataKeyAlreadyPresent.into());
        }
        for (i, edk) in edks.iter() {
            if edk.provider_id != PROVIDER_ID && edk.provider_id != KMS_PROVIDER_ID {
                m.record_failure(i, AttemptFailure::ProviderIdMismatch);
                continue;
            }
            match self.try_unwrap(m, edk.provider_info, edk.ciphertext) {
                Ok(k) => return m.set_data_key(k),
                Err(reason) => m.record_failure(i, reason),
            }
        }
        Err(m.no_data_key_error())
    }

    fn encrypted_data_keys_len(&self, suite: AlgorithmSuite) -> Option<(u16, usize)> {
        if !self.can_encrypt() {
            return None;
        }
        Some((1, edk_len(self.curve, suite.key_len())))
    }
}

// The tests use every curve.
#[cfg(all(test, feature = "ecdh"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use aes_gcm::aead::AeadInOut;

    /// The streamed-AAD GCM equals the `aes-gcm` crate on contiguous AAD, for AAD lengths
    /// around block boundaries and every data key length.
    #[test]
    fn gcm_matches_aes_gcm() {
        let key = [0x42u8; 32];
        let reference = aes_gcm::Aes256Gcm::new_from_slice(&key).unwrap();
        let mut ec = [0u8; 300];
        for (i, b) in ec.iter_mut().enumerate() {
            *b = (i * 7 + 3) as u8;
        }
        for ec_len in [0usize, 1, 15, 16, 17, 31, 32, 33, 100, 300] {
            let fixed = FixedInfo {
                curve: EcdhCurve::P384,
                sender: &[2u8; 49],
                recipient: &[3u8; 49],
                ec: &ec[..ec_len],
            };
            let mut aad = [0u8; 600];
            let mut at = 0;
            fixed.feed(&mut |p| {
                aad[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            });
            assert_eq!(at, fixed.len());
            for pt_len in [0usize, 1, 16, 17, 24, 32] {
                let pt = [0x5au8; 32];
                let mut ours = pt;
                let tag = gcm(&key, &fixed, &mut ours[..pt_len], true).unwrap();
                let mut theirs = pt;
                let ref_tag = reference
                    .encrypt_inout_detached(
                        (&[0u8; 12]).into(),
                        &aad[..at],
                        (&mut theirs[..pt_len]).into(),
                    )
                    .unwrap();
                assert_eq!(ours[..pt_len], theirs[..pt_len], "{ec_len} {pt_len}");
                assert_eq!(tag[..], ref_tag[..], "{ec_len} {pt_len}");
                let expected = gcm(&key, &fixed, &mut ours[..pt_len], false).unwrap();
                assert_eq!(expected, tag);
                assert_eq!(ours[..pt_len], pt[..pt_len]);
            }
        }
        assert!(
            gcm(
                &key,
                &FixedInfo {
                    curve: EcdhCurve::P256,
                    sender: &[],
                    recipient: &[],
                    ec: &[]
                },
                &mut [0u8; 33],
                true
            )
            .is_none()
        );
    }

    /// SP 800-108 counter mode: the second block uses counter 2, and the output is the
    /// first 64 bytes of the two HMAC blocks.
    #[test]
    fn kdf_is_counter_mode_hmac_sha384() {
        let fixed = FixedInfo {
            curve: EcdhCurve::P256,
            sender: &[1u8; 33],
            recipient: &[2u8; 33],
            ec: b"\x00\x01\x00\x01k\x00\x01v",
        };
        let z = [9u8; 32];
        let salt = [7u8; 32];
        let okm = derive(&z, &fixed, &salt).unwrap();
        let block = |i: u32| {
            let mut h = <Hmac<Sha384> as KeyInit>::new_from_slice(&z).unwrap();
            h.update(&i.to_be_bytes());
            fixed.feed(&mut |p| h.update(p));
            h.update(&[0]);
            h.update(&salt);
            h.update(&[0, 0, 2, 0]);
            h.finalize().into_bytes()
        };
        assert_eq!(okm[..48], block(1)[..]);
        assert_eq!(okm[48..], block(2)[..16]);
    }
}
