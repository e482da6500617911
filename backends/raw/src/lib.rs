//! # esdk-raw
//!
//! Raw keyrings for the Rust ESDK whose wrapping keys the application holds itself.
//!
//! - [`RawAesKeyring`]: AES-GCM key wrapping with 128/192/256-bit keys, `no_std`, no heap,
//!   byte-compatible with the official SDKs' raw AES keyrings (spec
//!   `framework/raw-aes-keyring.md`): the EDK's provider id is the key namespace, its
//!   provider info is key name ‖ tag length in bits (u32) ‖ IV length (u32) ‖ IV, and its
//!   ciphertext is the wrapped key ‖ tag, with the serialized encryption context as AAD.
//!
//! ## Crate features
//! - `ecdh`: the raw ECDH keyring ([`ecdh`]) on P-256, P-384 and P-521; the same as
//!   `ecdh-p256` + `ecdh-p384` + `ecdh-p521`, which add up: a firmware image that talks to
//!   one curve enables only that one and leaves the others' arithmetic out (26 KB of flash on
//!   a Cortex-M4 for P-256 and P-521). Keys, points and EDKs of a curve left out are refused
//!   (a PKCS#8 or SPKI key is not recognized; [`ecdh::EcdhPublicKey::from_sec1`] and
//!   an ephemeral key on that curve are [`CryptoError::Unsupported`](esdk_core::error::CryptoError::Unsupported)).
//! - `rsa` (std): the raw RSA keyring on aws-lc-rs.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "rsa")]
extern crate std;

pub mod aes_info;
#[cfg(any(feature = "ecdh-p256", feature = "ecdh-p384", feature = "ecdh-p521"))]
pub mod ecdh;
#[cfg(feature = "rsa")]
pub mod rsa;

use esdk_core::error::{AttemptFailure, Error, KeyringError};
use esdk_core::gcm::AesGcmKey;
use esdk_core::materials::{DataKey, DecryptionMaterials, Edks, EncryptionMaterials};
use esdk_core::provider::AeadKey;
use esdk_core::{AlgorithmSuite, Keyring};
use zeroize::Zeroize;

// AES-GCM over one key schedule (the core's `gcm`), zeroized on drop.
enum Wrapper {
    A128(AesGcmKey<aes::Aes128>),
    A192(AesGcmKey<aes::Aes192>),
    A256(AesGcmKey<aes::Aes256>),
}

macro_rules! with_wrapper {
    ($w:expr, $c:ident => $body:expr) => {
        match $w {
            Wrapper::A128($c) => $body,
            Wrapper::A192($c) => $body,
            Wrapper::A256($c) => $body,
        }
    };
}

/// A raw AES keyring: wraps data keys under a 128-, 192- or 256-bit AES key that the
/// application holds. The key is expanded once and zeroized on drop; `Debug` shows only
/// the namespace and name.
pub struct RawAesKeyring<'a> {
    namespace: &'a str,
    name: &'a str,
    wrapper: Wrapper,
}

impl core::fmt::Debug for RawAesKeyring<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RawAesKeyring")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl<'a> RawAesKeyring<'a> {
    /// A keyring for `key` (16, 24 or 32 bytes) under `namespace` (the EDK provider id) and
    /// `name` (the key name in the provider info).
    ///
    /// # Errors
    /// [`KeyringError::InvalidConfiguration`] for another key length, or a namespace that
    /// starts with `aws-kms` (reserved for KMS keyrings);
    /// [`KeyringError::FieldTooLong`] when the namespace or name exceed the EDK fields.
    // Never inlined: the key schedule's temporaries (a few hundred bytes each on a
    // microcontroller) stay in this short-lived frame, not in the caller's.
    #[inline(never)]
    pub fn new(namespace: &'a str, name: &'a str, key: &[u8]) -> Result<Self, Error> {
        if namespace.starts_with("aws-kms") {
            return Err(KeyringError::InvalidConfiguration.into());
        }
        if namespace.len() > 0xFFFF || name.len() > 0xFFFF - 20 {
            return Err(KeyringError::FieldTooLong.into());
        }
        let bad = |_| Error::Keyring(KeyringError::InvalidConfiguration);
        let wrapper = match key.len() {
            16 => Wrapper::A128(AesGcmKey::new(
                <&[u8; 16]>::try_from(key).map_err(bad)?.into(),
            )),
            24 => Wrapper::A192(AesGcmKey::new(
                <&[u8; 24]>::try_from(key).map_err(bad)?.into(),
            )),
            32 => Wrapper::A256(AesGcmKey::new(
                <&[u8; 32]>::try_from(key).map_err(bad)?.into(),
            )),
            _ => return Err(KeyringError::InvalidConfiguration.into()),
        };
        Ok(Self {
            namespace,
            name,
            wrapper,
        })
    }

    /// The key namespace (EDK provider id).
    pub fn namespace(&self) -> &str {
        self.namespace
    }

    /// The key name.
    pub fn name(&self) -> &str {
        self.name
    }

    fn try_unwrap(
        &self,
        m: &DecryptionMaterials<'_>,
        info: &[u8],
        ct: &[u8],
    ) -> Result<DataKey, AttemptFailure> {
        let iv = aes_info::parse(self.name, m.suite(), info, ct)?;
        let key_len = m.suite().key_len();
        let mut buf = [0u8; 32];
        let pt = &mut buf[..key_len];
        pt.copy_from_slice(&ct[..key_len]);
        let aad = m.serialized_encryption_context();
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&ct[key_len..]);
        let r = with_wrapper!(&self.wrapper, c => c.open_in_place(&iv, aad, pt, &tag));
        let out = match r {
            Ok(()) => DataKey::from_slice(pt).map_err(|_| AttemptFailure::DataKeyLength),
            Err(_) => Err(AttemptFailure::UnwrapFailed),
        };
        buf.zeroize();
        out
    }
}

impl Keyring for RawAesKeyring<'_> {
    fn on_encrypt(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), Error> {
        let mut iv = [0u8; 12];
        m.fill_random(&mut iv)?;
        let mut buf = [0u8; 32];
        let n = {
            let dk = m.generate_data_key()?.as_bytes();
            buf[..dk.len()].copy_from_slice(dk);
            dk.len()
        };
        let aad = m.serialized_encryption_context();
        let r = with_wrapper!(&self.wrapper, c => c.seal_in_place(&iv, aad, &mut buf[..n]));
        let tag = match r {
            Ok(t) => t,
            Err(e) => {
                buf.zeroize();
                return Err(e.into());
            }
        };
        let r = m.push_edk(
            self.namespace,
            &aes_info::provider_info(self.name, &iv),
            &[&buf[..n], tag.as_slice()],
        );
        buf.zeroize();
        r
    }

    fn on_decrypt(&self, m: &mut DecryptionMaterials<'_>, edks: Edks<'_>) -> Result<(), Error> {
        for (i, edk) in edks.iter() {
            if edk.provider_id != self.namespace {
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
        Some(aes_info::edk_len(self.namespace, self.name, suite))
    }
}
